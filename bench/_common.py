"""What the benchmarks share: the repository on sys.path, the app (and load.py's bare baseline) in a uvicorn
subprocess, events open for check-in made through the app's services."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from sqlmodel import Session, select  # noqa: E402

from server.config import Settings  # noqa: E402
from server.db import make_engine, migrate, session_scope  # noqa: E402
from server.models import Event, EventType, OrgUnit, Role, Staff, UnitKind, VenueType, utcnow  # noqa: E402
from server.services import events, places, scans, staff  # noqa: E402
from tests.browser.support import START_TIMEOUT, Server, running_server  # noqa: E402
from tests.browser.support import free_port as free_port  # noqa: E402  (re-exported for the scripts)

BENCH = Path(__file__).resolve().parent

# Chrome on a Pixel 5, as Playwright's device list has it.
PHONE_UA = (
    "Mozilla/5.0 (Linux; Android 11; Pixel 5) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Mobile Safari/537.36"
)


def bench_settings(
    database_url: str, port: int, data_dir: Path, *, flood_new_per_minute: int = 20
) -> Settings:
    """Settings of a benchmark's app; a throughput benchmark, whose whole load comes from 127.0.0.1,
    raises the flood budget (services/flood.py) so that it measures the check-in path, not the limit."""
    return Settings(
        env="development",
        database_url=database_url,
        data_dir=data_dir,
        base_url=f"http://127.0.0.1:{port}",
        secret_key=secrets.token_urlsafe(48),
        flood_new_per_minute=flood_new_per_minute,
    )


@contextmanager
def running_app_server(settings: Settings, port: int, *, workers: int = 1, log: Path) -> Iterator[Server]:
    """The app as the browser tests run it (tests/browser/support.py), access log off as in production."""
    try:
        with running_server(settings, port, log, workers=workers, access_log=False) as server:
            yield server
    except RuntimeError as error:
        raise SystemExit(str(error)) from None


@contextmanager
def running_app(settings: Settings, port: int, *, workers: int = 1, log: Path) -> Iterator[str]:
    """running_app_server's address."""
    with running_app_server(settings, port, workers=workers, log=log) as server:
        yield server.base_url


@contextmanager
def running_baseline(
    port: int, *, workers: int = 1, log: Path, naive_database_url: str = ""
) -> Iterator[Server]:
    """bench/_baseline.py (bare FastAPI, and its naive one-row write into `naive_database_url`) under the
    same uvicorn command line as the app's."""
    command = [
        *(sys.executable, "-m", "uvicorn", "_baseline:app", "--app-dir", str(BENCH)),
        *("--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)),
        *("--log-level", "warning", "--no-access-log"),
    ]
    with log.open("wb") as out:
        process = subprocess.Popen(
            command,
            cwd=BENCH,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={**os.environ, "DD_NAIVE_DATABASE_URL": naive_database_url},
        )
    server = Server(process=process, base_url=f"http://127.0.0.1:{port}", log_path=log)
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while not _answers(server.base_url):
            if process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"the baseline server did not start:\n{server.log()}")
            time.sleep(0.1)
        yield server
    finally:
        server.stop()


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return False


@dataclass(frozen=True)
class Fixture:
    event_ids: list[int]
    links: list[str]
    username: str
    password: str
    venue_id: int
    village_id: int  # where the venue is: the first-time form's preselected home


def create_events(settings: Settings, count: int = 2) -> Fixture:
    """Through the app's services: the communes, a village, its cultural house, an admin, `count` events
    that are open for check-in now."""
    migrate(settings)
    engine = make_engine(settings)
    try:
        with session_scope(engine) as session:
            places.load_communes(session)
            commune = session.exec(
                select(OrgUnit).where(OrgUnit.kind == UnitKind.commune).order_by(OrgUnit.id)  # type: ignore[arg-type]
            ).first()
            assert commune is not None
            village = places.add_unit(
                session,
                kind=UnitKind.village,
                name=f"Thôn Bench {secrets.token_hex(3)}",
                parent_id=commune.id,
            )
            venue = places.add_venue(
                session,
                name="Nhà văn hóa thôn (benchmark)",
                type=VenueType.village_cultural_house,
                unit_id=village.id,
            )
            password = secrets.token_urlsafe(16)
            admin = staff.create_staff(
                session,
                username=f"bench{secrets.token_hex(4)}",
                password=password,
                role=Role.admin,
                full_name="Benchmark",
            )
            made = _open_events(session, admin, venue.id or 0, count)
            links = [f"{settings.base_url}/c/{scans.code_for(e, settings)}" for e in made]
            return Fixture(
                [e.id or 0 for e in made], links, admin.username, password, venue.id or 0, village.id or 0
            )
    finally:
        engine.dispose()


def add_events(settings: Settings, fixture: Fixture, count: int) -> Fixture:
    """`count` more events at the fixture's venue, open now, by its admin (the new ones only)."""
    engine = make_engine(settings)
    try:
        with session_scope(engine) as session:
            admin = session.exec(select(Staff).where(Staff.username == fixture.username)).one()
            made = _open_events(session, admin, fixture.venue_id, count)
            links = [f"{settings.base_url}/c/{scans.code_for(e, settings)}" for e in made]
            return replace(fixture, event_ids=[e.id or 0 for e in made], links=links)
    finally:
        engine.dispose()


def _open_events(session: Session, admin: Staff, venue_id: int, count: int) -> list[Event]:
    start = utcnow().replace(microsecond=0) - timedelta(minutes=10)
    made = []
    for _ in range(count):
        data = events.EventInput(
            title=f"Ngày hội đọc sách (benchmark {secrets.token_hex(3)})",
            type=EventType.reading_festival,
            venue_id=venue_id,
            starts_at=start,
            ends_at=start + timedelta(hours=4),
        )
        made.append(events.create_event(session, admin, data))
    return made
