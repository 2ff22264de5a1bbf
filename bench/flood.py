"""How many made-up people can one unauthenticated script store into one event's count in a minute?

Starts the real app on 127.0.0.1 (bench/_common.py), makes one event open for check-in, and posts new
people (`POST /api/v1/checkins` with a profile and no device token, as a script would) from one address
over `--concurrency` connections, until `--requests` are sent or `--time-limit` seconds pass. Then it reads
the event's check-ins from the database and prints: answers by status, stored check-ins, stored per minute
of the run, the most stored in any one minute of arrival, and (where the schema has the flood flags) how
many of them are unflagged, that is counted with nothing to tell them apart.

    .venv/bin/python bench/flood.py
    .venv/bin/python bench/flood.py --workers 2 --database-url postgresql://root@127.0.0.1:5432/diemdanh_bench

It runs on a checkout without the flood budget too (the "before" figure): it uses only what both have.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import secrets
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx2
from _common import bench_settings, create_events, free_port, running_app
from sqlalchemy import inspect, text

from server.db import make_engine

PROFILE = {"age_band": "25-59", "gender": "female", "consent": True}


async def flood(
    base_url: str, code: str, total: int, concurrency: int, deadline: float
) -> collections.Counter[str]:
    answers: collections.Counter[str] = collections.Counter()
    sent = 0
    limits = httpx2.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx2.AsyncClient(base_url=base_url, limits=limits, timeout=30) as client:

        async def worker() -> None:
            nonlocal sent
            while sent < total and time.monotonic() < deadline:
                sent += 1
                body = {"code": code, "nonce": secrets.token_urlsafe(16), "profile": PROFILE}
                try:
                    response = await client.post("/api/v1/checkins", json=body)
                except httpx2.HTTPError as error:
                    answers[type(error).__name__] += 1
                    continue
                answers[f"HTTP {response.status_code}"] += 1

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return answers


def stored_rows(database_url: str, settings: object, event_id: int) -> tuple[list[tuple[str, bool]], bool]:
    """(minute of arrival, unflagged) per stored check-in of the event, and whether the schema flags."""
    engine = make_engine(settings)  # type: ignore[arg-type]
    try:
        flags = "suspicious" in {c["name"] for c in inspect(engine).get_columns("check_in")}
        column = "suspicious" if flags else "false"
        with engine.connect() as connection:
            rows = connection.execute(
                text(f"SELECT received_at, {column} FROM check_in WHERE event_id = :e"), {"e": event_id}
            ).all()
    finally:
        engine.dispose()
    return [(str(at)[:16], not bool(flagged)) for at, flagged in rows], flags


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default="", help="default: SQLite in a temporary directory")
    parser.add_argument("--workers", type=int, default=1, help="uvicorn workers (default 1)")
    parser.add_argument("--requests", type=int, default=3000, help="requests at most (default 3000)")
    parser.add_argument("--concurrency", type=int, default=16, help="connections (default 16)")
    parser.add_argument("--time-limit", type=float, default=60.0, help="seconds at most (default 60)")
    args = parser.parse_args()
    if not (1 <= args.requests <= 20_000 and 1 <= args.concurrency <= 64 and 1 <= args.workers <= 4):
        parser.error("keep it bounded: --requests 1..20000, --concurrency 1..64, --workers 1..4")
    if not 1 <= args.time_limit <= 120:
        parser.error("keep it bounded: --time-limit 1..120")

    with tempfile.TemporaryDirectory(prefix="diemdanh-flood-") as tmp:
        port = free_port()
        settings = bench_settings(args.database_url or f"sqlite:///{tmp}/flood.sqlite3", port, Path(tmp))
        fixture = create_events(settings, 1)
        code = urlsplit(fixture.links[0]).path.rsplit("/", 1)[1]
        backend = "SQLite" if settings.is_sqlite else "PostgreSQL"
        with running_app(settings, port, workers=args.workers, log=Path(tmp) / "server.log") as url:
            began = time.monotonic()
            answers = asyncio.run(flood(url, code, args.requests, args.concurrency, began + args.time_limit))
            seconds = time.monotonic() - began
        rows, flags = stored_rows(settings.database_url, settings, fixture.event_ids[0])

    per_minute = collections.Counter(minute for minute, _clean in rows)
    clean = sum(1 for _minute, unflagged in rows if unflagged)
    print(f"Điểm danh flood benchmark: {backend}, {args.workers} worker(s), one address (127.0.0.1)")
    print(
        f"  sent {sum(answers.values())} in {seconds:.1f} s: "
        + ", ".join(f"{k} x{v}" for k, v in sorted(answers.items()))
    )
    print(f"  stored {len(rows)} new people ({len(rows) * 60 / seconds:.0f} a minute of the run)")
    print(f"  most stored in one minute of arrival: {max(per_minute.values(), default=0)}")
    if flags:
        print(
            f"  unflagged (counted as real, nothing to tell them apart): {clean} "
            f"({clean * 60 / seconds:.0f} a minute)"
        )
    else:
        print(f"  this schema has no flood flags: all {clean} count as real people")
    return 0


if __name__ == "__main__":
    sys.exit(main())
