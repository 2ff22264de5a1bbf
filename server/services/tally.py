"""Every table and indicator of a page from one reading of the kept aggregates (services/py).

A Tally holds the cells of one window and area; visits are sums of their weights, people the sizes of
unions of their roaring bitmaps (exact), walk-ins the weights of walk-in cells, as counting.measures defines
them. tally() reads once per window and area and keeps the result in the session until it writes, commits
or rolls back, so the report's tables and both years of every indicator share one reading.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, tzinfo
from typing import Any

from pyroaring import BitMap
from sqlalchemy import event
from sqlalchemy.orm import Session as OrmSession
from sqlmodel import Session

from server.services import counting
from server.services.areas import Area
from server.services.cells import AGES, GENDERS, SHIFT, Cell
from server.services.rollup import read, refresh, zone

_MEMO = "tally.memo"


@dataclass(frozen=True)
class Measure:
    """counting.measures over some cells: visits, distinct people and, of the visits, walk-ins."""

    visits: int = 0
    people: int = 0
    walk_ins: int = 0


def _people(bitmaps: list[BitMap]) -> int:
    if not bitmaps:
        return 0
    return len(bitmaps[0]) if len(bitmaps) == 1 else len(BitMap.union(*bitmaps))


class Tally:
    """The cells of one window and area, with every breakdown worked out in one pass over them."""

    def __init__(self, cells: list[Cell]) -> None:
        self.cells = cells

    def where(self, keep: Callable[[Cell], bool]) -> Tally:
        return Tally([cell for cell in self.cells if keep(cell)])

    def total(self) -> Measure:
        return self.by(lambda _cell: None).get(None, Measure())

    def visits_by(self, key: Callable[[Cell], Hashable]) -> dict[Any, int]:
        """Visits alone per value of `key` (no people: cheaper)."""
        visits: dict[Any, int] = defaultdict(int)
        for cell in self.cells:
            visits[key(cell)] += cell.weight
        return dict(visits)

    def by(self, key: Callable[[Cell], Hashable]) -> dict[Any, Measure]:
        """Visits, people and walk-ins per value of `key` (a person counts once in each value's row)."""
        visits: dict[Any, int] = defaultdict(int)
        walk_ins: dict[Any, int] = defaultdict(int)
        people: dict[Any, list[BitMap]] = defaultdict(list)
        for cell in self.cells:
            value = key(cell)
            visits[value] += cell.weight
            if cell.kind == counting.WALK_IN:
                walk_ins[value] += cell.weight
            else:
                people[value].append(cell.people)
        return {value: Measure(visits[value], _people(people[value]), walk_ins[value]) for value in visits}

    def by_age_band(self) -> dict[str | None, Measure]:
        return self._by_member("ages", "age_band", AGES)

    def by_gender(self) -> dict[str | None, Measure]:
        return self._by_member("genders", "gender", GENDERS)

    def _by_member(self, coded: str, named: str, members: Sequence[Any]) -> dict[str | None, Measure]:
        """A check-in's age band or gender is in the high bits of its cell's coded bitmap; a walk-in's is
        its cell's own (None: not recorded)."""
        visits: dict[str | None, int] = defaultdict(int)
        walk_ins: dict[str | None, int] = defaultdict(int)
        coded_maps: list[BitMap] = []
        ranges = [
            (member.value, index << SHIFT, (index + 1) << SHIFT) for index, member in enumerate(members)
        ]
        for cell in self.cells:
            if cell.kind == counting.WALK_IN:
                value = getattr(cell, named)
                visits[value] += cell.weight
                walk_ins[value] += cell.weight
                continue
            bitmap: BitMap = getattr(cell, coded)
            coded_maps.append(bitmap)
            for value, low, high in ranges:
                visits[value] += bitmap.range_cardinality(low, high)
        union = BitMap.union(*coded_maps) if coded_maps else BitMap()
        people: dict[str | None, int] = {
            value: union.range_cardinality(low, high) for value, low, high in ranges
        }
        return {
            value: Measure(visits[value], people.get(value, 0), walk_ins[value])
            for value in {*visits, *people}
            if visits[value] or people.get(value, 0)
        }


def tally(
    session: Session,
    start: date,
    end: date,
    bounds: tuple[datetime, datetime],
    area: Area | None,
    tz: tzinfo,
    events: frozenset[int] | None = None,
) -> Tally:
    """Every counted record of the local days start..end (`bounds` in UTC) in the area (and of these
    events), folding waiting records first; kept until the session writes, commits or rolls back, so a
    page's figures come from one reading."""
    memo = session_memo(session, "tallies")
    key = (start, end, bounds, None if area is None else area.unit_ids, zone(tz), events)
    if key not in memo:
        if not _writing(session):
            refresh(session, tz)
        memo[key] = Tally(read(session, start, end, bounds, area, tz, events))
    return memo[key]


def session_memo(session: Session, name: str) -> dict[Any, Any]:
    """A dict kept in the session until it writes, commits or rolls back: what a page has read once."""
    memos: dict[str, dict[Any, Any]] = session.info.setdefault(_MEMO, {})
    return memos.setdefault(name, {})


def _writing(session: Session) -> bool:
    """Whether the session holds SQLite's write lock (a fold in another session would wait for it)."""
    if session.get_bind().dialect.name != "sqlite" or not session.in_transaction():
        return False
    dbapi_connection = session.connection().connection.dbapi_connection
    return bool(dbapi_connection is not None and dbapi_connection.in_transaction)


@event.listens_for(OrmSession, "after_commit")
@event.listens_for(OrmSession, "after_rollback")
@event.listens_for(OrmSession, "after_flush")
def _forget(session: OrmSession, *_args: Any) -> None:
    """What a session read is kept only until it writes, commits or rolls back."""
    session.info.pop(_MEMO, None)
