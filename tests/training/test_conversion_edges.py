"""Edges of the one preprocessing path: a 16-bit greyscale PNG's transparent colour, and the
reason a picture of any size over the limit is refused with."""
import struct
import zlib

import numpy as np
import pytest

from tests.hostile import png_of_zeros
from training.preprocessing import ImageRejected, Preprocessing, load_image


def grey16_png_with_colour_key(pixels: np.ndarray, key: int) -> bytes:
    """A 16-bit greyscale PNG (``pixels``: uint16, height x width) whose tRNS chunk makes the
    grey value ``key`` transparent (Pillow writes no such file, so it is put together here)."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(
            ">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    height, width = pixels.shape
    rows = b"".join(b"\0" + row.astype(">u2").tobytes() for row in pixels)
    return (b"\x89PNG\r\n\x1a\n"
            + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 16, 0, 0, 0, 0))
            + chunk(b"tRNS", struct.pack(">H", key)) + chunk(b"IDAT", zlib.compress(rows))
            + chunk(b"IEND", b""))


@pytest.mark.parametrize("pad_value, shade", [(255, "white"), (0, "black")])
def test_a_16_bit_greyscale_png_with_a_transparent_colour_is_placed_on_the_background(
        tmp_path, pad_value, shade):
    """As an 8-bit one is: its transparent pixels had been read as their stored grey (here
    a mid grey, 40000 of 65535), and the input check did not mention the transparency."""
    pixels = np.full((64, 64), 10000, np.uint16)
    pixels[:, :32] = 40000  # the left half: the transparent colour
    path = tmp_path / "scan16.png"
    path.write_bytes(grey16_png_with_colour_key(pixels, 40000))
    report = load_image(path, Preprocessing(pad_value=pad_value))
    assert report.mode == "I;16"
    assert report.array[16, 4].tolist() == [pad_value] * 3  # transparent: the background
    assert report.array[16, 28].tolist() == [39] * 3  # opaque: 10000/65535 of 255
    assert report.conversions[:2] == [
        "16-bit greyscale (I;16) scaled to 8-bit RGB",
        f"colour-key transparency (I;16) placed on a {shade} background"]
    assert not report.conforms


def test_a_16_bit_greyscale_png_without_that_colour_is_unchanged(tmp_path):
    pixels = np.full((32, 32), 65535, np.uint16)
    path = tmp_path / "white16.png"
    path.write_bytes(grey16_png_with_colour_key(pixels, 123))  # no pixel has the key
    report = load_image(path, Preprocessing(pad_value=0))
    assert report.array.min() == 255
    assert report.conversions[0] == "16-bit greyscale (I;16) scaled to 8-bit RGB"


@pytest.mark.parametrize("width, height", [
    (9000, 9000),  # 81 megapixels: under Pillow's own limit, ours refuses it
    (10000, 10000),  # 100: Pillow warns (its limit is about 89.5)
    (30000, 30000),  # 900: Pillow refuses outright (over twice its limit)
])
def test_too_large_says_the_size_for_every_size(tmp_path, width, height):
    """A 10,000 x 10,000 picture was "too large: decompression bomb protection", while a
    9,000 x 9,000 one said its size and the limit: every size now says both, from the header
    (nothing is decoded: a few hundred kB of zeros that would decode to gigabytes)."""
    path = tmp_path / "huge.png"
    path.write_bytes(png_of_zeros(width, height))
    with pytest.raises(ImageRejected) as refused:
        load_image(path)
    assert str(refused.value) == f"too large: {width}x{height} pixels (limit 64 megapixels)"


def test_a_frame_larger_than_its_picture_is_too_large_too_and_nothing_is_printed(recwarn):
    """A GIF of 10 x 10 whose one frame declares 12,000 x 12,000: Pillow's bomb check stops it
    while reading the header. The reason names the size; reading the header again for it must
    not print Pillow's warning (the check only warns: it is made an error around the read)."""
    gif = (b"GIF89a" + struct.pack("<HHBBB", 10, 10, 0, 0, 0)
           + b"," + struct.pack("<HHHHB", 0, 0, 12000, 12000, 0) + b"\x08\x02\x4c\x01\x00\x3b")
    with pytest.raises(ImageRejected) as refused:
        load_image(gif)
    assert str(refused.value) == "too large: 144 megapixels in one image (limit 64 megapixels)"
    assert not [w for w in recwarn.list if "decompression bomb" in str(w.message)]
