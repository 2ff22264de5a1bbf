"""A resident's phone and an organizer's laptop against the real server, in Debian's Chromium.

Every test runs on SQLite and, with TEST_DATABASE_URL, on PostgreSQL (the `database_url` fixture).
"""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx2
import PIL.Image
import pytest
import zxingcpp
from playwright.sync_api import BrowserContext, Page, expect
from sqlmodel import Session, select

from server.config import Settings
from server.models import CheckIn, CheckInAttempt, Event, Participant, Role
from server.services.scans import code_for
from tests.browser.support import SCREENSHOTS, Server
from tests.browser.test_offline import controlled
from tests.factories import PASSWORD, count_rows, make_event, make_staff, make_tree, make_venue

pytestmark = pytest.mark.browser

DONE = "Bạn đã điểm danh thành công"
CONSENT_ERROR = "Vui lòng đánh dấu vào ô đồng ý trước khi điểm danh."
EARLIER = re.compile(r"Bạn đã điểm danh lúc (\d\d:\d\d)")
ZALO = " Zalo/23.05.01"


def link(settings: Settings, event: Event) -> str:
    return f"{settings.base_url}/c/{code_for(event, settings)}"


def watch(page: Page) -> list[str]:
    """Script errors and failed requests of a page (CSP refusals show up here too)."""
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    page.on(
        "console",
        lambda msg: (
            problems.append(f"console: {msg.text} ({msg.location.get('url')})")
            if msg.type == "error"
            else None
        ),
    )
    page.on(
        "requestfailed",
        lambda request: problems.append(f"request failed: {request.url} ({request.failure})"),
    )
    page.on(
        "response",
        lambda response: (
            problems.append(f"{response.status}: {response.url}") if response.status >= 400 else None
        ),
    )
    return problems


def posts(page: Page) -> list[str]:
    sent: list[str] = []
    page.on("request", lambda request: sent.append(request.url) if request.method == "POST" else None)
    return sent


def checkin_button(page: Page) -> Any:
    return page.get_by_role("button", name="Điểm danh", exact=True)


def fill_first_time(page: Page, age: str = "25–59 tuổi", gender: str = "Nữ", *, consent: bool = True) -> None:
    """What a resident does on a new phone: tap an age group and a gender, tick the consent box."""
    page.locator(".choices label").filter(has_text=re.compile(f"^{re.escape(age)}$")).tap()
    page.locator(".choices label").filter(has_text=re.compile(f"^{re.escape(gender)}$")).tap()
    expect(page.get_by_role("radio", name=age, exact=True)).to_be_checked()
    expect(page.get_by_role("radio", name=gender, exact=True)).to_be_checked()
    if consent:
        page.locator('input[name="consent"]').check()


def device_cookie(context: BrowserContext) -> str | None:
    return next((c["value"] for c in context.cookies() if c["name"] == "dd_device"), None)


def mirrored(page: Page, token: str) -> None:
    """checkin.js copies the device cookie into localStorage (after htmx's swap)."""
    page.wait_for_function("token => localStorage.getItem('dd_device') === token", arg=token, timeout=2000)


def local_clock(settings: Settings, when: datetime) -> str:
    return when.astimezone(settings.tz).strftime("%H:%M")


def assert_fits_the_screen(page: Page) -> None:
    """Nothing sticks out sideways on the phone (no horizontal scrolling)."""
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"the page is {overflow} px wider than the screen"


def log_in(page: Page, base_url: str, username: str) -> None:
    page.goto(f"{base_url}/login")
    page.locator('input[name="username"]').fill(username)
    page.locator('input[name="password"]').fill(PASSWORD)
    page.locator('form[action="/login"] button').click()
    expect(page).not_to_have_url(re.compile(r"/login"))


def test_resident_checks_in_then_one_tap_at_the_next_event(
    live_server: Server, phone: BrowserContext, session: Session, settings: Settings, shoot: Any
) -> None:
    tree = make_tree(session)
    venue = make_venue(session, tree["village"], name="Nhà văn hóa thôn Bản Cưởm")
    first = make_event(session, venue, title="Ngày hội đọc sách thôn Bản Cưởm")
    second = make_event(session, venue, title="Câu lạc bộ đọc sách cuối tuần")
    page = phone.new_page()
    problems = watch(page)
    navigations: list[str] = []
    page.on(
        "framenavigated", lambda frame: navigations.append(frame.url) if frame == page.main_frame else None
    )

    page.goto(link(settings, first))
    expect(page.get_by_role("heading", level=1)).to_have_text("Ngày hội đọc sách thôn Bản Cưởm")
    expect(page.get_by_text("Nhà văn hóa thôn Bản Cưởm")).to_be_visible()
    expect(checkin_button(page)).to_be_visible()
    assert_fits_the_screen(page)
    shoot(page, "1-form")
    fill_first_time(page, "Từ 60 tuổi", "Nam")
    shoot(page, "2-filled")

    page.evaluate("window.__sameDocument = 'kept'")
    loads = len(navigations)
    checkin_button(page).tap()
    expect(page.locator("#checkin")).to_contain_text(DONE)
    assert page.evaluate("window.__sameDocument") == "kept", "htmx swapped the answer in, no page load"
    assert len(navigations) == loads
    assert_fits_the_screen(page)
    shoot(page, "3-done")

    token = device_cookie(phone)
    assert token, "the server gave the phone a device token"
    mirrored(page, token)
    session.commit()  # end the session's read snapshot: see what the server stored
    stored = session.exec(select(CheckIn)).one()
    assert stored.event_id == first.id and stored.age_band == "60+" and stored.gender == "male"
    clock = local_clock(settings, stored.checked_in_at)

    page.reload()
    expect(page.locator("#checkin")).to_contain_text(f"Bạn đã điểm danh lúc {clock}")
    expect(page.locator('input[name="age_band"]')).to_have_count(0)
    page.goto(link(settings, first))
    expect(page.locator("#checkin")).to_contain_text(EARLIER)
    expect(checkin_button(page)).to_have_count(0)
    shoot(page, "4-earlier")

    page.goto(link(settings, second))
    expect(page.get_by_role("heading", level=1)).to_have_text("Câu lạc bộ đọc sách cuối tuần")
    expect(checkin_button(page)).to_be_visible()
    expect(page.locator('input[name="age_band"], input[name="gender"], input[name="consent"]')).to_have_count(
        0
    )
    shoot(page, "5-one-tap")
    checkin_button(page).tap()
    expect(page.locator("#checkin")).to_contain_text(DONE)

    assert count_rows(session, Participant) == 1
    assert count_rows(session, CheckIn) == 2
    assert problems == []


def test_without_javascript_the_form_posts(
    live_server: Server,
    new_context: Any,
    pixel5: dict[str, Any],
    session: Session,
    settings: Settings,
    shoot: Any,
) -> None:
    event = make_event(session, make_venue(session, make_tree(session)["village"]))
    context: BrowserContext = new_context(**pixel5, java_script_enabled=False)
    page = context.new_page()
    page.goto(link(settings, event))
    assert page.evaluate("1 + 1") == 2  # Playwright's own evaluate still runs; the page's scripts do not
    fill_first_time(page, "12–15 tuổi", "Khác / không muốn nói")
    with page.expect_navigation() as navigation:
        checkin_button(page).tap()
    response = navigation.value
    assert response is not None and response.status == 200
    assert response.request.method == "POST"
    expect(page.locator("#checkin")).to_contain_text(DONE)
    expect(page.get_by_role("heading", level=1)).to_have_text(event.title)  # the whole page came back
    shoot(page, "done")
    assert device_cookie(context)
    assert count_rows(session, CheckIn) == 1
    page.goto(link(settings, event))
    expect(page.locator("#checkin")).to_contain_text(EARLIER)


def test_zalo_browser_that_drops_cookies_keeps_the_phone_known(
    live_server: Server,
    new_context: Any,
    pixel5: dict[str, Any],
    session: Session,
    settings: Settings,
    shoot: Any,
) -> None:
    venue = make_venue(session, make_tree(session)["village"])
    first, second = make_event(session, venue), make_event(session, venue, title="Đọc sách cùng con")
    context: BrowserContext = new_context(**{**pixel5, "user_agent": pixel5["user_agent"] + ZALO})
    page = context.new_page()
    problems = watch(page)
    page.goto(link(settings, first))
    assert page.evaluate("navigator.userAgent").endswith(ZALO)
    fill_first_time(page, "16–24 tuổi", "Nữ")
    checkin_button(page).tap()
    expect(page.locator("#checkin")).to_contain_text(DONE)
    token = device_cookie(context)
    assert token
    mirrored(page, token)

    context.clear_cookies()  # what some in-app browsers do between visits; localStorage stays
    assert device_cookie(context) is None
    page.goto(link(settings, second))
    # checkin.js puts the saved token back into the cookie and reloads: the server now knows the phone.
    expect(page.get_by_role("heading", level=1)).to_have_text("Đọc sách cùng con")
    expect(page.locator("form[data-new-participant]")).to_have_count(0)
    expect(page.locator('input[name="age_band"]')).to_have_count(0)
    expect(checkin_button(page)).to_be_visible()
    assert device_cookie(context) == token
    shoot(page, "one-tap-after-cookies-cleared")
    checkin_button(page).tap()
    expect(page.locator("#checkin")).to_contain_text(DONE)
    assert count_rows(session, Participant) == 1
    assert count_rows(session, CheckIn) == 2
    assert problems == []


def test_no_consent_no_check_in(
    live_server: Server, phone: BrowserContext, session: Session, settings: Settings, shoot: Any
) -> None:
    event = make_event(session, make_venue(session, make_tree(session)["village"]))
    page = phone.new_page()
    sent = posts(page)
    page.goto(link(settings, event))
    fill_first_time(page, "25–59 tuổi", "Nam", consent=False)
    checkin_button(page).tap()
    consent = page.locator('input[name="consent"]')
    assert consent.evaluate("box => box.validity.valueMissing") is True
    page.evaluate("1")  # one round trip to the page: a submit would have started its request by now
    assert sent == [], "the browser's `required` stops the form"
    expect(page.locator("#checkin")).not_to_contain_text(DONE)

    # A browser that ignores `required` (or a hand-made request): the server refuses too.
    consent.evaluate("box => box.removeAttribute('required')")
    page.evaluate("window.__sameDocument = 'kept'")
    checkin_button(page).tap()
    expect(page.get_by_role("alert")).to_have_text(CONSENT_ERROR)
    assert page.evaluate("window.__sameDocument") == "kept"
    assert len(sent) == 1
    # The form comes back with the resident's choices kept and the box still to tick.
    expect(page.get_by_role("radio", name="25–59 tuổi", exact=True)).to_be_checked()
    expect(page.get_by_role("radio", name="Nam", exact=True)).to_be_checked()
    expect(page.locator('input[name="consent"]')).not_to_be_checked()
    assert_fits_the_screen(page)
    shoot(page, "refused")
    assert count_rows(session, CheckIn) == 0
    assert count_rows(session, Participant) == 0
    outcomes = session.exec(select(CheckInAttempt.outcome)).all()
    assert outcomes == ["consent_required"]

    page.locator('input[name="consent"]').check()
    checkin_button(page).tap()
    expect(page.locator("#checkin")).to_contain_text(DONE)
    assert count_rows(session, CheckIn) == 1


def check_in_over_http(url: str) -> None:
    """A second resident on another phone, as plain HTTP: load the form, post it."""
    with httpx2.Client(timeout=10) as client:
        page = client.get(url)
        nonce = re.search(r'name="nonce" value="([^"]+)"', page.text)
        assert page.status_code == 200 and nonce
        data = {"nonce": nonce.group(1), "age_band": "6-11", "gender": "female", "consent": "yes"}
        done = client.post(url, data=data)
        assert done.status_code == 200 and DONE in done.text


def test_organizer_sees_check_ins_arrive_without_reloading(
    live_server: Server,
    desk: BrowserContext,
    phone: BrowserContext,
    session: Session,
    settings: Settings,
    shoot: Any,
) -> None:
    tree = make_tree(session)
    event = make_event(session, make_venue(session, tree["village"]))
    organizer = make_staff(session, Role.organizer, tree["commune"])
    page = desk.new_page()
    problems = watch(page)
    log_in(page, live_server.base_url, organizer.username)
    page.goto(f"{live_server.base_url}/events/{event.id}")
    expect(page.locator("#live-visits")).to_have_text("0")
    expect(page.locator("#checkin-link")).to_have_text(link(settings, event))
    page.evaluate("window.__sameDocument = 'kept'")

    resident = phone.new_page()
    resident.goto(link(settings, event))
    fill_first_time(resident, "Dưới 6 tuổi", "Nam")
    checkin_button(resident).tap()
    expect(resident.locator("#checkin")).to_contain_text(DONE)
    expect(page.locator("#live-visits")).to_have_text("1", timeout=2500)

    check_in_over_http(link(settings, event))
    expect(page.locator("#live-visits")).to_have_text("2", timeout=2500)
    expect(page.locator("#live-people")).to_have_text("2")
    expect(page.locator("#live-details .latest li")).to_have_count(2)
    assert page.evaluate("window.__sameDocument") == "kept", "the count changed without a reload"
    shoot(page, "live")
    assert problems == []


def pdf_pages(pdf: bytes) -> int:
    """Page objects in a PDF (Chromium writes them uncompressed): /Type /Page, not /Type /Pages."""
    return len(re.findall(rb"/Type\s*/Page(?![A-Za-z])", pdf))


def test_poster_scans_and_prints_on_one_page(
    live_server: Server,
    desk: BrowserContext,
    session: Session,
    settings: Settings,
    shoot: Any,
    tmp_path: Path,
) -> None:
    tree = make_tree(session)
    event = make_event(session, make_venue(session, tree["village"]), title="Ngày hội đọc sách xã Văn Quan")
    organizer = make_staff(session, Role.organizer, tree["commune"])
    page = desk.new_page()
    log_in(page, live_server.base_url, organizer.username)
    controlled(page)  # the worker's take-over may cancel a request half-way: see the next test
    problems = watch(page)
    page.goto(f"{live_server.base_url}/events/{event.id}/poster")
    sheet = page.locator(".sheet")
    expect(page.locator(".sheet > svg")).to_be_visible()
    shoot(page, "page")
    image = tmp_path / "poster.png"
    sheet.screenshot(path=str(image))
    found = zxingcpp.read_barcodes(PIL.Image.open(image))
    assert [code.text for code in found] == [link(settings, event)]

    pdf = page.pdf(format="A4")
    assert pdf.startswith(b"%PDF")
    (SCREENSHOTS / f"poster-{settings.database_url.split(':')[0]}.pdf").write_bytes(pdf)
    assert pdf_pages(pdf) == 1, "the poster prints on exactly one A4 page"
    assert [p for p in problems if "/favicon.ico" not in p] == []


def test_poster_page_loads_without_errors(
    live_server: Server, desk: BrowserContext, session: Session, settings: Settings
) -> None:
    """Every request of the poster page succeeds (a page without <link rel="icon"> makes Chromium ask for
    /favicon.ico, which is a 404 here: the other pages link /static/icon.svg)."""
    tree = make_tree(session)
    event = make_event(session, make_venue(session, tree["village"]))
    organizer = make_staff(session, Role.organizer, tree["commune"])
    page = desk.new_page()
    log_in(page, live_server.base_url, organizer.username)
    # The app's worker installs on the first page and claims it as it activates: wait for that, so no
    # take-over cancels one of the poster's requests half-way (as it would not on a phone used before).
    controlled(page)
    problems = watch(page)
    page.goto(f"{live_server.base_url}/events/{event.id}/poster")
    expect(page.locator(".sheet > svg")).to_be_visible()
    page.wait_for_load_state("networkidle")  # the favicon request comes after the load event
    assert problems == []
