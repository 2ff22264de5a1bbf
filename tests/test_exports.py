"""XLSX and CSV exports, read back with openpyxl and csv: sheets, headers, numbers, window and rule."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, date, datetime, timedelta

import openpyxl
import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from server.config import Settings
from server.models import Channel, EventType, LibraryMetric, Role, Venue, VenueType
from server.services import areas, checkin_export, indicators, library, places_csv
from server.services.checkin import CheckInRequest, Identity, check_in, new_nonce
from server.services.exports import to_csv, to_xlsx
from server.services.reports import YearlyTotals, report_window, yearly_totals
from tests.factories import login, make_event, make_staff, make_tree, make_venue
from tests.test_indicators import _club_with_sessions, _visits
from tests.test_reports import PEOPLE, TODAY, TZ, DataSet, build_dataset, in_window, utc

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


# Names a spreadsheet would run as formulas: OWASP's first characters (= + - @ tab CR) and a leading NUL.
FORMULAS = {
    "equals": '=HYPERLINK("http://evil.example","Bấm")',
    "plus": '+1+cmd|" /C calc"!A0',
    "minus": '-2+3+cmd|" /C calc"!A0',
    "at": '@SUM(1+1)*cmd|" /C calc"!A0',
    "tab": '\t=HYPERLINK("http://evil.example","Bấm")',
    "cr": '\r=HYPERLINK("http://evil.example","Bấm")',
    "nul": '\x00=HYPERLINK("http://evil.example","Bấm")',
}
FORMULA_FIRST = ("=", "+", "-", "@", "\t", "\r", "\x00")


def _as_openpyxl_reads(text: str) -> str:
    """XLSX cannot hold most control characters: XlsxWriter writes them as _xHHHH_, and openpyxl reads
    that back as it is (tab and line feed are kept)."""
    return re.sub(r"[\x00-\x08\x0b-\x1f]", lambda m: f"_x{ord(m.group()):04X}_", text)


def _assert_only_text(items: list[str], name: str) -> None:
    assert "'" + name in items
    assert not [item for item in items if item.startswith(FORMULA_FIRST)]


def _assert_string_cell(book: openpyxl.Workbook, sheet: str, name: str) -> None:
    """The name is a string cell with its apostrophe, and no cell of the whole workbook is a formula."""
    (cell,) = [row[0] for row in book[sheet].iter_rows() if row[0].value == "'" + _as_openpyxl_reads(name)]
    assert cell.data_type == "s"
    formulas = [
        c.coordinate for ws in book.worksheets for row in ws.iter_rows() for c in row if c.data_type == "f"
    ]
    assert formulas == []


@pytest.mark.parametrize("name", FORMULAS.values(), ids=FORMULAS.keys())
def test_csv_never_hands_a_spreadsheet_a_formula(session: Session, data: DataSet, name: str) -> None:
    """A venue named like a formula reaches the CSV as text (a leading apostrophe) and the XLSX as a string
    cell with the same apostrophe, whatever its first character."""
    if name.startswith("\x00") and session.get_bind().dialect.name == "postgresql":
        pytest.skip("PostgreSQL cannot store a NUL: only a SQLite database can hold such a name")
    venue = data.venues["library"]
    venue.name = name
    session.add(venue)
    session.commit()
    window = report_window(2025, until=None, today=TODAY)
    totals = yearly_totals(session, make_staff(session, Role.admin), window, TZ, now=utc(2026, 11, 24, 3, 5))
    _assert_only_text([row[5] for row in _csv_rows(to_csv(totals, "vi"))], name)
    _assert_string_cell(_workbook(to_xlsx(totals, "vi")), "Theo điểm tổ chức", name)


def test_imported_places_named_like_formulas_reach_every_file_as_text(
    session: Session, settings: Settings, data: DataSet
) -> None:
    """A village and a venue imported from a places CSV (services/places_csv.py) with formula names: the
    yearly CSV and XLSX and the check-ins CSV hold them as text."""
    village_name, venue_name = FORMULAS["equals"], FORMULAS["at"]
    admin = make_staff(session, Role.admin)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["kind", "code", "name", "parent_code", "venue_type"])
    writer.writerow(["village", "thon-x", village_name, data.units["commune"].code, ""])
    writer.writerow(["venue", "", venue_name, "thon-x", "village_cultural_house"])
    places_csv.import_places_csv(session, out.getvalue(), by=admin)
    venue = session.exec(select(Venue).where(Venue.name == venue_name)).one()
    event = make_event(session, venue, starts_at=utc(2025, 4, 21, 1))
    request = CheckInRequest(
        Channel.staff_form, new_nonce(), Identity(profile=PEOPLE["m0"]), event_id=event.id
    )
    check_in(session, settings, request, staff=admin, now=utc(2025, 4, 21, 2))
    window = report_window(2025, until=None, today=TODAY)
    totals = yearly_totals(session, admin, window, TZ, now=utc(2026, 11, 24, 3, 5))
    _assert_only_text([row[5] for row in _csv_rows(to_csv(totals, "vi"))], venue_name)
    _assert_string_cell(_workbook(to_xlsx(totals, "vi")), "Theo điểm tổ chức", venue_name)
    checkins = io.BytesIO()
    checkin_export.write_checkins_csv(checkin_export.export_rows(session, admin, window, TZ), checkins, "vi")
    rows = _csv_rows(checkins.getvalue())
    venue_column, village_column = rows[0].index("Điểm tổ chức"), rows[0].index("Thôn")
    _assert_only_text([row[venue_column] for row in rows], venue_name)
    _assert_only_text([row[village_column] for row in rows], village_name)


def test_xlsx_clubs_and_library_figures_sheets_hold_the_services_numbers(
    client: TestClient, session: Session, settings: Settings
) -> None:
    """A club with attended sessions in nine months (regularly active) and one in eight (not), and one
    month of a library's figures with a rotation batch: the download's two detail sheets, read back, hold
    exactly these numbers and the indicator service's own rows."""
    units = make_tree(session)
    admin = make_staff(session, Role.admin)
    nine = make_venue(session, units["village"], name="Nhà văn hóa thôn Bản Cưởm")
    eight = make_venue(session, units["village"], name="Nhà văn hóa thôn Nà Pàn")
    club = _club_with_sessions(session, settings, admin, nine, list(range(1, 10)), 1)
    _club_with_sessions(session, settings, admin, eight, list(range(1, 9)), 2)
    # A second attended session in May: ten sessions in nine months.
    may = datetime(2025, 5, 24, 12, tzinfo=UTC)
    extra = make_event(session, nine, starts_at=may, type=EventType.club_session, club_id=club.id)
    _visits(session, settings, admin, extra.id, may + timedelta(minutes=5), 1)
    shelf = make_venue(session, units["commune"], type=VenueType.commune_library, name="Thư viện xã Văn Quan")
    other = make_venue(session, units["other"], type=VenueType.commune_library, name="Thư viện xã Tri Lễ")
    march = {
        (3, LibraryMetric.titles_added): 12,
        (3, LibraryMetric.copies_added): 40,
        (3, LibraryMetric.materials_served): 310,
        (3, LibraryMetric.desk_visits): 75,
    }
    library.save_figures(session, admin, shelf, 2025, march, today=TODAY)
    rotation = library.RotationInput(other.id or 0, 30, date(2025, 3, 20), "Sách thiếu nhi")
    library.add_rotation(session, admin, shelf, rotation, today=TODAY)

    login(client, admin)
    download = client.get("/reports/2025.xlsx")
    assert download.status_code == 200
    book = _workbook(download.content)
    clubs = list(book["Câu lạc bộ"].iter_rows(values_only=True))
    assert clubs == [
        (
            "Câu lạc bộ",
            "Điểm tổ chức",
            "Số tháng có buổi sinh hoạt có người tham gia",
            "Số buổi có người tham gia",
            "Hoạt động thường xuyên",
        ),
        ("CLB Nhà văn hóa thôn Bản Cưởm", "Nhà văn hóa thôn Bản Cưởm", 9, 10, "có"),
        ("CLB Nhà văn hóa thôn Nà Pàn", "Nhà văn hóa thôn Nà Pàn", 8, 8, "không"),
    ]
    figures = list(book["Số liệu thư viện"].iter_rows(values_only=True))
    assert figures == [
        (
            "Điểm tổ chức",
            "Số đầu sách mới bổ sung",
            "Số bản sách mới bổ sung",
            "Lượt sách, báo phục vụ",
            "Lượt bạn đọc đếm tại quầy",
            "Số bản gửi luân chuyển",
        ),
        ("Thư viện xã Văn Quan", 12, 40, 310, 75, 30),  # the receiving library sent nothing: no row
    ]

    # The same rows as the service that the indicator page's "regularly active" rule uses.
    window = report_window(2025, until=None, today=TODAY)
    tables = indicators.annual_tables(session, admin, window, areas.resolve_area(session, admin, ""), TZ)
    yes_no = {True: "có", False: "không"}
    assert clubs[1:] == [
        (r.club.name, r.venue.name, r.months, r.sessions, yes_no[r.regular]) for r in tables.clubs
    ]
    assert figures[1:] == [
        (r.venue.name, *(r.figures[m] for m in LibraryMetric), r.rotation_copies) for r in tables.libraries
    ]
