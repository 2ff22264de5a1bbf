"""Library figures entered by hand: validation, outliers, history, scope, CSV and XLSX import, and the
functions the indicator engine reads, with hand-computed expectations, on both databases."""

from __future__ import annotations

import io
import re
from datetime import UTC, date, datetime

import pytest
import xlsxwriter
from fastapi.testclient import TestClient
from sqlmodel import Session, col, select

from server.config import Settings
from server.errors import AppError, ErrorCode, FormError
from server.models import (
    BookRotation,
    ChangeSource,
    LibraryChange,
    LibraryFigure,
    LibraryMetric,
    LibraryStandard,
    Role,
    SchoolLibraryYear,
    Staff,
    Venue,
    VenueType,
)
from server.services import library
from server.services.library import RotationInput
from tests.factories import count_rows, login, make_staff, make_tree, make_venue

M = LibraryMetric
NOW = datetime(2026, 12, 3, 3, 0, tzinfo=UTC)
TODAY = date(2026, 12, 3)
CSV_HEADER = "kind,venue,year,month,metric,value,to_venue,date,note\n"


def _world(session: Session) -> dict:  # type: ignore[type-arg]
    tree = make_tree(session)
    return {
        "tree": tree,
        "library": make_venue(session, tree["commune"], name="Thư viện xã Văn Quan", code="TV-VQ",
                              type=VenueType.commune_library),
        "branch": make_venue(session, tree["village"], name="Tủ sách thôn Bản Cưởm", code="TS-BC",
                             type=VenueType.commune_library),
        "school": make_venue(session, tree["commune"], name="Thư viện Trường THCS Văn Quan", code="TH-VQ",
                             type=VenueType.school_library),
        "theirs": make_venue(session, tree["other"], name="Thư viện xã Tri Lễ", code="TV-TL",
                             type=VenueType.commune_library),
        "staff": make_staff(session, Role.organizer, tree["commune"], full_name="Hoàng Thị Lan"),
        "neighbour": make_staff(session, Role.organizer, tree["other"]),
    }  # fmt: skip


def _save(
    session: Session, staff: Staff, venue: Venue, year: int, cells: dict[library.FigureKey, int | None]
) -> library.SaveResult:
    return library.save_figures(session, staff, venue, year, cells, today=TODAY, now=NOW)


def _local_today(settings: Settings) -> date:
    return datetime.now(settings.tz).date()


# --- Validation, outliers, history -------------------------------------------------------------------


def test_a_negative_figure_is_refused_with_the_field_error(
    client: TestClient, session: Session, settings: Settings
) -> None:
    w = _world(session)
    year = _local_today(settings).year - 1
    login(client, w["staff"])

    response = client.post(
        f"/library/{w['library'].id}/{year}/figures",
        data={"materials_served_3": "-5", "titles_added_3": "12"},
        headers={"accept-language": "vi"},
    )

    assert response.status_code == 422
    assert 'id="materials_served_3-error"' in response.text
    assert "Nhập số nguyên từ 0 trở lên (không nhập số âm)." in response.text
    assert count_rows(session, LibraryFigure) == 0 and count_rows(session, LibraryChange) == 0


def test_values_out_of_range_future_months_and_years_are_refused(session: Session) -> None:
    w = _world(session)
    with pytest.raises(FormError) as refused:
        library.parse_figures_form(
            {"desk_visits_1": "10000001", "copies_added_2": "abc", "titles_added_12": "1"}, 2026,
            date(2026, 11, 30),
        )  # fmt: skip
    assert refused.value.fields == {
        "desk_visits_1": "The number is too large (at most 10,000,000).",
        "copies_added_2": "Enter a whole number.",
        "titles_added_12": "This month has not come yet.",
    }
    with pytest.raises(FormError) as refused:
        _save(session, w["staff"], w["library"], 1999, {(1, M.desk_visits): 5})
    assert refused.value.fields == {"year": "Choose a year from 2000 to this year."}
    with pytest.raises(FormError):
        _save(session, w["staff"], w["library"], 2026, {(1, M.desk_visits): -1})
    assert library.parse_figures_form({"desk_visits_1": "1.234"}, 2026, TODAY)[1, M.desk_visits] == 1234
    assert count_rows(session, LibraryFigure) == 0


def test_an_outlier_against_the_same_month_last_year_is_saved_with_a_warning(
    client: TestClient, session: Session, settings: Settings
) -> None:
    w = _world(session)
    year = _local_today(settings).year - 1
    _save(session, w["staff"], w["library"], year - 1, {(3, M.materials_served): 100})
    login(client, w["staff"])

    response = client.post(
        f"/library/{w['library'].id}/{year}/figures",
        data={"materials_served_3": "1000", "materials_served_4": "250"},
        headers={"accept-language": "vi"},
    )

    assert response.status_code == 303
    assert "saved=2" in response.headers["location"] and "warned=1" in response.headers["location"]
    stored = library.year_figures(session, w["library"].id, year)
    assert stored[3, M.materials_served].value == 1000  # saved, not refused
    page = client.get(response.headers["location"], headers={"accept-language": "vi"})
    assert page.status_code == 200
    assert 'class="flash warning"' in page.text and 'class="outlier"' in page.text
    assert "1 số liệu chênh lệch nhiều so với năm trước" in page.text


def test_without_the_same_month_last_year_the_monthly_average_is_the_reference(session: Session) -> None:
    w = _world(session)
    _save(session, w["staff"], w["library"], 2025, {(1, M.desk_visits): 100, (2, M.desk_visits): 200})

    result = _save(session, w["staff"], w["library"], 2026, {(5, M.desk_visits): 30, (6, M.desk_visits): 60})

    # Average 150: 30 * 3 < 150 is an outlier, 60 * 3 = 180 is not.
    assert result.warnings == [library.Outlier(5, M.desk_visits, 30, 150, same_month=False)]
    assert result.changed == 2


def test_history_records_who_when_the_old_and_the_new_value(
    client: TestClient, session: Session, settings: Settings
) -> None:
    w = _world(session)
    later = datetime(2026, 12, 3, 4, 0, tzinfo=UTC)
    _save(session, w["staff"], w["library"], 2025, {(3, M.copies_added): 100})
    library.save_figures(
        session, w["staff"], w["library"], 2025, {(3, M.copies_added): 120}, today=TODAY, now=later
    )
    library.save_figures(
        session, w["staff"], w["library"], 2025, {(3, M.copies_added): 120}, today=TODAY, now=later
    )  # the same value again changes nothing

    changes = session.exec(select(LibraryChange).order_by(col(LibraryChange.id))).all()
    assert [(c.entity, c.key, c.field, c.old_value, c.new_value) for c in changes] == [
        ("figure", "2025-03", "copies_added", None, "100"),
        ("figure", "2025-03", "copies_added", "100", "120"),
    ]
    assert all(c.staff_id == w["staff"].id and c.source == ChangeSource.form for c in changes)
    assert [c.at for c in changes] == [NOW, later]
    # Anyone with access to the venue reads it: another organizer of the same commune.
    colleague = make_staff(session, Role.organizer, w["tree"]["commune"])
    login(client, colleague)
    page = client.get(f"/library/{w['library'].id}/2025", headers={"accept-language": "vi"})
    assert page.status_code == 200
    history = page.text.split('id="history"', 1)[1]
    assert "Hoàng Thị Lan" in history and "03/2025 · Số bản sách mới bổ sung" in history


def test_an_organizer_of_another_commune_is_refused_and_nothing_changes(
    client: TestClient, session: Session, settings: Settings
) -> None:
    w = _world(session)
    year = _local_today(settings).year - 1
    _save(session, w["staff"], w["library"], year, {(1, M.desk_visits): 5})
    login(client, w["neighbour"])

    assert client.get(f"/library/{w['library'].id}/{year}").status_code == 403
    posted = client.post(f"/library/{w['library'].id}/{year}/figures", data={"desk_visits_1": "9"})
    assert posted.status_code == 403
    listing = client.get("/library")
    assert "Thư viện xã Văn Quan" not in listing.text and "Thư viện xã Tri Lễ" in listing.text
    assert library.year_figures(session, w["library"].id, year)[1, M.desk_visits].value == 5
    with pytest.raises(AppError) as refused:
        library.get_venue(session, w["neighbour"], w["library"].id)
    assert refused.value.code == ErrorCode.forbidden


def test_the_page_renders_the_grid_and_the_school_fields(
    client: TestClient, session: Session, settings: Settings
) -> None:
    w = _world(session)
    year = _local_today(settings).year - 1
    _save(session, w["staff"], w["school"], year, {(12, M.materials_served): 4321})
    login(client, w["staff"])

    page = client.get(f"/library/{w['school'].id}/{year}", headers={"accept-language": "vi"})

    assert page.status_code == 200
    assert page.text.count('name="materials_served_') == 12 and page.text.count('name="only_month"') == 12
    assert 'name="desk_visits_1"' in page.text and 'value="4321"' in page.text
    assert 'id="school"' in page.text and 'name="standard_since"' in page.text
    assert "Số liệu thư viện" in page.text  # the nav link
    not_a_school = client.get(f"/library/{w['library'].id}/{year}")
    assert 'id="school"' not in not_a_school.text
    assert client.get(f"/library/{w['library'].id}/1999").status_code == 404
    assert client.get(f"/library/{w['library'].id}/{year + 2}").status_code == 404


def test_a_month_saved_alone_leaves_the_other_months_untouched(
    client: TestClient, session: Session, settings: Settings
) -> None:
    w = _world(session)
    year = _local_today(settings).year - 1
    _save(session, w["staff"], w["library"], year, {(1, M.desk_visits): 5})
    login(client, w["staff"])

    response = client.post(
        f"/library/{w['library'].id}/{year}/figures",
        # Month 1 comes back as stored and month 3 empty: nothing else is pending, so the page reloads.
        data={"only_month": "2", "desk_visits_1": "5", "desk_visits_2": "8", "desk_visits_3": ""},
    )

    assert response.status_code == 303
    stored = library.year_figures(session, w["library"].id, year)
    assert {k: f.value for k, f in stored.items()} == {(1, M.desk_visits): 5, (2, M.desk_visits): 8}


def test_saving_one_month_keeps_what_was_typed_in_the_others_on_the_screen(
    client: TestClient, session: Session, settings: Settings
) -> None:
    w = _world(session)
    year = _local_today(settings).year - 1
    _save(session, w["staff"], w["library"], year, {(1, M.desk_visits): 5})
    login(client, w["staff"])

    response = client.post(
        f"/library/{w['library'].id}/{year}/figures",
        data={
            "only_month": "2",
            "desk_visits_1": "7",  # changed, not saved
            "desk_visits_2": "1.200",
            "desk_visits_3": "-1",  # typed, not saved (and not valid: it will say so when saved)
            "materials_served_4": "3.400",  # typed, not saved
        },
        headers={"accept-language": "vi"},
    )

    assert response.status_code == 200
    assert "Đã lưu 1 số liệu." in response.text
    assert "3 số liệu đã gõ ở các tháng khác chưa được lưu" in response.text
    for name, value in (("desk_visits_1", "7"), ("desk_visits_2", "1200"), ("desk_visits_3", "-1")):
        assert re.search(rf'name="{name}" value="{re.escape(value)}"', response.text), name
    stored = library.year_figures(session, w["library"].id, year)
    assert {k: f.value for k, f in stored.items()} == {(1, M.desk_visits): 5, (2, M.desk_visits): 1200}


# --- Rotations and school libraries -----------------------------------------------------------------


def test_a_rotation_is_added_and_deleted_with_its_history(
    client: TestClient, session: Session, settings: Settings
) -> None:
    w = _world(session)
    year = _local_today(settings).year - 1
    login(client, w["staff"])
    form = {"to_venue_id": str(w["theirs"].id), "copies": "150", "sent_on": f"{year}-03-04", "note": "Sách"}

    refused = client.post(f"/library/{w['library'].id}/{year}/rotations", data={**form, "copies": "0"})
    added = client.post(f"/library/{w['library'].id}/{year}/rotations", data=form)

    assert refused.status_code == 422 and 'id="copies-error"' in refused.text
    assert added.status_code == 303
    rotation = session.exec(select(BookRotation)).one()
    assert (rotation.from_venue_id, rotation.to_venue_id, rotation.copies) == (
        w["library"].id,
        w["theirs"].id,
        150,
    )
    # The receiving commune's organizer may not delete it: it is the sender's record.
    login(client, w["neighbour"])
    assert client.post(f"/library/rotations/{rotation.id}/delete").status_code == 403
    login(client, w["staff"])
    assert client.post(f"/library/rotations/{rotation.id}/delete").status_code == 303
    assert count_rows(session, BookRotation) == 0
    changes = session.exec(select(LibraryChange).order_by(col(LibraryChange.id))).all()
    assert [(c.field, c.old_value, c.new_value) for c in changes] == [
        ("to_venue", None, "Thư viện xã Tri Lễ"),
        ("copies", None, "150"),
        ("sent_on", None, f"{year}-03-04"),
        ("to_venue", "Thư viện xã Tri Lễ", None),
        ("copies", "150", None),
        ("sent_on", f"{year}-03-04", None),
    ]


def test_a_school_library_year_and_its_standard(session: Session) -> None:
    w = _world(session)
    staff, school = w["staff"], w["school"]
    library.save_school_year(session, staff, school, 2025, True, date(2024, 9, 5), today=TODAY, now=NOW)
    library.save_school_year(session, staff, school, 2024, False, date(2024, 9, 5), today=TODAY, now=NOW)

    assert library.school_years(session, 2025) == {school.id: True}
    assert library.school_years(session, 2024) == {school.id: False}
    assert library.school_years(session, 2023) == {}
    assert library.standard_since(session) == {school.id: date(2024, 9, 5)}

    library.save_school_year(session, staff, school, 2025, True, None, today=TODAY, now=NOW)
    assert library.standard_since(session) == {}
    assert count_rows(session, LibraryStandard) == 0
    last = session.exec(select(LibraryChange).order_by(col(LibraryChange.id).desc())).first()
    assert last is not None and (last.field, last.old_value, last.new_value) == (
        "met_since",
        "2024-09-05",
        None,
    )
    with pytest.raises(FormError):
        library.save_school_year(session, staff, w["library"], 2025, True, None, today=TODAY)
    with pytest.raises(FormError):
        library.save_school_year(session, staff, school, 2025, True, date(2027, 1, 1), today=TODAY)
    assert count_rows(session, SchoolLibraryYear) == 2


# --- Import ----------------------------------------------------------------------------------------


def _upload(client: TestClient, name: str, data: bytes) -> object:
    return client.post("/library/import", files={"file": (name, data)}, headers={"accept-language": "vi"})


def test_import_from_csv_stores_figures_and_rotations(
    client: TestClient, session: Session, settings: Settings
) -> None:
    w = _world(session)
    year = _local_today(settings).year - 1
    _save(session, w["staff"], w["library"], year, {(1, M.desk_visits): 5})
    text = CSV_HEADER + (
        f"figure,TV-VQ,{year},1,desk_visits,830,,,\n"
        f',TV-VQ,{year},2,materials_served,"2,450",,,\n'
        f"figure,#{w['branch'].id},{year},1,titles_added,35,,,\n"
        f"rotation,TV-VQ,,,,150,TV-TL,15/01/{year},Sách thiếu nhi\n"
        f"school_year,TH-VQ,{year},,,có,,,\n"
        f"standard,TH-VQ,,,,yes,,05/09/{year},\n"
    )
    login(client, w["staff"])

    response = _upload(client, "so-lieu.csv", text.encode())

    assert response.status_code == 303, response.text  # type: ignore[attr-defined]
    location = response.headers["location"]  # type: ignore[attr-defined]
    assert location == "/library?figures=3&rotations=1&school=2"
    listing = client.get(location, headers={"accept-language": "vi"})
    assert (
        "Đã nhập: 3 số liệu thay đổi, thêm 1 đợt luân chuyển, 2 mục thư viện trường học thay đổi."
        in listing.text
    )
    assert library.school_years(session, year) == {w["school"].id: True}
    assert library.standard_since(session) == {w["school"].id: date(year, 9, 5)}
    figures = {(f.venue_id, f.month, f.metric): f.value for f in session.exec(select(LibraryFigure))}
    assert figures == {
        (w["library"].id, 1, M.desk_visits): 830,
        (w["library"].id, 2, M.materials_served): 2450,
        (w["branch"].id, 1, M.titles_added): 35,
    }
    rotation = session.exec(select(BookRotation)).one()
    assert (rotation.copies, rotation.sent_on, rotation.note) == (150, date(year, 1, 15), "Sách thiếu nhi")
    sources = {c.source for c in session.exec(select(LibraryChange).where(LibraryChange.id > 1))}
    assert sources == {ChangeSource.import_file}


def test_import_from_xlsx_stores_figures(client: TestClient, session: Session, settings: Settings) -> None:
    w = _world(session)
    year = _local_today(settings).year - 1
    buffer = io.BytesIO()
    book = xlsxwriter.Workbook(buffer, {"in_memory": True})
    sheet = book.add_worksheet("Số liệu")
    sheet.write_row(0, 0, ["venue", "year", "month", "metric", "value"])
    sheet.write_row(1, 0, ["TV-VQ", year, 4, "materials_served", 1200])
    sheet.write_row(2, 0, ["TS-BC", year, 4, "copies_added", 60.0])
    book.close()
    login(client, w["staff"])

    response = _upload(client, "so-lieu.xlsx", buffer.getvalue())

    assert response.status_code == 303, response.text  # type: ignore[attr-defined]
    assert library.monthly_sums(session, M.materials_served, date(year, 1, 1), date(year, 12, 31)) == {
        w["library"].id: 1200
    }
    assert library.monthly_sums(session, M.copies_added, date(year, 4, 1), date(year, 4, 1)) == {
        w["branch"].id: 60
    }


def test_import_with_errors_on_lines_3_and_5_reports_both_and_saves_nothing(
    client: TestClient, session: Session, settings: Settings
) -> None:
    w = _world(session)
    year = _local_today(settings).year - 1
    text = CSV_HEADER + (
        f"figure,TV-VQ,{year},1,desk_visits,830,,,\n"
        f"figure,TV-VQ,{year},2,desk_visits,-4,,,\n"
        f"rotation,TV-VQ,,,,150,TV-TL,{year}-01-15,\n"
        f"figure,TV-TL,{year},1,desk_visits,12,,,\n"
    )
    login(client, w["staff"])

    response = _upload(client, "so-lieu.csv", text.encode())

    assert response.status_code == 422  # type: ignore[attr-defined]
    body = response.text  # type: ignore[attr-defined]
    assert "Dòng 3: Nhập số nguyên từ 0 trở lên (không nhập số âm)." in body
    assert "Dòng 5: Bạn không được nhập số liệu cho Thư viện xã Tri Lễ." in body
    assert "Dòng 2" not in body and "Dòng 4" not in body
    for model in (LibraryFigure, BookRotation, LibraryChange):
        assert count_rows(session, model) == 0


def test_import_refuses_school_values_for_a_venue_that_is_not_a_school_library(
    client: TestClient, session: Session, settings: Settings
) -> None:
    w = _world(session)
    year = _local_today(settings).year - 1
    text = CSV_HEADER + (
        f"school_year,TV-VQ,{year},,,yes,,,\n"
        f"school_year,TH-VQ,{year},,,maybe,,,\n"
        "standard,TH-VQ,,,,yes,,,\n"
        f"school_year,TH-VQ,{year},,,no,,,\n"
        f"school_year,TH-VQ,{year},,,yes,,,\n"
    )
    login(client, w["staff"])

    response = _upload(client, "a.csv", text.encode())

    body = response.text  # type: ignore[attr-defined]
    assert response.status_code == 422  # type: ignore[attr-defined]
    assert "Dòng 2: Thư viện xã Văn Quan không phải thư viện trường học." in body
    assert "Dòng 3: Ghi yes hoặc no" in body
    assert "Dòng 4: Nhập ngày thư viện đạt chuẩn" in body
    assert "Dòng 6: Thư viện trường học này đã có ở dòng 5." in body
    assert count_rows(session, SchoolLibraryYear) == 0 and count_rows(session, LibraryStandard) == 0


def test_import_refuses_control_characters_in_a_cell(
    client: TestClient, session: Session, settings: Settings
) -> None:
    """The request guard does not read uploaded files, so the import holds their text to the same rule."""
    w = _world(session)
    year = _local_today(settings).year - 1
    text = CSV_HEADER + (
        f"figure,TV-VQ,{year},1,desk_visits,830,,,\n"
        f"rotation,TV-VQ,,,,150,TV-TL,15/01/{year},Sách\x00thiếu nhi\n"
    )
    login(client, w["staff"])
    response = _upload(client, "so-lieu.csv", text.encode())
    assert response.status_code == 422  # type: ignore[attr-defined]
    assert "Dòng 3: Dòng này có ký tự điều khiển" in response.text  # type: ignore[attr-defined]
    assert count_rows(session, LibraryFigure) == 0 and count_rows(session, BookRotation) == 0


def test_import_refuses_unknown_columns_and_unreadable_workbooks(
    client: TestClient, session: Session
) -> None:
    w = _world(session)
    login(client, w["staff"])
    unknown = _upload(client, "a.csv", b"venue,value,colour\nTV-VQ,1,red\n")
    broken = _upload(client, "a.xlsx", b"PK\x03\x04 not really a workbook")
    empty = _upload(client, "a.csv", b"")
    assert unknown.status_code == 422 and "Dòng 1" in unknown.text  # type: ignore[attr-defined]
    assert broken.status_code == 422 and "Dòng 1" in broken.text  # type: ignore[attr-defined]
    assert empty.status_code == 422  # type: ignore[attr-defined]
    assert client.get("/library/template.csv").text.startswith("\ufeffkind,venue,year")


# --- What the indicator engine reads -------------------------------------------------------------------


def _figures(
    session: Session, venue: Venue, metric: LibraryMetric, cells: dict[tuple[int, int], int]
) -> None:
    for (year, month), value in cells.items():
        session.add(LibraryFigure(venue_id=venue.id or 0, year=year, month=month, metric=metric, value=value))
    session.commit()


def test_monthly_sums_count_the_months_whose_first_day_lies_in_the_window(session: Session) -> None:
    w = _world(session)
    a, b = w["library"], w["branch"]
    _figures(session, a, M.materials_served, {(2025, 1): 10, (2025, 2): 20, (2025, 3): 40, (2025, 12): 5})
    _figures(session, a, M.materials_served, {(2026, 1): 7})
    _figures(session, b, M.materials_served, {(2025, 2): 100})
    _figures(session, a, M.desk_visits, {(2025, 2): 999})

    sums = library.monthly_sums
    # 1 February and 1 March lie in [15/1, 1/3]; 1 January does not.
    assert sums(session, M.materials_served, date(2025, 1, 15), date(2025, 3, 1)) == {a.id: 60, b.id: 100}
    assert sums(session, M.materials_served, date(2025, 1, 1), date(2025, 12, 31)) == {a.id: 75, b.id: 100}
    # A year ending at a cut-off of 31/10: November 2024 to October 2025.
    assert sums(session, M.materials_served, date(2024, 11, 1), date(2025, 10, 31)) == {a.id: 70, b.id: 100}
    assert sums(session, M.materials_served, date(2025, 12, 1), date(2026, 1, 1)) == {a.id: 12}
    assert sums(session, M.materials_served, date(2025, 2, 2), date(2025, 2, 28)) == {}
    assert sums(session, M.desk_visits, date(2025, 1, 1), date(2025, 12, 31)) == {a.id: 999}

    rows = library.figure_rows(session, M.materials_served, date(2025, 1, 15), date(2025, 3, 1), [a.id])
    assert [(r.venue.id, r.figure.year, r.figure.month, r.figure.value) for r in rows] == [
        (a.id, 2025, 2, 20),
        (a.id, 2025, 3, 40),
    ]
    everyone = library.figure_rows(session, M.materials_served, date(2025, 2, 1), date(2025, 2, 1))
    assert sorted(r.figure.value for r in everyone) == [20, 100]


def test_rotation_copies_sum_the_batches_sent_in_the_window(session: Session) -> None:
    w = _world(session)
    a, b, c = w["library"], w["branch"], w["theirs"]
    admin = make_staff(session, Role.admin)
    for sender, receiver, copies, sent_on in (
        (a, b, 50, date(2025, 3, 1)),
        (a, c, 25, date(2025, 3, 31)),
        (a, b, 10, date(2025, 4, 1)),
        (b, a, 7, date(2025, 3, 15)),
        (c, a, 3, date(2025, 2, 28)),
    ):
        data = RotationInput(receiver.id or 0, copies, sent_on)
        library.add_rotation(session, admin, sender, data, today=TODAY, now=NOW)

    assert library.rotation_copies(session, date(2025, 3, 1), date(2025, 3, 31)) == {a.id: 75, b.id: 7}
    assert library.rotation_copies(session, date(2025, 1, 1), date(2025, 12, 31)) == {
        a.id: 85,
        b.id: 7,
        c.id: 3,
    }
    rows = library.rotation_rows(session, date(2025, 3, 1), date(2025, 3, 31), [a.id])
    assert [(r.rotation.copies, r.to_venue.id) for r in rows] == [(25, c.id), (50, b.id)]
    with pytest.raises(FormError) as refused:
        library.add_rotation(
            session, w["staff"], a, RotationInput(a.id or 0, 5, date(2025, 1, 1)), today=TODAY
        )
    assert refused.value.fields == {"to_venue_id": "Choose the library the books went to."}


def test_numbers_too_large_for_an_id_are_no_row_not_a_database_error(
    client: TestClient, session: Session, settings: Settings
) -> None:
    w = _world(session)
    year = _local_today(settings).year - 1
    login(client, w["staff"])
    huge = "99999999999"

    assert client.get(f"/library/{huge}/{year}").status_code == 404
    assert client.post(f"/library/rotations/{huge}/delete").status_code == 404
    form = {"to_venue_id": huge, "copies": "5", "sent_on": f"{year}-01-05"}
    refused = client.post(f"/library/{w['library'].id}/{year}/rotations", data=form)
    assert refused.status_code == 422 and 'id="to_venue_id-error"' in refused.text
    text = CSV_HEADER + f"figure,#{huge},{year},1,desk_visits,5,,,\n"
    imported = _upload(client, "a.csv", text.encode())
    assert imported.status_code == 422  # type: ignore[attr-defined]
    assert f"Dòng 2: Không có địa điểm nào mang mã #{huge}." in imported.text  # type: ignore[attr-defined]
    assert count_rows(session, BookRotation) == 0 and count_rows(session, LibraryFigure) == 0


def test_two_people_saving_the_same_new_cell_at_once_is_a_conflict_not_a_crash(session: Session) -> None:
    w = _world(session)
    _save(session, w["staff"], w["library"], 2025, {(1, M.desk_visits): 5})
    # The second saver read the year before the first one's row existed.
    library.apply_figure(
        session,
        w["staff"],
        w["library"],
        2025,
        (1, M.desk_visits),
        7,
        None,
        source=ChangeSource.form,
        now=NOW,
    )

    with pytest.raises(AppError) as refused:
        library.commit(session)

    assert refused.value.code == ErrorCode.conflict
    assert library.year_figures(session, w["library"].id, 2025)[1, M.desk_visits].value == 5
    assert count_rows(session, LibraryChange) == 1
