"""The installable app: its manifest, its service worker at /sw.js and the pages the worker keeps for when
there is no signal (the offline page, and the resident's offline check-in page)."""

from __future__ import annotations

import hashlib
import json
from functools import cache
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from server.assets import MANIFEST_PATH, asset_url, manifest_json, manifest_version
from server.config import ROOT
from server.deps import TemplatesDep
from server.i18n import LANGUAGES, pick_language
from server.middleware import CSP
from server.models import AgeBand, Gender

router = APIRouter(include_in_schema=False)

KIOSK_CSP = CSP.replace("script-src 'self'", "script-src 'self' 'wasm-unsafe-eval'")
# What the worker keeps for offline use (the app shell). Static files go by their versioned URL.
SHELL_ASSETS = (
    "css/app.css",
    "icon.svg",
    "icons/icon-192.png",
    "vendor/htmx/htmx.min.js",
    "vendor/idb/idb.umd.js",
    "js/outbox.js",
    "js/outbox-ui.js",
    "js/checkin.js",
    "js/desk.js",
    "js/offline-checkin.js",
)
SHELL_PAGES = ("/offline", "/offline/checkin")
# Kept only on a phone that opened the kiosk (it asks the worker): residents' phones never download the
# decoder. The shell above holds the scripts the kiosk shares with the other pages.
KIOSK_ASSETS = ("js/kiosk.js", "vendor/barcode-detector/ponyfill.js", "vendor/zxing-wasm/zxing_reader.wasm")
KIOSK_PAGE = "/kiosk"
# The pages the worker keeps rendered, with every template they are made of.
OFFLINE_TEMPLATES = (
    "templates/kiosk/page.html",
    "templates/offline/page.html",
    "templates/offline/checkin.html",
    "templates/checkin/_first_time.html",
    "templates/_outbox.html",
    "templates/_icons.html",
    "templates/public.html",
    "templates/layout.html",
    "templates/_demo_banner.html",
    "templates/_footer.html",
)


def shell_version(root: Path = ROOT) -> str:
    """A digest of everything the shell holds: its static files, the worker itself, and the offline pages'
    templates and translations (those pages are kept rendered, so a changed catalogue must renew them)."""
    files = [
        *(Path("static") / path for path in (*SHELL_ASSETS, *KIOSK_ASSETS)),
        Path("static/js/sw.js"),
        *map(Path, OFFLINE_TEMPLATES),
        *sorted(path.relative_to(root) for path in (root / "server" / "locale").glob("*/LC_MESSAGES/*.po")),
    ]
    digest = hashlib.sha256()
    for name in files:
        content = (root / name).read_bytes()
        digest.update(f"{name.as_posix()}\0{len(content)}\0".encode())
        digest.update(content)
    return digest.hexdigest()[:12]


@cache
def worker_source() -> str:
    """The service worker: static/js/sw.js after a first line naming this version's shell. Any change to
    the shell changes the version and so installs a new worker, which replaces the old cache (the outbox
    lives in IndexedDB and is never touched by an update)."""
    shell = [asset_url(path) for path in SHELL_ASSETS]
    kiosk = [asset_url(path) for path in KIOSK_ASSETS]
    body = (ROOT / "static" / "js" / "sw.js").read_text()
    config = {
        "version": shell_version(),
        "shell": [*shell, *SHELL_PAGES],
        "offlinePage": SHELL_PAGES[0],
        "offlineCheckIn": SHELL_PAGES[1],
        "kiosk": [*kiosk, KIOSK_PAGE],
        "scripts": [asset_url("vendor/idb/idb.umd.js"), asset_url("js/outbox.js")],
    }
    return f"self.DIEMDANH = {json.dumps(config)};\n{body}"


@cache
def worker_etag() -> str:
    return '"' + hashlib.sha256(worker_source().encode()).hexdigest()[:16] + '"'


@router.get("/sw.js")
def service_worker(request: Request) -> Response:
    """Served with no-cache so browsers look for a new version at every visit; an unchanged worker is a
    304 with no body (a returning resident's phone asks for it in the background after each page)."""
    headers = {"Cache-Control": "no-cache", "Service-Worker-Allowed": "/", "ETag": worker_etag()}
    if worker_etag() in request.headers.get("if-none-match", ""):
        return Response(status_code=304, headers=headers)
    return Response(worker_source(), media_type="text/javascript", headers=headers)


@router.get(MANIFEST_PATH)
def manifest(
    request: Request,
    lang: Annotated[str, Query(max_length=8)] = "",
    v: Annotated[str, Query(max_length=16)] = "",
) -> Response:
    """At the URL the pages link (language and version in it) kept for a year; otherwise no-cache."""
    language = lang if lang in LANGUAGES else pick_language(request)
    if language == lang and v == manifest_version(language):
        headers = {"Cache-Control": "public, max-age=31536000, immutable"}
    else:
        headers = {"Cache-Control": "no-cache", "Vary": "Accept-Language, Cookie"}
    return Response(manifest_json(language), media_type="application/manifest+json", headers=headers)


@router.get("/offline")
def offline_page(request: Request, templates: TemplatesDep) -> Response:
    """What the worker shows for a page it has not kept, with what waits in the outbox."""
    return templates.render(request, "offline/page.html", headers={"Cache-Control": "no-cache"})


@router.get("/offline/checkin")
def offline_check_in(request: Request, templates: TemplatesDep) -> Response:
    """What the worker shows for any check-in link with no signal: the scan is kept on the phone."""
    context = {"age_bands": list(AgeBand), "genders": list(Gender), "form": {}, "place": None}
    return templates.render(request, "offline/checkin.html", context, headers={"Cache-Control": "no-cache"})


@router.get(KIOSK_PAGE)
def kiosk_page(request: Request, templates: TemplatesDep) -> Response:
    """The kiosk: the same page for every paired phone (static/js/kiosk.js loads the device and its
    events), so the worker keeps it for a day without signal. Its CSP lets the card decoder's
    WebAssembly compile; no other page may."""
    return templates.render(
        request,
        "kiosk/page.html",
        headers={"Cache-Control": "no-cache", "Content-Security-Policy": KIOSK_CSP},
    )
