"""Library figures and book rotations imported from a CSV or XLSX file: every line is checked first, and
one bad line stores nothing (one transaction). The columns are in docs/library-figures.md.
"""

from __future__ import annotations

import csv
import io
import logging
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime

from sqlmodel import Session, select

from server.auth import can_use_venue
from server.errors import N_, AppError, ErrorCode
from server.guards import CONTROL
from server.models import ChangeSource, LibraryFigure, LibraryMetric, Staff, Venue, VenueType, utcnow
from server.services import audit, library
from server.services.places_csv import RowError

logger = logging.getLogger(__name__)

COLUMNS = ("kind", "venue", "year", "month", "metric", "value", "to_venue", "date", "note")
REQUIRED_COLUMNS = ("venue", "value")
KINDS = ("figure", "rotation", "school_year", "standard")
YES = ("1", "yes", "y", "có", "co", "x", "true")
NO = ("0", "no", "n", "không", "khong", "false")
MAX_ROWS = 20_000
TEMPLATE = (
    "kind,venue,year,month,metric,value,to_venue,date,note\n"
    "figure,TV-VANQUAN,2026,1,titles_added,35,,,\n"
    "figure,TV-VANQUAN,2026,1,copies_added,120,,,\n"
    "figure,TV-VANQUAN,2026,1,materials_served,2450,,,\n"
    "figure,TV-VANQUAN,2026,1,desk_visits,830,,,\n"
    "rotation,TV-VANQUAN,,,,150,TV-TRILE,2026-01-15,Sách thiếu nhi\n"
    "school_year,TH-VANQUAN,2026,,,yes,,,\n"
    "standard,TH-VANQUAN,,,,yes,,2025-09-05,\n"
)


@dataclass
class ImportSummary:
    figures: int = 0  # cells that changed
    rotations: int = 0
    school: int = 0  # school-library years and standard dates that changed


@dataclass
class _Row:
    line: int
    values: dict[str, str]


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return " ".join(str(value).split())


def _records_csv(data: bytes) -> list[tuple[int, list[str]]]:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise AppError(
            ErrorCode.import_failed, rows=[RowError(1, N_("The file is not UTF-8 text."))]
        ) from error
    first = text.split("\n", 1)[0]
    reader = csv.reader(
        io.StringIO(text, newline=""), delimiter=";" if first.count(";") > first.count(",") else ","
    )
    records: list[tuple[int, list[str]]] = []
    start = 1
    try:
        for record in reader:
            records.append((start, [_cell(c) for c in record]))
            start = reader.line_num + 1
            if len(records) > MAX_ROWS + 1:
                break
    except csv.Error as error:
        rows = [RowError(start, N_("This line cannot be read as CSV."))]
        raise AppError(ErrorCode.import_failed, rows=rows) from error
    return records


def _records_xlsx(data: bytes) -> list[tuple[int, list[str]]]:
    import openpyxl  # only imports need it
    from openpyxl.utils.exceptions import InvalidFileException

    try:
        book = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
        sheet = book.worksheets[0]
        records: list[tuple[int, list[str]]] = []
        for number, row in enumerate(sheet.iter_rows(values_only=True), start=1):
            records.append((number, [_cell(c) for c in row]))
            if len(records) > MAX_ROWS + 1:
                break
        book.close()
    except (InvalidFileException, zipfile.BadZipFile, KeyError, ValueError, IndexError, OSError) as error:
        rows = [RowError(1, N_("This file cannot be read as an Excel workbook (.xlsx)."))]
        raise AppError(ErrorCode.import_failed, rows=rows) from error
    return records


def _rows(records: list[tuple[int, list[str]]]) -> list[_Row]:
    header: list[str] | None = None
    rows: list[_Row] = []
    for line, record in records:
        if not any(record):
            continue
        if header is None:
            header = [cell.lower() for cell in record]
            while header and not header[-1]:
                header.pop()
            unknown = [name for name in header if name not in COLUMNS]
            missing = [name for name in REQUIRED_COLUMNS if name not in header]
            if unknown or missing:
                names = ", ".join(unknown) or ", ".join(missing)
                message = N_("Unknown column: %(names)s.") if unknown else N_("Missing column: %(names)s.")
                raise AppError(ErrorCode.import_failed, rows=[RowError(line, message, {"names": names})])
            continue
        if any(record[len(header) :]):
            raise AppError(
                ErrorCode.import_failed,
                rows=[RowError(line, N_("This line has more cells than the header."))],
            )
        cells = record[: len(header)] + [""] * (len(header) - len(record))
        rows.append(_Row(line, dict(zip(header, cells, strict=True))))
        if len(rows) > MAX_ROWS:
            rows_error = [RowError(line, N_("The file has more than %(max)s rows."), {"max": MAX_ROWS})]
            raise AppError(ErrorCode.import_failed, rows=rows_error)
    if not rows:
        raise AppError(ErrorCode.import_failed, rows=[RowError(1, N_("The file has no rows to import."))])
    return rows


def _find_venue(session: Session, cache: dict[str, Venue | None], ref: str) -> Venue | None:
    """A venue by its code, or by its number written as #12 (codes never contain #)."""
    if ref not in cache:
        if ref.startswith("#"):
            venue_id = library.parse_id(ref[1:])
            cache[ref] = session.get(Venue, venue_id) if venue_id is not None else None
        else:
            cache[ref] = session.exec(select(Venue).where(Venue.code == ref)).first() if ref else None
    return cache[ref]


@dataclass
class _Figure:
    venue: Venue
    year: int
    month: int
    metric: LibraryMetric
    value: int


@dataclass
class _School:
    venue: Venue
    year: int | None  # None: a standard line
    offers: bool
    since: date | None


@dataclass
class _Rotation:
    venue: Venue
    to_venue: Venue
    data: library.RotationInput


def _check(
    session: Session, staff: Staff, rows: list[_Row], today: date
) -> tuple[list[_Figure | _Rotation | _School], list[RowError]]:
    venues: dict[str, Venue | None] = {}
    seen: dict[tuple[int, int, int, LibraryMetric], int] = {}
    seen_school: dict[tuple[str, int, int], int] = {}
    items: list[_Figure | _Rotation | _School] = []
    errors: list[RowError] = []
    for row in rows:
        v, line = row.values, row.line
        before = len(errors)

        def error(message: str, _line: int = line, **params: str | int) -> None:
            errors.append(RowError(_line, message, params))

        if any(CONTROL.search(value) for value in v.values()):
            # The file is data the request guard does not read; its text must pass the same rule as a form's.
            error(N_("This line holds invisible control characters (such as a NUL byte)."))
            continue
        kind = (v.get("kind") or "figure").lower()
        if kind not in KINDS:
            error(N_('Unknown kind "%(kind)s": write figure, rotation, school_year or standard.'), kind=kind)
            continue
        venue = _find_venue(session, venues, v.get("venue", ""))
        if not v.get("venue"):
            error(N_("The venue is missing."))
        elif venue is None:
            error(N_("No venue has the code %(code)s."), code=v["venue"])
        elif not can_use_venue(session, staff, venue):
            error(N_("You may not enter figures for %(venue)s."), venue=venue.name)
        if kind in ("school_year", "standard"):
            item = _check_school(kind, v, venue, today, error)
            if item is not None and len(errors) == before:
                key_s = (kind, item.venue.id or 0, item.year or 0)
                if key_s in seen_school:
                    error(
                        N_("The same school library is already on line %(other)s."), other=seen_school[key_s]
                    )
                else:
                    seen_school[key_s] = line
                    items.append(item)
        elif kind == "figure":
            year = int(v["year"]) if v.get("year", "").isdigit() and len(v["year"]) == 4 else 0
            month = int(v["month"]) if v.get("month", "").isdigit() and len(v["month"]) <= 2 else 0
            if problem := library.year_problem(year, today) or library.month_problem(year, month, today):
                error(problem)
            try:
                metric: LibraryMetric | None = LibraryMetric(v.get("metric", "").lower())
            except ValueError:
                metric = None
                error(N_('Unknown metric "%(metric)s".'), metric=v.get("metric", ""))
            value, problem = library.parse_count(v.get("value", ""))
            if problem:
                error(N_("The value is missing.") if not v.get("value") else problem)
            if venue is not None and metric is not None and len(errors) == before:
                key = (venue.id or 0, year, month, metric)
                if key in seen:
                    error(N_("The same figure is already on line %(other)s."), other=seen[key])
                seen.setdefault(key, line)
            if len(errors) == before:
                assert venue is not None and metric is not None and value is not None
                items.append(_Figure(venue, year, month, metric, value))
        else:
            to_venue = _find_venue(session, venues, v.get("to_venue", ""))
            if not v.get("to_venue"):
                error(N_("The receiving venue (to_venue) is missing."))
            elif to_venue is None:
                error(N_("No venue has the code %(code)s."), code=v["to_venue"])
            elif venue is not None and library.rotation_target(session, venue, to_venue.id or 0) is None:
                error(N_("The books must go to another active venue."))
            copies, problem = library.parse_count(v.get("value", ""), minimum=1)
            if problem:
                error(N_("The value is missing.") if not v.get("value") else problem)
            sent_on = library.parse_day(v.get("date", ""))
            if sent_on is None:
                error(N_("Enter the date the books were sent, as 2026-03-31 or 31/03/2026."))
            elif problem := library.day_problem(sent_on, today):
                error(problem)
            if len(v.get("note", "")) > 300:
                error(N_("The note is too long (at most 300 characters)."))
            if len(errors) == before:
                assert venue is not None and to_venue is not None and copies and sent_on
                data = library.RotationInput(to_venue.id or 0, copies, sent_on, v.get("note", ""))
                items.append(_Rotation(venue, to_venue, data))
    return items, errors


def _check_school(
    kind: str, v: dict[str, str], venue: Venue | None, today: date, error: Callable[..., None]
) -> _School | None:
    """A school_year line (year, value yes/no) or a standard line (value yes with the date, or no)."""
    value = v.get("value", "").lower()
    if value not in YES + NO:
        error(N_('Write yes or no (1 or 0) in "value".'))
    if venue is not None and venue.type != VenueType.school_library:
        error(N_("%(venue)s is not a school library."), venue=venue.name)
    if kind == "school_year":
        year = int(v["year"]) if v.get("year", "").isdigit() and len(v["year"]) == 4 else 0
        if problem := library.year_problem(year, today):
            error(problem)
        if venue is None or value not in YES + NO or problem:
            return None
        return _School(venue, year, value in YES, None)
    since = library.parse_day(v.get("date", "")) if value in YES else None
    if value in YES and since is None:
        error(N_("Enter the date the library met the standard, as 2025-09-05 or 05/09/2025."))
    elif since is not None and (problem := library.day_problem(since, today)):
        error(problem)
        since = None
    if venue is None or value not in YES + NO or (value in YES and since is None):
        return None
    return _School(venue, None, False, since)


def import_file(
    session: Session, staff: Staff, data: bytes, *, xlsx: bool, today: date, now: datetime | None = None
) -> ImportSummary:
    """Figures, rotations and school-library values from a CSV or XLSX file, all or nothing.

    Raises AppError(import_failed) with `extra["rows"]`, a list of RowError (line numbers as in the file,
    the header being line 1).
    """
    rows = _rows(_records_xlsx(data) if xlsx else _records_csv(data))
    items, errors = _check(session, staff, rows, today)
    if errors:
        raise AppError(ErrorCode.import_failed, rows=errors)
    now = now or utcnow()
    summary = ImportSummary()
    source = ChangeSource.import_file
    try:
        existing: dict[tuple[int, int], dict[library.FigureKey, LibraryFigure]] = {}
        for item in items:
            if isinstance(item, _Figure):
                venue_id = item.venue.id or 0
                if (venue_id, item.year) not in existing:
                    existing[venue_id, item.year] = library.year_figures(session, venue_id, item.year)
                key = (item.month, item.metric)
                current = existing[venue_id, item.year].get(key)
                if library.apply_figure(
                    session, staff, item.venue, item.year, key, item.value, current, source=source, now=now
                ):
                    summary.figures += 1  # a cell is on one line at most (checked above)
            elif isinstance(item, _School):
                if item.year is not None:
                    change = library.set_offers(
                        session, staff, item.venue, item.year, item.offers, source=source, now=now
                    )
                else:
                    change = library.set_standard(
                        session, staff, item.venue, item.since, source=source, now=now
                    )
                summary.school += change
            else:
                library.record_rotation(
                    session, staff, item.venue, item.to_venue, item.data, source=source, now=now
                )
                summary.rotations += 1
        audit.record(
            session,
            staff,
            audit.Action.library_imported,
            detail={"figures": summary.figures, "rotations": summary.rotations, "school": summary.school},
        )
        library.commit(session)
    except BaseException:
        session.rollback()
        raise
    logger.info(
        "library import by staff %s: %s figures changed, %s rotations added, %s school values changed",
        staff.id,
        summary.figures,
        summary.rotations,
        summary.school,
    )
    return summary
