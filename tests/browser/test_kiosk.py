"""The kiosk on a phone: paired from a staff member's page by its QR code, reading personal cards printed by
qr/cards.py from Chromium's fake camera, offline through the outbox, and stopped at once when revoked.
Every test runs on SQLite and, with TEST_DATABASE_URL, on PostgreSQL.

Debian's Chromium has no BarcodeDetector, so these tests read with the vendored decoder (zxing-cpp in
WebAssembly), as a phone without one does."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import PIL.Image
import pytest
import zxingcpp
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, expect
from sqlmodel import Session, select

from qr.cards import Card
from server import codes
from server.config import Settings
from server.models import Channel, CheckIn, Participant, Role, Staff, Venue
from server.services import identities
from tests.browser.camera import camera_args, card_photos, frame_of, write_video
from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS
from tests.browser.support import Cable, Server
from tests.browser.test_offline import back_online, controlled, no_signal
from tests.browser.test_organizer_phone import log_in
from tests.factories import make_event, make_participant, make_staff, make_tree, make_venue

pytestmark = pytest.mark.browser

ACCEPTED = "Đã điểm danh"
QUEUED = "Đã lưu trên máy"
REFUSED = "Không được nhận"
NAME = "Hoàng Văn Nông"


class Site:
    """A venue with an event open now, its organizer, and two residents with cards."""

    def __init__(self, session: Session, settings: Settings) -> None:
        tree = make_tree(session)
        self.venue: Venue = make_venue(session, tree["village"], name="Nhà văn hóa thôn Bản Cưởm")
        self.event = make_event(session, self.venue, title="Câu lạc bộ đọc sách")
        self.other_venue = make_venue(session, tree["village"], name="Thư viện xã")
        self.organizer: Staff = make_staff(session, Role.organizer, tree["commune"])
        self.named = make_participant(session, name=NAME, name_unit=tree["village"])
        self.anonymous = make_participant(session)
        self.late = make_participant(session)
        self.cards = {
            who: identities.issue_card(session, settings, self.organizer, person, self.venue).lookup
            for who, person in (("named", self.named), ("anonymous", self.anonymous), ("late", self.late))
        }

    def card(self, who: str) -> Card:
        number = self.cards[who]
        return Card(codes.card_payload(number), codes.pretty(number), NAME if who == "named" else "", "")


@pytest.fixture
def site(session: Session, settings: Settings) -> Site:
    return Site(session, settings)


@pytest.fixture
def camera_video(browser: Browser, site: Site, tmp_path: Path) -> Path:
    """The fake camera's loop: the named resident's card for a second, the table, the other card, the
    table."""
    named, anonymous = card_photos(browser, [site.card("named"), site.card("anonymous")])
    frames = [frame_of(named)] * 10 + [frame_of(None)] * 5 + [frame_of(anonymous)] * 10 + [frame_of(None)] * 5
    return write_video(tmp_path / "cards.y4m", frames)


@pytest.fixture
def kiosk_phone(playwright: Playwright, tmp_path: Path, camera_video: Path) -> Iterator[BrowserContext]:
    """The kiosk: a phone with a profile that keeps the app's worker, and a camera showing the cards."""
    device = {k: v for k, v in playwright.devices["Pixel 5"].items() if k != "default_browser_type"}
    context = playwright.chromium.launch_persistent_context(
        str(tmp_path / "kiosk-profile"),
        executable_path=CHROMIUM,
        headless=True,
        args=[*CHROMIUM_ARGS, *camera_args(camera_video)],
        locale="vi-VN",
        timezone_id="Asia/Ho_Chi_Minh",
        **device,
    )
    context.set_default_timeout(10_000)
    yield context
    context.close()


def pairing_link(staff_phone: BrowserContext, server: Server, site: Site) -> tuple[Page, str]:
    """A staff member enrols a phone on their own phone's kiosks page; the link its QR code holds, decoded
    back."""
    page = staff_phone.new_page()
    log_in(page, server.base_url, site.organizer.username)
    page.goto(f"{server.base_url}/kiosks")
    page.locator('select[name="venue_id"]').select_option(str(site.venue.id))
    page.locator('input[name="name"]').fill("Điện thoại ở cửa")
    page.get_by_role("button", name="Đăng ký và hiện mã ghép nối").click()
    expect(page.locator("#pairing .pairing-code")).to_have_text(re.compile(r"^\d{4} \d{4}$"))
    shot = PIL.Image.open(io.BytesIO(page.locator("#pairing .qr").screenshot()))
    decoded = [result.text for result in zxingcpp.read_barcodes(shot)]
    assert len(decoded) == 1 and decoded[0].startswith(f"{server.base_url}/kiosk/pair?code=")
    return page, decoded[0]


def open_kiosk(kiosk_phone: BrowserContext, link: str, site: Site) -> Page:
    page = kiosk_phone.new_page()
    page.goto(link)
    page.get_by_role("button", name="Ghép nối điện thoại này").click()
    expect(page).to_have_url(re.compile(r"/kiosk$"))
    expect(page.locator("[data-device-name]")).to_have_text("Điện thoại ở cửa")
    expect(page.locator("[data-venue-name]")).to_have_text(site.venue.name)
    expect(page.locator("[data-event] option:checked")).to_contain_text("Câu lạc bộ đọc sách")
    controlled(page)
    return page


def result(page: Page) -> Any:
    return expect(page.locator("[data-result]"))


def kiosk_check_ins(session: Session, site: Site) -> dict[int, int]:
    session.expire_all()
    rows = session.exec(select(CheckIn).where(CheckIn.event_id == site.event.id)).all()
    assert all(row.channel == Channel.kiosk and row.recorded_by_id == site.organizer.id for row in rows)
    counts: dict[int, int] = {}
    for row in rows:
        counts[row.participant_id] = counts.get(row.participant_id, 0) + 1
    return counts


def type_card(page: Page, number: str) -> None:
    field = page.locator('[data-typed] input[name="card"]')
    field.fill(number)
    field.press("Enter")


def test_kiosk_pairs_by_qr_reads_cards_from_the_camera_and_knows_a_card_twice(
    live_server: Server,
    phone: BrowserContext,
    kiosk_phone: BrowserContext,
    session: Session,
    site: Site,
    shoot: Any,
    cable: Cable,
) -> None:
    _, link = pairing_link(phone, live_server, site)
    page = open_kiosk(kiosk_phone, link, site)
    page.get_by_role("button", name="Bật camera").click()
    # The camera shows the named card, then the anonymous one, in a loop: both are read and stored once.
    sent = page.locator("[data-outbox-lists] [data-items] li.outbox-item.sent")
    expect(sent).to_have_count(2, timeout=20_000)
    expect(sent.filter(has_text=NAME)).to_have_count(1)
    assert page.locator("[data-kiosk]").get_attribute("data-reader") == "vendored"
    # The loop brings each card back: this kiosk knows them, and nothing is stored twice.
    result(page).to_have_class(re.compile(r"\balready\b"), timeout=15_000)
    result(page).to_contain_text(re.compile(r"Đã điểm danh lúc \d\d:\d\d"))
    shoot(page, "kiosk-already")
    assert kiosk_check_ins(session, site) == {site.named.id: 1, site.anonymous.id: 1}

    # The worker kept the kiosk page and its decoder: with no signal the page opens and the camera reads.
    kept = page.evaluate(
        """async () => {
             // The worker fills the cache when the page asks it: wait for it, at most 10 s.
             for (let tries = 0; ; tries++) {
               const names = (await caches.keys()).filter(name => name.startsWith("kiosk-"));
               const urls = names.length ? (await (await caches.open(names[0])).keys()).map(r => r.url) : [];
               if (urls.length >= 4 || tries >= 100) return {names, urls};
               await new Promise(done => setTimeout(done, 100));
             }
           }"""
    )
    assert len(kept["names"]) == 1
    assert any(url.endswith("/kiosk") for url in kept["urls"])
    assert any(".wasm" in url for url in kept["urls"])
    no_signal(kiosk_phone, cable)
    page.reload()
    expect(page.locator("[data-status]")).to_contain_text("Không có mạng")
    page.get_by_role("button", name="Bật camera").click()
    result(page).to_have_class(re.compile(r"\balready\b"), timeout=15_000)
    assert page.locator("[data-kiosk]").get_attribute("data-reader") == "vendored"


def test_kiosk_typed_numbers_offline_queue_and_revocation(
    live_server: Server,
    phone: BrowserContext,
    kiosk_phone: BrowserContext,
    session: Session,
    site: Site,
    shoot: Any,
    cable: Cable,
) -> None:
    staff_page, link = pairing_link(phone, live_server, site)
    page = open_kiosk(kiosk_phone, link, site)
    # Typed, as printed (dashes, lower case): accepted, with the name the server knows.
    type_card(page, codes.pretty(site.cards["named"]).lower())
    result(page).to_have_class(re.compile(r"\baccepted\b"))
    result(page).to_contain_text(NAME)
    # Not a card at all: said at once, nothing queued.
    type_card(page, "HELLO")
    result(page).to_contain_text("Đây không phải thẻ điểm danh")
    # A well-formed number the server never issued: refused with its reason.
    forged = site.cards["anonymous"][:7] + ("000" if site.cards["anonymous"][7:] != "000" else "111")
    type_card(page, forged)
    result(page).to_have_class(re.compile(r"\brefused\b"))
    result(page).to_contain_text("Số thẻ không hợp lệ")

    # No signal: the page still opens, with the day's events, and a card is saved to be judged later.
    no_signal(kiosk_phone, cable)
    page.reload()
    expect(page.locator("[data-status]")).to_contain_text("Không có mạng")
    expect(page.locator("[data-event] option:checked")).to_contain_text("Câu lạc bộ đọc sách")
    type_card(page, site.cards["late"])
    result(page).to_have_class(re.compile(r"\bqueued\b"))
    result(page).to_contain_text(QUEUED)
    expect(page.locator("[data-outbox-counts]").first).to_contain_text("Đang chờ gửi: 1")
    shoot(page, "kiosk-queued")
    assert site.late.id not in kiosk_check_ins(session, site)
    # The same card again, offline: this kiosk knows it already.
    type_card(page, site.cards["late"])
    result(page).to_have_class(re.compile(r"\balready\b"))
    back_online(kiosk_phone, page, cable)
    result(page).to_have_class(re.compile(r"\baccepted\b"))
    expect(page.locator("[data-outbox-counts]").first).to_contain_text("Đang chờ gửi: 0")
    assert kiosk_check_ins(session, site) == {site.named.id: 1, site.late.id: 1}

    # Revoked on the staff member's page: the next card is refused, and the page says the phone stopped.
    staff_page.goto(f"{live_server.base_url}/kiosks")
    staff_page.locator("summary", has_text="Thu hồi").first.click()
    staff_page.get_by_role("button", name=re.compile("thu hồi máy")).first.click()
    type_card(page, site.cards["anonymous"])
    result(page).to_have_class(re.compile(r"\brefused\b"))
    page.reload()
    expect(page.locator("[data-unpaired]")).to_be_visible()
    assert site.anonymous.id not in kiosk_check_ins(session, site)
    assert session.get(Participant, site.anonymous.id) is not None
