"""What one idle live poll costs: the organizer's page asks `/events/<id>/live?v=<version>` every second,
and the server answers 204 when nothing changed. Thousands of such pages may be open at once.

Starts the app with uvicorn on 127.0.0.1 (SQLite in a temporary directory unless --database-url), creates an
event and an organizer of its commune through the app's services, sends `--checkins` check-ins to the event
over HTTP, logs the organizer in, then measures with a bounded asyncio client:

  (a) GET /healthz                         the floor: routing, middleware, a session and one SELECT 1
  (b) GET /events/<id>/live?v=<current>    the idle poll: login cookie, scope check, version, 204

and prints per phase: requests/second, p50/p95 latency, and the server's CPU time per request (user +
system of the server's processes, from /proc, over the phase). Then, in this process, the SQL statements
one idle poll sends (counted on the app's engine) and whether any of them writes.

    .venv/bin/python bench/live_poll.py                       # SQLite, 1 worker, 300 check-ins, 2,000 polls
    .venv/bin/python bench/live_poll.py --checkins 2000 --database-url postgresql://root@127.0.0.1:5432/bench
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import secrets
import statistics
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from http.cookiejar import CookieJar, DefaultCookiePolicy
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx2
from _common import PHONE_UA, bench_settings, create_events, free_port
from fastapi.testclient import TestClient
from sqlalchemy import event as sa_event
from sqlmodel import Session

from server.app import create_app
from server.config import Settings
from server.db import make_engine
from server.models import Event, OrgUnit, Role, Venue
from server.services import staff
from tests.browser.support import running_server

VERSION = re.compile(r"/live\?v=([0-9.]+)")
DONE = "Bạn đã điểm danh thành công"
WRITES = ("INSERT", "UPDATE", "DELETE")


@dataclass
class Phase:
    name: str
    latencies: list[float] = field(default_factory=list)
    failures: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0
    cpu_seconds: float = 0.0

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.seconds if self.seconds else 0.0

    @property
    def cpu_ms(self) -> float:
        return 1000 * self.cpu_seconds / len(self.latencies) if self.latencies else float("nan")

    def percentile(self, p: float) -> float:
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))] * 1000


def _children(pid: int) -> list[int]:
    found = []
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{entry}/stat") as stat:
                if int(stat.read().rsplit(")", 1)[1].split()[1]) == pid:
                    found.append(int(entry))
        except (OSError, ValueError, IndexError):
            continue
    return found


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process and its descendants (uvicorn's workers), in seconds."""
    total, todo = 0.0, [pid]
    ticks = os.sysconf("SC_CLK_TCK")
    while todo:
        current = todo.pop()
        try:
            with open(f"/proc/{current}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / ticks
        except (OSError, ValueError, IndexError):
            continue
        todo += _children(current)
    return total


async def run_phase(
    name: str, client: httpx2.AsyncClient, path: str, expect: int, *, total: int, concurrency: int, pid: int
) -> Phase:
    phase = Phase(name)
    left = iter(range(total))

    async def worker() -> None:
        for _ in left:
            started = time.perf_counter()
            try:
                response = await client.get(path)
            except httpx2.HTTPError as error:
                phase.failures[type(error).__name__] += 1
                continue
            if response.status_code == expect:
                phase.latencies.append(time.perf_counter() - started)
            else:
                phase.failures[f"HTTP {response.status_code}"] += 1

    cpu_before, began = cpu_seconds(pid), time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    phase.seconds = time.perf_counter() - began
    phase.cpu_seconds = cpu_seconds(pid) - cpu_before
    return phase


def make_organizer(settings: Settings, event_id: int) -> tuple[str, str]:
    """An organizer of the event's commune (not an admin: the poll then checks the scope, as in the field)."""
    engine = make_engine(settings)
    try:
        with Session(engine, expire_on_commit=False) as session:
            event = session.get(Event, event_id)
            assert event is not None
            venue = session.get(Venue, event.venue_id)
            assert venue is not None
            village = session.get(OrgUnit, venue.unit_id)
            assert village is not None
            password = secrets.token_urlsafe(16)
            organizer = staff.create_staff(
                session,
                username=f"poll{secrets.token_hex(4)}",
                password=password,
                role=Role.organizer,
                unit_id=village.parent_id,
                full_name="Live poll benchmark",
            )
            session.commit()
            return organizer.username, password
    finally:
        engine.dispose()


async def check_in(base_url: str, path: str, count: int) -> int:
    """`count` new phones check in to the event over 8 connections; returns how many succeeded."""
    done = 0
    left = iter(range(count))
    headers = {"User-Agent": PHONE_UA, "HX-Request": "true"}
    # No cookie jar: each request is a new phone (a kept device cookie would make it a returning one).
    jar = CookieJar(policy=DefaultCookiePolicy(allowed_domains=[]))
    async with httpx2.AsyncClient(base_url=base_url, cookies=jar, timeout=30) as client:

        async def worker() -> None:
            nonlocal done
            for _ in left:
                form = {
                    "nonce": secrets.token_urlsafe(16),
                    "age_band": "25-59",
                    "gender": "male",
                    "consent": "yes",
                }
                response = await client.post(path, data=form, headers=headers)
                done += response.status_code == 200 and DONE in response.text

        await asyncio.gather(*(worker() for _ in range(8)))
    return done


def statements_per_poll(settings: Settings, event_id: int, login: tuple[str, str], polls: int) -> list[str]:
    """The SQL one idle poll sends, counted on the app's own engine in this process (the same code path)."""
    sent: list[str] = []
    app = create_app(settings)
    with TestClient(app, base_url=settings.base_url, follow_redirects=False) as client:
        answer = client.post("/login", data={"username": login[0], "password": login[1]})
        assert answer.status_code == 303, answer.status_code
        version = VERSION.search(client.get(f"/events/{event_id}/live", headers={"HX-Request": "true"}).text)
        assert version is not None
        path = f"/events/{event_id}/live?v={version.group(1)}"
        client.get(path)  # the first request of a process fills caches (templates, the session's pool)

        def count(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
            sent.append(" ".join(statement.split()))

        sa_event.listen(app.state.engine, "before_cursor_execute", count)
        try:
            for _ in range(polls):
                assert client.get(path).status_code == 204
        finally:
            sa_event.remove(app.state.engine, "before_cursor_execute", count)
    return sent


def measure(args: argparse.Namespace, settings: Settings, port: int, tmp: Path) -> int:
    fixture = create_events(settings, 1)
    event_id, link = fixture.event_ids[0], urlsplit(fixture.links[0]).path
    login = make_organizer(settings, event_id)
    backend = "SQLite" if settings.is_sqlite else "PostgreSQL"
    print(
        f"Điểm danh idle live poll: {backend}, {args.workers} worker(s), {args.concurrency} connections, "
        f"{args.requests} requests a phase, {args.checkins} check-ins in the event"
    )
    with running_server(settings, port, tmp / "server.log", workers=args.workers, access_log=False) as server:
        stored = asyncio.run(check_in(server.base_url, link, args.checkins))
        if stored != args.checkins:
            print(f"only {stored} of {args.checkins} check-ins succeeded")
            return 1

        async def phases() -> list[Phase]:
            limits = httpx2.Limits(
                max_connections=args.concurrency, max_keepalive_connections=args.concurrency
            )
            async with httpx2.AsyncClient(
                base_url=server.base_url, limits=limits, timeout=30, headers={"HX-Request": "true"}
            ) as client:
                answer = await client.post("/login", data={"username": login[0], "password": login[1]})
                assert answer.status_code == 303, answer.status_code
                version = VERSION.search((await client.get(f"/events/{event_id}/live")).text)
                assert version is not None
                poll = f"/events/{event_id}/live?v={version.group(1)}"
                run = {"total": args.requests, "concurrency": args.concurrency, "pid": server.pid}
                await run_phase("warm-up", client, "/healthz", 200, **{**run, "total": 200})
                return [
                    await run_phase("(a) GET /healthz", client, "/healthz", 200, **run),
                    await run_phase("(b) idle live poll (204)", client, poll, 204, **run),
                    await run_phase("(a') GET /healthz again", client, "/healthz", 200, **run),
                ]

        measured = asyncio.run(phases())

    print(f"\n  {'phase':<28}{'ok':>7}{'failed':>8}{'req/s':>9}{'p50 ms':>9}{'p95 ms':>9}{'CPU ms/req':>12}")
    for phase in measured:
        print(
            f"  {phase.name:<28}{len(phase.latencies):>7}{sum(phase.failures.values()):>8}"
            f"{phase.rate:>9.0f}{phase.percentile(50):>9.1f}{phase.percentile(95):>9.1f}{phase.cpu_ms:>12.2f}"
        )
    floor = statistics.mean(p.cpu_ms for p in (measured[0], measured[2]))
    poll = measured[1]
    print(
        f"\n  one idle poll costs {poll.cpu_ms:.2f} ms of server CPU, {poll.cpu_ms / floor:.1f}x a /healthz; "
        f"at one poll a second, one core keeps about {1000 / poll.cpu_ms:,.0f} organizer pages live"
    )

    sent = statements_per_poll(settings, event_id, login, args.sql_polls)
    writes = [s for s in sent if s.split(" ", 1)[0].upper() in WRITES]
    print(
        f"\n  SQL per idle poll (in-process, {args.sql_polls} polls): "
        f"{len(sent) / args.sql_polls:g} statements, {len(writes) / args.sql_polls:g} writes"
    )
    for statement, times in Counter(sent).most_common():
        print(f"    {times // args.sql_polls}x {statement[:150]}")
    failed = sum(sum(p.failures.values()) for p in measured)
    if failed:
        print(
            f"\n  {failed} requests failed: " + ", ".join(f"{p.name}: {dict(p.failures)}" for p in measured)
        )
    return 1 if failed or writes else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Cost of the organizer's idle live poll (204) against GET /healthz "
        "(127.0.0.1 only, bounded)."
    )
    parser.add_argument(
        "--database-url",
        help="e.g. postgresql://root@127.0.0.1:5432/bench (default: a new SQLite file in a temporary "
        "directory); the run adds an event, an organizer and the check-ins to it",
    )
    parser.add_argument("--workers", type=int, default=1, help="uvicorn worker processes (default 1)")
    parser.add_argument("--requests", type=int, default=2000, help="requests per phase (default 2000)")
    parser.add_argument("--concurrency", type=int, default=16, help="concurrent connections (default 16)")
    parser.add_argument("--checkins", type=int, default=300, help="check-ins in the event (default 300)")
    parser.add_argument("--sql-polls", type=int, default=20, help="polls whose SQL is counted (default 20)")
    args = parser.parse_args(argv)
    if not (
        1 <= args.requests <= 100_000
        and 1 <= args.concurrency <= 512
        and 1 <= args.workers <= 16
        and 0 <= args.checkins <= 20_000
        and 1 <= args.sql_polls <= 1000
    ):
        parser.error(
            "keep it bounded: --requests 1..100000, --concurrency 1..512, --workers 1..16, "
            "--checkins 0..20000, --sql-polls 1..1000"
        )
    with tempfile.TemporaryDirectory(prefix="diemdanh-poll-") as tmp:
        port = free_port()
        database = args.database_url or f"sqlite:///{tmp}/poll.sqlite3"
        # Every check-in comes from 127.0.0.1: lift the flood budget, which is not what this measures.
        settings = bench_settings(database, port, Path(tmp), flood_new_per_minute=1_000_000)
        return measure(args, settings, port, Path(tmp))


if __name__ == "__main__":
    sys.exit(main())
