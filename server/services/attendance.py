"""Live attendance of one event: counts, breakdowns and the latest check-ins."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func
from sqlmodel import Session, col, select

from server.models import AgeBand, CheckIn, Gender, Participant


@dataclass(frozen=True)
class LiveSummary:
    visits: int
    people: int
    by_age: list[tuple[AgeBand, int]]
    by_gender: list[tuple[Gender, int]]
    latest: list[tuple[CheckIn, Participant]]
    version: str


def live_version(session: Session, event_id: int) -> str:
    """A cheap fingerprint of the event's check-ins: it changes whenever one is added (any process)."""
    count, last_id = session.exec(
        select(func.count(col(CheckIn.id)), func.max(CheckIn.id)).where(CheckIn.event_id == event_id)
    ).one()
    return f"{count}.{last_id or 0}"


def live_summary(session: Session, event_id: int, *, latest: int = 10) -> LiveSummary:
    where = CheckIn.event_id == event_id
    visits, people, last_id = session.exec(
        select(
            func.count(col(CheckIn.id)),
            func.count(func.distinct(CheckIn.participant_id)),
            func.max(CheckIn.id),
        ).where(where)
    ).one()
    ages = dict(
        session.exec(select(CheckIn.age_band, func.count()).where(where).group_by(CheckIn.age_band)).all()
    )
    genders = dict(
        session.exec(select(CheckIn.gender, func.count()).where(where).group_by(CheckIn.gender)).all()
    )
    rows = session.exec(
        select(CheckIn, Participant)
        .join(Participant, col(Participant.id) == CheckIn.participant_id)
        .where(where)
        .order_by(col(CheckIn.checked_in_at).desc(), col(CheckIn.id).desc())
        .limit(latest)
    ).all()
    return LiveSummary(
        visits=visits,
        people=people,
        by_age=[(band, ages.get(band, 0)) for band in AgeBand],
        by_gender=[(gender, genders.get(gender, 0)) for gender in Gender],
        latest=list(rows),
        version=f"{visits}.{last_id or 0}",
    )
