"""What both benchmarks need: the repository on sys.path, the app in a uvicorn subprocess, an event."""

from __future__ import annotations

import secrets
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from sqlmodel import select  # noqa: E402

from server.config import Settings  # noqa: E402
from server.db import make_engine, migrate, session_scope  # noqa: E402
from server.models import EventType, OrgUnit, Role, UnitKind, VenueType, utcnow  # noqa: E402
from server.services import events, places, scans, staff  # noqa: E402
from tests.browser.support import free_port as free_port  # noqa: E402  (re-exported for the scripts)
from tests.browser.support import running_server  # noqa: E402

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
def running_app(settings: Settings, port: int, *, workers: int = 1, log: Path) -> Iterator[str]:
    """The app as the browser tests run it (tests/browser/support.py), access log off as in production."""
    try:
        with running_server(settings, port, log, workers=workers, access_log=False) as server:
            yield server.base_url
    except RuntimeError as error:
        raise SystemExit(str(error)) from None


@dataclass(frozen=True)
class Fixture:
    event_ids: list[int]
    links: list[str]
    username: str
    password: str


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
            start = utcnow().replace(microsecond=0) - timedelta(minutes=10)
            made = []
            for n in range(count):
                data = events.EventInput(
                    title=f"Ngày hội đọc sách (benchmark {n + 1})",
                    type=EventType.reading_festival,
                    venue_id=venue.id or 0,
                    starts_at=start,
                    ends_at=start + timedelta(hours=4),
                )
                made.append(events.create_event(session, admin, data))
            links = [f"{settings.base_url}/c/{scans.code_for(e, settings)}" for e in made]
            return Fixture([e.id or 0 for e in made], links, admin.username, password)
    finally:
        engine.dispose()
