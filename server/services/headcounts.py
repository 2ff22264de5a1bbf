"""Walk-in headcounts: people counted at the door who do not check in (children with their parents,
passers-by). They count as visits, never as people. Each +n/-n is a row naming who made it and when, under
the same rules as a check-in: the staff member's scope, the key, the event's window, a cancelled event."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func
from sqlalchemy.exc import IntegrityError
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import Session, col, select

from server.config import Settings
from server.errors import AppError, ErrorCode
from server.models import AgeBand, Channel, Event, Gender, Headcount, Staff, Venue, utcnow
from server.services import attempts, checkin

MAX_STEP = 500  # one change: a school class counted at once, not a typo of 5000


@dataclass(frozen=True)
class HeadcountRequest:
    key: str
    event_id: int
    delta: int
    age_band: AgeBand | None = None
    gender: Gender | None = None
    claimed_at: datetime | None = None
    channel: Channel = Channel.staff_form


@dataclass(frozen=True)
class HeadcountResult:
    headcount: Headcount
    created: bool
    total: int  # the event's headcount after this change


def headcount_total(session: Session, event_id: int) -> int:
    total = session.exec(select(func.sum(Headcount.delta)).where(Headcount.event_id == event_id)).one()
    return int(total or 0)


def change_headcount(
    session: Session,
    settings: Settings,
    request: HeadcountRequest,
    *,
    staff: Staff,
    now: datetime | None = None,
    venue_id: int | None = None,
) -> HeadcountResult:
    """Add `delta` (+ or -) to an event's walk-in count, optionally for one age band and gender. With
    `venue_id` (a kiosk), only at an event of that venue."""
    now = now or utcnow()
    event: Event | None = None
    try:
        try:
            event = checkin.start_write(
                session, settings, request.event_id, None, staff, venue_id=venue_id, exclusive=True
            )
            result = _change(session, settings, request, event, staff, now)
        except IntegrityError:
            session.rollback()  # the same key from another process won: once more answers as a replay
            event = checkin.start_write(
                session, settings, request.event_id, None, staff, venue_id=venue_id, exclusive=True
            )
            result = _change(session, settings, request, event, staff, now)
    except AppError as error:
        session.rollback()
        attempts.log_attempt(
            session,
            request.channel,
            event or error.extra.get("event"),
            request.key,
            error.code.value,
            now,
            staff=staff,
            action="headcount",
        )
        raise
    if not result.created:
        attempts.log_attempt(
            session, request.channel, event, request.key, "replayed", now, staff=staff, action="headcount"
        )
    return result


def _change(
    session: Session,
    settings: Settings,
    request: HeadcountRequest,
    event: Event,
    staff: Staff,
    now: datetime,
) -> HeadcountResult:
    if not checkin.valid_key(request.key):
        raise AppError(ErrorCode.invalid_key)
    if request.delta == 0 or abs(request.delta) > MAX_STEP:
        raise AppError(ErrorCode.invalid_input, f"delta must be between -{MAX_STEP} and {MAX_STEP}, not 0")
    digest = checkin.fingerprint(
        event.id, request.delta, request.age_band, request.gender, request.claimed_at
    )
    earlier = session.exec(select(Headcount).where(Headcount.nonce == request.key)).first()
    if earlier is not None:
        if earlier.event_id != event.id or earlier.fingerprint != digest:
            raise AppError(ErrorCode.key_reused, event=event)
        return HeadcountResult(earlier, created=False, total=headcount_total(session, event.id or 0))
    at = checkin.claimed_time(event, settings, request.claimed_at, now, phone=False)
    if request.delta < 0:
        bucket = select(func.sum(Headcount.delta)).where(
            Headcount.event_id == event.id,
            _same(col(Headcount.age_band), request.age_band),
            _same(col(Headcount.gender), request.gender),
        )
        if int(session.exec(bucket).one() or 0) + request.delta < 0:
            raise AppError(ErrorCode.headcount_below_zero, event=event)
    venue = session.get(Venue, event.venue_id)
    assert venue is not None
    commune_id, village_id = checkin.place_of(session, venue, at.astimezone(settings.tz).date())
    row = Headcount(
        event_id=event.id or 0,
        delta=request.delta,
        age_band=request.age_band,
        gender=request.gender,
        nonce=request.key,
        fingerprint=digest,
        channel=request.channel,
        counted_at=at,
        received_at=now,
        recorded_by_id=staff.id,
        venue_id=venue.id or 0,
        venue_type=venue.type,
        commune_id=commune_id,
        village_id=village_id,
    )
    session.add(row)
    session.flush()
    session.add(
        attempts.attempt_row(request.channel, event, request.key, "accepted", now, staff, action="headcount")
    )
    session.commit()
    return HeadcountResult(row, created=True, total=headcount_total(session, event.id or 0))


def _same(column: Any, value: AgeBand | Gender | None) -> ColumnElement[bool]:
    return column.is_(None) if value is None else column == value
