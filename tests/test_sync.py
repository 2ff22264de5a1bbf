"""Offline batches: services/sync.py::run_batch, and POST /api/v1/checkins/batch through real HTTP."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, col, select

from server.config import Settings
from server.errors import AppError, ErrorCode
from server.models import (
    AgeBand,
    Channel,
    CheckIn,
    CheckInAttempt,
    Event,
    Gender,
    Headcount,
    OrgUnit,
    Participant,
    Role,
    Staff,
    Venue,
)
from server.services import identities
from server.services.checkin import CheckInRequest, Identity, Profile
from server.services.headcounts import HeadcountRequest
from server.services.scans import code_for
from server.services.sync import Outcome, run_batch
from tests.factories import count_rows, login, make_event, make_participant, make_staff, make_tree, make_venue

T0 = datetime(2026, 3, 10, 2, 0, tzinfo=UTC)
DURING = T0 + timedelta(minutes=30)
SYNCED = T0 + timedelta(days=2)  # the outbox reached the server two days later
ADULT = Profile(AgeBand.from_25, Gender.female, consent=True)
PROFILE_JSON = {"age_band": "25-59", "gender": "female", "consent": True}
BATCH_URL = "/api/v1/checkins/batch"


@dataclass(frozen=True)
class Scene:
    units: dict[str, OrgUnit]
    venue: Venue
    organizer: Staff
    event: Event


def _scene(session: Session, starts_at: datetime) -> Scene:
    units = make_tree(session)
    venue = make_venue(session, units["village"])
    organizer = make_staff(session, Role.organizer, units["commune"])
    return Scene(units, venue, organizer, make_event(session, venue, starts_at=starts_at))


@pytest.fixture
def scene(session: Session) -> Scene:
    """An event on a fixed day, for the service tests (which pass `now=`)."""
    return _scene(session, T0)


@pytest.fixture
def live(session: Session) -> Scene:
    """An event going on now, for the HTTP tests (a request is stamped with the server's clock)."""
    return _scene(session, datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=30))


def token() -> str:
    return secrets.token_urlsafe(24)


def phone_item(
    event: Event, settings: Settings, key: str, *, claimed_at: datetime = DURING
) -> CheckInRequest:
    return CheckInRequest(
        channel=Channel.batch,
        key=key,
        code=code_for(event, settings),
        claimed_at=claimed_at,
        identity=Identity(device_token=token(), profile=ADULT),
    )


def summary(outcomes: list[Outcome]) -> list[tuple[str, str, ErrorCode | None]]:
    return [(o.key, o.status, o.code) for o in outcomes]


# --- The service -------------------------------------------------------------------------------------


def test_batch_answers_item_by_item_in_order(session: Session, settings: Settings, scene: Scene) -> None:
    first = phone_item(scene.event, settings, "outbox-0001")
    items: list[CheckInRequest | HeadcountRequest | AppError] = [
        first,
        phone_item(
            scene.event, settings, "outbox-0002", claimed_at=T0 + timedelta(days=1)
        ),  # after the window
        AppError(ErrorCode.invalid_input, "claimed_at"),  # an item the caller could not even read
        first,  # sent twice in the same batch
        phone_item(scene.event, settings, "outbox-0005"),
    ]
    keys = ["outbox-0001", "outbox-0002", "outbox-0003", "outbox-0001", "outbox-0005"]
    outcomes = run_batch(session, settings, items, staff=None, now=SYNCED, keys=keys)
    assert summary(outcomes) == [
        ("outbox-0001", "stored", None),
        ("outbox-0002", "refused", ErrorCode.code_expired),
        ("outbox-0003", "refused", ErrorCode.invalid_input),
        ("outbox-0001", "replayed", None),
        ("outbox-0005", "stored", None),
    ]
    assert outcomes[3].check_in_id == outcomes[0].check_in_id
    assert outcomes[0].late and outcomes[4].late  # reached the server two days after the scan
    session.commit()
    rows = session.exec(select(CheckIn).order_by(col(CheckIn.id))).all()
    assert [r.id for r in rows] == [outcomes[0].check_in_id, outcomes[4].check_in_id]
    assert all(
        r.channel == Channel.batch and r.checked_in_at == DURING and r.received_at == SYNCED for r in rows
    )
    outcome_log = [
        a.outcome for a in session.exec(select(CheckInAttempt).order_by(col(CheckInAttempt.id))).all()
    ]
    assert outcome_log == ["accepted", "code_expired", "replayed", "accepted"]


def test_resending_a_batch_stores_nothing_twice(session: Session, settings: Settings, scene: Scene) -> None:
    items: list[CheckInRequest | HeadcountRequest | AppError] = [
        phone_item(scene.event, settings, "outbox-0101"),
        phone_item(
            scene.event, settings, "outbox-0102", claimed_at=T0 - timedelta(days=1)
        ),  # before the window
        phone_item(scene.event, settings, "outbox-0103"),
    ]
    run_batch(session, settings, items, staff=None, now=SYNCED)
    again = run_batch(session, settings, items, staff=None, now=SYNCED + timedelta(hours=1))
    assert summary(again) == [
        ("outbox-0101", "replayed", None),
        ("outbox-0102", "refused", ErrorCode.code_not_yet_valid),
        ("outbox-0103", "replayed", None),
    ]
    assert count_rows(session, CheckIn) == 2 and count_rows(session, Participant) == 2


def test_headcount_in_a_batch_without_login_is_refused(
    session: Session, settings: Settings, scene: Scene
) -> None:
    items: list[CheckInRequest | HeadcountRequest | AppError] = [
        HeadcountRequest(key="door-count-0001", event_id=scene.event.id or 0, delta=3, claimed_at=DURING),
        phone_item(scene.event, settings, "outbox-0201"),
    ]
    outcomes = run_batch(session, settings, items, staff=None, now=SYNCED)
    assert summary(outcomes) == [
        ("door-count-0001", "refused", ErrorCode.login_required),
        ("outbox-0201", "stored", None),
    ]
    assert count_rows(session, Headcount) == 0 and count_rows(session, CheckIn) == 1
    logged = session.exec(select(CheckInAttempt.action, CheckInAttempt.outcome, CheckInAttempt.nonce)).all()
    assert ("headcount", "login_required", "door-count-0001") in logged


def test_staff_batch_stores_headcounts_and_card_check_ins(
    session: Session, settings: Settings, scene: Scene
) -> None:
    holder = make_participant(session, home_unit=scene.units["village"])
    card = identities.issue_card(session, settings, scene.organizer, holder, scene.venue, now=T0)
    items: list[CheckInRequest | HeadcountRequest | AppError] = [
        HeadcountRequest(
            key="door-count-0301",
            event_id=scene.event.id or 0,
            delta=4,
            claimed_at=DURING,
            channel=Channel.kiosk,
        ),
        CheckInRequest(
            channel=Channel.kiosk,
            key="kiosk-0302",
            event_id=scene.event.id,
            claimed_at=DURING,
            identity=Identity(card=card.lookup),
        ),
    ]
    outcomes = run_batch(session, settings, items, staff=scene.organizer, now=DURING + timedelta(minutes=5))
    assert [o.status for o in outcomes] == ["stored", "stored"]
    session.commit()
    [row] = session.exec(select(Headcount)).all()
    assert (row.id, row.delta, row.recorded_by_id) == (outcomes[0].headcount_id, 4, scene.organizer.id)
    [record] = session.exec(select(CheckIn)).all()
    assert (record.id, record.participant_id, record.credential_id) == (
        outcomes[1].check_in_id,
        holder.id,
        card.id,
    )


# --- Through HTTP ------------------------------------------------------------------------------------


def post_batch(client: TestClient, items: list[Any]) -> list[dict[str, Any]]:
    response = client.post(BATCH_URL, json={"items": items})
    assert response.status_code == 200, response.text
    results: list[dict[str, Any]] = response.json()["results"]
    assert len(results) == len(items)
    return results


def statuses(results: list[dict[str, Any]]) -> list[tuple[str, str, str | None]]:
    return [(r["key"], r["status"], r["code"]) for r in results]


def test_batch_endpoint_answers_each_item_and_a_malformed_one_sinks_nothing(
    client: TestClient, session: Session, settings: Settings, live: Scene
) -> None:
    code = code_for(live.event, settings)
    items: list[Any] = [
        {"key": "http-item-0001", "code": code, "device_token": token(), "profile": PROFILE_JSON},
        {"key": "http-item-0002", "code": code, "claimed_at": "not a date", "profile": PROFILE_JSON},
        {"code": code, "device_token": token(), "profile": PROFILE_JSON},  # no key
        "not an object",
        {"key": "http-item-0005", "code": code, "device_token": token(), "profile": PROFILE_JSON},
        {
            "key": "http-item-0006",
            "code": code,
            "device_token": token(),
            "profile": {**PROFILE_JSON, "consent": False},
        },
    ]
    results = post_batch(client, items)
    assert statuses(results) == [
        ("http-item-0001", "stored", None),
        ("http-item-0002", "refused", "invalid_input"),
        ("", "refused", "invalid_input"),
        ("", "refused", "invalid_input"),
        ("http-item-0005", "stored", None),
        ("http-item-0006", "refused", "consent_required"),
    ]
    assert all(r["message"] for r in results if r["status"] == "refused")
    assert count_rows(session, CheckIn) == 2 and count_rows(session, Participant) == 2
    again = post_batch(client, items)
    assert [r["status"] for r in again] == [
        "replayed",
        "refused",
        "refused",
        "refused",
        "replayed",
        "refused",
    ]
    assert [r["check_in_id"] for r in again if r["status"] == "replayed"] == [
        r["check_in_id"] for r in results if r["status"] == "stored"
    ]
    assert count_rows(session, CheckIn) == 2 and count_rows(session, Participant) == 2


def test_anonymous_batch_with_code_and_device_token_works(
    client: TestClient, session: Session, settings: Settings, live: Scene
) -> None:
    phone = token()
    later = make_event(session, live.venue, starts_at=live.event.starts_at)
    first = post_batch(
        client,
        [
            {
                "key": "http-anon-0001",
                "code": code_for(live.event, settings),
                "device_token": phone,
                "profile": PROFILE_JSON,
            }
        ],
    )
    second = post_batch(
        client, [{"key": "http-anon-0002", "code": code_for(later, settings), "device_token": phone}]
    )
    assert [r["status"] for r in first + second] == ["stored", "stored"]
    assert count_rows(session, Participant) == 1
    rows = session.exec(select(CheckIn).order_by(col(CheckIn.id))).all()
    assert [(r.event_id, r.channel, r.recorded_by_id) for r in rows] == [
        (live.event.id, Channel.batch, None),
        (later.id, Channel.batch, None),
    ]


def test_headcount_item_without_login_is_refused_login_required(
    client: TestClient, session: Session, settings: Settings, live: Scene
) -> None:
    results = post_batch(
        client, [{"type": "headcount", "key": "http-door-0001", "event_id": live.event.id, "delta": 2}]
    )
    assert statuses(results) == [("http-door-0001", "refused", "login_required")]
    assert count_rows(session, Headcount) == 0


def test_staff_batch_over_http_stores_headcounts_and_card_check_ins(
    client: TestClient, session: Session, settings: Settings, live: Scene
) -> None:
    holder = make_participant(session, home_unit=live.units["village"])
    card = identities.issue_card(session, settings, live.organizer, holder, live.venue)
    login(client, live.organizer)
    items: list[Any] = [
        {
            "type": "headcount",
            "key": "http-door-0101",
            "event_id": live.event.id,
            "delta": 3,
            "age_band": "6-11",
        },
        {
            "key": "http-card-0102",
            "event_id": live.event.id,
            "card": f"diemdanh:{card.lookup.lower()}",
            "kiosk": True,
        },
        {"key": "http-card-0103", "event_id": live.event.id, "card": card.lookup, "kiosk": True},  # twice
        {
            "type": "headcount",
            "key": "http-door-0104",
            "event_id": live.event.id,
            "delta": -5,
            "age_band": "6-11",
        },
    ]
    results = post_batch(client, items)
    assert statuses(results) == [
        ("http-door-0101", "stored", None),
        ("http-card-0102", "stored", None),
        ("http-card-0103", "refused", "already_checked_in"),
        ("http-door-0104", "refused", "headcount_below_zero"),
    ]
    session.commit()
    [row] = session.exec(select(Headcount)).all()
    assert (row.id, row.delta, row.age_band, row.recorded_by_id) == (
        results[0]["headcount_id"],
        3,
        AgeBand.from_6,
        live.organizer.id,
    )
    [record] = session.exec(select(CheckIn)).all()
    assert (record.id, record.participant_id, record.credential_id) == (
        results[1]["check_in_id"],
        holder.id,
        card.id,
    )
    assert (record.channel, record.recorded_by_id) == (Channel.kiosk, live.organizer.id)
    assert post_batch(client, items)[:2] == [
        {**results[0], "status": "replayed"},
        {**results[1], "status": "replayed"},
    ]
    assert count_rows(session, Headcount) == 1 and count_rows(session, CheckIn) == 1


def test_staff_batch_item_naming_an_event_outside_scope_by_code_is_refused(
    client: TestClient, session: Session, settings: Settings, live: Scene
) -> None:
    holder = make_participant(session, home_unit=live.units["village"])
    card = identities.issue_card(session, settings, live.organizer, holder, live.venue)
    login(client, make_staff(session, Role.organizer, live.units["other"]))
    item = {
        "key": "http-scope-0001",
        "code": code_for(live.event, settings),
        "card": card.lookup,
        "kiosk": True,
    }
    assert statuses(post_batch(client, [item])) == [("http-scope-0001", "refused", "forbidden")]
    assert count_rows(session, CheckIn) == 0


def test_batch_endpoint_refuses_an_empty_batch(client: TestClient) -> None:
    response = client.post(BATCH_URL, json={"items": []})
    assert response.status_code == 422


def test_batch_endpoint_is_in_the_openapi_schema(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    operation = schema["paths"][BATCH_URL]["post"]
    assert operation["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith("/BatchIn")
    assert operation["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "/BatchOut"
    )
    assert "BatchItemIn" in schema["components"]["schemas"]


def test_staff_batch_answer_says_who_came_and_when_for_the_screen(
    client: TestClient, session: Session, settings: Settings, live: Scene
) -> None:
    holder = make_participant(session, name="Hoàng Thị Lan", home_unit=live.units["village"])
    card = identities.issue_card(session, settings, live.organizer, holder, live.venue)
    login(client, live.organizer)
    first, again = post_batch(
        client,
        [
            {"key": "who-card-0001", "event_id": live.event.id, "card": card.lookup},
            {"key": "who-card-0002", "event_id": live.event.id, "card": card.lookup},
        ],
    )
    assert (first["status"], first["who"]) == ("stored", "Hoàng Thị Lan")
    assert (again["code"], again["who"]) == ("already_checked_in", "Hoàng Thị Lan")
    assert first["checked_in_at"] == again["checked_in_at"] is not None


def test_anonymous_batch_answer_names_nobody(
    client: TestClient, session: Session, settings: Settings, live: Scene
) -> None:
    item = {"key": "anon-who-0001", "code": code_for(live.event, settings), "device_token": token()}
    [answer] = post_batch(client, [{**item, "profile": {**PROFILE_JSON, "name": "Lan"}}])
    assert answer["status"] == "stored" and answer["who"] is None and answer["checked_in_at"]
