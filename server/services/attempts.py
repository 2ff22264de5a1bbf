"""The attempt log: one row per check-in or headcount attempt, accepted, replayed or refused, for audit and
abuse tracking (a forwarded photo of a code, a guessed card number)."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session

from server.models import Channel, CheckInAttempt, Event, Staff


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
    """Write one line of the attempt log in its own transaction (refusals roll back everything else)."""
    session.add(
        attempt_row(
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
    )
    session.commit()


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
        event_id=event.id if event else None,
        participant_id=participant_id,
        nonce=(key or "")[:64] or None,
        channel=channel,
        action=action,
        outcome=outcome,
        check_in_id=check_in_id,
        staff_id=staff.id if staff else None,
    )
