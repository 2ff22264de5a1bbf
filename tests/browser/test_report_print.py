"""The yearly report prints: its SVG charts stay on the page in print media, the navigation and buttons
go, the print button works under the app's CSP, and Chromium makes an A4 PDF of it."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import BrowserContext, Page, expect
from sqlmodel import Session

from server.config import Settings
from server.models import Role
from tests.browser.support import Server
from tests.browser.test_phone_checkin import watch
from tests.factories import PASSWORD, make_staff
from tests.test_reports import build_dataset

pytestmark = pytest.mark.browser


def log_in(page: Page, base_url: str, username: str) -> None:
    page.goto(f"{base_url}/login")
    page.locator('input[name="username"]').fill(username)
    page.locator('input[name="password"]').fill(PASSWORD)
    page.locator('form[action="/login"] button').click()
    expect(page).not_to_have_url(re.compile(r"/login"))


def test_report_prints_its_charts_on_a4_without_navigation(
    session: Session, settings: Settings, live_server: Server, desk: BrowserContext, shoot: object
) -> None:
    data = build_dataset(session, settings)
    office = make_staff(session, Role.office, data.units["commune"])
    page = desk.new_page()
    problems = watch(page)
    log_in(page, live_server.base_url, office.username)
    page.goto(f"{live_server.base_url}/reports?year=2025")
    commune, month = page.locator("svg#chart-commune"), page.locator("svg#chart-month")
    expect(commune).to_be_visible()
    expect(month).to_be_visible()
    assert commune.locator("rect.chart-bar").count() == 2 * page.locator("#by-commune tbody tr").count()
    assert month.locator("rect.chart-bar").count() == 24

    printed = page.locator("[data-print]")
    expect(printed).to_be_visible()  # shown by static/js/print.js: no inline script under the CSP
    page.evaluate("() => { window.printCalls = 0; window.print = () => { window.printCalls += 1; }; }")
    printed.click()
    assert page.evaluate("window.printCalls") == 1

    page.emulate_media(media="print")
    expect(commune).to_be_visible()
    expect(month).to_be_visible()
    expect(page.locator(".topbar")).to_be_hidden()
    expect(page.locator("#report-window")).to_be_hidden()
    expect(printed).to_be_hidden()
    expect(page.locator("#report-window-text")).to_be_visible()
    expect(page.locator(".report-heading")).to_be_visible()
    assert page.locator("tbody tr").first.evaluate("row => getComputedStyle(row).breakInside") == "avoid"
    # How to read the tables comes before them, not alone on a last printed page.
    notes = page.locator("#report-notes p")
    expect(notes).to_have_count(2)
    assert notes.first.evaluate(
        "n => !!(n.compareDocumentPosition(document.getElementById('report-indicators'))"
        " & Node.DOCUMENT_POSITION_FOLLOWING)"
    )
    shoot(page, "print")  # type: ignore[operator]

    pdf = page.pdf(prefer_css_page_size=True, print_background=False)
    assert pdf.startswith(b"%PDF")
    pages = re.findall(rb"/Type\s*/Page(?![s\w])", pdf)
    assert len(pages) >= 1
    boxes = re.findall(rb"/MediaBox\s*\[\s*0\s+0\s+([\d.]+)\s+([\d.]+)\s*\]", pdf)
    assert boxes and all(abs(float(w) - 595.3) < 2 and abs(float(h) - 841.9) < 2 for w, h in boxes)  # A4
    assert problems == []
