"""Clubs, talent classes and interest groups: their details, schedule, members and sessions.

A session is an ordinary event (`Event.club_id`, type club_session), so every check-in channel, live count,
report and export treats it as one. The schedule makes sessions ahead of time; each remembers the slot it
was made for (`Event.club_slot`), so moving or cancelling one (through services/events.py) never brings
it back. The club's permanent code (server/codes.py) opens whichever session is open now.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from server import codes
from server.auth import can_use_venue, venue_scope_clause
from server.config import Settings
from server.db import begin_write
from server.errors import N_, AppError, ErrorCode, FormError
from server.models import (
    Campaign,
    Channel,
    CheckIn,
    Club,
    ClubMember,
    ClubType,
    Event,
    EventStatus,
    EventType,
    Headcount,
    OrgUnit,
    Participant,
    Staff,
    Venue,
    in_year_range,
    utcnow,
)
from server.services import counting, events, names, scans
from server.services.attempts import log_attempt
from server.services.identities import participant_scope_clause

logger = logging.getLogger(__name__)

AHEAD = timedelta(weeks=8)  # how far ahead the schedule makes sessions unless told otherwise
MAX_AHEAD = timedelta(days=366)
# How far back a late offline scan of the club's code may make its missing session: a phone's outbox is
# accepted for a week (checkin.LATE_SYNC_LIMIT), and a forged scan time must not make older sessions.
REACH_BACK = timedelta(days=7)


@dataclass(frozen=True)
class ClubInput:
    name: str
    type: ClubType
    venue_id: int
    leader_name: str = ""
    description: str = ""


@dataclass(frozen=True)
class ScheduleInput:
    weekdays: tuple[int, ...]
    start_time: time
    duration_minutes: int
    starts_on: date
    until: date | None = None


def parse_club_form(form: Mapping[str, str]) -> ClubInput:
    """Read the club form, collecting every field's error."""
    errors: dict[str, str] = {}
    name = (form.get("name") or "").strip()
    try:
        kind = ClubType((form.get("type") or "").strip())
    except ValueError:
        errors["type"] = N_("Choose a kind of club.")
    try:
        venue_id = int((form.get("venue_id") or "").strip())
    except ValueError:
        errors["venue_id"] = N_("Choose a venue.")
    data = ClubInput(
        name=name,
        type=kind if "type" not in errors else ClubType.club,
        venue_id=venue_id if "venue_id" not in errors else 0,
        leader_name=(form.get("leader_name") or "").strip(),
        description=(form.get("description") or "").strip(),
    )
    errors.update(_club_errors(data))
    if errors:
        raise FormError(errors)
    return data


def _club_errors(data: ClubInput) -> dict[str, str]:
    errors: dict[str, str] = {}
    if not data.name.strip():
        errors["name"] = N_("Enter a name.")
    elif len(data.name) > 200:
        errors["name"] = N_("The name is too long (at most 200 characters).")
    if len(data.leader_name) > 200:
        errors["leader_name"] = N_("The name is too long (at most 200 characters).")
    if len(data.description) > 2000:
        errors["description"] = N_("The description is too long (at most 2,000 characters).")
    return errors


def create_club(session: Session, staff: Staff, data: ClubInput, *, now: datetime | None = None) -> Club:
    errors = _club_errors(data)
    if errors:
        raise FormError(errors)
    events.usable_venue(session, staff, data.venue_id)
    now = now or utcnow()
    club = Club(
        venue_id=data.venue_id,
        name=data.name.strip(),
        type=data.type,
        leader_name=data.leader_name.strip(),
        description=data.description.strip(),
        created_by_id=staff.id,
        created_at=now,
        updated_at=now,
    )
    session.add(club)
    session.commit()
    session.refresh(club)
    logger.info("club %s created at venue %s by staff %s", club.id, club.venue_id, staff.id)
    return club


def update_club(
    session: Session,
    staff: Staff,
    club: Club,
    data: ClubInput,
    *,
    active: bool = True,
    now: datetime | None = None,
) -> Club:
    """Change a club's details. Sessions already made keep their venue and title (edit them as events)."""
    errors = _club_errors(data)
    if errors:
        raise FormError(errors)
    events.usable_venue(session, staff, data.venue_id)
    club.name, club.type, club.venue_id = data.name.strip(), data.type, data.venue_id
    club.leader_name, club.description = data.leader_name.strip(), data.description.strip()
    club.active = active
    club.updated_at = now or utcnow()
    session.add(club)
    session.commit()
    session.refresh(club)
    logger.info("club %s updated by staff %s", club.id, staff.id)
    return club


def get_club(session: Session, staff: Staff, club_id: int) -> Club:
    """The club, if it exists and its venue lies in the staff member's scope."""
    club = session.get(Club, club_id)
    if club is None:
        raise AppError(ErrorCode.not_found)
    venue = session.get(Venue, club.venue_id)
    if venue is None or not can_use_venue(session, staff, venue):
        raise AppError(ErrorCode.forbidden)
    return club


@dataclass(frozen=True)
class ClubRow:
    club: Club
    venue: Venue
    unit: OrgUnit
    members: int
    next_session: Event | None


def list_clubs(session: Session, staff: Staff, *, now: datetime | None = None) -> list[ClubRow]:
    """Clubs at venues in scope, active first, by name."""
    now = now or utcnow()
    stmt = (
        select(Club, Venue, OrgUnit)
        .join(Venue, col(Venue.id) == Club.venue_id)
        .join(OrgUnit, col(OrgUnit.id) == Venue.unit_id)
        .where(venue_scope_clause(session, staff))
        .order_by(col(Club.active).desc(), col(Club.name), col(Club.id))
    )
    rows = session.exec(stmt).all()
    ids = [club.id for club, _v, _u in rows]
    members = dict(
        session.exec(
            select(ClubMember.club_id, func.count())
            .where(col(ClubMember.club_id).in_(ids))
            .group_by(col(ClubMember.club_id))
        ).all()
    )
    upcoming: dict[int, Event] = {}
    for event in session.exec(
        select(Event)
        .where(col(Event.club_id).in_(ids), Event.status == EventStatus.scheduled, Event.ends_at >= now)
        .order_by(col(Event.starts_at))
    ):
        upcoming.setdefault(event.club_id or 0, event)
    return [
        ClubRow(club, venue, unit, int(members.get(club.id or 0, 0)), upcoming.get(club.id or 0))
        for club, venue, unit in rows
    ]


# The schedule


def parse_schedule_form(form: Mapping[str, list[str] | str], tz: ZoneInfo, *, now: datetime) -> ScheduleInput:
    """Read the schedule form (weekday boxes, a local time, minutes, from and until dates)."""
    errors: dict[str, str] = {}
    raw_days = form.get("weekdays") or []
    days: set[int] = set()
    for raw in [raw_days] if isinstance(raw_days, str) else raw_days:
        if raw.strip().isdigit() and 0 <= int(raw) <= 6:
            days.add(int(raw))
        elif raw.strip():
            errors["weekdays"] = N_("Choose at least one day of the week.")
    if not days:
        errors["weekdays"] = N_("Choose at least one day of the week.")

    def text(name: str) -> str:
        value = form.get(name) or ""
        return (value if isinstance(value, str) else (value[0] if value else "")).strip()

    start: time | None = None
    try:
        start = time.fromisoformat(text("start_time"))
    except ValueError:
        errors["start_time"] = N_("Enter a start time.")
    duration = 0
    if text("duration_minutes").isdigit() and 10 <= int(text("duration_minutes")) <= 12 * 60:
        duration = int(text("duration_minutes"))
    else:
        errors["duration_minutes"] = N_("Enter a length between 10 and 720 minutes.")
    starts_on = now.astimezone(tz).date()
    if text("starts_on"):
        try:
            starts_on = date.fromisoformat(text("starts_on"))
        except ValueError:
            errors["starts_on"] = N_("Enter a date.")
    until: date | None = None
    if text("until"):
        try:
            until = date.fromisoformat(text("until"))
        except ValueError:
            errors["until"] = N_("Enter a date.")
        else:
            if until < starts_on:
                errors["until"] = N_("The last day must not be before the first.")
    if errors:
        raise FormError(errors)
    assert start is not None
    return ScheduleInput(
        tuple(sorted(days)), start.replace(second=0, microsecond=0), duration, starts_on, until
    )


def set_schedule(
    session: Session, staff: Staff, club: Club, data: ScheduleInput, *, now: datetime | None = None
) -> Club:
    """Replace the club's schedule. Sessions already made stay as they are; new ones follow the new rule."""
    if not data.weekdays or any(not 0 <= d <= 6 for d in data.weekdays):
        raise FormError({"weekdays": N_("Choose at least one day of the week.")})
    if not 10 <= data.duration_minutes <= 12 * 60:
        raise FormError({"duration_minutes": N_("Enter a length between 10 and 720 minutes.")})
    if data.until is not None and data.until < data.starts_on:
        raise FormError({"until": N_("The last day must not be before the first.")})
    for name, day in (("starts_on", data.starts_on), ("until", data.until)):
        if day is not None and not in_year_range(day):
            raise FormError({name: N_("Enter a date between the years 2000 and 2100.")})
    club.weekdays = ",".join(str(d) for d in sorted(set(data.weekdays)))
    club.start_time, club.duration_minutes = data.start_time, data.duration_minutes
    club.schedule_from, club.schedule_until = data.starts_on, data.until
    club.updated_at = now or utcnow()
    session.add(club)
    session.commit()
    session.refresh(club)
    logger.info("club %s: schedule set by staff %s", club.id, staff.id)
    return club


def weekdays_of(club: Club) -> list[int]:
    return [int(d) for d in club.weekdays.split(",") if d.strip().isdigit()]


def slots(club: Club, tz: ZoneInfo, first: datetime, last: datetime) -> list[datetime]:
    """The schedule's session starts (aware UTC) from `first` to `last`, within its from and until dates.
    Each is the local wall-clock time on its day, so a session stays at 19:30 whatever the UTC offset."""
    days = weekdays_of(club)
    if not days or club.start_time is None or club.schedule_from is None:
        return []
    day = max(club.schedule_from, first.astimezone(tz).date())
    end = last.astimezone(tz).date()
    if club.schedule_until is not None:
        end = min(end, club.schedule_until)
    found = []
    while day <= end:
        if day.weekday() in days:
            start = datetime.combine(day, club.start_time, tz).astimezone(UTC)
            if first <= start <= last:
                found.append(start)
        day += timedelta(days=1)
    return found


def generate_sessions(
    session: Session,
    club: Club,
    *,
    until: datetime | None = None,
    now: datetime | None = None,
    since: datetime | None = None,
    settings: Settings,
    staff: Staff | None = None,
) -> list[Event]:
    """Make the club's sessions for the schedule's slots from `since` (default: now) to `until` (default:
    8 weeks ahead, at most a year). Idempotent: a slot that already has a session (scheduled, moved or
    cancelled) gets none, so a moved session does not come back. Returns the sessions made."""
    now = now or utcnow()
    first = since or now
    last = min(until or now + AHEAD, now + MAX_AHEAD)
    if not club.active:
        return []
    wanted = slots(club, settings.tz, first, last)
    if not wanted:
        return []
    made: list[Event] = []
    for attempt in range(3):
        # On SQLite, take the write lock before reading the slots taken, so no other writer makes one of
        # them in between; on PostgreSQL the unique constraint catches that and the loop reads again.
        begin_write(session)
        taken = {
            slot.astimezone(UTC)
            for slot in session.exec(
                select(Event.club_slot).where(Event.club_id == club.id, col(Event.club_slot).is_not(None))
            )
            if slot is not None
        }
        made = [
            Event(
                title=club.name,
                type=EventType.club_session,
                venue_id=club.venue_id,
                starts_at=slot,
                ends_at=slot + timedelta(minutes=club.duration_minutes),
                campaign=Campaign.none,
                description=club.description[:2000],
                status=EventStatus.scheduled,
                club_id=club.id,
                club_slot=slot,
                created_by_id=staff.id if staff else club.created_by_id,
                created_at=now,
                updated_at=now,
            )
            for slot in wanted
            if slot not in taken
        ]
        session.add_all(made)
        try:
            session.commit()
        except IntegrityError:
            # Another request made some of these slots at the same moment: read them again and skip them.
            session.rollback()
            if attempt == 2:
                raise
            continue
        break
    if made:
        logger.info("club %s: %d sessions made", club.id, len(made))
    return made


def top_up(
    session: Session,
    settings: Settings,
    listed: Sequence[Club],
    *,
    now: datetime,
    reach_back: datetime | None = None,
) -> list[Event]:
    """Keep each club's sessions made 8 weeks ahead of `now` without anyone pressing a button: the club's
    code, its page, the clubs list and `diemdanh make-sessions` call this. Cheap when nothing is missing
    (one query for every club's last slot, compared with the schedule's last slot before the horizon);
    otherwise it makes the missing slots from the session that may still be open (or from `reach_back`, a
    late offline scan's time, at most a week back) with `generate_sessions`, so a moved or cancelled
    session never comes back and two callers at once never make one twice. Returns the sessions made."""
    active = [club for club in listed if club.active and club.id is not None]
    if not active:
        return []
    last_made = dict(
        session.exec(
            select(Event.club_id, func.max(Event.club_slot))
            .where(col(Event.club_id).in_([club.id for club in active]))
            .group_by(col(Event.club_id))
        ).all()
    )
    margin = timedelta(minutes=settings.checkin_margin_minutes)
    late = reach_back if reach_back is not None and reach_back.tzinfo is not None else now
    back = min(late, now) if late >= now - REACH_BACK else now
    made: list[Event] = []
    for club in active:
        # A session started up to its length and the check-in margin ago is still open for check-in.
        since = back - timedelta(minutes=club.duration_minutes) - margin
        wanted = slots(club, settings.tz, since, now + AHEAD)
        last = last_made.get(club.id)
        if not wanted or (last is not None and _aware(last) >= wanted[-1]):
            continue
        try:
            made += generate_sessions(session, club, since=since, now=now, settings=settings)
        except IntegrityError:
            # Three rounds lost to other callers making the same slots: they are made, by them.
            session.rollback()
            logger.warning("club %s: sessions being made elsewhere at the same moment", club.id)
    return made


def top_up_all(session: Session, settings: Settings, *, now: datetime | None = None) -> list[Event]:
    """Top up every active club (the scheduled `diemdanh make-sessions`)."""
    listed = session.exec(select(Club).where(col(Club.active).is_(True)).order_by(col(Club.id))).all()
    return top_up(session, settings, listed, now=now or utcnow())


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


# Members


@dataclass(frozen=True)
class Member:
    member: ClubMember
    participant: Participant
    name: str | None  # if the staff member may see it (services/names.py)


def add_member(
    session: Session, staff: Staff, club: Club, participant_id: int, *, now: datetime | None = None
) -> ClubMember:
    """Put a participant the staff member can find (and who gave consent) on the roster; twice is once."""
    participant = session.exec(
        select(Participant).where(Participant.id == participant_id, participant_scope_clause(session, staff))
    ).first()
    if participant is None:
        raise FormError({"participant_id": N_("Choose a participant from the search.")})
    if participant.consent_at is None:
        raise FormError(
            {"participant_id": N_("This person has not given consent: they cannot be on a roster.")}
        )
    existing = session.exec(
        select(ClubMember).where(ClubMember.club_id == club.id, ClubMember.participant_id == participant_id)
    ).first()
    if existing is not None:
        return existing
    member = ClubMember(
        club_id=club.id or 0, participant_id=participant_id, joined_at=now or utcnow(), added_by_id=staff.id
    )
    session.add(member)
    try:
        session.commit()
    except IntegrityError:  # added by someone else at the same moment
        session.rollback()
        return session.exec(
            select(ClubMember).where(
                ClubMember.club_id == club.id, ClubMember.participant_id == participant_id
            )
        ).one()
    session.refresh(member)
    logger.info("club %s: participant %s added by staff %s", club.id, participant_id, staff.id)
    return member


def remove_member(session: Session, staff: Staff, club: Club, participant_id: int) -> None:
    member = session.exec(
        select(ClubMember).where(ClubMember.club_id == club.id, ClubMember.participant_id == participant_id)
    ).first()
    if member is not None:
        session.delete(member)
        session.commit()
        logger.info("club %s: participant %s removed by staff %s", club.id, participant_id, staff.id)


def members(session: Session, staff: Staff, club: Club) -> list[Member]:
    """The club's roster, each named only where the staff member may see the name."""
    rows = session.exec(
        select(ClubMember, Participant, names.shown_column(session, staff))
        .join(Participant, col(Participant.id) == ClubMember.participant_id)
        .where(ClubMember.club_id == club.id)
        .order_by(col(Participant.search_name), col(Participant.id))
    ).all()
    return [Member(m, p, name) for m, p, name in rows]


# Sessions


@dataclass(frozen=True)
class SessionRow:
    event: Event
    visits: int
    people: int


def list_sessions(
    session: Session, club: Club, *, now: datetime | None = None, past_limit: int = 12
) -> tuple[list[SessionRow], list[SessionRow]]:
    """The club's upcoming sessions (soonest first) and its latest past ones, with attendance."""
    now = now or utcnow()
    base = select(Event).where(Event.club_id == club.id)
    upcoming = list(session.exec(base.where(Event.ends_at >= now).order_by(col(Event.starts_at))).all())
    past = list(
        session.exec(base.where(Event.ends_at < now).order_by(col(Event.starts_at).desc()).limit(past_limit))
    )
    ids = [e.id for e in upcoming + past]
    rows = counting.visit_rows(col(CheckIn.event_id).in_(ids), col(Headcount.event_id).in_(ids))
    visits, people, _walk_ins = counting.measures(rows)
    counts = {
        event_id: (int(v), int(p))
        for event_id, v, p in session.execute(
            select(rows.c.event_id, visits, people).group_by(rows.c.event_id)
        ).all()
    }

    def row(event: Event) -> SessionRow:
        v, p = counts.get(event.id or 0, (0, 0))
        return SessionRow(event, v, p)

    return [row(e) for e in upcoming], [row(e) for e in past]


# The permanent code


def code_for(club: Club, settings: Settings) -> str:
    return codes.make_club_code(settings.secret_key, club.id or 0)


def link_for(club: Club, settings: Settings) -> str:
    """The link on the club's year-round poster: `BASE_URL/c/<club code>`."""
    return f"{settings.base_url}/c/{code_for(club, settings)}"


def scan_club(
    session: Session, settings: Settings, raw_code: str, now: datetime
) -> tuple[Club, Event | None]:
    """A phone opened a club's year-round code: the club, and its session open now (None: none is). A
    refused code is logged like every other refused scan."""
    try:
        club = club_by_code(session, settings, raw_code)
    except AppError as error:
        log_attempt(session, Channel.page, None, None, error.code.value, now)
        raise
    return club, open_session(session, settings, club, now)


def club_by_code(session: Session, settings: Settings, raw_code: str) -> Club:
    """The club a code opens, or code_invalid (forged, unknown, or the club was closed)."""
    code = codes.normalize(raw_code or "")
    club_id = codes.club_id_of(code, settings.secret_key) if code else None
    club = session.get(Club, club_id) if club_id else None
    if club is None or not club.active:
        raise AppError(ErrorCode.code_invalid)
    return club


def open_session(
    session: Session, settings: Settings, club: Club, at: datetime, *, now: datetime | None = None
) -> Event | None:
    """The session whose check-in window holds `at`, when the scan was made (the one under way first, else
    the next to start). `now` is when the scan arrived (default: `at`); the club's sessions are topped up
    to 8 weeks ahead of it first, so a poster keeps working when nobody made sessions for weeks."""
    now = now or at
    top_up(session, settings, [club], now=now, reach_back=at)
    margin = timedelta(minutes=settings.checkin_margin_minutes)
    candidates = session.exec(
        select(Event).where(
            Event.club_id == club.id,
            Event.status == EventStatus.scheduled,
            Event.starts_at <= at + margin,
            Event.ends_at >= at - margin,
        )
    ).all()
    open_now = []
    for event in candidates:
        try:
            scans.ensure_open(event, settings, at)
        except AppError:
            continue
        open_now.append(event)
    started = sorted((e for e in open_now if e.starts_at <= at), key=lambda e: e.starts_at, reverse=True)
    coming = sorted((e for e in open_now if e.starts_at > at), key=lambda e: e.starts_at)
    return (started + coming)[0] if open_now else None


def next_session(session: Session, club: Club, now: datetime) -> Event | None:
    return session.exec(
        select(Event)
        .where(Event.club_id == club.id, Event.status == EventStatus.scheduled, Event.starts_at > now)
        .order_by(col(Event.starts_at))
        .limit(1)
    ).first()
