"""What a phone downloads to check in, and what the organizer's event page weighs.

Fetches the resident's check-in page as a phone does (HTML, then every stylesheet, script and icon it
references, and what those stylesheets reference), and prints per file the bytes the server sent, the
uncompressed size, and the size gzipped at level 6 (what a typical reverse proxy would send); then what
that page fetches after a first check-in, for next time (the manifest, the worker and the files it keeps),
and what the app's own gzip costs in CPU per answer against the bytes and 3G time it saves. Then the same
for the organizer's event page (logged in), the live-poll answers it fetches every second, and the kiosk
page with the card decoder it loads when its camera starts (on a browser without BarcodeDetector).

    .venv/bin/python bench/page_weight.py                     # starts the app on SQLite in a temp dir
    .venv/bin/python bench/page_weight.py --base-url http://127.0.0.1:8000 --database-url sqlite:///data/diemdanh.sqlite3
      (a running server: two events and a staff login are created in its database with the DIEMDANH_*
       settings of this environment, so DIEMDANH_SECRET_KEY must be the server's; one check-in is made)
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import re
import sys
import tempfile
import time
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx2
from _common import PHONE_UA, bench_settings, create_events, free_port, running_app
from starlette.middleware.gzip import GZipMiddleware
from starlette.types import Message, Receive, Scope, Send

from server.config import Settings

ACCEPT_ENCODING = "gzip, deflate, br, zstd"  # what Chrome on Android sends
DECODER = re.compile(r'data-(?:decoder|wasm)="([^"]+)"')  # what static/js/kiosk.js loads for the camera
CSS_URL = re.compile(r"""url\(\s*['"]?([^'")]+)['"]?\s*\)|@import\s+['"]([^'"]+)['"]""")


class References(HTMLParser):
    """Every sub-resource a browser would fetch while loading the page."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        rel = (a.get("rel") or "").lower().split()
        if tag == "link" and a.get("href") and {"stylesheet", "icon", "manifest", "preload"} & set(rel):
            self.urls.append(a["href"] or "")
        elif tag in ("script", "img", "source") and a.get("src"):
            self.urls.append(a["src"] or "")


@dataclass
class Row:
    url: str
    status: int
    wire: int  # body bytes as sent (compressed if the server compressed)
    raw: int  # body bytes after decoding
    gz6: int
    encoding: str
    cache: str = "-"


def fetch(client: httpx2.Client, url: str) -> tuple[Row, httpx2.Response]:
    response = client.get(url)
    body = response.content
    row = Row(
        url=url,
        status=response.status_code,
        wire=response.num_bytes_downloaded,
        raw=len(body),
        gz6=len(gzip.compress(body, compresslevel=6, mtime=0)),
        encoding=response.headers.get("content-encoding", "-"),
        cache=response.headers.get("cache-control", "-"),
    )
    return row, response


def page_and_assets(client: httpx2.Client, url: str) -> list[Row]:
    origin = "{0.scheme}://{0.netloc}".format(urlsplit(url))
    row, response = fetch(client, url)
    rows, seen = [row], {url}
    parser = References()
    parser.feed(response.text)
    queue = [urljoin(url, ref) for ref in [*parser.urls, *DECODER.findall(response.text)]]
    while queue:
        asset = queue.pop(0)
        if asset in seen or not asset.startswith(origin):
            continue
        seen.add(asset)
        row, response = fetch(client, asset)
        rows.append(row)
        if "css" in response.headers.get("content-type", ""):
            queue += [urljoin(asset, a or b) for a, b in CSS_URL.findall(response.text) if a or b]
    return rows


def for_next_time(client: httpx2.Client, page_url: str, html: str) -> list[Row]:
    """What the resident's page fetches after a first check-in, for next time: the manifest it links then
    (static/js/checkin.js) and the icon a browser reads from it, the worker and the files the worker keeps."""
    origin = "{0.scheme}://{0.netloc}".format(urlsplit(page_url))
    rows = []
    manifest = re.search(r'data-manifest="([^"]+)"', html)
    if manifest:
        row, response = fetch(client, urljoin(page_url, manifest.group(1).replace("&amp;", "&")))
        rows += [row, fetch(client, urljoin(row.url, response.json()["icons"][0]["src"]))[0]]
    row, worker = fetch(client, f"{origin}/sw.js")
    rows.append(row)
    config = json.loads(worker.text.split("\n", 1)[0].removeprefix("self.DIEMDANH = ").rstrip(";"))
    return rows + [fetch(client, urljoin(origin, url))[0] for url in [*config["scripts"], *config["shell"]]]


def gzip_cost(bodies: dict[str, bytes], kbps: float, repeat: int = 2000) -> None:
    """What the app's own GZipMiddleware (server/app.py; Starlette's, level 9) costs per answer in CPU, and
    what it saves on a 3G line: the same bodies from a bare ASGI app with and without it, in this process."""
    print(f"\nThe app's own gzip (GZipMiddleware, level 9) when no proxy compresses: {repeat:,} answers each")
    line = f"at {kbps:g} kbit/s"
    print(f"  {'answer':<40}{'raw':>9}{'gzipped':>9}{'saved':>9}{line:>15}{'CPU':>12}")
    for name, body in bodies.items():
        bare = _cpu_per_answer(_answer(body), repeat)
        zipped = _cpu_per_answer(GZipMiddleware(_answer(body), minimum_size=500), repeat)
        small = len(gzip.compress(body, compresslevel=9))
        saved = len(body) - small
        print(
            f"  {name:<40}{len(body):>9,}{small:>9,}{saved:>9,}{saved * 8 / kbps:>12.0f} ms"
            f"{(zipped - bare) * 1e6:>9.0f} µs"
        )


def _answer(body: bytes) -> Any:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        headers = [
            (b"content-type", b"text/html; charset=utf-8"),
            (b"content-length", str(len(body)).encode()),
        ]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    return app


def _cpu_per_answer(app: Any, repeat: int) -> float:
    scope = {
        "type": "http",
        "method": "GET",
        "path": "/",
        "headers": [(b"accept-encoding", b"gzip, deflate, br")],
    }

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        return None

    async def many() -> float:
        start = time.process_time()
        for _ in range(repeat):
            await app(scope, receive, send)
        return (time.process_time() - start) / repeat

    return asyncio.run(many())


def report(title: str, rows: list[Row]) -> None:
    print(f"\n{title}")
    print(f"  {'file':<52}{'status':>7}{'sent':>11}{'raw':>11}{'gzip -6':>11}  {'encoding':<9}cache-control")
    for r in rows:
        path = urlsplit(r.url).path + (f"?{urlsplit(r.url).query}" if urlsplit(r.url).query else "")
        print(
            f"  {path[:52]:<52}{r.status:>7}{r.wire:>11,}{r.raw:>11,}{r.gz6:>11,}  {r.encoding:<9}{r.cache}"
        )
    total = Row("total", 0, sum(r.wire for r in rows), sum(r.raw for r in rows), sum(r.gz6 for r in rows), "")
    label = f"total ({len(rows)} requests)"
    print(f"  {label:<52}{'':>7}{total.wire:>11,}{total.raw:>11,}{total.gz6:>11,}")
    uncached = [r for r in rows[1:] if "max-age" not in r.cache and "immutable" not in r.cache]
    if uncached:
        print(
            f"  {len(uncached)} of {len(rows) - 1} static files carry no max-age: on a later visit the "
            "phone keeps them only by heuristic freshness, or asks again (304)"
        )


def measure(settings: Settings, base_url: str) -> int:
    fixture = create_events(settings, 2)
    link, event_id = fixture.links[0], fixture.event_ids[0]
    headers = {
        "User-Agent": PHONE_UA,
        "Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
        "Accept-Language": "vi-VN,vi;q=0.9",
        "Accept-Encoding": ACCEPT_ENCODING,
    }
    with httpx2.Client(headers=headers, timeout=30) as phone:
        resident = page_and_assets(phone, link)
        plain = {"Accept-Encoding": "identity"}  # the bodies as the app renders them, for gzip_cost
        first = phone.get(link, headers=plain)
        later = for_next_time(phone, link, first.text)
        nonce = re.search(r'name="nonce" value="([^"]+)"', first.text)
        profile = {"age_band": "25-59", "gender": "female", "consent": "yes"}
        answer = phone.post(
            link,
            headers={**plain, "HX-Request": "true"},
            data={"nonce": nonce.group(1) if nonce else "", **profile},
        )
        htmx = next(r.url for r in resident if "htmx" in r.url)
        bodies = {
            "check-in page, first visit": first.content,
            "check-in answer (htmx fragment)": answer.content,
            "one-tap page (a returning phone)": phone.get(fixture.links[1], headers=plain).content,
            "htmx.min.js (once a phone)": phone.get(htmx, headers=plain).content,
        }
    report(f"Resident's check-in page, first visit on a phone: {urlsplit(link).path}", resident)
    report(
        "After its first check-in, the page fetches for next time (the manifest, the worker, its files)",
        later,
    )
    gzip_cost(bodies, kbps=400)

    with httpx2.Client(base_url=base_url, headers=headers, timeout=30) as desk:
        login = desk.post("/login", data={"username": fixture.username, "password": fixture.password})
        if login.status_code != 303:
            print(f"could not log in as the benchmark's staff account: HTTP {login.status_code}")
            return 1
        organizer = page_and_assets(desk, f"{base_url}/events/{event_id}")
        report(f"Organizer's event page (logged in): /events/{event_id}", organizer)
        live = desk.get(f"/events/{event_id}/live", headers={"HX-Request": "true"})
        version = re.search(r"/live\?v=([0-9.]+)", live.text)
        unchanged = desk.get(f"/events/{event_id}/live?v={version.group(1) if version else ''}")
        print(
            f"\n  live poll every {settings.live_poll_seconds:g} s: {live.status_code} with "
            f"{len(live.content):,} bytes when something changed, {unchanged.status_code} with "
            f"{len(unchanged.content)} bytes when nothing did (plus headers)"
        )
    with httpx2.Client(headers=headers, timeout=30) as phone:
        kiosk = page_and_assets(phone, f"{base_url}/kiosk")
    report("Kiosk page with its card decoder (kept by the worker on kiosk phones only): /kiosk", kiosk)
    failed = [r for r in resident + organizer + kiosk if r.status != 200]
    if failed:
        print("\nnot 200: " + ", ".join(f"{r.url} ({r.status})" for r in failed))
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Bytes a phone downloads for the check-in page, and the "
        "organizer's event page, raw and gzipped (level 6)."
    )
    parser.add_argument("--base-url", help="measure a running server instead of starting one")
    parser.add_argument(
        "--database-url",
        help="its database (needed with --base-url); default: a temp "
        "SQLite file for the server this script starts",
    )
    args = parser.parse_args(argv)
    if args.base_url:
        if not args.database_url:
            parser.error("--base-url needs --database-url: the event is created in the server's database")
        settings = Settings.from_env(base_url=args.base_url, database_url=args.database_url)
        return measure(settings, settings.base_url)
    with tempfile.TemporaryDirectory(prefix="diemdanh-weight-") as tmp:
        port = free_port()
        settings = bench_settings(args.database_url or f"sqlite:///{tmp}/weight.sqlite3", port, Path(tmp))
        with running_app(settings, port, log=Path(tmp) / "server.log") as base_url:
            return measure(settings, base_url)


if __name__ == "__main__":
    sys.exit(main())
