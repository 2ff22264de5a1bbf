"""Names outside their commune (services/names.py): a name is shown only to staff whose scope covers the place
where it was given or the person's home; others see them as anonymous, cannot find them by name and cannot act
for them. Through real HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlmodel import Session, col, select

from server.config import Settings
from server.db import alembic_config, make_engine
from server.models import (
    AgeBand,
    AuditEntry,
    Channel,
    CheckIn,
    Club,
    ClubType,
    Credential,
    CredentialKind,
    Event,
    Gender,
    OrgUnit,
    Participant,
    Role,
    Staff,
    Venue,
)
from server.services import clubs, identities, kiosks
from server.services.clubs import ClubInput
from server.services.scans import code_for
from tests.conftest import BACKENDS, PG_URL, _admin_sql
from tests.factories import login, make_event, make_staff, make_tree, make_unit, make_venue

NAME = "Lý Thị Mai"


@dataclass(frozen=True)
class World:
    tree: dict[str, OrgUnit]  # commune: A (Xã Văn Quan, with a village), other: B (Xã Tri Lễ)
    venue_a: Venue
    venue_b: Venue
    event_a: Event
    event_b: Event
    organizer_a: Staff
    organizer_b: Staff
    office_b: Staff
    admin: Staff
    person: Participant  # named at B's event by phone, then came to A's event with the same phone
    card: Credential  # issued to them at B
    club: Club  # at A's venue, the person on its roster


def _nonce(html: str) -> str:
    match = re.search(r'name="nonce" value="([^"]+)"', html)
    assert match, html
    return match.group(1)


def _phone_check_in(client: TestClient, settings: Settings, event: Event, **fields: str) -> None:
    url = f"/c/{code_for(event, settings)}"
    page = client.get(url)
    data = {"nonce": _nonce(page.text), **fields}
    if 'name="age_band"' in page.text:
        data = {"age_band": "25-59", "gender": "female", "consent": "yes", **data}
    done = client.post(url, data=data)
    assert done.status_code == 200, done.text


def _as(client: TestClient, staff: Staff) -> TestClient:
    client.cookies.clear()
    login(client, staff)
    return client


@pytest.fixture
def world(client: TestClient, session: Session, settings: Settings) -> World:
    tree = make_tree(session)
    venue_a = make_venue(session, tree["village"], name="Nhà văn hóa thôn Bản Cưởm")
    venue_b = make_venue(session, tree["other"], name="Thư viện xã Tri Lễ")
    event_a = make_event(session, venue_a, title="Ngày hội đọc sách Văn Quan")
    event_b = make_event(session, venue_b, title="Ngày hội đọc sách Tri Lễ")
    organizer_a = make_staff(session, Role.organizer, tree["commune"])
    organizer_b = make_staff(session, Role.organizer, tree["other"])
    office_b = make_staff(session, Role.office, tree["other"])
    admin = make_staff(session, Role.admin)
    _phone_check_in(client, settings, event_b, name=NAME)
    _phone_check_in(client, settings, event_a)  # one tap: the phone is known
    client.cookies.clear()
    person = session.exec(select(Participant)).one()
    assert person.name == NAME and person.home_unit_id is None
    card = identities.issue_card(session, settings, organizer_b, person, venue_b)
    club = clubs.create_club(session, organizer_a, ClubInput("CLB Cờ tướng", ClubType.club, venue_a.id or 0))
    clubs.add_member(session, organizer_a, club, person.id or 0)
    return World(
        tree,
        venue_a,
        venue_b,
        event_a,
        event_b,
        organizer_a,
        organizer_b,
        office_b,
        admin,
        person,
        card,
        club,
    )


def _anonymous(person: Participant) -> str:
    return f"Người tham gia số {person.id}"


def _live_details(html: str) -> str:
    start = html.index('id="live-details"')
    return html[start : html.index("</ul>", start)]


def _kiosk_who(
    client: TestClient, session: Session, staff: Staff, venue: Venue, event: Event, card: str
) -> Any:
    client.cookies.clear()
    now = datetime.now(UTC)
    _device, code = kiosks.enrol_device(session, staff, venue.id, "Máy cửa", now)
    _device, token = kiosks.pair_device(session, code, now)
    answer = client.post(
        "/api/v1/kiosk/batch",
        json={"items": [{"key": f"kiosk-{venue.id}-{card[:6]}", "event_id": event.id, "card": card}]},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert answer.status_code == 200, answer.text
    [result] = answer.json()["results"]
    assert result["participant_id"] is not None, result  # stored, or already checked in by phone
    return result["who"]


def _batch_who(client: TestClient, event: Event, key: str, **identity: Any) -> Any:
    answer = client.post(
        "/api/v1/checkins/batch", json={"items": [{"key": key, "event_id": event.id, **identity}]}
    )
    assert answer.status_code == 200, answer.text
    [result] = answer.json()["results"]
    assert result["status"] in ("stored", "refused") and result["participant_id"] is not None, result
    return result["who"]


# --- The organizer of the commune where the person only came ----------------------------------------------


def test_the_organizer_where_they_only_came_sees_anonymous_on_every_page(
    client: TestClient, session: Session, world: World
) -> None:
    person, number = world.person, world.card.lookup
    _as(client, world.organizer_a)
    event_page = client.get(f"/events/{world.event_a.id}")
    assert event_page.status_code == 200 and NAME not in event_page.text
    assert "Ẩn danh" in _live_details(event_page.text)
    live = client.get(f"/events/{world.event_a.id}/live")
    assert live.status_code == 200 and NAME not in live.text and "Ẩn danh" in live.text

    listed = client.get("/people")  # the latest card holders in their area: the person came here
    assert f'href="/people/{person.id}"' in listed.text and _anonymous(person) in listed.text
    assert NAME not in listed.text
    for q in ("Mai", "ly thi mai", NAME):
        assert f'href="/people/{person.id}"' not in client.get("/people", params={"q": q}).text
    by_card = client.get("/people", params={"q": number})
    assert _anonymous(person) in by_card.text and NAME not in by_card.text

    desk = client.get(
        f"/events/{world.event_a.id}/people", params={"q": "mai"}, headers={"HX-Request": "true"}
    )
    assert desk.status_code == 200 and f'value="{person.id}"' not in desk.text
    desk_card = client.get(
        f"/events/{world.event_a.id}/people", params={"q": number}, headers={"HX-Request": "true"}
    )
    assert f'value="{person.id}"' in desk_card.text and _anonymous(person) in desk_card.text
    assert NAME not in desk_card.text

    page = client.get(f"/people/{person.id}")
    assert page.status_code == 200 and _anonymous(person) in page.text and NAME not in page.text
    assert f'action="/people/{person.id}/correct"' not in page.text and 'id="stored"' not in page.text
    assert "Chỉ cán bộ của xã nơi người này đăng ký lần đầu" in page.text

    club_page = client.get(f"/clubs/{world.club.id}")
    assert (
        club_page.status_code == 200 and _anonymous(person) in club_page.text and NAME not in club_page.text
    )
    sheet = client.get("/people/cards", params={"card": world.card.id})
    assert sheet.status_code == 200 and NAME not in sheet.text


def test_the_organizer_where_they_only_came_cannot_find_or_act_through_the_api_or_the_desk(
    client: TestClient, session: Session, world: World
) -> None:
    person, number = world.person, world.card.lookup
    _as(client, world.organizer_a)
    assert client.get("/api/v1/participants", params={"q": "mai"}).json() == []
    [found] = client.get("/api/v1/participants", params={"q": number}).json()
    assert (found["id"], found["name"], found["cards"]) == (person.id, None, [number])

    desk = client.post(
        f"/events/{world.event_a.id}/checkins/card",
        data={"nonce": "desk-card-000001", "card": number},
        headers={"HX-Request": "true"},
    )
    assert desk.status_code == 200 and "đã điểm danh lúc" in desk.text  # by phone, earlier
    assert _anonymous(person) in desk.text and NAME not in desk.text
    assert _batch_who(client, world.event_a, "batch-card-000001", card=number) is None
    assert _batch_who(client, world.event_a, "batch-person-0001", participant_id=person.id) is None
    assert _kiosk_who(client, session, world.organizer_a, world.venue_a, world.event_a, number) is None

    _as(client, world.organizer_a)
    for method, path in (("GET", "data.json"), ("POST", "correct"), ("POST", "withdraw"), ("POST", "delete")):
        data = (
            {"confirm": "yes", "age_band": "60+", "gender": "male", "name": ""} if method == "POST" else None
        )
        assert client.request(method, f"/people/{person.id}/{path}", data=data).status_code == 404, path
    session.commit()
    session.refresh(person)
    assert person.name == NAME and person.erased_at is None
    assert all(c.revoked_at is None for c in session.exec(select(Credential)).all())


# --- Those who may see it -------------------------------------------------------------------------------


@pytest.mark.parametrize("who", ["organizer_b", "office_b", "admin"])
def test_the_commune_where_the_name_was_given_its_office_and_the_admin_see_it(
    client: TestClient, session: Session, world: World, who: str
) -> None:
    person, number = world.person, world.card.lookup
    _as(client, getattr(world, who))
    event_b = client.get(f"/events/{world.event_b.id}")
    assert NAME in _live_details(event_b.text)
    assert f'href="/people/{person.id}"' in client.get("/people", params={"q": "ly thi mai"}).text
    assert NAME in client.get("/people", params={"q": number}).text
    desk = client.get(
        f"/events/{world.event_b.id}/people", params={"q": "mai"}, headers={"HX-Request": "true"}
    )
    assert f'value="{person.id}"' in desk.text and NAME in desk.text
    page = client.get(f"/people/{person.id}")
    assert NAME in page.text and f'action="/people/{person.id}/correct"' in page.text
    assert json.loads(client.get(f"/people/{person.id}/data.json").text)["participant"]["name"] == NAME
    assert [p["name"] for p in client.get("/api/v1/participants", params={"q": "mai"}).json()] == [NAME]
    assert _batch_who(client, world.event_b, f"batch-b-{who}", participant_id=person.id) == NAME
    if who == "admin":
        assert NAME in _live_details(client.get(f"/events/{world.event_a.id}").text)
        assert NAME in client.get(f"/clubs/{world.club.id}").text
    if who == "organizer_b":
        assert _kiosk_who(client, session, world.organizer_b, world.venue_b, world.event_b, number) == NAME


def test_the_home_commune_sees_the_name_and_helps_the_person(
    client: TestClient, session: Session, world: World
) -> None:
    """Given at B, but the person lives in A's village: A's organizer sees it and may act for them."""
    person = session.get(Participant, world.person.id)
    assert person is not None
    person.home_unit_id = world.tree["village"].id
    session.add(person)
    session.commit()
    _as(client, world.organizer_a)
    assert NAME in _live_details(client.get(f"/events/{world.event_a.id}").text)
    assert f'href="/people/{person.id}"' in client.get("/people", params={"q": "mai"}).text
    fixed = client.post(
        f"/people/{person.id}/correct", data={"age_band": "60+", "gender": "female", "name": "Lý Thị Mây"}
    )
    assert fixed.status_code == 303
    session.refresh(person)
    assert person.name == "Lý Thị Mây"
    assert person.name_unit_id == world.venue_b.unit_id, "a correction does not move the name"


def test_viewing_a_participant_is_logged_with_whether_the_name_was_shown(
    client: TestClient, session: Session, world: World
) -> None:
    for staff in (world.organizer_a, world.organizer_b):
        _as(client, staff)
        assert client.get(f"/people/{world.person.id}").status_code == 200
    session.commit()
    entries = session.exec(
        select(AuditEntry).where(AuditEntry.action == "participant_viewed").order_by(col(AuditEntry.id))
    ).all()
    assert [(e.staff_id, e.target_id, json.loads(e.detail)) for e in entries] == [
        (world.organizer_a.id, str(world.person.id), {"name_shown": False}),
        (world.organizer_b.id, str(world.person.id), {"name_shown": True}),
    ]


# --- Where a name is given ------------------------------------------------------------------------------


def test_where_a_name_is_given_is_recorded_once_on_every_path(
    client: TestClient, session: Session, settings: Settings, world: World
) -> None:
    assert world.person.name_unit_id == world.venue_b.unit_id  # the phone's first check-in, at B

    _as(client, world.organizer_a)
    added = client.post(
        f"/events/{world.event_a.id}/checkins",
        data={
            "nonce": "desk-new-0000001",
            "age_band": "60+",
            "gender": "male",
            "name": "Hoàng Văn Páo",
            "consent": "yes",
        },
        headers={"HX-Request": "true"},
    )
    assert added.status_code == 200 and "Hoàng Văn Páo" in added.text  # typed here: shown here
    api = client.post(
        "/api/v1/participants",
        json={"profile": {"age_band": "25-59", "gender": "male", "name": "Lộc Văn Tư", "consent": True}},
    )
    assert api.status_code == 201 and api.json()["name"] == "Lộc Văn Tư"
    group = client.post(
        "/people/cards/new",
        data={
            "venue_id": str(world.venue_b.id),
            "age_band": "12-15",
            "gender": "male",
            "count": "1",
            "consent": "yes",
        },
    )
    assert group.status_code == 403  # not their venue
    session.commit()
    given = {p.name: p.name_unit_id for p in session.exec(select(Participant)).all()}
    assert given["Hoàng Văn Páo"] == world.venue_a.unit_id  # the desk: the event's venue
    assert given["Lộc Văn Tư"] == world.tree["commune"].id  # the API, no event: the staff member's unit
    assert given[NAME] == world.venue_b.unit_id, "coming to A's event did not move it"

    _as(client, world.organizer_b)
    made = client.post(
        "/people/cards/new",
        data={
            "venue_id": str(world.venue_b.id),
            "age_band": "25-59",
            "gender": "male",
            "names": "Vi Văn Sáu",
            "consent": "yes",
        },
    )
    assert made.status_code == 303
    sixth = session.exec(select(Participant).where(Participant.name == "Vi Văn Sáu")).one()
    assert sixth.name_unit_id == world.venue_b.unit_id  # a group's cards: the issuing venue


def test_a_phone_naming_itself_later_on_my_data_keeps_its_first_place(
    client: TestClient, session: Session, settings: Settings, world: World
) -> None:
    _phone_check_in(client, settings, world.event_a)  # a new phone, anonymous, at A
    fixed = client.post("/my-data", data={"age_band": "25-59", "gender": "male", "name": "Nông Văn Ba"})
    assert fixed.status_code == 303
    session.commit()
    named = session.exec(select(Participant).where(Participant.name == "Nông Văn Ba")).one()
    assert named.name_unit_id == world.venue_a.unit_id
    _as(client, world.organizer_a)
    assert "Nông Văn Ba" in client.get("/people", params={"q": "nong van"}).text
    _as(client, world.organizer_b)
    assert "Nông Văn Ba" not in client.get("/people", params={"q": "nong van"}).text


# --- The migration --------------------------------------------------------------------------------------


@pytest.fixture(params=BACKENDS)
def fresh_settings(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Settings]:
    """An empty database of its own, to migrate step by step."""
    if request.param == "sqlite":
        yield Settings(env="development", database_url=f"sqlite:///{tmp_path / 'old.sqlite3'}")
        return
    head, _, name = PG_URL.rpartition("/")
    db_name = f"{name}_dd_names_{os.getpid()}"
    _admin_sql(PG_URL, f'DROP DATABASE IF EXISTS "{db_name}"')
    _admin_sql(PG_URL, f'CREATE DATABASE "{db_name}"')
    yield Settings(env="development", database_url=f"{head}/{db_name}")
    _admin_sql(PG_URL, f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')


def test_the_migration_places_each_existing_name_where_it_was_first_given(fresh_settings: Settings) -> None:
    config = alembic_config(fresh_settings)
    command.upgrade(config, "0011")
    engine = make_engine(fresh_settings)
    at = datetime(2026, 4, 21, 1, 30, tzinfo=UTC)
    with Session(engine, expire_on_commit=False) as session:
        tree = make_tree(session)
        far = make_unit(session, parent=tree["province"], name="Xã Khánh Khê")
        venue_a, venue_b = make_venue(session, tree["village"]), make_venue(session, tree["other"])
        event_a, event_b = (
            make_event(session, venue_a, starts_at=at),
            make_event(session, venue_b, starts_at=at),
        )
        people = {  # name: home
            "came to B then A": None,
            "card at A, lives far": far.id,
            "only a home": far.id,
            "erased": None,
            "nothing": None,
        }
        for number, (name, home) in enumerate(people.items(), start=1):
            session.execute(
                text(
                    "INSERT INTO participant (id, name, search_name, age_band, gender, home_unit_id, "
                    "created_at, erased_at) VALUES (:id, :name, '', '25-59', 'female', :home, :at, :erased)"
                ),
                {
                    "id": number,
                    "name": name,
                    "home": home,
                    "at": at,
                    "erased": at if name == "erased" else None,
                },
            )
        session.commit()
        visits = [(1, event_b, venue_b, 0), (1, event_a, venue_a, 1), (4, event_a, venue_a, 0)]
        for participant_id, event, venue, hours in visits:
            session.add(
                CheckIn(
                    event_id=event.id or 0,
                    participant_id=participant_id,
                    nonce=f"old-{participant_id}-{event.id}",
                    channel=Channel.staff_form,
                    checked_in_at=at + timedelta(hours=hours),
                    received_at=at + timedelta(hours=hours),
                    venue_id=venue.id or 0,
                    venue_type=venue.type,
                    age_band=AgeBand.from_25,
                    gender=Gender.female,
                )
            )
        session.add(
            Credential(participant_id=2, kind=CredentialKind.card, lookup="OLDCARD1", venue_id=venue_a.id)
        )
        session.commit()
    engine.dispose()

    command.upgrade(config, "head")
    engine = make_engine(fresh_settings)
    with Session(engine) as session:
        placed = {p.name: p.name_unit_id for p in session.exec(select(Participant)).all()}
    engine.dispose()
    assert placed == {
        "came to B then A": venue_b.unit_id,  # the first check-in
        "card at A, lives far": venue_a.unit_id,  # no check-in: the card's venue before the home
        "only a home": far.id,
        "erased": None,
        "nothing": None,
    }
    command.downgrade(config, "0011")
