"""Each benchmark under bench/ runs in a small form, so that none of them can rot between the runs that
measure (their numbers are never asserted: only that they run, check what they check, and print a table)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from sqlmodel import Session

from server.config import Settings
from server.models import AgeBand, Channel, Gender
from server.services.checkin import CheckInRequest, Identity, Profile, check_in

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


def test_live_poll_bench_counts_the_idle_polls_sql_and_finds_no_write() -> None:
    out = _bench(
        "live_poll.py", "--requests", "30", "--concurrency", "4", "--checkins", "20", "--sql-polls", "3"
    )
    assert "(b) idle live poll (204)" in out and "one idle poll costs" in out
    assert "SQL per idle poll" in out and ", 0 writes" in out


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
    assert "After its first check-in, the page fetches for next time" in out
    assert out.count("total (") == 4
    assert "The app's own gzip" in out and "check-in answer (htmx fragment)" in out


@pytest.mark.browser
def test_kiosk_bench_reads_the_cards_it_shows() -> None:
    # Each card in view for 2 s at full speed: the smoke checks the pipeline, the bench measures the rate.
    out = _bench("kiosk_scans.py", "--cards", "2", "--show", "20", "--cpu-slowdown", "1")
    assert "read and stored: 2 of 2 cards" in out


def test_load_bench_stores_every_acknowledged_check_in_once() -> None:
    out = _bench("load.py", "--connections", "1,2", "--duration", "2", "--repeat", "1")
    for scenario in (
        "bare FastAPI (baseline)",
        "naive ORM insert",
        "first-time check-in",
        "duplicate scan",
        "one-tap, known phone",
    ):
        for connections in (1, 2):  # one row of the table each
            assert re.search(rf"^ +1  {re.escape(scenario)} +{connections} ", out, re.MULTILINE), out
    assert "rate/base" in out and "CPU ms/req" in out and "RSS MB" in out
    assert "stored == acknowledged in every run" in out and "MISMATCH" not in out


def test_load_bench_check_finds_an_acknowledged_check_in_that_is_not_stored(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.syspath_prepend(str(ROOT / "bench"))
    from _common import create_events
    from _stored import Stored

    fixture = create_events(settings, 1)
    stored = Stored(settings, fixture)
    try:
        with Session(stored.engine) as session:
            profile = Profile(age_band=AgeBand.from_25, gender=Gender.female, consent=True)
            request = CheckInRequest(
                channel=Channel.page,
                key="smoke-check-1",
                code=urlsplit(fixture.links[0]).path.removeprefix("/c/"),
                identity=Identity(profile=profile),
            )
            token = check_in(session, settings, request).device_token
        assert token is not None
        event = fixture.event_ids[0]
        assert stored.each_once([token], event, acked=1) == []
        assert stored.each_once([token, "never-handed-out-token"], event, acked=2) == [
            "of the acknowledged phones, 1 have no check-in, 0 more than one"
        ]
        assert stored.each_once([token, token], event, acked=2)[0].startswith(
            "2 acknowledged, but 1 distinct"
        )
        assert stored.counts([event]) == {event: 1} and stored.doubles([event]) == []
    finally:
        stored.close()


@pytest.mark.browser
def test_slow_phone_bench_checks_in_twice_on_emulated_3g() -> None:
    out = _bench("slow_phone.py", "--runs", "1", "--settle", "0.5")
    assert "First visit (nothing cached, no worker yet)" in out and "Return visit" in out
    assert "the worker controls the page: yes" in out
    assert "network through the worker" in out and "worker's cache" in out
    assert "in all" in out and "check-ins stored: 2 of 2" in out
