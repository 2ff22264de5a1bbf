"""QR codes and printable check-in posters; pure functions with no web or database dependencies."""

from qr.codes import qr_version, render_png, render_svg
from qr.posters import Poster, render_poster_svg

__all__ = ["Poster", "qr_version", "render_png", "render_poster_svg", "render_svg"]
