"""The organizer runs an event from their own phone (a 360 px screen), and the resident's page on a phone.

Every test runs on SQLite and, with TEST_DATABASE_URL, on PostgreSQL (the `database_url` fixture).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import PIL.Image
import pytest
import zxingcpp
from playwright.sync_api import BrowserContext, Locator, Page, expect
from sqlmodel import Session, select

from server import codes
from server.config import Settings
from server.models import (
    AgeBand,
    Channel,
    CheckIn,
    CheckInMode,
    Event,
    Gender,
    Headcount,
    OrgUnit,
    Participant,
    Role,
    Staff,
    Venue,
    utcnow,
)
from server.rotation import PERIOD, accepts, token
from server.services import checkin, identities, scans
from server.services.identities import Profile
from tests.browser.support import Server
from tests.factories import (
    PASSWORD,
    count_rows,
    make_event,
    make_participant,
    make_staff,
    make_tree,
    make_venue,
)

pytestmark = pytest.mark.browser

WIDTH = 360
CHECKED_IN = "Đã điểm danh"  # "Checked in: %(who)s, %(time)s."
ALREADY = re.compile(r"đã điểm danh lúc \d\d:\d\d")  # "%(who)s was already checked in at %(time)s."
BELOW_ZERO = "Số đếm không thể nhỏ hơn 0."
CARD_INVALID = "Số thẻ không hợp lệ. Vui lòng kiểm tra lại số in trên thẻ."
NAME_FOR_CHILD = "Chúng tôi không ghi tên của người dưới 16 tuổi. Vui lòng để trống ô họ tên."
CODE_INVALID = "Mã không hợp lệ. Vui lòng kiểm tra lại chữ và số rồi thử lại."
PLUS = "Thêm một"  # the +1 button's aria-label
MINUS = "Bớt một"
CARD_INPUT = "Số thẻ"
SEARCH_BOX = "Tên hoặc số thẻ"
CHECK_IN = "Điểm danh"


@pytest.fixture
def small_phone(new_context: Any, pixel5: dict[str, Any]) -> BrowserContext:
    """The organizer's own cheap Android phone: a 360 px wide screen, Vietnamese."""
    size = {"width": WIDTH, "height": 740}
    context: BrowserContext = new_context(**{**pixel5, "viewport": size, "screen": size})
    return context


@dataclass
class Desk:
    """An event in the organizer's commune, and the organizer's phone showing its page."""

    tree: dict[str, OrgUnit]
    venue: Venue
    event: Event
    organizer: Staff
    page: Page


def script_errors(page: Page) -> list[str]:
    """Uncaught script errors of a page (a refused 422 answer is expected, so requests are not watched)."""
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    return errors


def log_in(page: Page, base_url: str, username: str) -> None:
    page.goto(f"{base_url}/login")
    page.locator('input[name="username"]').fill(username)
    page.locator('input[name="password"]').fill(PASSWORD)
    page.locator('form[action="/login"] button').tap()
    expect(page).not_to_have_url(re.compile(r"/login"))


def open_desk(session: Session, context: BrowserContext, server: Server, **event_overrides: Any) -> Desk:
    tree = make_tree(session)
    venue = make_venue(session, tree["village"], name="Nhà văn hóa thôn Bản Cưởm")
    event = make_event(session, venue, **event_overrides)
    organizer = make_staff(session, Role.organizer, tree["commune"])
    page = context.new_page()
    log_in(page, server.base_url, organizer.username)
    page.goto(f"{server.base_url}/events/{event.id}")
    expect(page.get_by_role("heading", level=1)).to_have_text(event.title)
    return Desk(tree, venue, event, organizer, page)


def assert_fits(page: Page) -> None:
    """No horizontal scrolling on the 360 px screen."""
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= WIDTH, f"the page is {width} px wide on a {WIDTH} px screen"


def assert_inside_the_screen(locator: Locator) -> None:
    box = locator.bounding_box()
    assert box is not None
    assert box["x"] >= 0 and box["x"] + box["width"] <= WIDTH, f"{locator} sticks out: {box}"


def card_form(page: Page) -> Locator:
    return page.locator("form#card")


def people(page: Page) -> Locator:
    return page.locator("#people")


# --- The organizer's pages fit the phone ---------------------------------------------------------------


def test_events_list_and_event_page_fit_a_360px_screen(
    live_server: Server, small_phone: BrowserContext, session: Session, shoot: Any
) -> None:
    tree = make_tree(session)
    venue = make_venue(session, tree["village"], name="Nhà văn hóa thôn Bản Cưởm")
    event = make_event(session, venue, title="Ngày hội đọc sách thôn Bản Cưởm, xã Văn Quan, tỉnh Lạng Sơn")
    make_event(session, venue, title="Câu lạc bộ đọc sách cuối tuần")
    organizer = make_staff(session, Role.organizer, tree["commune"])
    page = small_phone.new_page()
    errors = script_errors(page)
    log_in(page, live_server.base_url, organizer.username)

    page.goto(f"{live_server.base_url}/events")
    expect(page.locator(".event-list li")).to_have_count(2)
    expect(page.locator("table")).to_have_count(0)
    assert page.evaluate("window.innerWidth") == WIDTH
    assert_fits(page)
    shoot(page, "events-list")

    page.get_by_role("link", name=event.title).tap()
    expect(page).to_have_url(f"{live_server.base_url}/events/{event.id}")
    expect(page.get_by_role("heading", level=1)).to_have_text(event.title)
    controls = [
        page.locator("#live-visits"),
        page.locator("#live-people"),
        page.locator("#live-walk-ins"),
        page.get_by_role("button", name=PLUS, exact=True),
        page.get_by_role("button", name=MINUS, exact=True),
        page.get_by_role("textbox", name=CARD_INPUT, exact=True),
        card_form(page).get_by_role("button", name=CHECK_IN, exact=True),
        page.get_by_role("searchbox", name=SEARCH_BOX, exact=True),
    ]
    for control in controls:
        expect(control).to_be_visible()
        assert_inside_the_screen(control)
    for counter in controls[:3]:
        expect(counter).to_have_text("0")
    expect(page.get_by_role("button", name=PLUS, exact=True)).to_have_text("+1")
    expect(page.get_by_role("button", name=MINUS, exact=True)).to_have_text("−1")
    assert_fits(page)
    shoot(page, "event-page")
    assert errors == []


# --- Walk-ins: +1 / −1 ---------------------------------------------------------------------------------


def test_plus_and_minus_count_walk_ins_and_never_below_zero(
    live_server: Server, small_phone: BrowserContext, session: Session, shoot: Any
) -> None:
    desk = open_desk(session, small_phone, live_server)
    page = desk.page
    errors = script_errors(page)
    walk_ins, plus, minus = (
        page.locator("#walk-ins"),
        page.get_by_role("button", name=PLUS, exact=True),
        page.get_by_role("button", name=MINUS, exact=True),
    )
    expect(walk_ins).to_have_text("0")

    minus.tap()  # nothing counted yet
    refusal = page.locator("#headcount").get_by_role("alert")
    expect(refusal).to_have_text(BELOW_ZERO)
    expect(walk_ins).to_have_text("0")
    assert_fits(page)
    shoot(page, "1-minus-at-zero", full_page=False)
    assert count_rows(session, Headcount) == 0

    for n in (1, 2, 3):
        with page.expect_response(lambda r: r.url.endswith("/checkins/batch")) as answer:
            plus.tap()  # saved on the phone, then sent from the outbox
        assert answer.value.status == 200, answer.value.text()
        expect(walk_ins).to_have_text(str(n))
        shoot(page, f"{n + 1}-plus-{n}", full_page=False)
    expect(refusal).to_have_count(0)
    with page.expect_response(lambda r: r.url.endswith("/checkins/batch")) as answer:
        minus.tap()
    assert answer.value.status == 200, answer.value.text()
    expect(walk_ins).to_have_text("2")
    shoot(page, "5-minus", full_page=False)

    # The live counts poll every second: walk-ins are visits, never people.
    expect(page.locator("#live-visits")).to_have_text("2", timeout=3000)
    expect(page.locator("#live-walk-ins")).to_have_text("2")
    expect(page.locator("#live-people")).to_have_text("0")
    assert_fits(page)
    shoot(page, "6-live")

    session.commit()
    deltas = sorted(session.exec(select(Headcount.delta).where(Headcount.event_id == desk.event.id)).all())
    assert deltas == [-1, 1, 1, 1]
    assert count_rows(session, CheckIn) == 0
    assert errors == []


# --- Card number ---------------------------------------------------------------------------------------


def test_card_number_typed_in_lower_case_checks_in_once(
    live_server: Server, small_phone: BrowserContext, session: Session, settings: Settings, shoot: Any
) -> None:
    desk = open_desk(session, small_phone, live_server)
    page = desk.page
    errors = script_errors(page)
    profile = Profile(AgeBand.from_60, Gender.male, home_unit_id=desk.tree["commune"].id, consent=True)
    holder = identities.new_participant(session, profile, utcnow())
    session.commit()
    card = identities.issue_card(session, settings, desk.organizer, holder, desk.venue)
    typed = codes.pretty(card.lookup).lower()
    assert "-" in typed and typed != typed.upper()

    field = page.get_by_role("textbox", name=CARD_INPUT, exact=True)
    field.fill(typed)
    card_form(page).get_by_role("button", name=CHECK_IN, exact=True).tap()
    expect(card_form(page).get_by_role("status")).to_contain_text(CHECKED_IN)
    expect(card_form(page).get_by_role("status")).to_contain_text(f"Người tham gia số {holder.id}")
    expect(field).to_have_value("")
    assert_fits(page)
    shoot(page, "1-checked-in", full_page=False)
    session.commit()
    stored = session.exec(select(CheckIn)).all()
    assert [(row.participant_id, row.credential_id) for row in stored] == [(holder.id, card.id)]
    expect(page.locator("#live-visits")).to_have_text("1")

    field.fill(typed)
    card_form(page).get_by_role("button", name=CHECK_IN, exact=True).tap()
    expect(card_form(page).get_by_role("status")).to_contain_text(ALREADY)
    shoot(page, "2-already", full_page=False)
    assert count_rows(session, CheckIn) == 1

    made_up = "7k-3m9q-x2ab"
    field.fill(made_up)
    card_form(page).get_by_role("button", name=CHECK_IN, exact=True).tap()
    expect(card_form(page).get_by_role("alert")).to_have_text(CARD_INVALID)
    expect(field).to_have_value(made_up)  # kept, to correct one character
    assert_fits(page)
    shoot(page, "3-invalid", full_page=False)
    assert count_rows(session, CheckIn) == 1
    assert errors == []


# --- Find by name --------------------------------------------------------------------------------------


def test_find_by_name_without_diacritics_and_check_in(
    live_server: Server, small_phone: BrowserContext, session: Session, shoot: Any
) -> None:
    desk = open_desk(session, small_phone, live_server)
    page = desk.page
    errors = script_errors(page)
    duc = make_participant(
        session,
        name="Nguyễn Văn Đức",
        age_band=AgeBand.from_25,
        gender=Gender.male,
        home_unit=desk.tree["commune"],
    )
    make_participant(session, name="Trần Thị Mai", home_unit=desk.tree["commune"])
    make_participant(
        session, name="Nguyễn Văn Đức", home_unit=desk.tree["other"]
    )  # not in this organizer's area

    page.get_by_role("searchbox", name=SEARCH_BOX, exact=True).press_sequentially("nguyen van")
    found = people(page).locator("ul.people > li")
    expect(found).to_have_count(1)  # htmx searched as it was typed, no button pressed
    expect(found).to_contain_text("Nguyễn Văn Đức")
    assert_fits(page)
    shoot(page, "1-found", full_page=False)

    found.get_by_role("button", name=CHECK_IN, exact=True).tap()
    expect(people(page).get_by_role("status")).to_contain_text(f"{CHECKED_IN}: Nguyễn Văn Đức")
    assert_fits(page)
    shoot(page, "2-checked-in", full_page=False)
    session.commit()
    stored = session.exec(select(CheckIn)).all()
    assert [(row.event_id, row.participant_id) for row in stored] == [(desk.event.id, duc.id)]
    assert errors == []


def test_search_box_keeps_what_a_slow_typist_types(
    live_server: Server, small_phone: BrowserContext, session: Session, shoot: Any
) -> None:
    """A person pauses while typing: the results arrive, and the next letters still go into the box."""
    desk = open_desk(session, small_phone, live_server)
    page = desk.page
    make_participant(session, name="Nguyễn Văn Đức", home_unit=desk.tree["commune"])
    make_participant(session, name="Nguyễn Thị Hoa", home_unit=desk.tree["commune"])
    box = page.get_by_role("searchbox", name=SEARCH_BOX, exact=True)

    box.tap()
    page.keyboard.type("nguyen")
    expect(people(page).locator("ul.people > li")).to_have_count(2)  # the first results came in
    shoot(page, "results-in", full_page=False)
    expect(box).to_be_focused(timeout=1000)  # htmx swapped the whole #people section, input included
    page.keyboard.type(" van")
    expect(box).to_have_value("nguyen van")
    expect(people(page).locator("ul.people > li")).to_have_count(1)


# --- The rotating screen code --------------------------------------------------------------------------


def decoded(path: Any) -> list[str]:
    return [r.text for r in zxingcpp.read_barcodes(PIL.Image.open(path)) if r.format == zxingcpp.QRCode]


def test_rotating_screen_code_on_the_phone_changes_each_step(
    live_server: Server,
    small_phone: BrowserContext,
    new_context: Any,
    pixel5: dict[str, Any],
    session: Session,
    settings: Settings,
    shoot: Any,
) -> None:
    desk = open_desk(session, small_phone, live_server, checkin_mode=CheckInMode.rotating)
    event, link = desk.event, scans.link_for(desk.event, settings)
    key = scans.rotation_key(event, settings)
    page = small_phone.new_page()
    errors = script_errors(page)
    # The phone's own clock is wrong (March 2026); the page corrects it with the server's time.
    fake = datetime(2026, 3, 8, 1, 0, 7, tzinfo=UTC)
    page.clock.install(time=fake - timedelta(minutes=1))
    page.clock.pause_at(fake)
    page.goto(f"{live_server.base_url}/events/{event.id}/screen")
    expect(page.locator("#screen[data-step] svg")).to_be_visible()
    server_ms = int(page.get_attribute("#screen", "data-server-ms") or "0")
    assert abs(server_ms / 1000 - utcnow().timestamp()) < 60
    assert page.evaluate("Date.now()") == int(fake.timestamp() * 1000)

    first = int(page.get_attribute("#screen", "data-step") or "0")
    assert first == server_ms // (PERIOD * 1000), "the server's step, not the phone clock's"
    left = PERIOD * 1000 - server_ms % (PERIOD * 1000)
    expect(page.locator("#screen-seconds")).to_have_text(str(-(-left // 1000)))
    assert_fits(page)
    shot = shoot(page, "1-screen")
    assert decoded(shot) == [f"{link}?t={token(key, first)}"]

    page.clock.run_for(PERIOD * 1000)
    second = int(page.get_attribute("#screen", "data-step") or "0")
    assert second == first + 1
    shot = shoot(page, "2-next-step")
    first_token, second_token = token(key, first), token(key, second)
    assert decoded(shot) == [f"{link}?t={second_token}"]
    assert first_token != second_token

    def at(step: int) -> datetime:
        return datetime.fromtimestamp(step * PERIOD, UTC)

    assert accepts(key, first_token, at(first)) and accepts(key, second_token, at(second))
    assert accepts(key, first_token, at(first + 1)), "one step old still works (a slow camera)"
    assert not accepts(key, first_token, at(first + 2)), "a forwarded photo stops working"
    assert not accepts(key, second_token, at(first)), "no token works before its step"

    # The first code is the server's current step (or one before): a resident's phone opens its form.
    resident = new_context(**pixel5).new_page()
    resident.goto(f"{link}?t={first_token.lower()}")
    expect(resident.get_by_role("heading", level=1)).to_have_text(event.title)
    expect(resident.get_by_role("button", name=CHECK_IN, exact=True)).to_be_visible()
    assert errors == []


# --- The resident's page on a phone --------------------------------------------------------------------


def test_resident_sees_the_child_name_refusal_right_above_the_button(
    live_server: Server, small_phone: BrowserContext, session: Session, settings: Settings, shoot: Any
) -> None:
    event = make_event(session, make_venue(session, make_tree(session)["village"]))
    page = small_phone.new_page()
    errors = script_errors(page)
    page.goto(scans.link_for(event, settings))
    expect(page.get_by_role("heading", level=1)).to_have_text(event.title)
    page.evaluate("window.scrollTo(0, document.documentElement.scrollHeight)")
    page.locator(".choices label").filter(has_text=re.compile("^Dưới 6 tuổi$")).tap()
    page.locator(".choices label").filter(has_text=re.compile("^Nam$")).tap()
    page.locator('input[name="name"]').fill("Bé Na")
    page.locator('input[name="consent"]').check()
    button = page.get_by_role("button", name=CHECK_IN, exact=True)
    button.tap()

    error = page.locator("#checkin").get_by_role("alert")
    expect(error).to_have_text(NAME_FOR_CHILD)
    expect(error).to_be_in_viewport(ratio=1)
    expect(button).to_be_in_viewport()
    assert error.evaluate("e => e.nextElementSibling && e.nextElementSibling.matches('button')")
    above, under = error.bounding_box(), button.bounding_box()
    assert above is not None and under is not None
    gap = under["y"] - (above["y"] + above["height"])
    assert 0 <= gap <= 32, f"{gap} px between the message and the button"
    # What was chosen stays, so only the name needs changing.
    expect(page.get_by_role("radio", name="Dưới 6 tuổi", exact=True)).to_be_checked()
    expect(page.locator('input[name="name"]')).to_have_value("Bé Na")
    assert_fits(page)
    shoot(page, "refused", full_page=False)
    assert count_rows(session, CheckIn) == 0
    assert count_rows(session, Participant) == 0
    assert errors == []


def test_mistyped_code_on_the_start_page_keeps_what_was_typed(
    live_server: Server, small_phone: BrowserContext, session: Session, settings: Settings, shoot: Any
) -> None:
    event = make_event(session, make_venue(session, make_tree(session)["village"]))
    right = codes.pretty(scans.code_for(event, settings)).lower()
    wrong = right[:-1] + ("x" if right[-1] != "x" else "y")  # one character off
    page = small_phone.new_page()
    page.goto(f"{live_server.base_url}/")
    field = page.locator('input[name="code"]')
    field.fill(wrong)
    page.get_by_role("button", name="Tiếp tục", exact=True).tap()
    expect(page).to_have_url(re.compile(r"/c\?code="))
    expect(page.get_by_role("alert")).to_have_text(CODE_INVALID)
    expect(page.get_by_role("alert")).to_be_in_viewport()
    expect(page.locator('input[name="code"]')).to_have_value(wrong)
    assert_fits(page)
    shoot(page, "mistyped")

    page.locator('input[name="code"]').fill(right)
    page.get_by_role("button", name="Tiếp tục", exact=True).tap()
    expect(page.get_by_role("heading", level=1)).to_have_text(event.title)


def test_a_live_update_never_moves_the_buttons_under_the_finger(
    live_server: Server, small_phone: BrowserContext, session: Session, settings: Settings
) -> None:
    """The first check-in adds tables to the live counts: they appear below the desk, so the +1 button an
    organizer is about to tap stays where it was."""
    desk = open_desk(session, small_phone, live_server)
    page = desk.page
    plus = page.get_by_role("button", name=PLUS, exact=True)
    before = plus.bounding_box()
    phone = checkin.Identity(profile=Profile(AgeBand.from_25, Gender.female, consent=True))
    request = checkin.CheckInRequest(
        Channel.public_api, "live-layout-1", phone, code=scans.code_for(desk.event, settings)
    )
    checkin.check_in(session, settings, request)
    expect(page.locator("#live-visits")).to_have_text("1")
    expect(page.locator("#live-details .latest li")).to_have_count(1)
    assert plus.bounding_box() == before
