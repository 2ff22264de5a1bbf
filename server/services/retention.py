"""The retention period: identifying data of people not seen for `settings.retention_years` whole
statistical years (1/1-31/12, the year the reports count by) is removed, the counts stay.

A participant last active (a check-in, a card or phone given, or registered) in year Y keeps their name
until the end of year Y + N, N = DIEMDANH_RETENTION_YEARS: the report of year Y is sent by 15/11 of Y and
closes with the year, and N more years leave room for corrections and next year's comparison (growth
needs last year's distinct people, which counts people, not names). What goes is what `rights.erase`
removes: name, home, consent, every card and phone credential and club rosters. Age band and gender stay on
the participant (and on each check-in), as the reports need them and alone they identify nobody.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Any

from sqlalchemy import exists, or_
from sqlmodel import Session, col, select

from server.config import Settings
from server.models import CheckIn, ClubMember, Credential, Participant, utcnow
from server.services import audit, rights

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RetentionResult:
    cutoff: date  # people with no activity since this day (local) lose their identifying data
    found: int
    erased: int  # 0 in a dry run


def cutoff_day(today: date, years: int) -> date:
    """1/1 of the first year still kept: with 2 years, on any day of 2027 people last seen in 2024 go."""
    return date(today.year - years, 1, 1)


def _due(cutoff: datetime) -> Any:
    """Participants not yet erased, holding something identifying, with nothing at or after the cut-off."""
    recent_visit = exists().where(
        col(CheckIn.participant_id) == Participant.id, col(CheckIn.checked_in_at) >= cutoff
    )
    recent_credential = exists().where(
        col(Credential.participant_id) == Participant.id, col(Credential.issued_at) >= cutoff
    )
    holds = or_(
        col(Participant.name).is_not(None),
        col(Participant.home_unit_id).is_not(None),
        col(Participant.consent_at).is_not(None),
        exists().where(col(Credential.participant_id) == Participant.id),
        exists().where(col(ClubMember.participant_id) == Participant.id),
    )
    return (
        select(Participant)
        .where(
            col(Participant.erased_at).is_(None),
            col(Participant.created_at) < cutoff,
            ~recent_visit,
            ~recent_credential,
            holds,
        )
        .order_by(col(Participant.id))
    )


def run(
    session: Session, settings: Settings, *, today: date, dry_run: bool = False, now: datetime | None = None
) -> RetentionResult:
    """Erase the identifying data of everyone due (or only count them, `dry_run`). Idempotent: an erased
    participant is never due again. Logged (and in the audit log) when anything was erased."""
    now = now or utcnow()
    day = cutoff_day(today, settings.retention_years)
    cutoff = datetime.combine(day, time(), settings.tz)
    due = list(session.exec(_due(cutoff)).all())
    if dry_run or not due:
        session.rollback()
        return RetentionResult(day, len(due), 0)
    for participant in due:
        rights.erase(session, participant, now)
    detail = {"cutoff": day, "participants": len(due), "years": settings.retention_years}
    audit.record(session, None, audit.Action.retention_run, detail=detail, now=now)
    session.commit()
    log.info("retention: identifying data of %d participants last seen before %s removed", len(due), day)
    return RetentionResult(day, len(due), len(due))
