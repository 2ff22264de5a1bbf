"""Live attendance of one event: counts, breakdowns and the latest check-ins (counting.py: what counts)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any, TypeVar

from sqlalchemy import func, null
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from server.models import AgeBand, CheckIn, Gender, Headcount, Participant, Staff
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


def live_version(session: Session, event_id: int) -> str:
    """A cheap fingerprint of the event's check-ins and headcounts: it changes whenever one is added, and
    when suspicious check-ins are excluded from the counts or put back (services/flood.py)."""
    last_count = select(func.max(Headcount.id)).where(Headcount.event_id == event_id).scalar_subquery()
    count, last_id, excluded, last_change = session.exec(
        select(
            func.count(col(CheckIn.id)),
            func.max(CheckIn.id),
            func.count(col(CheckIn.excluded_by_id)),
            last_count,
        ).where(CheckIn.event_id == event_id)
    ).one()
    return f"{count}.{last_id or 0}.{excluded}.{last_change or 0}"


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
