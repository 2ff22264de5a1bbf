"""The report page's SVG charts and print button (tests/browser/test_report_print.py prints it)."""

from __future__ import annotations

import re
from xml.etree import ElementTree as ET

from fastapi.testclient import TestClient
from sqlmodel import Session

from server.config import Settings
from server.models import Role
from tests.factories import login, make_staff
from tests.test_reports import build_dataset

NS = {"s": "http://www.w3.org/2000/svg"}


def _chart(html: str, chart_id: str) -> ET.Element:
    found = re.search(rf'<svg [^>]*id="{chart_id}".*?</svg>', html, re.S)
    assert found, chart_id
    return ET.fromstring(found.group(0))


def test_report_page_draws_svg_charts_by_commune_and_month(
    client: TestClient, session: Session, settings: Settings
) -> None:
    data = build_dataset(session, settings)
    login(client, make_staff(session, Role.office, data.units["commune"]))
    page = client.get("/reports", params={"year": "2025"})
    assert page.status_code == 200
    communes = _chart(page.text, "chart-commune")
    months = _chart(page.text, "chart-month")
    assert len(communes.findall(".//s:rect[@class='chart-bar series-0']", NS)) == 1  # the office's commune
    assert len(months.findall(".//s:rect", NS)) >= 24
    assert "Theo xã" in (communes.find("s:title", NS).text or "")  # type: ignore[union-attr]
    assert '<button type="button" class="secondary" data-print hidden>In báo cáo</button>' in page.text
    assert re.search(r'<script src="/static/js/print\.js\?v=\w+" defer>', page.text)
    assert "<script>" not in page.text  # the CSP allows no inline script


def test_a_year_without_data_says_so_instead_of_charts(client: TestClient, session: Session) -> None:
    login(client, make_staff(session, Role.admin))
    page = client.get("/reports", params={"year": "2025"})
    assert page.status_code == 200
    breakdowns = page.text.split('id="report-indicators"')[1].split("</section>", 1)[1]
    assert "<svg" not in breakdowns  # the growth chart above says "no base" for every indicator
    assert page.text.count("Không có lượt điểm danh nào trong kỳ này.") == 8
