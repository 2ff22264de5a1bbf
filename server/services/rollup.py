"""Kept aggregates of what counts (visit_day), always equal to a recount of counting.visit_rows.

The yearly report and the indicator page need visits and *distinct* people by commune, venue, type, month,
age band and gender over a year of records. Counting them from the records takes a COUNT(DISTINCT) scan per
breakdown; here the records are rolled up once into `visit_day`: per local day, kind, event and stored place
the visits and, for check-ins, a roaring bitmap of the participants (pyroaring), so any breakdown's people
are the size of a union of bitmaps: exact, never estimated.

- **One rule.** Records reach visit_day only through counting.visit_rows, and what is not rolled up yet is
  read through it too, so what counts is still defined once (an excluded flood check-in, a headcount's
  weight, the claimed scan time).
- **Catching up at read time.** visit_day holds the counted records with ids up to a watermark per table
  (visit_day_state). A read adds every record above the watermark from the records themselves, so a new
  check-in counts at once; once `FOLD_AT` records wait, the read folds them in first. A record is folded
  only when it and every record before it arrived over `MARGIN` ago: on PostgreSQL an id can commit after
  a larger one, and a transaction open that long does not happen, so nothing can appear below the mark.
- **Late batches** count for the local day of their scan, like any record (the key is that day).
- **Changed records.** Only a flood exclusion and its undoing change a stored check-in's count; they call
  `mark_stale(event)`, and the event is read from the records until the next fold rebuilds its rows.
  Cancelling an event, moving units (records keep their place, venues are looked up at read time),
  erasing a person (the check-in keeps its participant id) change no stored count.
- **Cells** (services/cells.py) are the unit kept and read.
- **Consistency.** A read takes the watermarks, reads visit_day and the records above them, and reads the
  state again; a fold in between (its version moves) makes it read again.

services/tally.py works the breakdowns out of what `read` returns.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta, tzinfo
from typing import Any

from pyroaring import BitMap
from sqlalchemy import and_, delete, func, insert, text, update
from sqlalchemy import select as sa_select
from sqlmodel import Session, col

from server.models import (
    AgeBand,
    CheckIn,
    Gender,
    Headcount,
    VenueType,
    VisitDay,
    VisitDayStale,
    VisitDayState,
    utcnow,
)
from server.services import counting
from server.services.areas import Area, record_clause
from server.services.cells import Cell, Key, as_stored, cells_of, rows_of, utc_instant

log = logging.getLogger("diemdanh.rollup")

FOLD_AT = 2_000  # records waiting above the watermark before a read folds them in
CHUNK = 100_000  # records folded in one write transaction
MARGIN = timedelta(minutes=10)  # a record is folded only when it and those before it arrived this long ago
_LOCK_KEY = 0x7669_7369  # PostgreSQL advisory lock of the fold ("visi")


def mark_stale(session: Session, event_id: int) -> None:
    """The event's counted check-ins changed (an exclusion or its undoing): until the next fold rebuilds its
    rows, read it from the records. Call in the transaction that makes the change."""
    session.add(VisitDayStale(event_id=event_id))


# --- folding -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _State:
    zone_ok: bool  # visit_day exists and is kept in the time zone asked for
    version: int
    check_in_id: int
    headcount_id: int
    marks: tuple[tuple[int, int], ...]  # (mark id, event id)


def zone(tz: tzinfo) -> str:
    """The name a time zone is kept under (visit_day_state.tz)."""
    return str(getattr(tz, "key", tz))


def _state(session: Session, tz: tzinfo) -> _State:
    """The watermarks (0 when visit_day is empty or kept in another time zone) and the stale marks."""
    row = session.execute(
        sa_select(
            col(VisitDayState.tz),
            col(VisitDayState.version),
            col(VisitDayState.check_in_id),
            col(VisitDayState.headcount_id),
        ).where(col(VisitDayState.id) == 1)
    ).first()
    marks = tuple(
        (int(i), int(e))
        for i, e in session.execute(sa_select(col(VisitDayStale.id), col(VisitDayStale.event_id)))
    )
    if row is None:
        return _State(False, -1, 0, 0, marks)
    kept_in, version, check_ins, headcounts = row
    if kept_in != zone(tz):
        return _State(False, int(version), 0, 0, marks)
    return _State(True, int(version), int(check_ins), int(headcounts), marks)


def _foldable(session: Session, model: type[CheckIn] | type[Headcount], above: int, horizon: datetime) -> int:
    """The largest id up to which every record above `above` arrived before `horizon` (at most CHUNK)."""
    young = session.execute(
        sa_select(func.min(col(model.id))).where(col(model.id) > above, col(model.received_at) >= horizon)
    ).scalar()
    newest = session.execute(sa_select(func.max(col(model.id)))).scalar() or 0
    upper = min(newest, above + CHUNK)
    if young is not None:
        upper = min(upper, int(young) - 1)
    return max(upper, above)


def refresh(session: Session, tz: tzinfo, *, now: datetime | None = None, fold_at: int = FOLD_AT) -> bool:
    """Fold waiting records into visit_day and rebuild stale events, when `fold_at` records or more wait
    (or any event is stale, or visit_day is kept in another time zone). Runs in its own session and
    transactions; returns whether anything was folded. Readers are exact either way."""
    bind = session.get_bind()
    with Session(bind, expire_on_commit=False) as own:
        folded = False
        while _fold_once(own, tz, now or utcnow(), fold_at):
            folded = True
        return folded


def _fold_once(session: Session, tz: tzinfo, now: datetime, fold_at: int) -> bool:
    state = _state(session, tz)
    zone_ok = state.zone_ok
    newest_c = session.execute(sa_select(func.max(col(CheckIn.id)))).scalar() or 0
    newest_h = session.execute(sa_select(func.max(col(Headcount.id)))).scalar() or 0
    waiting = (newest_c - state.check_in_id) + (newest_h - state.headcount_id)
    if not waiting and not state.marks and (zone_ok or not newest_c + newest_h):
        session.rollback()  # nothing to fold (an empty database stays without a row: backup.is_empty)
        return False
    if zone_ok and not state.marks and waiting < max(fold_at, 1):
        session.rollback()
        return False
    horizon = now - MARGIN
    upper_c = _foldable(session, CheckIn, state.check_in_id, horizon)
    upper_h = _foldable(session, Headcount, state.headcount_id, horizon)
    stale = sorted({event_id for _mark, event_id in state.marks})
    fresh = cells_of(
        session.execute(
            rows_of(
                counting.visit_rows(
                    and_(col(CheckIn.id) > state.check_in_id, col(CheckIn.id) <= upper_c),
                    and_(col(Headcount.id) > state.headcount_id, col(Headcount.id) <= upper_h),
                )
            )
        ),
        tz,
    )
    rebuilt: dict[Key, Cell] = {}
    for part in _chunks(stale):
        rows = counting.visit_rows(
            and_(col(CheckIn.event_id).in_(part), col(CheckIn.id) <= state.check_in_id),
            and_(col(Headcount.event_id).in_(part), col(Headcount.id) <= state.headcount_id),
        )
        rebuilt.update(cells_of(session.execute(rows_of(rows)), tz))
    session.rollback()
    if not zone_ok or upper_c > state.check_in_id or upper_h > state.headcount_id or stale:
        return _write(session, tz, state, zone_ok, fresh, rebuilt, stale, (upper_c, upper_h))
    return False


def _lock(session: Session) -> None:
    """One fold at a time: SQLite's write lock, or a PostgreSQL advisory lock held to the commit."""
    if session.get_bind().dialect.name == "sqlite":
        from server.db import begin_write

        begin_write(session)
    else:
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _LOCK_KEY})


def _write(
    session: Session,
    tz: tzinfo,
    state: _State,
    zone_ok: bool,
    fresh: dict[Key, Cell],
    rebuilt: dict[Key, Cell],
    stale: Sequence[int],
    upper: tuple[int, int],
) -> bool:
    _lock(session)
    if _state(session, tz) != state:  # another process folded meanwhile: it did this work
        session.rollback()
        return False
    if not zone_ok:
        session.execute(delete(VisitDay))
    for part in _chunks(stale):
        session.execute(delete(VisitDay).where(col(VisitDay.event_id).in_(part)))
    for cell in rebuilt.values():
        fresh.setdefault(cell.key, Cell(*cell.key)).merge(cell)
    existing: dict[Key, tuple[int, Cell]] = {}
    for part in _chunks(sorted({cell.event_id for cell in fresh.values()})):
        for row_id, cell in _stored_cells(session, col(VisitDay.event_id).in_(part)):
            existing[cell.key] = (row_id, cell)
    inserts, updates = [], []
    for key, cell in fresh.items():
        if key in existing:
            row_id, old = existing[key]
            old.merge(cell)
            updates.append({"id": row_id, **_values(old)})
        else:
            inserts.append(_values(cell))
    if inserts:
        session.execute(insert(VisitDay), inserts)
    if updates:
        session.execute(update(VisitDay), updates)
    marks = [mark for mark, _event in state.marks]
    for part in _chunks(marks):
        session.execute(delete(VisitDayStale).where(col(VisitDayStale.id).in_(part)))
    session.merge(
        VisitDayState(
            id=1, tz=zone(tz), version=state.version + 1, check_in_id=upper[0], headcount_id=upper[1]
        )
    )
    session.commit()
    log.info("visit_day: folded up to check-in %s and headcount %s, rebuilt %d events", *upper, len(stale))
    return True


def _chunks(ids: Sequence[int], size: int = 500) -> Iterable[Sequence[int]]:
    for start in range(0, len(ids), size):
        yield ids[start : start + size]


def _values(cell: Cell) -> dict[str, Any]:
    check_in = cell.kind == counting.CHECK_IN
    return {
        "day": cell.day,
        "kind": cell.kind,
        "event_id": cell.event_id,
        "venue_id": cell.venue_id,
        "venue_type": VenueType(cell.venue_type),
        "commune_id": cell.commune_id,
        "village_id": cell.village_id,
        "age_band": None if cell.age_band is None else AgeBand(cell.age_band),
        "gender": None if cell.gender is None else Gender(cell.gender),
        "weight": cell.weight,
        "people": _serialized(cell.people) if check_in else None,
        "ages": _serialized(cell.ages) if check_in else None,
        "genders": _serialized(cell.genders) if check_in else None,
    }


def _serialized(bitmap: BitMap) -> bytes:
    bitmap.run_optimize()
    return bytes(bitmap.serialize())


_ROW_COLUMNS = (
    col(VisitDay.id),
    as_stored(col(VisitDay.day)),
    col(VisitDay.kind),
    col(VisitDay.event_id),
    col(VisitDay.venue_id),
    as_stored(col(VisitDay.venue_type)),
    col(VisitDay.commune_id),
    col(VisitDay.village_id),
    as_stored(col(VisitDay.age_band)),
    as_stored(col(VisitDay.gender)),
    col(VisitDay.weight),
    col(VisitDay.people),
    col(VisitDay.ages),
    col(VisitDay.genders),
)


def _stored_cells(session: Session, *where: Any) -> Iterable[tuple[int, Cell]]:
    """(row id, cell) of the visit_day rows matching `where`, their bitmaps read when used."""
    for row in session.execute(sa_select(*_ROW_COLUMNS).where(*where)):
        row_id, day, kind, event_id, venue_id, venue_type, commune_id, village_id, age, gender, weight = row[
            :11
        ]
        if isinstance(day, str):  # SQLite's text, when the driver hands it back as stored
            day = date.fromisoformat(day)
        cell = Cell(
            day, kind, event_id, venue_id, venue_type, commune_id, village_id, age, gender, weight, row[11:]
        )
        yield row_id, cell


# --- reading -----------------------------------------------------------------------------------------------


def read(
    session: Session,
    start: date,
    end: date,
    bounds: tuple[datetime, datetime],
    area: Area | None,
    tz: tzinfo,
    events: frozenset[int] | None = None,
) -> list[Cell]:
    """Every counted record of the local days start..end (`bounds`: the same window in UTC) in the area
    (and of these events), as cells: visit_day's rows plus the records above its watermarks and those of
    stale events."""
    while True:
        before = _state(session, tz)
        cells = _read(session, before, start, end, bounds, area, tz, events)
        if _state(session, tz) == before:
            return cells


def _read(
    session: Session,
    state: _State,
    start: date,
    end: date,
    bounds: tuple[datetime, datetime],
    area: Area | None,
    tz: tzinfo,
    events: frozenset[int] | None,
) -> list[Cell]:
    stale = sorted({event_id for _mark, event_id in state.marks})
    in_check_ins, in_headcounts = counting.window_clauses(*bounds)
    check_ins: list[Any] = []
    headcounts: list[Any] = []
    kept = [col(VisitDay.day) >= start, col(VisitDay.day) <= end, col(VisitDay.event_id).not_in(stale)]
    if events is not None:
        check_ins.append(col(CheckIn.event_id).in_(sorted(events)))
        headcounts.append(col(Headcount.event_id).in_(sorted(events)))
        kept.append(col(VisitDay.event_id).in_(sorted(events)))
    if area is not None and area.unit_ids is not None:
        check_ins.append(record_clause(CheckIn, area))
        headcounts.append(record_clause(Headcount, area))
    # The records above the watermark, found by their ids: with the window in the statement, a planner
    # that has statistics (SQLite after ANALYZE) walks the whole year's index instead, so the window is
    # applied to these few rows as they are read (counting.in_window). With nothing rolled up yet, it is
    # a whole reading, window included.
    rolled_up = state.check_in_id or state.headcount_id
    newest = counting.visit_rows(
        and_(*check_ins, *([] if rolled_up else [in_check_ins]), col(CheckIn.id) > state.check_in_id),
        and_(*headcounts, *([] if rolled_up else [in_headcounts]), col(Headcount.id) > state.headcount_id),
    )
    found = [
        row for row in session.execute(rows_of(newest)) if counting.in_window(utc_instant(row.at), *bounds)
    ]
    if stale:  # a second reading, rather than an OR that would walk every uncounted record of the year
        records = counting.visit_rows(
            and_(
                *check_ins,
                in_check_ins,
                col(CheckIn.event_id).in_(stale),
                col(CheckIn.id) <= state.check_in_id,
            ),
            and_(
                *headcounts,
                in_headcounts,
                col(Headcount.event_id).in_(stale),
                col(Headcount.id) <= state.headcount_id,
            ),
        )
        found += session.execute(rows_of(records))
    cells = list(cells_of(found, tz).values())
    if not state.zone_ok:
        return cells
    if area is not None and area.unit_ids is not None:
        kept.append(record_clause(VisitDay, area))
    cells += [cell for _row_id, cell in _stored_cells(session, *kept)]
    return cells
