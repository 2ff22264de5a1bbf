"""Events: create, edit, cancel, find; every operation checks the staff member's scope."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, or_
from sqlmodel import Session, col, select

from server.auth import can_use_venue, venue_scope_clause
from server.errors import N_, AppError, ErrorCode, FormError
from server.models import (
    Campaign,
    CheckInMode,
    Event,
    EventStatus,
    EventType,
    OrgUnit,
    Staff,
    Venue,
    in_year_range,
    utcnow,
)

MAX_DURATION = timedelta(days=31)
PAGE_SIZE = 50


@dataclass(frozen=True)
class EventInput:
    title: str
    type: EventType
    venue_id: int
    starts_at: datetime
    ends_at: datetime
    campaign: Campaign = Campaign.none
    expected_audience: int | None = None
    description: str = ""
    checkin_mode: CheckInMode = CheckInMode.poster


def validate(data: EventInput) -> None:
    """Rules every event satisfies, whichever page or API call made it."""
    errors: dict[str, str] = {}
    if not data.title.strip():
        errors["title"] = N_("Enter a title.")
    elif len(data.title) > 200:
        errors["title"] = N_("The title is too long (at most 200 characters).")
    if data.starts_at.tzinfo is None or data.ends_at.tzinfo is None:
        errors["starts_at"] = N_("Times need a time zone.")
    elif not (in_year_range(data.starts_at) and in_year_range(data.ends_at)):
        errors["date"] = N_("Enter a date between the years 2000 and 2100.")
    elif data.ends_at <= data.starts_at:
        errors["end_time"] = N_("The event must end after it starts.")
    elif data.ends_at - data.starts_at > MAX_DURATION:
        errors["end_time"] = N_("An event can last at most 31 days.")
    if data.expected_audience is not None and not 0 <= data.expected_audience <= 1_000_000:
        errors["expected_audience"] = N_("Enter a number between 0 and 1,000,000.")
    if len(data.description) > 2000:
        errors["description"] = N_("The description is too long (at most 2,000 characters).")
    if errors:
        raise FormError(errors)


def parse_form(form: Mapping[str, str], tz: ZoneInfo) -> EventInput:
    """Read the event form (local date and times) into an EventInput, collecting every field's error."""
    errors: dict[str, str] = {}

    def pick(name: str, kind: Callable[[str], object], message: str) -> object:
        raw = (form.get(name) or "").strip()
        try:
            return kind(raw)
        except ValueError:
            errors[name] = message
            return None

    type_ = pick("type", EventType, N_("Choose an event type."))
    campaign = pick("campaign", Campaign, N_("Choose a campaign.")) if form.get("campaign") else Campaign.none
    mode_raw = form.get("checkin_mode")
    mode = (
        pick("checkin_mode", CheckInMode, N_("Choose how people check in."))
        if mode_raw
        else CheckInMode.poster
    )
    venue_id = pick("venue_id", int, N_("Choose a venue."))
    day = pick("date", date.fromisoformat, N_("Enter a date."))
    end_day_raw = (form.get("end_date") or "").strip()
    end_day = pick("end_date", date.fromisoformat, N_("Enter a date.")) if end_day_raw else day
    start = pick("start_time", time.fromisoformat, N_("Enter a start time."))
    end = pick("end_time", time.fromisoformat, N_("Enter an end time."))
    audience_raw = (form.get("expected_audience") or "").strip()
    audience = pick("expected_audience", int, N_("Enter a whole number.")) if audience_raw else None
    if not (form.get("title") or "").strip():
        errors["title"] = N_("Enter a title.")
    if errors:
        raise FormError(errors)
    assert isinstance(day, date) and isinstance(end_day, date)
    assert isinstance(start, time) and isinstance(end, time)
    data = EventInput(
        title=(form.get("title") or "").strip(),
        type=EventType(str(type_)),
        venue_id=int(str(venue_id)),
        starts_at=datetime.combine(day, start, tz),
        ends_at=datetime.combine(end_day, end, tz),
        campaign=Campaign(str(campaign)),
        expected_audience=int(str(audience)) if audience is not None else None,
        description=(form.get("description") or "").strip(),
        checkin_mode=CheckInMode(str(mode)),
    )
    validate(data)
    return data


def usable_venue(session: Session, staff: Staff, venue_id: int) -> Venue:
    """The active venue a form names, if the staff member may use it (events and clubs both ask)."""
    venue = session.get(Venue, venue_id) if venue_id else None
    if venue is None or not venue.active:
        raise FormError({"venue_id": N_("Choose a venue.")})
    if not can_use_venue(session, staff, venue):
        raise AppError(ErrorCode.forbidden)
    return venue


def create_event(session: Session, staff: Staff, data: EventInput, *, now: datetime | None = None) -> Event:
    validate(data)
    usable_venue(session, staff, data.venue_id)
    now = now or utcnow()
    event = Event(
        title=data.title.strip(),
        type=data.type,
        venue_id=data.venue_id,
        starts_at=data.starts_at,
        ends_at=data.ends_at,
        campaign=data.campaign,
        expected_audience=data.expected_audience,
        description=data.description,
        checkin_mode=data.checkin_mode,
        status=EventStatus.scheduled,
        created_by_id=staff.id,
        created_at=now,
        updated_at=now,
    )
    session.add(event)
    session.commit()
    session.refresh(event)
    return event


def update_event(
    session: Session, staff: Staff, event: Event, data: EventInput, *, now: datetime | None = None
) -> Event:
    validate(data)
    usable_venue(session, staff, data.venue_id)
    for name in (
        "title",
        "type",
        "venue_id",
        "starts_at",
        "ends_at",
        "campaign",
        "expected_audience",
        "description",
        "checkin_mode",
    ):
        setattr(event, name, getattr(data, name))
    event.title = event.title.strip()
    event.updated_at = now or utcnow()
    session.add(event)
    session.commit()
    session.refresh(event)
    return event


def cancel_event(session: Session, event: Event, *, now: datetime | None = None) -> Event:
    """Cancel an event: from now on no channel takes a check-in or a headcount for it (the engine refuses
    them as event_cancelled). What was recorded before stays in the live counts, the reports and the API:
    those people did come (an event called off half-way by a storm), and the office's figures must not
    change behind its back. docs/checkin-rules.md explains the choice."""
    event.status = EventStatus.cancelled
    event.updated_at = now or utcnow()
    session.add(event)
    session.commit()
    session.refresh(event)
    return event


def get_event(session: Session, staff: Staff, event_id: int) -> Event:
    """The event, if it exists and lies in the staff member's scope."""
    event = session.get(Event, event_id)
    if event is None:
        raise AppError(ErrorCode.not_found)
    venue = session.get(Venue, event.venue_id)
    if venue is None or not can_use_venue(session, staff, venue):
        raise AppError(ErrorCode.forbidden)
    return event


@dataclass(frozen=True)
class EventRow:
    event: Event
    venue: Venue
    unit: OrgUnit


def list_events(
    session: Session,
    staff: Staff,
    *,
    query: str = "",
    when: str = "all",
    page: int = 1,
    now: datetime | None = None,
) -> tuple[list[EventRow], int]:
    """Events in scope, newest first, filtered by words in the title or venue and by upcoming/past."""
    now = now or utcnow()
    stmt = (
        select(Event, Venue, OrgUnit)
        .join(Venue, col(Venue.id) == Event.venue_id)
        .join(OrgUnit, col(OrgUnit.id) == Venue.unit_id)
        .where(venue_scope_clause(session, staff))
    )
    for word in query.split()[:5]:
        pattern = f"%{word.lower()}%"
        stmt = stmt.where(
            or_(
                func.lower(Event.title).like(pattern),
                func.lower(Venue.name).like(pattern),
                func.lower(OrgUnit.name).like(pattern),
            )
        )
    if when == "upcoming":
        stmt = stmt.where(Event.ends_at >= now).order_by(col(Event.starts_at))
    elif when == "past":
        stmt = stmt.where(Event.ends_at < now).order_by(col(Event.starts_at).desc())
    else:
        stmt = stmt.order_by(col(Event.starts_at).desc())
    total = session.exec(select(func.count()).select_from(stmt.order_by(None).subquery())).one()
    page = max(page, 1)
    rows = session.exec(stmt.offset((page - 1) * PAGE_SIZE).limit(PAGE_SIZE)).all()
    return [EventRow(event=e, venue=v, unit=u) for e, v, u in rows], int(total)


def venues_for(session: Session, staff: Staff) -> Sequence[tuple[Venue, OrgUnit]]:
    """Active venues the staff member may hold events at, for pickers."""
    stmt = (
        select(Venue, OrgUnit)
        .join(OrgUnit, col(OrgUnit.id) == Venue.unit_id)
        .where(venue_scope_clause(session, staff), col(Venue.active).is_(True))
        .order_by(col(OrgUnit.path), col(Venue.name))
    )
    return session.exec(stmt).all()
