"""QR codes, printable check-in posters and card sheets; pure functions, no web or database imports."""

from qr.cards import CARDS_PER_PAGE, Card, render_card_sheet_svg
from qr.codes import qr_version, render_png, render_svg
from qr.posters import Poster, render_poster_svg

__all__ = [
    "CARDS_PER_PAGE",
    "Card",
    "Poster",
    "qr_version",
    "render_card_sheet_svg",
    "render_png",
    "render_poster_svg",
    "render_svg",
]
