"""The JSON API: bearer tokens, the same rules as the pages, problem details with the same codes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fastapi.testclient import TestClient
from sqlmodel import Session

from server.auth import create_api_token
from server.config import Settings
from server.models import AgeBand, CheckIn, Event, Gender, Participant, Role
from server.services import identities
from server.services.identities import Profile
from server.services.scans import code_for
from tests.factories import count_rows, login, make_event, make_staff, make_tree, make_venue


def _bearer(session: Session, role: Role = Role.organizer) -> tuple[dict[str, str], dict]:  # type: ignore[type-arg]
    tree = make_tree(session)
    staff = make_staff(session, role, tree["commune"])
    _record, token = create_api_token(session, staff, "test")
    venue = make_venue(session, tree["village"])
    other = make_venue(session, tree["other"])
    return {"Authorization": f"Bearer {token}"}, {
        **tree,
        "staff": staff,
        "venue": venue,
        "other_venue": other,
    }


def test_openapi_schema_lists_the_api(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    assert "/api/v1/events" in schema["paths"] and "/api/v1/checkins" in schema["paths"]
    assert "/c/{code}" not in schema["paths"]


def test_anonymous_request_gets_401_problem(client: TestClient) -> None:
    response = client.get("/api/v1/events")
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "login_required"


def test_revoked_or_unknown_token_is_refused(client: TestClient) -> None:
    response = client.get("/api/v1/events", headers={"Authorization": "Bearer dd_nothing"})
    assert response.status_code == 401 and response.json()["code"] == "login_required"


def test_create_and_list_events_with_a_token(client: TestClient, session: Session) -> None:
    headers, world = _bearer(session)
    body = {
        "title": "Cuộc thi Giới thiệu sách",
        "type": "contest",
        "venue_id": world["venue"].id,
        "starts_at": "2026-04-23T08:00:00+07:00",
        "ends_at": "2026-04-23T11:00:00+07:00",
        "campaign": "world_book_day",
    }
    created = client.post("/api/v1/events", json=body, headers=headers)
    assert created.status_code == 201, created.text
    event = created.json()
    assert event["starts_at"].startswith("2026-04-23T01:00:00") and event["checkin_url"].endswith(
        event["checkin_code"]
    )
    listed = client.get("/api/v1/events", headers=headers).json()
    assert listed["total"] == 1 and listed["items"][0]["title"] == "Cuộc thi Giới thiệu sách"


def test_invalid_event_is_a_422_problem_and_stores_nothing(client: TestClient, session: Session) -> None:
    headers, world = _bearer(session)
    body = {
        "title": "X",
        "type": "contest",
        "venue_id": world["venue"].id,
        "starts_at": "2026-04-23T08:00:00+07:00",
        "ends_at": "2026-04-23T07:00:00+07:00",
    }
    response = client.post("/api/v1/events", json=body, headers=headers)
    assert response.status_code == 422 and response.json()["code"] == "invalid_input"
    assert "ends_at" in str(response.json()) or "end_time" in response.json().get("fields", {})
    naive = client.post("/api/v1/events", json={**body, "starts_at": "2026-04-23T08:00:00"}, headers=headers)
    assert naive.status_code == 422 and naive.headers["content-type"] == "application/problem+json"
    assert count_rows(session, Event) == 0


def test_event_outside_scope_is_forbidden(client: TestClient, session: Session) -> None:
    headers, world = _bearer(session)
    event = make_event(session, world["other_venue"])
    response = client.get(f"/api/v1/events/{event.id}", headers=headers)
    assert response.status_code == 403 and response.json()["code"] == "forbidden"


def test_patch_changes_only_given_fields(client: TestClient, session: Session) -> None:
    headers, world = _bearer(session)
    event = make_event(session, world["venue"], expected_audience=40)
    response = client.patch(f"/api/v1/events/{event.id}", json={"title": "Đổi tên"}, headers=headers)
    assert response.status_code == 200 and response.json()["title"] == "Đổi tên"
    assert response.json()["expected_audience"] == 40


def test_staff_check_in_is_idempotent_by_nonce(client: TestClient, session: Session) -> None:
    headers, world = _bearer(session)
    event = make_event(session, world["venue"])
    body = {
        "nonce": "offline-queue-0001",
        "profile": {"age_band": "60+", "gender": "female", "consent": True},
    }
    first = client.post(f"/api/v1/events/{event.id}/checkins", json=body, headers=headers)
    again = client.post(f"/api/v1/events/{event.id}/checkins", json=body, headers=headers)
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["id"] == again.json()["id"] and again.json()["created"] is False
    assert count_rows(session, CheckIn) == 1
    live = client.get(f"/api/v1/events/{event.id}/live", headers=headers).json()
    assert live["visits"] == 1 and {"key": "60+", "visits": 1} in live["by_age_band"]


def test_back_dated_check_in_is_accepted(client: TestClient, session: Session) -> None:
    headers, world = _bearer(session)
    event = make_event(session, world["venue"])
    when = (event.starts_at + timedelta(minutes=10)).isoformat()
    body = {
        "nonce": "paper-list-0001",
        "checked_in_at": when,
        "profile": {"age_band": "25-59", "gender": "male", "consent": True},
    }
    response = client.post(f"/api/v1/events/{event.id}/checkins", json=body, headers=headers)
    assert response.status_code == 201
    assert datetime.fromisoformat(response.json()["checked_in_at"]) == event.starts_at + timedelta(minutes=10)


def test_future_check_in_is_refused(client: TestClient, session: Session) -> None:
    headers, world = _bearer(session)
    event = make_event(session, world["venue"])
    when = (datetime.now(UTC) + timedelta(hours=2)).isoformat()
    body = {
        "nonce": "future-0001",
        "checked_in_at": when,
        "profile": {"age_band": "25-59", "gender": "male", "consent": True},
    }
    response = client.post(f"/api/v1/events/{event.id}/checkins", json=body, headers=headers)
    assert response.status_code == 422 and response.json()["code"] == "clock_skew"
    assert count_rows(session, CheckIn) == 0


def test_unknown_home_unit_is_a_422_problem_not_a_500(
    client: TestClient, session: Session, settings: Settings
) -> None:
    headers, world = _bearer(session)
    event = make_event(session, world["venue"])
    profile = {"age_band": "25-59", "gender": "male", "consent": True, "home_unit_id": 999_999}
    for url, body, extra in (
        ("/api/v1/checkins", {"code": code_for(event, settings)}, {}),
        (f"/api/v1/events/{event.id}/checkins", {}, headers),
    ):
        response = client.post(
            url, json={**body, "nonce": "home-unit-0001", "profile": profile}, headers=extra
        )
        assert response.status_code == 422 and response.json()["code"] == "invalid_input", response.text
    assert count_rows(session, CheckIn) == 0


def test_staff_api_finds_a_participant_and_checks_them_in_by_id_and_by_card(
    client: TestClient, session: Session, settings: Settings
) -> None:
    headers, world = _bearer(session)
    first, second = make_event(session, world["venue"]), make_event(session, world["venue"])
    person = identities.new_participant(
        session,
        Profile(
            AgeBand.from_60, Gender.male, home_unit_id=world["commune"].id, name="Lương Văn Tư", consent=True
        ),
        datetime.now(UTC),
    )
    card = identities.issue_card(session, settings, world["staff"], person, world["venue"])
    found = client.get("/api/v1/participants", params={"q": "luong van tu"}, headers=headers)
    assert found.status_code == 200
    assert found.json() == [
        {
            "id": person.id,
            "name": "Lương Văn Tư",
            "age_band": "60+",
            "gender": "male",
            "home_unit_id": world["commune"].id,
            "cards": [card.lookup],
        }
    ]
    by_id = {"nonce": "found-by-name-1", "participant_id": person.id}
    assert client.post(f"/api/v1/events/{first.id}/checkins", json=by_id, headers=headers).status_code == 201
    by_card = {"nonce": "card-scanner-1", "card": f"DIEMDANH:{card.lookup}"}
    stored = client.post(f"/api/v1/events/{second.id}/checkins", json=by_card, headers=headers)
    assert stored.status_code == 201 and stored.json()["participant_id"] == person.id
    assert count_rows(session, Participant) == 1 and count_rows(session, CheckIn) == 2


def test_openapi_documents_every_status_the_check_in_endpoints_answer(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    for path in (
        "/api/v1/checkins",
        "/api/v1/events/{event_id}/checkins",
        "/api/v1/events/{event_id}/headcounts",
    ):
        assert {"200", "201", "401", "403", "404", "409", "410", "422"} <= set(
            paths[path]["post"]["responses"]
        )
    assert {"200", "401", "422"} <= set(paths["/api/v1/checkins/batch"]["post"]["responses"])


def test_public_check_in_uses_the_same_rules(
    client: TestClient, session: Session, settings: Settings
) -> None:
    event = make_event(session)
    code = code_for(event, settings)
    no_consent = {"code": code, "nonce": "public-00001", "profile": {"age_band": "6-11", "gender": "male"}}
    refused = client.post("/api/v1/checkins", json=no_consent)
    assert refused.status_code == 422 and refused.json()["code"] == "consent_required"
    body = {**no_consent, "profile": {"age_band": "6-11", "gender": "male", "consent": True}}
    first = client.post("/api/v1/checkins", json=body)
    assert first.status_code == 201 and first.json()["device_token"]
    second = client.post(
        "/api/v1/checkins",
        json={"code": code, "nonce": "public-00002", "device_token": first.json()["device_token"]},
    )
    assert second.status_code == 409 and second.json()["code"] == "already_checked_in"
    assert second.json()["checked_in_at"].startswith(first.json()["checked_in_at"][:19])
    forged = client.post("/api/v1/checkins", json={**body, "code": code[:-2] + "00", "nonce": "public-00003"})
    assert forged.status_code == 404 and forged.json()["code"] == "code_invalid"
    assert count_rows(session, CheckIn) == 1


def test_session_cookie_also_works_for_the_api(client: TestClient, session: Session) -> None:
    tree = make_tree(session)
    staff = make_staff(session, Role.admin)
    make_event(session, make_venue(session, tree["village"]))
    login(client, staff)
    assert client.get("/api/v1/events").json()["total"] == 1


def test_bearer_token_created_on_profile_page_works(client: TestClient, session: Session) -> None:
    staff = make_staff(session, Role.admin)
    login(client, staff)
    page = client.post("/profile/tokens", data={"name": "Bảng tính"})
    token = page.text.split('id="new-token">')[1].split("<")[0]
    client.cookies.clear()
    assert client.get("/api/v1/events", headers={"Authorization": f"Bearer {token}"}).status_code == 200
