"""Chromium's fake camera for the kiosk: a video (YUV4MPEG2, which Chromium plays in a loop to getUserMedia)
made from personal cards exactly as qr/cards.py prints them, photographed by Chromium itself."""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

import PIL.Image
from playwright.sync_api import Browser

from qr.cards import CARD_H, CARD_W, LEFT, TOP, Card, render_card_sheet_svg

PX_PER_MM = 8  # about what a phone camera sees of a card held 15-20 cm away
FRAME = (640, 480)
GREY = (96, 96, 96)  # a table top around the card


def camera_args(video: Path) -> list[str]:
    return [
        "--use-fake-ui-for-media-stream",  # no permission prompt
        "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-video-capture={video}",
    ]


def card_photos(browser: Browser, cards: Sequence[Card]) -> list[PIL.Image.Image]:
    """Each card of a printed sheet, as Chromium renders the sheet's SVG."""
    photos = []
    page = browser.new_page(viewport={"width": int(210 * PX_PER_MM), "height": int(297 * PX_PER_MM)})
    for card in cards:
        sheet = render_card_sheet_svg([card], heading="Thẻ điểm danh")[0]
        page.set_content(
            "<style>html,body{margin:0}svg{display:block}</style>"
            + sheet.replace("<svg ", f'<svg style="width:{210 * PX_PER_MM}px;height:{297 * PX_PER_MM}px" ', 1)
        )
        shot = page.screenshot(
            clip={
                "x": LEFT * PX_PER_MM,
                "y": TOP * PX_PER_MM,
                "width": CARD_W * PX_PER_MM,
                "height": CARD_H * PX_PER_MM,
            }
        )
        photos.append(PIL.Image.open(io.BytesIO(shot)).convert("RGB"))
    page.close()
    return photos


def frame_of(photo: PIL.Image.Image | None) -> PIL.Image.Image:
    """One camera frame: the card in the middle of a table top (or the table top alone)."""
    frame = PIL.Image.new("RGB", FRAME, GREY)
    if photo is not None:
        frame.paste(photo, ((FRAME[0] - photo.width) // 2, (FRAME[1] - photo.height) // 2))
    return frame


def write_video(path: Path, frames: Sequence[PIL.Image.Image], fps: int = 10) -> Path:
    """Frames as a 4:2:0 YUV4MPEG2 file."""
    width, height = frames[0].size
    with path.open("wb") as out:
        out.write(f"YUV4MPEG2 W{width} H{height} F{fps}:1 Ip A1:1 C420jpeg\n".encode())
        for frame in frames:
            y, cb, cr = frame.convert("YCbCr").split()
            out.write(b"FRAME\n")
            out.write(y.tobytes())
            out.write(cb.resize((width // 2, height // 2)).tobytes())
            out.write(cr.resize((width // 2, height // 2)).tobytes())
    return path
