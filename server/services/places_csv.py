"""Villages and venues imported from a CSV file: every row is checked first, one bad row stores nothing.

Columns (docs/places-csv.md): kind (village or venue), code, name, parent_code, venue_type, address.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field

from sqlmodel import Session, col, select

from server.errors import N_, AppError, ErrorCode
from server.guards import CONTROL
from server.models import OrgUnit, Staff, UnitKind, Venue, VenuePlacement
from server.services import audit
from server.services.places import (
    LOCAL,
    ImportSummary,
    _add_unit,
    _check_code,
    _clean,
    _free_code,
    parse_venue_type,
)

COLUMNS = ("kind", "code", "name", "parent_code", "venue_type", "address")
REQUIRED_COLUMNS = ("kind", "name", "parent_code")
MAX_ROWS = 20_000


@dataclass(frozen=True)
class RowError:
    """One refused CSV line: `message` is a msgid formatted with `params` where it is shown."""

    line: int
    message: str
    params: dict[str, str | int] = field(default_factory=dict)


@dataclass
class _Row:
    line: int
    values: dict[str, str]


def _read_csv(text: str) -> tuple[list[_Row], list[RowError]]:
    """Rows keyed by column with the physical line each starts on (the header is line 1)."""
    text = text.removeprefix("\ufeff")
    first = text.split("\n", 1)[0]
    reader = csv.reader(
        io.StringIO(text, newline=""), delimiter=";" if first.count(";") > first.count(",") else ","
    )
    header: list[str] | None = None
    rows: list[_Row] = []
    start = 1
    try:
        for record in reader:
            line, start = start, reader.line_num + 1
            if not any(cell.strip() for cell in record):
                continue
            if header is None:
                header = [cell.strip().lower() for cell in record]
                unknown = [name for name in header if name not in COLUMNS]
                missing = [name for name in REQUIRED_COLUMNS if name not in header]
                if unknown or missing:
                    names = ", ".join(unknown) or ", ".join(missing)
                    message = (
                        N_("Unknown column: %(names)s.") if unknown else N_("Missing column: %(names)s.")
                    )
                    return [], [RowError(line, message, {"names": names})]
                continue
            if len(record) > len(header):
                return rows, [RowError(line, N_("This line has more cells than the header."))]
            cells = [_clean(cell) for cell in record] + [""] * (len(header) - len(record))
            values = dict(zip(header, cells, strict=True))
            values["kind"] = values["kind"].lower()
            rows.append(_Row(line, values))
            if len(rows) > MAX_ROWS:
                return [], [RowError(line, N_("The file has more than %(max)s rows."), {"max": MAX_ROWS})]
    except csv.Error:
        return [], [RowError(start, N_("This line cannot be read as CSV."))]
    if header is None or not rows:
        return [], [RowError(1, N_("The file has no rows to import."))]
    return rows, []


def _validate(
    row: _Row, units: dict[str, OrgUnit | _Row], seen: dict[str, int], venue_codes: set[str]
) -> list[RowError]:
    """Errors of one row; `units` holds current units and the villages of earlier lines, by code."""
    v, errors = row.values, []

    def error(message: str, **params: str | int) -> None:
        errors.append(RowError(row.line, message, params))

    kind, code, name, parent_code = (v.get(k, "") for k in ("kind", "code", "name", "parent_code"))
    if any(CONTROL.search(value) for value in v.values()):
        # The file is data the request guard does not read; its text must pass the same rule as a form's.
        error(N_("This line holds invisible control characters (such as a NUL byte)."))
    if kind not in ("village", "venue"):
        error(N_('Unknown kind "%(kind)s": write village or venue.'), kind=kind)
    if not name:
        error(N_("The name is missing."))
    elif len(name) > 200:
        error(N_("The name is too long (at most 200 characters)."))
    if code and (problem := _check_code(code)):
        error(problem)
    elif code in seen:
        error(N_("The code %(code)s is already used on line %(other)s."), code=code, other=seen[code])
    elif code and kind == "village" and code in units:
        error(N_("The code %(code)s is already used by another place."), code=code)
    elif code and kind == "venue" and code in venue_codes:
        error(N_("The code %(code)s is already used by another venue."), code=code)
    if code:
        seen.setdefault(code, row.line)
    parent = units.get(parent_code)
    parent_kind = parent.values.get("kind") if isinstance(parent, _Row) else parent.kind if parent else None
    if not parent_code:
        error(N_("The parent code is missing."))
    elif parent is None:
        error(
            N_("No commune or village has the code %(code)s (a village must come before its venues)."),
            code=parent_code,
        )
    elif kind == "village" and parent_kind != UnitKind.commune:
        error(N_("A village must belong to a commune; %(code)s is not a commune."), code=parent_code)
    elif kind == "venue" and parent_kind not in (UnitKind.commune, UnitKind.village):
        error(N_("A venue must belong to a commune or a village; %(code)s is neither."), code=parent_code)
    if kind == "venue" and parse_venue_type(v.get("venue_type", "")) is None:
        error(N_('Unknown venue type "%(type)s".'), type=v.get("venue_type", ""))
    if len(v.get("address", "")) > 300:
        error(N_("The address is too long (at most 300 characters)."))
    return errors


def import_places_csv(session: Session, text: str, *, by: Staff | None = None) -> ImportSummary:
    """Villages and venues from a CSV file: every row is checked first, and one bad row stores nothing.

    Raises AppError(import_failed) with `extra["rows"]`, a list of RowError (line numbers as in the file).
    """
    rows, errors = _read_csv(text)
    current = session.exec(select(OrgUnit).where(col(OrgUnit.valid_to).is_(None))).all()
    units: dict[str, OrgUnit | _Row] = {u.code: u for u in current}
    venue_codes = {c for c in session.exec(select(Venue.code)) if c}
    seen: dict[str, int] = {}
    for row in rows:
        errors += _validate(row, units, seen, venue_codes)
        code = row.values.get("code", "")
        if row.values["kind"] == "village" and code and code not in units:
            units[code] = row
    if errors:
        raise AppError(ErrorCode.import_failed, rows=errors)
    summary = ImportSummary()
    taken = {u.code for u in current} | set(seen)
    try:
        for row in rows:
            v = row.values
            parent = units[v["parent_code"]]
            assert isinstance(parent, OrgUnit)
            if v["kind"] == "village":
                code = v.get("code") or _free_code(parent, taken)
                units[code] = _add_unit(
                    session,
                    parent,
                    kind=UnitKind.village,
                    code=code,
                    code_system=LOCAL,
                    name=v["name"],
                    valid_from=parent.valid_from,
                )
                summary.villages += 1
            else:
                venue_type = parse_venue_type(v["venue_type"])
                assert venue_type is not None  # checked with the other rules above
                venue = Venue(
                    name=v["name"],
                    type=venue_type,
                    unit_id=parent.id or 0,
                    address=v.get("address", ""),
                    code=v.get("code") or None,
                )
                session.add(venue)
                session.flush()
                session.add(VenuePlacement(venue_id=venue.id or 0, unit_id=venue.unit_id))
                summary.venues += 1
        audit.record(
            session,
            by,
            audit.Action.places_imported,
            detail={"villages": summary.villages, "venues": summary.venues},
        )
        session.commit()
    except BaseException:
        session.rollback()
        raise
    return summary
