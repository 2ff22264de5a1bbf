"""The A4 card sheet: pages of ten ID-1 cards, escaped text kept clear of the QR, and every code decodable."""

from __future__ import annotations

import itertools
import re
from dataclasses import replace
from xml.etree import ElementTree as ET

import PIL.Image
import pytest
import zxingcpp

from qr import CARDS_PER_PAGE, Card, qr_version, render_card_sheet_svg
from qr._text import text_width

SVG_NS = "{http://www.w3.org/2000/svg}"
HEADING = "THẺ ĐIỂM DANH"
CARD = Card(
    payload="DIEMDANH:7K3M9QX2AB",
    number="7K3M-9QX2-AB",
    name="Nguyễn Thị Minh Khai",
    place="CLB Dưỡng sinh thôn Nà Pàn",
)
LONG_NAME = "Hoàng Văn Thụ Nguyễn Thị Phương Thảo Lường Thị Hoa Mai Lan Vi Văn Định Hà Thị Quỳnh"
LONG_PLACE = "Lớp 3A Trường Tiểu học Văn Quan, xã Văn Quan, tỉnh Lạng Sơn, Việt Nam, năm học 2026–2027"
ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford base32


def _cards(count: int, **overrides: str) -> list[Card]:
    """Cards with distinct 10-character codes, named like anonymous participants."""
    cards = []
    for i in range(count):
        code = "".join(ALPHABET[(i * 7 + k * 13 + k * k) % 32] for k in range(10))
        number = f"{code[:4]}-{code[4:8]}-{code[8:]}"
        cards.append(
            replace(CARD, payload=f"DIEMDANH:{code}", number=number, name=f"Người tham gia số {i + 1}")
        )
    return [replace(card, **overrides) for card in cards]


def _pages(cards: list[Card], footer: str = "") -> list[ET.Element]:
    return [ET.fromstring(svg) for svg in render_card_sheet_svg(cards, heading=HEADING, footer=footer)]


def _groups(page: ET.Element) -> list[ET.Element]:
    return page.findall(f"{SVG_NS}g[@class='card']")


def _texts(element: ET.Element, role: str) -> list[str]:
    return [t.text or "" for t in element.iter(f"{SVG_NS}text") if t.attrib["class"] == role]


def _box(element: ET.Element, *names: str) -> tuple[float, ...]:
    return tuple(float(element.attrib[name]) for name in names)


def _text_box(text: ET.Element) -> tuple[float, float, float, float]:
    """Left, top (stacked accents), right and bottom (descenders) of a left-aligned <text>, in mm."""
    style = text.attrib
    size = float(style["font-size"])
    width = text_width(
        text.text or "",
        size,
        bold=style.get("font-weight", "400") >= "600",
        mono="monospace" in style.get("font-family", ""),
        spacing=float(style.get("letter-spacing", "0")),
    )
    x, y = float(style["x"]), float(style["y"])
    return x, y - size, x + width, y + 0.25 * size


def _rasterize(page: ET.Element, px_per_mm: int = 8) -> PIL.Image.Image:
    """The page's QR modules drawn in black at their printed position; text and cut lines are left out."""
    image = PIL.Image.new("L", (210 * px_per_mm, 297 * px_per_mm), 255)
    for qr in page.iter(f"{SVG_NS}svg"):
        if qr is page:
            continue
        x, y, size = _box(qr, "x", "y", "width")
        unit = size / float(qr.attrib["viewBox"].split()[2]) * px_per_mm
        path = qr.find(f"{SVG_NS}path")
        assert path is not None
        for x0, y0, x1, y1 in re.findall(r"M(\d+),(\d+)H(\d+)V(\d+)H\d+z", path.attrib["d"]):
            left, top, right, bottom = (
                round(mm * px_per_mm + int(m) * unit)
                for mm, m in zip((x, y, x, y), (x0, y0, x1, y1), strict=True)
            )
            image.paste(0, (left, top, right, bottom))
    return image


def test_each_page_is_an_a4_svg() -> None:
    svgs = render_card_sheet_svg(_cards(12), heading=HEADING)
    assert len(svgs) == 2
    for svg in svgs:
        assert svg.startswith("<svg ")
        assert "<?xml" not in svg
        root = ET.fromstring(svg)
        assert root.tag == f"{SVG_NS}svg"
        assert (root.attrib["width"], root.attrib["height"]) == ("210mm", "297mm")
        assert root.attrib["viewBox"] == "0 0 210 297"


def test_23_cards_make_pages_of_10_10_3_in_order() -> None:
    cards = _cards(23)
    pages = _pages(cards)
    assert CARDS_PER_PAGE == 10
    assert [len(_groups(page)) for page in pages] == [10, 10, 3]
    names = [" ".join(_texts(group, "name")) for page in pages for group in _groups(page)]
    assert names == [card.name for card in cards]
    assert [n for page in pages for n in _texts(page, "number")] == [card.number for card in cards]


def test_no_cards_no_pages() -> None:
    assert render_card_sheet_svg([], heading=HEADING) == []


def test_cards_fill_a_centred_grid_of_id1_cards() -> None:
    (page,) = _pages(_cards(10))
    outlines = [group.find(f"{SVG_NS}rect") for group in _groups(page)]
    boxes = [_box(rect, "x", "y", "width", "height") for rect in outlines if rect is not None]
    assert all(box[2:] == (85.6, 54.0) for box in boxes)
    assert all("stroke-dasharray" in rect.attrib for rect in outlines if rect is not None)
    lefts, tops = sorted({box[0] for box in boxes}), sorted({box[1] for box in boxes})
    assert len(lefts) == 2 and len(tops) == 5
    assert lefts[0] + lefts[-1] + 85.6 == pytest.approx(210)
    assert tops[0] + tops[-1] + 54 == pytest.approx(297)


def test_card_shows_heading_name_place_and_number() -> None:
    (page,) = _pages([CARD])
    assert _texts(page, "heading") == [HEADING]
    assert " ".join(_texts(page, "name")) == CARD.name
    assert " ".join(_texts(page, "place")) == CARD.place
    assert _texts(page, "number") == ["7K3M-9QX2-AB"]


def test_diacritics_are_kept_as_text() -> None:
    (svg,) = render_card_sheet_svg([CARD], heading=HEADING)
    assert "Nguyễn Thị" in svg
    assert "Dưỡng sinh" in svg
    assert HEADING in svg
    assert "&#" not in svg


def test_number_is_large_monospace() -> None:
    (page,) = _pages([CARD])
    (number,) = (t for t in page.iter(f"{SVG_NS}text") if t.attrib["class"] == "number")
    assert "monospace" in number.attrib["font-family"]
    assert float(number.attrib["font-size"]) >= 5


def test_empty_place_and_footer_are_omitted() -> None:
    (page,) = _pages([replace(CARD, place="")])
    assert _texts(page, "place") == []
    assert _texts(page, "footer") == []


def test_footer_is_on_every_page_below_the_cards() -> None:
    pages = _pages(_cards(11), footer="Thư viện xã Văn Quan · cắt theo đường kẻ")
    for page in pages:
        (footer,) = (t for t in page.iter(f"{SVG_NS}text") if t.attrib["class"] == "footer")
        assert footer.text == "Thư viện xã Văn Quan · cắt theo đường kẻ"
        assert 297 - 13.5 + float(footer.attrib["font-size"]) < float(footer.attrib["y"]) < 297 - 4


def test_markup_characters_are_escaped() -> None:
    card = Card(payload="DIEMDANH:<&>", number="<&>", name='Bà <b>Lan</b> & "con"', place="a<&>b")
    svgs = render_card_sheet_svg([card], heading="<THẺ>", footer="x & y")
    (svg,) = svgs
    assert "<b>" not in svg
    assert "&lt;b&gt;Lan&lt;/b&gt;" in svg
    assert '&amp; "con"' in svg
    page = ET.fromstring(svg)
    assert " ".join(_texts(page, "name")) == card.name
    assert _texts(page, "place") == ["a<&>b"]
    assert _texts(page, "number") == ["<&>"]
    assert _texts(page, "heading") == ["<THẺ>"]
    assert _texts(page, "footer") == ["x & y"]


def test_long_name_shrinks_before_it_is_cut() -> None:
    (page,) = _pages([CARD, replace(CARD, name=" ".join([CARD.name] * 2)), replace(CARD, name=LONG_NAME)])
    short, medium, long = _groups(page)
    short_size = {t.attrib["font-size"] for t in short.iter(f"{SVG_NS}text") if t.attrib["class"] == "name"}
    medium_size = {t.attrib["font-size"] for t in medium.iter(f"{SVG_NS}text") if t.attrib["class"] == "name"}
    assert float(medium_size.pop()) < float(short_size.pop())
    assert " ".join(_texts(medium, "name")) == " ".join([CARD.name] * 2)  # shrunk, nothing cut
    cut = _texts(long, "name")
    assert len(cut) == 2
    assert cut[-1].endswith("…")
    assert " ".join(cut)[:-1] in LONG_NAME


@pytest.mark.parametrize(
    "card",
    [CARD, replace(CARD, name=LONG_NAME, place=LONG_PLACE), replace(CARD, name="Đ" * 80, number="7K3M" * 6)],
)
def test_text_stays_on_the_card_and_clear_of_the_qr(card: Card) -> None:
    pages = _pages([card] * 10, footer="Thư viện xã Văn Quan")
    for group in _groups(pages[0]):
        outline, qr = group.find(f"{SVG_NS}rect"), group.find(f"{SVG_NS}svg")
        assert outline is not None and qr is not None
        cx, cy, cw, ch = _box(outline, "x", "y", "width", "height")
        qx, qy, qw, qh = _box(qr, "x", "y", "width", "height")
        assert qw == qh >= 30
        assert cx <= qx and qx + qw <= cx + cw and cy <= qy and qy + qh <= cy + ch
        blocks: dict[str, tuple[float, float]] = {}
        for text in group.iter(f"{SVG_NS}text"):
            left, top, right, bottom = _text_box(text)
            assert cx + 1 <= left and right <= cx + cw - 1 and cy + 1 <= top and bottom <= cy + ch - 1
            assert left >= qx + qw or right <= qx or top >= qy + qh or bottom <= qy
            upper, lower = blocks.get(text.attrib["class"], (top, bottom))
            blocks[text.attrib["class"]] = (min(upper, top), max(lower, bottom))
        assert list(blocks) == ["heading", "name", "place", "number"]
        spans = list(blocks.values())
        assert all(above[1] <= below[0] + 1e-6 for above, below in itertools.pairwise(spans))


def test_typical_payload_is_qr_version_1_or_2() -> None:
    assert qr_version(CARD.payload) <= 2


def test_every_card_on_a_printed_sheet_decodes_to_its_payload() -> None:
    cards = _cards(13)
    pages = _pages(cards)
    for page, on_page in zip(pages, (cards[:10], cards[10:]), strict=True):
        decoded = [result.text for result in zxingcpp.read_barcodes(_rasterize(page))]
        assert sorted(decoded) == sorted(card.payload for card in on_page)
