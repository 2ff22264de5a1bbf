"""static/js/rotation.js computes the same tokens as server/rotation.py, and the screen draws a scannable code
that changes exactly at each step boundary (Debian's Chromium, the app's own static files)."""

from __future__ import annotations

import io
import random
from datetime import UTC, datetime, timedelta

import PIL.Image
import pytest
import zxingcpp
from playwright.sync_api import BrowserContext, Page

from server.rotation import PERIOD, event_key, step_at, token
from tests.browser.support import Server

pytestmark = pytest.mark.browser

KEY = event_key(
    "test-secret-key-0123456789", 42, datetime(2026, 3, 8, 1, tzinfo=UTC), datetime(2026, 3, 8, 3, tzinfo=UTC)
)
LINK = "http://127.0.0.1/c/1Z3F9QX2MA"
STEP = 88646670


def _page_with_script(phone: BrowserContext, live_server: Server, screen: str = "") -> Page:
    """A page of the app (its CSP applies), optionally holding a #screen element, with rotation.js loaded."""
    page = phone.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(live_server.base_url + "/healthz")
    if screen:
        page.evaluate("html => { document.body.innerHTML = html; }", screen)
        page.add_style_tag(url=live_server.base_url + "/static/css/app.css")
        page.add_script_tag(url=live_server.base_url + "/static/vendor/qrcode-generator/qrcode.js")
    page.add_script_tag(url=live_server.base_url + "/static/js/rotation.js")
    assert errors == []
    return page


def _stop_clock(phone: BrowserContext, seconds_into_step: int) -> None:
    """Fakes the phone's clock, paused `seconds_into_step` into STEP: timers fire only through run_for()."""
    at = datetime.fromtimestamp(STEP * PERIOD + seconds_into_step, UTC)
    phone.clock.install(time=at - timedelta(minutes=1))
    phone.clock.pause_at(at)


def _screen(offset_ms: int = 0) -> str:
    return (
        f'<div id="screen" data-key="{KEY}" data-link="{LINK}" data-period="{PERIOD}"'
        f' data-offset-ms="{offset_ms}"><div id="screen-qr" class="screen-qr"></div>'
        '<div class="screen-track"><div id="screen-bar" class="screen-bar"></div></div>'
        '<span id="screen-seconds"></span></div>'
    )


def _decoded(page: Page) -> list[str]:
    image = PIL.Image.open(io.BytesIO(page.locator("#screen-qr").screenshot()))
    return [r.text for r in zxingcpp.read_barcodes(image) if r.format == zxingcpp.QRCode]


def test_js_tokens_equal_python_tokens(live_server: Server, phone: BrowserContext) -> None:
    rng = random.Random(20)
    keys = [KEY, "00" * 32, "ff" * 32] + [rng.randbytes(32).hex() for _ in range(5)]
    steps = [0, 1, 9, 10, STEP, step_at(datetime.now(UTC)), 2**31 - 1, 2**31, 2**32 + 5, 10**12, 2**53 - 1]
    pairs = [(KEY, step) for step in steps] + [(key, rng.randrange(2**40)) for key in keys for _ in range(2)]
    page = _page_with_script(phone, live_server)

    got = page.evaluate("pairs => pairs.map(p => DiemdanhRotation.token(p[0], p[1]))", pairs)

    assert len(pairs) >= 20
    assert got == [token(key, step) for key, step in pairs]
    assert page.evaluate("DiemdanhRotation.PERIOD") == PERIOD
    for ms in (0, 19_999, 20_000, STEP * PERIOD * 1000 - 1, 1_772_931_607_123):
        moment = datetime.fromtimestamp(ms / 1000, UTC)
        assert page.evaluate("ms => DiemdanhRotation.step(ms)", ms) == step_at(moment)
    assert page.evaluate("a => DiemdanhRotation.link(a[0], a[1], a[2])", [LINK, KEY, STEP]) == (
        f"{LINK}?t={token(KEY, STEP)}"
    )


def test_screen_changes_its_code_exactly_at_each_step_boundary(
    live_server: Server, phone: BrowserContext
) -> None:
    _stop_clock(phone, 17)
    page = _page_with_script(phone, live_server, _screen())
    assert page.get_attribute("#screen", "data-step") == str(STEP)
    assert page.text_content("#screen-seconds") == "3"
    assert _decoded(page) == [f"{LINK}?t={token(KEY, STEP)}"]
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))

    phone.clock.run_for(2_990)
    assert page.get_attribute("#screen", "data-step") == str(STEP)
    assert page.text_content("#screen-seconds") == "1"

    phone.clock.run_for(20)
    assert page.get_attribute("#screen", "data-step") == str(STEP + 1)
    assert page.text_content("#screen-seconds") == str(PERIOD)
    assert _decoded(page) == [f"{LINK}?t={token(KEY, STEP + 1)}"]
    assert requests == []  # the screen works with no network once loaded


def test_screen_corrects_a_wrong_phone_clock_with_the_server_offset(
    live_server: Server, phone: BrowserContext
) -> None:
    _stop_clock(phone, 5)
    # The phone runs a day fast: the server says its time is 86,400,000 ms behind.
    page = _page_with_script(phone, live_server, _screen(offset_ms=-86_400_000))
    assert page.get_attribute("#screen", "data-step") == str(STEP - 86_400 // PERIOD)
    assert _decoded(page) == [f"{LINK}?t={token(KEY, STEP - 86_400 // PERIOD)}"]
