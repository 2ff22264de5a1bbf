"""Dated changes of communes: a commune merged into another, or split into new communes, from a day
(Vietnam's 2025 reform merged communes). Built on the village machinery of places_history: the commune's
villages get new versions under the receiving commune or their part, exactly as a village move does, and
nothing stored is rewritten (docs/places-over-time.md)."""

from __future__ import annotations

from datetime import date, datetime

from sqlmodel import Session, col, select

from server.errors import N_, AppError, ErrorCode, FormError
from server.models import LinkKind, OrgUnit, Staff, UnitKind
from server.services import audit
from server.services.places import _check_name, _clean
from server.services.places_history import (
    MAX_PARTS,
    _check_village_day,
    _current_unit,
    _day_problem,
    _place,
    _replace,
    _retire,
    _split_code,
    _today,
    _venue_start,
    _version,
    in_scope,
    venues_of,
)


def commune_to_change(session: Session, staff: Staff, unit_id: int) -> OrgUnit:
    """The commune (any version of it) whose history and change form the staff member may open."""
    unit = session.get(OrgUnit, unit_id)
    if unit is None or unit.kind != UnitKind.commune:
        raise AppError(ErrorCode.not_found)
    if not in_scope(session, staff, unit):
        raise AppError(ErrorCode.forbidden)
    return unit


def villages_of(session: Session, commune: OrgUnit) -> list[OrgUnit]:
    """The commune's current villages, by name."""
    query = select(OrgUnit).where(
        OrgUnit.parent_id == commune.id, OrgUnit.kind == UnitKind.village, col(OrgUnit.valid_to).is_(None)
    )
    return list(session.exec(query.order_by(col(OrgUnit.name), col(OrgUnit.id))))


def _check_commune_day(
    session: Session, commune: OrgUnit, on: date | None, now: datetime | None
) -> dict[str, str]:
    """After the commune began, and after each of its villages and venues last changed."""
    problem = _day_problem(on, commune.valid_from, _today(now))
    if problem is None and on is not None:
        late_village = any(_check_village_day(session, v, on, now) for v in villages_of(session, commune))
        starts = [_venue_start(session, v) for v in venues_of(session, commune)]
        if late_village or any(start is not None and on <= start for start in starts):
            problem = N_(
                "A village or venue of this commune changed on or after this date. Choose a later date."
            )
    return {"effective_on": problem} if problem else {}


def merge_commune(
    session: Session,
    staff: Staff,
    unit_id: int,
    *,
    into_id: int | None,
    on: date | None,
    now: datetime | None = None,
) -> OrgUnit:
    """Close the commune from `on`: its villages become villages of the receiving commune (new versions,
    linked `moved`), its own venues move there, and it is linked to the receiving commune `merged`.
    An office may merge only communes within its unit into one within its unit."""
    old = _open_commune(session, staff, unit_id)
    errors = _check_commune_day(session, old, on, now)
    into = _current_unit(session, into_id, (UnitKind.commune,), on) if on else None
    if on and (into is None or into.id == old.id or not in_scope(session, staff, into)):
        errors["into_id"] = N_("Choose another current commune that exists on that date.")
    if errors:
        session.rollback()
        raise FormError(errors)
    assert on is not None and into is not None
    villages, venues = villages_of(session, old), venues_of(session, old)
    _hand_over(
        session, staff, old, on, {v.id or 0: into for v in villages}, {v.id or 0: into for v in venues}
    )
    _retire(session, staff, old, on, [(into, LinkKind.merged)])
    session.commit()
    return into


def _open_commune(session: Session, staff: Staff, unit_id: int) -> OrgUnit:
    old = commune_to_change(session, staff, unit_id)
    if old.valid_to is not None:
        raise FormError({"kind": N_("Only a current commune can be changed here.")})
    return old


def _hand_over(
    session: Session,
    staff: Staff,
    old: OrgUnit,
    on: date,
    village_to: dict[int, OrgUnit],
    venue_to: dict[int, OrgUnit],
) -> None:
    """Each current village of `old` gets a new version under its commune from `on` (linked `moved`), and
    each open venue standing in `old` itself moves to its commune; both are logged."""
    for village in villages_of(session, old):
        target = village_to[village.id or 0]
        _replace(session, staff, village, name=village.name, parent=target, on=on, kind=LinkKind.moved)
    for venue in venues_of(session, old):
        target = venue_to[venue.id or 0]
        _place(session, venue, target.id or 0, on)
        audit.record(
            session,
            staff,
            audit.Action.place_changed,
            target_kind="venue",
            target_id=venue.id,
            detail={"change": "moved", "to": target.id, "on": on, "with_commune": old.id},
        )


def split_commune(
    session: Session,
    staff: Staff,
    unit_id: int,
    *,
    names: list[str],
    village_parts: dict[int, int | None],
    venue_parts: dict[int, int | None],
    on: date | None,
    now: datetime | None = None,
) -> list[OrgUnit]:
    """Close the commune from `on` and make two to four new communes beside it (codes `<code>.1`, ...,
    linked `split`); each village and each venue standing in the commune goes to the part chosen for it
    (`village_parts`, `venue_parts`: id -> index of the part in `names`, from 0). The new communes stand
    under the province, so only staff whose scope covers the province (an administrator) may split."""
    old = _open_commune(session, staff, unit_id)
    parent = session.get(OrgUnit, old.parent_id)
    if parent is None or not in_scope(session, staff, parent):
        raise FormError(
            {"kind": N_("Only an administrator can split a commune: the new communes are outside your unit.")}
        )
    errors = _check_commune_day(session, old, on, now)
    names = [n for n in (_clean(n) for n in names) if n]
    if len(names) < 2:
        errors["names"] = N_("Enter the names of at least two new communes.")
    elif len(names) > MAX_PARTS or any(_check_name(n) for n in names):
        errors["names"] = N_("Enter at most four names of at most 200 characters each.")
    top = len(names) if "names" not in errors else MAX_PARTS
    villages, venues = villages_of(session, old), venues_of(session, old)
    for key, units, chosen in (("village", villages, village_parts), ("venue", venues, venue_parts)):
        for unit in units:
            part = chosen.get(unit.id or 0)
            if part is None or not 0 <= part < top:
                errors[f"{key}_{unit.id}"] = N_("Choose the new commune this one goes to.")
    if errors:
        session.rollback()
        raise FormError(errors)
    assert on is not None
    parts = [
        _version(session, old, name=name, parent=parent, on=on, code=_split_code(session, old.code, i + 1))
        for i, name in enumerate(names)
    ]
    _hand_over(
        session,
        staff,
        old,
        on,
        {v.id or 0: parts[village_parts[v.id or 0] or 0] for v in villages},
        {v.id or 0: parts[venue_parts[v.id or 0] or 0] for v in venues},
    )
    _retire(session, staff, old, on, [(part, LinkKind.split_up) for part in parts])
    session.commit()
    return parts
