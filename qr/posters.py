"""A printable A4 check-in poster as SVG (units are millimetres); all text comes from the caller."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from xml.etree import ElementTree as ET
from xml.sax.saxutils import escape, quoteattr

from qr._text import Style, fit, line_width, wrap
from qr.codes import svg_element

PAGE_W = 210.0
PAGE_H = 297.0
TEXT_W = 180.0
QR_MAX = 128.0
QR_MIN = 60.0
ASCENT = 1.0  # line box above the baseline, in em: room for stacked Vietnamese accents
DESCENT = 0.25

SANS = "Noto Sans, DejaVu Sans, Arial, sans-serif"
MONO = "Noto Sans Mono, DejaVu Sans Mono, Consolas, Courier New, monospace"
INK = "#000000"
ACCENT = "#0b3a6e"
MUTED = "#333333"

HEADING = Style("heading", 9.0, weight="700", spacing=1.2, leading=1.2, max_lines=1, width=TEXT_W)
TITLE = Style("title", 12.0, weight="700", leading=1.18, max_lines=4, width=TEXT_W)
DETAIL = Style("detail", 5.5, width=TEXT_W)
SCAN = Style("scan-hint", 5.5, weight="600", width=TEXT_W)
HINT = Style("type-hint", 4.5, width=TEXT_W)
CODE = Style("short-code", 14.0, weight="700", mono=True, spacing=1.0, max_lines=1, width=TEXT_W)
FOOTER = Style("footer", 3.5, width=TEXT_W)
_FILLS = {"heading": ACCENT, "detail": MUTED, "type-hint": MUTED, "footer": MUTED}


@dataclass(frozen=True)
class Poster:
    """Everything printed on the poster, already translated and formatted."""

    url: str
    title: str
    when: str
    venue: str
    place: str
    short_code: str
    heading: str
    scan_hint: str
    type_hint: str
    footer: str = ""


def _text(
    y: float, content: str, style: Style, *, x: float = PAGE_W / 2, fills: dict[str, str] | None = None
) -> str:
    """One <text> element with escaped content at `x` (anchored as its parent says: centred here)."""
    fills = _FILLS if fills is None else fills
    attrs = {"class": style.role, "font-size": f"{style.size:g}"}
    if style.weight != "400":
        attrs["font-weight"] = style.weight
    if style.mono:
        attrs["font-family"] = MONO
    if style.spacing:
        attrs["letter-spacing"] = f"{style.spacing:g}"
    if style.role in fills:
        attrs["fill"] = fills[style.role]
    extra = "".join(f" {name}={quoteattr(value)}" for name, value in attrs.items())
    return f'<text x="{x:g}" y="{y:.2f}"{extra}>{escape(content)}</text>'


def _height(lines: list[str], style: Style) -> float:
    """Height of a block of lines, from the top of the first line's accents to the last descender."""
    return (ASCENT + DESCENT) * style.size + (len(lines) - 1) * style.size * style.leading if lines else 0.0


def _down(lines: list[str], top: float, style: Style) -> tuple[list[str], float]:
    """Lines of text hanging from `top`; returns the elements and the block's bottom edge."""
    first = top + ASCENT * style.size
    pitch = style.size * style.leading
    elements = [_text(first + i * pitch, line, style) for i, line in enumerate(lines)]
    return elements, top + _height(lines, style)


def _up(lines: list[str], bottom: float, style: Style) -> tuple[list[str], float]:
    """Lines of text standing on `bottom`; returns the elements and the block's top edge."""
    top = bottom - _height(lines, style)
    return _down(lines, top, style)[0], top


def _qr(url: str, x: float, y: float, size: float) -> str:
    """The QR code (with its quiet zone) as a nested <svg> placed at (x, y)."""
    element = svg_element(url)
    element.attrib.pop("xmlns", None)
    for name, value in (("x", x), ("y", y), ("width", size), ("height", size)):
        element.set(name, f"{value:.2f}")
    return ET.tostring(element, encoding="unicode")


def _top(poster: Poster) -> tuple[list[str], float]:
    """Heading, rule, title and event details from the top margin; returns elements and bottom edge."""
    heading_style, heading = fit(poster.heading, HEADING, (9, 8, 7, 6))
    out, y = _down(heading, 14.0, heading_style)
    out.append(f'<rect x="{PAGE_W / 2 - 20:g}" y="{y + 2.5:.2f}" width="40" height="1.2" fill="{ACCENT}"/>')
    title_style, title = fit(poster.title, TITLE, (12, 11, 10, 9, 8.5, 8, 7.5, 7))
    lines, y = _down(title, y + 6.5, title_style)
    out += lines
    y += 2.5
    for detail in (poster.when, poster.venue, poster.place):
        if detail.strip():
            lines, y = _down(wrap(detail, DETAIL), y + 1.5, DETAIL)
            out += lines
    return out, y + 3.0


def _code_style(code: str) -> Style:
    """The short code's style, shrunk from its full size if that would not fit on one line."""
    spacing = line_width(code, replace(CODE, size=0.0))
    per_mm = line_width(code, replace(CODE, size=1.0)) - spacing
    if per_mm <= 0 or line_width(code, CODE) <= CODE.width:
        return CODE
    return replace(CODE, size=max(2.0, math.floor((CODE.width - spacing) / per_mm * 10) / 10))


def _bottom(poster: Poster) -> tuple[list[str], float]:
    """Footer, short code and type hint stacked up from the bottom margin; returns elements and top edge."""
    out, y = _up(wrap(poster.footer, FOOTER), PAGE_H - 6.0, FOOTER)
    code_style = _code_style(poster.short_code)
    lines, y = _up([poster.short_code], y - 5.0, code_style)
    out += lines
    lines, y = _up(wrap(poster.type_hint, HINT), y - 2.0, HINT)
    return out + lines, y - 4.0


def render_poster_svg(poster: Poster) -> str:
    """The whole A4 poster as a standalone SVG document (no XML declaration)."""
    top, top_end = _top(poster)
    bottom, bottom_start = _bottom(poster)
    scan = wrap(poster.scan_hint, SCAN)
    room = bottom_start - _height(scan, SCAN) - 0.5 - top_end
    qr_size = max(QR_MIN, min(QR_MAX, room))
    qr_y = top_end + (room - qr_size) / 2
    scan_lines, _ = _down(scan, qr_y + qr_size + 0.5, SCAN)
    body = [
        f'<rect width="{PAGE_W:g}" height="{PAGE_H:g}" fill="#ffffff"/>',
        f"<title>{escape(poster.title)}</title>",
        *top,
        _qr(poster.url, (PAGE_W - qr_size) / 2, qr_y, qr_size),
        *scan_lines,
        *bottom,
    ]
    return (
        '<svg xmlns="http://www.w3.org/2000/svg" width="210mm" height="297mm" viewBox="0 0 210 297" '
        f'font-family={quoteattr(SANS)} text-anchor="middle" fill="{INK}">' + "".join(body) + "</svg>"
    )
