"""Saved reporting groups of communes (for example a former district) and the area chooser of reports:
one <select> whose values are "u:<unit id>" or "g:<group id>"."""

from __future__ import annotations

from typing import Literal

from sqlmodel import Session, col, delete, select

from server import auth
from server.errors import N_, AppError, ErrorCode, FormError
from server.i18n import gettext as translate
from server.labels import sort_key
from server.models import OrgUnit, ReportGroup, ReportGroupMember, Staff, UnitKind
from server.services import audit
from server.services.places import _clean

AreaKind = Literal["unit", "group"]
_PREFIX: dict[str, AreaKind] = {"u": "unit", "g": "group"}


def list_groups(session: Session) -> list[ReportGroup]:
    """Every saved group, by name."""
    return sorted(session.exec(select(ReportGroup)), key=lambda g: sort_key(g.name))


def group_units(session: Session, group_id: int) -> list[OrgUnit]:
    """The member units of a group, by name."""
    query = select(OrgUnit).join(ReportGroupMember, col(ReportGroupMember.unit_id) == col(OrgUnit.id))
    units = session.exec(query.where(ReportGroupMember.group_id == group_id)).all()
    return sorted(units, key=lambda u: sort_key(u.name))


def get_group(session: Session, group_id: int) -> ReportGroup:
    group = session.get(ReportGroup, group_id)
    if group is None:
        raise AppError(ErrorCode.not_found)
    return group


def save_group(
    session: Session,
    staff: Staff,
    *,
    name: str,
    unit_ids: list[int],
    description: str = "",
    group_id: int | None = None,
) -> ReportGroup:
    """Create a group (no `group_id`) or replace a group's name, description and communes."""
    group = get_group(session, group_id) if group_id is not None else None
    name, description = _clean(name), _clean(description)
    errors: dict[str, str] = {}
    if not name:
        errors["name"] = N_("Enter a name.")
    elif len(name) > 200:
        errors["name"] = N_("The name is too long (at most 200 characters).")
    if len(description) > 1000:
        errors["description"] = N_("The description is too long (at most 1000 characters).")
    wanted = set(unit_ids)
    communes = session.exec(
        select(OrgUnit.id).where(col(OrgUnit.id).in_(wanted), OrgUnit.kind == UnitKind.commune)
    ).all()
    if not wanted:
        errors["unit_ids"] = N_("Tick at least one commune.")
    elif len(communes) != len(wanted):
        errors["unit_ids"] = N_("Tick only communes from the list.")
    if errors:
        raise FormError(errors)
    if group is None:
        group = ReportGroup(name=name, description=description, created_by_id=staff.id)
    group.name, group.description = name, description
    session.add(group)
    session.flush()
    session.exec(delete(ReportGroupMember).where(col(ReportGroupMember.group_id) == group.id))
    session.add_all(ReportGroupMember(group_id=group.id or 0, unit_id=unit_id) for unit_id in sorted(wanted))
    detail = {"name": name, "communes": sorted(wanted), "new": group_id is None}
    audit.record(
        session, staff, audit.Action.group_saved, target_kind="group", target_id=group.id, detail=detail
    )
    session.commit()
    return group


def delete_group(session: Session, staff: Staff, group_id: int) -> None:
    """Delete a group and its member list (the units stay); logged."""
    group = get_group(session, group_id)
    session.exec(delete(ReportGroupMember).where(col(ReportGroupMember.group_id) == group_id))
    session.delete(group)
    detail = {"name": group.name}
    audit.record(
        session, staff, audit.Action.group_deleted, target_kind="group", target_id=group_id, detail=detail
    )
    session.commit()


def area_unit_ids(session: Session, kind: AreaKind, id: int) -> set[int]:
    """The communes an area stands for: a group's members, a province's communes (every version), a
    commune or village itself."""
    if kind == "group":
        get_group(session, id)
        return {u.id for u in group_units(session, id) if u.id is not None}
    unit = session.get(OrgUnit, id)
    if unit is None:
        raise AppError(ErrorCode.not_found)
    if unit.kind != UnitKind.province:
        return {id}
    below = col(OrgUnit.path).startswith(unit.path)
    query = select(OrgUnit.id).where(OrgUnit.kind == UnitKind.commune, below)
    return {unit_id for unit_id in session.exec(query) if unit_id is not None}


def parse_area(value: str) -> tuple[AreaKind, int]:
    """("unit" or "group", id) from a chooser's value such as "u:12" or "g:3"."""
    prefix, _, number = (value or "").strip().partition(":")
    if prefix not in _PREFIX or not number.isdigit() or len(number) > 12:
        raise FormError({"area": N_("Choose a place or a reporting group from the list.")})
    return _PREFIX[prefix], int(number)


def unit_choices(session: Session, staff: Staff, language: str = "vi") -> list[tuple[str, str]]:
    """Options for an area <select>: the groups (all of whose communes are in scope), then the current
    province and communes in the staff member's scope, then the communes merged or split away (their
    years before the change stay reportable)."""
    scope = auth.scope_path(session, staff)
    query = select(OrgUnit).where(
        (col(OrgUnit.valid_to).is_(None) & col(OrgUnit.kind).in_([UnitKind.province, UnitKind.commune]))
        | (col(OrgUnit.valid_to).is_not(None) & (OrgUnit.kind == UnitKind.commune))
    )
    units = [u for u in session.exec(query) if scope is None or u.path.startswith(scope)]
    units.sort(key=lambda u: (u.valid_to is not None, u.kind != UnitKind.province, sort_key(u.name)))
    choices: list[tuple[str, str]] = []
    label = translate(language, N_("Group: %(name)s"))
    for group in list_groups(session):
        members = group_units(session, group.id or 0)
        if members and (scope is None or all(m.path.startswith(scope) for m in members)):
            choices.append((f"g:{group.id}", label % {"name": group.name}))
    until = translate(language, N_("%(name)s (until %(date)s)"))
    choices += [
        (f"u:{u.id}", until % {"name": u.name, "date": f"{u.valid_to:%d/%m/%Y}"} if u.valid_to else u.name)
        for u in units
    ]
    return choices
