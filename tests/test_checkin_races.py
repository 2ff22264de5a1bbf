"""Two OS processes racing on the same check-in, many rounds, on each database backend.

Each process builds its own engine from the same settings (as two server workers would) and waits at a
barrier before every round, so both requests reach the database together. The tests count what was
stored and check that both processes answered every round: they cannot pass because one process was slow.
"""

from __future__ import annotations

import multiprocessing
import queue
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session, col, select

from server.config import Settings
from server.models import AgeBand, Channel, CheckIn, CheckInAttempt, Credential, Gender, Participant, Role
from server.services import identities
from server.services.checkin import CheckInRequest, Identity, Profile
from server.services.scans import code_for
from tests.factories import count_rows, make_event, make_participant, make_staff, make_tree, make_venue

ROUNDS = 20
RACERS = 2
TIMEOUT = 60  # seconds: a hung process fails the test instead of hanging it
ADULT = Profile(AgeBand.from_25, Gender.female, consent=True)


@dataclass(frozen=True)
class Plan:
    """What one process sends: a request per round, as staff (staff_id) or as a phone (None)."""

    database_url: str
    secret_key: str
    data_dir: str
    staff_id: int | None
    requests: list[CheckInRequest]
    now: Any  # datetime: when every request reaches the server


def race(plan: Plan, racer: int, barrier: Any) -> list[str]:
    """Send one plan's requests, a round at a time; the answer to each."""
    from server.db import make_engine
    from server.errors import AppError
    from server.models import Staff
    from server.services.checkin import check_in

    settings = Settings(
        env="development",
        database_url=plan.database_url,
        secret_key=plan.secret_key,
        data_dir=Path(plan.data_dir),
        base_url="http://testserver",
    )
    engine = make_engine(settings)
    outcomes: list[str] = []
    try:
        with Session(engine, expire_on_commit=False) as session:
            staff = session.get(Staff, plan.staff_id) if plan.staff_id else None
            session.commit()
            for request in plan.requests:
                barrier.wait(timeout=TIMEOUT)
                try:
                    result = check_in(session, settings, request, staff=staff, now=plan.now)
                    outcomes.append("created" if result.created else "replayed")
                except AppError as error:
                    outcomes.append(error.code.value)
                except Exception as error:
                    session.rollback()
                    outcomes.append(f"crash: {type(error).__name__}: {error}"[:300])
    except threading.BrokenBarrierError:
        outcomes.append("crash: the other process stopped racing")
    finally:
        engine.dispose()
    return outcomes


def serve(racer: int, barrier: Any, inbox: Any, answers: Any) -> None:
    """A racing process: run each plan it is sent (module level, so the spawn start method can import it)."""
    while (plan := inbox.get()) is not None:
        answers.put((racer, race(plan, racer, barrier)))


class Racers:
    """OS processes started once (spawn: a fresh interpreter each, like separate server workers) and
    reused by every test of the module, so the slow start is paid once."""

    def __init__(self, count: int) -> None:
        context = multiprocessing.get_context("spawn")
        # Kept referenced: the children open its semaphores after start() returns.
        self.barrier = context.Barrier(count)
        self.answers = context.Queue()
        self.inboxes = [context.Queue() for _ in range(count)]
        self.processes = [
            context.Process(target=serve, args=(n, self.barrier, inbox, self.answers), daemon=True)
            for n, inbox in enumerate(self.inboxes)
        ]
        for process in self.processes:
            process.start()

    def run(self, plans: list[Plan]) -> list[list[str]]:
        """Give each process its plan; the outcomes of each, round by round."""
        assert len(plans) == len(self.processes)
        for inbox, plan in zip(self.inboxes, plans, strict=True):
            inbox.put(plan)
        found: dict[int, list[str]] = {}
        deadline = time.monotonic() + TIMEOUT
        while len(found) < len(plans):
            try:
                racer, outcomes = self.answers.get(timeout=0.5)
            except queue.Empty:
                alive = [p.is_alive() for p in self.processes]
                if not all(alive) or time.monotonic() > deadline:
                    pytest.fail(
                        f"the racing processes stopped answering (answered: {sorted(found)}, alive: {alive})"
                    )
                continue
            found[racer] = outcomes
        return [found[n] for n in range(len(plans))]

    def close(self) -> None:
        for inbox in self.inboxes:
            inbox.put(None)
        for process in self.processes:
            process.join(timeout=TIMEOUT)
            if process.is_alive():
                process.kill()
                process.join()
        for channel in [*self.inboxes, self.answers]:
            channel.close()
            channel.join_thread()
        assert [p.exitcode for p in self.processes] == [0] * len(self.processes)


@pytest.fixture(scope="module")
def racers() -> Iterator[Racers]:
    started = Racers(RACERS)
    yield started
    started.close()


def rounds(outcomes: list[list[str]]) -> list[list[str]]:
    """Each process answered every round; the answers of each round, sorted."""
    assert [len(answers) for answers in outcomes] == [ROUNDS] * len(outcomes), outcomes
    return [sorted(pair) for pair in zip(*outcomes, strict=True)]


def plan_for(settings: Settings, staff_id: int | None, requests: list[CheckInRequest], now: Any) -> Plan:
    return Plan(settings.database_url, settings.secret_key, str(settings.data_dir), staff_id, requests, now)


def test_same_card_on_the_same_event_is_stored_once(
    racers: Racers, session: Session, settings: Settings
) -> None:
    units = make_tree(session)
    venue = make_venue(session, units["village"])
    organizer = make_staff(session, Role.organizer, units["commune"])
    holder = make_participant(session, home_unit=units["village"])
    card = identities.issue_card(session, settings, organizer, holder, venue)
    event_ids = [make_event(session, venue).id for _ in range(ROUNDS)]  # one event a round: one check-in each
    now = make_event(session, venue).starts_at + timedelta(minutes=30)
    session.commit()

    def requests(racer: int) -> list[CheckInRequest]:
        return [
            CheckInRequest(
                channel=Channel.kiosk,
                key=f"race-card-{racer}-{n:03d}",  # two organizers' phones, each with its own key
                event_id=event_id,
                identity=Identity(card=card.lookup),
            )
            for n, event_id in enumerate(event_ids)
        ]

    outcomes = racers.run([plan_for(settings, organizer.id, requests(racer), now) for racer in range(RACERS)])
    assert rounds(outcomes) == [["already_checked_in", "created"]] * ROUNDS, outcomes
    assert count_rows(session, CheckIn) == ROUNDS and count_rows(session, Participant) == 1
    stored = session.exec(
        select(CheckIn.event_id, CheckIn.participant_id).order_by(col(CheckIn.event_id))
    ).all()
    assert [tuple(row) for row in stored] == [(event_id, holder.id) for event_id in event_ids]
    assert count_rows(session, CheckInAttempt) == RACERS * ROUNDS


def test_same_idempotency_key_is_stored_once(racers: Racers, session: Session, settings: Settings) -> None:
    units = make_tree(session)
    venue = make_venue(session, units["village"])
    event = make_event(session, venue)
    now = event.starts_at + timedelta(minutes=30)
    code = code_for(event, settings)
    session.commit()
    # Round n: one phone's first check-in, sent twice at once with the same key (a double tap, a retry).
    requests = [
        CheckInRequest(
            channel=Channel.public_api,
            key=f"race-key-{n:03d}",
            code=code,
            identity=Identity(device_token=f"race-phone-token-{n:03d}", profile=ADULT),
        )
        for n in range(ROUNDS)
    ]

    outcomes = racers.run([plan_for(settings, None, requests, now) for _ in range(RACERS)])
    assert rounds(outcomes) == [["created", "replayed"]] * ROUNDS, outcomes
    assert count_rows(session, CheckIn) == ROUNDS
    assert count_rows(session, Participant) == ROUNDS and count_rows(session, Credential) == ROUNDS
    stored = session.exec(select(CheckIn.nonce).order_by(col(CheckIn.nonce))).all()
    assert list(stored) == [request.key for request in requests]
    session.commit()
    log = session.exec(select(CheckInAttempt.outcome)).all()
    assert sorted(log) == ["accepted"] * ROUNDS + ["replayed"] * ROUNDS


def test_same_key_for_a_known_person_is_a_replay_not_a_duplicate(
    racers: Racers, session: Session, settings: Settings
) -> None:
    units = make_tree(session)
    venue = make_venue(session, units["village"])
    staff = make_staff(session, Role.organizer, units["commune"])
    events = [make_event(session, venue, title=f"Buổi {n}") for n in range(ROUNDS)]
    person = make_participant(session, home_unit=units["commune"])
    now = events[0].starts_at + timedelta(minutes=30)
    session.commit()
    # Round n: the desk's outbox and Background Sync send the same item at once (same key, a person the
    # server knows). The copy that loses must hear "sent" (replayed), never "already checked in".
    requests = [
        CheckInRequest(
            channel=Channel.batch,
            key=f"race-known-{n:03d}",
            event_id=event.id,
            identity=Identity(participant_id=person.id),
            claimed_at=now,
        )
        for n, event in enumerate(events)
    ]

    outcomes = racers.run([plan_for(settings, staff.id, requests, now) for _ in range(RACERS)])
    assert rounds(outcomes) == [["created", "replayed"]] * ROUNDS, outcomes
    assert count_rows(session, CheckIn) == ROUNDS


def test_a_new_phone_on_two_events_at_once_stays_one_person(
    racers: Racers, session: Session, settings: Settings
) -> None:
    """The same new phone's outbox sends its first check-ins to two events at the same moment (two
    workers): one participant and one device credential, and coded answers only (no crash)."""
    units = make_tree(session)
    venue = make_venue(session, units["village"])
    events = [make_event(session, venue) for _ in range(RACERS)]
    now = events[0].starts_at + timedelta(minutes=30)
    codes = [code_for(event, settings) for event in events]
    session.commit()

    def requests(racer: int) -> list[CheckInRequest]:
        return [
            CheckInRequest(
                channel=Channel.public_api,
                key=f"race-two-{racer}-{n:03d}",
                code=codes[racer],
                identity=Identity(device_token=f"race-both-token-{n:03d}", profile=ADULT),
            )
            for n in range(ROUNDS)
        ]

    outcomes = racers.run([plan_for(settings, None, requests(racer), now) for racer in range(RACERS)])
    crashes = [answer for answers in outcomes for answer in answers if answer.startswith("crash")]
    assert crashes == [], outcomes
    assert rounds(outcomes) == [["created", "created"]] * ROUNDS, outcomes
    assert count_rows(session, Participant) == ROUNDS and count_rows(session, Credential) == ROUNDS
    assert count_rows(session, CheckIn) == RACERS * ROUNDS
