"""The plan's indicators: each one a definition over recorded data, with targets by year and a status.

An indicator is evaluated for a reporting window (reports.ReportWindow: a calendar year or a year ending on
a cut-off, up to today) and an area (every unit, one unit and everything below it, or a saved group), and
compared with the same window a year earlier. Two kinds (docs/indicators.md states every rule):

- **growth**: a figure X (visits, copies, ...) and its growth `(X - X_prev) / X_prev` against a target
  band in percent; a zero or missing base is "no base", never a division.
- **share**: venues meeting a condition ÷ all venues of the kinds concerned, in percent, against a
  minimum; an empty denominator is "no base".

Visits come from counting.visit_rows, the one definition of what counts that live counts and the yearly
report also read. A record counts for the place stored on it (the place of its own day); a venue counts for
the unit it stood in on the window's last day.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, tzinfo
from enum import StrEnum
from typing import Any

from sqlalchemy import and_, or_
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from server import auth, labels
from server.errors import N_, AppError, ErrorCode, FormError
from server.models import (
    CheckIn,
    Club,
    Event,
    Headcount,
    IndicatorTarget,
    LibraryMetric,
    Meta,
    OrgUnit,
    Role,
    Staff,
    UnitKind,
    Venue,
    VenueType,
    utcnow,
)
from server.services import audit, cells, counting, library, places_history, reports, tally
from server.services.areas import Area
from server.services.reports import ReportWindow

log = logging.getLogger("diemdanh.indicators")

PLAN_START, PLAN_END = 2023, 2030
PUBLIC_LIBRARIES = (VenueType.provincial_library, VenueType.commune_library)
CULTURE_HOUSES = (VenueType.culture_sport_centre, VenueType.village_cultural_house)
CUTOFF_KEY, MONTHS_KEY, MIN_VISITS_KEY = "report_cutoff", "active_months", "active_min_visits"
DEFAULT_MONTHS, DEFAULT_MIN_VISITS = 9, 1


RULES_TEXT = N_(
    "Visits and people are counted as in the yearly report, each record for the place stored on it; a club "
    "is regularly active with sessions of at least %(visits)s visit(s) in at least %(months)s different "
    "months of the window; a venue counts for the unit it stands in."
)


class Kind(StrEnum):
    growth = "growth"
    share = "share"


class Status(StrEnum):
    met = "met"
    on_track = "on_track"
    behind = "behind"
    no_base = "no_base"
    reported = "reported"  # no target: the figure is reported as it is


STATUS_TEXT = {
    Status.met: N_("Met"),
    Status.on_track: N_("On track"),
    Status.behind: N_("Behind"),
    Status.no_base: N_("No base"),
    Status.reported: N_("Reported (no target)"),
}


@dataclass(frozen=True)
class Definition:
    key: str
    kind: Kind
    title: str  # msgid
    counts: str  # msgid: what the numerator (or X) is, precisely
    base: str  # msgid: the denominator of a share, or what the growth compares with
    plan: dict[int, tuple[float | None, float | None]]  # the seed plan's target by year: (low, high) %
    visits: bool = False  # X counts check-ins and headcounts (counting.visit_rows)
    venue_types: tuple[VenueType, ...] | None = None  # the venues counted (None: every venue)
    metric: LibraryMetric | None = None  # X adds, per venue, a library figure entered by hand
    milestones: tuple[int, ...] = (2025, PLAN_END)  # a share's years due ("by 2025", "by 2030")
    unit: str = N_("visits")  # what X is counted in


def _every_year(low: float | None, high: float | None = None) -> dict[int, tuple[float | None, float | None]]:
    return {year: (low, high) for year in range(PLAN_START, PLAN_END + 1)}


def _milestones(by_2025: float | None, by_2030: float) -> dict[int, tuple[float | None, float | None]]:
    """A share due "by 2025" then "by 2030": each year until a milestone carries that milestone's value."""
    return {
        year: (by_2025 if year <= 2025 and by_2025 is not None else by_2030, None)
        for year in range(PLAN_START, PLAN_END + 1)
    }


SAME_WINDOW = N_("The same window a year earlier")
DEFINITIONS: tuple[Definition, ...] = (
    Definition(
        "library_users",
        Kind.growth,
        N_("Public-library users (visits)"),
        N_("Check-ins and walk-ins at provincial and commune libraries, plus visits counted at the desk"),
        SAME_WINDOW,
        _every_year(8, 10),
        visits=True,
        venue_types=PUBLIC_LIBRARIES,
        metric=LibraryMetric.desk_visits,
    ),
    Definition(
        "materials_added",
        Kind.growth,
        N_("New books, newspapers and magazines added (copies)"),
        N_("Copies added to the collections, as each library entered them by month"),
        SAME_WINDOW,
        _every_year(8, 10),
        metric=LibraryMetric.copies_added,
        unit=N_("copies"),
    ),
    Definition(
        "materials_served",
        Kind.growth,
        N_("Books and newspapers served to readers"),
        N_("Uses of books and newspapers (lượt sách, báo phục vụ), as each library entered them by month"),
        SAME_WINDOW,
        _every_year(10),
        metric=LibraryMetric.materials_served,
        unit=N_("uses"),
    ),
    Definition(
        "book_rotation",
        Kind.growth,
        N_("Book rotation (copies sent to other libraries)"),
        N_("Copies in the rotation batches sent in the window, counted for the sending library"),
        SAME_WINDOW,
        _every_year(8),
        unit=N_("copies"),
    ),
    Definition(
        "participation",
        Kind.growth,
        N_("Participation in reading festivals, contests, book days, exhibitions and clubs"),
        N_("Check-ins and walk-ins at every event (the yearly report's visits); people are counted apart"),
        SAME_WINDOW,
        _every_year(None),
        visits=True,
    ),
    Definition(
        "active_houses",
        Kind.share,
        N_("Culture-sport centres and village cultural houses with a regularly active club"),
        N_("Centres and houses with at least one regularly active club, class or group"),
        N_("Every commune culture-sport centre and village cultural house open in the window"),
        _milestones(50, 70),
        venue_types=CULTURE_HOUSES,
    ),
    Definition(
        "school_lifelong",
        Kind.share,
        N_("School libraries offering lifelong-learning services"),
        N_(
            "School libraries marked as offering them for the year, or, where nothing was marked, with at "
            "least one visit to an event in the window"
        ),
        N_("Every school library open in the window"),
        _milestones(70, 80),
        venue_types=(VenueType.school_library,),
    ),
    Definition(
        "school_standard",
        Kind.share,
        N_("Schools whose library meets the standard (Circular 16/2022/TT-BGDĐT)"),
        N_("School libraries recognised as meeting the standard on or before the window's last day"),
        N_("Every school library open in the window"),
        _milestones(None, 80),
        venue_types=(VenueType.school_library,),
        milestones=(PLAN_END,),
    ),
)
BY_KEY = {definition.key: definition for definition in DEFINITIONS}


# --- rules -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rules:
    cutoff: tuple[int, int] | None  # the reporting year's last day (month, day); None: 31/12
    active_months: int  # a club is regularly active with attended sessions in this many months
    active_min_visits: int  # a session is attended with at least this many visits

    @property
    def cutoff_text(self) -> str:
        return "" if self.cutoff is None else f"{self.cutoff[1]:02d}/{self.cutoff[0]:02d}"


def load_rules(session: Session) -> Rules:
    stored = {m.key: m.value for m in session.exec(select(Meta).where(col(Meta.key).in_(_RULE_KEYS)))}
    try:
        cutoff = reports.parse_cutoff(stored.get(CUTOFF_KEY, ""))
    except FormError:
        cutoff = None
    return Rules(
        cutoff=cutoff,
        active_months=_stored_int(stored.get(MONTHS_KEY), DEFAULT_MONTHS, 1, 12),
        active_min_visits=_stored_int(stored.get(MIN_VISITS_KEY), DEFAULT_MIN_VISITS, 1, 1000),
    )


_RULE_KEYS = (CUTOFF_KEY, MONTHS_KEY, MIN_VISITS_KEY)


def _stored_int(value: str | None, default: int, low: int, high: int) -> int:
    return int(value) if value and value.isdigit() and low <= int(value) <= high else default


def _form_int(
    fields: dict[str, str], errors: dict[str, str], name: str, low: int, high: int, msg: str
) -> int:
    text = fields.get(name, "").strip()
    if text.isascii() and text.isdigit() and low <= int(text) <= high:
        return int(text)
    errors[name] = msg
    return low


def save_rules(session: Session, staff: Staff, fields: dict[str, str]) -> Rules:
    """Change the reporting cut-off and the "regularly active" rule (admin and office); logged."""
    auth.require_role(staff, Role.admin, Role.office)
    errors: dict[str, str] = {}
    cutoff: tuple[int, int] | None = None
    try:
        cutoff = reports.parse_cutoff(fields.get("cutoff", ""))
    except FormError as error:
        errors.update(error.fields)
    months = _form_int(fields, errors, "active_months", 1, 12, N_("Choose a number of months from 1 to 12."))
    visits = _form_int(
        fields, errors, "active_min_visits", 1, 1000, N_("Choose a number of visits from 1 to 1000.")
    )
    if errors:
        raise FormError(errors)
    rules = Rules(cutoff, months, visits)
    for key, value in (
        (CUTOFF_KEY, rules.cutoff_text),
        (MONTHS_KEY, str(months)),
        (MIN_VISITS_KEY, str(visits)),
    ):
        session.merge(Meta(key=key, value=value))
    audit.record(
        session,
        staff,
        audit.Action.rules_saved,
        detail={"cutoff": rules.cutoff_text, "months": months, "min_visits": visits},
    )
    session.commit()
    log.info(
        "rules changed by staff %s: cutoff=%r months=%s min_visits=%s",
        staff.id,
        rules.cutoff_text,
        months,
        visits,
    )
    return rules


def venues_open(
    session: Session, area: Area, kinds: Collection[VenueType] | None, day: date
) -> dict[int, VenuePart]:
    """A part for every venue of these kinds (None: any) open on `day` and standing in the area then."""
    memo = tally.session_memo(session, "venue_units_on")
    if day not in memo:  # a page asks for the same day once per indicator
        memo[day] = places_history.venue_units_on(session, day)
    found = {}
    for venue_id, (venue, unit_id) in memo[day].items():
        if kinds is not None and venue.type not in kinds:
            continue
        if area.unit_ids is None or unit_id in area.unit_ids:
            found[venue_id] = VenuePart(venue, unit_id)
    return found


# --- targets -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    low: float | None  # percent: growth at least, or a share at least
    high: float | None  # the top of a growth band (shown; exceeding it is still met)
    set_by_office: bool = False

    @property
    def empty(self) -> bool:
        return self.low is None


def _chain(session: Session, area: Area) -> list[int | None]:
    """The units whose targets apply to the area, nearest first, then the everywhere-target (None)."""
    if area.unit_id is None:
        return [None]
    unit = session.get(OrgUnit, area.unit_id)
    ids = [int(part) for part in unit.path.strip("/").split("/") if part] if unit else []
    return [*reversed(ids), None]


def targets(session: Session, area: Area, years: Iterable[int]) -> dict[tuple[str, int], Target]:
    """(indicator, year) -> the target that applies in the area: the nearest unit's row, the
    everywhere row, or the plan's."""
    years = list(years)
    chain = _chain(session, area)
    rows = session.exec(
        select(IndicatorTarget).where(
            col(IndicatorTarget.year).in_(years),
            or_(
                col(IndicatorTarget.unit_id).in_([u for u in chain if u]),
                col(IndicatorTarget.unit_id).is_(None),
            ),
        )
    ).all()
    by_level = {(row.indicator, row.year, row.unit_id): row for row in rows}
    out = {}
    for definition in DEFINITIONS:
        for year in years:
            found = next((by_level[k] for u in chain if (k := (definition.key, year, u)) in by_level), None)
            if found is not None:
                out[definition.key, year] = Target(found.low, found.high, set_by_office=True)
            else:
                low, high = definition.plan.get(year, (None, None))
                out[definition.key, year] = Target(low, high)
    return out


def target_years(today: date) -> list[int]:
    return list(range(min(today.year - 1, PLAN_START), max(today.year + 1, PLAN_END) + 1))


def _percent(text: str, name: str, errors: dict[str, str]) -> float | None:
    text = text.strip().replace(",", ".").removesuffix("%").strip()
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not -100 <= value <= 1000:  # also refuses NaN and infinity
        errors[name] = N_("Type a percentage from -100 to 1000, or leave it empty for the plan's target.")
        return None
    return round(value, 2)


def save_targets(
    session: Session, staff: Staff, fields: dict[str, str], *, today: date, now: datetime | None = None
) -> int:
    """Store the targets typed in the targets form (`<key>-<year>-low`, `<key>-<year>-high`) for the staff
    member's level: everywhere (admin) or their unit and below (office). An empty low removes the row, so
    the plan's (or a wider unit's) target applies again. All or nothing; returns the rows changed."""
    auth.require_role(staff, Role.admin, Role.office)
    unit_id = None if staff.role == Role.admin else staff.unit_id
    if staff.role != Role.admin and unit_id is None:
        raise AppError(ErrorCode.forbidden)
    errors: dict[str, str] = {}
    wanted: dict[tuple[str, int], tuple[float | None, float | None]] = {}
    for definition in DEFINITIONS:
        for year in target_years(today):
            name = f"{definition.key}-{year}"
            if f"{name}-low" not in fields:
                continue
            low = _percent(fields.get(f"{name}-low", ""), f"{name}-low", errors)
            high = _percent(fields.get(f"{name}-high", ""), f"{name}-high", errors)
            if definition.kind == Kind.share:
                high = None
                if low is not None and not 0 <= low <= 100:
                    errors[f"{name}-low"] = N_("A share is a percentage from 0 to 100.")
            if high is not None and (low is None or high < low):
                errors[f"{name}-high"] = N_("The top of the band must be at least its bottom.")
            wanted[definition.key, year] = (low, high)
    if errors:
        raise FormError(errors)
    stored = {
        (row.indicator, row.year): row
        for row in session.exec(select(IndicatorTarget).where(IndicatorTarget.unit_key == (unit_id or 0)))
    }
    changed = 0
    for (key, year), (low, high) in wanted.items():
        row = stored.get((key, year))
        if low is None:
            if row is not None:
                session.delete(row)
                changed += 1
            continue
        if row is None:
            row = IndicatorTarget(indicator=key, year=year, unit_id=unit_id, unit_key=unit_id or 0)
        elif (row.low, row.high) == (low, high):
            continue
        row.low, row.high, row.updated_by_id, row.updated_at = low, high, staff.id, now or utcnow()
        session.add(row)
        changed += 1
    audit.record(
        session,
        staff,
        audit.Action.targets_saved,
        target_kind="unit",
        target_id=unit_id,
        detail={"rows": changed},
    )
    session.commit()
    log.info("targets changed by staff %s for unit %s: %d rows", staff.id, unit_id, changed)
    return changed


def own_targets(session: Session, staff: Staff) -> dict[tuple[str, int], IndicatorTarget]:
    """The rows stored at the staff member's own level (what the targets form edits)."""
    unit_key = 0 if staff.role == Role.admin else (staff.unit_id or -1)
    query = select(IndicatorTarget).where(IndicatorTarget.unit_key == unit_key)
    return {(row.indicator, row.year): row for row in session.exec(query)}


# --- evaluation --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Result:
    definition: Definition
    value: float | None  # growth: X; share: percent (None with an empty denominator)
    previous: float | None
    change: float | None  # growth: percent; share: percentage points
    target: Target
    status: Status
    numerator: int | None = None  # shares
    denominator: int | None = None
    previous_numerator: int | None = None
    previous_denominator: int | None = None
    people: int | None = None  # visit figures: distinct people, always apart from visits
    previous_people: int | None = None


@dataclass(frozen=True)
class Figure:
    """One indicator's raw figure for one window: X (with people), or a share's parts."""

    value: int = 0
    people: int | None = None
    numerator: int = 0
    denominator: int = 0


def _status(
    definition: Definition, now: Figure, before: Figure, target: Target, window: ReportWindow
) -> Status:
    if definition.kind == Kind.growth:
        if before.value <= 0:
            return Status.no_base
        measure = 100 * (now.value - before.value) / before.value
    else:
        if now.denominator == 0:
            return Status.no_base
        measure = 100 * now.numerator / now.denominator
    if target.low is None:
        return Status.reported
    if measure >= target.low:
        return Status.met if window.complete else Status.on_track
    rising = before.denominator and measure > 100 * before.numerator / before.denominator
    between = window.year not in definition.milestones and window.year < max(definition.milestones)
    if definition.kind == Kind.share and between and rising:
        return Status.on_track  # below the target but rising, in a year between the plan's milestones
    return Status.behind


def result(
    definition: Definition, now: Figure, before: Figure, target: Target, window: ReportWindow
) -> Result:
    status = _status(definition, now, before, target, window)
    if definition.kind == Kind.growth:
        change = 100 * (now.value - before.value) / before.value if before.value > 0 else None
        return Result(
            definition,
            now.value,
            before.value,
            change,
            target,
            status,
            people=now.people,
            previous_people=before.people,
        )
    value = 100 * now.numerator / now.denominator if now.denominator else None
    previous = 100 * before.numerator / before.denominator if before.denominator else None
    change = value - previous if value is not None and previous is not None else None
    return Result(
        definition,
        value,
        previous,
        change,
        target,
        status,
        numerator=now.numerator,
        denominator=now.denominator,
        previous_numerator=before.numerator,
        previous_denominator=before.denominator,
    )


@dataclass(frozen=True)
class Evaluation:
    window: ReportWindow
    area: Area
    rules: Rules
    results: tuple[Result, ...]
    generated_at: datetime


def evaluate(
    session: Session,
    staff: Staff,
    window: ReportWindow,
    area: Area,
    tz: tzinfo,
    *,
    definitions: Sequence[Definition] = DEFINITIONS,
    rules: Rules | None = None,
    now: datetime | None = None,
) -> Evaluation:
    """Each indicator (default: every one) for the window and area, against last year's same window and the
    year's target."""
    auth.require_role(staff, Role.admin, Role.office)
    rules = rules or load_rules(session)
    applying = targets(session, area, [window.year])
    computed = tuple(
        result(
            definition,
            figure(session, definition, window, area, tz, rules),
            figure(session, definition, window.previous(), area, tz, rules),
            applying[definition.key, window.year],
            window,
        )
        for definition in definitions
    )
    return Evaluation(window, area, rules, computed, (now or utcnow()).astimezone(tz))


def figure(
    session: Session, definition: Definition, window: ReportWindow, area: Area, tz: tzinfo, rules: Rules
) -> Figure:
    """The raw figure of one indicator over one window and area."""
    parts = venue_parts(session, definition, window, area, tz, rules)
    if definition.kind == Kind.growth:
        extra = sum(p.extra for p in parts.values())
        if not definition.visits:
            return Figure(value=extra)
        visits, people = visit_totals(session, window, area, tz, definition.venue_types)
        return Figure(value=visits + extra, people=people)
    return Figure(numerator=sum(1 for p in parts.values() if p.meets), denominator=len(parts))


def visit_tally(
    session: Session, window: ReportWindow, area: Area, tz: tzinfo, venue_types: Collection[VenueType] | None
) -> tally.Tally:
    """The counted records (counting.visit_rows, read through services/rollup.py) of the window and area,
    at these kinds of venue (None: every kind)."""
    counted = reports.window_tally(session, window, area, tz)
    if venue_types is None:
        return counted
    kinds = {kind.value for kind in venue_types}
    return counted.where(lambda cell: cell.venue_type in kinds)


def visit_totals(
    session: Session, window: ReportWindow, area: Area, tz: tzinfo, venue_types: Collection[VenueType] | None
) -> tuple[int, int]:
    """Visits and distinct people (counting.measures) in the window and area, at these kinds of venue."""
    total = visit_tally(session, window, area, tz, venue_types).total()
    return total.visits, total.people


@dataclass
class VenuePart:
    """What one venue adds: a share's yes or no (with why), or a growth figure's extra (desk counts)."""

    venue: Venue
    unit_id: int  # where the venue stood on the window's last day
    meets: bool = False
    detail: dict[str, Any] = field(default_factory=dict)
    extra: int = 0


def venue_parts(
    session: Session, definition: Definition, window: ReportWindow, area: Area, tz: tzinfo, rules: Rules
) -> dict[int, VenuePart]:
    """Per venue: a share's answer with the facts behind it, or what a growth figure adds beyond visits
    (the library figures entered by hand, the copies a library sent out)."""
    if definition.key == "active_houses":
        return _active_houses(session, window, area, tz, rules)
    if definition.key == "school_lifelong":
        return _school_lifelong(session, window, area, tz)
    if definition.key == "school_standard":
        since = library.standard_since(session)
        parts = venues_open(session, area, definition.venue_types, window.end)
        for venue_id, part in parts.items():
            met = since.get(venue_id)
            part.detail["since"] = met
            part.meets = met is not None and met <= window.end
        return parts
    if definition.metric is not None:
        sums = library.monthly_sums(session, definition.metric, window.start, window.end)
    elif definition.key == "book_rotation":
        sums = library.rotation_copies(session, window.start, window.end)
    else:
        return {}
    parts = venues_open(session, area, definition.venue_types, window.end)
    for venue_id, part in parts.items():
        part.extra = sums.get(venue_id, 0)
    return {venue_id: part for venue_id, part in parts.items() if part.extra}


def _active_houses(
    session: Session, window: ReportWindow, area: Area, tz: tzinfo, rules: Rules
) -> dict[int, VenuePart]:
    """A house is active when one of its clubs had attended sessions (at least `active_min_visits` visits)
    in at least `active_months` different months of the window."""
    parts = venues_open(session, area, CULTURE_HOUSES, window.end)
    if not parts:
        return parts
    clubs = sorted(
        session.exec(select(Club).where(col(Club.venue_id).in_(list(parts)))),
        key=lambda c: labels.sort_key(c.name),
    )
    memo = tally.session_memo(session, "club_sessions")  # both windows of a page ask for the same clubs
    key = tuple(sorted(c.id or 0 for c in clubs))
    if key not in memo:
        memo[key] = {
            event_id: (club_id, cells.utc_instant(starts_at))
            for event_id, club_id, starts_at in session.execute(
                sa_select(col(Event.id), col(Event.club_id), cells.as_stored(col(Event.starts_at))).where(
                    col(Event.club_id).in_(key)
                )
            )
        }
    sessions: dict[int, tuple[int, datetime]] = memo[key]
    # A club's sessions count wherever their records say they were: by event, not by the area's places.
    if area.unit_ids is None:
        counted = reports.window_tally(session, window, area, tz).where(lambda c: c.event_id in sessions)
    else:
        counted = reports.window_tally(session, window, None, tz, frozenset(sessions))
    attended = [(*sessions[event_id], n) for event_id, n in counted.visits_by(lambda c: c.event_id).items()]
    months: dict[int, dict[tuple[int, int], int]] = defaultdict(lambda: defaultdict(int))
    for club_id, starts_at, visits in attended:
        if int(visits or 0) >= rules.active_min_visits:
            local = _aware(starts_at).astimezone(tz)
            months[club_id][local.year, local.month] += 1  # attended sessions in that month
    for club in clubs:
        part = parts[club.venue_id]
        attended_months = dict(months.get(club.id or 0, {}))
        part.detail.setdefault("clubs", []).append((club, attended_months))
        if len(attended_months) >= rules.active_months:
            part.meets = True
    return parts


def _school_lifelong(session: Session, window: ReportWindow, area: Area, tz: tzinfo) -> dict[int, VenuePart]:
    """A school library offers lifelong-learning services in a year when it was marked so for that year;
    where nothing was marked, when it had at least one visit in the window."""
    kinds = (VenueType.school_library,)
    parts = venues_open(session, area, kinds, window.end)
    if not parts:
        return parts
    visited = visit_tally(session, window, area, tz, kinds).visits_by(lambda c: c.venue_id)
    marked = library.school_years(session, window.year)
    for venue_id, part in parts.items():
        visits = int(visited.get(venue_id) or 0)
        part.detail.update(visits=visits, marked=marked.get(venue_id))
        part.meets = marked.get(venue_id, visits > 0)
    return parts


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


# --- drill-down --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DrillRow:
    key: int | None  # a commune id (None: above commune level) or a venue id
    name: str
    result: Result
    area: str = ""  # for a commune row: the area value that drills into it


@dataclass(frozen=True)
class Drill:
    evaluation: Evaluation  # of this one indicator
    communes: tuple[DrillRow, ...]
    venues: tuple[DrillRow, ...]


def _communes_of_units(units: Sequence[OrgUnit]) -> dict[int, OrgUnit]:
    """unit id -> its commune (a commune is its own), for every unit at or below commune level."""
    communes = {u.id: u for u in units if u.kind == UnitKind.commune}
    out = {}
    for unit in units:
        for part in unit.path.strip("/").split("/"):
            if part and int(part) in communes:
                out[unit.id or 0] = communes[int(part)]
    return out


def drill(session: Session, staff: Staff, key: str, window: ReportWindow, area: Area, tz: tzinfo) -> Drill:
    """One indicator for the area, then the same by commune and by venue (each row against its own last
    year), for the drill-down page."""
    definition = BY_KEY.get(key)
    if definition is None:
        raise AppError(ErrorCode.not_found)
    rules = load_rules(session)
    target = targets(session, area, [window.year])[key, window.year]
    base = evaluate(session, staff, window, area, tz, definitions=[definition], rules=rules)
    previous = window.previous()
    units = list(session.exec(select(OrgUnit)))
    commune_of = _communes_of_units(units)
    names = {u.id: u.name for u in units}
    by_commune: dict[int | None, tuple[Figure, Figure]] = {}
    by_venue: dict[int, tuple[Figure, Figure]] = {}
    venue_names: dict[int, str] = {}
    if definition.kind == Kind.growth:
        for index, span in enumerate((window, previous)):
            parts = venue_parts(session, definition, span, area, tz, rules)
            if definition.visits:
                counted = visit_tally(session, span, area, tz, definition.venue_types)
                for commune_id, m in counted.by(lambda c: c.commune_id).items():
                    _add(by_commune, commune_id, index, Figure(m.visits, m.people))
                for venue_id, m in counted.by(lambda c: c.venue_id).items():
                    _add(by_venue, venue_id, index, Figure(m.visits, m.people))
            for venue_id, part in parts.items():
                venue_names[venue_id] = part.venue.name
                extra = Figure(part.extra, 0 if definition.visits else None)
                _add(by_venue, venue_id, index, extra)
                commune = commune_of.get(part.unit_id)
                _add(by_commune, commune.id if commune else None, index, extra)
    else:
        for index, span in enumerate((window, previous)):
            for venue_id, part in venue_parts(session, definition, span, area, tz, rules).items():
                venue_names[venue_id] = part.venue.name
                one = Figure(numerator=int(part.meets), denominator=1)
                _add(by_venue, venue_id, index, one)
                commune = commune_of.get(part.unit_id)
                _add(by_commune, commune.id if commune else None, index, one)
    if by_venue:
        query = select(Venue.id, Venue.name).where(col(Venue.id).in_(list(by_venue)))
        venue_names.update({i or 0: n for i, n in session.exec(query)})

    def row(key: int | None, name: str, pair: tuple[Figure, Figure], area_value: str = "") -> DrillRow:
        return DrillRow(key, name, result(definition, pair[0], pair[1], target, window), area_value)

    communes = tuple(
        sorted(
            (
                row(c, names.get(c, "") if c else "", pair, f"u:{c}" if c else "")
                for c, pair in by_commune.items()
            ),
            key=lambda r: (r.key is None, labels.sort_key(r.name)),
        )
    )
    venues = tuple(
        sorted(
            (row(v, venue_names.get(v, ""), pair) for v, pair in by_venue.items()),
            key=lambda r: labels.sort_key(r.name),
        )
    )
    return Drill(base, communes, venues)


def _add(table: dict[Any, tuple[Figure, Figure]], key: Any, index: int, figure: Figure) -> None:
    pair = list(table.get(key, (Figure(), Figure())))
    old = pair[index]
    people = (
        None if old.people is None and figure.people is None else (old.people or 0) + (figure.people or 0)
    )
    pair[index] = Figure(
        old.value + figure.value,
        people,
        old.numerator + figure.numerator,
        old.denominator + figure.denominator,
    )
    table[key] = (pair[0], pair[1])


@dataclass(frozen=True)
class EventRecord:
    event: Event
    visits: int
    people: int


@dataclass(frozen=True)
class Records:
    definition: Definition
    venue: Venue
    window: ReportWindow
    events: tuple[EventRecord, ...]  # events at the venue with visits in the window
    part: VenuePart | None  # a share's answer for the venue, with its facts (clubs and their months)
    figures: tuple[library.FigureRow, ...] = ()  # the monthly figures entered by hand behind the number
    rotations: tuple[library.RotationRow, ...] = ()  # the batches the venue sent


def records(
    session: Session, staff: Staff, key: str, window: ReportWindow, venue_id: int, tz: tzinfo
) -> Records:
    """The records behind one venue's figure: its events with their visits, and a share's facts."""
    auth.require_role(staff, Role.admin, Role.office)
    definition = BY_KEY.get(key)
    venue = session.get(Venue, venue_id)
    if definition is None or venue is None:
        raise AppError(ErrorCode.not_found)
    if not auth.can_use_venue(session, staff, venue):
        raise AppError(ErrorCode.forbidden)
    start, stop = window.bounds(tz)
    in_check_ins, in_headcounts = counting.window_clauses(start, stop)
    rows = counting.visit_rows(
        and_(in_check_ins, col(CheckIn.venue_id) == venue_id),
        and_(in_headcounts, col(Headcount.venue_id) == venue_id),
    )
    visits, people, _ = counting.measures(rows)
    counted = session.execute(sa_select(rows.c.event_id, visits, people).group_by(rows.c.event_id)).all()
    events = {e.id: e for e in session.exec(select(Event).where(col(Event.id).in_([r[0] for r in counted])))}
    found = tuple(
        sorted(
            (EventRecord(events[e], int(v), int(p)) for e, v, p in counted if e in events),
            key=lambda r: r.event.starts_at,
        )
    )
    parts = venue_parts(session, definition, window, Area("", venue.name, None), tz, load_rules(session))
    figures = (
        library.figure_rows(session, definition.metric, window.start, window.end, [venue_id])
        if definition.metric
        else []
    )
    rotations = (
        library.rotation_rows(session, window.start, window.end, [venue_id])
        if definition.key == "book_rotation"
        else []
    )
    part = parts.get(venue_id) if definition.kind == Kind.share else None
    return Records(definition, venue, window, found, part, tuple(figures), tuple(rotations))


# --- the annual report's detail tables ---------------------------------------------------------------------


@dataclass(frozen=True)
class ClubRow:
    club: Club
    venue: Venue
    months: int  # different months of the window with attended sessions
    sessions: int  # attended sessions in the window
    regular: bool


@dataclass(frozen=True)
class LibraryRow:
    venue: Venue
    figures: dict[LibraryMetric, int]  # sums over the window's months
    rotation_copies: int  # copies sent to other libraries


@dataclass(frozen=True)
class AnnualTables:
    clubs: tuple[ClubRow, ...]
    libraries: tuple[LibraryRow, ...]


def annual_tables(
    session: Session, staff: Staff, window: ReportWindow, area: Area, tz: tzinfo
) -> AnnualTables:
    """The clubs at the area's centres and houses with whether each was regularly active, and each
    library's figures entered by hand: the annual report's detail sheets, by the indicators' own rules."""
    auth.require_role(staff, Role.admin, Role.office)
    rules = load_rules(session)
    clubs = [
        ClubRow(club, part.venue, len(months), sum(months.values()), len(months) >= rules.active_months)
        for part in _active_houses(session, window, area, tz, rules).values()
        for club, months in part.detail.get("clubs", [])
    ]
    sums = {
        metric: library.monthly_sums(session, metric, window.start, window.end) for metric in LibraryMetric
    }
    sent = library.rotation_copies(session, window.start, window.end)
    libraries = []
    for venue_id, part in venues_open(session, area, None, window.end).items():
        figures = {metric: sums[metric].get(venue_id, 0) for metric in LibraryMetric}
        if any(figures.values()) or sent.get(venue_id):
            libraries.append(LibraryRow(part.venue, figures, sent.get(venue_id, 0)))
    return AnnualTables(
        tuple(sorted(clubs, key=lambda r: (labels.sort_key(r.venue.name), labels.sort_key(r.club.name)))),
        tuple(sorted(libraries, key=lambda r: labels.sort_key(r.venue.name))),
    )
