"""The CSV of every check-in and walk-in count: the report's rows exactly, scope, columns, streaming, CLI."""

from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path

import openpyxl
import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from server.__main__ import main
from server.config import Settings
from server.errors import AppError, ErrorCode
from server.models import AgeBand, Campaign, Channel, Event, EventType, Gender, Participant, Role, VenueType
from server.services import areas, checkin_export, counting, indicators
from server.services.checkin import new_nonce
from server.services.headcounts import HeadcountRequest, change_headcount
from server.services.reports import report_window, yearly_totals
from tests.factories import login, make_staff
from tests.test_reports import TODAY, TZ, DataSet, Made, build_dataset, in_window, utc

HEADER_VI = [
    "Loại bản ghi",
    "Số bản ghi",
    "Ngày",
    "Giờ",
    "Số sự kiện",
    "Tên sự kiện",
    "Loại sự kiện",
    "Đợt hưởng ứng",
    "Câu lạc bộ",
    "Mã điểm",
    "Điểm tổ chức",
    "Loại điểm",
    "Mã xã",
    "Xã, phường",
    "Mã thôn",
    "Thôn",
    "Kênh",
    "Muộn",
    "Nhóm tuổi",
    "Giới tính",
    "Số lượt",
    "Mã người",
]
COUNT, KEY = HEADER_VI.index("Số lượt"), HEADER_VI.index("Mã người")


@pytest.fixture
def data(session: Session, settings: Settings) -> DataSet:
    """The report tests' data set, plus walk-ins at the reading festival: +5 children, -1, +2 unknown."""
    data = build_dataset(session, settings)
    festival = next(m.event for m in data.made if m.event.type == EventType.reading_festival)
    organizer = make_staff(session, Role.admin)
    for delta, band, gender, minute in [
        (5, AgeBand.from_6, Gender.female, 10),
        (-1, AgeBand.from_6, Gender.female, 20),
    ]:
        change_headcount(
            session,
            settings,
            HeadcountRequest(new_nonce(), festival.id or 0, delta, band, gender),
            staff=organizer,
            now=utc(2025, 4, 21, 2, minute),
        )
    change_headcount(
        session,
        settings,
        HeadcountRequest(new_nonce(), festival.id or 0, 2),
        staff=organizer,
        now=utc(2025, 4, 21, 2, 30),
    )
    return data


def _rows(body: bytes) -> list[list[str]]:
    assert body.startswith(b"\xef\xbb\xbf")
    return list(csv.reader(io.StringIO(body.decode("utf-8-sig"), newline="")))


def _csv(session: Session, role: Role, data: DataSet, until: date | None = None, unit: str = "") -> bytes:
    staff = make_staff(session, role, data.units[unit] if unit else None)
    window = report_window(2025, until=until, today=TODAY)
    out = io.BytesIO()
    checkin_export.write_checkins_csv(checkin_export.export_rows(session, staff, window, TZ), out, "vi")
    return out.getvalue()


@pytest.mark.parametrize(
    ("role", "unit", "until"),
    [(Role.admin, "", None), (Role.office, "commune", None), (Role.office, "commune", date(2025, 4, 22))],
)
def test_count_column_and_person_keys_equal_the_reports_visits_and_people(
    session: Session, data: DataSet, role: Role, unit: str, until: date | None
) -> None:
    staff = make_staff(session, role, data.units[unit] if unit else None)
    window = report_window(2025, until=until, today=TODAY)
    totals = yearly_totals(session, staff, window, TZ)
    rows = list(checkin_export.export_rows(session, staff, window, TZ))
    assert sum(row.count for row in rows) == totals.visits
    assert len({row.person_key for row in rows if row.person_key is not None}) == totals.people
    assert sum(row.count for row in rows if row.kind == counting.WALK_IN) == totals.walk_ins == 6
    lines = _rows(_csv(session, role, data, until, unit))
    assert lines[0] == HEADER_VI and len(lines) == len(rows) + 1
    assert sum(int(line[COUNT]) for line in lines[1:]) == totals.visits
    assert len({line[KEY] for line in lines[1:] if line[KEY]}) == totals.people


def test_each_check_in_is_one_row_with_the_days_place_and_local_time(session: Session, data: DataSet) -> None:
    window = report_window(2025, until=None, today=TODAY)
    rows = list(checkin_export.export_rows(session, make_staff(session, Role.admin), window, TZ))
    check_ins = [row for row in rows if row.kind == counting.CHECK_IN]
    made = in_window(data, date(2025, 1, 1), date(2025, 12, 31))
    assert len(check_ins) == len(made)

    def key(row_at: datetime, event_id: int) -> tuple[datetime, int]:
        return row_at.astimezone(TZ).replace(second=0, microsecond=0), event_id

    expected = {key(m.at, m.event.id or 0): m for m in made}
    for row in check_ins:
        m: Made = expected[key(row.at, row.event_id)]
        assert (row.venue_name, row.venue_type, row.event_type, row.campaign) == (
            m.venue.name,
            m.venue.type,
            m.event.type,
            m.event.campaign,
        )
        assert row.commune_name == (m.commune.name if m.commune else None)
        assert (row.age_band, row.gender, row.count) == (m.profile.age_band, m.profile.gender, 1)
    assert [row.at for row in rows] == sorted(row.at for row in rows)


def test_csv_cells_use_local_day_and_time_and_vietnamese_labels(session: Session, data: DataSet) -> None:
    lines = _rows(_csv(session, Role.admin, data))
    new_year = next(line for line in lines[1:] if line[2:4] == ["01/01/2025", "01:30"])  # 18:30 UTC on 31/12
    assert new_year[0] == "Điểm danh"
    assert new_year[HEADER_VI.index("Xã, phường")] == data.units["other"].name
    assert new_year[HEADER_VI.index("Mã xã")] == data.units["other"].code
    assert new_year[HEADER_VI.index("Kênh")] == "Cán bộ nhập"
    assert new_year[HEADER_VI.index("Muộn")] in {"có", "không"}
    walk_ins = [line for line in lines[1:] if line[0] == "Đếm vãng lai"]
    assert [line[COUNT] for line in walk_ins] == ["5", "-1", "2"]
    assert {line[KEY] for line in walk_ins} == {""} and {
        line[HEADER_VI.index("Muộn")] for line in walk_ins
    } == {""}
    assert walk_ins[0][HEADER_VI.index("Nhóm tuổi")] == "6–11 tuổi"
    assert walk_ins[2][HEADER_VI.index("Giới tính")] == ""
    assert walk_ins[0][HEADER_VI.index("Thôn")] == data.units["village"].name


def test_person_key_is_the_participant_number_never_a_name(session: Session, data: DataSet) -> None:
    named = session.exec(select(Participant)).first()
    assert named is not None
    named.name = "Nguyễn Thị An"
    session.add(named)
    session.commit()
    body = _csv(session, Role.admin, data).decode("utf-8-sig")
    ids = {str(p.id) for p in session.exec(select(Participant)).all()}
    keys = {line[KEY] for line in _rows(body.encode("utf-8-sig"))[1:] if line[KEY]}
    assert keys <= ids and "Nguyễn Thị An" not in body


def test_a_formula_in_an_event_title_reaches_the_csv_as_text(session: Session, data: DataSet) -> None:
    event = session.get(Event, data.made[0].event.id)
    assert event is not None
    event.title = '=HYPERLINK("http://evil.example")'
    session.add(event)
    session.commit()
    titles = {line[5] for line in _rows(_csv(session, Role.admin, data))[1:]}
    assert "'" + event.title in titles
    assert not any(title.startswith("=") for title in titles)


def test_organizer_is_refused_the_export(session: Session, data: DataSet) -> None:
    organizer = make_staff(session, Role.organizer, data.units["commune"])
    with pytest.raises(AppError) as refused:
        checkin_export.export_rows(session, organizer, report_window(2025, until=None, today=TODAY), TZ)
    assert refused.value.code == ErrorCode.forbidden


def test_csv_is_written_in_chunks_while_the_rows_are_still_being_read() -> None:
    made = 0

    def rows() -> Iterator[checkin_export.ExportRow]:
        nonlocal made
        for number in range(3 * checkin_export.ROWS_PER_CHUNK):
            made += 1
            yield _row(number)

    chunks = checkin_export.csv_chunks(rows(), "en")
    first = next(chunks)
    assert made == checkin_export.ROWS_PER_CHUNK  # nothing beyond the first chunk was built yet
    assert first.startswith(b"\xef\xbb\xbfRecord kind,Record number,Date,Time")
    assert len([first, *chunks]) == 4  # three full chunks and the (empty) rest


def _row(number: int) -> checkin_export.ExportRow:
    return checkin_export.ExportRow(
        kind=counting.CHECK_IN,
        record_id=number,
        at=datetime(2025, 3, 1, 8, 0, tzinfo=TZ),
        event_id=1,
        event_title="Ngày hội đọc sách",
        event_type=EventType.reading_festival,
        campaign=Campaign.reading_day,
        club=None,
        venue_code=None,
        venue_name="Thư viện",
        venue_type=VenueType.commune_library,
        commune_code="06253",
        commune_name="Xã Văn Quan",
        village_code=None,
        village_name=None,
        channel=Channel.page,
        late=False,
        age_band=AgeBand.from_25,
        gender=Gender.female,
        count=1,
        person_key=number,
    )


# --- the download and the command line ---------------------------------------------------------------


def test_download_streams_the_csv_of_the_office_scope(
    client: TestClient, session: Session, data: DataSet
) -> None:
    office = make_staff(session, Role.office, data.units["commune"])
    login(client, office)
    response = client.get("/reports/2025/checkins.csv", params={"until": "2025-06-30"})
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert response.headers["content-disposition"] == 'attachment; filename="diemdanh-2025-checkins.csv"'
    window = report_window(2025, until=date(2025, 6, 30), today=TODAY)
    totals = yearly_totals(session, office, window, TZ)
    lines = _rows(response.content)
    assert sum(int(line[COUNT]) for line in lines[1:]) == totals.visits
    assert {line[10] for line in lines[1:]} == {data.venues["house"].name, data.venues["library"].name}


def test_download_refuses_an_organizer_and_a_bad_year(
    client: TestClient, session: Session, data: DataSet
) -> None:
    login(client, make_staff(session, Role.organizer, data.units["commune"]))
    assert client.get("/reports/2025/checkins.csv").status_code == 403
    login(client, make_staff(session, Role.admin))
    refused = client.get("/reports/1999/checkins.csv")
    assert refused.status_code == 422
    assert "text/html" in refused.headers["content-type"]
    assert client.get("/reports/2025/checkins.csv", params={"until": "2024-01-01"}).status_code == 422


def test_report_page_links_the_checkins_csv(client: TestClient, session: Session, data: DataSet) -> None:
    login(client, make_staff(session, Role.admin))
    page = client.get("/reports", params={"year": "2025", "until": "2025-06-30"})
    assert page.status_code == 200
    assert 'href="/reports/2025/checkins.csv?cutoff=31%2F12&amp;until=2025-06-30"' in page.text
    assert "Tải mọi lượt điểm danh (CSV)" in page.text


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, settings: Settings) -> None:
    monkeypatch.setenv("DIEMDANH_ENV", "development")
    monkeypatch.setenv("DIEMDANH_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("DIEMDANH_DATA_DIR", str(settings.data_dir))


@pytest.mark.usefixtures("cli_env")
def test_cli_export_checkins_writes_the_admins_download(
    client: TestClient, session: Session, data: DataSet, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    output = tmp_path / "checkins.csv"
    assert main(["export-checkins", "--year", "2025", "--until", "2025-10-31", "--output", str(output)]) == 0
    assert "checkins.csv" in capsys.readouterr().out
    login(client, make_staff(session, Role.admin))
    client.cookies.set("lang", "vi")
    download = client.get("/reports/2025/checkins.csv", params={"until": "2025-10-31"})
    assert download.status_code == 200
    assert output.read_bytes() == download.content
    assert len(_rows(download.content)) > 10


@pytest.mark.usefixtures("cli_env")
def test_cli_report_writes_the_admins_workbook(
    client: TestClient, session: Session, data: DataSet, tmp_path: Path
) -> None:
    output = tmp_path / "report.xlsx"
    assert main(["report", "--year", "2025", "--output", str(output)]) == 0
    login(client, make_staff(session, Role.admin))
    download = client.get("/reports/2025.xlsx")
    assert download.status_code == 200

    def sheets(body: bytes) -> dict[str, list[tuple[object, ...]]]:
        book = openpyxl.load_workbook(io.BytesIO(body))
        # The generation time is the one cell that may differ (the two were made moments apart).
        return {
            name: [row for row in book[name].iter_rows(values_only=True) if row[0] != "Thời điểm lập"]
            for name in book.sheetnames
        }

    assert sheets(output.read_bytes()) == sheets(download.content)


def _workbook(body: bytes) -> dict[str, list[tuple[object, ...]]]:
    book = openpyxl.load_workbook(io.BytesIO(body))
    return {
        name: [row for row in book[name].iter_rows(values_only=True) if row[0] != "Thời điểm lập"]
        for name in book.sheetnames
    }


@pytest.mark.usefixtures("cli_env")
def test_annual_report_for_one_commune_and_a_cut_off_from_the_page_and_the_command_line(
    client: TestClient, session: Session, settings: Settings, data: DataSet, tmp_path: Path
) -> None:
    commune = data.units["commune"]
    output = tmp_path / "report.xlsx"
    assert (
        main(
            ["report", "--year", "2025", "--unit", commune.name, "--window", "31/10", "--output", str(output)]
        )
        == 0
    )
    admin = make_staff(session, Role.admin)
    login(client, admin)
    download = client.get("/reports/2025.xlsx", params={"area": f"u:{commune.id}", "cutoff": "31/10"})
    assert download.status_code == 200
    sheets = _workbook(download.content)
    assert _workbook(output.read_bytes()) == sheets

    # The indicators sheet holds the indicator page's numbers; the summary names the unit and window.
    window = report_window(2025, until=None, today=TODAY, cutoff=(10, 31))
    area = areas.resolve_area(session, admin, f"u:{commune.id}")
    evaluation = indicators.evaluate(session, admin, window, area, TZ)
    rows = {row[0]: row for row in sheets["Chỉ tiêu"][1:] if row[0]}
    participation = next(r for r in evaluation.results if r.definition.key == "participation")
    assert (
        rows["Lượt tham gia ngày hội đọc sách, cuộc thi, ngày sách, triển lãm và câu lạc bộ"][1]
        == participation.value
    )
    visits = [m for m in in_window(data, date(2024, 11, 1), date(2025, 10, 31)) if m.commune == commune]
    walk_ins = 5 - 1 + 2  # the fixture's headcounts at the festival, in the commune's village (21/4/2025)
    assert participation.value == len(visits) + walk_ins
    assert participation.value == yearly_totals(session, admin, window, TZ, area=area).visits
    summary = dict((row[0], row[1]) for row in sheets["Tổng hợp"] if row and row[0])
    assert commune.name in summary.values() and any(
        "01/11/2024–31/10/2025" in str(v) for v in summary.values()
    )
    assert {"Chỉ tiêu", "Câu lạc bộ", "Số liệu thư viện", "Nguồn và quy tắc"} <= set(sheets)
    sources = dict((row[0], row[1]) for row in sheets["Nguồn và quy tắc"])
    assert "01/11/2024–31/10/2025" in str(sources["Kỳ báo cáo"]) and "9" in str(
        sources["Quy tắc tính chỉ tiêu"]
    )
    with zipfile_of(download.content) as book:
        assert (
            sum(name.startswith("xl/charts/chart") for name in book.namelist()) == 3
        )  # growth, commune, month

    assert main(["report", "--year", "2025", "--unit", "Xã Không Có", "--output", str(output)]) == 1


def zipfile_of(body: bytes) -> zipfile.ZipFile:
    return zipfile.ZipFile(io.BytesIO(body))


@pytest.mark.usefixtures("cli_env")
def test_cli_refuses_a_cut_off_outside_the_year_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    output = tmp_path / "checkins.csv"
    assert main(["export-checkins", "--year", "2025", "--until", "2026-01-01", "--output", str(output)]) == 1
    assert "--until" in capsys.readouterr().err
    assert list(tmp_path.glob("*checkins.csv*")) == []
