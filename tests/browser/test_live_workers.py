"""Live attendance across processes: uvicorn --workers 2 on PostgreSQL, check-ins landing on both workers.

The organizer's page polls one worker; check-ins are sent on fresh connections, each steered to a chosen
worker (a new connection is accepted by whichever worker the kernel wakes, so the test opens connections
until the one it wants takes it, and tells which by finding the accepted socket in /proc). Half of the
check-ins are therefore stored by a process other than the one that answers some of the polls, and the
count must still appear within two seconds of each.
"""

from __future__ import annotations

import http.client
import os
import secrets
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import BrowserContext, expect
from sqlmodel import Session

from server.config import Settings
from server.models import CheckIn, Role
from server.services.scans import code_for
from tests.browser.support import Server, running_server
from tests.conftest import PG_URL
from tests.factories import PASSWORD, count_rows, make_event, make_staff, make_tree, make_venue

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not PG_URL, reason="needs PostgreSQL: set TEST_DATABASE_URL (several workers share it)"
    ),
]

WORKERS = 2
CHECK_INS = 10
CONNECT_TRIES = 300  # a worker busy with a storm of requests may let the other accept many in a row
DONE = "Bạn đã điểm danh thành công"


def _ppid(pid: str) -> int | None:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return int(stat.read().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return None


def worker_pids(server: Server) -> set[int]:
    """uvicorn's worker processes: children of the server started through multiprocessing's spawn."""
    workers = set()
    for pid in filter(str.isdigit, os.listdir("/proc")):
        if _ppid(pid) != server.pid:
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
                if b"spawn_main" in cmdline.read():
                    workers.add(int(pid))
        except OSError:
            continue
    return workers


def _socket_inode(server_port: int, client_port: int) -> str | None:
    """The inode of the server's end of 127.0.0.1:client_port -> 127.0.0.1:server_port, once accepted."""
    with open("/proc/net/tcp") as table:
        for line in table.read().splitlines()[1:]:
            fields = line.split()
            local_port = int(fields[1].split(":")[1], 16)
            remote_port = int(fields[2].split(":")[1], 16)
            if local_port == server_port and remote_port == client_port and fields[9] != "0":
                return fields[9]
    return None


def accepting_worker(workers: set[int], server_port: int, client_port: int) -> int:
    """Which worker accepted our connection (its socket shows up among that process's descriptors)."""
    deadline = time.monotonic() + 2.0
    while time.monotonic() < deadline:
        inode = _socket_inode(server_port, client_port)
        if inode is not None:
            target = f"socket:[{inode}]"
            for pid in workers:
                try:
                    descriptors = os.listdir(f"/proc/{pid}/fd")
                except OSError:
                    continue
                for fd in descriptors:
                    try:
                        if os.readlink(f"/proc/{pid}/fd/{fd}") == target:
                            return pid
                    except OSError:
                        continue
        time.sleep(0.01)
    raise AssertionError(f"no worker accepted the connection from port {client_port}")


def workers_with_connections(workers: set[int], server_port: int) -> set[int]:
    """Workers holding an open client connection now (between check-ins: the organizer's browser)."""
    inodes = set()
    with open("/proc/net/tcp") as table:
        for line in table.read().splitlines()[1:]:
            fields = line.split()
            if int(fields[1].split(":")[1], 16) == server_port and fields[3] == "01":  # ESTABLISHED
                inodes.add(f"socket:[{fields[9]}]")
    holding = set()
    for pid in workers:
        try:
            links = {os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")}
        except OSError:
            continue
        if links & inodes:
            holding.add(pid)
    return holding


def connection_to(worker: int, workers: set[int], port: int) -> tuple[http.client.HTTPConnection, int]:
    """A fresh connection that `worker` accepted; returns it and how many connections that took."""
    for attempt in range(1, CONNECT_TRIES + 1):
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        connection.connect()
        assert connection.sock is not None
        if accepting_worker(workers, port, connection.sock.getsockname()[1]) == worker:
            return connection, attempt
        connection.close()
        time.sleep(0.005)  # let a busy worker's event loop come round to its accept
    raise AssertionError(f"worker {worker} took none of {CONNECT_TRIES} new connections")


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_check_ins_on_either_worker_reach_the_organizer_live(
    desk: BrowserContext, session: Session, settings: Settings, server_port: int, tmp_path: Path
) -> None:
    tree = make_tree(session)
    event = make_event(session, make_venue(session, tree["village"]))
    organizer = make_staff(session, Role.organizer, tree["commune"])
    path = urlsplit(f"{settings.base_url}/c/{code_for(event, settings)}").path

    with running_server(settings, server_port, tmp_path / "server.log", workers=WORKERS) as server:
        workers = worker_pids(server)
        assert len(workers) == WORKERS, f"uvicorn runs {WORKERS} worker processes, found {workers}"

        page = desk.new_page()
        page.goto(f"{server.base_url}/login")
        page.locator('input[name="username"]').fill(organizer.username)
        page.locator('input[name="password"]').fill(PASSWORD)
        page.locator('form[action="/login"] button').click()
        page.wait_for_url(lambda url: "/login" not in url)
        page.goto(f"{server.base_url}/events/{event.id}")
        expect(page.locator("#live-visits")).to_have_text("0")
        page.evaluate("window.__sameDocument = 'kept'")

        order = sorted(workers)
        handled: dict[int, int] = dict.fromkeys(order, 0)
        delays: list[float] = []
        connections = 0
        browser_side: set[int] = set()
        for number in range(1, CHECK_INS + 1):
            worker = order[number % WORKERS]
            browser_side |= workers_with_connections(workers, server_port)
            connection, tries = connection_to(worker, workers, server_port)
            connections += tries
            body = (f"nonce={secrets.token_urlsafe(16)}&age_band=25-59&gender=female&consent=yes").encode()
            headers = {"Content-Type": "application/x-www-form-urlencoded", "Connection": "close"}
            try:
                connection.request("POST", path, body=body, headers=headers)
                response = connection.getresponse()
                text = response.read().decode()
            finally:
                connection.close()
            assert response.status == 200 and DONE in text, text[:500]
            handled[worker] += 1
            stored = time.monotonic()
            expect(page.locator("#live-visits")).to_have_text(str(number), timeout=2500)
            delays.append(time.monotonic() - stored)

        assert all(count == CHECK_INS // WORKERS for count in handled.values()), handled
        assert page.evaluate("window.__sameDocument") == "kept"
        assert worker_pids(server) == workers, "no worker died or was replaced"
        assert count_rows(session, CheckIn) == CHECK_INS
        print(
            f"check-ins per worker {handled} ({connections} connections opened to steer them); "
            f"browser connected to workers {sorted(browser_side)}; "
            f"each seen live after {min(delays):.2f}-{max(delays):.2f} s"
        )
