"""A printable A4 sheet of personal check-in cards as SVG (units are millimetres); text is the caller's."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from xml.sax.saxutils import escape, quoteattr

from qr._text import Style, fit, wrap
from qr.posters import ACCENT, ASCENT, FOOTER, INK, MUTED, PAGE_H, PAGE_W, SANS, _height, _qr, _text, _up

CARDS_PER_PAGE = 10
COLUMNS = 2
# ID-1 (bank card) size, so a card fits the plastic sleeves and wallets people already have
CARD_W = 85.6
CARD_H = 54.0
# No gutter: neighbouring cards share a cut line, so each straight cut separates two cards
LEFT = (PAGE_W - COLUMNS * CARD_W) / 2
TOP = (PAGE_H - CARDS_PER_PAGE // COLUMNS * CARD_H) / 2

QR_SIZE = 40.0  # including the 4-module quiet zone: modules of 1.2-1.4 mm at versions 1-2
QR_X = 1.0
TEXT_X = QR_X + QR_SIZE + 0.5  # the quiet zone already keeps the text about 5 mm from the code
TEXT_W = CARD_W - TEXT_X - 3.5
PAD_Y = 4.0  # room for a slightly off cut without losing the top or bottom line

HEADING = Style("heading", 2.8, weight="700", spacing=0.3, max_lines=1, width=TEXT_W)
NAME = Style("name", 5.0, weight="700", leading=1.15, max_lines=2, width=TEXT_W)
PLACE = Style("place", 3.0, leading=1.2, max_lines=2, width=TEXT_W)
NUMBER = Style("number", 5.5, weight="700", mono=True, spacing=0.2, max_lines=1, width=TEXT_W)
_SIZES = {
    "heading": (2.8, 2.5, 2.2),
    "name": (5.0, 4.6, 4.2, 3.8, 3.4, 3.0),
    "place": (3.0, 2.7, 2.4),
    "number": (5.5, 5.0, 4.6, 4.2, 3.8, 3.4, 3.0),
}
_FILLS = {"heading": ACCENT, "place": MUTED}
CUT = 'fill="none" stroke="#b3b3b3" stroke-width="0.2" stroke-dasharray="2 1.5"'


@dataclass(frozen=True)
class Card:
    """One resident's card, already translated and formatted."""

    payload: str  # what the QR encodes; uppercase so it stays in QR alphanumeric mode
    number: str  # the short number as printed, grouped with dashes
    name: str  # the holder's name or an anonymous label
    place: str  # venue or club line ("" to omit)


def _block(x: float, top: float, lines: list[str], style: Style) -> tuple[list[str], float]:
    """Lines hanging from `top` at left edge `x`; returns the elements and the block's bottom edge."""
    first = top + ASCENT * style.size
    pitch = style.size * style.leading
    elements = [_text(first + i * pitch, line, style, x=x, fills=_FILLS) for i, line in enumerate(lines)]
    return elements, top + _height(lines, style)


def _card(card: Card, heading: str, x: float, y: float) -> str:
    """One card with its top-left corner at (x, y): cut outline, QR on the left, text on the right."""
    left = x + TEXT_X
    out = [
        f'<rect x="{x:.2f}" y="{y:.2f}" width="{CARD_W:g}" height="{CARD_H:g}" {CUT}/>',
        _qr(card.payload, x + QR_X, y + (CARD_H - QR_SIZE) / 2, QR_SIZE),
    ]
    # The tallest possible stack (about 30 mm) ends well above the number (from about 43 mm down)
    top = y + PAD_Y
    for content, style, gap in ((heading, HEADING, 0.0), (card.name, NAME, 1.5), (card.place, PLACE, 1.2)):
        if content.strip():
            sized, lines = fit(content, style, _SIZES[style.role])
            elements, top = _block(left, top + gap, lines, sized)
            out += elements
    number_style, number = fit(card.number, NUMBER, _SIZES["number"])
    out += _block(left, y + CARD_H - PAD_Y - _height(number, number_style), number, number_style)[0]
    return '<g class="card">' + "".join(out) + "</g>"


def _page(cards: Sequence[Card], heading: str, footer: str) -> str:
    """One A4 page with up to CARDS_PER_PAGE cards, filled row by row from the top left."""
    body = [
        f'<rect width="{PAGE_W:g}" height="{PAGE_H:g}" fill="#ffffff"/>',
        f"<title>{escape(heading)}</title>",
    ]
    for index, card in enumerate(cards):
        row, column = divmod(index, COLUMNS)
        body.append(_card(card, heading, LEFT + column * CARD_W, TOP + row * CARD_H))
    if footer.strip():
        # One line only: the bottom margin below the last row of cards is 13.5 mm
        lines, _ = _up(wrap(footer, FOOTER, 1), PAGE_H - 5.0, FOOTER)
        body.append('<g text-anchor="middle">' + "".join(lines) + "</g>")
    return (
        '<svg xmlns="http://www.w3.org/2000/svg" width="210mm" height="297mm" viewBox="0 0 210 297" '
        f'font-family={quoteattr(SANS)} fill="{INK}">' + "".join(body) + "</svg>"
    )


def render_card_sheet_svg(cards: Sequence[Card], *, heading: str, footer: str = "") -> list[str]:
    """One standalone A4 <svg> string (mm units, no XML declaration) per page of CARDS_PER_PAGE cards."""
    return [
        _page(cards[start : start + CARDS_PER_PAGE], heading, footer)
        for start in range(0, len(cards), CARDS_PER_PAGE)
    ]
