"""What counts, defined once: live counts, yearly totals and exports all read visits and people here.

A **visit** is a check-in (weight 1) or a walk-in headcount change (weight +n/-n); a **person** is a distinct
participant of a check-in. Headcounts never add people. Both carry the place, age band and gender as they
were on the day, and the time of the visit (the claimed scan time, not when it reached the server). A
check-in that staff excluded as part of a flood (services/flood.py) counts nowhere until that is undone.
The reports read these rows through the kept aggregates of services/rollup.py, which are filled from
visit_rows alone.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, Integer, String, and_, cast, distinct, func, literal, null, union_all
from sqlalchemy import select as sa_select
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import col

from server.models import CheckIn, Headcount, VenueType
from server.services.areas import Area, record_clause

CHECK_IN = "check_in"
WALK_IN = "walk_in"


def visit_rows(check_ins: ColumnElement[bool], headcounts: ColumnElement[bool]) -> Any:
    """One row per check-in and per headcount change matching the two conditions, as a subquery with the
    columns kind, weight, participant_id, at, event_id, venue_id, venue_type, commune_id, age_band, gender,
    and for a per-record listing (exports) record_id, channel, late (NULL for a headcount) and village_id."""
    named: Any = sa_select(
        literal(CHECK_IN, String).label("kind"),
        literal(1, Integer).label("weight"),
        col(CheckIn.participant_id).label("participant_id"),
        col(CheckIn.checked_in_at).label("at"),
        col(CheckIn.event_id).label("event_id"),
        col(CheckIn.venue_id).label("venue_id"),
        col(CheckIn.venue_type).label("venue_type"),
        col(CheckIn.commune_id).label("commune_id"),
        col(CheckIn.age_band).label("age_band"),
        col(CheckIn.gender).label("gender"),
        col(CheckIn.id).label("record_id"),
        col(CheckIn.channel).label("channel"),
        col(CheckIn.late).label("late"),
        col(CheckIn.village_id).label("village_id"),
    ).where(check_ins, col(CheckIn.excluded_by_id).is_(None))  # a flood staff excluded (services/flood.py)
    counted: Any = sa_select(
        literal(WALK_IN, String).label("kind"),
        col(Headcount.delta).label("weight"),
        cast(null(), Integer).label("participant_id"),
        col(Headcount.counted_at).label("at"),
        col(Headcount.event_id).label("event_id"),
        col(Headcount.venue_id).label("venue_id"),
        col(Headcount.venue_type).label("venue_type"),
        col(Headcount.commune_id).label("commune_id"),
        col(Headcount.age_band).label("age_band"),
        col(Headcount.gender).label("gender"),
        col(Headcount.id).label("record_id"),
        col(Headcount.channel).label("channel"),
        cast(null(), Boolean).label("late"),
        col(Headcount.village_id).label("village_id"),
    ).where(headcounts)
    return union_all(named, counted).subquery("visits")


def measures(rows: Any) -> tuple[Any, Any, Any]:
    """visits, people and walk-ins over a visit_rows subquery (for a SELECT or a GROUP BY)."""
    visits = func.coalesce(func.sum(rows.c.weight), 0)
    people = func.count(distinct(rows.c.participant_id))
    walk_ins = func.coalesce(func.sum(rows.c.weight).filter(rows.c.kind == WALK_IN), 0)
    return visits, people, walk_ins


def window_clauses(start: datetime, stop: datetime) -> tuple[ColumnElement[bool], ColumnElement[bool]]:
    """The check-ins and the headcount changes made in [start, stop): by the claimed scan time and the
    time counted, never by when they reached the server (a late batch counts for its own day)."""
    return (
        and_(col(CheckIn.checked_in_at) >= start, col(CheckIn.checked_in_at) < stop),
        and_(col(Headcount.counted_at) >= start, col(Headcount.counted_at) < stop),
    )


def in_window(at: datetime, start: datetime, stop: datetime) -> bool:
    """window_clauses' rule for a row already read (`at`: its claimed scan time or time counted, aware)."""
    return start <= at < stop


def visits_in(
    start: datetime,
    stop: datetime,
    area: Area | None = None,
    venue_types: Collection[VenueType] | None = None,
) -> Any:
    """visit_rows for the window [start, stop), the area (by the place stored on each record) and the kinds
    of venue: what the live counts' neighbours, the yearly report, its exports and the indicators count."""
    models: tuple[type[CheckIn] | type[Headcount], ...] = (CheckIn, Headcount)
    clauses = []
    for model, in_window in zip(models, window_clauses(start, stop), strict=True):
        parts = [in_window]
        if area is not None and area.unit_ids is not None:
            parts.append(record_clause(model, area))
        if venue_types is not None:
            parts.append(col(model.venue_type).in_(list(venue_types)))
        clauses.append(and_(*parts))
    return visit_rows(clauses[0], clauses[1])
