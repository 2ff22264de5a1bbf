"""What a resident's phone downloads for the check-in page, counted where it cannot be missed: every request
the app received (its access log) and the bytes Chromium took off the wire (CDP). Sizes and counts only;
the times are bench/slow_phone.py's. Every test runs on SQLite and, with TEST_DATABASE_URL, PostgreSQL.

Issue 9's targets: a first visit under 30 KB in at most 4 requests; a return visit fetches only the page,
every file it references coming from the phone's caches without even a revalidation.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import BrowserContext, Page, expect
from sqlmodel import Session

from server.config import Settings
from server.models import CheckIn, Event
from server.services.scans import code_for
from server.templating import asset_url
from tests.browser.support import AccessLog, Cable, running_server
from tests.browser.test_offline import app_phone, controlled
from tests.factories import count_rows, make_event, make_tree, make_venue

pytestmark = pytest.mark.browser

__all__ = ["app_phone"]  # a fixture: a phone with a profile on disk, where the worker persists

DONE = "Bạn đã điểm danh thành công"


@pytest.fixture
def received(settings: Settings, app_port: int, tmp_path: Path, cable: Cable) -> Iterator[AccessLog]:
    """The app with its access log on, reached through the cable at the base URL."""
    log_path = tmp_path / "server.log"
    with running_server(settings, app_port, log_path, log_level="info"):
        log = AccessLog(log_path)
        log.take()
        yield log


class Wire:
    """The page's requests as CDP sees them: every URL asked for, and the bytes that came off the network
    (headers and body; nothing for an answer from a cache)."""

    def __init__(self, context: BrowserContext, page: Page) -> None:
        self.urls: list[str] = []
        self.bytes = 0
        self._from_network: set[str] = set()
        cdp = context.new_cdp_session(page)
        cdp.on("Network.requestWillBeSent", lambda e: self.urls.append(e["request"]["url"]))
        cdp.on("Network.responseReceived", self._response)
        cdp.on("Network.loadingFinished", self._finished)
        cdp.send("Network.enable")

    def _response(self, event: dict[str, Any]) -> None:
        response = event["response"]
        if not (response.get("fromDiskCache") or response.get("fromServiceWorker")):
            self._from_network.add(event["requestId"])

    def _finished(self, event: dict[str, Any]) -> None:
        if event["requestId"] in self._from_network:
            self.bytes += int(event["encodedDataLength"])

    def reset(self) -> None:
        self.urls, self.bytes, self._from_network = [], 0, set()


def path(settings: Settings, event: Event) -> str:
    return f"/c/{code_for(event, settings)}"


def open_page(page: Page, url: str) -> None:
    page.goto(url)
    expect(page.locator("button.checkin-button")).to_be_visible()
    page.wait_for_load_state("networkidle")


def check_in_first_time(page: Page) -> None:
    page.get_by_text("25–59").tap()
    page.get_by_text("Nữ", exact=True).tap()
    page.locator('input[name="consent"]').check()
    page.locator("button.checkin-button").tap()
    expect(page.locator("#checkin")).to_contain_text(DONE)


def two_events(session: Session) -> tuple[Event, Event]:
    venue = make_venue(session, make_tree(session)["village"])
    return make_event(session, venue), make_event(session, venue, title="Câu lạc bộ đọc sách")


SCRIPTS = ("vendor/htmx/htmx.min.js", "js/checkin.js")


def test_first_visit_is_small_and_a_return_visit_fetches_only_the_page(
    received: AccessLog, app_phone: BrowserContext, session: Session, settings: Settings
) -> None:
    """A Pixel 5 with a profile on disk: the worker installs after the first check-in and serves the rest."""
    first, later = two_events(session)
    page = app_phone.pages[0] if app_phone.pages else app_phone.new_page()
    wire = Wire(app_phone, page)

    open_page(page, settings.base_url + path(settings, first))
    load = received.take()
    assert len(load) <= 4 and load[0] == f"GET {path(settings, first)} 200"
    assert sorted(load[1:]) == sorted(f"GET {asset_url(s)} 200" for s in SCRIPTS)
    assert wire.bytes < 30_000, f"{wire.bytes:,} bytes on the wire"

    check_in_first_time(page)
    controlled(page)  # the worker, registered after the check-in, took over
    after = received.take()
    assert f"POST {path(settings, first)} 200" in after and "GET /sw.js 200" in after
    assert any(r.startswith("GET /manifest.webmanifest?lang=vi&v=") for r in after)

    wire.reset()
    open_page(page, settings.base_url + path(settings, later))
    page.wait_for_timeout(1500)  # the browser's own follow-ups: the manifest, the worker's update check
    asked = {re.sub(r"^https?://[^/]+", "", url) for url in wire.urls}
    assert {asset_url(s) for s in SCRIPTS} <= asked, "the page asked for its scripts: its caches answered"
    on_server = received.take()
    # The browser checks for a newer worker after each page it controls; the ETag makes that a body-less 304.
    assert [r for r in on_server if not r.startswith("GET /sw.js ")] == [f"GET {path(settings, later)} 200"]
    assert {r for r in on_server if r.startswith("GET /sw.js ")} <= {"GET /sw.js 304"}

    page.locator("button.checkin-button").tap()
    expect(page.locator("#checkin")).to_contain_text(DONE)
    assert count_rows(session, CheckIn) == 2


def test_without_a_worker_a_return_visit_fetches_only_the_page_too(
    received: AccessLog, new_context: Any, pixel5: dict[str, Any], session: Session, settings: Settings
) -> None:
    """An in-app browser with no service worker (Zalo's on some phones): the HTTP cache keeps the files."""
    first, later = two_events(session)
    phone: BrowserContext = new_context(**pixel5, service_workers="block")
    page = phone.new_page()
    wire = Wire(phone, page)

    open_page(page, settings.base_url + path(settings, first))
    assert len(received.take()) <= 4 and wire.bytes < 30_000
    check_in_first_time(page)
    received.take()

    wire.reset()
    open_page(page, settings.base_url + path(settings, later))
    page.wait_for_timeout(1500)
    asked = {re.sub(r"^https?://[^/]+", "", url) for url in wire.urls}
    assert {asset_url(s) for s in SCRIPTS} <= asked
    assert received.take() == [f"GET {path(settings, later)} 200"]
    page.locator("button.checkin-button").tap()
    expect(page.locator("#checkin")).to_contain_text(DONE)
    assert count_rows(session, CheckIn) == 2
