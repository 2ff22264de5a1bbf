"""XLSX and CSV exports, read back with openpyxl and csv: sheets, headers, numbers, window and rule."""

from __future__ import annotations

import csv
import io
from datetime import date

import openpyxl
import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from server.config import Settings
from server.models import Role
from server.services.exports import to_csv, to_xlsx
from server.services.reports import YearlyTotals, report_window, yearly_totals
from tests.factories import login, make_staff
from tests.test_reports import TODAY, TZ, DataSet, build_dataset, in_window, utc

SHEETS_VI = [
    "Tổng hợp",
    "Theo xã",
    "Theo điểm tổ chức",
    "Theo loại điểm",
    "Theo loại sự kiện",
    "Theo đợt hưởng ứng",
    "Theo tháng",
    "Theo nhóm tuổi",
    "Theo giới tính",
]
FIRST_HEADERS_VI = [
    "Xã, phường",
    "Điểm tổ chức",
    "Loại điểm",
    "Loại sự kiện",
    "Đợt hưởng ứng",
    "Tháng",
    "Nhóm tuổi",
    "Giới tính",
]


@pytest.fixture
def data(session: Session, settings: Settings) -> DataSet:
    return build_dataset(session, settings)


@pytest.fixture
def totals(session: Session, data: DataSet) -> YearlyTotals:
    window = report_window(2025, until=None, today=TODAY)
    return yearly_totals(session, make_staff(session, Role.admin), window, TZ, now=utc(2026, 11, 24, 3, 5))


def _workbook(body: bytes) -> openpyxl.Workbook:
    return openpyxl.load_workbook(io.BytesIO(body), read_only=False)


def _csv_rows(body: bytes) -> list[list[str]]:
    assert body.startswith(b"\xef\xbb\xbf")
    return list(csv.reader(io.StringIO(body.decode("utf-8-sig"), newline="")))


def _summary_texts(book: openpyxl.Workbook) -> list[str]:
    return [
        str(cell) for row in book["Tổng hợp"].iter_rows(values_only=True) for cell in row if cell is not None
    ]


def test_xlsx_has_a_summary_then_one_vietnamese_sheet_per_breakdown(totals: YearlyTotals) -> None:
    book = _workbook(to_xlsx(totals, "vi"))
    assert book.sheetnames == SHEETS_VI
    assert [book[name]["A1"].value for name in SHEETS_VI[1:]] == FIRST_HEADERS_VI
    assert all(
        (book[name]["B1"].value, book[name]["C1"].value) == ("Lượt", "Người") for name in SHEETS_VI[1:]
    )
    assert book["Theo xã"]["A1"].font.bold


def test_xlsx_counts_are_numbers_matching_the_totals(totals: YearlyTotals) -> None:
    book = _workbook(to_xlsx(totals, "vi"))
    for breakdown, name in zip(totals.breakdowns, SHEETS_VI[1:], strict=True):
        rows = list(book[name].iter_rows(min_row=2, max_row=len(breakdown.rows) + 2, values_only=True))
        assert [(r[1], r[2]) for r in rows[:-1]] == [(row.visits, row.people) for row in breakdown.rows]
        assert all(isinstance(r[1], int) and isinstance(r[2], int) for r in rows)
        assert rows[-1] == ("Tổng cộng", totals.visits, totals.people, totals.walk_ins)
        assert sum(r[1] for r in rows[:-1]) == totals.visits


def test_xlsx_summary_states_unit_window_rule_time_and_totals(totals: YearlyTotals) -> None:
    book = _workbook(to_xlsx(totals, "vi"))
    texts = _summary_texts(book)
    assert "Tất cả các xã, phường" in texts
    assert (
        "Năm thống kê 2025: 01/01/2025–31/12/2025 (dữ liệu thực tế đến ngày cắt số liệu, chưa gồm ước tính)"
    ) in texts
    assert (
        "Lượt = số lần điểm danh cộng số khách vãng lai đếm tại cửa; Người = số người khác nhau đã điểm danh"
    ) in texts
    assert "24/11/2026 10:05" in texts  # 03:05 UTC in Vietnam
    values = {row[0]: row[1] for row in book["Tổng hợp"].iter_rows(values_only=True) if row[0]}
    assert (values["Tổng số lượt"], values["Tổng số người"]) == (totals.visits, totals.people)


def test_xlsx_in_english_uses_english_sheet_names_and_headers(totals: YearlyTotals) -> None:
    book = _workbook(to_xlsx(totals, "en"))
    assert book.sheetnames[:3] == ["Summary", "By commune", "By venue"]
    assert (book["By month"]["A1"].value, book["By month"]["A2"].value) == ("Month", "Month 1")


def test_csv_has_bom_vietnamese_headers_and_intact_diacritics(totals: YearlyTotals) -> None:
    rows = _csv_rows(to_csv(totals, "vi"))
    assert rows[0] == [
        "Đơn vị",
        "Năm thống kê",
        "Từ ngày",
        "Đến ngày (ngày cắt số liệu)",
        "Bảng",
        "Mục",
        "Lượt (điểm danh và vãng lai)",
        "Người (số người khác nhau)",
        "Vãng lai (đếm tại cửa, đã tính trong số lượt)",
    ]
    assert ["Theo xã", "Xã Văn Quan"] in [row[4:6] for row in rows]
    assert ["Theo điểm tổ chức", "Trung tâm Văn hóa - Thể thao xã Tri Lễ"] in [row[4:6] for row in rows]


def test_csv_totals_match_and_every_row_states_the_window(totals: YearlyTotals) -> None:
    rows = _csv_rows(to_csv(totals, "vi"))[1:]
    assert rows[0][4:] == [
        "Tổng hợp",
        "Tổng cộng",
        str(totals.visits),
        str(totals.people),
        str(totals.walk_ins),
    ]
    assert all(row[1:4] == ["2025", "2025-01-01", "2025-12-31"] for row in rows)
    for breakdown in totals.breakdowns:
        title = {"commune": "Theo xã", "month": "Theo tháng", "gender": "Theo giới tính"}.get(breakdown.key)
        if title:
            mine = [row for row in rows if row[4] == title]
            assert [(int(r[6]), int(r[7])) for r in mine] == [(r.visits, r.people) for r in breakdown.rows]
            assert sum(int(r[6]) for r in mine) == totals.visits


# --- downloads ---------------------------------------------------------------------------------------


def test_xlsx_download_with_cut_off_states_its_window(
    client: TestClient, session: Session, data: DataSet
) -> None:
    login(client, make_staff(session, Role.admin))
    response = client.get("/reports/2025.xlsx", params={"until": "2025-06-30"})
    assert response.status_code == 200
    assert response.headers["content-type"] == (
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    )
    assert response.headers["content-disposition"] == 'attachment; filename="diemdanh-2025.xlsx"'
    book = _workbook(response.content)
    assert any(text.startswith("Năm thống kê 2025: 01/01/2025–30/06/2025") for text in _summary_texts(book))
    made = in_window(data, date(2025, 1, 1), date(2025, 6, 30))
    values = {row[0]: row[1] for row in book["Tổng hợp"].iter_rows(values_only=True) if row[0]}
    assert (values["Tổng số lượt"], values["Tổng số người"]) == (len(made), len({m.person for m in made}))


def test_csv_download_with_cut_off_counts_only_the_window(
    client: TestClient, session: Session, data: DataSet
) -> None:
    office = make_staff(session, Role.office, data.units["commune"])
    login(client, office)
    response = client.get("/reports/2025.csv", params={"until": "2025-06-30"})
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert response.headers["content-disposition"] == 'attachment; filename="diemdanh-2025.csv"'
    summary = _csv_rows(response.content)[1]
    made = in_window(data, date(2025, 1, 1), date(2025, 6, 30), ("house", "library"))
    assert summary == [
        "Xã Văn Quan",
        "2025",
        "2025-01-01",
        "2025-06-30",
        "Tổng hợp",
        "Tổng cộng",
        str(len(made)),
        str(len({m.person for m in made})),
        "0",  # walk-ins: tests/test_headcounts.py counts them into the report
    ]


def test_csv_never_hands_a_spreadsheet_a_formula(session: Session, data: DataSet) -> None:
    """A venue named like a formula reaches the CSV as text (a leading apostrophe), the XLSX as a string."""
    venue = data.venues["library"]
    venue.name = '=HYPERLINK("http://evil.example","Bấm")'
    session.add(venue)
    session.commit()
    window = report_window(2025, until=None, today=TODAY)
    totals = yearly_totals(session, make_staff(session, Role.admin), window, TZ, now=utc(2026, 11, 24, 3, 5))
    items = [row[5] for row in _csv_rows(to_csv(totals, "vi"))]
    assert "'" + venue.name in items
    assert not any(item.startswith(("=", "+", "@")) for item in items)
    sheet = _workbook(to_xlsx(totals, "vi"))["Theo điểm tổ chức"]
    cells = [row[0] for row in sheet.iter_rows(values_only=True)]
    assert venue.name in cells
