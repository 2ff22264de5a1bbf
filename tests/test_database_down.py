"""A database that is busy past the timeout or unreachable answers 503 with Retry-After (a Vietnamese page,
or problem details on the API), and the app recovers by itself once the database is back."""

from __future__ import annotations

import contextlib
import dataclasses
import socket
import sqlite3
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text
from sqlmodel import Session

from server.app import create_app
from server.config import Settings
from server.db import _sqlalchemy_url
from server.models import CheckIn, Role
from server.services import scans
from tests.factories import count_rows, login, make_event, make_staff, make_tree, make_venue


def _check_in(client: TestClient, code: str, nonce: str) -> Any:
    body = {
        "code": code,
        "nonce": nonce,
        "profile": {"age_band": "25-59", "gender": "female", "consent": True},
    }
    return client.post("/api/v1/checkins", json=body)


def _assert_503(response: Any, *, json: bool) -> None:
    assert response.status_code == 503, response.text
    assert int(response.headers["retry-after"]) > 0
    if json:
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["code"] == "database_busy"
        assert "Cơ sở dữ liệu đang bận" in response.json()["title"]
    else:
        assert "Cơ sở dữ liệu đang bận hoặc không kết nối được" in response.text


def test_sqlite_locked_past_the_busy_timeout_is_a_503_then_recovers(
    settings: Settings, session: Session
) -> None:
    if not settings.is_sqlite:
        pytest.skip("an SQLite file lock")
    commune = make_tree(session)["commune"]
    venue = make_venue(session, commune)
    staff = make_staff(session, Role.organizer, commune)
    event = make_event(session, venue)
    code = scans.code_for(event, settings)
    app = create_app(dataclasses.replace(settings, db_timeout_seconds=0.2))
    path = settings.database_url.split(":///", 1)[1]
    with TestClient(app, follow_redirects=False) as client:
        login(client, staff)
        holder = sqlite3.connect(path, isolation_level=None)
        holder.execute("BEGIN EXCLUSIVE")  # held the whole time: longer than any busy timeout
        try:
            _assert_503(_check_in(client, code, "nonce-busy-1"), json=True)
            form = {"title": "Họp", "type": "reading_festival", "venue_id": venue.id, "date": "2026-12-31"}
            page = client.post("/events", data={**form, "start_time": "09:00", "end_time": "10:00"})
            _assert_503(page, json=False)
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        assert _check_in(client, code, "nonce-busy-1").status_code == 201
    assert count_rows(session, CheckIn) == 1


class _Proxy:
    """A TCP forwarder standing in for the PostgreSQL server: `stop()` is the server going down (every
    connection cut, the port refusing), `start()` is it coming back on the same port."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        self.port = probe.getsockname()[1]
        probe.close()
        self.sockets: list[socket.socket] = []
        self.listener: socket.socket | None = None

    def start(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen()
        self.listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            self.sockets += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for s in (source, sink):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    def stop(self) -> None:
        if self.listener is None:
            return
        self.listener.shutdown(socket.SHUT_RDWR)  # wakes the accept() of _accept, which then returns
        self.listener.close()
        self.listener = None
        for s in self.sockets:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()
        self.sockets.clear()


@pytest.fixture
def pg_proxy(settings: Settings) -> Iterator[tuple[_Proxy, str]]:
    if settings.is_sqlite:
        pytest.skip("a PostgreSQL server going down")
    head, _, rest = settings.database_url.partition("://")
    credentials, _, location = rest.rpartition("@")
    hostport, _, database = location.partition("/")
    host, _, port = hostport.partition(":")
    proxy = _Proxy((host, int(port or 5432)))
    proxy.start()
    yield proxy, f"{head}://{credentials}@127.0.0.1:{proxy.port}/{database}"
    proxy.stop()


def test_postgresql_down_is_a_503_and_the_app_recovers_when_it_is_back(
    settings: Settings, session: Session, pg_proxy: tuple[_Proxy, str]
) -> None:
    proxy, url = pg_proxy
    venue = make_venue(session, make_tree(session)["commune"])
    event = make_event(session, venue)
    code = scans.code_for(event, settings)
    app = create_app(dataclasses.replace(settings, database_url=url, db_timeout_seconds=2))
    with TestClient(app, follow_redirects=False) as client:
        assert _check_in(client, code, "nonce-pg-01").status_code == 201
        proxy.stop()  # the server goes away: pooled connections die, new ones are refused
        _assert_503(_check_in(client, code, "nonce-pg-02"), json=True)
        _assert_503(client.post("/login", data={"username": "x", "password": "y"}), json=False)
        proxy.start()  # back on the same port: the pool drops dead connections and opens new ones
        assert _check_in(client, code, "nonce-pg-02").status_code == 201
    assert count_rows(session, CheckIn) == 2


def test_postgresql_backends_terminated_by_a_restart_are_replaced_without_an_error(
    settings: Settings, session: Session
) -> None:
    """pg_terminate_backend is what a server restart does to the app's pooled connections."""
    if settings.is_sqlite:
        pytest.skip("PostgreSQL backends")
    venue = make_venue(session, make_tree(session)["commune"])
    event = make_event(session, venue)
    code = scans.code_for(event, settings)
    app = create_app(settings)
    database = settings.database_url.rsplit("/", 1)[1]
    with TestClient(app, follow_redirects=False) as client:
        assert _check_in(client, code, "nonce-term-1").status_code == 201
        session.close()  # the test's own connection goes back to its pool, which checks it when reused
        admin = create_engine(_sqlalchemy_url(settings.database_url), isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            killed = conn.execute(
                text(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE datname = :db AND pid <> pg_backend_pid() AND backend_type = 'client backend'"
                ),
                {"db": database},
            ).scalar_one()
        admin.dispose()
        assert killed >= 1
        assert _check_in(client, code, "nonce-term-2").status_code == 201
    assert count_rows(session, CheckIn) == 2
