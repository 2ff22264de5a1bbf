"""API tokens end with a password change and with deactivation and stay ended; a token can be read-only."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from server.auth import create_api_token
from server.models import ApiToken, Role, Staff, StaffSession
from tests.factories import PASSWORD, count_rows, login, make_staff, make_tree, make_venue

NEW_PASSWORD = "mat-khau-moi-rat-dai"


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _works(client: TestClient, token: str) -> bool:
    response = client.get("/api/v1/events", headers=_bearer(token))
    assert response.status_code in (200, 401), response.text
    return response.status_code == 200


def _admin_client(client: TestClient, session: Session) -> Staff:
    admin = make_staff(session, Role.admin)
    login(client, admin)
    return admin


def test_deactivation_revokes_tokens_and_reactivation_brings_none_back(
    client: TestClient, session: Session
) -> None:
    organizer = make_staff(session, Role.organizer, make_tree(session)["commune"])
    _record, token = create_api_token(session, organizer, "bảng tính")
    device = TestClient(client.app, follow_redirects=False)
    login(device, organizer)
    assert _works(client, token)
    _admin_client(client, session)

    assert client.post(f"/staff/{organizer.id}/deactivate").status_code == 303
    assert not _works(client, token)
    assert client.post(f"/staff/{organizer.id}/activate").status_code == 303
    assert not _works(client, token), "a token of a reactivated account stays revoked"
    assert device.get("/profile").status_code == 303, "and so does the session"
    stored = session.exec(select(ApiToken).where(ApiToken.staff_id == organizer.id)).one()
    session.refresh(stored)
    assert stored.revoked_at is not None


def test_admin_setting_a_password_revokes_tokens_and_sessions(client: TestClient, session: Session) -> None:
    organizer = make_staff(session, Role.organizer, make_tree(session)["commune"])
    _record, token = create_api_token(session, organizer, "cũ")
    device = TestClient(client.app, follow_redirects=False)
    login(device, organizer)
    _admin_client(client, session)
    assert client.post(f"/staff/{organizer.id}/password", data={"password": NEW_PASSWORD}).status_code == 303
    assert not _works(client, token)
    assert device.get("/profile").status_code == 303
    open_sessions = session.exec(
        select(StaffSession).where(StaffSession.staff_id == organizer.id, StaffSession.revoked_at == None)  # noqa: E711
    ).all()
    assert open_sessions == []


def test_changing_ones_own_password_revokes_ones_tokens(client: TestClient, session: Session) -> None:
    staff = make_staff(session, Role.organizer, make_tree(session)["commune"])
    _record, token = create_api_token(session, staff, "cũ")
    login(client, staff)
    changed = client.post(
        "/profile/password", data={"current": PASSWORD, "password": NEW_PASSWORD, "confirm": NEW_PASSWORD}
    )
    assert changed.status_code == 303
    assert not _works(client, token)
    page = client.get(changed.headers["location"])
    assert "các mã API của bạn đã bị thu hồi" in page.text
    # A token made afterwards works.
    _record, fresh = create_api_token(session, staff, "mới")
    assert _works(client, fresh)


def test_a_read_only_token_reads_but_every_write_is_refused(client: TestClient, session: Session) -> None:
    tree = make_tree(session)
    staff = make_staff(session, Role.organizer, tree["commune"])
    venue = make_venue(session, tree["commune"])
    _record, token = create_api_token(session, staff, "chỉ đọc", read_only=True)
    assert client.get("/api/v1/events", headers=_bearer(token)).status_code == 200
    body = {"title": "Văn nghệ", "venue_id": venue.id, "starts_at": "2026-12-20T19:00:00+07:00"}
    refused = client.post("/api/v1/events", json=body, headers=_bearer(token))
    assert refused.status_code == 403 and refused.json()["code"] == "token_read_only"
    assert refused.headers["content-type"].startswith("application/problem+json")
    made = client.post("/api/v1/tokens", json={"name": "x"}, headers=_bearer(token))
    assert made.status_code == 403 and made.json()["code"] == "token_read_only"
    assert count_rows(session, ApiToken) == 1


def _operations(schema: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, operation)
        for path, methods in schema["paths"].items()
        for method, operation in methods.items()
        if method.upper() not in ("GET", "HEAD")
    ]


def test_every_api_write_refuses_a_read_only_token_and_documents_403(
    client: TestClient, session: Session
) -> None:
    staff = make_staff(session, Role.admin)
    _record, token = create_api_token(session, staff, "chỉ đọc", read_only=True)
    operations = _operations(client.get("/openapi.json").json())
    staff_writes = [op for op in operations if not op[1].startswith("/api/v1/kiosk")]
    assert len(staff_writes) >= 10
    for method, path, operation in staff_writes:
        url = path.replace("{event_id}", "1").replace("{participant_id}", "1").replace("{card_id}", "1")
        url = url.replace("{token_id}", "1")
        assert "{" not in url, url
        response = client.request(method, url, json={}, headers=_bearer(token))
        assert response.status_code == 403, (method, url, response.text)
        assert response.json()["code"] == "token_read_only"
        assert "403" in operation["responses"], (method, path)


def test_tokens_through_the_api_list_create_and_revoke(client: TestClient, session: Session) -> None:
    staff = make_staff(session, Role.organizer, make_tree(session)["commune"])
    _record, token = create_api_token(session, staff, "đầy đủ")
    made = client.post("/api/v1/tokens", json={"name": "báo cáo", "read_only": True}, headers=_bearer(token))
    assert made.status_code == 201, made.text
    new = made.json()
    assert new["read_only"] is True and new["token"].startswith(new["prefix"])
    assert client.get("/api/v1/events", headers=_bearer(new["token"])).status_code == 200
    listed = client.get("/api/v1/tokens", headers=_bearer(token)).json()
    assert [row["name"] for row in listed] == ["báo cáo", "đầy đủ"] and "token" not in listed[0]
    revoked = client.post(f"/api/v1/tokens/{new['id']}/revoke", headers=_bearer(token))
    assert revoked.status_code == 200 and revoked.json()["revoked_at"] is not None
    assert client.get("/api/v1/events", headers=_bearer(new["token"])).status_code == 401


@pytest.mark.parametrize("body", [{"name": ""}, {"name": "   "}, {"name": "x" * 101}, {}])
def test_a_token_needs_a_name(client: TestClient, session: Session, body: dict[str, str]) -> None:
    staff = make_staff(session, Role.organizer, make_tree(session)["commune"])
    _record, token = create_api_token(session, staff, "đầy đủ")
    refused = client.post("/api/v1/tokens", json=body, headers=_bearer(token))
    assert refused.status_code == 422 and refused.json()["code"] == "invalid_input"
    assert count_rows(session, ApiToken) == 1


def test_someone_elses_token_cannot_be_revoked(client: TestClient, session: Session) -> None:
    tree = make_tree(session)
    mine = make_staff(session, Role.organizer, tree["commune"])
    theirs = make_staff(session, Role.organizer, tree["commune"])
    _record, token = create_api_token(session, mine, "của tôi")
    other, other_plain = create_api_token(session, theirs, "của họ")
    refused = client.post(f"/api/v1/tokens/{other.id}/revoke", headers=_bearer(token))
    assert refused.status_code == 404
    assert _works(client, other_plain)


def test_read_only_is_chosen_on_the_profile_page(client: TestClient, session: Session) -> None:
    staff = make_staff(session, Role.organizer, make_tree(session)["commune"])
    login(client, staff)
    page = client.post("/profile/tokens", data={"name": "chỉ xem", "access": "read"})
    assert page.status_code == 200 and "Chỉ đọc" in page.text
    plain = page.text.split('id="new-token">')[1].split("<")[0]
    writer = client.post("/profile/tokens", data={"name": "ghi", "access": "write"})
    assert writer.status_code == 200
    stored = {t.name: t.read_only for t in session.exec(select(ApiToken)).all()}
    assert stored == {"chỉ xem": True, "ghi": False}
    fresh = TestClient(client.app, follow_redirects=False)
    refused = fresh.post("/api/v1/tokens", json={"name": "x"}, headers=_bearer(plain))
    assert refused.status_code == 403
    assert client.post("/profile/tokens", data={"name": "x", "access": "all"}).status_code == 422
