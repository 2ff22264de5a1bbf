"""Draw the app's PNG icons (static/icons/) from the same design as static/icon.svg: a green rounded
square with a white tick. Run it again only if the design changes: `.venv/bin/python scripts/icons.py`."""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw

GREEN = (11, 110, 79, 255)
WHITE = (255, 255, 255, 255)
OUT = Path(__file__).resolve().parent.parent / "static" / "icons"
SCALE = 4  # drawn large, then shrunk: smooth edges without an SVG renderer


def icon(size: int, *, maskable: bool) -> Image.Image:
    big = size * SCALE
    image = Image.new("RGBA", (big, big), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    if maskable:
        # Full bleed: the launcher cuts its own shape; the tick stays inside the 80 % safe zone.
        draw.rectangle((0, 0, big, big), fill=GREEN)
        inset, unit = big * 0.2, big * 0.6 / 32
    else:
        draw.rounded_rectangle((0, 0, big - 1, big - 1), radius=big * 6 / 32, fill=GREEN)
        inset, unit = 0.0, big / 32
    points = [(inset + x * unit, inset + y * unit) for x, y in ((9, 16.5), (14, 21.5), (23, 10.5))]
    width = round(3.5 * unit)
    draw.line(points, fill=WHITE, width=width, joint="curve")
    for x, y in (points[0], points[-1]):  # round caps
        draw.ellipse((x - width / 2, y - width / 2, x + width / 2, y + width / 2), fill=WHITE)
    return image.resize((size, size), Image.Resampling.LANCZOS)


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    icon(192, maskable=False).save(OUT / "icon-192.png", optimize=True)
    icon(512, maskable=False).save(OUT / "icon-512.png", optimize=True)
    icon(512, maskable=True).save(OUT / "icon-maskable-512.png", optimize=True)


if __name__ == "__main__":
    main()
