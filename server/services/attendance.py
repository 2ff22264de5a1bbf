"""Live attendance of one event: counts, breakdowns and the latest check-ins (counting.py: what counts)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, bindparam, func, null
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from server.models import (
    AgeBand,
    CheckIn,
    CheckInExclusion,
    Event,
    Gender,
    Headcount,
    OrgUnit,
    Participant,
    Staff,
    Venue,
)
from server.services import counting, names

E = TypeVar("E", bound=StrEnum)


@dataclass(frozen=True)
class LiveSummary:
    visits: int  # check-ins and walk-ins
    people: int  # distinct participants who checked in
    walk_ins: int  # counted at the door
    by_age: list[tuple[AgeBand | None, int]]  # None: walk-ins counted without an age band
    by_gender: list[tuple[Gender | None, int]]
    latest: list[tuple[CheckIn, str | None]]  # each with the name, if the staff member may see it
    version: str


def _count(table: Any, *where: Any) -> Any:
    """How many rows of the event a table holds: read from its index on event_id (an index-only scan)."""
    return (
        sa_select(func.count())
        .select_from(table)
        .where(table.c.event_id == bindparam("event_id"), *where)
        .scalar_subquery()
    )


# Built once: the organizer's page asks for it every second, and building the statement would cost more
# than running it.
_EXCLUSION = CheckInExclusion.__table__  # type: ignore[attr-defined]
_VERSION_COUNTS = (
    _count(CheckIn.__table__),  # type: ignore[attr-defined]
    _count(Headcount.__table__),  # type: ignore[attr-defined]
    _count(_EXCLUSION),
    _count(_EXCLUSION, _EXCLUSION.c.undone_at.is_not(None)),
)
_VERSION = sa_select(*_VERSION_COUNTS)
_VERSION_IN_SCOPE = (
    sa_select(*_VERSION_COUNTS)
    .select_from(Event)
    .join(Venue, col(Venue.id) == Event.venue_id)
    .join(OrgUnit, col(OrgUnit.id) == Venue.unit_id)
    .where(col(Event.id) == bindparam("event_id"))
)


def live_version(session: Session, event_id: int) -> str:
    """A cheap fingerprint of what the live counts depend on; it changes whenever a check-in or a headcount
    change is stored, and when suspicious check-ins are excluded from the counts or put back
    (services/flood.py). The organizer's page asks for it every second, so it is one statement over
    indexes: how many check-ins, headcount changes, exclusions and undone exclusions the event has. These
    rows are only ever added (an exclusion is undone by marking it), so a count goes up with every change;
    a count, unlike the highest id, also sees a lower id committed after a higher one on PostgreSQL, and
    needs neither the check-in rows nor a backward scan of the whole table's primary key."""
    return _fingerprint(session.execute(_VERSION, {"event_id": event_id}).one())


def live_version_in_scope(session: Session, event_id: int, scope: ColumnElement[bool]) -> str | None:
    """live_version, in the same statement as the check that the event exists and its venue lies in
    `scope` (auth.venue_scope_clause); None when it does not, and the caller loads the event the usual
    way, which raises the right error. The idle poll then loads no row at all."""
    row = session.execute(_VERSION_IN_SCOPE.where(scope), {"event_id": event_id}).first()
    return None if row is None else _fingerprint(row)


def _fingerprint(counts: Any) -> str:
    return ".".join(str(n) for n in counts)


def live_summary(
    session: Session, event_id: int, *, latest: int = 10, staff: Staff | None = None
) -> LiveSummary:
    """The event's counts and its `latest` check-ins, named only where `staff` may see the name."""
    rows = counting.visit_rows(col(CheckIn.event_id) == event_id, col(Headcount.event_id) == event_id)
    visits, people, walk_ins = counting.measures(rows)
    total_visits, total_people, total_walk_ins = session.execute(sa_select(visits, people, walk_ins)).one()

    def by(column: Any, kind: type[E]) -> list[tuple[E | None, int]]:
        counts: dict[Any, int] = {
            key: n for key, n in session.execute(sa_select(column, visits).group_by(column))
        }
        known: list[tuple[E | None, int]] = [(member, int(counts.get(member, 0))) for member in kind]
        return known + ([(None, int(counts[None]))] if counts.get(None) else [])

    recent = session.exec(
        select(CheckIn, names.shown_column(session, staff) if staff else null())
        .join(Participant, col(Participant.id) == CheckIn.participant_id)
        .where(CheckIn.event_id == event_id)
        .order_by(col(CheckIn.checked_in_at).desc(), col(CheckIn.id).desc())
        .limit(latest)
    ).all()
    return LiveSummary(
        visits=int(total_visits),
        people=int(total_people),
        walk_ins=int(total_walk_ins),
        by_age=by(rows.c.age_band, AgeBand),
        by_gender=by(rows.c.gender, Gender),
        latest=[(row, name) for row, name in recent],
        version=live_version(session, event_id),
    )
