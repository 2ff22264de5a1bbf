"""The report page's SVG charts and print button (tests/browser/test_report_print.py prints it)."""

from __future__ import annotations

import html
import io
import re
from xml.etree import ElementTree as ET

import openpyxl
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


def _cells(row_html: str) -> list[str]:
    cells = re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", row_html, re.S)
    return [html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", cell))).strip() for cell in cells]


def _page_tables(page: str) -> dict[str, list[list[str]]]:
    """Each card's table on the report page, by the card's id: its rows of cell texts."""
    tables = {}
    for card_id, body in re.findall(r'<section class="card" id="([\w-]+)">(.*?)</section>', page, re.S):
        tables[card_id] = [_cells(row) for row in re.findall(r"<tr>(.*?)</tr>", body, re.S)]
    return tables


def _number(text: str) -> int:
    return int(re.sub(r"\D", "", text))


def test_the_printed_page_and_the_workbook_show_the_same_figures(
    client: TestClient, session: Session, settings: Settings
) -> None:
    data = build_dataset(session, settings)
    login(client, make_staff(session, Role.office, data.units["commune"]))
    query = {"year": "2025", "cutoff": "31/10"}
    page = client.get("/reports", params=query)
    download = client.get("/reports/2025.xlsx", params=query)
    assert page.status_code == download.status_code == 200
    tables = _page_tables(page.text)
    book = openpyxl.load_workbook(io.BytesIO(download.content))

    indicator_rows = list(book["Chỉ tiêu"].iter_rows(min_row=2, values_only=True))
    shown = tables["report-indicators"][1:]
    assert len(shown) == 8
    shares = 0
    assert [row[0] for row in shown] == [row[0] for row in indicator_rows[: len(shown)]]
    for cells, row in zip(shown, indicator_rows, strict=False):
        assert cells[5] == row[6]  # the status, word for word
        if row[7] is None:  # a growth indicator: the page's count is the sheet's number
            assert _number(cells[1].split(" ")[0]) == row[1] and _number(cells[2].split(" ")[0]) == row[2]
        elif row[8]:  # a share: "n of d" on the page, numerator and denominator on the sheet
            assert f"{row[7]} trên {row[8]}" in cells[1]
            shares += 1
    assert shares >= 1

    breakdowns = [key for key in tables if key.startswith("by-")]
    assert len(breakdowns) == 8
    sheets = book.sheetnames[2 : 2 + len(breakdowns)]
    for key, name in zip(breakdowns, sheets, strict=True):
        on_page = [(c[0], *map(_number, c[1:4])) for c in tables[key][1:] if len(c) == 4]
        on_sheet = [
            (str(r[0]), int(r[1]), int(r[2]), int(r[3]))
            for r in book[name].iter_rows(min_row=2, max_col=4, values_only=True)
            if r[0] is not None and isinstance(r[1], int | float)
        ]
    assert on_page == on_sheet, (key, name)
    summary = {str(a): b for a, b, *_ in book["Tổng hợp"].iter_rows(values_only=True) if a}
    assert _number(page.text.split('id="total-visits">')[1].split("<")[0]) in summary.values()
