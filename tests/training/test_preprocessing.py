"""The one preprocessing path: every input becomes 32x32 RGB uint8, and says how."""
import io

import numpy as np
import pytest
from PIL import Image

from tests.hostile import mpo, tiff_16bit_colour
from training import preprocessing
from training.preprocessing import ImageRejected, Preprocessing, load_image


def save(image, tmp_path, name, **kwargs):
    path = tmp_path / name
    image.save(path, **kwargs)
    return path


def test_conforming_image_is_used_as_is(tmp_path):
    pixels = np.random.default_rng(1).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    report = load_image(save(Image.fromarray(pixels), tmp_path, "ok.png"))
    assert report.conforms and report.conversions == []
    assert np.array_equal(report.array, pixels)  # exactly what the model sees


@pytest.mark.parametrize("policy, expected_word", [("crop", "centre-cropped"),
                                                    ("pad", "padded"), ("squash", "squashed")])
def test_large_image_is_resized_by_the_chosen_policy(tmp_path, policy, expected_word):
    report = load_image(save(Image.new("RGB", (640, 480), "red"), tmp_path, "big.png"),
                        Preprocessing(resize=policy))
    assert report.array.shape == (32, 32, 3) and not report.conforms
    assert expected_word in report.conversions[-1] and "640×480" in report.conversions[-1]
    square = load_image(save(Image.new("RGB", (64, 64), "red"), tmp_path, "square.png"),
                        Preprocessing(resize=policy))  # nothing to crop, pad or squash
    assert square.conversions == ["64×64 resized to 32×32 (Lanczos)"]


def test_pad_policy_keeps_the_whole_picture_inside_grey_borders(tmp_path):
    report = load_image(save(Image.new("RGB", (64, 32), (0, 0, 0)), tmp_path, "wide.png"),
                        Preprocessing(resize="pad"))
    assert report.array[0, 16].tolist() == [255, 255, 255]  # top border is padding
    assert report.array[16, 16].tolist() == [0, 0, 0]  # the picture sits in the middle


@pytest.mark.parametrize("mode, word", [("L", "greyscale"), ("CMYK", "CMYK"), ("P", "palette"),
                                        ("RGBA", "transparency"), ("LA", "transparency"),
                                        ("1", "black-and-white")])
def test_colour_modes_are_converted_to_rgb_and_said(tmp_path, mode, word):
    image = Image.new("RGB", (32, 32), (10, 120, 240)).convert(mode)
    suffix = ".jpg" if mode == "CMYK" else ".png"
    if mode == "CMYK":
        image.save(tmp_path / f"m{suffix}", quality=95)
    else:
        image.save(tmp_path / f"m{suffix}")
    report = load_image(tmp_path / f"m{suffix}")
    assert report.array.shape == (32, 32, 3) and report.mode == mode
    assert any(word in step for step in report.conversions)


@pytest.mark.parametrize("size", [(6400, 10), (10, 6400)])
def test_pad_policy_keeps_a_sliver_of_a_very_long_picture(tmp_path, size):
    report = load_image(save(Image.new("RGB", size, (200, 0, 0)), tmp_path, "long.png"),
                        Preprocessing(resize="pad"))
    red = (report.array[..., 0] > 150) & (report.array[..., 1] < 60)
    assert 32 <= red.sum() <= 64  # one or two pixels thick across the whole input, not nothing
    assert report.array[0, 0].tolist() == [255, 255, 255]  # the rest is padding


def test_sixteen_bit_greyscale_is_scaled_not_clipped(tmp_path):
    array = np.full((32, 32), 65535 // 2, dtype=np.uint16)
    report = load_image(save(Image.fromarray(array), tmp_path, "deep.png"))
    assert 120 <= int(report.array[0, 0, 0]) <= 135  # mid-grey stays mid-grey
    assert "16-bit" in report.conversions[0]
    assert not any("16 bits per channel" in step for step in report.conversions)  # said once


@pytest.mark.parametrize("maxval, value, grey", [(65535, 200, 1), (65535, 40000, 156),
                                                 (4095, 4000, 249)])
def test_sixteen_bit_pgm_keeps_its_brightness(tmp_path, maxval, value, grey):
    path = tmp_path / "deep.pgm"
    path.write_bytes(f"P5\n32 32\n{maxval}\n".encode() + np.full(32 * 32, value, ">u2").tobytes())
    report = load_image(path)
    assert abs(int(report.array[0, 0, 0]) - grey) <= 1  # a dark picture stays dark
    assert "16-bit" in report.conversions[0]


def test_palette_transparency_is_composited_on_the_background(tmp_path):
    image = Image.new("P", (32, 32), 0)
    image.putpalette([0, 0, 0] * 256)
    image.info["transparency"] = 0
    report = load_image(save(image, tmp_path, "clear.png", transparency=0))
    assert report.array[0, 0].tolist() == [255, 255, 255]


@pytest.mark.parametrize("mode, key, colour", [("RGB", (10, 200, 30), (10, 200, 30)),
                                               ("L", 77, 77)])
def test_colour_key_transparency_is_composited_on_the_background(tmp_path, mode, key, colour):
    image = Image.new(mode, (32, 32), colour)
    image.paste(Image.new(mode, (16, 32), 0 if mode == "L" else (0, 0, 0)), (16, 0))
    report = load_image(save(image, tmp_path, "keyed.png", transparency=key))
    assert report.array[0, 0].tolist() == [255, 255, 255]  # the keyed colour is see-through
    assert report.array[0, 31].tolist() == [0, 0, 0]  # the rest is kept
    assert any("colour-key transparency" in step for step in report.conversions)
    assert not report.conforms  # changed pixels: not "exactly what the model takes"
    if mode == "RGB":
        with pytest.raises(ImageRejected, match="32×32 RGB with a transparent colour"):
            load_image(tmp_path / "keyed.png", strict=True)


def test_animated_gif_uses_the_first_frame(tmp_path):
    frames = [Image.new("RGB", (32, 32), c) for c in ((255, 0, 0), (0, 0, 255))]
    path = tmp_path / "anim.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=100)
    report = load_image(path)
    assert report.frames == 2 and "first frame of 2" in report.conversions[0]
    assert report.array[5, 5, 0] > 200 and report.array[5, 5, 2] < 50
    with pytest.raises(ImageRejected, match="image is 32×32 P, 2 frames;"):
        load_image(path, strict=True)  # an animation is more than the model's one picture


def test_an_mpo_jpeg_uses_its_main_image_and_is_not_called_animated(tmp_path):
    path = tmp_path / "stereo.jpg"  # a stereo pair or a phone photo with an HDR gain map
    path.write_bytes(mpo((32, 32)))
    report = load_image(path)
    assert report.format == "MPO" and report.frames == 2
    assert report.conversions == ["used the main image (the file holds 2 images)"]
    assert report.array[16, 16, 0] > 200 and report.array[16, 16, 2] < 50  # red main image
    assert report.conforms  # the main image is used unchanged, as a photo viewer shows it
    assert load_image(path, strict=True).conforms


def test_exif_rotation_is_applied_before_use(tmp_path):
    image = Image.new("RGB", (64, 32), (0, 0, 0))
    image.paste((255, 255, 255), (0, 0, 32, 32))  # left half white
    exif = Image.Exif()
    exif[0x0112] = 6  # stored rotated: display needs 90 degrees clockwise
    path = save(image, tmp_path, "rotated.jpg", exif=exif, quality=95)
    report = load_image(path, Preprocessing(resize="squash"))
    assert any("EXIF orientation 6" in s for s in report.conversions)
    assert report.original.size == (32, 64)  # upright: now taller than wide
    assert report.array[2, 16].mean() > 200 and report.array[29, 16].mean() < 60


def test_strict_mode_names_an_exif_orientation_as_the_difference(tmp_path):
    exif = Image.Exif()
    exif[0x0112] = 6
    path = save(Image.new("RGB", (32, 32), (90, 90, 90)), tmp_path, "turned.jpg", exif=exif)
    with pytest.raises(ImageRejected, match="image is 32×32 RGB, EXIF orientation 6;"):
        load_image(path, strict=True)


@pytest.mark.parametrize("orientation", [0, 9, 1000])
def test_an_exif_orientation_outside_2_to_8_turns_nothing_and_says_nothing(tmp_path,
                                                                          orientation):
    pixels = np.random.default_rng(2).integers(0, 256, (32, 64, 3), dtype=np.uint8)
    exif = Image.Exif()
    exif[0x0112] = orientation
    wide = load_image(save(Image.fromarray(pixels), tmp_path, "wide.png", exif=exif))
    assert wide.original.size == (64, 32)  # as ImageOps.exif_transpose leaves it
    assert not any("orientation" in step for step in wide.conversions)
    square = save(Image.fromarray(pixels[:, :32]), tmp_path, "square.png", exif=exif)
    assert load_image(square).conversions == []
    assert np.array_equal(load_image(square, strict=True).array, pixels[:, :32])


@pytest.mark.parametrize("content, reason", [
    (b"", "empty file"),
    (b"hello, I am a text file", "not an image"),
    (b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj", "not an image"),
])
def test_unusable_bytes_give_a_one_line_reason(tmp_path, content, reason):
    path = tmp_path / "fake.jpg"
    path.write_bytes(content)
    with pytest.raises(ImageRejected, match=reason) as caught:
        load_image(path)
    assert "\n" not in str(caught.value)


def test_truncated_image_is_refused(tmp_path):
    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), np.uint8)).save(
        buffer, "PNG")
    path = tmp_path / "cut.png"
    path.write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    with pytest.raises(ImageRejected, match="corrupt or truncated"):
        load_image(path)


def test_missing_file_and_too_many_pixels(tmp_path, monkeypatch):
    with pytest.raises(ImageRejected, match="not found"):
        load_image(tmp_path / "gone.png")
    monkeypatch.setattr(preprocessing, "MAX_PIXELS", 100)
    with pytest.raises(ImageRejected, match="too large: 32x32 pixels"):
        load_image(save(Image.new("RGB", (32, 32)), tmp_path, "big.png"))


def test_strict_mode_rejects_non_conforming_images_with_a_reason(tmp_path):
    path = save(Image.new("RGB", (64, 64)), tmp_path, "big.png")
    with pytest.raises(ImageRejected, match="strict 32×32: image is 64×64 RGB"):
        load_image(path, strict=True)
    assert load_image(save(Image.new("RGB", (32, 32)), tmp_path, "ok.png"), strict=True).conforms


def test_policy_round_trips_through_the_sidecar_dict():
    policy = Preprocessing(resize="pad", pad_value=0)
    assert Preprocessing.from_dict(policy.to_dict()) == policy
    with pytest.raises(ValueError):
        Preprocessing.from_dict({"resize": "stretch-wildly"})


def test_postscript_named_like_a_photo_is_refused_without_running_ghostscript(tmp_path,
                                                                               monkeypatch):
    import subprocess

    from training.preprocessing import ImageRejected, load_image

    def never(*args, **kwargs):
        raise AssertionError("an external program was started for a dropped file")

    monkeypatch.setattr(subprocess, "check_call", never)
    monkeypatch.setattr(subprocess, "Popen", never)
    evil = tmp_path / "holiday.jpg"
    evil.write_bytes(b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 32 32\n{ } loop\n")
    with pytest.raises(ImageRejected, match="not an image"):
        load_image(evil)


def test_avif_photos_are_found_in_folders_when_pillow_reads_them(tmp_path):
    from PIL import features

    from training.predict import iter_image_files
    from training.preprocessing import load_image
    if not features.check("avif"):
        pytest.skip("this Pillow has no AVIF codec")
    Image.new("RGB", (40, 30), (10, 200, 30)).save(tmp_path / "leaf.avif")
    assert [p.name for p in iter_image_files(tmp_path)] == ["leaf.avif"]
    assert load_image(tmp_path / "leaf.avif").array.shape == (32, 32, 3)


@pytest.mark.parametrize("colour_type, channels, mode", [(2, 3, "RGB"), (6, 4, "RGBA"),
                                                        (4, 2, "RGBA")])  # Pillow: LA as RGBA
def test_a_16_bit_colour_png_is_reported_as_converted_to_8_bits(colour_type, channels, mode):
    import struct
    import zlib

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(
            ">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    pixels = (np.arange(32 * 32 * channels).reshape(32, 32, channels) * 60).astype(">u2")
    raw = b"".join(b"\x00" + pixels[y].tobytes() for y in range(32))
    header = struct.pack(">IIBBBBB", 32, 32, 16, colour_type, 0, 0, 0)
    png = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw))
           + chunk(b"IEND", b""))
    report = load_image(png, name="deep.png")
    assert not report.conforms and report.mode == mode
    assert report.conversions[0] == "16 bits per channel reduced to 8 (the model takes 8-bit RGB)"
    with pytest.raises(ImageRejected, match=f"image is 32×32 {mode}, 16 bits per channel;"):
        load_image(png, strict=True)


@pytest.mark.parametrize("channels, mode", [(3, "RGB"), (4, "RGBA")])
@pytest.mark.parametrize("byteorder", ["<", ">"])
def test_a_16_bit_colour_tiff_is_reported_as_converted_to_8_bits(channels, mode, byteorder):
    tiff = tiff_16bit_colour(channels, byteorder=byteorder)  # Pillow reads it as 8-bit RGB(A)
    report = load_image(tiff, name="deep.tif")
    assert not report.conforms and report.mode == mode
    assert report.conversions[0] == "16 bits per channel reduced to 8 (the model takes 8-bit RGB)"
    assert report.array[0, 0].tolist() == [1000 >> 8, 30000 >> 8, 255]  # the high bytes
    with pytest.raises(ImageRejected, match=f"image is 32×32 {mode}, 16 bits per channel;"):
        load_image(tiff, strict=True)


@pytest.mark.parametrize("channels, mode", [(1, "L"), (3, "RGB")])
def test_a_16_bit_sgi_is_reported_as_converted_to_8_bits(channels, mode):
    import struct

    dimension = 2 if channels == 1 else 3
    header = struct.pack(">hbbHHHHll", 474, 0, 2, dimension, 32, 32, channels, 0, 65535)  # 16-bit
    sgi = header.ljust(512, b"\0") + np.full(32 * 32 * channels, 40000, ">u2").tobytes()
    report = load_image(sgi, name="deep.sgi")  # Pillow reads it as 8-bit "L" or "RGB"
    assert report.mode == mode and not report.conforms
    assert report.conversions[0] == "16 bits per channel reduced to 8 (the model takes 8-bit RGB)"
    assert report.array[0, 0].tolist() == [40000 >> 8] * 3


@pytest.mark.parametrize("size", [(320, 210), (210, 320), (33, 32), (100, 99), (31, 7), (64, 63),
                                  (1000, 3), (5, 700), (32, 32), (50, 50)])
def test_pad_places_the_picture_where_pillow_does_and_the_saliency_map_finds_it(tmp_path, size):
    from PIL import ImageOps

    from training.conversions import pad_box
    from training.saliency import to_original
    picture = Image.new("RGB", size, (255, 255, 255))
    x0, y0, w, h = pad_box(*size, (32, 32))
    if min(w, h) > 1:  # a sliver keeps one pixel where Pillow would keep none
        pillow = np.asarray(ImageOps.pad(picture, (32, 32), color=(0, 0, 0)))
        rows, cols = np.nonzero(pillow[..., 0])
        assert (cols.min(), rows.min(), np.ptp(cols) + 1, np.ptp(rows) + 1) == (x0, y0, w, h)
    path = tmp_path / "white.png"
    picture.save(path)
    ours = load_image(path, Preprocessing(resize="pad", pad_value=0)).array[..., 0]
    rows, cols = np.nonzero(ours)
    assert (cols.min(), rows.min(), np.ptp(cols) + 1, np.ptp(rows) + 1) == (x0, y0, w, h)
    # evidence exactly on the picture's pixels covers the whole original, no border in it
    evidence = (ours > 0).astype(np.float32)
    assert to_original(evidence, size, Preprocessing(resize="pad")).min() > 0.99


def test_an_8_bit_greyscale_stored_as_integers_is_not_called_16_bit():
    """A 32-bit integer TIFF whose values fit 8 bits (what some tools write) is converted as it
    is; only values above 255 are 16-bit greyscale scaled down."""
    for values, said in (([[0, 100], [200, 255]], "greyscale stored as integers (I)"),
                         ([[0, 1000], [20000, 65535]], "16-bit greyscale (I) scaled")):
        buffer = io.BytesIO()
        Image.fromarray(np.array(values, np.int32), "I").save(buffer, "TIFF")
        report = load_image(buffer.getvalue())
        assert report.conversions[0].startswith(said), report.conversions


def test_a_16_bit_per_pixel_bmp_is_not_16_bits_per_channel():
    """An RGB565 BMP packs five or six bits a channel into 16 (Pillow's raw mode "BGR;16"):
    nothing is reduced, and strict mode takes it as the model's input."""
    import struct
    row = b"".join(struct.pack("<H", (x << 11) | ((x * 2) << 5) | x) for x in range(32))
    pixels = row * 32
    header = struct.pack("<IiiHHIIiiII", 40, 32, 32, 1, 16, 3, len(pixels), 2835, 2835, 0, 0)
    offset = 14 + 40 + 12
    data = (b"BM" + struct.pack("<IHHI", offset + len(pixels), 0, 0, offset) + header
            + struct.pack("<III", 0xF800, 0x07E0, 0x001F) + pixels)
    report = load_image(data, strict=True)
    assert report.conforms and report.conversions == []
