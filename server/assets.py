"""Static files as the pages link them: versioned URLs a phone keeps for a year, the part of the stylesheet
the resident's check-in page carries inline, and the web app manifest (its document and versioned URL)."""

from __future__ import annotations

import hashlib
import json
from functools import cache
from typing import Any
from urllib.parse import quote

from markupsafe import Markup

from server.config import ROOT
from server.i18n import gettext

STATIC = ROOT / "static"
THEME = "#0b6e4f"
# app.css keeps the resident's page's rules above this comment; the page inlines them (see app.css).
RESIDENT_CSS_END = "/* ---- The resident's check-in page inlines the rules above this line"
MANIFEST_PATH = "/manifest.webmanifest"


@cache
def asset_url(path: str) -> str:
    """The URL of a static file with a hash of its content: browsers may keep it for a year (the middleware
    marks versioned URLs immutable), and a changed file gets a new URL."""
    digest = hashlib.sha256((STATIC / path).read_bytes()).hexdigest()[:10]
    return f"/static/{path}?v={digest}"


@cache
def resident_css() -> Markup:
    """The head of css/app.css, for a <style> element: on weak 3G a linked stylesheet is one more round trip
    (400 ms and up) before the check-in button can show, which costs more than the 1.6 KB it adds."""
    text = (STATIC / "css" / "app.css").read_text(encoding="utf-8")
    head, found, _ = text.partition(RESIDENT_CSS_END)
    if not found:
        raise RuntimeError(f"static/css/app.css has lost its marker {RESIDENT_CSS_END!r}")
    return Markup(head.strip())  # our own file: no "</style>" in it, nothing to escape


@cache
def data_url(path: str) -> str:
    """A small SVG as a data: URL (the favicon of the resident's page, which then costs no request)."""
    return "data:image/svg+xml," + quote((STATIC / path).read_text(encoding="utf-8").strip(), safe=" /=:;,'")


def manifest_document(language: str) -> dict[str, Any]:
    """The web app manifest in one language (its description is the only text)."""
    return {
        "id": "/",
        "name": "Điểm danh",
        "short_name": "Điểm danh",
        "description": gettext(
            language, "Check-in for lifelong-learning activities at libraries and cultural houses."
        ),
        "lang": language,
        "start_url": "/",
        "scope": "/",
        "display": "standalone",
        "orientation": "portrait",
        "background_color": "#ffffff",
        "theme_color": THEME,
        "icons": [
            _icon("icons/icon-192.png", 192, "any"),
            _icon("icons/icon-512.png", 512, "any"),
            _icon("icons/icon-maskable-512.png", 512, "maskable"),
        ],
    }


@cache
def manifest_json(language: str) -> str:
    return json.dumps(manifest_document(language), ensure_ascii=False)


@cache
def manifest_version(language: str) -> str:
    return hashlib.sha256(manifest_json(language).encode()).hexdigest()[:10]


def manifest_url(language: str) -> str:
    """The manifest's URL names its language and version, so browsers keep it for a year without asking
    again at every page (a changed manifest gets a new URL, as static files do)."""
    return f"{MANIFEST_PATH}?lang={language}&v={manifest_version(language)}"


def _icon(path: str, size: int, purpose: str) -> dict[str, str]:
    return {"src": asset_url(path), "sizes": f"{size}x{size}", "type": "image/png", "purpose": purpose}
