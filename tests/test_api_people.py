"""The participants and cards API: the same services and rules as the /people pages."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlmodel import Session

from server.auth import create_api_token
from server.models import CheckIn, Credential, Participant, Role
from tests.factories import count_rows, make_event, make_staff, make_tree, make_venue

ELDER = {"age_band": "60+", "gender": "male", "name": "Hoàng Văn Páo", "consent": True}


def _bearer(session: Session) -> tuple[dict[str, str], dict]:  # type: ignore[type-arg]
    tree = make_tree(session)
    staff = make_staff(session, Role.organizer, tree["commune"])
    _record, token = create_api_token(session, staff, "kiosk")
    venue = make_venue(session, tree["commune"])
    theirs = make_venue(session, tree["other"])
    return {"Authorization": f"Bearer {token}"}, {**tree, "staff": staff, "venue": venue, "theirs": theirs}


def test_register_with_a_card_then_check_in_by_its_qr_text(client: TestClient, session: Session) -> None:
    headers, world = _bearer(session)
    body = {"profile": ELDER, "card_venue_id": world["venue"].id}
    made = client.post("/api/v1/participants", json=body, headers=headers)
    assert made.status_code == 201, made.text
    (number,) = made.json()["cards"]
    assert len(number) == 10 and made.json()["name"] == "Hoàng Văn Páo"
    event = make_event(session, world["venue"])
    checked = client.post(
        f"/api/v1/events/{event.id}/checkins",
        json={"nonce": "kiosk-scan-0001", "card": f"DIEMDANH:{number}"},
        headers=headers,
    )
    assert checked.status_code == 201 and checked.json()["participant_id"] == made.json()["id"]
    assert checked.json()["channel"] == "staff_api"


def test_a_card_at_a_venue_out_of_scope_is_forbidden_and_stores_nothing(
    client: TestClient, session: Session
) -> None:
    headers, world = _bearer(session)
    body = {"profile": ELDER, "card_venue_id": world["theirs"].id}
    refused = client.post("/api/v1/participants", json=body, headers=headers)
    assert refused.status_code == 403 and refused.json()["code"] == "forbidden"
    assert count_rows(session, Participant) == 0 and count_rows(session, Credential) == 0


def test_no_name_is_registered_for_a_child(client: TestClient, session: Session) -> None:
    headers, _world = _bearer(session)
    child = {**ELDER, "age_band": "6-11"}
    refused = client.post("/api/v1/participants", json={"profile": child}, headers=headers)
    assert refused.status_code == 422 and refused.json()["code"] == "name_not_allowed_for_child"
    assert count_rows(session, Participant) == 0


def test_issue_revoke_and_replace_a_card(client: TestClient, session: Session) -> None:
    headers, world = _bearer(session)
    home = {**ELDER, "home_unit_id": world["commune"].id}
    person = client.post("/api/v1/participants", json={"profile": home}, headers=headers).json()
    assert person["cards"] == []
    first = client.post(
        f"/api/v1/participants/{person['id']}/cards", json={"venue_id": world["venue"].id}, headers=headers
    )
    assert first.status_code == 201 and first.json()["qr"] == "DIEMDANH:" + first.json()["number"]
    revoked = client.post(f"/api/v1/cards/{first.json()['id']}/revoke", headers=headers)
    assert revoked.status_code == 200 and revoked.json()["revoked_at"]
    event = make_event(session, world["venue"])
    url = f"/api/v1/events/{event.id}/checkins"
    old = client.post(url, json={"nonce": "old-card-0001", "card": first.json()["number"]}, headers=headers)
    assert old.status_code == 410 and old.json()["code"] == "credential_revoked"
    second = client.post(
        f"/api/v1/participants/{person['id']}/cards", json={"venue_id": world["venue"].id}, headers=headers
    )
    replaced = client.post(f"/api/v1/cards/{second.json()['id']}/replace", headers=headers)
    assert replaced.status_code == 201 and replaced.json()["number"] != second.json()["number"]
    new = client.post(
        url, json={"nonce": "new-card-0001", "card": replaced.json()["number"]}, headers=headers
    )
    assert new.status_code == 201 and new.json()["participant_id"] == person["id"]
    assert count_rows(session, Participant) == 1 and count_rows(session, CheckIn) == 1
    found = client.get("/api/v1/participants", params={"q": "hoang van"}, headers=headers).json()
    assert [p["cards"] for p in found] == [[replaced.json()["number"]]]
