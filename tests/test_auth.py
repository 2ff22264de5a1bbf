"""Login, logout, the session cookie, revocation, CSRF and the language choice."""

from __future__ import annotations

from datetime import timedelta

import jwt
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from server import auth
from server.config import Settings
from server.models import ApiToken, Role, StaffSession, utcnow
from tests.factories import PASSWORD, count_rows, login, make_staff


def test_login_sets_a_hardened_session_cookie(client: TestClient, session: Session) -> None:
    staff = make_staff(session, Role.admin)
    response = client.post(
        "/login", data={"username": staff.username, "password": PASSWORD, "next": "/profile"}
    )
    assert response.status_code == 303 and response.headers["location"] == "/profile"
    cookie = response.headers["set-cookie"]
    assert "dd_session=" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert "Secure" not in cookie  # http base URL; https adds Secure
    assert client.get("/profile").status_code == 200


def test_wrong_password_is_refused_in_vietnamese(client: TestClient, session: Session) -> None:
    staff = make_staff(session, Role.admin)
    response = client.post("/login", data={"username": staff.username, "password": "sai-mat-khau"})
    assert response.status_code == 401 and "Sai tên đăng nhập hoặc mật khẩu." in response.text
    assert "dd_session" not in client.cookies


def test_login_never_redirects_to_another_site(client: TestClient, session: Session) -> None:
    staff = make_staff(session, Role.admin)
    response = client.post(
        "/login", data={"username": staff.username, "password": PASSWORD, "next": "//evil.example/x"}
    )
    assert response.headers["location"] == "/events"


def test_logout_revokes_the_server_side_session(client: TestClient, session: Session) -> None:
    staff = make_staff(session, Role.admin)
    login(client, staff)
    token = client.cookies["dd_session"]
    assert client.post("/logout").status_code == 303
    client.cookies.clear()
    client.cookies.set("dd_session", token)  # a copy of the old cookie no longer works
    response = client.get("/profile")
    assert response.status_code == 303 and response.headers["location"].startswith("/login")


def test_deactivated_staff_is_logged_out(client: TestClient, session: Session) -> None:
    staff = make_staff(session, Role.admin)
    login(client, staff)
    staff.active = False
    session.add(staff)
    session.commit()
    assert client.get("/profile").status_code == 303


def test_expired_token_is_renewed_while_the_session_lives(
    client: TestClient, session: Session, settings: Settings
) -> None:
    staff = make_staff(session, Role.admin)
    login(client, staff)
    claims = jwt.decode(client.cookies["dd_session"], settings.secret_key, algorithms=["HS256"])
    past = utcnow() - timedelta(minutes=settings.token_minutes * 2)
    old = jwt.encode({**claims, "iat": past, "exp": past + timedelta(minutes=1)}, settings.secret_key)
    client.cookies.clear()
    client.cookies.set("dd_session", old)
    response = client.get("/profile")
    assert response.status_code == 200
    assert "dd_session=" in response.headers.get("set-cookie", "")


def test_token_signed_with_another_key_is_refused(client: TestClient, session: Session) -> None:
    staff = make_staff(session, Role.admin)
    login(client, staff)
    claims = jwt.decode(client.cookies["dd_session"], options={"verify_signature": False})
    client.cookies.clear()
    client.cookies.set("dd_session", jwt.encode(claims, "another-key-that-is-long-enough-0123456789"))
    assert client.get("/profile").status_code == 303


def test_expired_server_session_is_refused(client: TestClient, session: Session) -> None:
    staff = make_staff(session, Role.admin)
    login(client, staff)
    record = session.exec(select(StaffSession)).one()
    record.expires_at = utcnow() - timedelta(seconds=1)
    session.add(record)
    session.commit()
    assert client.get("/profile").status_code == 303


def test_cross_site_form_post_is_refused(client: TestClient, session: Session) -> None:
    staff = make_staff(session, Role.admin)
    login(client, staff)
    for headers in ({"Sec-Fetch-Site": "cross-site"}, {"Origin": "https://evil.example"}):
        response = client.post("/profile/tokens", data={"name": "x"}, headers=headers)
        assert response.status_code == 403 and "trang web khác" in response.text
    same = client.post(
        "/profile/tokens",
        data={"name": "x"},
        headers={"Sec-Fetch-Site": "same-origin", "Origin": "http://testserver"},
    )
    assert same.status_code == 200


def test_language_choice_is_remembered(client: TestClient) -> None:
    response = client.post("/lang", data={"lang": "en", "next": "/login"})
    assert response.status_code == 303 and response.headers["location"] == "/login"
    assert 'lang="en"' in client.get("/login").text
    client.post("/lang", data={"lang": "vi", "next": "/"})
    assert "Đăng nhập dành cho cán bộ" in client.get("/login").text


def test_security_headers_are_sent(client: TestClient) -> None:
    headers = client.get("/login").headers
    assert headers["x-content-type-options"] == "nosniff"
    assert "frame-ancestors 'none'" in headers["content-security-policy"]


def test_versioned_static_files_are_cached_and_pages_compressed(client: TestClient) -> None:
    static = client.get("/static/css/app.css?v=1")
    assert static.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert "cache-control" not in client.get("/static/css/app.css").headers
    page = client.get("/login", headers={"Accept-Encoding": "gzip"})
    assert page.headers["content-encoding"] == "gzip"


def test_changing_own_password_logs_out_other_devices(client: TestClient, session: Session) -> None:
    staff = make_staff(session, Role.organizer)
    other_device = TestClient(client.app, follow_redirects=False)
    login(other_device, staff)
    login(client, staff)
    new = "mat-khau-moi-rat-dai"
    changed = client.post("/profile/password", data={"current": PASSWORD, "password": new, "confirm": new})
    assert changed.status_code == 303
    assert client.get("/profile").status_code == 200  # this device goes on
    assert other_device.get("/profile").status_code == 303  # the other one is out
    client.post("/logout")
    login(client, staff, new)


def test_password_change_needs_the_current_password(client: TestClient, session: Session) -> None:
    staff = make_staff(session, Role.organizer)
    login(client, staff)
    wrong = client.post(
        "/profile/password", data={"current": "sai", "password": "x" * 12, "confirm": "x" * 12}
    )
    assert wrong.status_code == 422 and "Mật khẩu hiện tại không đúng." in wrong.text
    short = client.post(
        "/profile/password", data={"current": PASSWORD, "password": "ngan", "confirm": "ngan"}
    )
    assert short.status_code == 422
    session.refresh(staff)
    assert auth.verify_password(PASSWORD, staff.password_hash)


def test_token_without_a_name_is_refused_and_not_stored(client: TestClient, session: Session) -> None:
    staff = make_staff(session, Role.organizer)
    login(client, staff)
    refused = client.post("/profile/tokens", data={"name": "   "})
    assert refused.status_code == 422
    assert count_rows(session, ApiToken) == 0


def test_static_links_carry_a_hash_of_the_file(client: TestClient) -> None:
    page = client.get("/login").text
    href = page.split('rel="stylesheet" href="')[1].split('"')[0]
    assert href.startswith("/static/css/app.css?v=") and len(href.split("v=")[1]) == 10
    assert client.get(href).headers["cache-control"].endswith("immutable")
