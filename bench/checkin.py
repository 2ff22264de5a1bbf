"""How fast the check-in path is, against the framework's own floor measured in the same run.

Starts the app with uvicorn on 127.0.0.1 (SQLite in a temporary directory unless --database-url), creates
two events through the app's services, then with a bounded asyncio client measures:

  (a) GET /healthz                       the baseline: routing, middleware, one SELECT 1
  (b) POST /c/<code>, a new phone each   first-time check-in: new participant, device token, check-in
  (c) POST /c/<code2>, a known phone     returning one-tap check-in (the tokens (b) handed out)
  (a') GET /healthz again                the baseline once more, to see whether the machine's load moved

and prints requests/second, p50/p95 latency, and the rates of (b) and (c) divided by the mean of (a) and
(a'). Afterwards it counts the CheckIn rows of both events: they must equal the successful check-ins
(nothing lost, nothing doubled).

    .venv/bin/python bench/checkin.py                       # SQLite, 1 worker
    .venv/bin/python bench/checkin.py --workers 2 --database-url postgresql://root@127.0.0.1:5432/bench
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import secrets
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from http.cookiejar import CookieJar, DefaultCookiePolicy
from pathlib import Path
from urllib.parse import urlsplit

import httpx2
from _common import PHONE_UA, bench_settings, create_events, free_port, running_app
from sqlalchemy import func
from sqlmodel import Session, select

from server.config import Settings
from server.db import make_engine
from server.models import CheckIn

DONE = "Bạn đã điểm danh thành công"
Request = tuple[str, str, dict[str, str], dict[str, str]]  # method, path, form data, headers


@dataclass
class Phase:
    name: str
    latencies: list[float] = field(default_factory=list)
    failures: Counter[str] = field(default_factory=Counter)
    tokens: list[str] = field(default_factory=list)
    seconds: float = 0.0
    stopped_by_time: bool = False

    @property
    def ok(self) -> int:
        return len(self.latencies)

    @property
    def rate(self) -> float:
        return self.ok / self.seconds if self.seconds else 0.0

    def percentile(self, p: float) -> float:
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))] * 1000


async def run_phase(
    name: str,
    base_url: str,
    make: Callable[[int], Request],
    check: Callable[[httpx2.Response], bool],
    *,
    total: int,
    concurrency: int,
    deadline: float,
) -> Phase:
    """`total` requests from `concurrency` tasks over at most `concurrency` connections, until `deadline`."""
    phase = Phase(name)
    numbers = itertools.count()
    limits = httpx2.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    # No cookie jar: each request carries exactly the cookies it is given (a new phone has none).
    jar = CookieJar(policy=DefaultCookiePolicy(allowed_domains=[]))
    async with httpx2.AsyncClient(base_url=base_url, limits=limits, cookies=jar, timeout=30) as client:

        async def worker() -> None:
            while time.monotonic() < deadline:
                n = next(numbers)
                if n >= total:
                    return
                method, path, data, headers = make(n)
                started = time.perf_counter()
                try:
                    response = await client.request(method, path, data=data or None, headers=headers)
                except httpx2.HTTPError as error:
                    phase.failures[type(error).__name__] += 1
                    continue
                elapsed = time.perf_counter() - started
                if check(response):
                    phase.latencies.append(elapsed)
                    token = response.cookies.get("dd_device")
                    if token:
                        phase.tokens.append(token)
                else:
                    phase.failures[f"HTTP {response.status_code}"] += 1

        began = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        phase.seconds = time.perf_counter() - began
    phase.stopped_by_time = time.monotonic() >= deadline and phase.ok + sum(phase.failures.values()) < total
    return phase


def checked_in(response: httpx2.Response) -> bool:
    return response.status_code == 200 and DONE in response.text


def count_check_ins(settings: Settings, event_id: int) -> int:
    engine = make_engine(settings)
    try:
        with Session(engine) as session:
            return int(
                session.exec(
                    select(func.count()).select_from(CheckIn).where(CheckIn.event_id == event_id)
                ).one()
            )
    finally:
        engine.dispose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Benchmark the check-in path of Điểm danh against GET /healthz in the same run "
        "(127.0.0.1 only, bounded).",
    )
    parser.add_argument(
        "--database-url",
        help="e.g. postgresql://root@127.0.0.1:5432/bench (default: a "
        "new SQLite file in a temporary directory); the run adds two events to it",
    )
    parser.add_argument("--workers", type=int, default=1, help="uvicorn worker processes (default 1)")
    parser.add_argument("--requests", type=int, default=2000, help="requests per phase (default 2000)")
    parser.add_argument("--concurrency", type=int, default=32, help="concurrent connections (default 32)")
    parser.add_argument(
        "--time-limit", type=float, default=60.0, help="seconds for the whole run (default 60)"
    )
    parser.add_argument(
        "--htmx",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="send HX-Request like the page's htmx (fragment answers); --no-htmx: the plain "
        "form post of a phone without JavaScript (whole pages)",
    )
    args = parser.parse_args(argv)
    if not (1 <= args.requests <= 100_000 and 1 <= args.concurrency <= 512 and 1 <= args.workers <= 16):
        parser.error("keep it bounded: --requests 1..100000, --concurrency 1..512, --workers 1..16")

    with tempfile.TemporaryDirectory(prefix="diemdanh-bench-") as tmp:
        port = free_port()
        database = args.database_url or f"sqlite:///{tmp}/bench.sqlite3"
        # Every request comes from 127.0.0.1: lift the flood budget, or phase (b) would measure the limit.
        settings = bench_settings(database, port, Path(tmp), flood_new_per_minute=1_000_000)
        fixture = create_events(settings, 2)
        first, second = (urlsplit(link).path for link in fixture.links)
        base = {"User-Agent": PHONE_UA, "Accept-Language": "vi-VN,vi;q=0.9"}
        if args.htmx:
            base["HX-Request"] = "true"
        backend = "PostgreSQL" if not settings.is_sqlite else "SQLite"
        print(
            f"Điểm danh check-in benchmark: {backend}, {args.workers} worker(s), {args.concurrency} "
            f"connections, {args.requests} requests a phase, "
            f"{'htmx fragments' if args.htmx else 'whole pages'}"
        )

        with running_app(settings, port, workers=args.workers, log=Path(tmp) / "server.log") as url:
            deadline = time.monotonic() + args.time_limit

            def health(_n: int) -> Request:
                return "GET", "/healthz", {}, {"User-Agent": PHONE_UA}

            def new_phone(_n: int) -> Request:
                form = {
                    "nonce": secrets.token_urlsafe(16),
                    "age_band": "25-59",
                    "gender": "female",
                    "consent": "yes",
                }
                return "POST", first, form, base

            asyncio.run(
                run_phase(
                    "warm-up",
                    url,
                    health,
                    lambda r: r.status_code == 200,
                    total=min(200, args.requests),
                    concurrency=args.concurrency,
                    deadline=deadline,
                )
            )
            baseline = asyncio.run(
                run_phase(
                    "(a) GET /healthz",
                    url,
                    health,
                    lambda r: r.status_code == 200,
                    total=args.requests,
                    concurrency=args.concurrency,
                    deadline=deadline,
                )
            )
            first_time = asyncio.run(
                run_phase(
                    "(b) first check-in",
                    url,
                    new_phone,
                    checked_in,
                    total=args.requests,
                    concurrency=args.concurrency,
                    deadline=deadline,
                )
            )
            tokens = list(first_time.tokens)

            def known_phone(n: int) -> Request:
                headers = {**base, "Cookie": f"dd_device={tokens[n]}"}
                return "POST", second, {"nonce": secrets.token_urlsafe(16)}, headers

            returning = asyncio.run(
                run_phase(
                    "(c) one-tap check-in",
                    url,
                    known_phone,
                    checked_in,
                    total=len(tokens),
                    concurrency=args.concurrency,
                    deadline=deadline,
                )
            )
            # The baseline again: if the machine got busier or quieter meanwhile, the two differ.
            baseline_after = asyncio.run(
                run_phase(
                    "(a') GET /healthz again",
                    url,
                    health,
                    lambda r: r.status_code == 200,
                    total=args.requests,
                    concurrency=args.concurrency,
                    deadline=deadline,
                )
            )

        floor = (
            statistics.mean(p.rate for p in (baseline, baseline_after) if p.rate) if baseline.rate else 0.0
        )
        print()
        print(f"{'phase':<24}{'ok':>7}{'failed':>8}{'req/s':>10}{'p50 ms':>9}{'p95 ms':>9}{'vs (a)':>9}")
        phases = (baseline, first_time, returning, baseline_after)
        for phase in phases:
            ratio = phase.rate / floor if floor else float("nan")
            print(
                f"{phase.name:<24}{phase.ok:>7}{sum(phase.failures.values()):>8}{phase.rate:>10.0f}"
                f"{phase.percentile(50):>9.1f}{phase.percentile(95):>9.1f}{ratio:>9.2f}"
            )
        drift = abs(baseline_after.rate - baseline.rate) / floor if floor else 0.0
        print(
            f"  'vs (a)' divides by the mean of (a) and (a'), {floor:.0f} req/s; they differ by {drift:.0%}"
            + (": the machine's load changed during the run, repeat it" if drift > 0.2 else "")
        )
        for phase in phases:
            if phase.failures:
                print(f"  {phase.name} failures: {dict(phase.failures)}")
            if phase.stopped_by_time:
                print(f"  {phase.name}: stopped by the {args.time_limit:.0f} s limit")

        stored_first = count_check_ins(settings, fixture.event_ids[0])
        stored_second = count_check_ins(settings, fixture.event_ids[1])
        print()
        print(
            f"stored check-ins: event 1 {stored_first} (successful posts {first_time.ok}), "
            f"event 2 {stored_second} (successful posts {returning.ok})"
        )
        good = stored_first == first_time.ok and stored_second == returning.ok
        print("no check-in lost or doubled" if good else "MISMATCH: check-ins were lost or doubled")
        return 0 if good else 1


if __name__ == "__main__":
    sys.exit(main())
