"""Library figures entered by hand: monthly figures, book rotations, school-library years and the library
standard, each change kept in an edit history (LibraryChange). The indicator engine reads them through
`monthly_sums`, `rotation_copies`, `school_years`, `standard_since` and, for drill-down, `figure_rows` and
`rotation_rows`. CSV and XLSX imports are in services/library_import.py and call the same rules.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import ColumnElement, func
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from server.auth import can_use_venue, venue_scope_clause
from server.errors import N_, AppError, ErrorCode, FormError
from server.models import (
    BookRotation,
    ChangeSource,
    LibraryChange,
    LibraryFigure,
    LibraryMetric,
    LibraryStandard,
    OrgUnit,
    SchoolLibraryYear,
    Staff,
    Venue,
    VenueType,
    utcnow,
)
from server.services import audit

logger = logging.getLogger(__name__)

MAX_VALUE = 10_000_000
MAX_ID = 2**31 - 1  # ids are 32-bit integers on PostgreSQL: a larger number is no row, not a database error
FIRST_YEAR = 2000
OUTLIER_FACTOR = 3  # a value over 3x, or under a third of, last year's is saved with a warning
HISTORY_LIMIT = 200
# Venues that hold books; the list page offers these (any venue in scope can still be entered).
LIBRARY_TYPES = (
    VenueType.provincial_library,
    VenueType.commune_library,
    VenueType.school_library,
    VenueType.armed_forces_library,
    VenueType.community_learning_centre,
    VenueType.post_culture_point,
    VenueType.legal_bookcase,
)
_NUMBER = re.compile(r"\d{1,8}|\d{1,3}(?:[.,]\d{3})+")  # 1234 or 1.234 / 1,234 (thousands)

FigureKey = tuple[int, LibraryMetric]  # (month, metric)


@dataclass(frozen=True)
class Outlier:
    month: int
    metric: LibraryMetric
    value: int
    reference: int  # last year's same month, or last year's monthly average
    same_month: bool  # which of the two `reference` is


@dataclass(frozen=True)
class SaveResult:
    changed: int
    warnings: list[Outlier]


@dataclass(frozen=True)
class RotationInput:
    to_venue_id: int
    copies: int
    sent_on: date
    note: str = ""


@dataclass(frozen=True)
class FigureRow:
    figure: LibraryFigure
    venue: Venue


@dataclass(frozen=True)
class RotationRow:
    rotation: BookRotation
    from_venue: Venue
    to_venue: Venue


@dataclass(frozen=True)
class ChangeRow:
    change: LibraryChange
    staff_name: str


def commit(session: Session) -> None:
    """Commit, turning a unique-key race (two people saving the same new cell at once) into `conflict`."""
    try:
        session.commit()
    except IntegrityError as error:
        session.rollback()
        raise AppError(ErrorCode.conflict) from error


# --- Reading values ------------------------------------------------------------------------------------


def parse_count(raw: str, *, minimum: int = 0) -> tuple[int | None, str | None]:
    """A whole number typed by a person ("1234", "1.234"), or a message id saying why it is not one."""
    text = "".join(raw.split())
    if text.startswith("-") and _NUMBER.fullmatch(text[1:]):
        return None, N_("Enter a whole number, 0 or more (no negative numbers).")
    if not _NUMBER.fullmatch(text):
        return None, N_("Enter a whole number.")
    value = int(text.replace(".", "").replace(",", ""))
    if value > MAX_VALUE:
        return None, N_("The number is too large (at most 10,000,000).")
    if value < minimum:
        return None, N_("Enter a number of 1 or more.")
    return value, None


def parse_id(raw: str) -> int | None:
    """A row id typed or posted, if it can be one."""
    text = raw.strip()
    if not text.isdigit() or len(text) > 10 or not 0 < int(text) <= MAX_ID:
        return None
    return int(text)


def parse_day(raw: str) -> date | None:
    """A date as 2026-03-31 (a date field) or 31/03/2026 (typed, or from a spreadsheet)."""
    text = raw.strip()
    try:
        if re.fullmatch(r"\d{1,2}/\d{1,2}/\d{4}", text):
            day, month, year = (int(part) for part in text.split("/"))
            return date(year, month, day)
        return date.fromisoformat(text[:10]) if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text[:10]) else None
    except ValueError:
        return None


def year_problem(year: int, today: date) -> str | None:
    if not FIRST_YEAR <= year <= today.year:
        return N_("Choose a year from 2000 to this year.")
    return None


def month_problem(year: int, month: int, today: date) -> str | None:
    if not 1 <= month <= 12:
        return N_("The month must be from 1 to 12.")
    if (year, month) > (today.year, today.month):
        return N_("This month has not come yet.")
    return None


def day_problem(day: date, today: date) -> str | None:
    if day.year < FIRST_YEAR:
        return N_("Enter a date from 2000 on.")
    if day > today:
        return N_("The date lies in the future.")
    return None


def field_name(metric: LibraryMetric, month: int) -> str:
    return f"{metric.value}_{month}"


def parse_figures_form(
    form: Mapping[str, str], year: int, today: date, *, months: Collection[int] = range(1, 13)
) -> dict[FigureKey, int | None]:
    """The grid's cells for `months`: a number, or None for an empty cell (no figure)."""
    errors: dict[str, str] = {}
    values: dict[FigureKey, int | None] = {}
    for month in months:
        for metric in LibraryMetric:
            name = field_name(metric, month)
            raw = (form.get(name) or "").strip()
            if not raw:
                values[month, metric] = None
                continue
            value, problem = parse_count(raw)
            problem = problem or month_problem(year, month, today)
            if problem:
                errors[name] = problem
            values[month, metric] = value
    if errors:
        raise FormError(errors)
    return values


def unsaved_cells(
    session: Session, venue_id: int, year: int, form: Mapping[str, str], months: Collection[int]
) -> dict[str, str]:
    """The grid's cells of `months` whose typed value differs from what is stored (by value: "3.400" is
    3400), so that saving one month can keep what was typed in the others."""
    stored = year_figures(session, venue_id, year)
    pending = {}
    for month in months:
        for metric in LibraryMetric:
            name = field_name(metric, month)
            raw = (form.get(name) or "").strip()
            value = parse_count(raw)[0] if raw else None
            figure = stored.get((month, metric))
            if (value is None and raw) or value != (figure.value if figure else None):
                pending[name] = raw
    return pending


# --- Venues and scope ----------------------------------------------------------------------------------


def get_venue(session: Session, staff: Staff, venue_id: int) -> Venue:
    """The venue, if it exists and lies in the staff member's scope."""
    venue = session.get(Venue, venue_id) if 0 < venue_id <= MAX_ID else None
    if venue is None:
        raise AppError(ErrorCode.not_found)
    if not can_use_venue(session, staff, venue):
        raise AppError(ErrorCode.forbidden)
    return venue


def library_venues(session: Session, staff: Staff) -> list[tuple[Venue, OrgUnit]]:
    """Active venues in scope that hold books, by place and name."""
    stmt = (
        select(Venue, OrgUnit)
        .join(OrgUnit, col(OrgUnit.id) == Venue.unit_id)
        .where(venue_scope_clause(session, staff), col(Venue.active).is_(True))
        .where(col(Venue.type).in_(LIBRARY_TYPES))
        .order_by(col(OrgUnit.path), col(Venue.name))
    )
    return [(venue, unit) for venue, unit in session.exec(stmt).all()]


def _log_change(
    session: Session,
    staff: Staff,
    venue_id: int,
    entity: str,
    key: str,
    field: str,
    old: str | None,
    new: str | None,
    source: ChangeSource,
    now: datetime,
) -> None:
    session.add(
        LibraryChange(
            venue_id=venue_id,
            entity=entity,
            key=key,
            field=field,
            old_value=old,
            new_value=new,
            staff_id=staff.id,
            at=now,
            source=source,
        )
    )


# --- Monthly figures -----------------------------------------------------------------------------------


def year_figures(session: Session, venue_id: int, year: int) -> dict[FigureKey, LibraryFigure]:
    rows = session.exec(
        select(LibraryFigure).where(LibraryFigure.venue_id == venue_id, LibraryFigure.year == year)
    ).all()
    return {(f.month, f.metric): f for f in rows}


def apply_figure(
    session: Session,
    staff: Staff,
    venue: Venue,
    year: int,
    key: FigureKey,
    value: int | None,
    existing: LibraryFigure | None,
    *,
    source: ChangeSource,
    now: datetime,
) -> bool:
    """Store one cell and its history row, without committing; False when nothing changed."""
    month, metric = key
    old = existing.value if existing is not None else None
    if old == value:
        return False
    if value is None:
        assert existing is not None
        session.delete(existing)
    elif existing is None:
        session.add(
            LibraryFigure(
                venue_id=venue.id or 0,
                year=year,
                month=month,
                metric=metric,
                value=value,
                updated_at=now,
                updated_by_id=staff.id,
            )
        )
    else:
        existing.value, existing.updated_at, existing.updated_by_id = value, now, staff.id
        session.add(existing)
    _log_change(
        session,
        staff,
        venue.id or 0,
        "figure",
        f"{year:04d}-{month:02d}",
        metric.value,
        None if old is None else str(old),
        None if value is None else str(value),
        source,
        now,
    )
    return True


def save_figures(
    session: Session,
    staff: Staff,
    venue: Venue,
    year: int,
    values: Mapping[FigureKey, int | None],
    *,
    today: date,
    source: ChangeSource = ChangeSource.form,
    now: datetime | None = None,
) -> SaveResult:
    """Store a venue's figures for some months of a year (None empties a cell) and keep the history.

    Values must be 0..10,000,000 and months not in the future; an outlier against last year is saved and
    returned among `warnings` for the page to show.
    """
    if not can_use_venue(session, staff, venue):
        raise AppError(ErrorCode.forbidden)
    if problem := year_problem(year, today):
        raise FormError({"year": problem})
    errors: dict[str, str] = {}
    for (month, metric), value in values.items():
        problem = month_problem(year, month, today) if value is not None else None
        if value is not None and not 0 <= value <= MAX_VALUE:
            problem = N_("Enter a whole number from 0 to 10,000,000.")
        if problem:
            errors[field_name(metric, month)] = problem
    if errors:
        raise FormError(errors)
    now = now or utcnow()
    existing = year_figures(session, venue.id or 0, year)
    changed = [
        key
        for key, value in values.items()
        if apply_figure(session, staff, venue, year, key, value, existing.get(key), source=source, now=now)
    ]
    if changed:
        audit.record(
            session,
            staff,
            audit.Action.library_figures_saved,
            target_kind="venue",
            target_id=venue.id,
            detail={"year": year, "cells": len(changed)},
        )
    commit(session)
    if changed:
        logger.info(
            "library figures: %s cells of venue %s year %s changed by staff %s",
            len(changed),
            venue.id,
            year,
            staff.id,
        )
    found = outliers(session, venue.id or 0, year)
    return SaveResult(len(changed), [found[key] for key in changed if key in found])


def outliers(session: Session, venue_id: int, year: int) -> dict[FigureKey, Outlier]:
    """Cells of the year far from last year: over 3x, or under a third of, the same month last year (or,
    when that month was not entered, last year's monthly average for the metric)."""
    current = year_figures(session, venue_id, year)
    before = year_figures(session, venue_id, year - 1)
    found: dict[FigureKey, Outlier] = {}
    for (month, metric), figure in current.items():
        same = before.get((month, metric))
        if same is not None:
            reference, same_month = same.value, True
        else:
            last = [f.value for (_m, m), f in before.items() if m == metric]
            if not last:
                continue
            reference, same_month = round(sum(last) / len(last)), False
        if reference <= 0:
            continue  # no base to compare with
        if figure.value > OUTLIER_FACTOR * reference or figure.value * OUTLIER_FACTOR < reference:
            found[month, metric] = Outlier(month, metric, figure.value, reference, same_month)
    return found


# --- Book rotations ------------------------------------------------------------------------------------


def parse_rotation_form(form: Mapping[str, str], today: date) -> RotationInput:
    errors: dict[str, str] = {}
    raw_to = (form.get("to_venue_id") or "").strip()
    to_venue_id = parse_id(raw_to)
    if to_venue_id is None:
        errors["to_venue_id"] = N_("Choose the library the books went to.")
    copies, problem = parse_count(form.get("copies") or "", minimum=1)
    if problem:
        errors["copies"] = problem
    sent_on = parse_day(form.get("sent_on") or "")
    if sent_on is None:
        errors["sent_on"] = N_("Enter a date.")
    elif problem := day_problem(sent_on, today):
        errors["sent_on"] = problem
    note = " ".join((form.get("note") or "").split())
    if len(note) > 300:
        errors["note"] = N_("The note is too long (at most 300 characters).")
    if errors:
        raise FormError(errors)
    assert copies is not None and sent_on is not None and to_venue_id is not None
    return RotationInput(to_venue_id, copies, sent_on, note)


def rotation_target(session: Session, from_venue: Venue, to_venue_id: int) -> Venue | None:
    """The venue a batch may go to: another active venue (in any commune), or None."""
    venue = session.get(Venue, to_venue_id) if 0 < to_venue_id <= MAX_ID else None
    if venue is None or not venue.active or venue.id == from_venue.id:
        return None
    return venue


def rotation_targets(session: Session, from_venue: Venue) -> list[tuple[Venue, OrgUnit]]:
    """The libraries a batch may go to, for the picker: active venues that hold books, anywhere."""
    stmt = (
        select(Venue, OrgUnit)
        .join(OrgUnit, col(OrgUnit.id) == Venue.unit_id)
        .where(col(Venue.active).is_(True), col(Venue.type).in_(LIBRARY_TYPES), Venue.id != from_venue.id)
        .order_by(col(OrgUnit.path), col(Venue.name))
    )
    return [(venue, unit) for venue, unit in session.exec(stmt).all()]


def _rotation_fields(rotation: BookRotation, to_name: str) -> list[tuple[str, str]]:
    return [
        ("to_venue", to_name),
        ("copies", str(rotation.copies)),
        ("sent_on", rotation.sent_on.isoformat()),
    ]


def record_rotation(
    session: Session,
    staff: Staff,
    from_venue: Venue,
    to_venue: Venue,
    data: RotationInput,
    *,
    source: ChangeSource,
    now: datetime,
) -> BookRotation:
    """Add a batch and its history rows, without committing (the import commits once for a file)."""
    rotation = BookRotation(
        from_venue_id=from_venue.id or 0,
        to_venue_id=to_venue.id or 0,
        copies=data.copies,
        sent_on=data.sent_on,
        note=data.note,
        recorded_by_id=staff.id,
        recorded_at=now,
    )
    session.add(rotation)
    session.flush()
    for field, value in _rotation_fields(rotation, to_venue.name):
        key = str(rotation.id)
        _log_change(session, staff, from_venue.id or 0, "rotation", key, field, None, value, source, now)
    return rotation


def add_rotation(
    session: Session,
    staff: Staff,
    from_venue: Venue,
    data: RotationInput,
    *,
    today: date,
    now: datetime | None = None,
) -> BookRotation:
    """Record a batch of books sent from a venue in scope to another venue."""
    if not can_use_venue(session, staff, from_venue):
        raise AppError(ErrorCode.forbidden)
    errors: dict[str, str] = {}
    to_venue = rotation_target(session, from_venue, data.to_venue_id)
    if to_venue is None:
        errors["to_venue_id"] = N_("Choose the library the books went to.")
    if not 1 <= data.copies <= MAX_VALUE:
        errors["copies"] = N_("Enter a number of copies from 1 to 10,000,000.")
    if problem := day_problem(data.sent_on, today):
        errors["sent_on"] = problem
    if len(data.note) > 300:
        errors["note"] = N_("The note is too long (at most 300 characters).")
    if errors:
        raise FormError(errors)
    assert to_venue is not None
    rotation = record_rotation(
        session, staff, from_venue, to_venue, data, source=ChangeSource.form, now=now or utcnow()
    )
    audit.record(
        session,
        staff,
        audit.Action.library_rotation_added,
        target_kind="rotation",
        target_id=rotation.id,
        detail={"from": from_venue.id, "to": to_venue.id, "copies": rotation.copies},
    )
    commit(session)
    session.refresh(rotation)
    logger.info(
        "book rotation %s: %s copies from venue %s to %s by staff %s",
        rotation.id,
        rotation.copies,
        rotation.from_venue_id,
        rotation.to_venue_id,
        staff.id,
    )
    return rotation


def delete_rotation(
    session: Session, staff: Staff, rotation_id: int, *, now: datetime | None = None
) -> BookRotation:
    """Remove a batch entered by mistake; its history rows say what it was."""
    rotation = session.get(BookRotation, rotation_id) if 0 < rotation_id <= MAX_ID else None
    if rotation is None:
        raise AppError(ErrorCode.not_found)
    from_venue = get_venue(session, staff, rotation.from_venue_id)
    to_venue = session.get(Venue, rotation.to_venue_id)
    now = now or utcnow()
    for field, value in _rotation_fields(rotation, to_venue.name if to_venue else ""):
        key = str(rotation.id)
        _log_change(
            session, staff, from_venue.id or 0, "rotation", key, field, value, None, ChangeSource.form, now
        )
    session.delete(rotation)
    audit.record(
        session,
        staff,
        audit.Action.library_rotation_deleted,
        target_kind="rotation",
        target_id=rotation_id,
        detail={"from": rotation.from_venue_id, "copies": rotation.copies},
    )
    commit(session)
    logger.info("book rotation %s deleted by staff %s", rotation_id, staff.id)
    return rotation


def venue_rotations(session: Session, venue_id: int, year: int) -> list[RotationRow]:
    """Batches a venue sent or received in a calendar year, newest first."""
    return rotation_rows(session, date(year, 1, 1), date(year, 12, 31), None, involving=venue_id)


# --- School libraries ----------------------------------------------------------------------------------


def school_status(session: Session, venue_id: int, year: int) -> tuple[SchoolLibraryYear | None, date | None]:
    entry = session.exec(
        select(SchoolLibraryYear).where(
            SchoolLibraryYear.venue_id == venue_id, SchoolLibraryYear.year == year
        )
    ).first()
    standard = session.get(LibraryStandard, venue_id)
    return entry, standard.met_since if standard else None


def parse_school_form(form: Mapping[str, str], today: date) -> tuple[bool, date | None]:
    offers = (form.get("offers_lifelong_learning") or "") == "yes"
    raw = (form.get("standard_since") or "").strip()
    if not raw:
        return offers, None
    since = parse_day(raw)
    if since is None:
        raise FormError({"standard_since": N_("Enter a date.")})
    if problem := day_problem(since, today):
        raise FormError({"standard_since": problem})
    return offers, since


def set_offers(
    session: Session,
    staff: Staff,
    venue: Venue,
    year: int,
    offers: bool,
    *,
    source: ChangeSource,
    now: datetime,
) -> int:
    """Store a school library's yearly flag and its history row, without committing; 1 if it changed."""
    entry = session.exec(
        select(SchoolLibraryYear).where(
            SchoolLibraryYear.venue_id == venue.id, SchoolLibraryYear.year == year
        )
    ).first()
    old_offers = None if entry is None else entry.offers_lifelong_learning
    if old_offers == offers:
        return 0
    entry = entry or SchoolLibraryYear(venue_id=venue.id or 0, year=year)
    entry.offers_lifelong_learning, entry.updated_at, entry.updated_by_id = offers, now, staff.id
    session.add(entry)
    old = None if old_offers is None else ("yes" if old_offers else "no")
    new = "yes" if offers else "no"
    field = "offers_lifelong_learning"
    _log_change(session, staff, venue.id or 0, "school_year", str(year), field, old, new, source, now)
    return 1


def set_standard(
    session: Session, staff: Staff, venue: Venue, since: date | None, *, source: ChangeSource, now: datetime
) -> int:
    """Store since when a school library meets the standard (None: it does not), without committing."""
    standard = session.get(LibraryStandard, venue.id)
    old = standard.met_since if standard else None
    if old == since:
        return 0
    if since is None:
        assert standard is not None
        session.delete(standard)
    else:
        standard = standard or LibraryStandard(venue_id=venue.id or 0, met_since=since)
        standard.met_since, standard.updated_at, standard.updated_by_id = since, now, staff.id
        session.add(standard)
    old_text, new_text = (d.isoformat() if d else None for d in (old, since))
    _log_change(session, staff, venue.id or 0, "standard", "", "met_since", old_text, new_text, source, now)
    return 1


def save_school_year(
    session: Session,
    staff: Staff,
    venue: Venue,
    year: int,
    offers: bool,
    standard_since: date | None,
    *,
    today: date,
    now: datetime | None = None,
) -> int:
    """Store whether a school library offered lifelong-learning services in a year and since when it meets
    the standard (None: it does not); returns how many values changed."""
    if not can_use_venue(session, staff, venue):
        raise AppError(ErrorCode.forbidden)
    if venue.type != VenueType.school_library:
        raise FormError({"offers_lifelong_learning": N_("Only a school library has these fields.")})
    if problem := year_problem(year, today):
        raise FormError({"year": problem})
    if standard_since is not None and (problem := day_problem(standard_since, today)):
        raise FormError({"standard_since": problem})
    now = now or utcnow()
    changed = set_offers(session, staff, venue, year, offers, source=ChangeSource.form, now=now)
    changed += set_standard(session, staff, venue, standard_since, source=ChangeSource.form, now=now)
    if changed:
        audit.record(
            session,
            staff,
            audit.Action.library_school_saved,
            target_kind="venue",
            target_id=venue.id,
            detail={"year": year},
        )
    commit(session)
    if changed:
        logger.info(
            "school library %s year %s: %s values changed by staff %s", venue.id, year, changed, staff.id
        )
    return changed


# --- History -------------------------------------------------------------------------------------------


def history(session: Session, venue_id: int, *, limit: int = HISTORY_LIMIT) -> list[ChangeRow]:
    """The venue's changes, newest first, with who made each."""
    stmt = (
        select(LibraryChange, Staff)
        .join(Staff, col(Staff.id) == LibraryChange.staff_id, isouter=True)
        .where(LibraryChange.venue_id == venue_id)
        .order_by(col(LibraryChange.at).desc(), col(LibraryChange.id).desc())
        .limit(limit)
    )
    return [
        ChangeRow(change, (staff.full_name or staff.username) if staff else "")
        for change, staff in session.exec(stmt).all()
    ]


# --- What the indicator engine reads -------------------------------------------------------------------


def _month_index_bounds(start: date, end: date) -> tuple[int, int]:
    """Month numbers (year * 12 + month - 1) of the months whose first day lies in [start, end]."""
    first = start.year * 12 + start.month - 1 + (0 if start.day == 1 else 1)
    last = end.year * 12 + end.month - 1
    return first, last


def _in_window(start: date, end: date) -> ColumnElement[bool]:
    first, last = _month_index_bounds(start, end)
    index = col(LibraryFigure.year) * 12 + col(LibraryFigure.month) - 1
    return index.between(first, last)


def monthly_sums(session: Session, metric: LibraryMetric, start: date, end: date) -> dict[int, int]:
    """venue id -> the sum of a metric over the months whose first day lies in [start, end]."""
    stmt = (
        select(LibraryFigure.venue_id, func.sum(LibraryFigure.value))
        .where(LibraryFigure.metric == metric, _in_window(start, end))
        .group_by(col(LibraryFigure.venue_id))
    )
    return {int(venue_id): int(total) for venue_id, total in session.exec(stmt).all()}


def rotation_copies(session: Session, start: date, end: date) -> dict[int, int]:
    """Sending venue id -> copies of the batches sent in [start, end]."""
    stmt = (
        select(BookRotation.from_venue_id, func.sum(BookRotation.copies))
        .where(col(BookRotation.sent_on) >= start, col(BookRotation.sent_on) <= end)
        .group_by(col(BookRotation.from_venue_id))
    )
    return {int(venue_id): int(total) for venue_id, total in session.exec(stmt).all()}


def school_years(session: Session, year: int) -> dict[int, bool]:
    """venue id -> whether the school library offered lifelong-learning services that year, as entered."""
    rows = session.exec(select(SchoolLibraryYear).where(SchoolLibraryYear.year == year)).all()
    return {row.venue_id: row.offers_lifelong_learning for row in rows}


def standard_since(session: Session) -> dict[int, date]:
    """venue id -> the date its library met the standard (only venues that have one)."""
    return {row.venue_id: row.met_since for row in session.exec(select(LibraryStandard)).all()}


def figure_rows(
    session: Session,
    metric: LibraryMetric,
    start: date,
    end: date,
    venue_ids: Collection[int] | None = None,
) -> list[FigureRow]:
    """The figures behind `monthly_sums` (optionally for some venues), by venue, year and month."""
    stmt = (
        select(LibraryFigure, Venue)
        .join(Venue, col(Venue.id) == LibraryFigure.venue_id)
        .where(LibraryFigure.metric == metric, _in_window(start, end))
        .order_by(col(Venue.name), col(Venue.id), col(LibraryFigure.year), col(LibraryFigure.month))
    )
    if venue_ids is not None:
        stmt = stmt.where(col(LibraryFigure.venue_id).in_(list(venue_ids)))
    return [FigureRow(figure, venue) for figure, venue in session.exec(stmt).all()]


def rotation_rows(
    session: Session,
    start: date,
    end: date,
    venue_ids: Collection[int] | None = None,
    *,
    involving: int | None = None,
) -> list[RotationRow]:
    """The batches behind `rotation_copies` (optionally sent by some venues), newest first; `involving`
    keeps those a venue sent or received."""
    stmt = select(BookRotation).where(col(BookRotation.sent_on) >= start, col(BookRotation.sent_on) <= end)
    if venue_ids is not None:
        stmt = stmt.where(col(BookRotation.from_venue_id).in_(list(venue_ids)))
    if involving is not None:
        stmt = stmt.where((BookRotation.from_venue_id == involving) | (BookRotation.to_venue_id == involving))
    rotations = session.exec(
        stmt.order_by(col(BookRotation.sent_on).desc(), col(BookRotation.id).desc())
    ).all()
    ids = {r.from_venue_id for r in rotations} | {r.to_venue_id for r in rotations}
    venues = {v.id: v for v in session.exec(select(Venue).where(col(Venue.id).in_(ids))).all()}
    return [RotationRow(r, venues[r.from_venue_id], venues[r.to_venue_id]) for r in rotations]
