"""The A4 poster is valid SVG, escapes its text, wraps long titles and carries a decodable QR code."""

from __future__ import annotations

import re
from dataclasses import replace
from xml.etree import ElementTree as ET

import PIL.Image
import pytest
import zxingcpp

from qr import Poster, render_poster_svg
from qr._text import text_width

SVG_NS = "{http://www.w3.org/2000/svg}"
URL = "https://diemdanh.example.vn/c/1Z3F9QX2MA"
TITLE = "Ngày hội đọc sách xã Văn Quan năm 2026"
LONG_TITLE = (
    "Hội thảo tập huấn nâng cao năng lực cán bộ thư viện cấp xã về chuyển đổi số, khai thác tài nguyên "
    "học liệu mở và tổ chức các hoạt động văn hoá đọc cộng đồng cho người cao tuổi, phụ nữ và thanh thiếu "
    "niên vùng đồng bào dân tộc thiểu số năm 2026–2027 tại tỉnh Lạng Sơn và các tỉnh lân cận phía Bắc"
)
POSTER = Poster(
    url=URL,
    title=TITLE,
    when="Thứ Bảy, 21/04/2026 · 08:00–11:00",
    venue="Thư viện xã Văn Quan",
    place="Xã Văn Quan, tỉnh Lạng Sơn",
    short_code="1Z-3F9Q-X2MA",
    heading="ĐIỂM DANH",
    scan_hint="Mở camera điện thoại và quét mã này",
    type_hint="Không quét được? Mở diemdanh.example.vn và nhập mã:",
    footer="Thư viện tỉnh Lạng Sơn",
)


def _root(poster: Poster) -> ET.Element:
    return ET.fromstring(render_poster_svg(poster))


def _texts(root: ET.Element, role: str | None = None) -> list[ET.Element]:
    return [t for t in root.findall(f"{SVG_NS}text") if role is None or t.attrib["class"] == role]


def _content(root: ET.Element, role: str | None = None) -> list[str]:
    return [t.text or "" for t in _texts(root, role)]


def _qr_box(root: ET.Element) -> tuple[float, float, float, float]:
    """x, y, width, height of the nested QR <svg>."""
    (qr,) = root.findall(f"{SVG_NS}svg")
    x, y, width, height = (float(qr.attrib[k]) for k in ("x", "y", "width", "height"))
    return x, y, width, height


def test_poster_is_a4_svg() -> None:
    svg = render_poster_svg(POSTER)
    assert svg.startswith("<svg ")
    assert "<?xml" not in svg
    root = ET.fromstring(svg)
    assert root.tag == f"{SVG_NS}svg"
    assert root.attrib["width"] == "210mm"
    assert root.attrib["height"] == "297mm"
    assert root.attrib["viewBox"] == "0 0 210 297"
    assert root.attrib["font-family"] == "Noto Sans, DejaVu Sans, Arial, sans-serif"


def test_poster_shows_all_text_top_to_bottom() -> None:
    root = _root(POSTER)
    by_y = sorted(_texts(root), key=lambda t: float(t.attrib["y"]))
    roles = [t.attrib["class"] for t in by_y]
    assert roles == [
        "heading",
        *["title"] * len(_texts(root, "title")),
        "detail",
        "detail",
        "detail",
        "scan-hint",
        "type-hint",
        "short-code",
        "footer",
    ]
    assert _content(root, "heading") == ["ĐIỂM DANH"]
    assert " ".join(_content(root, "title")) == TITLE
    assert _content(root, "detail") == [POSTER.when, POSTER.venue, POSTER.place]
    assert _content(root, "scan-hint") == [POSTER.scan_hint]
    assert _content(root, "type-hint") == [POSTER.type_hint]
    assert _content(root, "short-code") == ["1Z-3F9Q-X2MA"]
    assert _content(root, "footer") == ["Thư viện tỉnh Lạng Sơn"]
    assert root.findtext(f"{SVG_NS}title") == TITLE


def test_diacritics_are_kept_as_text() -> None:
    svg = render_poster_svg(POSTER)
    assert "Ngày hội đọc sách xã Văn" in svg
    assert "&#" not in svg


def test_short_code_is_large_monospace() -> None:
    (code,) = _texts(_root(POSTER), "short-code")
    assert "monospace" in code.attrib["font-family"]
    assert float(code.attrib["font-size"]) >= 12


def test_markup_characters_are_escaped() -> None:
    title = 'Đọc <b>sách</b> & "vui" > 5'
    svg = render_poster_svg(replace(POSTER, title=title, footer="a<&>b", short_code="<&>"))
    assert "<b>" not in svg
    assert "&lt;b&gt;sách&lt;/b&gt; &amp;" in svg
    root = ET.fromstring(svg)
    assert " ".join(_content(root, "title")) == title
    assert _content(root, "footer") == ["a<&>b"]
    assert _content(root, "short-code") == ["<&>"]


def test_long_title_wraps_within_page() -> None:
    root = _root(replace(POSTER, title=LONG_TITLE))
    title = _content(root, "title")
    assert len(title) == 4
    assert title[-1].endswith("…")
    assert " ".join(title)[:-1] in LONG_TITLE
    for text in _texts(root):
        style = text.attrib
        width = text_width(
            text.text or "",
            float(style["font-size"]),
            bold=style.get("font-weight", "400") >= "600",
            mono="monospace" in style.get("font-family", ""),
            spacing=float(style.get("letter-spacing", "0")),
        )
        assert 100 < width <= 180 if style["class"] == "title" else 0 < width <= 180, text.text
        assert float(text.attrib["x"]) == 105
        assert float(style["font-size"]) <= float(text.attrib["y"]) <= 297 - 5, text.text


def test_title_shrinks_before_it_is_cut() -> None:
    (short_size,) = {t.attrib["font-size"] for t in _texts(_root(POSTER), "title")}
    medium = " ".join([TITLE] * 3)
    title = _texts(_root(replace(POSTER, title=medium)), "title")
    assert 3 <= len(title) <= 4
    assert " ".join(t.text or "" for t in title) == medium  # shrunk, nothing cut
    (medium_size,) = {t.attrib["font-size"] for t in title}
    assert float(medium_size) < float(short_size)


def test_unbreakable_word_is_split() -> None:
    title = _content(_root(replace(POSTER, title="Đ" * 200)), "title")
    assert len(title) == 4
    assert title[-1].endswith("…")
    assert all(text_width(line, 7, bold=True) <= 180 for line in title)


@pytest.mark.parametrize("title", [TITLE, LONG_TITLE])
def test_qr_is_large_centered_and_clear_of_text(title: str) -> None:
    root = _root(replace(POSTER, title=title, venue=POSTER.venue * 3, place=POSTER.place * 3))
    x, y, width, height = _qr_box(root)
    assert width == height
    assert 115 <= width <= 130
    assert x + width / 2 == pytest.approx(105)
    for text in _texts(root):
        baseline = float(text.attrib["y"])
        size = float(text.attrib["font-size"])
        top, bottom = baseline - size, baseline + 0.25 * size
        assert bottom <= y + 0.01 or top >= y + height - 0.01, text.text
    assert y + height < 297


def test_poster_qr_decodes_to_url() -> None:
    (qr,) = _root(POSTER).findall(f"{SVG_NS}svg")
    _, _, side, _ = (int(float(v)) for v in qr.attrib["viewBox"].split())
    path = qr.find(f"{SVG_NS}path")
    assert path is not None
    image = PIL.Image.new("L", (side * 8, side * 8), 255)
    for x0, y0, x1, y1 in re.findall(r"M(\d+),(\d+)H(\d+)V(\d+)H\d+z", path.attrib["d"]):
        image.paste(0, (int(x0) * 8, int(y0) * 8, int(x1) * 8, int(y1) * 8))
    assert [r.text for r in zxingcpp.read_barcodes(image)] == [URL]


def test_empty_footer_is_omitted() -> None:
    root = _root(replace(POSTER, footer=""))
    assert _texts(root, "footer") == []
    assert "" not in _content(root)


def test_long_short_code_shrinks_to_fit() -> None:
    code = "-".join(["1Z3F9QX2MA"] * 4)
    (text,) = _texts(_root(replace(POSTER, short_code=code)), "short-code")
    size = float(text.attrib["font-size"])
    assert text.text == code
    assert size < 14
    assert text_width(code, size, mono=True, spacing=float(text.attrib["letter-spacing"])) <= 180 + 1e-6
