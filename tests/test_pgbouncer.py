"""PostgreSQL through Debian's PgBouncer in transaction mode (scripts/test installs it), with
DIEMDANH_DATABASE_POOLER=pgbouncer: six threads share two server connections, each transaction may run on
either, and every check-in (the engine's reads and writes, many times the same statements) is stored.

Without the setting psycopg prepares a statement on the server after five runs and a later transaction
on the other server connection does not find it; PgBouncer also refuses the `options` startup parameter
the app otherwise sends (docs/scale-out.md)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlmodel import Session, col, func, select

from server.config import Settings
from server.db import make_engine
from server.models import AgeBand, Channel, CheckIn, Gender
from server.services import attendance
from server.services.checkin import CheckInRequest, Identity, Profile, check_in
from server.services.scans import code_for
from tests.browser.support import free_port
from tests.conftest import PG_URL
from tests.factories import make_event, make_tree, make_venue

pytestmark = pytest.mark.skipif(not PG_URL, reason="PostgreSQL only (TEST_DATABASE_URL)")
THREADS = 6
ROUNDS = 30
START_TIMEOUT = 20.0


def pgbouncer_binary() -> str:
    found = shutil.which("pgbouncer") or (
        "/usr/sbin/pgbouncer" if Path("/usr/sbin/pgbouncer").exists() else None
    )
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("pgbouncer is missing: scripts/test installs Debian's package")
        pytest.skip("pgbouncer is not installed (scripts/test installs Debian's package)")
    return found


@pytest.fixture
def bouncer(tmp_path: Path, settings: Settings) -> Iterator[str]:
    """PgBouncer on a free port in front of the test's database: the URL the app connects to."""
    server = make_url(settings.database_url)
    folder = tmp_path / "pgbouncer"
    folder.mkdir()
    folder.chmod(0o755)  # started as root it runs as `nobody`, which must read its files
    users = folder / "users.txt"
    users.write_text(f'"{server.username}" ""\n')
    port = free_port()
    config = folder / "pgbouncer.ini"
    config.write_text(
        "[databases]\n"
        f"* = host={server.host or '127.0.0.1'} port={server.port or 5432}\n"
        "[pgbouncer]\n"
        f"listen_addr = 127.0.0.1\nlisten_port = {port}\nunix_socket_dir =\n"
        f"auth_type = trust\nauth_file = {users}\n"
        "pool_mode = transaction\ndefault_pool_size = 2\nmax_client_conn = 100\n"
        "ignore_startup_parameters = extra_float_digits\n"
    )
    for path in (users, config):
        path.chmod(0o644)
    command = [pgbouncer_binary(), str(config)]
    if os.geteuid() == 0:
        command[1:1] = ["-u", "nobody"]  # PgBouncer refuses to run as root
    log = (folder / "log.txt").open("wb")
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    url = server.set(port=port, host="127.0.0.1").render_as_string(hide_password=False)
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while not _listening(port):
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"pgbouncer did not start:\n{(folder / 'log.txt').read_text()}")
            time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_check_ins_through_pgbouncer_in_transaction_mode(
    bouncer: str, settings: Settings, session: Session
) -> None:
    units = make_tree(session)
    event = make_event(session, make_venue(session, units["village"]))
    session.commit()
    # One address bringing 180 new people at once: the flood budget is not what this test is about.
    through = replace(
        settings, database_url=bouncer, database_pooler="pgbouncer", flood_new_per_minute=1_000_000
    )
    engine = make_engine(through)
    with engine.connect() as connection:
        assert connection.connection.dbapi_connection.prepare_threshold is None  # type: ignore[union-attr]
        # The connection is PgBouncer's: its server connection is one of the two it keeps.
        assert connection.execute(text("SELECT 1")).scalar_one() == 1
    code = code_for(event, settings)
    now = event.starts_at + timedelta(minutes=10)
    failures: list[str] = []

    def desk(number: int) -> None:
        try:
            with Session(engine, expire_on_commit=False) as own:
                for n in range(ROUNDS):
                    request = CheckInRequest(
                        channel=Channel.public_api,
                        key=f"bouncer-{number}-{n:03d}",
                        code=code,
                        identity=Identity(
                            device_token=f"bouncer-phone-{number}-{n:03d}",
                            profile=Profile(AgeBand.from_25, Gender.female, consent=True),
                        ),
                    )
                    check_in(own, through, request, now=now)
                    attendance.live_version(own, event.id or 0)  # the live poll's read, between writes
                    own.commit()
        except Exception as error:  # every failure is reported, not only the first
            failures.append(f"{type(error).__name__}: {error}"[:300])

    threads = [threading.Thread(target=desk, args=(n,)) for n in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    engine.dispose()
    assert failures == []
    stored = session.exec(select(func.count()).where(col(CheckIn.event_id) == event.id)).one()
    assert stored == THREADS * ROUNDS
