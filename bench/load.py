"""The check-in path under wrk, against a bare FastAPI endpoint served the same way in the same run.

Builds its data through the app's services (a village, its cultural house, events open now with their
signed codes), starts on 127.0.0.1 the app (`uvicorn --factory server.app:app_from_env`) and a bare
FastAPI app with one tiny-JSON endpoint (bench/_baseline.py, the ceiling), both with the same uvicorn
settings and worker count, and drives them with wrk (bench/load.lua: every request distinct) through:

  baseline      GET / of the bare app
  naive         POST /naive of the bare app: one form field stored as one row with SQLModel and committed,
                no rules (what a single ORM write costs on this stack; its own table, bench_naive)
  first-time    POST /c/<code> as the page's htmx sends it: a new person each time (age band, gender,
                home, consent), no cookie
  duplicate     POST /c/<code> again from phones already checked in there: "already checked in", nothing
                new stored
  one-tap       POST /c/<code> of another event with a known phone's dd_device cookie

at each --connections count, --repeat times in turn (so a change in the machine's load meets every
scenario). After each run it compares what the client saw acknowledged with the check-in rows stored
(MISMATCH and exit 1 if one acknowledged check-in is missing or doubled), and takes the servers' CPU time
and memory from /proc. Then it prints one table of medians; --page-weight and --report-rows add the other
figures of the speed issue (bench/page_weight.py with bench/slow_phone.py, and bench/indicators.py).

    .venv/bin/python bench/load.py                                     # SQLite, 1 worker, 1/16/64, 3 x 15 s
    .venv/bin/python bench/load.py --workers 1,2 --database-url postgresql://root@127.0.0.1:5432/diemdanh_load
    .venv/bin/python bench/load.py --duration 2 --repeat 1 --connections 1,2   # a smoke run
"""

from __future__ import annotations

import argparse
import math
import secrets
import statistics
import sys
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote, urlsplit

import _processes
import indicators
import page_weight
import slow_phone
from _baseline import NaiveRow, naive_engine
from _common import (
    Fixture,
    add_events,
    bench_settings,
    create_events,
    free_port,
    running_app_server,
    running_baseline,
)
from _stored import Stored
from _wrk import Answers, run_wrk, wrk_missing
from sqlalchemy import func
from sqlmodel import Session, select

from server.i18n import gettext
from server.models import AgeBand, Gender
from tests.browser.support import Server

SCENARIOS = {
    "baseline": "bare FastAPI (baseline)",
    "naive": "naive ORM insert",
    "first": "first-time check-in",
    "duplicate": "duplicate scan",
    "onetap": "one-tap, known phone",
}
CHECKED_IN = gettext("vi", "You are checked in!")
ALREADY = gettext("vi", "You do not need to check in again for this event.")


@dataclass
class Run:
    workers: int
    scenario: str
    connections: int
    answers: Answers
    cpu_ms: float  # server CPU time per request sent
    rss_mb: list[float]  # each server process after the run, largest first

    @property
    def rate(self) -> float:
        return self.answers.requests / self.answers.seconds if self.answers.seconds else 0.0

    @property
    def errors(self) -> int:
        return self.answers.answered - self.answers.acked + self.answers.socket_errors

    def why(self) -> str:
        """The errors by kind: HTTP status (a 200 without the expected answer counts too) and socket."""
        kinds = [f"HTTP {status}: {n}" for status, n in sorted(self.answers.refused.items())]
        kinds += [f"socket: {self.answers.socket_errors}"] if self.answers.socket_errors else []
        return f" ({', '.join(kinds)})" if kinds else ""


class Bench:
    """The runs of one command: its data, its servers, and what was seen and stored."""

    workers: int
    app: Server
    baseline: Server

    def __init__(
        self, args: argparse.Namespace, stored: Stored, fixture: Fixture, tmp: Path, naive_url: str
    ) -> None:
        self.args, self.stored, self.fixture, self.tmp = args, stored, fixture, tmp
        self.naive_url, self.naive = naive_url, naive_engine(naive_url)
        NaiveRow.__table__.create(self.naive, checkfirst=True)  # type: ignore[attr-defined]
        self.tokens: list[str] = []  # phones checked in at the first event (the first-time runs' answers)
        self.runs: list[Run] = []
        self.mismatches: list[str] = []
        self.cut_off = self.cut_off_stored = 0
        self.fastest = 0.0  # the highest rate of a check-in run so far
        # The first-time form's choices (URL-encoded: "60+" is an age band) and home, the venue's village.
        self.form = {
            "bands": " ".join(quote(band.value) for band in AgeBand),
            "genders": " ".join(quote(gender.value) for gender in Gender),
            "home": str(fixture.village_id),
        }

    def serve(self, workers: int, app: Server, baseline: Server) -> None:
        """The servers the next runs load."""
        self.workers, self.app, self.baseline = workers, app, baseline

    def run(self, scenario: str, connections: int, seconds: int) -> Run:
        """One wrk run, then the check of what was stored against what was acknowledged."""
        server = self.baseline if scenario in ("baseline", "naive") else self.app
        paths, marker, tokens = [urlsplit(self.fixture.links[0]).path], CHECKED_IN, None
        if scenario in ("baseline", "naive"):
            paths, marker = [], ""
        elif scenario == "duplicate":
            marker, tokens = ALREADY, self._token_file()
        elif scenario == "onetap":
            tokens, paths = self._token_file(), self._onetap_paths(connections)
        events = [self.stored.event_of(path) for path in paths]
        before = self.stored.counts(events)
        naive_before = self._naive_rows()
        cpu = _processes.cpu_seconds(server.pid)
        answers = run_wrk(
            server.base_url + "/",
            scenario=scenario,
            connections=connections,
            seconds=seconds,
            threads=self.args.threads,
            marker=marker,
            paths=paths,
            tokens=tokens,
            form=self.form,
            run=f"{scenario}-{connections}-{secrets.token_hex(4)}",
        )
        _processes.wait_idle(server.pid)
        cpu_ms = (_processes.cpu_seconds(server.pid) - cpu) * 1000 / max(answers.sent, 1)
        run = Run(self.workers, scenario, connections, answers, cpu_ms, _processes.rss_mb(server.pid))
        if scenario == "naive":
            new = self._naive_rows() - naive_before
            if not answers.acked <= new <= answers.acked + answers.unanswered:
                problem = f"{answers.acked} acknowledged, {answers.unanswered} cut off, but {new} rows stored"
                self.mismatches.append(f"{SCENARIOS[scenario]} at {connections} connections: {problem}")
                print(f"MISMATCH: {SCENARIOS[scenario]} at {connections} connections: {problem}", flush=True)
        elif scenario != "baseline":
            self._check(run, events, before)
            self.fastest = max(self.fastest, run.rate)
        self.runs.append(run)
        return run

    def _check(self, run: Run, events: list[int], before: dict[int, int]) -> None:
        """Every acknowledged check-in stored exactly once, nothing stored for a duplicate scan."""
        answers = run.answers
        new = sum(self.stored.counts(events).values()) - sum(before.values())
        problems = self.stored.doubles(events)
        if run.scenario == "duplicate":
            if new:
                problems.append(f"{new} check-ins stored by duplicate scans")
        elif not answers.acked <= new <= answers.acked + answers.unanswered:
            problems.append(
                f"{answers.acked} acknowledged, {answers.unanswered} cut off by the end of the run, "
                f"but {new} stored"
            )
        if run.scenario == "first":
            problems += self.stored.each_once(answers.tokens, events[0], answers.acked)
            self.tokens += answers.tokens
        if run.scenario != "duplicate":
            self.cut_off += answers.unanswered
            self.cut_off_stored += new - answers.acked
        label = f"{SCENARIOS[run.scenario]} at {run.connections} connections, {run.workers} worker(s)"
        for problem in problems:
            self.mismatches.append(f"{label}: {problem}")
            print(f"MISMATCH: {label}: {problem}", flush=True)

    def _naive_rows(self) -> int:
        with Session(self.naive) as session:
            return int(session.exec(select(func.count()).select_from(NaiveRow)).one())

    def _token_file(self) -> Path:
        if not self.tokens:
            raise SystemExit("MISMATCH: no first-time check-in was acknowledged, so no phone can scan again")
        path = self.tmp / "tokens.txt"
        path.write_text("\n".join(self.tokens) + "\n")
        return path

    def _onetap_paths(self, connections: int) -> list[str]:
        """Fresh events, enough for each known phone to check in once at each (four times as many one-tap
        check-ins as the fastest check-in run so far; past that the phones come round again, and those
        answers are "already checked in", counted as errors)."""
        expected = 4 * self.fastest * self.args.duration
        added = add_events(self.stored.settings, self.fixture, max(1, math.ceil(expected / len(self.tokens))))
        self.stored.know(added)
        return [urlsplit(link).path for link in added.links]


def table(runs: list[Run]) -> str:
    """One line per workers, scenario and connections: medians over the repeats."""
    groups: dict[tuple[int, str, int], list[Run]] = {}
    for run in runs:
        groups.setdefault((run.workers, run.scenario, run.connections), []).append(run)
    head = (
        f"{'workers':>7}  {'scenario':<24}{'conns':>6}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'errors':>7}"
        f"{'rate/base':>10}{'p99/base':>9}{'CPU ms/req':>11}{'RSS MB':>8}"
    )
    lines = [head, "-" * len(head)]
    for (workers, scenario, connections), group in groups.items():
        base = groups[(workers, "baseline", connections)]
        rate = statistics.median(r.rate for r in group)
        p99 = statistics.median(r.answers.p99_ms for r in group)
        base_rate = statistics.median(r.rate for r in base)
        base_p99 = statistics.median(r.answers.p99_ms for r in base)
        lines.append(
            f"{workers:>7}  {SCENARIOS[scenario]:<24}{connections:>6}{rate:>9,.0f}"
            f"{statistics.median(r.answers.p50_ms for r in group):>9.1f}{p99:>9.1f}"
            f"{sum(r.errors for r in group):>7}{rate / base_rate if base_rate else 0:>10.3f}"
            f"{p99 / base_p99 if base_p99 else 0:>9.1f}{statistics.median(r.cpu_ms for r in group):>11.2f}"
            f"{max(max(r.rss_mb, default=0) for r in group):>8.0f}"
        )
    return "\n".join(lines)


def targets(runs: list[Run]) -> list[str]:
    """The issue's targets for the check-in path, read off the same medians as the table."""
    rate: dict[tuple[int, str, int], float] = {}
    p99: dict[tuple[int, str, int], float] = {}
    for key in {(r.workers, r.scenario, r.connections) for r in runs}:
        group = [r for r in runs if (r.workers, r.scenario, r.connections) == key]
        rate[key] = statistics.median(r.rate for r in group)
        p99[key] = statistics.median(r.answers.p99_ms for r in group)
    lines = []
    for workers in sorted({r.workers for r in runs}):
        share = [
            f"{rate[workers, 'first', c] / rate[workers, 'baseline', c]:.3f} at {c}"
            for c in (16, 64)
            if (workers, "first", c) in rate
        ]
        if share:
            lines.append(
                f"{workers} worker(s): first-time check-in / baseline req/s: {', '.join(share)} (≥ 0.40)"
            )
        naive = [
            f"{rate[workers, 'first', c] / rate[workers, 'naive', c]:.2f} at {c}"
            for c in (16, 64)
            if (workers, "naive", c) in rate and (workers, "first", c) in rate
        ]
        if naive:
            lines.append(
                f"{workers} worker(s): first-time check-in / naive ORM insert req/s: {', '.join(naive)} "
                f"(no target: the naive insert is one row and no rule; its own share of the baseline is in "
                f"the table)"
            )
        if (workers, "first", 64) in p99:
            ratio = p99[workers, "first", 64] / p99[workers, "baseline", 64]
            lines.append(f"{workers} worker(s): first-time p99 / baseline p99 at 64: {ratio:.1f} (≤ 2)")
        duplicate = [
            f"{rate[workers, 'duplicate', c] / rate[workers, 'first', c]:.2f} at {c}"
            for c in sorted({r.connections for r in runs})
            if (workers, "duplicate", c) in rate
        ]
        lines.append(f"{workers} worker(s): duplicate scan / first-time req/s: {', '.join(duplicate)} (≥ 1)")
    workers = sorted({r.workers for r in runs})
    if len(workers) > 1:
        one, more = workers[0], workers[-1]
        gains = [
            f"{rate[more, 'first', c] / rate[one, 'first', c] - 1:+.0%} at {c}"
            for c in sorted({r.connections for r in runs})
            if c > 1
        ]
        lines.append(
            f"{more} workers instead of {one}, first-time req/s: {', '.join(gains)} (PostgreSQL: ≥ +60 %)"
        )
    errors = sum(r.errors for r in runs)
    lines.append(f"errors: {errors} (0)")
    return lines


def _positive_list(text: str) -> list[int]:
    values = [int(part) for part in text.split(",") if part.strip()]
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError("a comma-separated list of positive numbers, e.g. 1,16,64")
    return values


def _seconds(text: str) -> int:
    return int(text.removesuffix("s"))


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--database-url", help="a scratch database (default: SQLite in a temporary directory)"
    )
    parser.add_argument(
        "--workers", type=_positive_list, default=[1], help="uvicorn workers, e.g. 1,2 (default 1)"
    )
    parser.add_argument("--connections", type=_positive_list, default=[1, 16, 64], help="default 1,16,64")
    parser.add_argument("--duration", type=_seconds, default=15, help="seconds of each wrk run (default 15)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each scenario; medians (default 3)")
    parser.add_argument(
        "--threads", type=int, default=2, help="wrk threads, at most the connections (default 2)"
    )
    parser.add_argument(
        "--page-weight",
        action="store_true",
        help="also print bench/page_weight.py's tables and bench/slow_phone.py's times (slow 3G, CPU 4x)",
    )
    parser.add_argument(
        "--report-rows",
        type=int,
        nargs="+",
        default=[],
        metavar="N",
        help="also time the yearly report and "
        "the indicator page over N check-ins (bench/indicators.py), e.g. 1000000 10000000",
    )
    parser.add_argument(
        "--report-database-url",
        nargs="+",
        default=[],
        metavar="URL",
        help="one scratch database per --report-rows size (default: a new SQLite file each)",
    )
    args = parser.parse_args(argv)
    if not (1 <= args.duration <= 300 and 1 <= args.repeat <= 20 and 1 <= args.threads <= 16):
        parser.error("keep it bounded: --duration 1..300 s, --repeat 1..20, --threads 1..16")
    if max(args.connections) > 512 or max(args.workers) > 16:
        parser.error("keep it bounded: at most 512 connections and 16 workers")
    if args.report_database_url and len(args.report_database_url) != len(args.report_rows):
        parser.error("give one --report-database-url per --report-rows size")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    if problem := wrk_missing():
        print(f"diemdanh load bench: {problem}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="diemdanh-load-") as tmp:
        port = free_port()
        database = args.database_url or f"sqlite:///{tmp}/load.sqlite3"
        # Every request comes from 127.0.0.1: lift the flood budget, or first-time runs would measure it.
        settings = bench_settings(database, port, Path(tmp), flood_new_per_minute=1_000_000)
        fixture = create_events(settings, 1)
        # The naive write's table: beside the app's on PostgreSQL, its own file on SQLite (one lock each).
        naive_url = args.database_url or f"sqlite:///{tmp}/naive.sqlite3"
        bench = Bench(args, Stored(settings, fixture), fixture, Path(tmp), naive_url)
        backend = "SQLite" if settings.is_sqlite else "PostgreSQL"
        print(
            f"Điểm danh under wrk: {backend}, workers {args.workers}, connections {args.connections}, "
            f"{args.repeat} x {args.duration} s per scenario, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
            flush=True,
        )
        failed = 0
        for workers in args.workers:
            with (
                running_app_server(settings, port, workers=workers, log=Path(tmp) / "app.log") as app,
                running_baseline(
                    free_port(), workers=workers, log=Path(tmp) / "baseline.log", naive_database_url=naive_url
                ) as base,
            ):
                bench.serve(workers, app, base)
                # Warm both up, and give the duplicate and one-tap runs their first phones.
                warm = min(16, max(args.connections))
                bench.run("baseline", warm, min(args.duration, 3))
                bench.run("first", warm, min(args.duration, 3))
                del bench.runs[-2:]
                for _ in range(args.repeat):
                    for connections in args.connections:
                        for scenario in SCENARIOS:
                            run = bench.run(scenario, connections, args.duration)
                            print(
                                f"  {workers} worker(s), {SCENARIOS[scenario]}, {connections} connections: "
                                f"{run.rate:,.0f} req/s, {run.errors} errors{run.why()}",
                                flush=True,
                            )
                app_rss = ", ".join(f"{mb:.0f}" for mb in _processes.rss_mb(app.pid))
                base_rss = ", ".join(f"{mb:.0f}" for mb in _processes.rss_mb(base.pid))
                print(f"  RSS of each process after the load, MB: app {app_rss}; baseline {base_rss}")
        print()
        print(table(bench.runs))
        print("\nTargets of the speed issue (in brackets), from the medians above:")
        print("\n".join(f"  {line}" for line in targets(bench.runs)))
        print()
        if bench.mismatches:
            print(f"MISMATCH: {len(bench.mismatches)} problems, check-ins were lost or doubled (see above)")
        else:
            print(
                f"stored == acknowledged in every run: each acknowledged check-in stored exactly once, no "
                f"duplicate scan stored anything ({bench.cut_off} requests cut off by the end of a run, "
                f"{bench.cut_off_stored} of them stored)"
            )
        bench.stored.close()
        bench.naive.dispose()
        if args.page_weight:
            with running_app_server(settings, port, log=Path(tmp) / "weight.log") as app:
                failed |= page_weight.measure(settings, app.base_url)
            print("\nThe check-in page on a slow phone (bench/slow_phone.py):", flush=True)
            failed |= slow_phone.main([])
    for rows, url in zip(
        args.report_rows, args.report_database_url or [None] * len(args.report_rows), strict=True
    ):
        print(f"\nReport timings over {rows:,} check-ins (bench/indicators.py):", flush=True)
        where = ["--database-url", url] if url else []
        failed |= indicators.main(["--rows", str(rows), "--repeat", str(args.repeat), *where])
    return 1 if bench.mismatches or failed else 0


if __name__ == "__main__":
    sys.exit(main())
