"""Places: the Lạng Sơn communes, villages and venues by hand or CSV, the tree, and the /places pages."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event, func
from sqlmodel import Session, SQLModel, col, select

from server.errors import AppError, ErrorCode, FormError
from server.models import OrgUnit, Role, UnitKind, UnitSource, Venue, VenueType
from server.services import places, places_csv
from tests.factories import login, make_staff, make_tree, make_unit, make_venue

HEADER = "kind,code,name,parent_code,venue_type,address\n"


def count(session: Session, model: type[SQLModel], *where: Any) -> int:
    n = session.exec(select(func.count()).select_from(model).where(*where)).one()
    session.commit()  # ends the read transaction: on SQLite it holds the write lock (BEGIN IMMEDIATE)
    return n


def import_error(session: Session, text: str) -> list[tuple[int, str]]:
    with pytest.raises(AppError) as caught:
        places_csv.import_places_csv(session, text)
    assert caught.value.code == ErrorCode.import_failed
    return [
        (row.line, row.message % row.params if row.params else row.message)
        for row in caught.value.extra["rows"]
    ]


@pytest.fixture
def communes(session: Session) -> dict[str, OrgUnit]:
    places.load_communes(session)
    units = session.exec(select(OrgUnit).where(col(OrgUnit.code).in_(["20", "06253", "05977"]))).all()
    session.commit()
    return {u.code: u for u in units}


# --- The Lạng Sơn communes ---------------------------------------------------------------------------


def test_load_communes_creates_province_65_communes_and_their_sources(session: Session) -> None:
    summary = places.load_communes(session)

    assert (summary.provinces, summary.communes, summary.sources) == (1, 65, 196)
    assert count(session, OrgUnit, OrgUnit.kind == UnitKind.province) == 1
    assert count(session, OrgUnit, OrgUnit.kind == UnitKind.commune, OrgUnit.code_system == "gso") == 65
    assert count(session, UnitSource, UnitSource.code_system == "gso-2024") == 196
    province = session.exec(select(OrgUnit).where(OrgUnit.kind == UnitKind.province)).one()
    assert (province.code, province.valid_from, province.path) == ("20", date(2025, 7, 1), f"/{province.id}/")
    communes = session.exec(select(OrgUnit).where(OrgUnit.kind == UnitKind.commune)).all()
    assert all(c.parent_id == province.id and c.path == f"/{province.id}/{c.id}/" for c in communes)
    assert all(len(c.code) == 5 and c.valid_from == date(2025, 7, 1) for c in communes)


def test_load_communes_twice_creates_nothing_new(session: Session) -> None:
    places.load_communes(session)
    again = places.load_communes(session)

    assert (again.provinces, again.communes, again.sources) == (0, 0, 0)
    assert count(session, OrgUnit) == 66
    assert count(session, UnitSource) == 196


def test_van_quan_commune_has_code_06253_and_its_former_units(session: Session) -> None:
    places.load_communes(session)

    van_quan = session.exec(select(OrgUnit).where(OrgUnit.name == "Xã Văn Quan")).one()
    sources = session.exec(select(UnitSource).where(UnitSource.unit_id == van_quan.id)).all()
    assert van_quan.code == "06253"
    assert {(s.code, s.name, s.note) for s in sources} == {
        ("06253", "Thị trấn Văn Quan", "district 184"),
        ("06274", "Xã Hòa Bình", "district 184"),
        ("06277", "Xã Tú Xuyên", "district 184"),
    }


def test_load_communes_never_matches_an_old_unit_on_code_alone(session: Session) -> None:
    # The pre-2025 Thị trấn Văn Quan had the code the new Xã Văn Quan reuses.
    old = make_unit(
        session,
        UnitKind.commune,
        code="06253",
        code_system="gso",
        name="Thị trấn Văn Quan",
        valid_from=date(2008, 1, 1),
        valid_to=date(2025, 6, 30),
    )

    places.load_communes(session)

    new = session.exec(
        select(OrgUnit).where(OrgUnit.code == "06253", OrgUnit.valid_from == date(2025, 7, 1))
    ).one()
    assert new.id != old.id and new.name == "Xã Văn Quan"
    assert count(session, UnitSource, UnitSource.unit_id == old.id) == 0


# --- Villages and venues typed by hand -----------------------------------------------------------------


def test_village_without_code_gets_a_local_code_and_its_path(
    session: Session, communes: dict[str, OrgUnit]
) -> None:
    van_quan = communes["06253"]
    first = places.add_unit(session, kind=UnitKind.village, name=" Thôn  Bản Cưởm ", parent_id=van_quan.id)
    second = places.add_unit(session, kind=UnitKind.village, name="Thôn Nà Súng", parent_id=van_quan.id)

    assert (first.code, first.code_system, first.name) == ("06253-01", "local", "Thôn Bản Cưởm")
    assert second.code == "06253-02"
    assert first.path == f"{van_quan.path}{first.id}/"
    assert count(session, OrgUnit, OrgUnit.kind == UnitKind.village) == 2


def test_village_must_hang_under_a_commune(session: Session) -> None:
    tree = make_tree(session)

    with pytest.raises(FormError) as caught:
        places.add_unit(session, kind=UnitKind.village, name="Xóm", parent_id=tree["village"].id)

    assert set(caught.value.fields) == {"parent_id"}
    assert count(session, OrgUnit) == 4


def test_village_needs_a_name(session: Session) -> None:
    tree = make_tree(session)

    with pytest.raises(FormError) as caught:
        places.add_unit(session, kind=UnitKind.village, name="  ", parent_id=tree["commune"].id)

    assert set(caught.value.fields) == {"name"}
    assert count(session, OrgUnit) == 4


def test_village_code_must_be_unused(session: Session) -> None:
    tree = make_tree(session)

    with pytest.raises(FormError) as caught:
        places.add_unit(
            session,
            kind=UnitKind.village,
            name="Thôn Mới",
            parent_id=tree["commune"].id,
            code=tree["village"].code,
        )

    assert set(caught.value.fields) == {"code"}
    assert count(session, OrgUnit) == 4


def test_venue_is_added_to_a_unit(session: Session) -> None:
    tree = make_tree(session)

    venue = places.add_venue(
        session, name="Thư viện xã Văn Quan", type="commune_library", unit_id=tree["commune"].id, code="TV-VQ"
    )

    assert (venue.type, venue.unit_id, venue.code) == (VenueType.commune_library, tree["commune"].id, "TV-VQ")
    assert count(session, Venue) == 1


def test_venue_needs_name_type_and_place(session: Session) -> None:
    with pytest.raises(FormError) as caught:
        places.add_venue(session, name="", type="cinema", unit_id=999)

    assert set(caught.value.fields) == {"name", "type", "unit_id"}
    assert count(session, Venue) == 0


def test_venue_code_must_be_unused(session: Session) -> None:
    tree = make_tree(session)
    make_venue(session, tree["commune"], code="TV-VQ")

    with pytest.raises(FormError) as caught:
        places.add_venue(
            session, name="Thư viện", type="commune_library", unit_id=tree["commune"].id, code="TV-VQ"
        )

    assert set(caught.value.fields) == {"code"}
    assert count(session, Venue) == 1


# --- CSV import ---------------------------------------------------------------------------------------


def test_import_csv_creates_villages_then_their_venues(
    session: Session, communes: dict[str, OrgUnit]
) -> None:
    text = HEADER + (
        "village,VQ-BC,Thôn Bản Cưởm,06253,,\n"
        "village,,Thôn Nà Súng,06253,,\n"
        'venue,NVH-BC,Nhà văn hóa thôn Bản Cưởm,VQ-BC,village_cultural_house,"Thôn Bản Cưởm, Văn Quan"\n'
        "venue,,Thư viện xã Văn Quan,06253,commune_library,\n"
    )

    summary = places_csv.import_places_csv(session, text)

    assert (summary.villages, summary.venues) == (2, 2)
    village = session.exec(select(OrgUnit).where(OrgUnit.code == "VQ-BC")).one()
    house = session.exec(select(Venue).where(Venue.code == "NVH-BC")).one()
    assert village.path == f"{communes['06253'].path}{village.id}/"
    assert (house.unit_id, house.address) == (village.id, "Thôn Bản Cưởm, Văn Quan")
    assert count(session, OrgUnit, OrgUnit.code == "06253-01") == 1
    assert count(session, Venue) == 2


def test_import_csv_reports_the_file_line_of_a_bad_row_and_stores_nothing(
    session: Session, communes: dict[str, OrgUnit]
) -> None:
    text = HEADER + (
        "village,VQ-BC,Thôn Bản Cưởm,06253,,\n"
        "\n"
        'venue,,"Nhà văn hóa\nthôn Bản Cưởm",VQ-BC,village_cultural_house,\n'
        "venue,,,VQ-BC,village_cultural_house,\n"
    )

    assert import_error(session, text) == [(6, "The name is missing.")]
    assert count(session, OrgUnit, OrgUnit.kind == UnitKind.village) == 0
    assert count(session, Venue) == 0


def test_import_csv_refuses_a_code_used_twice_in_the_file(
    session: Session, communes: dict[str, OrgUnit]
) -> None:
    text = HEADER + "village,VQ-1,Thôn A,06253,,\nvillage,VQ-1,Thôn B,06253,,\n"

    assert import_error(session, text) == [(3, "The code VQ-1 is already used on line 2.")]
    assert count(session, OrgUnit, OrgUnit.kind == UnitKind.village) == 0


def test_import_csv_refuses_a_code_already_in_the_database(session: Session) -> None:
    tree = make_tree(session)
    make_venue(session, tree["commune"], code="TV-VQ")
    text = HEADER + (
        f"village,{tree['village'].code},Thôn A,{tree['commune'].code},,\n"
        f"venue,TV-VQ,Thư viện,{tree['commune'].code},commune_library,\n"
    )

    assert import_error(session, text) == [
        (2, f"The code {tree['village'].code} is already used by another place."),
        (3, "The code TV-VQ is already used by another venue."),
    ]
    assert count(session, OrgUnit) == 4
    assert count(session, Venue) == 1


def test_import_csv_refuses_an_unknown_parent(session: Session, communes: dict[str, OrgUnit]) -> None:
    # The village is defined after the venue that names it: parents must come first.
    text = HEADER + "venue,,Nhà văn hóa,VQ-BC,village_cultural_house,\nvillage,VQ-BC,Thôn Bản Cưởm,06253,,\n"

    assert import_error(session, text) == [
        (2, "No commune or village has the code VQ-BC (a village must come before its venues).")
    ]
    assert count(session, OrgUnit, OrgUnit.kind == UnitKind.village) == 0
    assert count(session, Venue) == 0


def test_import_csv_refuses_a_village_under_a_village(session: Session) -> None:
    tree = make_tree(session)
    text = HEADER + f"village,,Xóm,{tree['village'].code},,\n"

    assert import_error(session, text) == [
        (2, f"A village must belong to a commune; {tree['village'].code} is not a commune.")
    ]
    assert count(session, OrgUnit) == 4


def test_import_csv_refuses_an_unknown_venue_type(session: Session, communes: dict[str, OrgUnit]) -> None:
    text = HEADER + "venue,,Rạp chiếu phim,06253,cinema,\n"

    assert import_error(session, text) == [(2, 'Unknown venue type "cinema".')]
    assert count(session, Venue) == 0


def test_import_csv_accepts_bom_semicolons_and_venue_type_names(
    session: Session, communes: dict[str, OrgUnit]
) -> None:
    text = (
        "\ufeffkind;code;name;parent_code;venue_type;address\r\n"
        "village;VQ-BC;Thôn Bản Cưởm;06253;;\r\n"
        "Venue;;Nhà văn hóa thôn Bản Cưởm;VQ-BC;Village cultural house;Km 3, QL1B\r\n"
    )

    summary = places_csv.import_places_csv(session, text)

    assert (summary.villages, summary.venues) == (1, 1)
    venue = session.exec(select(Venue)).one()
    assert (venue.type, venue.address) == (VenueType.village_cultural_house, "Km 3, QL1B")


def test_import_csv_refuses_a_missing_column(session: Session) -> None:
    text = "kind,code,name,venue_type\nvillage,A,Thôn A,\n"

    assert import_error(session, text) == [(1, "Missing column: parent_code.")]
    assert count(session, OrgUnit) == 0


# --- The tree -----------------------------------------------------------------------------------------


def test_unit_tree_takes_the_same_few_queries_whatever_its_size(
    session: Session, communes: dict[str, OrgUnit], engine: Any
) -> None:
    rows = "".join(
        f"village,V{n},Thôn {n},06253,,\nvenue,,Nhà văn hóa {n},V{n},village_cultural_house,\n"
        for n in range(40)
    )
    places_csv.import_places_csv(session, HEADER + rows)
    statements: list[str] = []
    event.listen(engine, "before_cursor_execute", lambda *args: statements.append(args[2]))

    tree = places.unit_tree(session)

    van_quan = next(c for c in tree[0].children if c.unit.code == "06253")
    assert (len(tree[0].children), len(van_quan.children), van_quan.venue_total, tree[0].venue_total) == (
        65,
        40,
        40,
        40,
    )
    assert len(statements) <= 2


# --- Pages --------------------------------------------------------------------------------------------


def test_places_page_shows_the_tree_to_an_admin(client: TestClient, session: Session) -> None:
    tree = make_tree(session)
    make_venue(session, tree["village"], name="Nhà văn hóa thôn Bản Cưởm")
    login(client, make_staff(session, Role.admin))

    response = client.get("/places")

    assert response.status_code == 200
    assert "Xã Văn Quan" in response.text and "Thôn Bản Cưởm" in response.text
    assert "Nhà văn hóa thôn Bản Cưởm" in response.text
    assert response.text.count('<details id="unit-') == 2
    assert "kind,code,name,parent_code,venue_type,address" in response.text


def test_places_page_offers_to_load_the_communes_only_when_there_are_none(
    client: TestClient, session: Session
) -> None:
    login(client, make_staff(session, Role.admin))
    assert 'action="/places/communes"' in client.get("/places").text

    response = client.post("/places/communes")

    assert response.status_code == 303 and response.headers["location"] == "/places?done=communes&communes=65"
    assert count(session, OrgUnit, OrgUnit.kind == UnitKind.commune) == 65
    page = client.get(response.headers["location"]).text
    assert 'action="/places/communes"' not in page and page.count('<details id="unit-') == 65


def test_places_page_is_refused_to_an_organizer(client: TestClient, session: Session) -> None:
    tree = make_tree(session)
    login(client, make_staff(session, Role.organizer, tree["commune"]))

    assert client.get("/places").status_code == 403
    assert client.post("/places/communes").status_code == 403
    assert count(session, OrgUnit) == 4


def test_places_page_sends_an_anonymous_visitor_to_login(client: TestClient) -> None:
    response = client.get("/places")

    assert response.status_code == 303
    assert response.headers["location"].startswith("/login")


def test_add_village_form_error_shows_next_to_the_field(client: TestClient, session: Session) -> None:
    tree = make_tree(session)
    login(client, make_staff(session, Role.admin))

    response = client.post("/places/units", data={"name": "", "parent_id": str(tree["commune"].id)})

    assert response.status_code == 422
    assert 'id="name-error"' in response.text
    assert count(session, OrgUnit) == 4


def test_import_upload_stores_rows_and_redirects_with_the_counts(
    client: TestClient, session: Session, communes: dict[str, OrgUnit]
) -> None:
    login(client, make_staff(session, Role.admin))
    text = HEADER + "village,VQ-BC,Thôn Bản Cưởm,06253,,\nvenue,,Nhà văn hóa,VQ-BC,village_cultural_house,\n"

    response = client.post(
        "/places/import", files={"file": ("thon.csv", text.encode("utf-8-sig"), "text/csv")}
    )

    assert response.status_code == 303
    assert response.headers["location"] == "/places?done=imported&villages=1&venues=1"
    assert count(session, OrgUnit, OrgUnit.kind == UnitKind.village) == 1
    assert count(session, Venue) == 1


def test_import_upload_lists_bad_lines_in_vietnamese_and_stores_nothing(
    client: TestClient, session: Session, communes: dict[str, OrgUnit]
) -> None:
    login(client, make_staff(session, Role.admin))
    text = HEADER + "village,VQ-BC,Thôn Bản Cưởm,06253,,\nvenue,,Nhà văn hóa,VQ-BC,cinema,\n"

    response = client.post("/places/import", files={"file": ("thon.csv", text.encode(), "text/csv")})

    assert response.status_code == 422
    assert "Dòng 3:" in response.text and "cinema" in response.text
    assert count(session, OrgUnit, OrgUnit.kind == UnitKind.village) == 0
    assert count(session, Venue) == 0


def test_import_upload_refuses_a_file_that_is_not_utf8(
    client: TestClient, session: Session, communes: dict[str, OrgUnit]
) -> None:
    login(client, make_staff(session, Role.admin))
    text = HEADER + "village,VQ-BC,Thôn Bản Cưởm,06253,,\n"

    response = client.post("/places/import", files={"file": ("thon.csv", text.encode("utf-16"), "text/csv")})

    assert response.status_code == 422
    assert count(session, OrgUnit, OrgUnit.kind == UnitKind.village) == 0


@pytest.mark.parametrize("char", ["\x00", "\x01", "\x1b", "\x7f"])
def test_import_upload_refuses_control_characters_in_a_cell(
    client: TestClient, session: Session, communes: dict[str, OrgUnit], char: str
) -> None:
    """The request guard does not read uploaded files, so the import holds their text to the same rule."""
    login(client, make_staff(session, Role.admin))
    text = HEADER + f"village,VQ-BC,Thôn Bản Cưởm,06253,,\nvenue,,{char}=1+1,VQ-BC,village_cultural_house,\n"

    response = client.post("/places/import", files={"file": ("thon.csv", text.encode(), "text/csv")})

    assert response.status_code == 422
    assert "Dòng 3:" in response.text and "ký tự điều khiển" in response.text
    assert count(session, OrgUnit, OrgUnit.kind == UnitKind.village) == 0
    assert count(session, Venue) == 0
