"""A librarian enters a month of figures on a 360 px phone: the year page fits the screen, a month's own
button saves it, and an outlier is outlined. SQLite and, with TEST_DATABASE_URL, PostgreSQL."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest
from playwright.sync_api import BrowserContext, expect
from sqlmodel import Session

from server.config import Settings
from server.models import LibraryMetric, Role, VenueType
from server.services import library
from tests.browser.support import Server
from tests.browser.test_organizer_phone import WIDTH, assert_fits, log_in, script_errors, small_phone
from tests.factories import make_staff, make_tree, make_venue

pytestmark = pytest.mark.browser
__all__ = ["small_phone"]  # the 360 px phone fixture, shared with the organizer's tests


def test_a_month_of_library_figures_entered_on_a_phone(
    live_server: Server, small_phone: BrowserContext, session: Session, settings: Settings, shoot: Any
) -> None:
    tree = make_tree(session)
    venue = make_venue(session, tree["commune"], name="Thư viện xã Văn Quan", type=VenueType.commune_library)
    staff = make_staff(session, Role.organizer, tree["commune"])
    today = datetime.now(settings.tz).date()
    year = today.year - 1
    last = {(3, LibraryMetric.materials_served): 1000}
    library.save_figures(session, staff, venue, year - 1, last, today=today)
    page = small_phone.new_page()
    errors = script_errors(page)
    log_in(page, live_server.base_url, staff.username)

    page.goto(f"{live_server.base_url}/library")
    page.get_by_role("link", name="Thư viện xã Văn Quan").tap()
    page.goto(f"{live_server.base_url}/library/{venue.id}/{year}")
    assert page.evaluate("window.innerWidth") == WIDTH
    assert_fits(page)
    page.get_by_label(f"Lượt sách, báo phục vụ, 03/{year}").fill("3.400")
    page.get_by_label(f"Lượt bạn đọc đếm tại quầy, 03/{year}").fill("310")
    page.locator('button[name="only_month"][value="3"]').tap()

    expect(page.locator(".flash").first).to_contain_text("Đã lưu 2 số liệu.")
    expect(page.locator("td.outlier")).to_have_count(1)
    assert_fits(page)
    shoot(page, "library-year")
    stored = library.year_figures(session, venue.id or 0, year)
    assert {k: f.value for k, f in stored.items()} == {
        (3, LibraryMetric.materials_served): 3400,
        (3, LibraryMetric.desk_visits): 310,
    }
    assert errors == []
