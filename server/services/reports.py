"""Yearly participation totals for the culture office: visits and distinct people, broken down eight ways.

The statistical year runs 1/1-31/12, but reports are due before 15/11, so a report holds actual data from
1/1 up to a cut-off day (today by default, or an earlier `until`). Every table counts **visits** (check-in
rows) and **people** (distinct participants) separately; place, venue type, age band and gender are the
values copied into each check-in on the day, so a later reorganisation does not rewrite history.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from enum import StrEnum
from typing import Any

from sqlalchemy import func
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from server import auth, labels
from server.errors import N_, FormError
from server.i18n import gettext
from server.models import (
    AgeBand,
    Campaign,
    CheckIn,
    Event,
    EventType,
    Gender,
    OrgUnit,
    Role,
    Staff,
    Venue,
    VenueType,
    utcnow,
)
from server.services import areas, cells, tally
from server.services.areas import Area

MIN_YEAR = 2000
WINDOW_TEXT = N_(
    "Statistical year %(year)s: %(start)s–%(end)s "
    "(actual data up to the cut-off date, estimates not included)"
)
CUTOFF_WINDOW_TEXT = N_(
    "Reporting year %(year)s, ending on %(cutoff)s: %(start)s–%(end)s "
    "(actual data up to the cut-off date, estimates not included)"
)
RULE_TEXT = N_(
    "Visits = check-ins plus walk-ins counted at the door; People = number of different people who checked in"
)
# Shown under every table: why the People total is not the sum of its column, and whose place counts.
NOTES = (
    N_(
        "In each row a person is counted once; in the Total row a person is counted once for the whole "
        "window, so it is not the sum of the People column."
    ),
    N_("Commune, venue type, age group and gender are as recorded on the day of each check-in."),
)
ALL_UNITS = N_("All communes and wards")
NO_COMMUNE = N_("Province level (no commune)")
MONTH = N_("Month %(month)s")
MONTH_OF_YEAR = N_("Month %(month)s/%(year)s")
NOT_RECORDED = N_("Not recorded (counted at the door)")


@dataclass(frozen=True)
class ReportWindow:
    """Inclusive local dates (in the settings' time zone) of one reporting year's window.

    The reporting year is the calendar year (`cutoff` None) or the twelve months ending on a cut-off day
    (`cutoff` = (month, day), for example (10, 31): 1/11 of the year before up to 31/10). `end` is the last
    day with data: the nominal end, today for the running year, or an earlier `until`.
    """

    year: int
    start: date
    end: date
    cutoff: tuple[int, int] | None = None

    def bounds(self, tz: tzinfo) -> tuple[datetime, datetime]:
        """The window as UTC datetimes [from, to) for querying `checked_in_at`."""
        return _utc(self.start, tz), _utc(self.end + timedelta(days=1), tz)

    @property
    def nominal_end(self) -> date:
        return _cutoff_day(self.year, self.cutoff)

    @property
    def complete(self) -> bool:
        """Whether the window covers its whole reporting year (not a running year or an early cut-off)."""
        return self.end >= self.nominal_end

    def previous(self) -> ReportWindow:
        """The same window one year earlier (29/2 becomes 28/2): the base of every growth figure."""
        return ReportWindow(
            self.year - 1, _year_before(self.start), _year_before(self.end), cutoff=self.cutoff
        )


@dataclass(frozen=True)
class Row:
    key: str  # stable: an enum value, a unit or venue id, a month number ("" for no commune)
    name: str  # a stored place name, or a msgid when `translate`
    visits: int
    people: int
    walk_ins: int = 0  # of the visits, people counted at the door without checking in
    translate: bool = False
    params: tuple[tuple[str, Any], ...] = ()

    def text(self, language: str) -> str:
        if not self.translate:
            return self.name
        text = gettext(language, self.name)
        return text % dict(self.params) if self.params else text


@dataclass(frozen=True)
class Breakdown:
    key: str
    title: str  # msgid, also the XLSX sheet name
    column: str  # msgid of the first column's header
    rows: tuple[Row, ...]

    @property
    def max_visits(self) -> int:
        return max((row.visits for row in self.rows), default=0)


@dataclass(frozen=True)
class YearlyTotals:
    window: ReportWindow
    unit_name: str | None  # None: an administrator's report over every unit
    visits: int
    people: int
    walk_ins: int
    breakdowns: tuple[Breakdown, ...]
    generated_at: datetime  # aware, in the report's time zone


def _utc(day: date, tz: tzinfo) -> datetime:
    return datetime.combine(day, time.min, tzinfo=tz).astimezone(UTC)


def _cutoff_day(year: int, cutoff: tuple[int, int] | None) -> date:
    if cutoff is None:
        return date(year, 12, 31)
    month, day = cutoff
    return date(year, month, min(day, 28) if month == 2 else day)


def _year_before(day: date) -> date:
    return (
        day.replace(year=day.year - 1, day=28)
        if (day.month, day.day) == (2, 29)
        else day.replace(year=day.year - 1)
    )


def parse_cutoff(text: str) -> tuple[int, int] | None:
    """A cut-off typed as dd/mm (or stored as MM-DD); '' is the calendar year. Refusals are FormErrors."""
    text = text.strip()
    if not text:
        return None
    for separator, order in (("/", (1, 0)), ("-", (0, 1))):
        parts = text.split(separator)
        if len(parts) == 2 and all(p.isascii() and p.isdigit() and len(p) <= 2 for p in parts):
            month, day = int(parts[order[0]]), int(parts[order[1]])
            try:
                date(2001, month, day)  # not a leap year: 29/02 is refused as a cut-off
            except ValueError:
                break
            return None if (month, day) == (12, 31) else (month, day)
    raise FormError({"cutoff": N_("Type the cut-off day as dd/mm, for example 31/10.")})


def report_window(
    year: int, *, until: date | None, today: date, cutoff: tuple[int, int] | None = None
) -> ReportWindow:
    """The reporting year `year` (calendar, or the twelve months ending on `cutoff`) up to today, or up to
    an earlier cut-off date `until` inside it."""
    if not MIN_YEAR <= year <= today.year + (1 if cutoff else 0):
        raise FormError({"year": N_("Choose a year from 2000 up to this year.")})
    nominal_end = _cutoff_day(year, cutoff)
    start = _cutoff_day(year - 1, cutoff) + timedelta(days=1)
    if start > today:
        raise FormError({"year": N_("Choose a year from 2000 up to this year.")})
    end = min(nominal_end, today)
    if until is not None:
        if not start <= until <= nominal_end:
            raise FormError({"until": N_("The cut-off date must lie in the chosen year.")})
        end = min(end, until)
    return ReportWindow(year=year, start=start, end=end, cutoff=cutoff)


def window_from_query(
    year: str, until: str, *, today: date, cutoff: tuple[int, int] | None = None
) -> ReportWindow:
    """Parse the year and optional cut-off (YYYY-MM-DD) as typed in a URL; refusals are FormErrors."""
    year = year.strip()
    if not (year.isascii() and year.isdigit() and len(year) == 4):
        raise FormError({"year": N_("Choose a year from 2000 up to this year.")})
    cut_off: date | None = None
    if until.strip():
        try:
            cut_off = date.fromisoformat(until.strip())
        except ValueError:
            raise FormError({"until": N_("The cut-off date is not a valid date.")}) from None
    return report_window(int(year), until=cut_off, today=today, cutoff=cutoff)


def window_text(window: ReportWindow, language: str) -> str:
    values = {
        "year": window.year,
        "start": window.start.strftime("%d/%m/%Y"),
        "end": window.end.strftime("%d/%m/%Y"),
    }
    if window.cutoff is None:
        return gettext(language, WINDOW_TEXT) % values
    return gettext(language, CUTOFF_WINDOW_TEXT) % {**values, "cutoff": window.nominal_end.strftime("%d/%m")}


def unit_text(totals: YearlyTotals, language: str) -> str:
    return totals.unit_name if totals.unit_name is not None else gettext(language, ALL_UNITS)


def years_with_data(session: Session, staff: Staff, tz: tzinfo, *, today: date) -> list[int]:
    """The years holding check-ins in the staff member's scope (by the place stored on each, as the reports
    count them), and the current year; newest first."""
    area = areas.resolve_area(session, staff, "")
    first, last = session.exec(
        select(func.min(CheckIn.checked_in_at), func.max(CheckIn.checked_in_at)).where(
            areas.record_clause(CheckIn, area)
        )
    ).one()
    years = {today.year}
    if first is not None and last is not None:
        years.update(range(first.astimezone(tz).year, last.astimezone(tz).year + 1))
    return sorted((y for y in years if MIN_YEAR <= y <= today.year), reverse=True)


def yearly_totals(
    session: Session,
    staff: Staff,
    window: ReportWindow,
    tz: tzinfo,
    *,
    area: Area | None = None,
    now: datetime | None = None,
) -> YearlyTotals:
    """Visits and distinct people in the window, in total and by commune, venue, venue type, event type,
    campaign, local month, age band and gender, for an area inside the staff member's scope (default: all
    of it; admin: everything, office: its unit's subtree), by the place stored on each record."""
    auth.require_role(staff, Role.admin, Role.office)
    area = area or areas.resolve_area(session, staff, "")
    counted = window_tally(session, window, area, tz)
    events = {
        event_id: (kind, campaign)
        for event_id, kind, campaign in by_ids(
            session,
            (col(Event.id), col(Event.type), col(Event.campaign)),
            {c.event_id for c in counted.cells},
        )
    }
    counted = counted.where(lambda cell: cell.event_id in events)  # every record's event exists (a key)
    total = counted.total()
    venue_names = dict(by_ids(session, (col(Venue.id), col(Venue.name)), {c.venue_id for c in counted.cells}))
    commune_names = dict(
        by_ids(
            session,
            (col(OrgUnit.id), col(OrgUnit.name)),
            {c.commune_id for c in counted.cells if c.commune_id is not None},
        )
    )

    def grouped(key: Callable[[cells.Cell], Any]) -> list[tuple[Any, int, int, int]]:
        return [(value, m.visits, m.people, m.walk_ins) for value, m in counted.by(key).items()]

    communes = sorted(
        (
            (cid, commune_names.get(cid, "") if cid is not None else "", v, p, w)
            for cid, v, p, w in grouped(lambda c: c.commune_id)
        ),
        key=lambda r: (r[0] is None, labels.sort_key(r[1]), r[0] or 0),
    )
    venues = sorted(
        ((vid, venue_names[vid], v, p, w) for vid, v, p, w in grouped(lambda c: c.venue_id)),
        key=lambda r: (labels.sort_key(r[1]), r[0]),
    )
    month_of = {ym: n for n, ym in enumerate(twelve_months(window), start=1)}
    months = {
        int(m): (v, p, w) for m, v, p, w in grouped(lambda c: month_of.get((c.day.year, c.day.month), 12))
    }
    visits, total_people, walk_ins = total.visits, total.people, total.walk_ins

    def members(measured: dict[str | None, tally.Measure]) -> list[tuple[Any, int, int, int]]:
        return [(value, m.visits, m.people, m.walk_ins) for value, m in measured.items()]

    spans_years = window.start.year != window.end.year
    breakdowns = (
        Breakdown(
            "commune",
            N_("By commune"),
            N_("Commune or ward"),
            tuple(
                Row("", NO_COMMUNE, v, p, w, translate=True) if cid is None else Row(str(cid), name, v, p, w)
                for cid, name, v, p, w in communes
            ),
        ),
        Breakdown(
            "venue",
            N_("By venue"),
            N_("Venue"),
            tuple(Row(str(vid), name, v, p, w) for vid, name, v, p, w in venues),
        ),
        _enum_breakdown(
            "venue_type", N_("By venue type"), N_("Venue type"), VenueType, grouped(lambda c: c.venue_type)
        ),
        _enum_breakdown(
            "event_type",
            N_("By event type"),
            N_("Event type"),
            EventType,
            grouped(lambda c: events[c.event_id][0]),
        ),
        _enum_breakdown(
            "campaign", N_("By campaign"), N_("Campaign"), Campaign, grouped(lambda c: events[c.event_id][1])
        ),
        Breakdown(
            "month",
            N_("By month"),
            N_("Month"),
            tuple(
                Row(
                    str(m),
                    MONTH_OF_YEAR if spans_years else MONTH,
                    *months.get(index, (0, 0, 0)),
                    translate=True,
                    params=(("month", m), ("year", y)) if spans_years else (("month", m),),
                )
                for index, (y, m) in enumerate(twelve_months(window), start=1)
            ),
        ),
        _enum_breakdown(
            "age_band", N_("By age group"), N_("Age group"), AgeBand, members(counted.by_age_band())
        ),
        _enum_breakdown("gender", N_("By gender"), N_("Gender"), Gender, members(counted.by_gender())),
    )
    return YearlyTotals(
        window=window,
        unit_name=None if area.unit_ids is None else area.name,
        visits=int(visits),
        people=int(total_people),
        walk_ins=int(walk_ins),
        breakdowns=breakdowns,
        generated_at=(now or utcnow()).astimezone(tz),
    )


def twelve_months(window: ReportWindow) -> list[tuple[int, int]]:
    """(year, month) of the twelve months of the window's reporting year, in order."""
    year, month = window.start.year, window.start.month
    out = []
    for _ in range(12):
        out.append((year, month))
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return out


def _enum_breakdown(key: str, title: str, column: str, kind: type[StrEnum], rows: list[Any]) -> Breakdown:
    """Every member of the enum in its declared order, with zeros where nothing was recorded, and a last
    row for walk-ins counted without this detail (only when there are some)."""
    counts = {None if value is None else kind(value): (v, p, w) for value, v, p, w in rows}
    known = [
        Row(member.value, labels.label(member), *counts.get(member, (0, 0, 0)), translate=True)
        for member in kind
    ]
    unknown = [Row("", NOT_RECORDED, *counts[None], translate=True)] if counts.get(None, (0,))[0] else []
    return Breakdown(key, title, column, tuple(known + unknown))


def window_tally(
    session: Session,
    window: ReportWindow,
    area: Area | None,
    tz: tzinfo,
    events: frozenset[int] | None = None,
) -> tally.Tally:
    """Every counted record of the window in the area (and of these events): counting.visit_rows through
    the kept aggregates of services/rollup.py, one reading shared by every table and indicator of a page."""
    return tally.tally(session, window.start, window.end, window.bounds(tz), area, tz, events)


def by_ids(session: Session, columns: tuple[Any, ...], ids: set[Any]) -> list[Any]:
    """Rows of `columns` (the first one an id) for these ids, in a few statements: SQLite's variables are
    limited; a PostgreSQL round trip costs more than a long list."""
    wanted = sorted(ids)
    size = 900 if session.get_bind().dialect.name == "sqlite" else 10_000
    out: list[Any] = []
    for start in range(0, len(wanted), size):
        out += session.execute(sa_select(*columns).where(columns[0].in_(wanted[start : start + size]))).all()
    return out
