"""The resident's check-in page on a slow phone: Debian's Chromium as a Pixel 5 on emulated slow 3G.

Starts the app (with its access log, to list every request that reached it), creates two events open now
per run, and drives Chromium through Playwright, a fresh phone profile per run, with the network emulated
through CDP (`Network.emulateNetworkConditions`: `--kbps` down and up and `--latency` ms per request, for
the page and, once it exists, for the app's service worker) and the CPU slowed `--cpu-slowdown` times
(`Emulation.setCPUThrottlingRate`):

1. first visit: open the first event's link, until the check-in button is visible; answer the first-time
   questions (a person's time: not counted); tap, until the confirmation is visible;
2. after the confirmation the page registers the app's worker, which installs in the background;
3. return visit (the same profile): the second event's link, the same two times, one tap.

Times are the phone's own (measured in the page, from the navigation's start and from the tap's event),
so Playwright's overhead is not in them. For each visit it lists the page's requests, where each answer
came from (network, memory or disk cache, the worker's cache, or the network through the worker) and its
bytes on the wire, and every request the app received. It checks that every check-in is stored once and
exits 1 otherwise. `--runs` repeats it all on fresh profiles and prints the medians.

    .venv/bin/python bench/slow_phone.py
    .venv/bin/python bench/slow_phone.py --runs 1 --kbps 400 --latency 400 --cpu-slowdown 4
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from _common import bench_settings, create_events, free_port
from playwright.sync_api import BrowserContext, CDPSession, Page, Playwright, sync_playwright
from playwright.sync_api import Request as PlaywrightRequest
from sqlmodel import func, select

from server.config import Settings
from server.db import make_engine, session_scope
from server.models import CheckIn
from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS
from tests.browser.support import AccessLog, running_server

BUTTON = "button.checkin-button"
CONFIRMED = "#checkin [role=status]"  # "You are checked in!" (or "You checked in at ...")
TARGET_SECONDS = 2.0  # issue 9: the button shows and the confirmation arrives within 2 s in all
TARGET_REQUESTS, TARGET_BYTES = 4, 30_000  # issue 9: a first visit under 30 KB in at most 4 requests
# Runs in every document before its scripts (CDP injects it, so the page's CSP does not apply): notes, on
# the phone's clock, when the button and the confirmation first have a box, and when the button is tapped.
STOPWATCH = """(() => {
  const seen = (name, selector) => {
    const look = () => {
      const element = document.querySelector(selector);
      if (element && element.getClientRects().length) window[name] = performance.now();
      else requestAnimationFrame(look);
    };
    requestAnimationFrame(look);
  };
  seen("__buttonAt", BUTTON);
  seen("__confirmedAt", CONFIRMED);
  addEventListener("click", event => {
    if (event.target.closest && event.target.closest(BUTTON)) {
      sessionStorage.setItem("__tappedAt", String(performance.timeOrigin + event.timeStamp));
    }
  }, true);
})();""".replace("BUTTON", json.dumps(BUTTON)).replace("CONFIRMED", json.dumps(CONFIRMED))


@dataclass
class Request:
    url: str
    method: str
    status: int = 0
    wire: int = 0  # bytes over the network (headers and body); 0 from a cache
    source: str = "network"


@dataclass
class Visit:
    button: float = 0.0  # s from the navigation's start until the button is visible
    confirm: float = 0.0  # s from the tap until the confirmation is visible
    swapped: bool = False  # htmx swapped the answer into the page (otherwise it came as a new page)
    load: list[Request] = field(default_factory=list)  # the page's requests before the tap
    answer: list[Request] = field(default_factory=list)  # from the tap on
    served: list[str] = field(default_factory=list)  # what the app received, before the tap
    served_after: list[str] = field(default_factory=list)  # and from the tap on

    @property
    def total(self) -> float:
        return self.button + self.confirm

    @property
    def over_network(self) -> list[Request]:
        return [r for r in self.load if r.source.startswith("network")]

    @property
    def load_bytes(self) -> int:
        return sum(r.wire for r in self.load)


class Recorder:
    """The page's requests through CDP's Network domain, with where each answer came from."""

    def __init__(self, cdp: CDPSession) -> None:
        self.by_id: dict[str, Request] = {}
        cdp.on("Network.requestWillBeSent", self._sent)
        cdp.on("Network.requestServedFromCache", lambda e: self._source(e, "memory cache"))
        cdp.on("Network.responseReceived", self._response)
        cdp.on("Network.loadingFinished", self._finished)

    def _sent(self, event: dict[str, Any]) -> None:
        url = event["request"]["url"]
        if url.startswith("http") and event["requestId"] not in self.by_id:
            self.by_id[event["requestId"]] = Request(url, event["request"]["method"])

    def _source(self, event: dict[str, Any], source: str) -> None:
        if event["requestId"] in self.by_id:
            self.by_id[event["requestId"]].source = source

    def _response(self, event: dict[str, Any]) -> None:
        request = self.by_id.get(event["requestId"])
        if request is None:
            return
        request.status = event["response"]["status"]
        if event["response"].get("fromServiceWorker"):
            request.source = "worker's cache"  # or the network through the worker: see run()
        elif event["response"].get("fromDiskCache"):
            request.source = "disk cache"

    def _finished(self, event: dict[str, Any]) -> None:
        request = self.by_id.get(event["requestId"])
        if request is not None and request.source == "network":
            request.wire = int(event["encodedDataLength"])

    def take(self) -> list[Request]:
        taken, self.by_id = list(self.by_id.values()), {}
        return taken


def conditions(args: argparse.Namespace) -> dict[str, Any]:
    rate = args.kbps * 1000 / 8  # bytes a second
    return {"offline": False, "latency": args.latency, "downloadThroughput": rate, "uploadThroughput": rate}


def throttle_workers(context: BrowserContext, args: argparse.Namespace) -> int:
    """The same network for the app's service workers; returns how many. The page's emulation does not
    cover the requests a worker makes (the return visit's page comes through it), and Playwright gives no
    CDP session of a worker: a page's session attaches to it and relays the commands (non-flat mode)."""
    session = context.new_cdp_session(context.pages[0])
    throttled = 0
    for target in session.send("Target.getTargets")["targetInfos"]:
        if target["type"] != "service_worker":
            continue
        attached = session.send("Target.attachToTarget", {"targetId": target["targetId"], "flatten": False})
        for n, (method, params) in enumerate(
            (("Network.enable", {}), ("Network.emulateNetworkConditions", conditions(args))), start=1
        ):
            message = json.dumps({"id": n, "method": method, "params": params})
            to = {"sessionId": attached["sessionId"], "message": message}
            session.send("Target.sendMessageToTarget", to)
        throttled += 1
    return throttled  # the emulation lasts while the session does: until the context closes


def phone_time(page: Page, name: str) -> float:
    """A mark of the stopwatch (ms on the page's clock), waiting a little for its next frame."""
    for _ in range(50):
        value = page.evaluate(f"() => window.{name}")
        if value is not None:
            return float(value)
        page.wait_for_timeout(20)
    raise SystemExit(f"the page never noted {name}")


def open_link(page: Page, url: str) -> float:
    """Navigates and returns the s from the navigation's start until the button was visible."""
    page.goto(url, wait_until="commit")
    page.wait_for_selector(BUTTON, state="visible", timeout=60_000)
    return phone_time(page, "__buttonAt") / 1000


def tap_and_wait(page: Page) -> tuple[float, bool]:
    """Taps the button; returns the s from the tap until the confirmation was visible, and whether htmx
    swapped it into the same page (otherwise the browser posted the form and loaded the answer)."""
    page.evaluate("() => { window.__samePage = true }")
    page.locator(BUTTON).tap()
    page.wait_for_selector(CONFIRMED, state="visible", timeout=60_000)
    confirmed = page.evaluate("() => performance.timeOrigin") + phone_time(page, "__confirmedAt")
    tapped = float(page.evaluate("() => sessionStorage.getItem('__tappedAt')"))
    return (confirmed - tapped) / 1000, bool(page.evaluate("() => window.__samePage === true"))


def answer_first_time(page: Page) -> None:
    page.locator('.choices input[name="age_band"]').first.check(force=True)
    page.locator('.choices input[name="gender"]').first.check(force=True)
    page.locator('input[name="consent"]').check()


def worker_in_control(page: Page, seconds: float) -> bool:
    """Whether the app's worker controls the page within `seconds` (it claims the page as it activates)."""
    return bool(
        page.evaluate(
            """ms => new Promise(done => {
                 const sw = navigator.serviceWorker;
                 if (!sw) return done(false);
                 if (sw.controller) return done(true);
                 sw.addEventListener("controllerchange", () => done(true));
                 setTimeout(() => done(!!sw.controller), ms);
               })""",
            seconds * 1000,
        )
    )


def visit(page: Page, link: str, recorder: Recorder, log: AccessLog, args: argparse.Namespace) -> Visit:
    result = Visit()
    result.button = open_link(page, link)
    # The resident reads the page meanwhile (and answers the questions): the scripts have time to arrive,
    # and the browser to make its own follow-up requests.
    page.wait_for_load_state("load")
    page.wait_for_timeout(args.settle * 1000)
    result.load, result.served = recorder.take(), log.take()
    if page.locator('input[name="consent"]').count():
        answer_first_time(page)
    result.confirm, result.swapped = tap_and_wait(page)
    return result


def run(
    playwright: Playwright, profile: Path, links: list[str], log: AccessLog, args: argparse.Namespace
) -> tuple[Visit, Visit, bool, int]:
    """One phone (a fresh profile on disk, like a real phone's): the first visit and the return visit."""
    device = {k: v for k, v in playwright.devices["Pixel 5"].items() if k != "default_browser_type"}
    context = playwright.chromium.launch_persistent_context(
        str(profile),
        executable_path=CHROMIUM,
        headless=True,
        args=CHROMIUM_ARGS,
        locale="vi-VN",
        timezone_id="Asia/Ho_Chi_Minh",
        **device,
    )
    through_worker: dict[str, PlaywrightRequest] = {}  # what the worker fetched from the network
    context.on("requestfinished", lambda r: through_worker.update({r.url: r}) if r.service_worker else None)
    try:
        context.add_init_script(STOPWATCH)
        page = context.pages[0] if context.pages else context.new_page()
        cdp = context.new_cdp_session(page)
        recorder = Recorder(cdp)
        cdp.send("Network.enable")
        cdp.send("Network.emulateNetworkConditions", conditions(args))
        cdp.send("Emulation.setCPUThrottlingRate", {"rate": args.cpu_slowdown})
        log.take()

        first = visit(page, links[0], recorder, log, args)
        controlled = worker_in_control(page, args.worker_wait)
        page.wait_for_timeout(args.settle * 1000)  # the worker keeps its files; the page fetches the manifest
        first.answer, first.served_after = recorder.take(), log.take()
        throttled = throttle_workers(context, args)

        through_worker.clear()
        again = visit(page, links[1], recorder, log, args)
        page.wait_for_timeout(args.settle * 1000)
        again.answer, again.served_after = recorder.take(), log.take()
        for request in again.load + again.answer:
            fetched = through_worker.get(request.url)
            if request.source == "worker's cache" and fetched is not None:
                request.source = "network through the worker"
                sizes = fetched.sizes()
                request.wire = sizes["responseHeadersSize"] + sizes["responseBodySize"]
        return first, again, controlled, throttled
    finally:
        context.close()


def path_of(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def report(title: str, result: Visit, after: str) -> None:
    print(f"\n{title}")
    print(f"  button visible       {result.button:6.2f} s after the navigation started")
    how = "htmx swapped it into the page" if result.swapped else "the browser loaded it as a new page"
    print(f"  tap -> confirmation  {result.confirm:6.2f} s ({how})")
    print(f"  {'request':<56}{'status':>7}{'on the wire':>13}  from")
    for label, requests in (("until the tap", result.load), (after, result.answer)):
        print(f"  - {label}")
        for r in requests:
            name = path_of(r.url) if r.method == "GET" else f"{r.method} {path_of(r.url)}"
            print(f"    {name[:54]:<54}{r.status or '':>7}{r.wire:>13,}  {r.source}")
    print(
        f"  until the tap: {len(result.load)} requests, {len(result.over_network)} over the network, "
        f"{result.load_bytes:,} bytes on the wire"
    )
    print(f"  the app received until the tap: {', '.join(result.served) or 'nothing'}")
    print(f"  and from the tap on: {', '.join(result.served_after) or 'nothing'}")


def summary(firsts: list[Visit], returns: list[Visit]) -> None:
    def median(values: list[float]) -> str:
        return f"{statistics.median(values):.2f} s"

    runs = len(firsts)
    print(f"\nSummary ({'median of ' + str(runs) + ' runs' if runs > 1 else 'one run'})")
    print(f"  {'':<34}{'first visit':>14}{'return visit':>14}  target")
    for label, value, target in (
        ("button visible", lambda v: v.button, ""),
        ("tap -> confirmation", lambda v: v.confirm, ""),
        ("in all", lambda v: v.total, f"at most {TARGET_SECONDS:g} s"),
    ):
        a, b = median([value(v) for v in firsts]), median([value(v) for v in returns])
        print(f"  {label:<34}{a:>14}{b:>14}  {target}")
    first, again = firsts[-1], returns[-1]
    for label, a, b, target in (
        ("requests until the tap", len(first.load), len(again.load), f"first: at most {TARGET_REQUESTS}"),
        ("  over the network", len(first.over_network), len(again.over_network), "return: the page only"),
        ("bytes on the wire until the tap", first.load_bytes, again.load_bytes, f"first: < {TARGET_BYTES:,}"),
    ):
        print(f"  {label:<34}{a:>14,}{b:>14,}  {target}")


def count_check_ins(settings: Settings) -> int:
    engine = make_engine(settings)
    try:
        with session_scope(engine) as session:
            return int(session.exec(select(func.count()).select_from(CheckIn)).one())
    finally:
        engine.dispose()


def measure(settings: Settings, log_path: Path, tmp: Path, args: argparse.Namespace) -> int:
    fixture = create_events(settings, 2 * args.runs)
    log = AccessLog(log_path)
    firsts: list[Visit] = []
    returns: list[Visit] = []
    with sync_playwright() as playwright:
        for n in range(args.runs):
            links = fixture.links[2 * n : 2 * n + 2]
            first, again, controlled, throttled = run(playwright, tmp / f"phone-{n}", links, log, args)
            print(
                f"\n=== run {n + 1} of {args.runs}: a Pixel 5 on {args.kbps:g} kbit/s down and up, "
                f"{args.latency:g} ms latency, CPU {args.cpu_slowdown:g}x slower"
            )
            report("First visit (nothing cached, no worker yet)", first, "from the tap on (and the worker)")
            print(f"  the worker controls the page: {'yes' if controlled else 'NO'}; throttled: {throttled}")
            report("Return visit (the same phone, the next event: one tap)", again, "from the tap on")
            firsts.append(first)
            returns.append(again)
    summary(firsts, returns)
    stored, expected = count_check_ins(settings), 2 * args.runs
    print(f"\ncheck-ins stored: {stored} of {expected}" + ("" if stored == expected else "  MISMATCH"))
    return 0 if stored == expected else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="The resident's check-in page on emulated slow 3G, CPU slowed: times, requests, bytes."
    )
    parser.add_argument("--runs", type=int, default=3, help="phones, one after another (default 3)")
    parser.add_argument("--kbps", type=float, default=400, help="kbit/s down and up (default 400)")
    parser.add_argument("--latency", type=float, default=400, help="ms added to each request (default 400)")
    parser.add_argument("--cpu-slowdown", type=float, default=4, help="CPU slowdown factor (default 4)")
    parser.add_argument("--settle", type=float, default=2, help="s of reading before each tap (default 2)")
    parser.add_argument("--worker-wait", type=float, default=30, help="s to wait for the worker (default 30)")
    parser.add_argument("--database-url", help="default: a temp SQLite file")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="diemdanh-slow-phone-") as name:
        tmp = Path(name)
        port = free_port()
        settings = bench_settings(args.database_url or f"sqlite:///{tmp}/phone.sqlite3", port, tmp)
        log_path = tmp / "server.log"
        try:
            with running_server(settings, port, log_path, log_level="info"):
                return measure(settings, log_path, tmp, args)
        except RuntimeError as error:
            raise SystemExit(str(error)) from None


if __name__ == "__main__":
    sys.exit(main())
