"""SIGKILL in the middle of a storm of check-ins, with bigger numbers than the test (tests/test_crash.py):
acknowledged == stored, no duplicates, retries stored once. Prints what happened; exit 1 on any loss."""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from _common import bench_settings, create_events, free_port
from sqlmodel import select

from server.auth import create_api_token
from server.db import make_engine, session_scope
from server.models import Staff
from tests.test_crash import crash_storm


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Kill the app (SIGKILL) in the middle of a storm of check-ins over HTTP, restart it, "
        "retry every unanswered request with its nonce, and check that nothing was lost or doubled "
        "(127.0.0.1 only, bounded).",
    )
    parser.add_argument(
        "--database-url",
        help="e.g. postgresql://root@127.0.0.1:5432/bench (default: a new SQLite file in a temporary "
        "directory); the run adds an event to it",
    )
    parser.add_argument("--workers", type=int, default=1, help="uvicorn worker processes (default 1)")
    parser.add_argument("--senders", type=int, default=8, help="client threads (default 8)")
    parser.add_argument("--per-sender", type=int, default=250, help="check-ins each sends (default 250)")
    parser.add_argument(
        "--kill-after", type=int, default=1000, help="acknowledged check-ins before the kill (default 1000)"
    )
    args = parser.parse_args(argv)
    total = args.senders * args.per_sender
    if not (1 <= args.senders <= 64 and 1 <= total <= 20_000 and 1 <= args.workers <= 16):
        parser.error("keep it bounded: --senders 1..64, at most 20000 check-ins, --workers 1..16")
    if not 1 <= args.kill_after < total:
        parser.error("--kill-after must be less than --senders x --per-sender")

    with tempfile.TemporaryDirectory(prefix="diemdanh-bench-") as tmp:
        settings = bench_settings(
            args.database_url or f"sqlite:///{tmp}/bench.sqlite3", free_port(), Path(tmp)
        )
        fixture = create_events(settings, 1)
        engine = make_engine(settings)
        try:
            with session_scope(engine) as session:
                staff = session.exec(select(Staff).where(Staff.username == fixture.username)).one()
                _record, token = create_api_token(session, staff, "crash benchmark")
        finally:
            engine.dispose()
        backend = "SQLite" if settings.is_sqlite else "PostgreSQL"
        print(
            f"Điểm danh crash benchmark: {backend}, {args.workers} worker(s), {args.senders} senders x "
            f"{args.per_sender} check-ins, SIGKILL after {args.kill_after} acknowledged"
        )
        try:
            result = crash_storm(
                settings,
                fixture.event_ids[0],
                token,
                Path(tmp),
                senders=args.senders,
                per_sender=args.per_sender,
                kill_after=args.kill_after,
                workers=args.workers,
            )
        except AssertionError as error:
            print(f"MISMATCH: {error}")
            return 1
    print(f"  sent                        {result.sent:>6}")
    print(f"  acknowledged before the kill {result.acknowledged_before_kill:>5}")
    print(f"  retried with the same nonce {result.retried:>6}")
    print(
        f"  ... of which already stored {result.retried_were_stored:>6}  (answer lost in the kill: a replay)"
    )
    print(f"  stored                      {result.stored:>6}")
    print("no check-in lost or doubled")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
