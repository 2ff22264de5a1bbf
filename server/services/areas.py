"""Where to count: everything, one unit and everything below it, or a saved reporting group.

An area is a set of unit ids (every unit of its subtrees, closed versions too). A check-in or headcount
belongs to an area by the place stored on it on its own day (`record_clause`), never by where its venue
stands today, so a later move or merge does not change last year's figures. The indicator page, the yearly
report and its exports all take their area from here.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, or_
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import Session, col, select

from server import auth
from server.errors import N_, AppError, ErrorCode, FormError
from server.models import CheckIn, Headcount, OrgUnit, ReportGroup, Role, Staff, Venue, VisitDay
from server.services import report_groups

ALL_AREA = N_("All communes and wards")


@dataclass(frozen=True)
class Area:
    """Where to count: `unit_ids` holds every unit of the area's subtrees (closed ones too); None: all."""

    value: str  # "" (everything), "u:<id>" or "g:<id>"
    name: str
    unit_ids: frozenset[int] | None
    unit_id: int | None = None  # the one unit chosen (targets set for it and its parents apply)
    translate: bool = False

    def text(self, translate: Any) -> str:
        return translate(self.name) if self.translate else self.name


def _subtree(session: Session, units: Iterable[OrgUnit]) -> frozenset[int]:
    ids: set[int] = set()
    for unit in units:
        query = select(OrgUnit.id).where(col(OrgUnit.path).startswith(unit.path))
        ids.update(i for i in session.exec(query) if i is not None)
    return frozenset(ids)


def area_choices(session: Session, staff: Staff, language: str) -> list[tuple[str, str]]:
    """(value, label) for a <select>: everything (admin), the saved groups in scope, the province and the
    communes in scope."""
    everything = [("", ALL_AREA)] if auth.scope_path(session, staff) is None else []
    return everything + report_groups.unit_choices(session, staff, language)


def resolve_area(session: Session, staff: Staff, value: str) -> Area:
    """The area a chooser's value names ("" is the staff member's whole scope), inside that scope;
    refusals are FormErrors."""
    auth.require_role(staff, Role.admin, Role.office)
    path = auth.scope_path(session, staff)
    value = value.strip()
    if not value:
        if path is None:
            return Area("", ALL_AREA, None, translate=True)
        unit = session.get(OrgUnit, staff.unit_id) if staff.unit_id else None
        if unit is None:
            raise AppError(ErrorCode.forbidden)
        return Area(f"u:{unit.id}", unit.name, _subtree(session, [unit]), unit.id)
    kind, number = report_groups.parse_area(value)
    if kind == "unit":
        unit = session.get(OrgUnit, number)
        if unit is not None and (path is None or unit.path.startswith(path)):
            return Area(value, unit.name, _subtree(session, [unit]), unit.id)
    else:
        group = session.get(ReportGroup, number)
        members = report_groups.group_units(session, number) if group else []
        if group and members and (path is None or all(m.path.startswith(path) for m in members)):
            return Area(value, group.name, _subtree(session, members))
    raise FormError({"area": N_("Choose a commune or group from the list.")})


def record_clause(model: type[CheckIn] | type[Headcount] | type[VisitDay], area: Area) -> ColumnElement[bool]:
    """Records of the area by the place stored on them (or rolled-up records, which keep it): their commune
    or village, or, for a venue above commune level, the venue's own unit."""
    if area.unit_ids is None:
        return and_(True)
    ids = list(area.unit_ids)
    province_venues = select(Venue.id).where(col(Venue.unit_id).in_(ids))
    return or_(
        col(model.commune_id).in_(ids),
        col(model.village_id).in_(ids),
        and_(col(model.commune_id).is_(None), col(model.venue_id).in_(province_venues)),
    )
