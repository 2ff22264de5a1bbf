"""QR codes as inline SVG or PNG bytes, black on white, error correction M."""

from __future__ import annotations

import io
from xml.etree import ElementTree as ET

import qrcode
from qrcode.constants import ERROR_CORRECT_M
from qrcode.image.pil import PilImage
from qrcode.image.svg import SvgPathFillImage


def _build(data: str, *, box_size: int = 10, border: int = 4) -> qrcode.QRCode:
    """Encode `data` in the smallest QR version that fits at error correction M."""
    code = qrcode.QRCode(error_correction=ERROR_CORRECT_M, box_size=box_size, border=border)
    code.add_data(data)
    code.make(fit=True)
    return code


def svg_element(data: str, *, border: int = 4) -> ET.Element:
    """The QR code as an <svg> element: one <path> on a white rect, sized by its viewBox only."""
    root: ET.Element = _build(data, border=border).make_image(image_factory=SvgPathFillImage).get_image()
    for attr in ("width", "height", "version"):
        root.attrib.pop(attr, None)
    for path in root.iter("path"):
        path.attrib.pop("id", None)  # a fixed id would clash when several codes share a page
        path.set("shape-rendering", "crispEdges")
    return root


def render_svg(data: str, *, border: int = 4) -> str:
    """A standalone <svg> string (no XML declaration, viewBox but no width/height) encoding `data`."""
    return ET.tostring(svg_element(data, border=border), encoding="unicode")


def render_png(data: str, *, box_size: int = 10, border: int = 4) -> bytes:
    """PNG bytes of the QR code encoding `data`, black on white."""
    image = _build(data, box_size=box_size, border=border).make_image(
        image_factory=PilImage, fill_color="black", back_color="white"
    )
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def qr_version(data: str) -> int:
    """The QR version (1-40) chosen for `data` at error correction M."""
    return int(_build(data).version)
