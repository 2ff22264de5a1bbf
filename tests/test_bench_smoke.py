"""Each benchmark under bench/ runs in a small form, so that none of them can rot between the runs that
measure (their numbers are never asserted: only that they run, check what they check, and print a table)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _bench(*args: str, timeout: float = 300) -> str:
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / args[0]), *args[1:]],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_checkin_bench_stores_every_acknowledged_check_in_once() -> None:
    out = _bench("checkin.py", "--requests", "40", "--concurrency", "4")
    assert "(b) first check-in" in out and "(c) one-tap check-in" in out
    assert "no check-in lost or doubled" in out


def test_indicators_bench_times_every_measurement() -> None:
    out = _bench("indicators.py", "--rows", "2000", "--repeat", "1")
    assert "2,000 check-ins in the database" in out and "kept aggregates" in out
    for line in (
        "baseline: COUNT(*)",
        "indicators, everywhere",
        "yearly report XLSX",
        "GET /indicators (HTTP)",
    ):
        assert line in out


def test_page_weight_bench_weighs_the_three_pages() -> None:
    out = _bench("page_weight.py")
    assert "Resident's check-in page, first visit on a phone" in out
    assert "Organizer's event page (logged in)" in out and "Kiosk page with its card decoder" in out
    assert out.count("total (") == 3


@pytest.mark.browser
def test_kiosk_bench_reads_the_cards_it_shows() -> None:
    # Each card in view for 2 s at full speed: the smoke checks the pipeline, the bench measures the rate.
    out = _bench("kiosk_scans.py", "--cards", "2", "--show", "20", "--cpu-slowdown", "1")
    assert "read and stored: 2 of 2 cards" in out
