"""Kiosk devices: enrolment, pairing, the device token, its API and the staff pages, through real HTTP."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, col, select

from server.config import Settings
from server.errors import AppError, ErrorCode
from server.models import (
    Channel,
    CheckIn,
    CheckInAttempt,
    Event,
    EventStatus,
    Headcount,
    KioskDevice,
    OrgUnit,
    Role,
    Staff,
    Venue,
)
from server.services import identities, kiosks
from server.services import staff as accounts
from tests.factories import count_rows, login, make_event, make_participant, make_staff, make_tree, make_venue

KIOSK_URL = "/api/v1/kiosk"
BATCH_URL = "/api/v1/kiosk/batch"


@dataclass(frozen=True)
class Scene:
    units: dict[str, OrgUnit]
    venue: Venue
    other_venue: Venue
    organizer: Staff
    event: Event


@pytest.fixture
def scene(session: Session) -> Scene:
    """An event going on now at a village venue, and a venue in the neighbouring commune."""
    units = make_tree(session)
    venue = make_venue(session, units["village"])
    other_venue = make_venue(session, units["other"])
    organizer = make_staff(session, Role.organizer, units["commune"])
    return Scene(units, venue, other_venue, organizer, make_event(session, venue))


def now() -> datetime:
    return datetime.now(UTC)


def paired(session: Session, scene: Scene, name: str = "Máy cửa thư viện") -> tuple[KioskDevice, str]:
    device, code = kiosks.enrol_device(session, scene.organizer, scene.venue.id, name, now())
    _device, token = kiosks.pair_device(session, code, now())
    return device, token


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def post_batch(client: TestClient, token: str, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    response = client.post(BATCH_URL, json={"items": items}, headers=bearer(token))
    assert response.status_code == 200, response.text
    results: list[dict[str, Any]] = response.json()["results"]
    return results


def statuses(results: list[dict[str, Any]]) -> list[tuple[str, str, str | None]]:
    return [(r["key"], r["status"], r["code"]) for r in results]


def card_for(session: Session, settings: Settings, scene: Scene, name: str | None = "Hoàng Văn Tuấn") -> str:
    holder = make_participant(session, name=name, home_unit=scene.units["village"])
    return identities.issue_card(session, settings, scene.organizer, holder, scene.venue).lookup


# --- Enrolment and pairing ----------------------------------------------------------------------------


def test_enrol_needs_a_staff_member_allowed_at_the_venue(session: Session, scene: Scene) -> None:
    stranger = make_staff(session, Role.organizer, scene.units["other"])
    with pytest.raises(AppError) as refused:
        kiosks.enrol_device(session, stranger, scene.venue.id, "Máy", now())
    assert refused.value.code == ErrorCode.forbidden
    with pytest.raises(AppError) as unknown:
        kiosks.enrol_device(session, scene.organizer, 999_999, "Máy", now())
    assert unknown.value.code == ErrorCode.not_found
    assert count_rows(session, KioskDevice) == 0
    device, code = kiosks.enrol_device(session, scene.organizer, scene.venue.id, "  Máy   cửa ", now())
    assert re.fullmatch(r"\d{8}", code) and device.name == "Máy cửa"
    assert device.pairing_hash is not None and code not in device.pairing_hash  # only its hash is kept
    assert (device.venue_id, device.enrolled_by_id, device.token_hash) == (
        scene.venue.id,
        scene.organizer.id,
        None,
    )


def test_pairing_code_works_once_and_accepts_spaces_and_dashes(
    client: TestClient, session: Session, scene: Scene
) -> None:
    _device, code = kiosks.enrol_device(session, scene.organizer, scene.venue.id, "Máy", now())
    response = client.post("/kiosk/pair", data={"code": f"{code[:4]} - {code[4:]}"})
    assert response.status_code == 303 and response.headers["location"] == "/kiosk"
    again = client.post("/kiosk/pair", data={"code": code})
    assert again.status_code == 422
    assert "Mã ghép nối không hợp lệ" in again.text and f'value="{code}"' in again.text  # the code is kept


def test_enrolling_again_before_pairing_gives_the_same_kiosk_a_new_code(
    client: TestClient, session: Session, scene: Scene
) -> None:
    """A reload of the page that showed the code (the browser sends the form again) or a double tap."""
    login(client, scene.organizer)
    form = {"venue_id": str(scene.venue.id), "name": "Máy cửa thư viện"}
    first, again = (client.post("/kiosks", data=form) for _ in range(2))
    assert first.status_code == again.status_code == 200
    shown = [re.search(r'<p class="pairing-code">([\d ]+)</p>', r.text) for r in (first, again)]
    assert all(shown)
    assert count_rows(session, KioskDevice) == 1
    old, new = (found.group(1).replace(" ", "") for found in shown if found)
    assert old != new
    with pytest.raises(AppError):
        kiosks.pair_device(session, old, now())
    device, _token = kiosks.pair_device(session, new, now())
    # Once paired, the same form makes a second kiosk (another phone at the same door).
    assert client.post("/kiosks", data=form).status_code == 200
    assert count_rows(session, KioskDevice) == 2 and device.paired_at is not None


def test_pair_sets_the_kiosk_cookie_and_redirects(client: TestClient, session: Session, scene: Scene) -> None:
    _device, code = kiosks.enrol_device(session, scene.organizer, scene.venue.id, "Máy", now())
    form = client.get(f"/kiosk/pair?code={code}")
    assert form.status_code == 200 and f'value="{code}"' in form.text
    response = client.post("/kiosk/pair", data={"code": code})
    assert response.status_code == 303 and response.headers["location"] == "/kiosk"
    cookie = response.headers["set-cookie"]
    assert cookie.startswith("dd_kiosk=ddk_")
    for part in ("HttpOnly", "SameSite=Lax", f"Max-Age={400 * 24 * 3600}", "Path=/"):
        assert part in cookie
    assert "Secure" not in cookie  # the test server is plain http
    assert client.get(KIOSK_URL).status_code == 200  # the cookie alone is the kiosk's credential


def test_pairing_code_expires_after_15_minutes(session: Session, scene: Scene) -> None:
    start = now()
    _device, code = kiosks.enrol_device(session, scene.organizer, scene.venue.id, "Máy", start)
    with pytest.raises(AppError) as late:
        kiosks.pair_device(session, code, start + timedelta(minutes=15, seconds=1))
    assert late.value.code == ErrorCode.pairing_code_invalid
    device, token = kiosks.pair_device(session, code, start + timedelta(minutes=14))
    assert token.startswith("ddk_") and device.token_hash is not None and token not in device.token_hash


def test_wrong_pairing_code_is_422_pairing_code_invalid(
    client: TestClient, session: Session, scene: Scene
) -> None:
    kiosks.enrol_device(session, scene.organizer, scene.venue.id, "Máy", now())
    for wrong in ("00000000", "1234", "abcdefgh", ""):
        response = client.post("/kiosk/pair", data={"code": wrong})
        assert response.status_code == 422, wrong
        assert "dd_kiosk" not in response.headers.get("set-cookie", "")
    with pytest.raises(AppError) as refused:
        kiosks.pair_device(session, "00000000", now())
    assert (refused.value.code, refused.value.status) == (ErrorCode.pairing_code_invalid, 422)


def test_revoked_device_cannot_pair(session: Session, scene: Scene) -> None:
    device, code = kiosks.enrol_device(session, scene.organizer, scene.venue.id, "Máy", now())
    kiosks.revoke_device(session, scene.organizer, device.id or 0, now())
    with pytest.raises(AppError) as refused:
        kiosks.pair_device(session, code, now())
    assert refused.value.code == ErrorCode.pairing_code_invalid


# --- The device token -----------------------------------------------------------------------------------


def test_kiosk_lists_only_todays_events_of_its_venue(
    client: TestClient, session: Session, settings: Settings, scene: Scene
) -> None:
    _device, token = paired(session, scene)
    later_today = make_event(session, scene.venue, starts_at=scene.event.starts_at + timedelta(hours=1))
    make_event(session, scene.venue, starts_at=scene.event.starts_at + timedelta(days=3))  # another day
    make_event(session, scene.venue, starts_at=scene.event.starts_at - timedelta(days=3))
    make_event(session, scene.other_venue)  # another venue
    make_event(session, scene.venue, status=EventStatus.cancelled)
    response = client.get(KIOSK_URL, headers=bearer(token))
    assert response.status_code == 200
    body = response.json()
    assert body["device"] == {
        "id": _device.id,
        "name": "Máy cửa thư viện",
        "venue_id": scene.venue.id,
        "venue_name": scene.venue.name,
    }
    assert [e["id"] for e in body["events"]] == [scene.event.id, later_today.id]
    first = body["events"][0]
    margin = timedelta(minutes=settings.checkin_margin_minutes)
    assert datetime.fromisoformat(first["opens_at"]) == scene.event.starts_at - margin
    assert datetime.fromisoformat(first["closes_at"]) == scene.event.ends_at + margin
    assert set(first) == {"id", "title", "starts_at", "ends_at", "opens_at", "closes_at"}
    assert abs(datetime.fromisoformat(body["server_time"]) - now()) < timedelta(minutes=1)


def test_kiosk_events_are_those_whose_window_touches_the_local_day(
    session: Session, settings: Settings, scene: Scene
) -> None:
    device, _token = paired(session, scene)
    # 10/3/2026 in Hồ Chí Minh time runs from 9/3 17:00 UTC to 10/3 17:00 UTC; the margin is 2 hours.
    at = datetime(2026, 3, 10, 3, 0, tzinfo=UTC)
    evening_before = make_event(session, scene.venue, starts_at=datetime(2026, 3, 9, 13, 0, tzinfo=UTC))
    make_event(session, scene.venue, starts_at=datetime(2026, 3, 9, 10, 0, tzinfo=UTC))  # closed 9/3 15:00
    after_midnight = make_event(session, scene.venue, starts_at=datetime(2026, 3, 10, 18, 30, tzinfo=UTC))
    make_event(session, scene.venue, starts_at=datetime(2026, 3, 10, 19, 30, tzinfo=UTC))  # opens 17:30
    listed = kiosks.kiosk_events(session, settings, device, at)
    assert [e.id for e in listed] == [evening_before.id, after_midnight.id]


def test_revoke_stops_the_kiosk_at_once(client: TestClient, session: Session, scene: Scene) -> None:
    device, token = paired(session, scene)
    assert client.get(KIOSK_URL, headers=bearer(token)).status_code == 200
    login(client, scene.organizer)
    response = client.post(f"/kiosks/{device.id}/revoke")
    assert response.status_code == 303
    client.cookies.clear()
    refused = client.get(KIOSK_URL, headers=bearer(token))
    assert refused.status_code == 401 and refused.json()["code"] == "device_revoked"
    batch = client.post(BATCH_URL, json={"items": [{"key": "kiosk-rev-01"}]}, headers=bearer(token))
    assert batch.status_code == 401 and batch.json()["code"] == "device_revoked"
    session.expire_all()
    stored = session.get(KioskDevice, device.id)
    assert stored is not None and stored.revoked_by_id == scene.organizer.id and stored.revoked_at is not None


def test_new_pairing_code_stops_the_old_token(client: TestClient, session: Session, scene: Scene) -> None:
    device, old = paired(session, scene)
    code = kiosks.new_pairing_code(session, scene.organizer, device.id or 0, now())
    refused = client.get(KIOSK_URL, headers=bearer(old))
    assert refused.status_code == 401 and refused.json()["code"] == "device_revoked"
    _same, new = kiosks.pair_device(session, code, now())
    assert _same.id == device.id and new != old
    assert client.get(KIOSK_URL, headers=bearer(new)).status_code == 200


def test_deactivated_enrolling_staff_stops_their_kiosks(
    client: TestClient, session: Session, scene: Scene
) -> None:
    _device, token = paired(session, scene)
    accounts.set_active(session, scene.organizer.id or 0, False)
    refused = client.get(KIOSK_URL, headers=bearer(token))
    assert refused.status_code == 401 and refused.json()["code"] == "device_revoked"


def test_no_or_unknown_kiosk_credential_is_401_device_revoked(client: TestClient) -> None:
    for headers in ({}, bearer("ddk_not-a-real-token"), bearer("dd_a-staff-token")):
        response = client.get(KIOSK_URL, headers=headers)
        assert response.status_code == 401 and response.json()["code"] == "device_revoked"
    client.cookies.set("dd_kiosk", "ddk_forged")
    assert client.post(BATCH_URL, json={"items": [{"key": "kiosk-none-1"}]}).status_code == 401


def test_a_staff_login_is_not_a_kiosk(client: TestClient, session: Session, scene: Scene) -> None:
    login(client, scene.organizer)
    response = client.get(KIOSK_URL)
    assert response.status_code == 401 and response.json()["code"] == "device_revoked"


def test_kiosk_token_cannot_reach_staff_pages_or_the_staff_api(
    client: TestClient, session: Session, scene: Scene
) -> None:
    _device, token = paired(session, scene)
    assert client.get("/api/v1/events", headers=bearer(token)).status_code == 401
    event_checkin = client.post(
        f"/api/v1/events/{scene.event.id}/checkins", json={"nonce": "kiosk-staff-1"}, headers=bearer(token)
    )
    assert event_checkin.status_code == 401
    client.cookies.set("dd_kiosk", token)
    for path in ("/events", "/kiosks", "/people", f"/events/{scene.event.id}"):
        page = client.get(path)
        assert page.status_code == 303 and page.headers["location"].startswith("/login"), path
    assert client.get("/api/v1/events").status_code == 401
    assert client.post("/api/v1/checkins/batch", json={"items": [{"key": "kiosk-staff-2"}]}).json()[
        "results"
    ][0]["code"] in ("code_invalid", "login_required")


def test_last_seen_is_written_at_most_once_a_minute(session: Session, scene: Scene) -> None:
    _device, token = paired(session, scene)
    start = now()
    seen = kiosks.device_from_token(session, token, start + timedelta(minutes=5))
    assert seen.last_seen_at == start + timedelta(minutes=5)
    again = kiosks.device_from_token(session, token, start + timedelta(minutes=5, seconds=30))
    assert again.last_seen_at == start + timedelta(minutes=5)


# --- The batch ------------------------------------------------------------------------------------------


def test_kiosk_card_check_in_is_stored_with_who_and_the_kiosk_channel(
    client: TestClient, session: Session, settings: Settings, scene: Scene
) -> None:
    _device, token = paired(session, scene)
    number = card_for(session, settings, scene)
    results = post_batch(
        client,
        token,
        [
            {
                "type": "check_in",
                "key": "kiosk-card-01",
                "event_id": scene.event.id,
                "card": f"DIEMDANH:{number}",
            },
            {"type": "check_in", "key": "kiosk-card-02", "event_id": scene.event.id, "card": number},
        ],
    )
    assert statuses(results) == [
        ("kiosk-card-01", "stored", None),
        ("kiosk-card-02", "refused", "already_checked_in"),
    ]
    assert results[0]["who"] == "Hoàng Văn Tuấn" and results[1]["who"] == "Hoàng Văn Tuấn"
    assert results[1]["message"] == "Bạn đã điểm danh rồi."
    session.commit()
    [record] = session.exec(select(CheckIn)).all()
    assert (record.id, record.participant_id, record.channel, record.recorded_by_id) == (
        results[0]["check_in_id"],
        results[0]["participant_id"],
        Channel.kiosk,
        scene.organizer.id,
    )
    assert results[1]["participant_id"] == record.participant_id


def test_kiosk_unknown_or_forged_card_is_card_invalid(
    client: TestClient, session: Session, settings: Settings, scene: Scene
) -> None:
    _device, token = paired(session, scene)
    results = post_batch(
        client,
        token,
        [
            {"key": "kiosk-forge-1", "event_id": scene.event.id, "card": "DIEMDANH:ABCDEFGHJK"},
            {"key": "kiosk-forge-2", "event_id": scene.event.id, "card": "12345"},
        ],
    )
    assert [r["code"] for r in results] == ["card_invalid", "card_invalid"]
    assert count_rows(session, CheckIn) == 0


def test_kiosk_revoked_card_is_credential_revoked(
    client: TestClient, session: Session, settings: Settings, scene: Scene
) -> None:
    _device, token = paired(session, scene)
    number = card_for(session, settings, scene)
    card = session.exec(select(identities.Credential).where(identities.Credential.lookup == number)).one()
    identities.revoke(session, scene.organizer, card)
    results = post_batch(client, token, [{"key": "kiosk-revc-1", "event_id": scene.event.id, "card": number}])
    assert statuses(results) == [("kiosk-revc-1", "refused", "credential_revoked")]
    assert count_rows(session, CheckIn) == 0


def test_kiosk_event_at_another_venue_is_forbidden_and_logged(
    client: TestClient, session: Session, settings: Settings, scene: Scene
) -> None:
    _device, token = paired(session, scene)
    number = card_for(session, settings, scene)
    # In the organizer's scope (the same commune) but not the kiosk's venue, and out of scope altogether.
    neighbour = make_event(session, make_venue(session, scene.units["commune"]))
    far = make_event(session, scene.other_venue)
    results = post_batch(
        client,
        token,
        [
            {"key": "kiosk-venue-1", "event_id": neighbour.id, "card": number},
            {"key": "kiosk-venue-2", "event_id": far.id, "card": number},
            {"type": "headcount", "key": "kiosk-venue-3", "event_id": neighbour.id, "delta": 2},
        ],
    )
    assert [r["code"] for r in results] == ["forbidden", "forbidden", "forbidden"]
    assert count_rows(session, CheckIn) == 0 and count_rows(session, Headcount) == 0
    logged = session.exec(select(CheckInAttempt).order_by(col(CheckInAttempt.id))).all()
    assert [(a.nonce, a.outcome, a.channel, a.event_id, a.action) for a in logged] == [
        ("kiosk-venue-1", "forbidden", Channel.kiosk, neighbour.id, "check_in"),
        ("kiosk-venue-2", "forbidden", Channel.kiosk, None, "check_in"),
        ("kiosk-venue-3", "forbidden", Channel.kiosk, neighbour.id, "headcount"),
    ]
    assert {a.staff_id for a in logged} == {scene.organizer.id}


def test_kiosk_identities_other_than_a_card_are_forbidden_and_logged(
    client: TestClient, session: Session, settings: Settings, scene: Scene
) -> None:
    _device, token = paired(session, scene)
    holder = make_participant(session, home_unit=scene.units["village"])
    number = card_for(session, settings, scene)
    profile = {"age_band": "25-59", "gender": "female", "consent": True}
    event_id = scene.event.id
    results = post_batch(
        client,
        token,
        [
            {"key": "kiosk-who-001", "event_id": event_id, "profile": profile},
            {"key": "kiosk-who-002", "event_id": event_id, "participant_id": holder.id},
            {"key": "kiosk-who-003", "event_id": event_id, "device_token": "a" * 32, "profile": profile},
            {"key": "kiosk-who-004", "event_id": event_id, "card": number, "participant_id": holder.id},
        ],
    )
    assert [r["code"] for r in results] == ["forbidden"] * 4
    assert count_rows(session, CheckIn) == 0
    logged = session.exec(select(CheckInAttempt).order_by(col(CheckInAttempt.id))).all()
    assert [(a.nonce, a.outcome, a.event_id) for a in logged] == [
        (f"kiosk-who-00{i}", "forbidden", event_id) for i in range(1, 5)
    ]


def test_kiosk_headcount_works_and_the_same_key_twice_is_stored_once(
    client: TestClient, session: Session, settings: Settings, scene: Scene
) -> None:
    _device, token = paired(session, scene)
    number = card_for(session, settings, scene)
    items = [
        {"type": "headcount", "key": "kiosk-door-01", "event_id": scene.event.id, "delta": 3},
        {"key": "kiosk-card-11", "event_id": scene.event.id, "card": number},
    ]
    first = post_batch(client, token, items)
    assert statuses(first) == [("kiosk-door-01", "stored", None), ("kiosk-card-11", "stored", None)]
    again = post_batch(client, token, items)
    assert statuses(again) == [("kiosk-door-01", "replayed", None), ("kiosk-card-11", "replayed", None)]
    assert again[0]["headcount_id"] == first[0]["headcount_id"]
    assert again[1]["check_in_id"] == first[1]["check_in_id"]
    assert count_rows(session, Headcount) == 1 and count_rows(session, CheckIn) == 1
    [row] = session.exec(select(Headcount)).all()
    assert (row.delta, row.channel, row.recorded_by_id) == (3, Channel.kiosk, scene.organizer.id)


def test_kiosk_batch_is_in_the_openapi_schema_with_its_problems(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    batch = paths[BATCH_URL]["post"]
    assert batch["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith("/BatchIn")
    assert batch["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith("/BatchOut")
    assert {"401", "422"} <= set(batch["responses"])
    assert "401" in paths[KIOSK_URL]["get"]["responses"]


# --- The staff pages ------------------------------------------------------------------------------------


def test_kiosks_page_enrols_and_shows_the_pairing_code(
    client: TestClient, session: Session, settings: Settings, scene: Scene
) -> None:
    login(client, scene.organizer)
    page = client.get("/kiosks")
    assert page.status_code == 200 and scene.venue.name in page.text and 'action="/kiosks"' in page.text
    # The name field's hint is an attribute of its own, not escaped into the tag's text.
    assert 'placeholder="Máy ở cửa thư viện" maxlength="60"' in client.get("/kiosks").text
    response = client.post("/kiosks", data={"venue_id": str(scene.venue.id), "name": "Máy cửa"})
    assert response.status_code == 200
    shown = re.search(r'class="pairing-code">(\d{4}) (\d{4})<', response.text)
    assert shown is not None
    code = shown.group(1) + shown.group(2)
    assert "<svg" in response.text and "/kiosk/pair" in response.text
    session.commit()
    [device] = session.exec(select(KioskDevice)).all()
    assert (device.name, device.venue_id) == ("Máy cửa", scene.venue.id)
    assert kiosks.pair_device(session, code, now())[0].id == device.id
    listed = client.get("/kiosks").text
    assert "Máy cửa" in listed and "Đã ghép nối" in listed
    again = client.post(f"/kiosks/{device.id}/pair")
    assert again.status_code == 200 and 'class="pairing-code"' in again.text


def test_kiosks_page_shows_errors_in_the_form(client: TestClient, session: Session, scene: Scene) -> None:
    login(client, scene.organizer)
    cases = [
        {"venue_id": str(scene.venue.id), "name": "   "},
        {"venue_id": str(scene.venue.id), "name": "x" * 61},
        {"venue_id": "", "name": "Máy"},
        {"venue_id": "abc", "name": "Máy"},
        {"venue_id": "999999", "name": "Máy"},
        {"venue_id": str(scene.other_venue.id), "name": "Máy"},  # not in the organizer's scope
    ]
    for data in cases:
        response = client.post("/kiosks", data=data)
        assert response.status_code == 422, data
        assert 'class="field-error"' in response.text, data
    assert count_rows(session, KioskDevice) == 0


def test_kiosks_of_another_commune_cannot_be_seen_or_changed(
    client: TestClient, session: Session, scene: Scene
) -> None:
    device, token = paired(session, scene)
    login(client, make_staff(session, Role.organizer, scene.units["other"]))
    assert device.name not in client.get("/kiosks").text
    assert client.post(f"/kiosks/{device.id}/revoke").status_code == 403
    assert client.post(f"/kiosks/{device.id}/pair").status_code == 403
    assert client.post("/kiosks/999999/revoke").status_code == 404
    client.cookies.clear()
    assert client.get(KIOSK_URL, headers=bearer(token)).status_code == 200  # still working
