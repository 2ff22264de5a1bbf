"""The kept aggregates (services/rollup.py) always equal a naive recount of counting.visit_rows.

A randomised history (check-ins, late batches typed in days later, walk-in counts up and down, flood
exclusions and their undoing, cancellations, venues moved to another commune, people erased) is played
step by step, with folds at random moments (some while the newest records are still inside the margin);
after every step each breakdown of the fast path is compared with a recount in Python over the rows of
counting.visits_in: visits, distinct people and walk-ins.
"""

from __future__ import annotations

import dataclasses
import random
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from server.config import Settings
from server.models import (
    AgeBand,
    Channel,
    CheckIn,
    CheckInExclusion,
    Event,
    Gender,
    Headcount,
    OrgUnit,
    Role,
    UnitKind,
    Venue,
    VenueType,
    VisitDay,
    VisitDayState,
    in_zone,
)
from server.services import areas, counting, events, flood, reports, rights, rollup, tally
from server.services.areas import Area
from tests.factories import make_event, make_participant, make_staff, make_tree, make_unit, make_venue

Measured = dict[Any, tuple[int, int, int]]
DIMENSIONS: dict[str, Callable[[Any], Any]] = {
    "total": lambda r: None,
    "commune": lambda r: r.commune_id,
    "village": lambda r: r.village_id,
    "venue": lambda r: r.venue_id,
    "venue_type": lambda r: r.venue_type,
    "event": lambda r: r.event_id,
}


def _clean(measured: Measured) -> Measured:
    return {key: value for key, value in measured.items() if any(value)}


def naive(
    session: Session, window: reports.ReportWindow, area: Area, settings: Settings
) -> dict[str, Measured]:
    """Every breakdown recounted in Python from the rows of counting.visits_in (the one definition)."""
    rows = session.execute(sa_select(counting.visits_in(*window.bounds(settings.tz), area))).all()
    out: dict[str, Measured] = {}
    keys: dict[str, Callable[[Any], Any]] = {
        **DIMENSIONS,
        "day": lambda r: in_zone(r.at, settings.tz).date(),
        "age_band": lambda r: None if r.age_band is None else str(r.age_band),
        "gender": lambda r: None if r.gender is None else str(r.gender),
    }
    for name, key in keys.items():
        visits: dict[Any, int] = defaultdict(int)
        people: dict[Any, set[int]] = defaultdict(set)
        walk_ins: dict[Any, int] = defaultdict(int)
        for row in rows:
            value = key(row)
            if name == "venue_type":
                value = str(value)
            visits[value] += row.weight
            if row.kind == counting.WALK_IN:
                walk_ins[value] += row.weight
            else:
                people[value].add(row.participant_id)
        out[name] = _clean({v: (visits[v], len(people[v]), walk_ins[v]) for v in visits})
    return out


def fast(
    session: Session, window: reports.ReportWindow, area: Area, settings: Settings
) -> dict[str, Measured]:
    """The same breakdowns from the kept aggregates (a new reading, folding first when due)."""
    session.rollback()
    counted = reports.window_tally(session, window, area, settings.tz)

    def measured(by: dict[Any, tally.Measure]) -> Measured:
        return _clean({k: (m.visits, m.people, m.walk_ins) for k, m in by.items()})

    out = {name: measured(counted.by(key)) for name, key in DIMENSIONS.items()}
    out["day"] = measured(counted.by(lambda c: c.day))
    out["age_band"] = measured(counted.by_age_band())
    out["gender"] = measured(counted.by_gender())
    return out


class History:
    """A small province whose records change at random, one step at a time."""

    def __init__(self, session: Session, settings: Settings, seed: int) -> None:
        self.session, self.settings, self.rng = session, settings, random.Random(seed)
        tree = make_tree(session)
        self.tree = tree
        self.second_village = make_unit(session, UnitKind.village, tree["other"], name="Thôn Nà Lầu")
        self.admin = make_staff(session, Role.admin)
        self.venues = [
            make_venue(session, tree["commune"], type=VenueType.commune_library),
            make_venue(session, tree["village"], type=VenueType.village_cultural_house),
            make_venue(session, tree["province"], type=VenueType.provincial_library),
            make_venue(session, tree["other"], type=VenueType.school_library),
        ]
        self.people = [
            make_participant(
                session, age_band=self.rng.choice(list(AgeBand)), gender=self.rng.choice(list(Gender))
            )
            for _ in range(14)
        ]
        self.events: list[Event] = []
        for n in range(7):
            venue = self.rng.choice(self.venues)
            # Local evenings that run past midnight, whole days, and an exhibition over a week.
            starts = datetime(2025, self.rng.randint(1, 12), self.rng.randint(1, 28), 15, 30, tzinfo=UTC)
            hours = self.rng.choice([2, 9, 30, 24 * 7])
            self.events.append(
                make_event(
                    session, venue, starts_at=starts, ends_at=starts + timedelta(hours=hours), title=f"E{n}"
                )
            )
        self.clock = datetime(2026, 1, 2, tzinfo=UTC)  # the server's "now" as records arrive
        self.n = 0

    def _place(self, venue: Venue) -> tuple[int | None, int | None]:
        unit = self.session.get(OrgUnit, venue.unit_id)
        assert unit is not None
        if unit.kind == UnitKind.village:
            return unit.parent_id, unit.id
        if unit.kind == UnitKind.commune:
            return unit.id, None
        return None, None

    def _at(self, event: Event) -> datetime:
        span = (event.ends_at - event.starts_at).total_seconds()
        return event.starts_at + timedelta(seconds=self.rng.uniform(0, span))

    def check_ins(self) -> None:
        """A batch for one event: on time, or a paper register typed in days later (a late batch)."""
        event = self.rng.choice(self.events)
        venue = self.session.get(Venue, event.venue_id)
        assert venue is not None
        taken = set(self.session.exec(select(CheckIn.participant_id).where(CheckIn.event_id == event.id)))
        free = [p for p in self.people if p.id not in taken]
        commune_id, village_id = self._place(venue)
        late = self.rng.random() < 0.4
        for person in self.rng.sample(free, min(len(free), self.rng.randint(1, 5))):
            self.n += 1
            at = self._at(event)
            self.session.add(
                CheckIn(
                    event_id=event.id or 0,
                    participant_id=person.id or 0,
                    nonce=f"rollup-{self.n}",
                    channel=Channel.batch if late else Channel.page,
                    checked_in_at=at,
                    received_at=self.clock + timedelta(days=3 if late else 0),
                    late=late,
                    venue_id=venue.id or 0,
                    venue_type=venue.type,
                    commune_id=commune_id,
                    village_id=village_id,
                    age_band=self.rng.choice(list(AgeBand)),  # as on that day: it may differ between visits
                    gender=person.gender,
                    source="s1" if self.rng.random() < 0.3 else None,
                    suspicious=self.rng.random() < 0.3,
                )
            )
        self.session.commit()

    def headcount(self) -> None:
        event = self.rng.choice(self.events)
        venue = self.session.get(Venue, event.venue_id)
        assert venue is not None
        commune_id, village_id = self._place(venue)
        self.n += 1
        self.session.add(
            Headcount(
                event_id=event.id or 0,
                delta=self.rng.choice([-2, -1, 1, 2, 5]),
                age_band=self.rng.choice([None, *AgeBand]),
                gender=self.rng.choice([None, *Gender]),
                nonce=f"rollup-h{self.n}",
                fingerprint="x",
                channel=Channel.staff_form,
                counted_at=self._at(event),
                received_at=self.clock,
                venue_id=venue.id or 0,
                venue_type=venue.type,
                commune_id=commune_id,
                village_id=village_id,
            )
        )
        self.session.commit()

    def exclude(self) -> None:
        flagged = self.session.exec(
            select(CheckIn.event_id).where(
                col(CheckIn.suspicious).is_(True), col(CheckIn.excluded_by_id).is_(None)
            )
        ).first()
        if flagged is not None:
            flood.exclude(self.session, self.admin, self._event(flagged), now=self.clock)

    def undo(self) -> None:
        open_ = self.session.exec(
            select(CheckInExclusion).where(col(CheckInExclusion.undone_at).is_(None))
        ).first()
        if open_ is not None:
            flood.undo(self.session, self.admin, self._event(open_.event_id), open_.id or 0, now=self.clock)

    def cancel(self) -> None:
        events.cancel_event(self.session, self._event(self.rng.choice(self.events).id or 0), now=self.clock)

    def move(self) -> None:
        """A venue now stands in another unit; its stored records keep their place."""
        venue = self.session.get(Venue, self.rng.choice(self.venues).id)
        assert venue is not None
        venue.unit_id = (
            self.rng.choice(
                [self.tree["commune"], self.tree["other"], self.tree["province"], self.second_village]
            ).id
            or 0
        )
        self.session.add(venue)
        self.session.commit()

    def erase(self) -> None:
        rights.delete(self.session, self.admin, self.rng.choice(self.people), now=self.clock)

    def fold(self) -> None:
        # Sometimes "now" is so close to the last arrivals that they stay inside the margin, unfolded.
        rollup.refresh(
            self.session,
            self.settings.tz,
            now=self.clock + timedelta(minutes=self.rng.choice([1, 30])),
            fold_at=self.rng.choice([1, 3, 50]),
        )

    def _event(self, event_id: int) -> Event:
        event = self.session.get(Event, event_id, populate_existing=True)
        assert event is not None
        return event

    def step(self) -> str:
        name = self.rng.choices(
            ["check_ins", "headcount", "exclude", "undo", "cancel", "move", "erase", "fold"],
            weights=[6, 2, 1, 1, 1, 1, 1, 4],
        )[0]
        getattr(self, name)()
        self.clock += timedelta(minutes=self.rng.choice([1, 5, 60, 60 * 24]))
        return name


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_kept_aggregates_always_equal_a_recount(session: Session, settings: Settings, seed: int) -> None:
    history = History(session, settings, seed)
    year = reports.report_window(2025, until=None, today=date(2026, 1, 15))
    part = reports.report_window(2025, until=date(2025, 6, 30), today=date(2026, 1, 15))
    views = [
        (year, areas.resolve_area(session, history.admin, "")),
        (year, areas.resolve_area(session, history.admin, f"u:{history.tree['commune'].id}")),
        (part, areas.resolve_area(session, history.admin, f"u:{history.tree['other'].id}")),
    ]
    done: list[str] = []
    for _ in range(45):
        done.append(history.step())
        for window, area in views:
            assert fast(session, window, area, settings) == naive(session, window, area, settings), done
    assert session.exec(select(VisitDay)).first() is not None  # the folds did roll records up
    assert {"check_ins", "fold"} <= set(done)


def test_a_record_inside_the_margin_counts_at_once_and_is_folded_later(
    session: Session, settings: Settings
) -> None:
    """Ids can commit out of order on PostgreSQL: a record that arrived less than the margin ago is read from
    the records, not folded, so one committing below it later cannot be missed."""
    history = History(session, settings, 7)
    for _ in range(3):
        history.check_ins()
    newest = session.exec(select(CheckIn).order_by(col(CheckIn.id).desc())).first()
    assert newest is not None
    window = reports.report_window(2025, until=None, today=date(2026, 1, 15))
    everywhere = areas.resolve_area(session, history.admin, "")
    rollup.refresh(session, settings.tz, now=newest.received_at + timedelta(minutes=1), fold_at=1)
    state = session.get(VisitDayState, 1, populate_existing=True)
    assert state is None or state.check_in_id < (newest.id or 0)
    assert fast(session, window, everywhere, settings) == naive(session, window, everywhere, settings)
    rollup.refresh(
        session, settings.tz, now=newest.received_at + rollup.MARGIN + timedelta(minutes=1), fold_at=1
    )
    state = session.get(VisitDayState, 1, populate_existing=True)
    assert state is not None and state.check_in_id == newest.id
    assert fast(session, window, everywhere, settings) == naive(session, window, everywhere, settings)


def test_another_time_zone_rebuilds_the_days(session: Session, settings: Settings) -> None:
    """visit_day keeps local days: kept for one zone, it is not read for another, which rebuilds it."""
    history = History(session, settings, 11)
    for _ in range(4):
        history.check_ins()
    rollup.refresh(session, settings.tz, now=history.clock + timedelta(days=9), fold_at=1)
    other = dataclasses.replace(settings, timezone="UTC")
    window = reports.report_window(2025, until=None, today=date(2026, 1, 15))
    everywhere = areas.resolve_area(session, history.admin, "")
    assert fast(session, window, everywhere, other) == naive(session, window, everywhere, other)
    rollup.refresh(session, other.tz, now=history.clock + timedelta(days=9), fold_at=1)
    state = session.get(VisitDayState, 1, populate_existing=True)
    assert state is not None and state.tz == str(getattr(other.tz, "key", other.tz))
    assert fast(session, window, everywhere, other) == naive(session, window, everywhere, other)
    assert fast(session, window, everywhere, settings) == naive(session, window, everywhere, settings)


def test_yearly_totals_and_participants_are_those_of_the_recount(
    session: Session, settings: Settings
) -> None:
    history = History(session, settings, 5)
    for _ in range(6):
        history.step()
    history.fold()
    window = reports.report_window(2025, until=None, today=date(2026, 1, 15))
    everywhere = areas.resolve_area(session, history.admin, "")
    totals = reports.yearly_totals(session, history.admin, window, settings.tz)
    recount = naive(session, window, everywhere, settings)["total"].get(None, (0, 0, 0))
    assert (totals.visits, totals.people, totals.walk_ins) == recount


def test_a_fold_committed_while_a_page_reads_makes_it_read_again(
    session: Session, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A reader takes the watermarks, then reads; if another process folds in between, the records it
    reads above the old watermark are also in visit_day now: the state's version moved, so it reads again."""
    history = History(session, settings, 13)
    for _ in range(3):
        history.check_ins()
    rollup.refresh(session, settings.tz, now=history.clock + timedelta(days=9), fold_at=1)
    for _ in range(3):
        history.check_ins()
    window = reports.report_window(2025, until=None, today=date(2026, 1, 15))
    everywhere = areas.resolve_area(session, history.admin, "")
    expected = naive(session, window, everywhere, settings)
    reading = rollup._read
    calls: list[int] = []

    def another_process_folds_first(*args: Any) -> list[Any]:
        calls.append(1)
        if len(calls) == 1:
            later = history.clock + timedelta(days=9)
            rollup.refresh(session, settings.tz, now=later, fold_at=1)
        return reading(*args)

    monkeypatch.setattr(rollup, "_read", another_process_folds_first)
    session.rollback()
    bounds = window.bounds(settings.tz)
    counted = tally.Tally(rollup.read(session, window.start, window.end, bounds, everywhere, settings.tz))
    total = counted.total()
    assert {None: (total.visits, total.people, total.walk_ins)} == expected["total"]
    assert len(calls) == 2
