"""The QR codes decode back to the exact data, stay small, and the SVG is inline-ready."""

from __future__ import annotations

import io
import re
import subprocess
import sys
from xml.etree import ElementTree as ET

import PIL.Image
import pytest
import zxingcpp

from qr import qr_version, render_png, render_svg

SVG_NS = "{http://www.w3.org/2000/svg}"
CHECKIN_URL = "https://diemdanh.example.vn/c/1Z3F9QX2MA"
URLS = [
    CHECKIN_URL,
    "https://thư-viện.example.vn/sự-kiện/Văn Quan?xã=Đồng%20Đăng&q=%C4%90%E1%BB%8Dc",
    "https://diemdanh.example.vn/c/1Z3F9QX2MA?lang=vi#ĐIỂM-DANH",
]


def _decode(image: PIL.Image.Image) -> list[str]:
    """Texts of all QR codes a real decoder finds in `image`."""
    return [result.text for result in zxingcpp.read_barcodes(image) if result.format == zxingcpp.QRCode]


def _svg_to_image(svg: str, scale: int = 8) -> PIL.Image.Image:
    """Rasterise the unit squares of a render_svg path, to decode the SVG with the same decoder."""
    root = ET.fromstring(svg)
    _, _, width, height = (int(float(v)) for v in root.attrib["viewBox"].split())
    image = PIL.Image.new("L", (width * scale, height * scale), 255)
    d = root.find(f"{SVG_NS}path").attrib["d"]  # type: ignore[union-attr]
    squares = re.findall(r"M(\d+),(\d+)H(\d+)V(\d+)H\d+z", d)
    assert squares, d[:80]
    for x0, y0, x1, y1 in squares:
        image.paste(0, (int(x0) * scale, int(y0) * scale, int(x1) * scale, int(y1) * scale))
    return image


@pytest.mark.parametrize("url", URLS)
def test_png_decodes_to_exact_url(url: str) -> None:
    png = render_png(url)
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    results = zxingcpp.read_barcodes(PIL.Image.open(io.BytesIO(png)))
    assert [r.text for r in results] == [url]
    assert results[0].ec_level == "M"
    assert results[0].bytes == url.encode()


def test_png_size_follows_box_size_and_border() -> None:
    version = qr_version(CHECKIN_URL)
    modules = 17 + 4 * version
    with PIL.Image.open(io.BytesIO(render_png(CHECKIN_URL))) as image:
        assert image.size == ((modules + 8) * 10,) * 2
        assert image.convert("L").getpixel((0, 0)) == 255  # white quiet zone
        assert image.convert("L").getpixel((40, 40)) == 0  # finder pattern corner is black
    with PIL.Image.open(io.BytesIO(render_png(CHECKIN_URL, box_size=3, border=2))) as image:
        assert image.size == ((modules + 4) * 3,) * 2


def test_checkin_url_gives_small_code() -> None:
    assert len(CHECKIN_URL) == 40
    assert qr_version(CHECKIN_URL) <= 4
    assert qr_version("x" * 300) > 10


def test_svg_is_inline_ready() -> None:
    svg = render_svg(CHECKIN_URL)
    assert svg.startswith("<svg ")
    assert "<?xml" not in svg
    root = ET.fromstring(svg)
    assert root.tag == f"{SVG_NS}svg"
    size = 17 + 4 * qr_version(CHECKIN_URL) + 8
    assert root.attrib["viewBox"] == f"0 0 {size} {size}"
    assert "width" not in root.attrib
    assert "height" not in root.attrib
    paths = root.findall(f"{SVG_NS}path")
    assert len(paths) == 1
    assert "id" not in paths[0].attrib


def test_svg_border_changes_viewbox() -> None:
    root = ET.fromstring(render_svg(CHECKIN_URL, border=0))
    size = 17 + 4 * qr_version(CHECKIN_URL)
    assert root.attrib["viewBox"] == f"0 0 {size} {size}"


@pytest.mark.parametrize("url", URLS)
def test_svg_decodes_to_exact_url(url: str) -> None:
    assert _decode(_svg_to_image(render_svg(url))) == [url]


def test_qr_package_imports_no_web_or_db_code() -> None:
    code = (
        "import qr, sys; print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "{'fastapi','starlette','sqlmodel','sqlalchemy','jinja2','server'}))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
