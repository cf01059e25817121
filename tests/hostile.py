"""A generated corpus of hostile and awkward inputs, shared by the loader, CLI and window tests.

:func:`make_corpus` writes every case into a folder and returns what each must yield: ``"ok"``
(classified, with the given words among its conversions) or ``"refused"`` (a one-line reason that
contains the given words). Generation takes well under a second: the decompression bombs are
written chunk by chunk (a 1-bit PNG of zeros), not drawn in memory.
"""
from __future__ import annotations

import errno
import io
import os
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

NON_UTF8_NAME = b"bad\xff name.png"  # not valid UTF-8: os.fsdecode turns \xff into '\udcff'


@dataclass(frozen=True)
class Expect:
    """What one corpus file must yield: ``outcome`` "ok" or "refused", and words that must appear
    in one of its conversions (ok) or in its reason (refused)."""

    outcome: str
    words: tuple[str, ...] = ()


def ok(*words: str) -> Expect:
    return Expect("ok", words)


def refused(*words: str) -> Expect:
    return Expect("refused", words)


def noise(height: int, width: int, channels: int = 3, seed: int = 0) -> np.ndarray:
    shape = (height, width, channels) if channels > 1 else (height, width)
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


def encoded(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def png_of_zeros(width: int, height: int) -> bytes:
    """A valid 1-bit greyscale PNG of ``width`` x ``height`` black pixels, compressed row block
    by row block: a few hundred kB on disk that decode to ``width * height`` pixels."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(
            ">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    row = b"\x00" * (1 + (width + 7) // 8)  # filter byte, then the packed bits
    block_rows = 1000
    compressor, parts = zlib.compressobj(1), []  # level 1: 3x faster than 9 on zeros
    for start in range(0, height, block_rows):
        parts.append(compressor.compress(row * min(block_rows, height - start)))
    parts.append(compressor.flush())
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)  # 1 bit, greyscale
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", b"".join(parts))
            + chunk(b"IEND", b""))


def animated(fmt: str) -> bytes:
    frames = [Image.new("RGB", (32, 32), c) for c in ((220, 20, 20), (20, 20, 220))]
    return encoded(frames[0], fmt, save_all=True, append_images=frames[1:], duration=100, loop=0)


def exif_rotated_jpeg() -> bytes:
    """64x32 stored sideways with EXIF orientation 6: upright it is 32 wide and 64 tall."""
    image = Image.new("RGB", (64, 32), (0, 0, 0))
    image.paste((255, 255, 255), (0, 0, 32, 32))
    exif = Image.Exif()
    exif[0x0112] = 6
    return encoded(image, "JPEG", exif=exif, quality=95)


def tiff_16bit_colour(channels: int = 3, size: int = 32, byteorder: str = "<") -> bytes:
    """An uncompressed RGB (3 channels) or RGBA (4) TIFF with 16 bits per channel, written by
    hand since Pillow cannot write one; it reads it as 8-bit "RGB" or "RGBA". Every pixel is
    (1000, 30000, 65535[, 65535]): a dark red, a mid green and a full blue, opaque."""
    pixels = np.empty((size, size, channels), byteorder + "u2")
    pixels[...] = (1000, 30000, 65535, 65535)[:channels]
    data = pixels.tobytes()
    shorts = {256: size, 257: size, 259: 1, 262: 2, 277: channels, 278: size, 284: 1}
    bits_at = 8 + 2 + (len(shorts) + 3) * 12 + 4  # bits per sample follow the directory
    data_at = bits_at + 2 * channels
    fields = [struct.pack(byteorder + "HHIHH", tag, 3, 1, value, 0)  # value in the first 2 bytes
              for tag, value in shorts.items()]
    fields += [struct.pack(byteorder + "HHII", 258, 3, channels, bits_at),
               struct.pack(byteorder + "HHII", 273, 4, 1, data_at),
               struct.pack(byteorder + "HHII", 279, 4, 1, len(data))]
    fields.sort(key=lambda field: struct.unpack(byteorder + "H", field[:2]))  # tags ascending
    header = (b"II*\x00" if byteorder == "<" else b"MM\x00*") + struct.pack(byteorder + "I", 8)
    return (header + struct.pack(byteorder + "H", len(fields)) + b"".join(fields)
            + struct.pack(byteorder + "I", 0) + struct.pack(byteorder + "H" * channels,
                                                            *[16] * channels) + data)


def mpo(size: tuple[int, int] = (32, 32)) -> bytes:
    """A JPEG holding a second image, as Pillow reads a stereo pair or a phone photo with an HDR
    gain map: format MPO, 2 "frames". The main image is red, the extra one blue."""
    main = Image.new("RGB", size, (220, 20, 20))
    extra = Image.new("RGB", (size[0] // 2 or 1, size[1] // 2 or 1), (20, 20, 220))
    return encoded(main, "MPO", save_all=True, append_images=[extra], quality=95)


def palette_with_transparency() -> bytes:
    image = Image.new("P", (40, 40), 0)
    image.putpalette([0, 0, 0, 200, 30, 30] + [0, 0, 0] * 254)
    image.paste(1, (10, 10, 30, 30))
    return encoded(image, "PNG", transparency=0)


def float_with_nan() -> Image.Image:
    """A 32-bit float greyscale image holding NaN and infinities among ordinary values."""
    values = np.linspace(-50.0, 300.0, 32 * 32, dtype=np.float32).reshape(32, 32)
    values[0, :4] = (np.nan, np.inf, -np.inf, np.nan)
    return Image.fromarray(values, "F")


def image_files() -> dict[str, tuple[bytes, Expect]]:
    """Every single-file case: name -> (content, expectation)."""
    rgb = Image.fromarray(noise(48, 64))
    jpeg, png, gif = encoded(rgb, "JPEG"), encoded(rgb, "PNG"), encoded(rgb, "GIF")
    sixteen = Image.fromarray((noise(40, 40, 1).astype(np.uint16) * 257))
    return {
        "empty.jpg": (b"", refused("empty file")),
        "truncated.jpg": (jpeg[: len(jpeg) // 2], refused("truncated")),
        "truncated.png": (png[: len(png) // 2], refused("truncated")),
        "truncated.gif": (gif[: len(gif) // 2], refused("truncated")),
        "text.jpg": (b"Dear user,\nthis is a letter, not a picture.\n", refused("not an image")),
        "document.jpg": (b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog >>\nendobj\n"
                         b"trailer\n<< /Root 1 0 R >>\n%%EOF\n", refused("not an image")),
        # Pillow's own limit (2 x MAX_IMAGE_PIXELS) trips inside Image.open, from the header
        "bomb-30000x30000.png": (png_of_zeros(30000, 30000), refused("too large")),
        # under Pillow's limit, over our MAX_PIXELS budget: refused from the header too
        "bomb-9000x8000.png": (png_of_zeros(9000, 8000), refused("too large: 9000x8000 pixels")),
        "tiny-1x1.png": (encoded(Image.new("RGB", (1, 1), (200, 30, 30)), "PNG"), ok("1×1")),
        # A legitimate, tiny file; the resize policy decides what of it the model sees, and says so
        "wide-20000x3.png": (encoded(Image.fromarray(noise(3, 20000)), "PNG"), ok("20000×3")),
        "tall-3x20000.png": (encoded(Image.fromarray(noise(20000, 3)), "PNG"), ok("3×20000")),
        "cmyk.jpg": (encoded(rgb.convert("CMYK"), "JPEG", quality=90), ok("CMYK")),
        "sixteen-bit.png": (encoded(sixteen, "PNG"), ok("16-bit")),
        "sixteen-bit.tif": (encoded(sixteen, "TIFF"), ok("16-bit")),
        "sixteen-bit-rgb.tif": (tiff_16bit_colour(), ok("16 bits per channel reduced to 8")),
        "palette-transparent.png": (palette_with_transparency(), ok("palette", "transparency")),
        "grey-alpha-LA.png": (encoded(rgb.convert("LA"), "PNG"), ok("transparency (LA)")),
        "rgba.png": (encoded(rgb.convert("RGBA"), "PNG"), ok("transparency (RGBA)")),
        "animated.gif": (animated("GIF"), ok("first frame of 2")),
        "animated.webp": (animated("WEBP"), ok("first frame of 2")),
        "animated-apng.png": (animated("PNG"), ok("first frame of 2")),
        "stereo-or-gain-map.jpg": (mpo((64, 48)), ok("main image (the file holds 2 images)")),
        "exif-rotated.jpg": (exif_rotated_jpeg(), ok("rotated upright", "orientation 6")),
        "greyscale.jpg": (encoded(rgb.convert("L"), "JPEG"), ok("greyscale")),
        "float-nan.tif": (encoded(float_with_nan(), "TIFF"), ok("32-bit float")),
        "png-named.jpg": (png, ok("64×48")),  # the content decides, not the suffix
        "conforming.png": (encoded(Image.fromarray(noise(32, 32)), "PNG"), ok()),
    }


def make_corpus(folder: Path) -> dict[str, Expect]:
    """Write the corpus into ``folder``; return ``{name relative to folder: Expect}``.

    Besides the image files: a file whose name is not valid UTF-8, a dangling link, two links to
    each other, a FIFO named like an image (reading it would block forever), and a ``loop/``
    folder holding one image and two symbolic links back up the tree. Names are as
    ``os.fsdecode`` gives them (surrogate escapes for bytes that are not UTF-8).
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    expected = {}
    for name, (content, expect) in image_files().items():
        (folder / name).write_bytes(content)
        expected[name] = expect
    with open(os.path.join(os.fsencode(folder), NON_UTF8_NAME), "wb") as out:
        out.write(encoded(Image.new("RGB", (32, 32), (30, 200, 30)), "PNG"))
    expected[os.fsdecode(NON_UTF8_NAME)] = ok()
    os.symlink(folder / "moved-away.png", folder / "dangling-link.png")
    expected["dangling-link.png"] = refused("not found")
    os.symlink("link-loop-b.png", folder / "link-loop-a.png")  # a -> b -> a
    os.symlink("link-loop-a.png", folder / "link-loop-b.png")
    expected["link-loop-a.png"] = expected["link-loop-b.png"] = refused("symbolic links")
    os.mkfifo(folder / "pipe.png")
    expected["pipe.png"] = refused("not a regular file")
    loop = folder / "loop"
    loop.mkdir()
    (loop / "inside.png").write_bytes(encoded(Image.new("RGB", (32, 32), (30, 30, 200)), "PNG"))
    os.symlink(".", loop / "self")  # loop/self/self/self/... forever if followed
    os.symlink("..", loop / "parent")  # back to the corpus folder
    expected["loop/inside.png"] = ok()
    return expected


def make_many(folder: Path, count: int = 20_000) -> list[Path]:
    """A folder of ``count`` image files: hard links to one 2x2 PNG (one inode, fast to make)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    first = folder / "00000.png"
    first.write_bytes(encoded(Image.new("RGB", (2, 2), (120, 60, 200)), "PNG"))
    paths = [first]
    for i in range(1, count):
        path = folder / f"{i:05d}.png"
        os.link(first, path)
        paths.append(path)
    return paths


def counting(calls: list, target: str):
    """``target`` ("os.stat") that also notes each call in ``calls``: work counted, not timed."""
    module, name = target.rsplit(".", 1)
    real = getattr(__import__(module), name)
    return lambda *args, **kwargs: (calls.append(target), real(*args, **kwargs))[1]


def deny_reading(monkeypatch, path: Path) -> None:
    """Make opening ``path`` fail with EACCES, as ``chmod 000`` does for anyone but root.

    Tests often run as root, where ``chmod`` does not stop reads; the loader opens files with
    ``os.open``, so refusing that one path there is what an unreadable file looks like to it.
    """
    path.chmod(0)
    if os.geteuid() != 0:
        return
    real_open, denied = os.open, os.fspath(path)

    def guarded(file, flags, *args, **kwargs):
        if os.fspath(file) == denied:
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), denied)
        return real_open(file, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", guarded)


def fuzz_seeds() -> dict[str, bytes]:
    """Small valid files of every format and mode the loader treats specially, to mutate."""
    rgb = Image.fromarray(noise(12, 16))
    deep = Image.fromarray(noise(8, 8, 1).astype(np.uint16) * 257)
    exif = Image.Exif()
    exif[0x0112] = 6
    return {
        "png": encoded(rgb, "PNG"), "png-palette": palette_with_transparency(),
        "png-16bit": encoded(deep, "PNG"), "png-LA": encoded(rgb.convert("LA"), "PNG"),
        "apng": animated("PNG"), "gif": animated("GIF"), "webp": animated("WEBP"),
        "webp-lossless": encoded(rgb, "WEBP", lossless=True),
        "jpeg-exif": encoded(rgb, "JPEG", exif=exif),
        "jpeg-cmyk": encoded(rgb.convert("CMYK"), "JPEG"),
        "jpeg-progressive": encoded(rgb, "JPEG", progressive=True),
        "tiff-16bit": encoded(deep, "TIFF"), "tiff-float": encoded(float_with_nan(), "TIFF"),
        "tiff-lzw": encoded(rgb, "TIFF", compression="tiff_lzw"),
        "tiff-rgb-16bit": tiff_16bit_colour(size=8), "mpo": mpo((16, 12)),
        "bmp": encoded(rgb, "BMP"), "ico": encoded(rgb, "ICO"), "tga": encoded(rgb, "TGA"),
        "ppm": encoded(rgb, "PPM"), "bomb-header": png_of_zeros(9000, 8000)[:80],
    }


def mutate(seed: bytes, edits) -> bytes:
    """Apply ``(kind, position, blob)`` edits: flip a bit, overwrite, insert, delete a run,
    truncate, write 0x00000000 or 0xFFFFFFFF (sizes, counts, offsets), or duplicate a run."""
    data = bytearray(seed)
    for kind, position, blob in edits:
        if not data:
            data = bytearray(blob)
            continue
        i = position % len(data)
        if kind == 0:
            data[i] ^= 1 << (position % 8)
        elif kind == 1:
            data[i:i + len(blob)] = blob
        elif kind == 2:
            data[i:i] = blob
        elif kind == 3:
            del data[i:i + 1 + position % 64]
        elif kind == 4:
            del data[i:]
        elif kind == 5:
            data[i:i + 4] = b"\xff\xff\xff\xff" if position % 2 else b"\x00\x00\x00\x00"
        else:
            j = (position * 7919) % len(data)
            data[i:i] = data[j:j + 1 + position % 256]
    return bytes(data)


def peak_bytes(action):
    """``action()``'s result and the most memory Python held while it ran (a file that lies
    about its size must be refused before it is read into memory)."""
    import tracemalloc
    tracemalloc.start()
    try:
        result = action()
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
