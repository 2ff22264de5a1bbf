"""The login throttle holds across processes: uvicorn --workers 2, wrong passwords sent on fresh connections
steered in turn to each worker (tests/browser/test_live_workers.py tells which worker accepted one), then
the next attempt is refused with 429 by both workers. On SQLite and PostgreSQL. Also: HSTS is sent when
the proxy uvicorn trusts says the request came over https, and only then."""

from __future__ import annotations

import http.client
from pathlib import Path
from urllib.parse import urlencode

import pytest
from sqlmodel import Session

from server.config import Settings
from server.models import LoginThrottle, Role
from server.services.login_throttle import ACCOUNT_AT_ADDRESS, PAIRING
from tests.browser.support import running_server
from tests.browser.test_live_workers import connection_to, worker_pids
from tests.factories import PASSWORD, make_staff

pytestmark = pytest.mark.browser

WORKERS = 2


def _post_login(
    connection: http.client.HTTPConnection, username: str, password: str, **headers: str
) -> tuple[int, dict[str, str], str]:
    body = urlencode({"username": username, "password": password}).encode()
    all_headers = {"Content-Type": "application/x-www-form-urlencoded", "Connection": "close", **headers}
    try:
        connection.request("POST", "/login", body=body, headers=all_headers)
        response = connection.getresponse()
        text = response.read().decode()
    finally:
        connection.close()
    return response.status, {k.lower(): v for k, v in response.getheaders()}, text


def test_wrong_passwords_on_both_workers_add_up_to_one_limit(
    session: Session, settings: Settings, server_port: int, tmp_path: Path
) -> None:
    staff = make_staff(session, Role.organizer)
    with running_server(settings, server_port, tmp_path / "server.log", workers=WORKERS) as server:
        workers = worker_pids(server)
        assert len(workers) == WORKERS, f"uvicorn runs {WORKERS} worker processes, found {workers}"
        order = sorted(workers)
        handled = dict.fromkeys(order, 0)
        for number in range(ACCOUNT_AT_ADDRESS.free):
            worker = order[number % WORKERS]
            connection, _tries = connection_to(worker, workers, server_port)
            status, _headers, _text = _post_login(connection, staff.username, "sai-mat-khau-roi")
            assert status == 401, (number, status)
            handled[worker] += 1
        assert all(count >= 2 for count in handled.values()), handled
        for worker in order:  # the next try, even with the right password, is refused by each worker
            connection, _tries = connection_to(worker, workers, server_port)
            status, headers, text = _post_login(connection, staff.username, PASSWORD)
            assert status == 429, (worker, status, text[:300])
            assert 0 < int(headers["retry-after"]) <= 60
            assert "Vui lòng thử lại sau 1 phút." in text
            assert "set-cookie" not in headers
        row = session.get(LoginThrottle, f"account-address:{staff.username}|127.0.0.1")
        assert row is not None and row.failures == ACCOUNT_AT_ADDRESS.free
        print(f"wrong passwords per worker {handled}; attempt {ACCOUNT_AT_ADDRESS.free + 1} refused by both")

        # HSTS only when the trusted proxy (127.0.0.1, uvicorn's default) says https.
        plain = http.client.HTTPConnection("127.0.0.1", server_port, timeout=10)
        plain.request("GET", "/login")
        assert plain.getresponse().getheader("strict-transport-security") is None
        plain.close()
        proxied = http.client.HTTPConnection("127.0.0.1", server_port, timeout=10)
        proxied.request("GET", "/login", headers={"X-Forwarded-Proto": "https"})
        assert proxied.getresponse().getheader("strict-transport-security") == "max-age=31536000"
        proxied.close()


def _post_pairing(connection: http.client.HTTPConnection, code: str) -> tuple[int, dict[str, str], str]:
    body = urlencode({"code": code}).encode()
    headers = {"Content-Type": "application/x-www-form-urlencoded", "Connection": "close"}
    try:
        connection.request("POST", "/kiosk/pair", body=body, headers=headers)
        response = connection.getresponse()
        text = response.read().decode()
    finally:
        connection.close()
    return response.status, {k.lower(): v for k, v in response.getheaders()}, text


def test_wrong_pairing_codes_on_both_workers_add_up_to_one_limit(
    settings: Settings, server_port: int, tmp_path: Path
) -> None:
    """A kiosk's 8-digit pairing code cannot be guessed faster by spreading the guesses over the workers:
    the tries from one address count in the database, and past the free ones both workers answer 429."""
    with running_server(settings, server_port, tmp_path / "server.log", workers=WORKERS) as server:
        workers = worker_pids(server)
        assert len(workers) == WORKERS, f"uvicorn runs {WORKERS} worker processes, found {workers}"
        order = sorted(workers)
        for number in range(PAIRING.free):
            connection, _tries = connection_to(order[number % WORKERS], workers, server_port)
            status, _headers, text = _post_pairing(connection, f"{10_000_000 + number}")
            assert status != 429 and status >= 400, (number, status, text[:300])
        for worker in order:
            connection, _tries = connection_to(worker, workers, server_port)
            status, headers, _text = _post_pairing(connection, "87654321")
            assert status == 429, (worker, status)
            assert int(headers["retry-after"]) > 0
