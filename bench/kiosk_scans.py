"""How many cards a minute the kiosk reads from a camera.

Starts the app, pairs a kiosk for a venue with an event open now, prints `--cards` personal cards with
qr/cards.py, and makes Chromium's fake camera show them one after another (each for `--show` frames at
10 frames a second, then `--gap` frames of empty table). The kiosk page (Debian's Chromium has no
BarcodeDetector, so the vendored zxing-cpp decoder reads) runs with the CPU slowed `--cpu-slowdown` times,
like a cheap phone. Prints how many of the cards were read in one pass of the video, the kiosk's rate in
scans a minute (from the server's receive times of the first and the last check-in), and that rate over the
rate the video shows cards (1.0: every card read as soon as it is shown).

    .venv/bin/python bench/kiosk_scans.py
    .venv/bin/python bench/kiosk_scans.py --cards 30 --show 5 --gap 3 --cpu-slowdown 4
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

from _common import bench_settings, create_events, free_port, running_app
from playwright.sync_api import sync_playwright
from sqlmodel import select

from qr.cards import Card
from server import codes
from server.config import Settings
from server.db import make_engine, session_scope
from server.models import AgeBand, CheckIn, Event, Gender, Staff, Venue, utcnow
from server.services import identities, kiosks
from server.services.identities import Profile
from tests.browser.camera import camera_args, card_photos, frame_of, write_video
from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS

FPS = 10


def prepare(settings: Settings, count: int) -> tuple[int, str, list[str]]:
    """The event, a paired kiosk's token, and `count` card numbers issued at the event's venue."""
    fixture = create_events(settings, 1)
    engine = make_engine(settings)
    try:
        with session_scope(engine) as session:
            event = session.get(Event, fixture.event_ids[0])
            assert event is not None
            venue = session.get(Venue, event.venue_id)
            assert venue is not None and venue.id is not None
            admin = session.exec(select(Staff).where(Staff.username == fixture.username)).one()
            numbers = []
            for _ in range(count):
                person = identities.register(
                    session, admin, Profile(AgeBand.from_25, Gender.female, consent=True), now=utcnow()
                )
                numbers.append(identities.issue_card(session, settings, admin, person, venue).lookup)
            _, code = kiosks.enrol_device(session, admin, venue.id, "Benchmark kiosk", utcnow())
            _, token = kiosks.pair_device(session, code, utcnow())
            return fixture.event_ids[0], token, numbers
    finally:
        engine.dispose()


def received(settings: Settings, event_id: int) -> list[datetime]:
    engine = make_engine(settings)
    try:
        with session_scope(engine) as session:
            rows = session.exec(select(CheckIn.received_at).where(CheckIn.event_id == event_id)).all()
            return sorted(rows)
    finally:
        engine.dispose()


def measure(settings: Settings, base_url: str, args: argparse.Namespace, tmp: Path) -> int:
    event_id, token, numbers = prepare(settings, args.cards)
    shown_per_minute = 60 * FPS / (args.show + args.gap)
    with sync_playwright() as p:
        printer = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        photos = card_photos(printer, [Card(codes.card_payload(n), codes.pretty(n), "", "") for n in numbers])
        printer.close()
        frames = []
        for photo in photos:
            frames += [frame_of(photo)] * args.show + [frame_of(None)] * args.gap
        frames += [frame_of(None)] * (FPS * 2)  # the loop's end: a pause before the cards come back
        video = write_video(tmp / "cards.y4m", frames, fps=FPS)
        pass_seconds = len(frames) / FPS
        browser = p.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=[*CHROMIUM_ARGS, *camera_args(video)]
        )
        phone = {k: v for k, v in p.devices["Pixel 5"].items() if k != "default_browser_type"}
        context = browser.new_context(**phone)
        context.add_cookies([{"name": "dd_kiosk", "value": token, "url": base_url}])
        page = context.new_page()
        cdp = context.new_cdp_session(page)
        cdp.send("Emulation.setCPUThrottlingRate", {"rate": args.cpu_slowdown})
        page.goto(f"{base_url}/kiosk")
        page.locator("[data-camera]").click()
        started = time.monotonic()
        # One pass of the video, and a little more for the last answers (bounded).
        deadline = started + pass_seconds + 5
        while time.monotonic() < deadline and len(received(settings, event_id)) < len(numbers):
            time.sleep(0.5)
        reader = page.locator("[data-kiosk]").get_attribute("data-reader")
        browser.close()
    times = received(settings, event_id)
    shown, gap = args.show / FPS, args.gap / FPS
    print(f"kiosk: {len(numbers)} cards, each shown {shown:.1f} s then {gap:.1f} s of table")
    print(
        f"  decoder: {reader}; CPU slowed {args.cpu_slowdown:g}x; one pass of the video: {pass_seconds:.1f} s"
    )
    print(f"  read and stored: {len(times)} of {len(numbers)} cards")
    if len(times) < 2:
        print("  too few cards read to give a rate")
        return 1
    span = (times[-1] - times[0]).total_seconds()
    rate = (len(times) - 1) / span * 60 if span else 0.0
    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(times)]
    print(f"  scans a minute: {rate:.1f} (the video shows {shown_per_minute:.1f} cards a minute)")
    print(f"  ratio to the video's rate: {rate / shown_per_minute:.2f}")
    print(f"  seconds between stored check-ins: median {statistics.median(gaps):.2f}, max {max(gaps):.2f}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Cards a minute the kiosk reads from Chromium's fake camera."
    )
    parser.add_argument("--cards", type=int, default=20, help="cards shown one after another (default 20)")
    parser.add_argument("--show", type=int, default=5, help="frames each card is shown, at 10 a second (5)")
    parser.add_argument("--gap", type=int, default=3, help="frames of empty table between cards (3)")
    parser.add_argument("--cpu-slowdown", type=float, default=4, help="CPU throttling, as a cheap phone (4)")
    args = parser.parse_args(argv)
    if not 2 <= args.cards <= 200 or args.show < 1 or args.gap < 0:
        parser.error("--cards must be 2-200, --show at least 1, --gap at least 0")
    with tempfile.TemporaryDirectory(prefix="diemdanh-kiosk-") as name:
        tmp = Path(name)
        port = free_port()
        settings = bench_settings(f"sqlite:///{tmp}/kiosk.sqlite3", port, tmp)
        with running_app(settings, port, log=tmp / "server.log") as base_url:
            return measure(settings, base_url, args, tmp)


if __name__ == "__main__":
    sys.exit(main())
