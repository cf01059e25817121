"""The one preprocessing path: any image file or Pillow image to the model's 32x32 RGB input.

Prediction, the input-check view, training data and export all call :func:`prepare` (or
:func:`load_image`, which opens a file and then calls it), so what the model sees is identical
everywhere. Every conversion is reported in plain words. Pixel scaling is not done here: the model
takes RGB values 0-255 and normalises them in its first layer, recorded in the sidecar.
"""
from __future__ import annotations

import functools
import io
import os
import re
import stat
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from .conversions import resize, to_rgb

RESIZE_POLICIES = ("crop", "pad", "squash")
MAX_FILE_BYTES = 256 * 1024 * 1024  # a dropped file larger than this is refused unread
MAX_PIXELS = 64_000_000  # pixel budget checked from the header, before any decoding
IMAGE_SUFFIXES = frozenset(
    ".jpg .jpeg .jpe .jfif .png .gif .bmp .dib .webp .tif .tiff .ppm .pgm .pbm .pnm .ico .tga "
    ".jp2 .j2k .pcx .sgi .im .dds .icns .qoi .avif".split()
)
# The decoders a file may be read with, whatever its name says: Pillow picks one by sniffing the
# bytes, and its EPS reader runs Ghostscript (an external program, no timeout) on PostScript, so
# a hostile "photo.jpg" starting with %!PS is refused rather than executed. MPO: camera JPEGs.
IMAGE_FORMATS = ("JPEG", "MPO", "PNG", "GIF", "BMP", "DIB", "WEBP", "TIFF", "PPM", "ICO", "TGA",
                 "JPEG2000", "PCX", "SGI", "IM", "DDS", "ICNS", "QOI", "AVIF")


@dataclass(frozen=True)
class Preprocessing:
    """How an image becomes model input. Stored in every checkpoint's sidecar.

    Attributes:
        size: (width, height) of the model input in pixels.
        resize: "crop" (centre-crop to the input's aspect ratio, then resize), "pad" (fit
            inside and pad with ``pad_value``), or "squash" (resize, ignoring aspect ratio).
        pad_value: grey level 0-255 used for padding and for compositing transparency.
        scaling: documentation of the in-model normalisation (the model's first layer).
    """

    size: tuple[int, int] = (32, 32)
    resize: str = "crop"
    pad_value: int = 255
    scaling: str = "model input is RGB 0-255 (float32); its first layer subtracts the " \
                   "per-channel mean and divides by the standard deviation"

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "Preprocessing":
        policy = cls(size=tuple(data.get("size", (32, 32))), resize=data.get("resize", "crop"),
                     pad_value=int(data.get("pad_value", 255)),
                     scaling=data.get("scaling", cls.scaling))
        if not (len(policy.size) == 2 and all(isinstance(v, int) and not isinstance(v, bool)
                                              and 0 < v <= 100_000 for v in policy.size)):
            raise ValueError(f"size {policy.size} is not (width, height)")
        if not isinstance(policy.scaling, str) or not 0 <= policy.pad_value <= 255:
            raise ValueError("scaling or pad_value out of range")
        if policy.resize not in RESIZE_POLICIES:
            raise ValueError(f"unknown resize policy {policy.resize!r}")
        return policy


class ImageRejected(Exception):
    """An input that cannot be used; ``str(exc)`` is a one-line reason for the user."""


@dataclass
class InputReport:
    """What the input check shows for one image, and the array the model receives."""

    name: str
    format: str
    width: int
    height: int
    mode: str
    frames: int
    conforms: bool
    conversions: list[str] = field(default_factory=list)
    array: np.ndarray | None = None  # uint8, (height, width, 3) of the model input
    original: Image.Image | None = None  # after EXIF rotation and frame choice; for display

    def summary(self) -> dict:
        """JSON-friendly description (no pixels)."""
        return {"width": self.width, "height": self.height, "mode": self.mode,
                "format": self.format, "conforms": self.conforms,
                "conversions": list(self.conversions)}


def is_image_path(path: Path) -> bool:
    """True when the file name has a suffix of an image format Pillow reads."""
    return path.suffix.lower() in IMAGE_SUFFIXES


def load_image(source: str | os.PathLike | bytes, policy: Preprocessing = Preprocessing(),
               strict: bool = False, name: str | None = None) -> InputReport:
    """Open an image file (or raw bytes) and prepare it for the model.

    Raises:
        ImageRejected: with a one-line reason when the input cannot be used.
    """
    if isinstance(source, (bytes, bytearray)):
        data, label = bytes(source), name or "pasted image"
    else:
        path = Path(source)
        label = name or path.name
        data = _read_bytes(path)
    if not data:
        raise ImageRejected("empty file (0 bytes)")
    try:
        with warnings.catch_warnings():
            # Pillow warns about damaged metadata it skips; the image decodes or is refused anyway
            warnings.filterwarnings("ignore", category=UserWarning, module=r"PIL\.")
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            try:
                image = Image.open(io.BytesIO(data), formats=_formats())
                _check_pixel_budget(image)
                report = prepare(image, policy, strict=strict, name=label)
            except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
                # (here, under the filters above: reading its header again warns of nothing)
                raise ImageRejected(_too_large_for_pillow(data, exc)) from None
    except ImageRejected:
        raise
    except Image.UnidentifiedImageError:
        raise ImageRejected("not an image in a format the app reads (JPEG, PNG, GIF, BMP, WebP, "
                            "TIFF and others)") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        if "truncated" in str(exc).lower() or isinstance(exc, EOFError):
            raise ImageRejected("corrupt or truncated image: the file ends early") from None
        raise ImageRejected(_one_line("corrupt or truncated image", exc)) from None
    except MemoryError:
        raise ImageRejected("too large to decode in memory") from None
    except Exception as exc:  # Pillow's parsers raise anything on hostile bytes (IndexError,
        # struct.error, TypeError...; its own fuzz harness catches Exception). Cause kept for tests
        kind = type(exc).__qualname__ if type(exc).__module__ == "builtins" else \
            f"{type(exc).__module__}.{type(exc).__qualname__}"
        raise ImageRejected(_one_line(f"cannot decode this image ({kind})", exc)) from exc
    return report


def prepare(image: Image.Image, policy: Preprocessing = Preprocessing(), strict: bool = False,
            name: str = "") -> InputReport:
    """Turn an opened Pillow image into the model's input, recording each conversion."""
    width, height = image.size
    frames = int(getattr(image, "n_frames", 1) or 1)
    mode, fmt = image.mode, image.format or "unknown"
    deep, orientation = _read_from_16_bits(image), _exif_orientation(image)
    target_w, target_h = policy.size
    differences = _differences(image, frames, orientation, deep)
    conforms = (width, height) == (target_w, target_h) and mode == "RGB" and not differences
    if strict and not conforms:
        raise ImageRejected(
            f"strict {target_w}×{target_h}: image is {width}×{height} {mode}"
            + "".join(differences) + f"; the model takes exactly {target_w}×{target_h} RGB")
    steps: list[str] = []
    if deep:
        steps.append("16 bits per channel reduced to 8 (the model takes 8-bit RGB)")
    if frames > 1:
        image.seek(0)
        steps.append(f"used the main image (the file holds {frames} images)" if fmt == "MPO"
                     else f"used the first frame of {frames} (animated {fmt})")
    rotated = _apply_exif_rotation(image, orientation)
    if rotated is not image:
        steps.append(f"rotated upright from EXIF orientation {orientation}")
        image = rotated
    image = to_rgb(image, policy.pad_value, steps)
    image.load()
    original = image
    image = resize(image, policy, steps)
    array = np.asarray(image, dtype=np.uint8)
    if array.shape != (target_h, target_w, 3):  # defensive: the model must get exactly this
        raise ImageRejected(f"internal conversion produced shape {array.shape}")
    return InputReport(name=name, format=fmt, width=width, height=height, mode=mode,
                       frames=frames, conforms=conforms, conversions=steps, array=array,
                       original=original)


def _read_bytes(path: Path) -> bytes:
    try:
        if path.is_dir():
            raise ImageRejected("is a folder, not an image file")
        # O_NONBLOCK: opening a FIFO named like an image must not wait for a writer forever
        flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
        with open(os.open(path, flags), "rb") as stream:
            info = os.fstat(stream.fileno())  # of what was opened, not of what the name is now
            if not stat.S_ISREG(info.st_mode):  # a pipe blocks, /dev/zero never ends
                raise ImageRejected("not a regular file (a pipe, socket or device)")
            if info.st_size > MAX_FILE_BYTES:
                raise ImageRejected(f"too large: {info.st_size / 2**20:.0f} MB file "
                                    f"(limit {MAX_FILE_BYTES // 2**20} MB)")
            return stream.read()
    except FileNotFoundError:
        raise ImageRejected("file not found (moved or deleted?)") from None
    except PermissionError:
        raise ImageRejected("permission denied: cannot read this file") from None
    except OSError as exc:  # strerror leaves out the path, which the row already shows
        raise ImageRejected(f"cannot read file: {exc.strerror}" if exc.strerror
                            else _one_line("cannot read file", exc)) from None


@functools.lru_cache(maxsize=1)
def _formats() -> tuple[str, ...]:
    """IMAGE_FORMATS this Pillow build has (AVIF, for one, came with Pillow 11.3)."""
    Image.init()
    return tuple(f for f in IMAGE_FORMATS if f in Image.OPEN)


def _check_pixel_budget(image: Image.Image) -> None:
    width, height = image.size
    if width <= 0 or height <= 0:
        raise ImageRejected(f"invalid image size {width}x{height}")
    if width * height > MAX_PIXELS:
        raise ImageRejected(_too_large(width, height))


def _too_large(width: int, height: int) -> str:
    return f"too large: {width}x{height} pixels (limit {MAX_PIXELS / 1e6:.0f} megapixels)"


def _too_large_for_pillow(data: bytes, exc: Exception) -> str:
    """The app's own reason for a picture Pillow's bomb check refused (about 90 megapixels and
    up) before its size reached ours: the size its header declares, read as ``Image.open`` reads
    it but without that check (nothing is decoded); else the pixel count Pillow names."""
    for fmt in _formats():
        factory, accept = Image.OPEN[fmt]
        try:
            known = not accept or accept(data[:16])
            if known and not isinstance(known, str):  # (a str: why its codec is missing)
                width, height = factory(io.BytesIO(data)).size
                if width * height > MAX_PIXELS:  # (else a frame inside it is the large part)
                    return _too_large(width, height)
                break
        except Exception:  # not this format (as Image.open tries the next), or hostile bytes
            continue
    pixels = re.search(r"\((\d+) pixels\)", str(exc))
    size = f": {int(pixels[1]) / 1e6:,.0f} megapixels in one image" if pixels else ""
    return f"too large{size} (limit {MAX_PIXELS / 1e6:.0f} megapixels)"


def _read_from_16_bits(image: Image.Image) -> bool:
    """True when Pillow decodes 16 bits per channel into an 8-bit mode: a 16-bit colour PNG,
    TIFF or SGI opens as "RGB" (or "RGBA", "CMYK", "L" for a grey SGI), and only the raw mode its
    decoder was told to read still says so. The wide modes ("I;16", "I", "F") keep every bit, and
    to_rgb names their scaling itself."""
    tile = getattr(image, "tile", None)  # an image made in memory has none
    if not tile or image.mode.startswith(("I", "F")):
        return False
    if tile[0].codec_name == "SGI16":  # an uncompressed 16-bit SGI: its args name no raw mode
        return True
    args = tile[0].args  # a PNG's is the raw mode ("RGB;16B"), a TIFF's a tuple starting with it
    rawmode = args[0] if isinstance(args, tuple) and args else args
    # 16 bits per channel, either byte order ("RGB;16B", "RGBA;16L", "LA;16B"); not a BMP's
    # "BGR;16", five or six bits a channel packed into 16
    return isinstance(rawmode, str) and rawmode.endswith((";16B", ";16L", ";16N"))


def _differences(image: Image.Image, frames: int, orientation: int, deep: bool) -> list[str]:
    """What, besides size and colour mode, keeps ``image`` from being the model's input as is,
    each as the words strict mode adds to its reason."""
    # The extra images of an MPO (a stereo pair's other eye, a phone photo's HDR gain map) are
    # not shown by a photo viewer either: its main image is the picture, used unchanged
    animated = frames > 1 and image.format != "MPO"
    return ([" with a transparent colour"] if "transparency" in image.info else []) \
        + ([f", {frames} frames"] if animated else []) \
        + ([f", EXIF orientation {orientation}"] if orientation != 1 else []) \
        + ([", 16 bits per channel"] if deep else [])


def _exif_orientation(image: Image.Image) -> int:
    """The EXIF orientation, 1 (upright) unless it is one that turns or mirrors (2..8): for any
    other value ImageOps.exif_transpose leaves the picture as it is, so nothing is changed."""
    try:
        orientation = int(image.getexif().get(0x0112, 1) or 1)
    except Exception:  # a broken EXIF block is not worth refusing the image for
        return 1
    return orientation if 2 <= orientation <= 8 else 1


def _apply_exif_rotation(image: Image.Image, orientation: int) -> Image.Image:
    if orientation == 1:
        return image
    try:
        return ImageOps.exif_transpose(image)
    except Exception:
        return image


def _one_line(prefix: str, exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return f"{prefix}: {text[:160]}"
