"""Cells: counted records (counting.visit_rows) grouped by local day, kind, event and stored place.

A cell holds the visits (the sum of weights) and, for check-ins, roaring bitmaps of the participants:
plain, and with the age band or gender index in the high bits, so that the people of any age band or
gender are counted exactly. services/rollup.py keeps cells in visit_day; services/tally.py counts them.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime, tzinfo
from typing import Any

from pyroaring import BitMap
from sqlalchemy import String, type_coerce
from sqlalchemy import select as sa_select

from server.models import AgeBand, Gender, in_zone
from server.services import counting

SHIFT = 28  # ages/genders bitmaps hold index << SHIFT | participant id
AGES: tuple[AgeBand, ...] = tuple(AgeBand)
GENDERS: tuple[Gender, ...] = tuple(Gender)
_AGE_INDEX = {member.value: index for index, member in enumerate(AGES)}
_GENDER_INDEX = {member.value: index for index, member in enumerate(GENDERS)}

Key = tuple[date, str, int, int, str, int | None, int | None, str | None, str | None]


class Cell:
    """Counted records sharing a local day, kind, event and stored place (and a walk-in's age band and
    gender): a visit_day row, or records not rolled up yet. A stored row's bitmaps are read when used."""

    __slots__ = (
        "_maps",
        "_stored",
        "age_band",
        "commune_id",
        "day",
        "event_id",
        "gender",
        "kind",
        "venue_id",
        "venue_type",
        "village_id",
        "weight",
    )

    def __init__(
        self,
        day: date,
        kind: str,
        event_id: int,
        venue_id: int,
        venue_type: str,
        commune_id: int | None,
        village_id: int | None,
        age_band: str | None,  # walk-ins only: a check-in's is in `ages`
        gender: str | None,
        weight: int = 0,  # visits
        stored: tuple[bytes | None, bytes | None, bytes | None] = (None, None, None),
    ) -> None:
        self.day, self.kind, self.event_id, self.venue_id = day, kind, event_id, venue_id
        self.venue_type, self.commune_id, self.village_id = venue_type, commune_id, village_id
        self.age_band, self.gender, self.weight = age_band, gender, weight
        self._stored = stored
        self._maps: list[BitMap | None] = [None, None, None]

    def _map(self, index: int) -> BitMap:
        found = self._maps[index]
        if found is None:
            data = self._stored[index]
            found = self._maps[index] = BitMap.deserialize(data) if data else BitMap()
        return found

    @property
    def people(self) -> BitMap:
        """Check-ins: the participant ids."""
        return self._map(0)

    @property
    def ages(self) -> BitMap:
        """Check-ins: age band index << SHIFT | participant id."""
        return self._map(1)

    @property
    def genders(self) -> BitMap:
        """Check-ins: gender index << SHIFT | participant id."""
        return self._map(2)

    @property
    def key(self) -> Key:
        return (
            self.day,
            self.kind,
            self.event_id,
            self.venue_id,
            self.venue_type,
            self.commune_id,
            self.village_id,
            self.age_band,
            self.gender,
        )

    def merge(self, other: Cell) -> None:
        self.weight += other.weight
        self.people.update(other.people)
        self.ages.update(other.ages)
        self.genders.update(other.genders)


def as_stored(column: Any) -> Any:
    """The column as the driver hands it back, without SQLAlchemy's conversion per row (SQLite's text);
    read a time back with utc_instant."""
    return type_coerce(column, String)


def utc_instant(value: datetime | str) -> datetime:
    """An aware UTC datetime from a stored time: PostgreSQL's datetime or SQLite's 'YYYY-MM-DD HH:MM:SS'."""
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def rows_of(visits: Any) -> Any:
    """A SELECT of a counting.visit_rows subquery with the columns cells_of needs, as stored."""
    c = visits.c
    return sa_select(
        c.kind,
        c.weight,
        c.participant_id,
        as_stored(c.at).label("at"),
        c.event_id,
        c.venue_id,
        as_stored(c.venue_type).label("venue_type"),
        c.commune_id,
        c.village_id,
        as_stored(c.age_band).label("age_band"),
        as_stored(c.gender).label("gender"),
    )


def cells_of(rows: Iterable[Any], tz: tzinfo) -> dict[Key, Cell]:
    """Cells of the rows of rows_of(counting.visit_rows(...)), each on the local day of its time."""
    cells: dict[Key, Cell] = {}
    days: dict[Any, date] = {}  # every zone's offset is whole minutes: one conversion per minute
    for kind, weight, person, at, event_id, venue_id, venue_type, commune_id, village_id, age, gender in rows:
        minute = at[:16] if isinstance(at, str) else at.replace(second=0, microsecond=0)
        day = days.get(minute)
        if day is None:
            day = days[minute] = in_zone(utc_instant(at), tz).date()
        walk_in = kind == counting.WALK_IN
        key: Key = (
            day,
            kind,
            event_id,
            venue_id,
            venue_type,
            commune_id,
            village_id,
            age if walk_in else None,
            gender if walk_in else None,
        )
        cell = cells.get(key)
        if cell is None:
            cell = cells[key] = Cell(*key)
        cell.weight += weight
        if not walk_in:
            if person >> SHIFT:
                raise OverflowError(f"participant id {person} does not fit the rollup's bitmaps")
            cell.people.add(person)
            cell.ages.add(_AGE_INDEX[age] << SHIFT | person)
            cell.genders.add(_GENDER_INDEX[gender] << SHIFT | person)
    return cells
