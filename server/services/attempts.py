"""The attempt log: one row per check-in or headcount attempt, accepted, replayed or refused, for audit and
abuse tracking (a forwarded photo of a code, a guessed card number).

It stays bounded: the same attempt made again (the same key, event, participant, staff, channel, action
and outcome: a phone's outbox replaying, a refusal sent again) adds one to `repeats` on its first row and
moves its `last_at`, instead of a new row; and `prune` (`diemdanh prune-attempts`) folds rows whose last
attempt is older than DIEMDANH_ATTEMPT_LOG_DAYS into per-event, day, channel, action and outcome counts
(CheckInAttemptSummary) and deletes them. Anything that counts attempts sums `repeats`.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import delete, update
from sqlmodel import Session, col, select

from server.config import Settings
from server.db import begin_write
from server.models import Channel, CheckInAttempt, CheckInAttemptSummary, Event, Staff, utcnow

PRUNE_BATCH = 5_000  # rows summarised and deleted per transaction


def log_attempt(
    session: Session,
    channel: Channel,
    event: Event | None,
    key: str | None,
    outcome: str,
    now: datetime,
    *,
    staff: Staff | None = None,
    action: str = "check_in",
    participant_id: int | None = None,
    check_in_id: int | None = None,
) -> None:
    """Write one line of the attempt log in its own transaction (refusals roll back everything else), or
    count it on the line of the same attempt made before."""
    row = attempt_row(
        channel,
        event,
        key,
        outcome,
        now,
        staff,
        participant_id=participant_id,
        check_in_id=check_in_id,
        action=action,
    )
    if row.nonce is not None and _count_repeat(session, row):
        session.commit()
        return
    session.add(row)
    session.commit()


def _count_repeat(session: Session, row: CheckInAttempt) -> bool:
    """Add one to the earlier line of the same attempt, if there is one. Two identical attempts at the
    same instant may both find none and store two lines: the sum of `repeats` is right either way."""
    same = [
        col(getattr(CheckInAttempt, name)).is_not_distinct_from(getattr(row, name))
        for name in ("event_id", "participant_id", "staff_id")
    ]
    result = session.connection().execute(
        update(CheckInAttempt)
        .where(
            col(CheckInAttempt.nonce) == row.nonce,
            col(CheckInAttempt.channel) == row.channel,
            col(CheckInAttempt.action) == row.action,
            col(CheckInAttempt.outcome) == row.outcome,
            *same,
        )
        .values(repeats=col(CheckInAttempt.repeats) + 1, last_at=row.last_at)
    )
    return bool(result.rowcount)


def attempt_row(
    channel: Channel,
    event: Event | None,
    key: str | None,
    outcome: str,
    now: datetime,
    staff: Staff | None,
    *,
    participant_id: int | None = None,
    check_in_id: int | None = None,
    action: str = "check_in",
) -> CheckInAttempt:
    """A line of the attempt log, for the caller to add to its own transaction."""
    return CheckInAttempt(
        at=now,
        last_at=now,
        event_id=event.id if event else None,
        participant_id=participant_id,
        nonce=(key or "")[:64] or None,
        channel=channel,
        action=action,
        outcome=outcome,
        check_in_id=check_in_id,
        staff_id=staff.id if staff else None,
    )


@dataclass(frozen=True)
class Pruned:
    rows: int  # attempt-log lines folded into the summary and deleted
    attempts: int  # the attempts they counted (repeats included)
    cutoff: datetime  # lines whose last attempt came before this


SummaryKey = tuple[int | None, date, Channel, str, str]


def prune(session: Session, settings: Settings, *, now: datetime | None = None) -> Pruned:
    """Fold every attempt-log line whose last attempt is older than settings.attempt_log_days into
    CheckInAttemptSummary and delete it, a batch per transaction (a stop between two loses nothing).
    Running it again at once changes nothing."""
    cutoff = (now or utcnow()) - timedelta(days=settings.attempt_log_days)
    rows = attempts = 0
    while True:
        begin_write(session)
        query = (
            select(CheckInAttempt)
            .where(col(CheckInAttempt.last_at) < cutoff)
            .order_by(col(CheckInAttempt.id))
            .limit(PRUNE_BATCH)
        )
        if session.get_bind().dialect.name != "sqlite":
            query = query.with_for_update()  # a repeat counted meanwhile waits, then finds no line: a new one
        batch = session.exec(query).all()
        if not batch:
            session.commit()
            return Pruned(rows=rows, attempts=attempts, cutoff=cutoff)
        counts: dict[SummaryKey, list[int]] = defaultdict(lambda: [0, 0])
        for line in batch:
            day = line.at.astimezone(settings.tz).date()
            total = counts[(line.event_id, day, line.channel, line.action, line.outcome)]
            total[0] += line.repeats
            total[1] += 1
        for (event_id, day, channel, action, outcome), (made, lines) in counts.items():
            summary = session.exec(
                select(CheckInAttemptSummary).where(
                    CheckInAttemptSummary.event_key == (event_id or 0),
                    CheckInAttemptSummary.day == day,
                    CheckInAttemptSummary.channel == channel,
                    CheckInAttemptSummary.action == action,
                    CheckInAttemptSummary.outcome == outcome,
                )
            ).first()
            if summary is None:
                summary = CheckInAttemptSummary(
                    event_id=event_id,
                    event_key=event_id or 0,
                    day=day,
                    channel=channel,
                    action=action,
                    outcome=outcome,
                )
            summary.attempts += made
            summary.rows += lines
            session.add(summary)
        session.connection().execute(
            delete(CheckInAttempt).where(col(CheckInAttempt.id).in_([line.id for line in batch]))
        )
        session.commit()
        rows += len(batch)
        attempts += sum(line.repeats for line in batch)
