"""Flooding an event's count: how the engine tells a crowd from a script, and how staff take a flood out.

A check-in that brings a **new person** from an **anonymous phone** (the page, the public API, a phone's
batch) is the only kind a script can make up without limit: a known phone checks in once per event, and
staff and kiosks are logged in and named on every record. Such a check-in carries its **source**, a keyed
hash of the address it came from (an IPv6 address by its /64, which one subscriber gets whole), never the
address itself.

At one event, in one minute of arrival, one source may bring:
- up to `budget()` new people, stored as usual (default 20, or a tenth of the event's expected audience
  if that is more: the whole expected crowd arriving behind one carrier NAT within ten minutes);
- up to `hard_limit()` (three times the budget) in all: past the budget the check-in is still stored and
  counted, but it and the rest of that source's new people of that minute are marked **suspicious**, so
  a real crowd behind one shared address is never lost, and the organizer sees it;
- past that, `checkin_busy` (429, `Retry-After`: the seconds to the next minute), logged like every
  refusal; the page keeps the form, and pressing the button again a minute later stores it.

The count is the check-in rows themselves, read while the engine holds the event's write lock (BEGIN
IMMEDIATE on SQLite, SELECT ... FOR UPDATE of the event row on PostgreSQL), so it holds across processes
and workers with nothing else to keep in step.

Staff whose scope covers the event (and the office) see the suspicious check-ins grouped by source and
minute, and take them out of every count with one action (`exclude`), logged in `check_in_exclusion`
with who, when, which and how many, and undone with another (`undo`). Excluded check-ins drop out of
counting.visit_rows, so out of the live counts, the yearly report, the indicators and the exports.
docs/security.md ("Flooding an event's count") says why these numbers.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, func, update
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import Session, col, select

from server.auth import venue_scope_clause
from server.config import Settings
from server.db import begin_write
from server.errors import AppError, ErrorCode
from server.models import CheckIn, CheckInExclusion, Event, OrgUnit, Staff, Venue, utcnow
from server.services import audit, rollup, scans

MINUTE = timedelta(minutes=1)
HARD_LIMIT_FACTOR = 3
EXPECTED_SHARE = 10  # a tenth of the expected audience a minute: all of it within ten minutes


def source_of(settings: Settings, address: str | None) -> str:
    """The keyed hash (12 hex characters) of where a request came from: an IPv4 address, an IPv6 /64,
    or anything else as given ('' when unknown). The address itself is never stored."""
    raw = (address or "").strip()
    try:
        ip = ipaddress.ip_address(raw)
    except ValueError:
        network = raw
    else:
        if isinstance(ip, ipaddress.IPv6Address):
            mapped = ip.ipv4_mapped
            network = str(mapped) if mapped else str(ipaddress.IPv6Network(f"{ip}/64", strict=False))
        else:
            network = str(ip)
    mac = hmac.new(settings.secret_key.encode(), f"source:{network}".encode(), hashlib.sha256)
    return mac.hexdigest()[:12]


def budget(settings: Settings, event: Event) -> int:
    """New people one source may bring to the event in one minute before they are marked suspicious."""
    expected = math.ceil((event.expected_audience or 0) / EXPECTED_SHARE)
    return max(settings.flood_new_per_minute, expected)


def hard_limit(settings: Settings, event: Event) -> int:
    """New people one source may bring to the event in one minute at all (stored, suspicious or not)."""
    return HARD_LIMIT_FACTOR * budget(settings, event)


def minute_of(moment: datetime) -> datetime:
    return moment.replace(second=0, microsecond=0)


def admit_new_person(
    session: Session, settings: Settings, event: Event, address: str | None, now: datetime
) -> tuple[str, bool]:
    """The engine's check for a new person from an anonymous phone, inside its write lock on the event:
    the source to store and whether the check-in is suspicious (then the source's other new people of
    this minute are marked too). Over the hard limit: `checkin_busy`, with the seconds to wait."""
    source = source_of(settings, address)
    _one_admission_at_a_time(session, event, source)
    start = minute_of(now)
    same_minute = and_(
        col(CheckIn.event_id) == event.id,
        col(CheckIn.source) == source,
        col(CheckIn.received_at) >= start,
        col(CheckIn.received_at) < start + MINUTE,
    )
    stored = session.exec(select(func.count()).select_from(CheckIn).where(same_minute)).one()
    if stored >= hard_limit(settings, event):
        wait = max(1, math.ceil((start + MINUTE - now).total_seconds()))
        raise AppError(ErrorCode.checkin_busy, event=event, retry_after=wait)
    suspicious = stored >= budget(settings, event)
    if suspicious:
        session.execute(
            update(CheckIn).where(same_minute, col(CheckIn.suspicious).is_(False)).values(suspicious=True)
        )
    return source, suspicious


def _one_admission_at_a_time(session: Session, event: Event, source: str) -> None:
    """Check-ins at one event run side by side on PostgreSQL (they share the event's lock), so two new
    people from one source could both count the same number and pass the limit together: they queue on a
    lock of that event and source until their transaction ends. SQLite has one writer at a time anyway."""
    if session.get_bind().dialect.name != "postgresql":
        return
    digest = hashlib.blake2b(f"flood:{event.id}:{source}".encode(), digest_size=8).digest()
    key = int.from_bytes(digest, "big", signed=True)
    session.execute(select(func.pg_advisory_xact_lock(key)))


# --- What staff see, and the one action ---------------------------------------------------------------


@dataclass(frozen=True)
class Group:
    """The suspicious check-ins of one source in one minute of arrival."""

    source: str
    minute: datetime
    count: int
    excluded: int  # of them, taken out of the counts


@dataclass(frozen=True)
class Overview:
    groups: list[Group]
    suspicious: int
    excluded: int
    exclusions: list[tuple[CheckInExclusion, Staff, Staff | None]]  # the log, newest first


def overview(session: Session, event_id: int) -> Overview:
    """The event's suspicious check-ins by source and minute, and the log of exclusions."""
    rows = session.exec(
        select(CheckIn.source, CheckIn.received_at, CheckIn.excluded_by_id).where(
            CheckIn.event_id == event_id, col(CheckIn.suspicious).is_(True)
        )
    ).all()
    counts: dict[tuple[str, datetime], list[int]] = {}
    for source, received_at, excluded_by in rows:
        tally = counts.setdefault((source or "", minute_of(received_at)), [0, 0])
        tally[0] += 1
        tally[1] += excluded_by is not None
    groups = [
        Group(s, m, n, x) for (s, m), (n, x) in sorted(counts.items(), key=lambda i: (i[0][1], i[0][0]))
    ]
    log = []
    for exclusion in session.exec(
        select(CheckInExclusion)
        .where(CheckInExclusion.event_id == event_id)
        .order_by(col(CheckInExclusion.id).desc())
    ).all():
        by = session.get(Staff, exclusion.excluded_by_id)
        assert by is not None
        undone = session.get(Staff, exclusion.undone_by_id) if exclusion.undone_by_id else None
        log.append((exclusion, by, undone))
    return Overview(
        groups=groups,
        suspicious=sum(g.count for g in groups),
        excluded=sum(g.excluded for g in groups),
        exclusions=log,
    )


def exclude(
    session: Session,
    staff: Staff,
    event: Event,
    *,
    source: str | None = None,
    minute: datetime | None = None,
    now: datetime | None = None,
) -> CheckInExclusion:
    """Take the event's suspicious check-ins that still count (all, or one source's in one minute) out of
    every count, in one logged action. `event` must already be in the staff member's scope."""
    now = now or utcnow()
    begin_write(session)
    locked = scans.load_event(session, event.id or 0, lock=True, exclusive=True)  # no admission meanwhile
    assert locked is not None
    which: list[ColumnElement[bool]] = [
        col(CheckIn.event_id) == locked.id,
        col(CheckIn.suspicious).is_(True),
        col(CheckIn.excluded_by_id).is_(None),
    ]
    if source is not None:
        which.append(col(CheckIn.source) == source)
    if minute is not None:
        start = minute_of(minute)
        which += [col(CheckIn.received_at) >= start, col(CheckIn.received_at) < start + MINUTE]
    count = session.exec(select(func.count()).select_from(CheckIn).where(*which)).one()
    if not count:
        session.rollback()
        raise AppError(ErrorCode.conflict, "nothing suspicious left to exclude")
    exclusion = CheckInExclusion(
        event_id=locked.id or 0,
        source=source,
        minute=minute_of(minute) if minute else None,
        count=count,
        excluded_by_id=staff.id or 0,
        excluded_at=now,
    )
    session.add(exclusion)
    session.flush()
    session.execute(update(CheckIn).where(*which).values(excluded_by_id=exclusion.id))
    rollup.mark_stale(session, exclusion.event_id)  # its rolled-up counts no longer hold
    detail = {"event_id": exclusion.event_id, "count": count, "source": source}
    audit.record(
        session,
        staff,
        audit.Action.checkins_excluded,
        target_kind="exclusion",
        target_id=exclusion.id,
        detail=detail,
    )
    session.commit()
    return exclusion


def undo(
    session: Session, staff: Staff, event: Event, exclusion_id: int, *, now: datetime | None = None
) -> CheckInExclusion:
    """Put an exclusion's check-ins back into every count; the exclusion stays in the log, marked undone."""
    begin_write(session)
    exclusion = session.get(CheckInExclusion, exclusion_id, populate_existing=True)
    if exclusion is None or exclusion.event_id != event.id:
        session.rollback()
        raise AppError(ErrorCode.not_found)
    if exclusion.undone_at is not None:
        session.rollback()
        raise AppError(ErrorCode.conflict, "this exclusion was already undone")
    session.execute(
        update(CheckIn).where(col(CheckIn.excluded_by_id) == exclusion.id).values(excluded_by_id=None)
    )
    rollup.mark_stale(session, exclusion.event_id)
    exclusion.undone_by_id = staff.id
    exclusion.undone_at = now or utcnow()
    session.add(exclusion)
    detail = {"event_id": exclusion.event_id, "count": exclusion.count}
    audit.record(
        session,
        staff,
        audit.Action.exclusion_undone,
        target_kind="exclusion",
        target_id=exclusion.id,
        detail=detail,
    )
    session.commit()
    return exclusion


@dataclass(frozen=True)
class EventFlags:
    event: Event
    venue: Venue
    suspicious: int
    excluded: int


def events_with_flags(session: Session, staff: Staff, *, limit: int = 200) -> list[EventFlags]:
    """Events in the staff member's scope that have suspicious check-ins, the latest first (the office's
    list and the organizer's)."""
    excluded = func.count(col(CheckIn.excluded_by_id))
    rows = session.exec(
        select(Event, Venue, func.count(col(CheckIn.id)), excluded)
        .join(CheckIn, col(CheckIn.event_id) == Event.id)
        .join(Venue, col(Venue.id) == Event.venue_id)
        .join(OrgUnit, col(OrgUnit.id) == Venue.unit_id)
        .where(col(CheckIn.suspicious).is_(True), venue_scope_clause(session, staff))
        .group_by(col(Event.id), col(Venue.id))
        .order_by(col(Event.starts_at).desc())
        .limit(limit)
    ).all()
    return [EventFlags(e, v, int(n), int(x)) for e, v, n, x in rows]
