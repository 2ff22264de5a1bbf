"""The installable app offline, on a phone: the manifest and worker, what the worker caches and what it
never does, a new worker deployed while items wait, the outbox on the organizer's desk and on a resident's
phone, Background Sync and the page sending the same item at once. Every test runs on SQLite and, with
TEST_DATABASE_URL, on PostgreSQL.

"No signal" cuts the cable between the browser and the app (tests/browser/support.py: the browser reaches
the app only through it), so nothing gets through, the service worker's requests included. Playwright's
offline switch does not cover the worker, and its routes missed a worker's first request as it started (a
Background Sync sent a check-in "with no signal" once in CI); both are still set, so the pages learn of it at
once. Playwright does not fire the `online` event either, so the tests dispatch it.
"""

from __future__ import annotations

import json
import re
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import BrowserContext, Page, Playwright, Route, expect
from sqlmodel import Session, col, select

from server.config import Settings
from server.models import Channel, CheckIn, CheckInAttempt, Headcount, Role
from server.services import identities, scans
from server.templating import asset_url
from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS
from tests.browser.support import Cable, Server, copy_of_the_app, running_server
from tests.browser.test_organizer_phone import log_in
from tests.factories import count_rows, make_event, make_participant, make_staff, make_tree, make_venue

pytestmark = pytest.mark.browser

WAITING = "Đang chờ gửi: {n}"
SENT = "Đã gửi: {n}"
PLUS = "Thêm một"


@pytest.fixture
def app_phone(playwright: Playwright, tmp_path: Path) -> Iterator[BrowserContext]:
    """A phone with a real profile on disk (service workers, IndexedDB and Cache Storage persist)."""
    device = {k: v for k, v in playwright.devices["Pixel 5"].items() if k != "default_browser_type"}
    context = playwright.chromium.launch_persistent_context(
        str(tmp_path / "profile"),
        executable_path=CHROMIUM,
        headless=True,
        args=CHROMIUM_ARGS,
        locale="vi-VN",
        timezone_id="Asia/Ho_Chi_Minh",
        **device,
    )
    context.set_default_timeout(10_000)
    yield context
    context.close()


def controlled(page: Page) -> None:
    """Wait until the app's worker is installed and controls the page (it claims pages as it activates).

    A worker whose install failed (one shell file not fetched on a busy machine) is registered again by
    the page's next load, as on a real phone: up to three loads of 10 s each."""
    state = ""
    for _ in range(3):
        # (wait_for_function would evaluate a string, which the app's CSP rightly forbids)
        state = page.evaluate(
            """() => new Promise(done => {
                 const sw = navigator.serviceWorker;
                 const timer = setTimeout(() => sw.getRegistration().then(r => done(r ? JSON.stringify({
                   installing: !!r.installing, waiting: !!r.waiting, active: r.active && r.active.state})
                   : "no registration")), 10000);
                 const ok = () => { clearTimeout(timer); done("controlled"); };
                 if (sw.controller) ok();
                 sw.addEventListener("controllerchange", ok);
               })"""
        )
        if state == "controlled":
            return
        page.reload()
    raise AssertionError(f"the app's worker did not take control of the page: {state}")


def counts(page: Page) -> Any:
    return expect(page.locator(".desk [data-outbox-counts]"))


ANYTHING = re.compile(r".*")


def no_signal(context: BrowserContext, cable: Cable) -> None:
    """No signal: the cable is cut (for the worker too), and the pages know it at once."""
    cable.cut()
    context.set_offline(True)
    context.route(ANYTHING, lambda route: route.abort("internetdisconnected"))


def signal_returns(context: BrowserContext, cable: Cable) -> None:
    context.unroute(ANYTHING)
    context.set_offline(False)
    cable.mend()


def back_online(context: BrowserContext, page: Page, cable: Cable) -> None:
    signal_returns(context, cable)
    page.evaluate("window.dispatchEvent(new Event('online'))")


def open_event_page(session: Session, context: BrowserContext, server: Server) -> tuple[Page, Any, Any]:
    tree = make_tree(session)
    venue = make_venue(session, tree["village"])
    event = make_event(session, venue)
    organizer = make_staff(session, Role.organizer, tree["commune"])
    page = context.new_page()
    log_in(page, server.base_url, organizer.username)
    page.goto(f"{server.base_url}/events/{event.id}")
    controlled(page)
    page.reload()  # now through the worker, which keeps this page for later
    return page, event, (organizer, venue)


def test_the_app_is_installable_from_the_organizers_and_the_residents_pages(
    live_server: Server, app_phone: BrowserContext, session: Session, settings: Settings
) -> None:
    page, event, _ = open_event_page(session, app_phone, live_server)
    cdp = app_phone.new_cdp_session(page)
    assert cdp.send("Page.getInstallabilityErrors")["installabilityErrors"] == []
    manifest = cdp.send("Page.getAppManifest")
    assert manifest["errors"] == []
    resident = app_phone.new_page()
    resident.goto(scans.link_for(event, settings))
    controlled(resident)
    assert (
        app_phone.new_cdp_session(resident).send("Page.getInstallabilityErrors")["installabilityErrors"] == []
    )
    sw = resident.request.get(f"{live_server.base_url}/sw.js")
    assert sw.headers["cache-control"] == "no-cache"


def test_desk_offline_queue_survives_a_reload_and_is_stored_once_when_page_and_sync_both_send(
    live_server: Server,
    app_phone: BrowserContext,
    session: Session,
    settings: Settings,
    cable: Cable,
) -> None:
    page, event, (organizer, venue) = open_event_page(session, app_phone, live_server)
    holder = make_participant(session, name="Hoàng Thị Lan", name_unit_id=venue.unit_id)
    card = identities.issue_card(session, settings, organizer, holder, venue)

    no_signal(app_phone, cable)
    page.get_by_role("button", name=PLUS).tap()
    page.get_by_role("button", name=PLUS).tap()
    page.get_by_label("Số thẻ", exact=True).fill(card.lookup)
    page.locator("form#card button").tap()
    counts(page).to_contain_text(WAITING.format(n=3))
    expect(page.locator("form#card [data-outbox-note]")).to_contain_text("đang chờ gửi")
    expect(page.locator("[data-pending-walk-ins]")).to_have_text("(+2 đang chờ gửi)")

    page.reload()  # no signal: the worker serves the page it kept, the outbox is still there
    expect(page.get_by_role("heading", level=1)).to_have_text(event.title)
    counts(page).to_contain_text(WAITING.format(n=3))
    assert count_rows(session, CheckIn) == 0 and count_rows(session, Headcount) == 0

    # Hold every send until both the page and Background Sync have sent the same three items.
    held: list[Route] = []

    def hold(route: Route) -> None:
        held.append(route)
        if len(held) == 2:
            for waiting in held:
                waiting.continue_()
        elif len(held) > 2:  # Chromium's own Background Sync may fire on reconnect too
            route.continue_()

    app_phone.route(re.compile(r".*/api/v1/checkins/batch$"), hold)
    back_online(app_phone, page, cable)
    cdp = app_phone.new_cdp_session(page)
    registrations: list[dict[str, Any]] = []
    cdp.on("ServiceWorker.workerRegistrationUpdated", lambda e: registrations.extend(e["registrations"]))
    cdp.send("ServiceWorker.enable")
    page.wait_for_timeout(300)
    registration = next(r for r in registrations if not r.get("isDeleted"))
    cdp.send(
        "ServiceWorker.dispatchSyncEvent",
        {
            "origin": live_server.base_url,
            "registrationId": registration["registrationId"],
            "tag": "outbox",
            "lastChance": False,
        },
    )
    try:
        counts(page).to_contain_text(SENT.format(n=3))
    finally:
        if len(held) == 1:  # never leave a request hanging, or the browser will not close
            held[0].continue_()
    assert len(held) >= 2, "the page and Background Sync each sent the batch"

    check_ins = session.exec(select(CheckIn).where(CheckIn.event_id == event.id)).all()
    assert [(c.participant_id, c.channel) for c in check_ins] == [(holder.id, Channel.batch)]
    assert sum(h.delta for h in session.exec(select(Headcount)).all()) == 2
    replayed = session.exec(select(CheckInAttempt).where(col(CheckInAttempt.outcome) == "replayed")).all()
    assert len(replayed) >= 3, "the later sender's three items were answered as replays"
    lists = page.locator(".desk [data-outbox-lists]")
    lists.locator("summary").tap()  # after the reload, the list says what became of each item
    expect(lists.locator("[data-items]")).to_contain_text("Đã điểm danh: Hoàng Thị Lan")


BATCH = re.compile(r".*/api/v1/checkins/batch$")


def served_version(server: Server) -> str:
    """The version in the server's /sw.js (its first line is `self.DIEMDANH = {...};`)."""
    with urllib.request.urlopen(f"{server.base_url}/sw.js", timeout=5) as response:
        first = response.read().decode().split("\n", 1)[0]
    return str(json.loads(first.removeprefix("self.DIEMDANH = ").removesuffix(";"))["version"])


def cache_names(page: Page) -> list[str]:
    return sorted(page.evaluate("() => caches.keys()"))


def controlled_by(page: Page, version: str) -> str:
    """Wait until the worker controlling the page answers that it is `version` and has finished activating
    (an update controls the page as its activation starts, and clears the old shell before it ends);
    returns the last answer heard, within 20 s."""
    answer: str = page.evaluate(
        """(want) => new Promise(done => {
             const sw = navigator.serviceWorker;
             let heard = "no controller";
             const timer = setTimeout(() => done(heard), 20000);
             const activated = (worker) => {
               if (worker.state === "activated") { clearTimeout(timer); done(want); return; }
               heard = want + " (" + worker.state + ")";
               worker.addEventListener("statechange", () => {
                 if (worker.state === "activated") activated(worker);
               });
             };
             const ask = () => {
               const worker = sw.controller;
               if (!worker) return;
               const channel = new MessageChannel();
               channel.port1.onmessage = (e) => {
                 heard = e.data;
                 if (e.data === want) activated(worker);
               };
               worker.postMessage({type: "version"}, [channel.port2]);
             };
             sw.addEventListener("controllerchange", ask);
             ask();
           })""",
        version,
    )
    return answer


def test_a_new_worker_takes_over_while_items_wait_and_they_are_sent_once(
    live_server: Server,
    app_phone: BrowserContext,
    session: Session,
    settings: Settings,
    app_port: int,
    tmp_path: Path,
    cable: Cable,
) -> None:
    page, event, (organizer, venue) = open_event_page(session, app_phone, live_server)
    holder = make_participant(session, name="Hoàng Thị Lan", name_unit_id=venue.unit_id)
    card = identities.issue_card(session, settings, organizer, holder, venue)
    old = served_version(live_server)
    assert controlled_by(page, old) == old
    assert f"shell-{old}" in cache_names(page)

    no_signal(app_phone, cable)
    page.get_by_role("button", name=PLUS).tap()
    page.get_by_role("button", name=PLUS).tap()
    page.get_by_label("Số thẻ", exact=True).fill(card.lookup)
    page.locator("form#card button").tap()
    counts(page).to_contain_text(WAITING.format(n=3))

    # A new version is deployed at the same address: one shell file differs, so /sw.js does too.
    source = copy_of_the_app(tmp_path / "next")
    with (source / "static/js/outbox.js").open("a") as script:
        script.write("/* the next version */\n")
    live_server.stop()
    with running_server(settings, app_port, tmp_path / "next.log", source=source) as next_server:
        new = served_version(next_server)
        assert new != old
        # Until the new worker has taken over, what is sent fails as with no signal: the three items must
        # come through the update still waiting, not be sent by chance before it.
        app_phone.route(BATCH, lambda route: route.abort("internetdisconnected"))
        signal_returns(app_phone, cable)
        page.reload()
        assert controlled_by(page, new) == new, "the new worker took over"
        names = cache_names(page)
        assert f"shell-{new}" in names and f"shell-{old}" not in names, names
        counts(page).to_contain_text(WAITING.format(n=3))
        waiting = page.evaluate(  # what the new page's outbox.js reads from the same store
            "async () => (await DiemdanhOutbox.list())"
            ".filter(i => i.state === 'waiting').map(i => i.body.type)"
        )
        assert sorted(waiting) == ["check_in", "headcount", "headcount"]
        assert count_rows(session, CheckIn) == 0 and count_rows(session, Headcount) == 0

        app_phone.unroute(BATCH)
        page.evaluate("window.dispatchEvent(new Event('online'))")
        counts(page).to_contain_text(SENT.format(n=3))
        expect(page.locator(".desk [data-outbox-counts] [data-waiting]")).to_have_text(WAITING.format(n=0))

    check_ins = session.exec(select(CheckIn).where(CheckIn.event_id == event.id)).all()
    assert [(c.participant_id, c.channel) for c in check_ins] == [(holder.id, Channel.batch)]
    headcounts = session.exec(select(Headcount).where(Headcount.event_id == event.id)).all()
    assert [h.delta for h in headcounts] == [1, 1]


def cached_urls(page: Page, until: str) -> dict[str, list[str]]:
    """Every cache's request URLs, read once `until` is in the pages cache (the worker keeps a page after
    answering it; waited for within 10 s)."""
    urls: dict[str, list[str]] = page.evaluate(
        """async (until) => {
             const listing = async () => Object.fromEntries(await Promise.all((await caches.keys()).map(
               async (name) => [name, (await (await caches.open(name)).keys()).map(r => r.url)])));
             const deadline = Date.now() + 10000;
             let found = await listing();
             while (!(found.pages || []).includes(until) && Date.now() < deadline) {
               await new Promise(next => setTimeout(next, 50));
               found = await listing();
             }
             return found;
           }""",
        until,
    )
    return urls


def test_the_worker_keeps_the_pages_opened_but_never_a_post_the_api_or_a_fragment(
    live_server: Server, app_phone: BrowserContext, session: Session
) -> None:
    page, event, _ = open_event_page(session, app_phone, live_server)
    base = live_server.base_url
    desk_url = f"{base}/events/{event.id}"

    def fragment(response: Any) -> bool:
        request = response.request
        return "/live" in response.url and request.headers.get("hx-request") == "true" and response.ok

    # +1 is a POST to the API (through the outbox); once it is sent, htmx asks for the live count.
    with page.expect_response(fragment) as live, page.expect_response(BATCH) as batch:
        page.get_by_role("button", name=PLUS).tap()
    assert batch.value.request.method == "POST" and batch.value.status == 200
    assert live.value.request.method == "GET"
    counts(page).to_contain_text(SENT.format(n=1))
    api = page.evaluate(
        "async () => { const r = await fetch('/api/v1/events'); return [r.status, await r.text()]; }"
    )
    assert api[0] == 200 and event.title in api[1]
    # The same +1 as htmx posts it to the page's own URL, which answers with the fragment.
    posted = page.evaluate(
        """async () => { const form = document.querySelector("#headcount form"), data = new FormData(form);
             data.set("delta", "1");
             const headers = {"HX-Request": "true"};
             const r = await fetch(form.action, {method: "POST", body: data, headers});
             return [r.status, r.url]; }"""
    )
    assert posted == [200, f"{desk_url}/headcounts"]
    assert sum(h.delta for h in session.exec(select(Headcount)).all()) == 2, "both posts were answered"

    page.goto(f"{base}/events")  # opened after all of those: once it is kept, they were seen too
    caches = cached_urls(page, f"{base}/events")
    kept = [url for urls in caches.values() for url in urls]
    assert desk_url in caches["pages"] and f"{base}/events" in caches["pages"]
    assert not [url for url in kept if url.startswith(f"{base}/api/")], caches
    assert live.value.url not in kept and f"{desk_url}/headcounts" not in kept, caches
    assert not [url for url in kept if "/live" in url], caches


def test_a_returning_resident_checks_in_with_no_signal(
    live_server: Server,
    app_phone: BrowserContext,
    session: Session,
    settings: Settings,
    cable: Cable,
) -> None:
    tree = make_tree(session)
    venue = make_venue(session, tree["village"])
    first, later = make_event(session, venue), make_event(session, venue, title="Câu lạc bộ đọc sách")
    page = app_phone.new_page()
    page.goto(scans.link_for(first, settings))
    page.get_by_text("25–59").tap()
    page.get_by_text("Nữ", exact=True).tap()
    page.locator('input[name="consent"]').check()
    page.get_by_role("button", name="Điểm danh").tap()
    expect(page.get_by_role("heading", name="Bạn đã điểm danh thành công!")).to_be_visible()
    controlled(page)

    no_signal(app_phone, cable)
    page.goto(scans.link_for(later, settings))
    expect(page.get_by_role("heading", level=1)).to_contain_text("Không có sóng")
    page.get_by_role("button", name="Điểm danh").tap()
    expect(page.locator("[data-result]")).to_contain_text("Đã lưu trên điện thoại")
    assert count_rows(session, CheckIn) == 1

    back_online(app_phone, page, cable)
    expect(page.locator("[data-result]")).to_contain_text("Đã gửi: bạn đã điểm danh lúc")
    rows = session.exec(select(CheckIn).order_by(col(CheckIn.id))).all()
    assert [(r.event_id, r.channel) for r in rows] == [(first.id, Channel.page), (later.id, Channel.batch)]
    assert rows[0].participant_id == rows[1].participant_id, "the same phone stays the same person"


# --- The outbox's own rules (static/js/outbox.js), in the browser that runs it --------------------------


def outbox_only(context: BrowserContext, server: Server) -> Page:
    """A same-origin page with the outbox and nothing that sends it by itself (no outbox-ui.js)."""
    page = context.new_page()
    page.goto(f"{server.base_url}/healthz")
    for path in ("vendor/idb/idb.umd.js", "js/outbox.js"):
        page.add_script_tag(url=asset_url(path))
    return page


def test_the_pages_share_one_fill_for_their_texts_and_it_keeps_a_zero(
    live_server: Server, app_phone: BrowserContext
) -> None:
    page = app_phone.new_page()
    page.goto(f"{live_server.base_url}/offline")  # outbox-ui.js, as on every page (offline-checkin.js too)
    filled = page.evaluate(
        """() => { const fill = DiemdanhApp.fill;
           return [fill("Đang chờ gửi: {n}", {n: 0}), fill("{who} lúc {time}", {who: "Lan"}),
                   fill(undefined, {})]; }"""
    )
    assert filled == ["Đang chờ gửi: 0", "Lan lúc ", ""]


def test_outbox_back_off_grows_to_five_minutes_with_a_fifth_of_jitter(
    live_server: Server, app_phone: BrowserContext
) -> None:
    page = outbox_only(app_phone, live_server)
    delays = page.evaluate(
        """() => { const b = DiemdanhOutbox.backoff;
           return [b(1, () => 0.5), b(2, () => 0.5), b(3, () => 0.5), b(9, () => 0.5), b(30, () => 0.5),
                   b(1, () => 0), b(1, () => 0.999999)]; }"""
    )
    assert delays == [2000, 4000, 8000, 300000, 300000, 1600, 2400]


def test_outbox_keeps_what_failed_and_lists_what_was_refused(
    live_server: Server, app_phone: BrowserContext
) -> None:
    page = outbox_only(app_phone, live_server)
    outcome = page.evaluate(
        """async () => {
          const O = DiemdanhOutbox, calls = [];
          const answer = (status, data) => async (url, init) => {
            calls.push(JSON.parse(init.body).items.map(i => i.key));
            return new Response(JSON.stringify(data), {status});
          };
          const a = await O.add({url: "/x", body: {type: "check_in", card: "AAAA"}, label: "a"});
          const b = await O.add({url: "/x", body: {type: "check_in", card: "BBBB"}, label: "b"});
          const now = Date.now();
          await O.flush({fetch: async () => { throw new TypeError("offline"); }, now, random: () => 0.5});
          const afterNetwork = await O.get(a.key);
          await O.flush({fetch: answer(503, {}), now: now + 100, random: () => 0.5});  // not due yet
          const notDue = calls.length;
          await O.flush({fetch: answer(503, {}), now: now + 2500, random: () => 0.5});
          const after503 = await O.get(a.key);
          await O.flush({force: true, now: now + 3000, fetch: answer(200, {results: [
            {key: a.key, status: "stored", checked_in_at: "2026-04-21T01:00:00Z", who: "Lan"},
            {key: b.key, status: "refused", code: "card_revoked", message: "Thẻ đã bị thu hồi"}]})});
          const sent = await O.get(a.key), refused = await O.get(b.key);
          const c = await O.add({url: "/x", body: {type: "headcount", delta: 1}, label: "c"});
          await O.dismiss(c.key);  // a waiting item is never thrown away
          await O.dismiss(b.key);
          const judge = [O.judge(0).state, O.judge(502).state, O.judge(429).state,
            O.judge(200, {status: "refused", code: "already_checked_in"}).state,
            O.judge(200, {status: "refused", code: "login_required"}).needsLogin,
            O.judge(401, {code: "login_required"}).state, O.judge(401, {code: "device_revoked"}).state,
            O.judge(200, {status: "refused", code: "checkin_busy"}).state];
          return {afterNetwork, notDue, after503, sent, refused, left: (await O.list()).map(i => i.key),
                  a: a.key, c: c.key, calls: calls.length, judge};
        }"""
    )
    assert outcome["afterNetwork"]["state"] == "waiting" and outcome["afterNetwork"]["attempts"] == 1
    assert outcome["notDue"] == 0, "an item is not sent again before its delay"
    assert outcome["after503"]["state"] == "waiting" and outcome["after503"]["attempts"] == 2
    assert outcome["sent"]["state"] == "sent" and outcome["sent"]["result"]["who"] == "Lan"
    assert outcome["refused"]["state"] == "refused"
    assert outcome["refused"]["result"]["message"] == "Thẻ đã bị thu hồi"
    assert outcome["left"] == [outcome["a"], outcome["c"]], "sent and waiting stay; a dismissed refusal goes"
    judged = ["waiting", "waiting", "waiting", "sent", True, "waiting", "refused", "waiting"]
    assert outcome["judge"] == judged


def test_outbox_calls_during_a_round_share_one_follow_up_round_that_starts_after_them(
    live_server: Server, app_phone: BrowserContext
) -> None:
    page = outbox_only(app_phone, live_server)
    outcome = page.evaluate(
        """async () => {
          const O = DiemdanhOutbox, rounds = [];
          let started, release, duringFollowUp = null;
          const firstSent = new Promise(done => started = done);
          const gate = new Promise(done => release = done);
          // Every round sends (a 503 leaves the items waiting, and force ignores their back-off).
          const fetch = async (url, init) => {
            rounds.push(JSON.parse(init.body).items.length);
            if (rounds.length === 1) { started(); await gate; }
            if (rounds.length === 2) {  // a call made while the follow-up runs needs a round after it
              duringFollowUp = O.flush({force: true, fetch}).then(t => ({rounds: rounds.length, t}));
            }
            return new Response("{}", {status: 503});
          };
          await O.add({url: "/x", body: {type: "headcount", delta: 1}, label: "a"});
          const first = O.flush({force: true, fetch});
          await firstSent;
          await O.add({url: "/x", body: {type: "headcount", delta: 1}, label: "b"});  // during the round
          const call = () => O.flush({force: true, fetch}).then(t => ({rounds: rounds.length, t}));
          const callers = [call(), call(), call()];
          release();
          const firstTally = await first;
          const shared = await Promise.all(callers);
          const later = await duringFollowUp;
          return {firstTally, shared, later, rounds};
        }"""
    )
    assert outcome["firstTally"] == {"sent": 0, "refused": 0, "waiting": 1}
    both = {"sent": 0, "refused": 0, "waiting": 2}
    assert outcome["shared"] == [{"rounds": 2, "t": both}] * 3, "three callers, one follow-up (with b in it)"
    assert outcome["later"] == {"rounds": 3, "t": both}, "a call during the follow-up gets a round of its own"
    assert outcome["rounds"] == [1, 2, 2]


def test_the_cable_takes_the_signal_away_from_everyone_and_gives_it_back(
    live_server: Server, cable: Cable
) -> None:
    """What "no signal" means in these tests: nothing reaches the app, not only the pages' requests."""
    health = f"{live_server.base_url}/healthz"
    with urllib.request.urlopen(health, timeout=5) as before:
        assert before.status == 200
    cable.cut()
    with pytest.raises(OSError):
        urllib.request.urlopen(health, timeout=5)
    cable.mend()
    with urllib.request.urlopen(health, timeout=5) as after:
        assert after.status == 200
