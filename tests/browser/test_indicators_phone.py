"""The Culture Office on a 360 px phone, from the pages alone: sets a target, reads the indicators and drills
down to the records, records a village moving commune, and opens the annual report. SQLite and, with
TEST_DATABASE_URL, PostgreSQL."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import pytest
from playwright.sync_api import BrowserContext, expect
from sqlmodel import Session, select

from server.config import Settings
from server.i18n import gettext
from server.models import IndicatorTarget, Role, Staff, UnitLink
from server.services import areas, indicators
from server.services.indicators import STATUS_TEXT
from server.services.places_history import commune_on
from server.services.reports import report_window
from tests.browser.support import Server
from tests.browser.test_organizer_phone import WIDTH, assert_fits, log_in, script_errors, small_phone
from tests.factories import make_staff
from tests.test_reports import build_dataset

pytestmark = pytest.mark.browser
__all__ = ["small_phone"]


def _expected_status(session: Session, office: Staff, settings: Settings) -> str:
    """The status of library users in the office's commune in 2025, as the service has it, in Vietnamese."""
    window = report_window(2025, until=None, today=datetime.now(settings.tz).date())
    evaluation = indicators.evaluate(
        session, office, window, areas.resolve_area(session, office, ""), settings.tz
    )
    result = next(r for r in evaluation.results if r.definition.key == "library_users")
    return gettext("vi", STATUS_TEXT[result.status])


def test_an_office_runs_the_plan_from_its_phone(
    live_server: Server, small_phone: BrowserContext, session: Session, settings: Settings, shoot: Any
) -> None:
    data = build_dataset(session, settings)
    office = make_staff(session, Role.office, data.units["commune"])
    page = small_phone.new_page()
    errors = script_errors(page)
    log_in(page, live_server.base_url, office.username)
    base = live_server.base_url

    # Targets: library users must grow 200-300 % in 2025 in this commune.
    page.goto(f"{base}/indicators/targets")
    assert page.evaluate("window.innerWidth") == WIDTH
    assert_fits(page)
    page.locator('input[name="library_users-2025-low"]').fill("200")
    page.locator('input[name="library_users-2025-high"]').fill("300")
    page.get_by_role("button", name="Lưu chỉ tiêu").tap()
    expect(page.get_by_role("status")).to_have_text("Đã lưu.")
    session.commit()
    stored = session.exec(select(IndicatorTarget).where(IndicatorTarget.indicator == "library_users")).all()
    assert [(t.year, t.low, t.high, t.unit_id) for t in stored] == [
        (2025, 200, 300, data.units["commune"].id)
    ]

    # The indicators for 2025, with the office's target and its status; then the records behind a venue.
    page.goto(f"{base}/indicators?year=2025")
    assert_fits(page)
    row = page.locator("tr", has=page.get_by_role("link", name="Lượt người sử dụng thư viện công cộng"))
    expect(row).to_contain_text("200–300 %")
    expect(row).to_contain_text("do phòng văn hóa đặt")
    expect(row).to_contain_text(_expected_status(session, office, settings))
    shoot(page, "indicators-office")
    row.get_by_role("link", name="Lượt người sử dụng thư viện công cộng").tap()
    expect(page.locator("h1")).to_contain_text("Lượt người sử dụng thư viện công cộng")
    assert_fits(page)
    page.get_by_role("link", name="Thư viện xã Văn Quan").first.tap()
    expect(page.locator("table").first).to_be_visible()
    assert_fits(page)

    # A village moves to another commune from 1/3/2026.
    page.goto(f"{base}/places")
    assert_fits(page)
    page.locator("summary", has_text="Xã Văn Quan").tap()
    page.locator(f'a[href="/places/units/{data.units["village"].id}/change"]').tap()
    page.get_by_label("Chuyển sang xã khác").check()
    page.get_by_label("Có hiệu lực từ ngày (ngày/tháng/năm)").fill("2026-03-01")
    page.locator('select[name="commune_id"]').select_option(label="Xã Tri Lễ")
    page.get_by_role("button", name="Lưu thay đổi").tap()
    expect(page.locator(".flash")).to_have_text("Đã lưu thay đổi.")
    assert_fits(page)
    session.commit()
    assert len(session.exec(select(UnitLink)).all()) == 1
    house = data.venues["house"].id or 0
    assert commune_on(session, house, date(2026, 3, 1)) == data.units["other"].id
    assert commune_on(session, house, date(2026, 2, 28)) == data.units["commune"].id

    # The annual report: the page with its print button, and the workbook.
    page.goto(f"{base}/reports?year=2025")
    assert_fits(page)
    expect(page.get_by_role("button", name="In báo cáo")).to_be_visible()
    with page.expect_download() as download:
        page.get_by_role("link", name="Tải về Excel (XLSX)").first.tap()
    assert download.value.suggested_filename.endswith(".xlsx")
    assert errors == []
