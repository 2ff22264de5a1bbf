"""Places over time: dated renames, moves, merges, splits and closings of villages and venues through the
/places pages, the "as of" lookups, check-ins keeping their day's place, and saved reporting groups."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, col, select

from server.config import Settings
from server.errors import AppError, FormError
from server.models import (
    AgeBand,
    AuditEntry,
    CheckIn,
    Gender,
    LinkKind,
    OrgUnit,
    ReportGroup,
    ReportGroupMember,
    Role,
    Staff,
    UnitKind,
    UnitLink,
    Venue,
    VenueName,
    VenuePlacement,
)
from server.services import checkin, places, places_history, report_groups, reports
from server.services.checkin import CheckInRequest, Identity, new_nonce
from server.services.identities import Profile
from server.services.places_history import commune_on, venue_unit_on, venues_on
from tests.factories import count_rows, login, make_event, make_staff, make_tree, make_unit

ON = date(2026, 3, 1)
BEFORE, AFTER = ON - timedelta(days=1), ON
ADULT = Profile(age_band=AgeBand.from_25, gender=Gender.female, consent=True)


@dataclass
class World:
    units: dict[str, OrgUnit]
    venue: Venue  # the village's cultural house (made by the service: it has a placement)
    admin: Staff


@pytest.fixture
def world(session: Session, client: TestClient) -> World:
    units = make_tree(session)
    venue = places.add_venue(
        session, name="Nhà văn hóa thôn Bản Cưởm", type="village_cultural_house", unit_id=units["village"].id
    )
    admin = make_staff(session, Role.admin)
    login(client, admin)
    return World(units, venue, admin)


def reload(session: Session, model: type, row_id: int | None) -> object:
    session.commit()  # a fresh read: the app committed in its own session
    found = session.get(model, row_id)
    assert found is not None
    session.refresh(found)
    return found


def change_unit(client: TestClient, unit: OrgUnit, **data: object) -> object:
    return client.post(f"/places/units/{unit.id}/change", data=data)


def change_venue(client: TestClient, venue: Venue, **data: object) -> object:
    return client.post(f"/places/venues/{venue.id}/change", data=data)


def new_unit_id(response: object) -> int:
    location = response.headers["location"]  # type: ignore[attr-defined]
    assert location.endswith("/change?done=1"), location
    return int(location.split("/")[3])


def links(session: Session) -> list[tuple[int, int, LinkKind, date]]:
    session.commit()
    return [
        (x.unit_id, x.from_unit_id, x.kind, x.effective_on)
        for x in session.exec(select(UnitLink).order_by(col(UnitLink.id)))
    ]


# --- Villages --------------------------------------------------------------------------------------------


def test_rename_village_closes_the_old_version_and_links_the_new_one(
    client: TestClient, session: Session, world: World
) -> None:
    old = world.units["village"]
    response = change_unit(client, old, kind="rename", effective_on="2026-03-01", name="Thôn Bản Cưởm Mới")

    assert response.status_code == 303
    new = reload(session, OrgUnit, new_unit_id(response))
    old = reload(session, OrgUnit, old.id)
    assert isinstance(new, OrgUnit) and isinstance(old, OrgUnit)
    assert (old.valid_to, new.valid_from, new.valid_to) == (BEFORE, ON, None)
    assert (new.name, new.code, new.parent_id, new.kind) == (
        "Thôn Bản Cưởm Mới",
        old.code,
        old.parent_id,
        UnitKind.village,
    )
    assert new.path == f"{world.units['commune'].path}{new.id}/"
    assert links(session) == [(new.id, old.id, LinkKind.renamed, ON)]
    assert venue_unit_on(session, world.venue.id or 0, BEFORE) == old.id
    assert venue_unit_on(session, world.venue.id or 0, AFTER) == new.id
    assert reload(session, Venue, world.venue.id).unit_id == new.id  # type: ignore[attr-defined]
    page = client.get(f"/places/units/{new.id}/change")
    assert page.status_code == 200
    assert "Thôn Bản Cưởm" in page.text and "Hình thành từ" in page.text and "28/02/2026" in page.text


def test_move_village_changes_its_commune_from_the_effective_day(
    client: TestClient, session: Session, world: World
) -> None:
    old, commune, other = world.units["village"], world.units["commune"], world.units["other"]
    response = change_unit(client, old, kind="move", effective_on="01/03/2026", commune_id=str(other.id))

    new = reload(session, OrgUnit, new_unit_id(response))
    assert isinstance(new, OrgUnit)
    assert (new.parent_id, new.name, new.valid_from) == (other.id, old.name, ON)
    assert new.path.startswith(other.path)
    assert links(session) == [(new.id, old.id, LinkKind.moved, ON)]
    venue_id = world.venue.id or 0
    assert (commune_on(session, venue_id, BEFORE), commune_on(session, venue_id, AFTER)) == (
        commune.id,
        other.id,
    )
    assert venues_on(session, BEFORE)[venue_id] == commune.id
    assert venues_on(session, AFTER)[venue_id] == other.id


def test_merge_village_closes_it_and_moves_its_venues_to_the_kept_village(
    client: TestClient, session: Session, world: World
) -> None:
    old = world.units["village"]
    kept = make_unit(session, UnitKind.village, world.units["commune"], name="Thôn Nà Pàn")
    response = change_unit(client, old, kind="merge", effective_on="2026-03-01", into_id=str(kept.id))

    assert new_unit_id(response) == kept.id
    assert reload(session, OrgUnit, old.id).valid_to == BEFORE  # type: ignore[attr-defined]
    assert reload(session, OrgUnit, kept.id).valid_to is None  # type: ignore[attr-defined]
    assert links(session) == [(kept.id, old.id, LinkKind.merged, ON)]
    assert venue_unit_on(session, world.venue.id or 0, BEFORE) == old.id
    assert venue_unit_on(session, world.venue.id or 0, AFTER) == kept.id


def test_split_village_makes_its_parts_and_sends_each_venue_where_chosen(
    client: TestClient, session: Session, world: World
) -> None:
    old = world.units["village"]
    second = places.add_venue(session, name="Điểm đọc sách", type="legal_bookcase", unit_id=old.id)
    response = client.post(
        f"/places/units/{old.id}/change",
        data={
            "kind": "split",
            "effective_on": "2026-03-01",
            "split_name_1": "Thôn Bản Cưởm 1",
            "split_name_2": "Thôn Bản Cưởm 2",
            "venue_part": [f"{world.venue.id}:1", f"{second.id}:2"],
        },
    )

    assert response.status_code == 303
    session.commit()
    parts = session.exec(select(OrgUnit).where(OrgUnit.valid_from == ON).order_by(col(OrgUnit.id))).all()
    assert [(p.name, p.code, p.parent_id) for p in parts] == [
        ("Thôn Bản Cưởm 1", f"{old.code}.1", old.parent_id),
        ("Thôn Bản Cưởm 2", f"{old.code}.2", old.parent_id),
    ]
    assert links(session) == [(p.id, old.id, LinkKind.split_up, ON) for p in parts]
    assert venue_unit_on(session, world.venue.id or 0, AFTER) == parts[0].id
    assert venue_unit_on(session, second.id or 0, AFTER) == parts[1].id
    assert venue_unit_on(session, second.id or 0, BEFORE) == old.id


def test_split_needs_two_names_and_a_part_for_every_venue(
    client: TestClient, session: Session, world: World
) -> None:
    old = world.units["village"]
    response = change_unit(client, old, kind="split", effective_on="2026-03-01", split_name_1="Chỉ một")

    assert response.status_code == 422
    assert "Nhập tên của ít nhất hai thôn mới." in response.text
    assert reload(session, OrgUnit, old.id).valid_to is None  # type: ignore[attr-defined]


def test_close_village_is_refused_while_it_has_open_venues(
    client: TestClient, session: Session, world: World
) -> None:
    village = world.units["village"]
    refused = change_unit(client, village, kind="close", effective_on="2026-03-01")

    assert refused.status_code == 422
    assert "Thôn này còn địa điểm đang hoạt động" in refused.text
    assert reload(session, OrgUnit, village.id).valid_to is None  # type: ignore[attr-defined]

    assert change_venue(client, world.venue, kind="close", effective_on="2026-02-01").status_code == 303
    closed = change_unit(client, village, kind="close", effective_on="2026-03-01")
    assert closed.status_code == 303
    assert reload(session, OrgUnit, village.id).valid_to == BEFORE  # type: ignore[attr-defined]
    assert village.id not in {u.id for u in places_history.units_on(session, AFTER, UnitKind.village)}
    assert village.id in {u.id for u in places_history.units_on(session, BEFORE, UnitKind.village)}


@pytest.mark.parametrize(
    ("effective_on", "message"),
    [
        ("", "Nhập ngày thay đổi có hiệu lực"),
        ("31/02/2026", "Nhập ngày thay đổi có hiệu lực"),
        ("not a date", "Nhập ngày thay đổi có hiệu lực"),
        ("2025-07-01", "Ngày hiệu lực phải sau ngày địa bàn"),  # the village's own first day
        ("2024-01-01", "Ngày hiệu lực phải sau ngày địa bàn"),
        ((date.today() + timedelta(days=400)).isoformat(), "cách hôm nay hơn một năm"),
    ],
)
def test_bad_effective_dates_are_refused_next_to_the_field(
    client: TestClient, session: Session, world: World, effective_on: str, message: str
) -> None:
    response = change_unit(
        client, world.units["village"], kind="rename", effective_on=effective_on, name="Thôn X"
    )

    assert response.status_code == 422
    assert message in response.text and 'class="field-error" id="effective_on-error"' in response.text
    assert count_rows(session, UnitLink) == 0


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"kind": "move", "commune_id": "999999"}, "commune_id", "Chọn một xã hiện có"),
        ({"kind": "move", "commune_id": ""}, "commune_id", "Chọn một xã hiện có"),
        ({"kind": "merge", "into_id": "abc"}, "into_id", "Chọn một thôn khác"),
        ({"kind": "rename", "name": ""}, "name", "Nhập tên"),
        ({"kind": "rename", "name": "Thôn Bản Cưởm"}, "name", "Nhập tên khác với tên hiện tại."),
        ({"kind": "explode"}, "kind", "Chọn loại thay đổi."),
    ],
)
def test_bad_targets_are_refused_with_a_clear_error(
    client: TestClient, session: Session, world: World, data: dict[str, str], field: str, message: str
) -> None:
    response = change_unit(client, world.units["village"], effective_on="2026-03-01", **data)

    assert response.status_code == 422
    assert message in response.text
    assert count_rows(session, UnitLink) == 0 and count_rows(session, OrgUnit) == 4


def test_move_into_its_own_commune_and_merge_into_itself_are_refused(
    client: TestClient, session: Session, world: World
) -> None:
    village = world.units["village"]
    same = change_unit(
        client, village, kind="move", effective_on="2026-03-01", commune_id=str(village.parent_id)
    )
    itself = change_unit(client, village, kind="merge", effective_on="2026-03-01", into_id=str(village.id))

    assert same.status_code == itself.status_code == 422
    assert "Thôn đã thuộc xã này rồi." in same.text
    assert "Chọn một thôn khác hiện có" in itself.text


def test_a_closed_version_cannot_be_changed_again(client: TestClient, session: Session, world: World) -> None:
    village = world.units["village"]
    change_unit(client, village, kind="rename", effective_on="2026-03-01", name="Thôn Mới")
    again = change_unit(client, village, kind="rename", effective_on="2026-04-01", name="Thôn Khác")

    assert again.status_code == 422
    assert "chỉ thay đổi được thôn đang có hiệu lực" in again.text
    assert "Lưu thay đổi" not in client.get(f"/places/units/{village.id}/change").text


# --- Venues ----------------------------------------------------------------------------------------------


def test_rename_venue_keeps_its_former_name(client: TestClient, session: Session, world: World) -> None:
    response = change_venue(
        client, world.venue, kind="rename", effective_on="2026-03-01", name="Nhà văn hóa mới"
    )

    assert response.status_code == 303
    venue = reload(session, Venue, world.venue.id)
    assert isinstance(venue, Venue) and venue.name == "Nhà văn hóa mới"
    (former,) = session.exec(select(VenueName)).all()
    assert (former.venue_id, former.name, former.valid_to) == (venue.id, "Nhà văn hóa thôn Bản Cưởm", BEFORE)
    page = client.get(f"/places/venues/{venue.id}/change")
    assert "Tên cũ" in page.text and "Nhà văn hóa thôn Bản Cưởm (đến 28/02/2026)" in page.text


def test_move_venue_records_its_placements(client: TestClient, session: Session, world: World) -> None:
    other = world.units["other"]
    response = change_venue(
        client, world.venue, kind="move", effective_on="2026-03-01", unit_id=str(other.id)
    )

    assert response.status_code == 303
    session.commit()
    rows = session.exec(select(VenuePlacement).order_by(col(VenuePlacement.id))).all()
    assert [(p.unit_id, p.valid_from, p.valid_to) for p in rows] == [
        (world.units["village"].id, None, BEFORE),
        (other.id, ON, None),
    ]
    assert commune_on(session, world.venue.id or 0, BEFORE) == world.units["commune"].id
    assert commune_on(session, world.venue.id or 0, AFTER) == other.id
    # A later change must come after this one.
    back = change_venue(client, world.venue, kind="close", effective_on="2026-02-15")
    assert back.status_code == 422


def test_close_venue_keeps_it_in_the_days_before(client: TestClient, session: Session, world: World) -> None:
    response = change_venue(client, world.venue, kind="close", effective_on="2026-03-01")

    assert response.status_code == 303
    venue = reload(session, Venue, world.venue.id)
    assert isinstance(venue, Venue) and (venue.active, venue.closed_on) == (False, ON)
    assert venue.id in venues_on(session, BEFORE) and venue.id not in venues_on(session, AFTER)
    assert venue_unit_on(session, venue.id or 0, AFTER) is None
    assert change_venue(client, venue, kind="rename", effective_on="2026-04-01", name="X").status_code == 422


def test_a_venue_without_recorded_placements_has_always_been_where_it_is(
    session: Session, world: World
) -> None:
    bare = Venue(name="Tủ sách", type="legal_bookcase", unit_id=world.units["other"].id or 0)  # type: ignore[arg-type]
    session.add(bare)
    session.commit()

    assert venue_unit_on(session, bare.id or 0, date(2000, 1, 1)) == world.units["other"].id
    assert commune_on(session, bare.id or 0, ON) == world.units["other"].id
    assert venue_unit_on(session, 999999, ON) is None


def test_organizers_may_not_change_places(client: TestClient, session: Session, world: World) -> None:
    client.post("/logout")
    login(client, make_staff(session, Role.organizer, world.units["commune"]))
    village = world.units["village"]

    for path in (
        "/places",
        f"/places/units/{village.id}/change",
        f"/places/venues/{world.venue.id}/change",
        "/places/groups",
    ):
        assert client.get(path).status_code == 403
    refused = change_unit(client, village, kind="rename", effective_on="2026-03-01", name="Thôn X")
    assert refused.status_code == 403
    assert change_venue(client, world.venue, kind="close", effective_on="2026-03-01").status_code == 403
    assert count_rows(session, UnitLink) == 0


def test_an_office_records_a_village_moving_to_another_commune(
    client: TestClient, session: Session, world: World
) -> None:
    """The Done-when path of the indicators issue: an office user, from the pages alone."""
    client.post("/logout")
    office = make_staff(session, Role.office, world.units["commune"])
    login(client, office)
    village = world.units["village"]

    page = client.get("/places")
    assert page.status_code == 200
    assert f'href="/places/units/{village.id}/change"' in page.text
    assert "Tri Lễ" not in page.text.split('id="place-tree"')[1]  # another commune's part stays out of view
    assert 'action="/places/units"' not in page.text  # adding places stays with administrators
    form = client.get(f"/places/units/{village.id}/change")
    assert form.status_code == 200 and "Tri Lễ" in form.text  # a village may move to any commune

    moved = change_unit(
        client, village, kind="move", effective_on="01/03/2026", commune_id=str(world.units["other"].id)
    )
    # It lands on the closed version, which says so and links the new one.
    assert moved.headers["location"] == f"/places/units/{village.id}/change?done=1"
    done = client.get(moved.headers["location"])
    assert "Đã lưu thay đổi." in done.text
    new_id = next(link[0] for link in links(session))
    assert f'href="/places/units/{new_id}/change"' in done.text
    assert links(session) == [(new_id, village.id, LinkKind.moved, ON)]
    assert commune_on(session, world.venue.id or 0, BEFORE) == world.units["commune"].id
    assert commune_on(session, world.venue.id or 0, AFTER) == world.units["other"].id
    # The village now belongs to the other commune's office: this one can read its history, not change it.
    assert client.get(f"/places/units/{village.id}/change").status_code == 200
    assert client.get(f"/places/units/{new_id}/change").status_code == 403


def test_an_office_may_not_change_places_outside_its_unit(
    client: TestClient, session: Session, world: World
) -> None:
    client.post("/logout")
    login(client, make_staff(session, Role.office, world.units["other"]))
    village = world.units["village"]

    assert client.get(f"/places/units/{village.id}/change").status_code == 403
    assert client.get(f"/places/venues/{world.venue.id}/change").status_code == 403
    assert "Bản Cưởm" not in client.get("/places").text
    refused = change_unit(client, village, kind="rename", effective_on="2026-03-01", name="Thôn X")
    assert refused.status_code == 403
    assert change_venue(client, world.venue, kind="close", effective_on="2026-03-01").status_code == 403
    assert client.get("/places/groups").status_code == 403  # reporting groups stay with administrators
    assert count_rows(session, UnitLink) == 0
    session.refresh(world.venue)
    assert world.venue.active


def test_an_office_moves_a_venue_only_within_its_unit(
    client: TestClient, session: Session, world: World
) -> None:
    client.post("/logout")
    login(client, make_staff(session, Role.office, world.units["commune"]))

    outside = change_venue(
        client, world.venue, kind="move", effective_on="01/03/2026", unit_id=str(world.units["other"].id)
    )
    assert outside.status_code == 422
    assert "Chọn một thôn hoặc xã hiện có, đã có vào ngày đó." in outside.text
    assert venue_unit_on(session, world.venue.id or 0, AFTER) == world.units["village"].id
    inside = change_venue(
        client, world.venue, kind="move", effective_on="01/03/2026", unit_id=str(world.units["commune"].id)
    )
    assert inside.status_code == 303
    assert venue_unit_on(session, world.venue.id or 0, AFTER) == world.units["commune"].id


# --- Communes ---------------------------------------------------------------------------------------------


def _audited(session: Session, target_kind: str, target_id: int | None) -> list[dict[str, object]]:
    session.commit()
    query = select(AuditEntry).where(
        AuditEntry.action == "place_changed",
        AuditEntry.target_kind == target_kind,
        AuditEntry.target_id == str(target_id),
    )
    return [json.loads(entry.detail) for entry in session.exec(query)]


def test_merge_commune_moves_its_villages_and_venues_and_closes_it(
    client: TestClient, session: Session, world: World
) -> None:
    commune, other, village = world.units["commune"], world.units["other"], world.units["village"]
    hall = places.add_venue(
        session, name="Trung tâm VH-TT xã Văn Quan", type="culture_sport_centre", unit_id=commune.id
    )
    second = make_unit(session, UnitKind.village, commune, name="Thôn Khòn Pá")

    response = change_unit(client, commune, kind="merge", effective_on="01/03/2026", into_id=str(other.id))

    assert new_unit_id(response) == other.id
    closed = reload(session, OrgUnit, commune.id)
    assert isinstance(closed, OrgUnit) and closed.valid_to == BEFORE
    assert reload(session, OrgUnit, other.id).valid_to is None  # type: ignore[attr-defined]
    versions = session.exec(select(OrgUnit).where(OrgUnit.valid_from == ON).order_by(col(OrgUnit.name))).all()
    assert [(v.name, v.code, v.parent_id, v.valid_to) for v in versions] == [
        ("Thôn Bản Cưởm", village.code, other.id, None),
        ("Thôn Khòn Pá", second.code, other.id, None),
    ]
    assert all(v.path.startswith(other.path) for v in versions)
    new_village, new_second = versions
    assert sorted(links(session)) == sorted(
        [
            (new_village.id, village.id, LinkKind.moved, ON),
            (new_second.id, second.id, LinkKind.moved, ON),
            (other.id, commune.id, LinkKind.merged, ON),
        ]
    )
    assert reload(session, OrgUnit, village.id).valid_to == BEFORE  # type: ignore[attr-defined]
    house, hall_id = world.venue.id or 0, hall.id or 0
    assert (venue_unit_on(session, house, BEFORE), venue_unit_on(session, house, AFTER)) == (
        village.id,
        new_village.id,
    )
    assert (commune_on(session, house, BEFORE), commune_on(session, house, AFTER)) == (commune.id, other.id)
    assert (venue_unit_on(session, hall_id, BEFORE), venue_unit_on(session, hall_id, AFTER)) == (
        commune.id,
        other.id,
    )
    assert commune.id not in {u.id for u in places_history.units_on(session, AFTER, UnitKind.commune)}
    # Every change is in the audit log: the commune, each village and the venue standing in the commune.
    assert [d["change"] for d in _audited(session, "unit", commune.id)] == ["merged"]
    assert [d["change"] for d in _audited(session, "unit", village.id)] == ["moved"]
    assert [d["change"] for d in _audited(session, "unit", second.id)] == ["moved"]
    assert [(d["change"], d["to"]) for d in _audited(session, "venue", hall.id)] == [("moved", other.id)]
    page = client.get(f"/places/units/{other.id}/change")
    assert page.status_code == 200
    assert "Xã Văn Quan" in page.text and "sáp nhập" in page.text and "Thôn Bản Cưởm" in page.text
    former = client.get(f"/places/units/{commune.id}/change")
    assert former.status_code == 200 and 'name="into_id"' not in former.text  # a closed version: no form
    # Its years before the merge stay reportable: the area chooser offers it after the current communes.
    choices = report_groups.unit_choices(session, world.admin, "vi")
    assert choices[-2:] == [
        (f"u:{other.id}", "Xã Tri Lễ"),
        (f"u:{commune.id}", "Xã Văn Quan (đến 28/02/2026)"),
    ]
    assert (
        f'<option value="u:{commune.id}">Xã Văn Quan (đến 28/02/2026)</option>' in client.get("/reports").text
    )


def test_the_commune_page_offers_the_merge_next_to_the_villages(
    client: TestClient, session: Session, world: World
) -> None:
    commune, other = world.units["commune"], world.units["other"]

    page = client.get(f"/places/units/{commune.id}/change")

    assert page.status_code == 200
    assert "Sáp nhập vào xã khác" in page.text and "Thôn Bản Cưởm" in page.text
    assert f'<option value="{other.id}">Xã Tri Lễ</option>' in page.text
    assert f'<option value="{commune.id}">' not in page.text  # not into itself
    assert f'href="/places/units/{commune.id}/change"' in client.get("/places").text
    assert client.get(f"/places/units/{world.units['province'].id}/change").status_code == 404


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"effective_on": ""}, "effective_on", "Nhập ngày thay đổi có hiệu lực"),
        ({"effective_on": "2025-07-01"}, "effective_on", "Ngày hiệu lực phải sau ngày địa bàn"),
        ({"effective_on": "2025-09-01"}, "effective_on", "Một thôn hoặc địa điểm của xã này đã thay đổi"),
        ({"into_id": "same"}, "into_id", "Chọn một xã khác đang còn hiệu lực"),
        ({"into_id": ""}, "into_id", "Chọn một xã khác đang còn hiệu lực"),
        ({"into_id": "village"}, "into_id", "Chọn một xã khác đang còn hiệu lực"),
        ({"into_id": "later"}, "into_id", "Chọn một xã khác đang còn hiệu lực"),
        ({"kind": "explode"}, "kind", "Chọn loại thay đổi."),
    ],
)
def test_a_bad_commune_merge_is_refused_next_to_the_field(
    client: TestClient, session: Session, world: World, data: dict[str, str], field: str, message: str
) -> None:
    commune = world.units["commune"]
    # The village's house moved into the village on 1/9/2025: a merge must come after that.
    places_history.move_venue(
        session, world.admin, world.venue.id or 0, unit_id=commune.id, on=date(2025, 9, 1)
    )
    places_history.move_venue(
        session, world.admin, world.venue.id or 0, unit_id=world.units["village"].id, on=date(2025, 9, 2)
    )
    later = make_unit(session, UnitKind.commune, world.units["province"], valid_from=date(2026, 6, 1))
    targets = {"same": commune.id, "village": world.units["village"].id, "later": later.id}
    form = {"kind": "merge", "effective_on": "2026-03-01", "into_id": str(world.units["other"].id)} | data
    form["into_id"] = str(targets.get(form["into_id"], form["into_id"]))
    before = (
        count_rows(session, UnitLink),
        count_rows(session, OrgUnit),
        count_rows(session, VenuePlacement),
    )

    response = change_unit(client, commune, **form)

    assert response.status_code == 422
    assert message in response.text
    if field != "kind":
        assert f'id="{field}-error"' in response.text
    after = (count_rows(session, UnitLink), count_rows(session, OrgUnit), count_rows(session, VenuePlacement))
    assert after == before
    assert reload(session, OrgUnit, commune.id).valid_to is None  # type: ignore[attr-defined]


def test_an_office_merges_communes_only_within_its_unit(
    client: TestClient, session: Session, world: World
) -> None:
    commune, other = world.units["commune"], world.units["other"]
    client.post("/logout")
    login(client, make_staff(session, Role.office, commune))

    refused = change_unit(client, commune, kind="merge", effective_on="2026-03-01", into_id=str(other.id))
    assert refused.status_code == 422 and "Chọn một xã khác đang còn hiệu lực" in refused.text
    assert client.get(f"/places/units/{other.id}/change").status_code == 403
    assert (
        change_unit(
            client, other, kind="merge", effective_on="2026-03-01", into_id=str(commune.id)
        ).status_code
        == 403
    )
    assert count_rows(session, UnitLink) == 0

    client.post("/logout")
    login(client, make_staff(session, Role.organizer, commune))
    assert client.get(f"/places/units/{commune.id}/change").status_code == 403

    client.post("/logout")
    login(client, make_staff(session, Role.office, world.units["province"]))  # its unit covers both
    merged = change_unit(client, commune, kind="merge", effective_on="2026-03-01", into_id=str(other.id))
    assert merged.status_code == 303
    assert links(session)[-1] == (other.id, commune.id, LinkKind.merged, ON)


def test_split_commune_sends_each_village_and_venue_to_its_new_commune(
    client: TestClient, session: Session, world: World
) -> None:
    commune, province, village = world.units["commune"], world.units["province"], world.units["village"]
    second = make_unit(session, UnitKind.village, commune, name="Thôn Khòn Pá")
    hall = places.add_venue(
        session, name="Trung tâm VH-TT xã", type="culture_sport_centre", unit_id=commune.id
    )
    form = {
        "kind": "split",
        "effective_on": "2026-03-01",
        "split_name_1": "Xã Văn Quan Bắc",
        "split_name_2": "Xã Văn Quan Nam",
        "village_part": [f"{village.id}:1", f"{second.id}:2"],
        "venue_part": [f"{hall.id}:2"],
    }

    response = client.post(f"/places/units/{commune.id}/change", data=form)

    assert response.status_code == 303
    session.commit()
    made = session.exec(select(OrgUnit).where(OrgUnit.valid_from == ON).order_by(col(OrgUnit.id))).all()
    north, south = (u for u in made if u.kind == UnitKind.commune)
    assert new_unit_id(response) == north.id
    assert [(c.name, c.code, c.parent_id) for c in (north, south)] == [
        ("Xã Văn Quan Bắc", f"{commune.code}.1", province.id),
        ("Xã Văn Quan Nam", f"{commune.code}.2", province.id),
    ]
    new_village, new_second = (u for u in made if u.kind == UnitKind.village)
    assert (new_village.name, new_village.parent_id) == ("Thôn Bản Cưởm", north.id)
    assert (new_second.name, new_second.parent_id) == ("Thôn Khòn Pá", south.id)
    assert sorted(links(session)) == sorted(
        [
            (north.id, commune.id, LinkKind.split_up, ON),
            (south.id, commune.id, LinkKind.split_up, ON),
            (new_village.id, village.id, LinkKind.moved, ON),
            (new_second.id, second.id, LinkKind.moved, ON),
        ]
    )
    assert reload(session, OrgUnit, commune.id).valid_to == BEFORE  # type: ignore[attr-defined]
    house = world.venue.id or 0
    assert (commune_on(session, house, BEFORE), commune_on(session, house, AFTER)) == (commune.id, north.id)
    assert (venue_unit_on(session, hall.id or 0, BEFORE), venue_unit_on(session, hall.id or 0, AFTER)) == (
        commune.id,
        south.id,
    )
    assert [(d["change"], d["into"]) for d in _audited(session, "unit", commune.id)] == [
        ("split", [north.id, south.id])
    ]
    assert [(d["change"], d["to"]) for d in _audited(session, "venue", hall.id)] == [("moved", south.id)]
    page = client.get(f"/places/units/{commune.id}/change")
    assert "Xã Văn Quan Bắc" in page.text and "Xã Văn Quan Nam" in page.text and "chia tách" in page.text


def test_a_commune_split_needs_two_names_and_a_part_for_each_village_and_venue(
    client: TestClient, session: Session, world: World
) -> None:
    commune = world.units["commune"]
    places.add_venue(session, name="Trung tâm VH-TT xã", type="culture_sport_centre", unit_id=commune.id)
    before = (
        count_rows(session, UnitLink),
        count_rows(session, OrgUnit),
        count_rows(session, VenuePlacement),
    )

    one_name = change_unit(client, commune, kind="split", effective_on="2026-03-01", split_name_1="Xã Một")
    no_parts = change_unit(
        client, commune, kind="split", effective_on="2026-03-01", split_name_1="Xã Một", split_name_2="Xã Hai"
    )

    assert one_name.status_code == 422 and "Nhập tên của ít nhất hai xã mới." in one_name.text
    assert no_parts.status_code == 422
    assert no_parts.text.count("Chọn xã mới mà mục này thuộc về.") == 2  # the village and the venue
    after = (count_rows(session, UnitLink), count_rows(session, OrgUnit), count_rows(session, VenuePlacement))
    assert after == before


def test_only_staff_covering_the_province_split_a_commune(
    client: TestClient, session: Session, world: World
) -> None:
    commune, village = world.units["commune"], world.units["village"]
    client.post("/logout")
    login(client, make_staff(session, Role.office, commune))
    form = {
        "kind": "split",
        "effective_on": "2026-03-01",
        "split_name_1": "Xã Một",
        "split_name_2": "Xã Hai",
        "village_part": f"{village.id}:1",
        "venue_part": "",
    }

    refused = client.post(f"/places/units/{commune.id}/change", data=form)

    assert refused.status_code == 422 and "Chỉ quản trị viên mới chia tách được xã" in refused.text
    assert count_rows(session, UnitLink) == 0
    client.post("/logout")
    login(client, make_staff(session, Role.office, world.units["province"]))
    assert client.post(f"/places/units/{commune.id}/change", data=form).status_code == 303


# --- Check-ins keep the place of their own day -----------------------------------------------------------

DURING = datetime(2026, 3, 10, 2, 30, tzinfo=UTC)  # 9:30 in Vietnam


def _desk(event_id: int | None, claimed_at: datetime) -> CheckInRequest:
    return CheckInRequest(
        channel=checkin.Channel.staff_form,
        key=new_nonce(),
        event_id=event_id,
        claimed_at=claimed_at,
        identity=Identity(profile=ADULT),
    )


def test_a_check_in_stored_before_a_back_dated_move_keeps_its_commune(
    client: TestClient, session: Session, settings: Settings, world: World
) -> None:
    event = make_event(session, world.venue, starts_at=DURING - timedelta(minutes=30))
    stored = checkin.check_in(
        session, settings, _desk(event.id, DURING), staff=world.admin, now=DURING
    ).check_in

    response = change_unit(
        client,
        world.units["village"],
        kind="move",
        effective_on="2026-03-01",
        commune_id=str(world.units["other"].id),
    )

    assert response.status_code == 303
    kept = reload(session, CheckIn, stored.id)
    assert isinstance(kept, CheckIn)
    assert (kept.commune_id, kept.village_id) == (world.units["commune"].id, world.units["village"].id)
    # A late batch from the same day arriving now takes the place as of that day: the new version.
    late = checkin.check_in(
        session, settings, _desk(event.id, DURING), staff=world.admin, now=DURING + timedelta(days=3)
    )
    assert late.check_in.commune_id == world.units["other"].id


def test_a_late_check_in_from_before_a_move_gets_the_old_commune(
    client: TestClient, session: Session, settings: Settings, world: World
) -> None:
    event = make_event(session, world.venue, starts_at=DURING - timedelta(minutes=30))
    change_unit(
        client,
        world.units["village"],
        kind="move",
        effective_on="2026-04-01",
        commune_id=str(world.units["other"].id),
    )

    late = checkin.check_in(
        session, settings, _desk(event.id, DURING), staff=world.admin, now=DURING + timedelta(days=40)
    )

    assert (late.check_in.commune_id, late.check_in.village_id) == (
        world.units["commune"].id,
        world.units["village"].id,
    )


# --- Reporting groups ------------------------------------------------------------------------------------


def test_groups_are_created_edited_and_deleted(client: TestClient, session: Session, world: World) -> None:
    commune, other = world.units["commune"], world.units["other"]
    made = client.post(
        "/places/groups",
        data={
            "name": "Huyện Văn Quan cũ",
            "description": "6 xã",
            "unit_id": [str(commune.id), str(other.id)],
        },
    )
    assert made.status_code == 303
    group = session.exec(select(ReportGroup)).one()
    assert (group.name, group.description, group.created_by_id) == (
        "Huyện Văn Quan cũ",
        "6 xã",
        world.admin.id,
    )
    assert [u.id for u in report_groups.group_units(session, group.id or 0)] == [
        other.id,
        commune.id,
    ]  # by name
    assert "Huyện Văn Quan cũ" in client.get("/places/groups").text

    edited = client.post(
        f"/places/groups/{group.id}", data={"name": "Văn Quan", "unit_id": [str(commune.id)]}
    )
    assert edited.status_code == 303
    assert [u.id for u in report_groups.group_units(session, group.id or 0)] == [commune.id]
    assert reload(session, ReportGroup, group.id).name == "Văn Quan"  # type: ignore[attr-defined]
    assert client.get(f"/places/groups/{group.id}").status_code == 200

    assert client.post(f"/places/groups/{group.id}/delete").status_code == 303
    assert count_rows(session, ReportGroup) == count_rows(session, ReportGroupMember) == 0
    assert client.get(f"/places/groups/{group.id}").status_code == 404


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"name": "", "unit_id": "1"}, "Nhập tên"),
        ({"name": "Nhóm"}, "Đánh dấu ít nhất một xã."),
        ({"name": "Nhóm", "unit_id": "999999"}, "Chỉ đánh dấu các xã trong danh sách."),
    ],
)
def test_a_bad_group_is_refused_next_to_the_field(
    client: TestClient, session: Session, world: World, data: dict[str, str], message: str
) -> None:
    response = client.post("/places/groups", data=data)

    assert response.status_code == 422
    assert message in response.text
    assert count_rows(session, ReportGroup) == 0


def test_a_village_cannot_be_a_group_member(client: TestClient, session: Session, world: World) -> None:
    response = client.post("/places/groups", data={"name": "Nhóm", "unit_id": str(world.units["village"].id)})

    assert response.status_code == 422
    assert count_rows(session, ReportGroup) == 0


def test_area_unit_ids_of_a_group_a_province_and_a_commune(session: Session, world: World) -> None:
    units = world.units
    group = report_groups.save_group(session, world.admin, name="G", unit_ids=[units["commune"].id or 0])

    assert report_groups.area_unit_ids(session, "group", group.id or 0) == {units["commune"].id}
    assert report_groups.area_unit_ids(session, "unit", units["province"].id or 0) == {
        units["commune"].id,
        units["other"].id,
    }
    assert report_groups.area_unit_ids(session, "unit", units["other"].id or 0) == {units["other"].id}
    with pytest.raises(AppError):
        report_groups.area_unit_ids(session, "group", 999999)


@pytest.mark.parametrize("value", ["", "x:1", "u:", "u:abc", "g:-1", "12", "u:1:2"])
def test_parse_area_refuses_bad_values(value: str) -> None:
    with pytest.raises(FormError) as caught:
        report_groups.parse_area(value)
    assert "area" in caught.value.fields


def test_parse_area_reads_units_and_groups() -> None:
    assert report_groups.parse_area("u:12") == ("unit", 12)
    assert report_groups.parse_area(" g:3 ") == ("group", 3)


def test_unit_choices_offer_groups_and_units_in_scope(session: Session, world: World) -> None:
    units = world.units
    mine = report_groups.save_group(
        session, world.admin, name="Huyện Văn Quan cũ", unit_ids=[units["commune"].id or 0]
    )
    both = report_groups.save_group(
        session, world.admin, name="Hai xã", unit_ids=[units["commune"].id or 0, units["other"].id or 0]
    )
    office = make_staff(session, Role.office, units["commune"])

    everything = report_groups.unit_choices(session, world.admin)
    assert (f"g:{mine.id}", "Nhóm: Huyện Văn Quan cũ") in everything
    assert (f"g:{both.id}", "Nhóm: Hai xã") in everything
    assert (f"u:{units['province'].id}", "Tỉnh Lạng Sơn") in everything
    assert f"u:{units['village'].id}" not in dict(everything)
    scoped = report_groups.unit_choices(session, office)
    assert scoped == [
        (f"g:{mine.id}", "Nhóm: Huyện Văn Quan cũ"),
        (f"u:{units['commune'].id}", "Xã Văn Quan"),
    ]
    assert report_groups.unit_choices(session, office, "en")[0][1] == "Group: Huyện Văn Quan cũ"


def test_the_years_to_choose_follow_the_place_stored_on_each_check_in(
    client: TestClient, session: Session, settings: Settings, world: World
) -> None:
    event = make_event(session, world.venue, starts_at=DURING - timedelta(minutes=30))
    checkin.check_in(session, settings, _desk(event.id, DURING), staff=world.admin, now=DURING)
    response = change_unit(
        client,
        world.units["village"],
        kind="move",
        effective_on="2026-04-01",
        commune_id=str(world.units["other"].id),
    )
    assert response.status_code == 303
    today = date(2027, 2, 1)
    losing = make_staff(session, Role.office, world.units["commune"])
    gaining = make_staff(session, Role.office, world.units["other"])

    # The March 2026 check-in stays with the commune it was made in, although its venue has left since.
    assert reports.years_with_data(session, losing, settings.tz, today=today) == [2027, 2026]
    assert reports.years_with_data(session, gaining, settings.tz, today=today) == [2027]
