"""The API's reference page works offline from a commune office: Swagger UI from static/vendor, under the
app's own CSP (which blocked the CDN copy FastAPI loads by default, leaving a blank page)."""

from __future__ import annotations

import pytest
from playwright.sync_api import BrowserContext, expect

from tests.browser.support import Server
from tests.browser.test_phone_checkin import watch

pytestmark = pytest.mark.browser


def test_api_docs_show_every_endpoint_with_nothing_from_outside(
    live_server: Server, desk: BrowserContext
) -> None:
    page = desk.new_page()
    problems = watch(page)
    outside: list[str] = []
    page.on(
        "request", lambda r: outside.append(r.url) if not r.url.startswith(live_server.base_url) else None
    )
    page.goto(f"{live_server.base_url}/api/docs")
    expect(page.locator(".opblock-summary-path", has_text="/api/v1/checkins/batch")).to_be_visible()
    expect(page.locator(".opblock-summary-path", has_text="/api/v1/kiosk/batch")).to_be_visible()
    page.wait_for_load_state("networkidle")
    assert problems == [] and outside == []
