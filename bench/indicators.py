"""How long do the indicator page and the yearly report take over a large data set?

Builds (once per database) a province of 65 communes, each with a commune library, a culture-sport
centre, two village cultural houses with a weekly club and a school library, two years of events, and
`--rows` check-ins (1,000,000 by default) spread over them, written in bulk. Then times, in one run and
each `--repeat` times (the median is printed):

- baseline: one COUNT(*) over the year's check-ins (what the database alone takes to read them);
- the indicator page's evaluation for everything and for one commune (services/indicators.evaluate);
- the yearly report's totals and its XLSX (services/reports.yearly_totals, services/exports.to_xlsx);
- the indicator page and the XLSX through real HTTP (the app in-process, an administrator logged in).

Before timing, the kept aggregates (services/rollup.py) are brought up to date, as the first report after
an upgrade does once; that time is printed apart. On PostgreSQL visit_day is then vacuumed, as autovacuum
would do soon after.

Each time is printed with its ratio to the baseline: these machines are noisy, the ratio less so.
"""

from __future__ import annotations

import argparse
import functools
import math
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common
from fastapi.testclient import TestClient
from sqlalchemy import Column, Integer, MetaData, Table, bindparam, func, insert, text
from sqlmodel import Session, col, select

from server.app import create_app
from server.db import make_engine, migrate
from server.models import (
    AgeBand,
    Campaign,
    Channel,
    CheckIn,
    Club,
    ClubType,
    Event,
    EventStatus,
    EventType,
    Gender,
    Meta,
    OrgUnit,
    Participant,
    Role,
    UnitKind,
    Venue,
    VenueType,
)
from server.services import areas, exports, indicators, places, reports, rollup, staff

TZ = ZoneInfo("Asia/Ho_Chi_Minh")
KINDS = (
    VenueType.commune_library,
    VenueType.culture_sport_centre,
    VenueType.village_cultural_house,
    VenueType.village_cultural_house,
    VenueType.school_library,
)
CHUNK = 20_000
PASSWORD = "bench-indicators-1"


def build(session: Session, rows: int, year: int, seed: int) -> None:
    """The data set, written with bulk inserts (the engine's rules are not what is measured here)."""
    rng = random.Random(seed)
    places.load_communes(session)
    communes = list(session.exec(select(OrgUnit).where(OrgUnit.kind == UnitKind.commune)))
    venues: list[tuple[Venue, OrgUnit, OrgUnit]] = []
    for commune in communes:
        village = places.add_unit(
            session, kind=UnitKind.village, name=f"Thôn {commune.name}", parent_id=commune.id
        )
        for n, kind in enumerate(KINDS):
            unit = village if kind == VenueType.village_cultural_house else commune
            venue = Venue(name=f"{kind.value} {n} {commune.name}", type=kind, unit_id=unit.id or 0)
            session.add(venue)
            venues.append((venue, commune, village if unit is village else commune))
    session.flush()
    admin = staff.create_staff(session, username="bench-admin", password=PASSWORD, role=Role.admin)
    first = datetime(year - 1, 1, 1, 1, tzinfo=UTC)
    events: list[tuple[Event, Venue, OrgUnit, OrgUnit]] = []
    for venue, commune, place in venues:
        club = None
        if venue.type == VenueType.village_cultural_house:
            club = Club(venue_id=venue.id or 0, name=f"CLB {venue.name}", type=ClubType.club)
            session.add(club)
            session.flush()
        for week in range(0, 104, 1 if club else 4):  # clubs weekly, the others every four weeks
            if club and rng.random() < 0.25:  # a club that skips a quarter of its weeks
                continue
            start = first + timedelta(days=7 * week + rng.randint(0, 6), hours=rng.randint(0, 10))
            event = Event(
                title=f"Sự kiện {venue.id}-{week}",
                type=EventType.club_session if club else EventType.reading_festival,
                venue_id=venue.id or 0,
                starts_at=start,
                ends_at=start + timedelta(hours=2),
                campaign=Campaign.none,
                status=EventStatus.scheduled,
                club_id=club.id if club else None,
                created_by_id=admin.id,
            )
            session.add(event)
            events.append((event, venue, commune, place))
    session.flush()
    # Five visits a person on average. Visitor n is person n mod people: with people and the number of
    # events coprime, an event (n mod events) never sees the same person twice.
    people = max(rows // 5, rows // len(events) + 1)
    while math.gcd(people, len(events)) != 1:
        people += 1
    # The rows themselves are made by the database from a series of numbers (INSERT ... SELECT): ten million
    # through Python would take over an hour. Two small tables give each number its event, time and profile.
    profile, slot = _helper_tables(session)
    bands, genders = list(AgeBand), [Gender.female, Gender.male]
    session.execute(
        insert(profile), [{"k": k, "age_band": bands[k], "gender": genders[k % 2]} for k in range(6)]
    )
    slots = []
    for index, (event, venue, commune, place) in enumerate(events):
        for minute in range(SLOTS):  # when the n-th visitor of an event came: a few minutes apart
            at = event.starts_at + timedelta(minutes=(minute * 37 + rng.randint(0, 9)) % 110)
            slots.append(
                {
                    "idx": index,
                    "slot": minute,
                    "event_id": event.id,
                    "at": at,
                    "venue_id": venue.id,
                    "venue_type": venue.type,
                    "commune_id": commune.id,
                    "village_id": place.id if place.kind == UnitKind.village else None,
                }
            )
    for start_at in range(0, len(slots), CHUNK):
        session.execute(insert(slot), slots[start_at : start_at + CHUNK])
    people_sql = text(
        f"INSERT INTO participant (name, search_name, age_band, gender, created_at) "
        f"SELECT NULL, '', p.age_band, p.gender, :now FROM {_series(session)} "
        f"JOIN bench_profile p ON p.k = s.n % 6"
    ).bindparams(bindparam("now", type_=Participant.__table__.c.created_at.type))  # type: ignore[attr-defined]
    _in_batches(session, people_sql, people, {"now": first})
    low = int(session.exec(select(func.min(Participant.id))).one() or 1)
    check_ins_sql = text(
        f"INSERT INTO check_in (event_id, participant_id, nonce, channel, checked_in_at, received_at,"
        f" late, venue_id, venue_type, commune_id, village_id, age_band, gender, suspicious) "
        f"SELECT t.event_id, :first + s.n % :people, 'bench-' || s.n, :channel,"
        f" t.at, t.at, :no, t.venue_id, t.venue_type, t.commune_id, t.village_id, p.age_band,"
        f" p.gender, :no FROM {_series(session)} "
        f"JOIN bench_slot t ON t.idx = s.n % :events AND t.slot = (s.n / :events) % {SLOTS} "
        f"JOIN bench_profile p ON p.k = s.n % 6"
    )
    params = {
        "first": low,
        "events": len(events),
        "people": people,
        "channel": Channel.page.value,
        "no": False,
    }
    _in_batches(session, check_ins_sql, rows, params, "check-ins")
    profile.drop(session.connection())
    slot.drop(session.connection())
    session.merge(Meta(key="bench_indicators", value=str(rows)))
    session.commit()
    # Planner statistics, as PostgreSQL's autovacuum gathers them soon after a bulk load: without them it
    # guesses a handful of rows for any range and may walk the year instead of the newest ids.
    session.execute(text("ANALYZE"))
    session.commit()
    print()


SERIES_BATCH = 1_000_000  # rows an INSERT ... SELECT writes in one transaction
SLOTS = 12  # distinct check-in times an event's visitors are spread over


def _in_batches(
    session: Session, statement: Any, total: int, params: dict[str, Any], label: str = ""
) -> None:
    """Run an INSERT ... SELECT over the numbers 0..total-1, a million a transaction."""
    for start_at in range(0, total, SERIES_BATCH):
        stop = min(total, start_at + SERIES_BATCH)
        session.execute(statement, {**params, "low": start_at, "high": stop - 1})
        session.commit()
        if label:
            print(f"  {stop:,} {label} written", end="\r", flush=True)


def _series(session: Session) -> str:
    """The numbers :low..:high as rows of a column `n` of an alias `s`, in this session's database."""
    if session.get_bind().dialect.name == "postgresql":
        return "generate_series(CAST(:low AS bigint), CAST(:high AS bigint)) AS s(n)"
    return (
        "(WITH RECURSIVE r(n) AS (SELECT :low UNION ALL SELECT n + 1 FROM r WHERE n < :high)"
        " SELECT n FROM r) AS s"
    )


def _helper_tables(session: Session) -> tuple[Table, Table]:
    """bench_profile (age band and gender of visitor n, by n mod 6) and bench_slot (event index, slot ->
    event, time and place), with the check_in table's own column types, so that INSERT ... SELECT copies
    values exactly as the app stores them. Plain tables (a temporary one would live in one pooled
    connection only), dropped when the data set is built."""
    columns = CheckIn.__table__.c  # type: ignore[attr-defined]
    metadata = MetaData()
    profile = Table(
        "bench_profile",
        metadata,
        Column("k", Integer, primary_key=True),
        Column("age_band", columns.age_band.type),
        Column("gender", columns.gender.type),
    )
    slot = Table(
        "bench_slot",
        metadata,
        Column("idx", Integer, primary_key=True),
        Column("slot", Integer, primary_key=True),
        Column("event_id", Integer),
        Column("at", columns.checked_in_at.type),
        Column("venue_id", Integer),
        Column("venue_type", columns.venue_type.type),
        Column("commune_id", Integer),
        Column("village_id", Integer),
    )
    metadata.create_all(session.connection())
    return profile, slot


def timed(repeat: int, work: Callable[[], object], session: Session | None = None) -> tuple[float, float]:
    """The median wall time and the median CPU time of this process (the app's and SQLite's own work; not a
    PostgreSQL server's) of `repeat` runs, in milliseconds; each run in a new transaction of `session`, so
    nothing read by the last one is reused. On a busy shared machine the CPU time moves less than the wall."""
    walls, cpus = [], []
    for _ in range(repeat):
        if session is not None:
            session.rollback()
        started, cpu = time.perf_counter(), time.process_time()
        work()
        walls.append((time.perf_counter() - started) * 1000)
        cpus.append((time.process_time() - cpu) * 1000)
    return statistics.median(walls), statistics.median(cpus)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="check-ins to build (default 1,000,000)")
    parser.add_argument(
        "--database-url", help="a scratch database (default: SQLite in a temporary directory)"
    )
    parser.add_argument(
        "--repeat", type=int, default=3, help="runs of each measurement (the median is shown)"
    )
    parser.add_argument("--seed", type=int, default=2026)
    args = parser.parse_args(argv)
    if not 1 <= args.rows <= 20_000_000 or not 1 <= args.repeat <= 20:
        parser.error("--rows must be 1..20,000,000 and --repeat 1..20")
    tmp = tempfile.TemporaryDirectory(prefix="dd-bench-indicators-")
    url = args.database_url or f"sqlite:///{Path(tmp.name) / 'bench.sqlite3'}"
    settings = _common.bench_settings(url, 8000, Path(tmp.name))
    migrate(settings)
    engine = make_engine(settings)
    year = datetime.now(TZ).year - 1
    with Session(engine) as session:
        built = session.get(Meta, "bench_indicators")
        if built is None:
            print(f"Building {args.rows:,} check-ins in {url.split('?')[0]} ...")
            started = time.perf_counter()
            build(session, args.rows, year, args.seed)
            print(f"built in {time.perf_counter() - started:.1f} s")
        elif built.value != str(args.rows):
            print(
                f"diemdanh bench: the database already holds a data set of {built.value} rows",
                file=sys.stderr,
            )
            return 2
        admin = session.exec(select(staff.Staff).where(col(staff.Staff.username) == "bench-admin")).one()
        started = time.perf_counter()
        rollup.refresh(session, TZ, fold_at=1)  # what the first report after an upgrade does, once
        folded = time.perf_counter() - started
        if engine.dialect.name == "postgresql":
            # Folding a whole data set at once rewrites each visit_day row many times; PostgreSQL's
            # autovacuum clears the dead rows within minutes, but this machine's test cluster runs without
            # it (and a bloated table would be timed, not the report). VACUUM cannot run in a transaction.
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
                connection.execute(text("VACUUM ANALYZE visit_day"))
        total = session.exec(select(func.count()).select_from(CheckIn)).one()
        window = reports.report_window(year, until=None, today=date(year + 1, 1, 15))
        start, stop = window.bounds(TZ)
        everywhere = areas.resolve_area(session, admin, "")
        commune = session.exec(select(OrgUnit).where(OrgUnit.kind == UnitKind.commune)).first()
        one = areas.resolve_area(session, admin, f"u:{commune.id if commune else 0}")

        def count_year() -> object:
            query = select(func.count()).where(
                col(CheckIn.checked_in_at) >= start, col(CheckIn.checked_in_at) < stop
            )
            return session.exec(query).one()

        measured = {"baseline: COUNT(*) of the year's check-ins": timed(args.repeat, count_year)}
        measured["indicators, everywhere"] = timed(
            args.repeat, lambda: indicators.evaluate(session, admin, window, everywhere, TZ), session
        )
        measured["indicators, one commune"] = timed(
            args.repeat, lambda: indicators.evaluate(session, admin, window, one, TZ), session
        )
        measured["yearly totals (report page's data)"] = timed(
            args.repeat, lambda: reports.yearly_totals(session, admin, window, TZ), session
        )
        measured["yearly report XLSX"] = timed(
            args.repeat,
            lambda: exports.to_xlsx(reports.yearly_totals(session, admin, window, TZ), "vi"),
            session,
        )
    app = create_app(settings)
    with TestClient(app, base_url="http://127.0.0.1:8000") as client:
        client.post("/login", data={"username": "bench-admin", "password": PASSWORD})
        for label, path in (
            ("GET /indicators (HTTP)", f"/indicators?year={year}&cutoff=31/12"),
            ("GET /reports/<year>.xlsx (HTTP)", f"/reports/{year}.xlsx"),
        ):
            status = client.get(path).status_code
            if status != 200:
                print(f"diemdanh bench: {path} answered {status}", file=sys.stderr)
                return 1
            measured[label] = timed(args.repeat, functools.partial(client.get, path))
    engine.dispose()
    baseline = next(iter(measured.values()))[0]
    print(f"\n{total:,} check-ins in the database; year {year}; median of {args.repeat} runs")
    print(f"kept aggregates (services/rollup.py) brought up to date first in {folded:.1f} s")
    print(f"{'measurement':<46} {'ms':>10} {'× baseline':>11} {'CPU ms':>8}")
    for label, (ms, cpu) in measured.items():
        print(f"{label:<46} {ms:>10.1f} {ms / baseline if baseline else 0:>11.1f} {cpu:>8.1f}")
    tmp.cleanup()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
