"""Each conversion of a picture to the model's input, applied and said in words: to RGB
(palette, transparency on a background, greyscale, 16-bit, CMYK...) and to the input size (crop,
pad or squash). :func:`training.preprocessing.prepare` calls them in order."""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from PIL import Image, ImageOps

if TYPE_CHECKING:
    from .preprocessing import Preprocessing


def to_rgb(image: Image.Image, background: int, steps: list[str]) -> Image.Image:
    mode = image.mode
    if mode in ("RGB", "L", "1") and "transparency" in image.info:  # a PNG colour key (tRNS)
        canvas = Image.new("RGBA", image.size, (background,) * 3 + (255,))
        canvas.alpha_composite(image.convert("RGBA"))
        steps.append(_colour_key(mode, background))
        return canvas.convert("RGB")
    if mode == "RGB":
        return image
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        array = np.asarray(image, dtype=np.float64)
        # Pillow reads a 16-bit PGM as "I" already scaled to 0-65535: a dark one is still dark
        wide = mode.startswith("I;16") or getattr(image, "format", None) == "PPM"
        top = 65535.0 if wide or array.max(initial=0) > 255 else 255.0
        grey = np.clip(np.round(array * (255.0 / top)), 0, 255).astype(np.uint8)
        steps.append(f"16-bit greyscale ({mode}) scaled to 8-bit RGB" if top > 255 else
                     f"greyscale stored as integers ({mode}) converted to 8-bit RGB")
        key = image.info.get("transparency")  # a 16-bit PNG's colour key: a 16-bit grey value
        if isinstance(key, int) and not isinstance(key, bool):
            grey[array == key] = background
            steps.append(_colour_key(mode, background))
        return Image.fromarray(grey, "L").convert("RGB")
    if mode == "F":
        with np.errstate(invalid="ignore"):  # a float TIFF may hold NaNs (signalling ones
            # warn on any cast) and infinities: mapped to black and white, not left undefined
            values = np.nan_to_num(np.asarray(image, dtype=np.float64), nan=0.0, posinf=255.0,
                                   neginf=0.0)
        grey = np.clip(values, 0, 255).astype(np.uint8)
        steps.append("32-bit float greyscale clipped to 8-bit RGB")
        return Image.fromarray(grey, "L").convert("RGB")
    if mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
        steps.append("palette image with transparency expanded")
        mode = "RGBA"
    if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = image.convert("RGBA")
        canvas = Image.new("RGBA", rgba.size, (background,) * 3 + (255,))
        canvas.alpha_composite(rgba)
        steps.append(f"transparency ({mode}) placed on a {_shade(background)} background")
        return canvas.convert("RGB")
    words = {"P": "palette colours", "L": "greyscale", "1": "black-and-white",
             "CMYK": "CMYK", "YCbCr": "YCbCr", "LAB": "Lab", "HSV": "HSV"}
    word = words.get(mode, mode)
    steps.append(f"converted {word}{'' if word == mode else f' ({mode})'} to RGB")
    return image.convert("RGB")


def _colour_key(mode: str, background: int) -> str:
    return f"colour-key transparency ({mode}) placed on a {_shade(background)} background"


def resize(image: Image.Image, policy: Preprocessing, steps: list[str]) -> Image.Image:
    target = tuple(policy.size)
    if image.size == target:
        return image
    width, height = image.size
    same_shape = width * target[1] == height * target[0]  # nothing to crop, pad or squash
    if same_shape:
        image = image.resize(target, Image.Resampling.LANCZOS)
        how = "resized"
    elif policy.resize == "crop":
        image = ImageOps.fit(image, target, method=Image.Resampling.LANCZOS)
        how = f"centre-cropped to the model's {_ratio(*target)} shape and resized"
    elif policy.resize == "pad":
        x0, y0, w, h = pad_box(width, height, target)
        padded = Image.new("RGB", target, (policy.pad_value,) * 3)
        padded.paste(image.resize((w, h), Image.Resampling.LANCZOS), (x0, y0))
        image = padded
        how = f"fitted inside and padded with {_shade(policy.pad_value)}"
    else:
        image = image.resize(target, Image.Resampling.LANCZOS)
        how = "squashed (aspect ratio not kept)"
    steps.append(f"{width}×{height} {how} to {target[0]}×{target[1]} (Lanczos)")
    return image


def _ratio(width: int, height: int) -> str:
    return "square" if width == height else f"{width}:{height}"



def pad_box(width: int, height: int, target: tuple[int, int]) -> tuple[int, int, int, int]:
    """(x, y, w, h) of the picture inside the ``pad`` policy's ``target`` (width, height) input:
    where ``ImageOps.pad`` puts it (its size and its rounding), except that a sliver (over 64:1
    into 32x32) keeps one pixel instead of shrinking to nothing. Saliency maps use it too."""
    tw, th = target
    w, h = tw, th
    if width * th > height * tw:  # wider than the input: bands above and below
        h = max(1, round(height / width * tw))
    elif width * th < height * tw:
        w = max(1, round(width / height * th))
    return round((tw - w) * 0.5), round((th - h) * 0.5), w, h


def crop_box(width: int, height: int, target: tuple[int, int]) -> tuple[int, int, int, int]:
    """(x, y, w, h) of the centred part of a ``width`` x ``height`` picture that the ``crop``
    policy keeps for a ``target`` (width, height) input: the same aspect ratio as the input."""
    tw, th = target
    if width * th > height * tw:  # wider than the model input: the sides are cut
        cw, ch = round(height * tw / th), height
    else:
        cw, ch = width, round(width * th / tw)
    return (width - cw) // 2, (height - ch) // 2, cw, ch


def _shade(value: int) -> str:
    """A grey level 0-255 in words: "white", "black" or "grey 128 of 255"."""
    return {255: "white", 0: "black"}.get(int(value), f"grey {int(value)} of 255")
