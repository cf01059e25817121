"""Draw the application icon once and derive every size and format from that one source.

    python resources/make_icons.py      (from the project's .venv; Pillow only)

Writes ``resources/icon.png`` (1024 px, the source), ``resources/icons/icon-N.png`` for
N in 16..512 (the window icon and the Linux hicolor theme), ``resources/icon.ico`` (Windows,
16-256 px) and ``resources/icon.icns`` (macOS, 16-1024 px). The drawing is a 4x4 block of
"pixels" (the 32x32 world the model sees) under a lens; small sizes are downscaled from the
source with a Lanczos filter, never drawn separately, so all sizes stay the same picture.
"""
from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw

HERE = Path(__file__).resolve().parent
SIZES = (16, 24, 32, 48, 64, 128, 256, 512)
SOURCE = 1024
# Ten colours, one per CIFAR-10 class, as a nod to what the bundled model knows.
PALETTE = [(239, 83, 80), (255, 167, 38), (255, 213, 79), (156, 204, 101), (38, 166, 154),
           (41, 182, 246), (92, 107, 192), (171, 71, 188), (236, 64, 122), (141, 110, 99)]


def draw_source(size: int = SOURCE) -> Image.Image:
    """The 1024 px master: rounded dark tile, a 4x4 pixel grid, a lens over one corner."""
    image = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    unit = size / 64
    draw.rounded_rectangle((2 * unit, 2 * unit, 62 * unit, 62 * unit), radius=12 * unit,
                           fill=(33, 43, 61, 255))
    cell, gap, origin = 10 * unit, 1.5 * unit, 9.75 * unit  # the grid centred on the tile
    for row in range(4):
        for col in range(4):
            x0 = origin + col * (cell + gap)
            y0 = origin + row * (cell + gap)
            colour = PALETTE[(row * 3 + col * 7) % len(PALETTE)]
            draw.rounded_rectangle((x0, y0, x0 + cell, y0 + cell), radius=1.5 * unit,
                                   fill=colour + (255,))
    # The lens: a ring with a handle over the lower right of the grid, drawn on its own layer
    # and composited, so the glass tints the pixels under it instead of replacing them.
    lens = Image.new("RGBA", image.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(lens)
    cx, cy, r = 40 * unit, 40 * unit, 11 * unit
    draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=(255, 255, 255, 70),
                 outline=(255, 255, 255, 255), width=round(3.2 * unit))
    draw.line((cx + 0.72 * r, cy + 0.72 * r, 56 * unit, 56 * unit), fill=(255, 255, 255, 255),
              width=round(5 * unit))
    return Image.alpha_composite(image, lens)


def main() -> int:
    source = draw_source()
    source.save(HERE / "icon.png")
    (HERE / "icons").mkdir(exist_ok=True)
    for n in SIZES:
        source.resize((n, n), Image.Resampling.LANCZOS).save(HERE / "icons" / f"icon-{n}.png")
    source.save(HERE / "icon.ico", sizes=[(n, n) for n in (16, 24, 32, 48, 64, 128, 256)])
    source.save(HERE / "icon.icns")
    print(f"wrote icon.png, icons/icon-{{{','.join(map(str, SIZES))}}}.png, icon.ico, icon.icns "
          f"in {HERE}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
