"""Every check-in and walk-in headcount of a report's window as one CSV row each, for people's own analysis.

The rows are exactly the visits that `reports.yearly_totals` counts: the same `counting.visit_rows`
conditions, window and staff scope, so the Count column sums to the report's visits and the distinct
person keys number its people. Place, venue type, age band and gender are those stored on each record (as
they were that day); the time is the visit's local date and time in the settings' time zone.

The file is UTF-8 with a BOM, comma separated, CRLF line ends, one header row in the reader's language, then
one row per record ordered by time. The column order is stable (docs/exports.md): `COLUMNS`. The person key
is the participant's number, never a name or phone; a walk-in count has none. The rows are read from the
database in batches (`yield_per`: a server-side cursor on PostgreSQL) and written out in chunks, so a year
of a million check-ins never sits in memory.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from enum import StrEnum
from typing import Any, BinaryIO

from sqlalchemy import select as sa_select
from sqlalchemy.orm import aliased
from sqlmodel import Session, col

from server import auth, labels
from server.errors import N_
from server.i18n import gettext
from server.models import (
    AgeBand,
    Campaign,
    Channel,
    Club,
    Event,
    EventType,
    Gender,
    OrgUnit,
    Role,
    Staff,
    Venue,
    VenueType,
)
from server.services import areas, audit, counting
from server.services.areas import Area
from server.services.exports import safe_cell
from server.services.reports import ReportWindow

YIELD_PER = 2000  # rows fetched from the database at a time
ROWS_PER_CHUNK = 1000  # CSV rows per chunk handed to the response or the file

COLUMNS: tuple[str, ...] = (
    N_("Record kind"),
    N_("Record number"),
    N_("Date"),
    N_("Time"),
    N_("Event number"),
    N_("Event title"),
    N_("Event type"),
    N_("Campaign"),
    N_("Club"),
    N_("Venue code"),
    N_("Venue"),
    N_("Venue type"),
    N_("Commune code"),
    N_("Commune or ward"),
    N_("Village code"),
    N_("Village"),
    N_("Channel"),
    N_("Late"),
    N_("Age group"),
    N_("Gender"),
    N_("Count"),
    N_("Person key"),
)
KINDS = {counting.CHECK_IN: N_("Check-in"), counting.WALK_IN: N_("Walk-in count")}
YES, NO = N_("yes"), N_("no")


@dataclass(frozen=True, slots=True)
class ExportRow:
    """One check-in (count 1, a person key) or one headcount change (count +n or -n, no person)."""

    kind: str  # counting.CHECK_IN or counting.WALK_IN
    record_id: int  # CheckIn.id or Headcount.id: unique together with the kind
    at: datetime  # local, in the report's time zone
    event_id: int
    event_title: str
    event_type: EventType
    campaign: Campaign
    club: str | None
    venue_code: str | None
    venue_name: str
    venue_type: VenueType
    commune_code: str | None
    commune_name: str | None
    village_code: str | None
    village_name: str | None
    channel: Channel
    late: bool | None  # None for a headcount
    age_band: AgeBand | None
    gender: Gender | None
    count: int
    person_key: int | None


def export_rows(
    session: Session, staff: Staff, window: ReportWindow, tz: tzinfo, *, area: Area | None = None
) -> Iterator[ExportRow]:
    """Every visit `yearly_totals` counts for this staff member and window, ordered by time. The role is
    checked at once (admin: everything; office: its unit's subtree; organizers are refused); the rows are
    read lazily as the iterator is consumed."""
    auth.require_role(staff, Role.admin, Role.office)
    area = area or areas.resolve_area(session, staff, "")
    detail = {"year": window.year, "area": area.value, "from": window.start, "to": window.end}
    audit.record(session, staff, audit.Action.checkins_exported, detail=detail)
    session.commit()
    return _stream(session, _statement(window, area, tz), tz)


def _statement(window: ReportWindow, area: Area, tz: tzinfo) -> Any:
    # The rows reports._facts counts (counting.visits_in), with the record's own columns beside them.
    visits = counting.visits_in(*window.bounds(tz), area)
    commune = aliased(OrgUnit)
    village = aliased(OrgUnit)
    return (
        sa_select(
            visits.c.kind,
            visits.c.record_id,
            visits.c.at,
            visits.c.event_id,
            col(Event.title),
            col(Event.type),
            col(Event.campaign),
            col(Club.name),
            col(Venue.code),
            col(Venue.name),
            visits.c.venue_type,
            col(commune.code),
            col(commune.name),
            col(village.code),
            col(village.name),
            visits.c.channel,
            visits.c.late,
            visits.c.age_band,
            visits.c.gender,
            visits.c.weight,
            visits.c.participant_id,
        )
        .select_from(visits)
        .join(Event, col(Event.id) == visits.c.event_id)
        .join(Venue, col(Venue.id) == visits.c.venue_id)
        .outerjoin(Club, col(Club.id) == Event.club_id)
        .outerjoin(commune, col(commune.id) == visits.c.commune_id)
        .outerjoin(village, col(village.id) == visits.c.village_id)
        .order_by(visits.c.at, visits.c.kind, visits.c.record_id)
        .execution_options(yield_per=YIELD_PER)
    )


def _band(value: Any) -> AgeBand | None:
    return None if value is None else AgeBand(value)


def _gender(value: Any) -> Gender | None:
    return None if value is None else Gender(value)


def _stream(session: Session, statement: Any, tz: tzinfo) -> Iterator[ExportRow]:
    result = session.execute(statement)
    try:
        for row in result:
            at: datetime = row[2] if row[2].tzinfo else row[2].replace(tzinfo=UTC)
            yield ExportRow(
                kind=row[0],
                record_id=row[1],
                at=at.astimezone(tz),
                event_id=row[3],
                event_title=row[4],
                event_type=EventType(row[5]),
                campaign=Campaign(row[6]),
                club=row[7],
                venue_code=row[8],
                venue_name=row[9],
                venue_type=VenueType(row[10]),
                commune_code=row[11],
                commune_name=row[12],
                village_code=row[13],
                village_name=row[14],
                channel=Channel(row[15]),
                late=None if row[16] is None else bool(row[16]),
                age_band=_band(row[17]),
                gender=_gender(row[18]),
                count=int(row[19]),
                person_key=row[20],
            )
    finally:
        result.close()


def header(language: str) -> list[str]:
    return [gettext(language, name) for name in COLUMNS]


def cells(row: ExportRow, language: str) -> list[object]:
    """One row's cells in `COLUMNS` order: labels in the reader's language, text made formula-safe."""

    def _(value: StrEnum | None) -> str:
        return "" if value is None else gettext(language, labels.label(value))

    values: list[object] = [
        gettext(language, KINDS[row.kind]),
        row.record_id,
        row.at.strftime("%d/%m/%Y"),
        row.at.strftime("%H:%M"),
        row.event_id,
        row.event_title,
        _(row.event_type),
        _(row.campaign),
        row.club or "",
        row.venue_code or "",
        row.venue_name,
        _(row.venue_type),
        row.commune_code or "",
        row.commune_name or "",
        row.village_code or "",
        row.village_name or "",
        _(row.channel),
        "" if row.late is None else gettext(language, YES if row.late else NO),
        _(row.age_band),
        _(row.gender),
        row.count,
        "" if row.person_key is None else row.person_key,
    ]
    return [safe_cell(value) for value in values]


def csv_chunks(rows: Iterable[ExportRow], language: str) -> Iterator[bytes]:
    """The CSV file as byte chunks (the BOM and header first), a few hundred rows at a time."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    out.write("\ufeff")
    writer.writerow([safe_cell(text) for text in header(language)])
    for number, row in enumerate(rows, start=1):
        writer.writerow(cells(row, language))
        if number % ROWS_PER_CHUNK == 0:
            yield out.getvalue().encode("utf-8")
            out.seek(0)
            out.truncate()
    yield out.getvalue().encode("utf-8")


def write_checkins_csv(rows: Iterable[ExportRow], file: BinaryIO, language: str) -> None:
    """Write the CSV to an open binary file chunk by chunk (the command line's `export-checkins`)."""
    for chunk in csv_chunks(rows, language):
        file.write(chunk)


def filename(window: ReportWindow) -> str:
    return f"diemdanh-{window.year}-checkins.csv"
