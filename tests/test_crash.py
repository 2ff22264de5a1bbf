"""A crash in the middle of a storm of check-ins loses and doubles nothing, on SQLite and PostgreSQL.

The real app runs in a uvicorn subprocess on 127.0.0.1. Several threads send check-ins over HTTP, each with
its own nonce (the client's idempotency key), as the offline outbox does. Once enough have been
acknowledged, the server is killed with SIGKILL (no shutdown, no flush), then started again on the same
database, and every request that got no answer is sent again with the same nonce. Then: every acknowledged
check-in is stored, each nonce once, and a retried one is stored once (as new if it never reached the
database, as a replay if it was committed but its answer was lost). bench/crash.py is the same with bigger
numbers, and prints them.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from sqlmodel import Session, func, select

from server.auth import create_api_token
from server.config import Settings
from server.db import make_engine
from server.models import CheckIn, Role
from server.services.checkin import new_nonce
from tests.browser.support import free_port, running_server
from tests.factories import make_event, make_staff, make_tree, make_venue

SENDERS = 4
PER_SENDER = 60
KILL_AFTER = 80  # acknowledged check-ins before the SIGKILL
TIMEOUT = 30.0  # seconds for one request, and for the storm to reach KILL_AFTER

PROFILE = {"age_band": "25-59", "gender": "female", "consent": True}


@dataclass
class Storm:
    """Nonces sent, acknowledged (the server answered 201 or 200 with the check-in) and left unanswered."""

    url: str
    headers: dict[str, str]
    acknowledged: dict[str, int] = field(default_factory=dict)  # nonce -> check-in id
    unanswered: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    changed: threading.Condition = field(default_factory=threading.Condition)


def send(storm: Storm, nonce: str) -> tuple[int, int] | None:
    """POST one check-in: (status, check-in id), or None if no answer came (the server is gone)."""
    body = json.dumps({"nonce": nonce, "profile": PROFILE}).encode()
    request = urllib.request.Request(
        storm.url, data=body, headers={**storm.headers, "Content-Type": "application/json"}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
            return int(response.status), int(json.load(response)["id"])
    except urllib.error.HTTPError as error:
        return int(error.code), 0
    except (urllib.error.URLError, ConnectionError, TimeoutError, json.JSONDecodeError):
        return None


def sender(storm: Storm, nonces: list[str]) -> None:
    """Send each nonce in turn; at the first one without an answer, keep it and the rest for the retry."""
    for index, nonce in enumerate(nonces):
        answer = send(storm, nonce)
        with storm.changed:
            if answer is None:
                storm.unanswered.extend(nonces[index:])
                storm.changed.notify_all()
                return
            status, check_in_id = answer
            if status == 201:
                storm.acknowledged[nonce] = check_in_id
            else:
                storm.errors.append(f"{nonce}: HTTP {status}")
            storm.changed.notify_all()


@dataclass(frozen=True)
class CrashResult:
    sent: int
    acknowledged_before_kill: int
    retried: int
    retried_were_stored: int  # committed before the kill, answer lost: the retry was a replay
    stored: int


def crash_storm(
    settings: Settings,
    event_id: int,
    token: str,
    log_dir: Path,
    *,
    senders: int,
    per_sender: int,
    kill_after: int,
    workers: int = 1,
) -> CrashResult:
    """Run the storm, SIGKILL the server after `kill_after` acknowledgements, restart it, retry, check."""
    port = free_port()
    storm = Storm(
        url=f"http://127.0.0.1:{port}/api/v1/events/{event_id}/checkins",
        headers={"Authorization": f"Bearer {token}"},
    )
    plans = [[new_nonce() for _ in range(per_sender)] for _ in range(senders)]
    before, after = log_dir / "before-crash.log", log_dir / "after-crash.log"
    with running_server(settings, port, before, workers=workers, access_log=False) as server:
        threads = [threading.Thread(target=sender, args=(storm, plan), daemon=True) for plan in plans]
        for thread in threads:
            thread.start()
        with storm.changed:
            reached = storm.changed.wait_for(lambda: len(storm.acknowledged) >= kill_after, TIMEOUT)
        assert reached, f"the storm stalled: {len(storm.acknowledged)} acknowledged, {storm.errors}"
        os.killpg(server.pid, signal.SIGKILL)  # uvicorn and its worker: no shutdown of any kind
        for thread in threads:
            thread.join(TIMEOUT)
        assert not any(thread.is_alive() for thread in threads)
    assert not storm.errors, storm.errors
    acknowledged = dict(storm.acknowledged)
    unanswered = list(storm.unanswered)
    assert unanswered, "the kill came after the last request: nothing was in flight"

    engine = make_engine(settings)
    try:
        with Session(engine) as session:
            of_event = select(CheckIn.nonce, CheckIn.id).where(CheckIn.event_id == event_id)
            stored_after_crash = dict(session.exec(of_event).all())
        # Durable: every acknowledged check-in survived the kill, with the id it was acknowledged with.
        assert {n: stored_after_crash.get(n) for n in acknowledged} == acknowledged

        with running_server(settings, port, after, workers=workers, access_log=False):
            answers = {nonce: send(storm, nonce) for nonce in unanswered}
        assert all(answer is not None for answer in answers.values()), answers
        replays = {n for n, answer in answers.items() if answer is not None and answer[0] == 200}
        assert all(answer is not None and answer[0] in (200, 201) for answer in answers.values())
        # A retry answered as a replay was one the crash had committed: exactly those.
        assert replays == {n for n in unanswered if n in stored_after_crash}

        with Session(engine) as session:
            rows = session.exec(select(CheckIn.nonce).where(CheckIn.event_id == event_id)).all()
            people = select(func.count(func.distinct(CheckIn.participant_id))).where(
                CheckIn.event_id == event_id
            )
            participants = session.exec(people).one()
    finally:
        engine.dispose()
    sent = sum(len(plan) for plan in plans)
    assert len(rows) == len(set(rows)) == sent  # no duplicates, nothing lost
    assert set(rows) == set(acknowledged) | set(unanswered)
    assert participants == sent  # no person stored twice either
    return CrashResult(
        sent=sent,
        acknowledged_before_kill=len(acknowledged),
        retried=len(unanswered),
        retried_were_stored=len(replays),
        stored=len(rows),
    )


@pytest.fixture
def staff_token(session: Session) -> Iterator[tuple[int, str]]:
    tree = make_tree(session)
    staff = make_staff(session, Role.organizer, tree["commune"])
    _record, token = create_api_token(session, staff, "crash test")
    event = make_event(session, make_venue(session, tree["village"]))
    session.commit()
    assert event.id is not None
    yield event.id, token


def test_sigkill_in_a_storm_of_check_ins_loses_and_doubles_nothing(
    settings: Settings, staff_token: tuple[int, str], tmp_path: Path
) -> None:
    event_id, token = staff_token
    result = crash_storm(
        settings, event_id, token, tmp_path, senders=SENDERS, per_sender=PER_SENDER, kill_after=KILL_AFTER
    )
    assert result.stored == result.sent == SENDERS * PER_SENDER
    assert result.acknowledged_before_kill >= KILL_AFTER
    assert result.retried == result.sent - result.acknowledged_before_kill
