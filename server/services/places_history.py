"""Places over time: which unit a venue was in on a day, and the dated changes of villages and venues.

A unit's parent and name never change in place: a rename, move, merge or split closes the unit (`valid_to`
is the day before the change) and makes new versions from the effective day, linked (`UnitLink`) to what
they were made from. Venues keep their id; `VenuePlacement` says where each was on any day. Nothing here
rewrites a stored check-in or headcount: they keep the place copied on their own day
(docs/places-over-time.md).
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from sqlmodel import Session, col, select

from server import auth
from server.errors import N_, AppError, ErrorCode, FormError
from server.models import (
    LinkKind,
    OrgUnit,
    Role,
    Staff,
    UnitKind,
    UnitLink,
    Venue,
    VenueName,
    VenuePlacement,
    utcnow,
)
from server.services import audit
from server.services.places import _add_unit, _check_name, _clean

DAY = timedelta(days=1)
HORIZON = timedelta(days=365)  # changes may be recorded at most a year ahead
MAX_PARTS = 4
_DMY = re.compile(r"(\d{1,2})/(\d{1,2})/(\d{4})")


# --- "As of" lookups ----------------------------------------------------------------------------------


def _covers(valid_from: date | None, valid_to: date | None, day: date) -> bool:
    return (valid_from is None or valid_from <= day) and (valid_to is None or day <= valid_to)


def _commune_of(unit: OrgUnit | None) -> int | None:
    # A version's parent never changes, so a village version's parent is its commune for its whole life.
    if unit is None:
        return None
    if unit.kind == UnitKind.commune:
        return unit.id
    return unit.parent_id if unit.kind == UnitKind.village else None


def _placements(session: Session, venue_ids: Iterable[int] | None = None) -> dict[int, list[VenuePlacement]]:
    query = select(VenuePlacement)
    if venue_ids is not None:
        query = query.where(col(VenuePlacement.venue_id).in_(list(venue_ids)))
    found: dict[int, list[VenuePlacement]] = defaultdict(list)
    for placement in session.exec(query):
        found[placement.venue_id].append(placement)
    return found


def _unit_on(venue: Venue, placements: list[VenuePlacement], day: date) -> int | None:
    if not placements:
        return venue.unit_id  # a venue with no recorded history has always been where it is
    return next((p.unit_id for p in placements if _covers(p.valid_from, p.valid_to, day)), None)


def venue_unit_on(session: Session, venue_id: int, day: date) -> int | None:
    """The unit (village or commune) the venue belonged to on `day`; None if unknown or not placed then."""
    venue = session.get(Venue, venue_id)
    if venue is None:
        return None
    return _unit_on(venue, _placements(session, [venue_id]).get(venue_id, []), day)


def commune_on(session: Session, venue_id: int, day: date) -> int | None:
    """The commune the venue belonged to on `day` (its unit, or its village's commune)."""
    unit_id = venue_unit_on(session, venue_id, day)
    return _commune_of(session.get(OrgUnit, unit_id)) if unit_id is not None else None


def _open_on(venue: Venue, day: date) -> bool:
    if venue.closed_on is not None:
        return day < venue.closed_on
    return venue.active  # closed before closing dates were recorded: counted as closed on every day


def venue_units_on(session: Session, day: date) -> dict[int, tuple[Venue, int]]:
    """Venue id -> (the venue, the unit it stood in on `day`), for the venues open that day."""
    placements = _placements(session)
    found: dict[int, tuple[Venue, int]] = {}
    for venue in session.exec(select(Venue)):
        if venue.id is None or not _open_on(venue, day):
            continue
        unit_id = _unit_on(venue, placements.get(venue.id, []), day)
        if unit_id is not None:
            found[venue.id] = (venue, unit_id)
    return found


def venues_on(session: Session, day: date) -> dict[int, int | None]:
    """Venue id -> its commune on `day` (None for a province's venue), for the venues open that day."""
    units = {u.id: u for u in session.exec(select(OrgUnit))}
    return {
        venue_id: _commune_of(units.get(unit_id))
        for venue_id, (_venue, unit_id) in venue_units_on(session, day).items()
    }


def units_on(session: Session, day: date, kind: UnitKind | None = None) -> list[OrgUnit]:
    """The units valid on `day` (of one kind if given), by id."""
    query = select(OrgUnit).where(
        (col(OrgUnit.valid_from).is_(None)) | (col(OrgUnit.valid_from) <= day),
        (col(OrgUnit.valid_to).is_(None)) | (col(OrgUnit.valid_to) >= day),
    )
    if kind is not None:
        query = query.where(OrgUnit.kind == kind)
    return list(session.exec(query.order_by(col(OrgUnit.id))))


# --- History shown on the change pages -----------------------------------------------------------------


@dataclass
class UnitHistory:
    """Every version of a unit (oldest first) and, per version id, the links to what it was made from
    and to what was made from it."""

    versions: list[OrgUnit]
    made_from: dict[int, list[tuple[UnitLink, OrgUnit]]] = field(default_factory=dict)
    became: dict[int, list[tuple[UnitLink, OrgUnit]]] = field(default_factory=dict)


def unit_history(session: Session, unit_id: int) -> UnitHistory:
    """The chain of versions through renames and moves, with merges and splits linked on each."""
    seen: dict[int, OrgUnit] = {}
    todo = [unit_id]
    links: dict[int, UnitLink] = {}
    while todo:
        current = todo.pop()
        unit = session.get(OrgUnit, current)
        if unit is None or current in seen:
            continue
        seen[current] = unit
        query = select(UnitLink).where((UnitLink.unit_id == current) | (UnitLink.from_unit_id == current))
        for link in session.exec(query):
            links[link.id or 0] = link
            if link.kind in (LinkKind.renamed, LinkKind.moved):
                todo.extend((link.unit_id, link.from_unit_id))
    others = {link.unit_id for link in links.values()} | {link.from_unit_id for link in links.values()}
    named = {u.id: u for u in session.exec(select(OrgUnit).where(col(OrgUnit.id).in_(others)))} | seen
    history = UnitHistory(sorted(seen.values(), key=lambda u: (u.valid_from or date.min, u.id or 0)))
    for link in sorted(links.values(), key=lambda link: (link.effective_on, link.id or 0)):
        if link.unit_id in seen:
            history.made_from.setdefault(link.unit_id, []).append((link, named[link.from_unit_id]))
        if link.from_unit_id in seen:
            history.became.setdefault(link.from_unit_id, []).append((link, named[link.unit_id]))
    return history


@dataclass
class VenueHistory:
    placements: list[tuple[VenuePlacement, OrgUnit | None]]
    names: list[VenueName]


def venue_history(session: Session, venue_id: int) -> VenueHistory:
    """Where the venue was (oldest first) and the names it had before its current one."""
    placements = _placements(session, [venue_id]).get(venue_id, [])
    placements.sort(key=lambda p: (p.valid_from or date.min, p.id or 0))
    names = session.exec(
        select(VenueName).where(VenueName.venue_id == venue_id).order_by(col(VenueName.valid_to))
    ).all()
    return VenueHistory([(p, session.get(OrgUnit, p.unit_id)) for p in placements], list(names))


# --- Dates ----------------------------------------------------------------------------------------------


def parse_day(raw: str | None) -> date | None:
    """A date typed as dd/mm/yyyy or sent by a date picker as yyyy-mm-dd; None if it is neither."""
    raw = (raw or "").strip()
    try:
        if match := _DMY.fullmatch(raw):
            return date(int(match[3]), int(match[2]), int(match[1]))
        return date.fromisoformat(raw) if len(raw) == 10 else None
    except ValueError:
        return None


def _day_problem(on: date | None, start: date | None, today: date) -> str | None:
    if on is None:
        return N_("Enter the date the change takes effect (dd/mm/yyyy).")
    if start is not None and on <= start:
        return N_("The change must take effect after the day this place or venue began. Choose a later date.")
    if on > today + HORIZON:
        return N_("The date is more than a year from today.")
    return None


def _today(now: datetime | None) -> date:
    return (now or utcnow()).date()


# --- Venues ---------------------------------------------------------------------------------------------


def _open_placement(session: Session, venue: Venue) -> VenuePlacement:
    """The venue's current placement; a venue made before placements were kept gets its first one now."""
    query = select(VenuePlacement).where(
        VenuePlacement.venue_id == venue.id, col(VenuePlacement.valid_to).is_(None)
    )
    placement = session.exec(query).first()
    if placement is None:
        placement = VenuePlacement(venue_id=venue.id or 0, unit_id=venue.unit_id)
        session.add(placement)
    return placement


def _place(session: Session, venue: Venue, unit_id: int, on: date) -> None:
    placement = _open_placement(session, venue)
    placement.valid_to = on - DAY
    session.add(placement)
    session.add(VenuePlacement(venue_id=venue.id or 0, unit_id=unit_id, valid_from=on))
    venue.unit_id = unit_id
    session.add(venue)


def _venue_start(session: Session, venue: Venue) -> date | None:
    """The last day the venue changed: a later change must come after it."""
    starts = [_open_placement(session, venue).valid_from]
    starts += [
        n.valid_to + DAY for n in session.exec(select(VenueName).where(VenueName.venue_id == venue.id))
    ]
    known = [s for s in starts if s is not None]
    return max(known) if known else None


# --- Who may change what ------------------------------------------------------------------------------


def in_scope(session: Session, staff: Staff, unit: OrgUnit | None) -> bool:
    """Administrators change every place; an office the villages and venues under its own unit."""
    if staff.role not in (Role.admin, Role.office):
        return False
    path = auth.scope_path(session, staff)
    return path is None or (unit is not None and unit.path.startswith(path))


def village_to_change(session: Session, staff: Staff, unit_id: int) -> OrgUnit:
    """The village (any version of it) whose history and change form the staff member may open."""
    unit = session.get(OrgUnit, unit_id)
    if unit is None or unit.kind != UnitKind.village:
        raise AppError(ErrorCode.not_found)
    if not in_scope(session, staff, unit):
        raise AppError(ErrorCode.forbidden)
    return unit


def venue_to_change(session: Session, staff: Staff, venue_id: int) -> Venue:
    """The venue whose history and change form the staff member may open (by where it is now)."""
    venue = session.get(Venue, venue_id)
    if venue is None:
        raise AppError(ErrorCode.not_found)
    if not in_scope(session, staff, session.get(OrgUnit, venue.unit_id)):
        raise AppError(ErrorCode.forbidden)
    return venue


def _open_venue(session: Session, staff: Staff, venue_id: int) -> Venue:
    venue = venue_to_change(session, staff, venue_id)
    if not venue.active:
        raise FormError({"kind": N_("This venue is closed: it cannot be changed.")})
    return venue


def rename_venue(
    session: Session, staff: Staff, venue_id: int, *, name: str, on: date | None, now: datetime | None = None
) -> Venue:
    """Give a venue a new name from `on`; the old one is kept with the day it ended."""
    venue = _open_venue(session, staff, venue_id)
    name, errors = _clean(name), {}
    if problem := _day_problem(on, _venue_start(session, venue), _today(now)):
        errors["effective_on"] = problem
    if problem := _check_name(name):
        errors["name"] = problem
    elif name == venue.name:
        errors["name"] = N_("Enter a name different from the current one.")
    if errors:
        session.rollback()
        raise FormError(errors)
    assert on is not None
    session.add(VenueName(venue_id=venue.id or 0, name=venue.name, valid_to=on - DAY, created_by_id=staff.id))
    venue.name = name
    session.add(venue)
    audit.record(
        session,
        staff,
        audit.Action.place_changed,
        target_kind="venue",
        target_id=venue.id,
        detail={"change": "renamed", "on": on},
    )
    session.commit()
    return venue


def _current_unit(
    session: Session, unit_id: int | None, kinds: tuple[UnitKind, ...], on: date
) -> OrgUnit | None:
    unit = session.get(OrgUnit, unit_id) if unit_id else None
    if unit is None or unit.kind not in kinds or unit.valid_to is not None:
        return None
    return unit if unit.valid_from is None or unit.valid_from <= on else None


def move_venue(
    session: Session,
    staff: Staff,
    venue_id: int,
    *,
    unit_id: int | None,
    on: date | None,
    now: datetime | None = None,
) -> Venue:
    """Move a venue to another village or commune from `on`."""
    venue = _open_venue(session, staff, venue_id)
    errors: dict[str, str] = {}
    if problem := _day_problem(on, _venue_start(session, venue), _today(now)):
        errors["effective_on"] = problem
    target = _current_unit(session, unit_id, (UnitKind.village, UnitKind.commune), on) if on else None
    if on and (target is None or not in_scope(session, staff, target)):
        errors["unit_id"] = N_("Choose a current village or commune that exists on that date.")
    elif target is not None and target.id == venue.unit_id:
        errors["unit_id"] = N_("The venue is already there. Choose another place.")
    if errors:
        session.rollback()
        raise FormError(errors)
    assert on is not None and target is not None
    _place(session, venue, target.id or 0, on)
    audit.record(
        session,
        staff,
        audit.Action.place_changed,
        target_kind="venue",
        target_id=venue.id,
        detail={"change": "moved", "to": target.id, "on": on},
    )
    session.commit()
    return venue


def close_venue(
    session: Session, staff: Staff, venue_id: int, *, on: date | None, now: datetime | None = None
) -> Venue:
    """Close a venue from `on` (its check-ins and figures stay)."""
    venue = _open_venue(session, staff, venue_id)
    if problem := _day_problem(on, _venue_start(session, venue), _today(now)):
        session.rollback()
        raise FormError({"effective_on": problem})
    assert on is not None
    placement = _open_placement(session, venue)
    placement.valid_to = on - DAY
    venue.active, venue.closed_on = False, on
    session.add_all([placement, venue])
    audit.record(
        session,
        staff,
        audit.Action.place_changed,
        target_kind="venue",
        target_id=venue.id,
        detail={"change": "closed", "on": on},
    )
    session.commit()
    return venue


# --- Villages -------------------------------------------------------------------------------------------


def _open_village(session: Session, staff: Staff, unit_id: int) -> OrgUnit:
    unit = village_to_change(session, staff, unit_id)
    if unit.valid_to is not None:
        raise FormError({"kind": N_("Only a current village can be changed here.")})
    return unit


def venues_of(session: Session, unit: OrgUnit) -> list[Venue]:
    """The open venues standing directly in the unit (a commune's: not those in its villages)."""
    query = select(Venue).where(Venue.unit_id == unit.id, col(Venue.active).is_(True)).order_by(col(Venue.id))
    return list(session.exec(query))


def _check_village_day(
    session: Session, unit: OrgUnit, on: date | None, now: datetime | None
) -> dict[str, str]:
    """The effective date must fall after the unit began and after each of its venues last changed."""
    problem = _day_problem(on, unit.valid_from, _today(now))
    if problem is None and on is not None:
        starts = [_venue_start(session, v) for v in venues_of(session, unit)]
        if any(start is not None and on <= start for start in starts):
            problem = N_("A venue of this village changed on or after this date. Choose a later date.")
    return {"effective_on": problem} if problem else {}


def _version(session: Session, old: OrgUnit, *, name: str, parent: OrgUnit, on: date, code: str) -> OrgUnit:
    return _add_unit(
        session, parent, kind=old.kind, code=code, code_system=old.code_system, name=name, valid_from=on
    )


def _retire(
    session: Session, staff: Staff, old: OrgUnit, on: date, made: list[tuple[OrgUnit, LinkKind]]
) -> None:
    old.valid_to = on - DAY
    session.add(old)
    for unit, kind in made:
        session.add(
            UnitLink(
                unit_id=unit.id or 0,
                from_unit_id=old.id or 0,
                kind=kind,
                effective_on=on,
                created_by_id=staff.id,
            )
        )
    change = {"change": made[0][1] if made else "closed", "into": [u.id for u, _ in made], "on": on}
    audit.record(
        session, staff, audit.Action.place_changed, target_kind="unit", target_id=old.id, detail=change
    )


def rename_village(
    session: Session, staff: Staff, unit_id: int, *, name: str, on: date | None, now: datetime | None = None
) -> OrgUnit:
    """A new version of the village with a new name from `on`; its venues move to it."""
    old = _open_village(session, staff, unit_id)
    name = _clean(name)
    errors = _check_village_day(session, old, on, now)
    if problem := _check_name(name):
        errors["name"] = problem
    elif name == old.name:
        errors["name"] = N_("Enter a name different from the current one.")
    if errors:
        session.rollback()
        raise FormError(errors)
    assert on is not None
    parent = session.get(OrgUnit, old.parent_id)
    assert parent is not None, "a village always has its commune"
    new = _replace(session, staff, old, name=name, parent=parent, on=on, kind=LinkKind.renamed)
    session.commit()
    return new


def _replace(
    session: Session, staff: Staff, old: OrgUnit, *, name: str, parent: OrgUnit, on: date, kind: LinkKind
) -> OrgUnit:
    """The village's new version under `parent` from `on`, linked and logged, its venues moved to it (the
    caller commits, so a commune's merge stores all its villages or none)."""
    venues = venues_of(session, old)
    old.valid_to = on - DAY  # first, so the code is free for the new version
    session.add(old)
    session.flush()
    new = _version(session, old, name=name, parent=parent, on=on, code=old.code)
    _retire(session, staff, old, on, [(new, kind)])
    for venue in venues:
        _place(session, venue, new.id or 0, on)
    return new


def move_village(
    session: Session,
    staff: Staff,
    unit_id: int,
    *,
    commune_id: int | None,
    on: date | None,
    name: str = "",
    now: datetime | None = None,
) -> OrgUnit:
    """A new version of the village under another commune from `on` (renamed too if a name is given)."""
    old = _open_village(session, staff, unit_id)
    name = _clean(name) or old.name
    errors = _check_village_day(session, old, on, now)
    commune = _current_unit(session, commune_id, (UnitKind.commune,), on) if on else None
    if on and commune is None:
        errors["commune_id"] = N_("Choose a current commune that exists on that date.")
    elif commune is not None and commune.id == old.parent_id:
        errors["commune_id"] = N_("The village is already in this commune. Choose another one.")
    if problem := _check_name(name):
        errors["name"] = problem
    if errors:
        session.rollback()
        raise FormError(errors)
    assert on is not None and commune is not None
    new = _replace(session, staff, old, name=name, parent=commune, on=on, kind=LinkKind.moved)
    session.commit()
    return new


def merge_village(
    session: Session,
    staff: Staff,
    unit_id: int,
    *,
    into_id: int | None,
    on: date | None,
    now: datetime | None = None,
) -> OrgUnit:
    """Close the village from `on` and move its venues to the village it is merged into (which stays)."""
    old = _open_village(session, staff, unit_id)
    errors = _check_village_day(session, old, on, now)
    into = _current_unit(session, into_id, (UnitKind.village,), on) if on else None
    if on and (into is None or into.id == old.id or not in_scope(session, staff, into)):
        errors["into_id"] = N_("Choose another current village that exists on that date.")
    if errors:
        session.rollback()
        raise FormError(errors)
    assert on is not None and into is not None
    venues = venues_of(session, old)
    _retire(session, staff, old, on, [(into, LinkKind.merged)])
    for venue in venues:
        _place(session, venue, into.id or 0, on)
    session.commit()
    return into


def _split_code(session: Session, code: str, n: int) -> str:
    taken = set(session.exec(select(OrgUnit.code).where(col(OrgUnit.code).startswith(f"{code}."))))
    while f"{code}.{n}" in taken:
        n += 1
    return f"{code}.{n}"


def split_village(
    session: Session,
    staff: Staff,
    unit_id: int,
    *,
    names: list[str],
    venue_parts: dict[int, int | None],
    on: date | None,
    now: datetime | None = None,
) -> list[OrgUnit]:
    """Close the village from `on` and make its parts; each venue goes to the part chosen for it
    (`venue_parts`: venue id -> index of the part in `names`, from 0)."""
    old = _open_village(session, staff, unit_id)
    errors = _check_village_day(session, old, on, now)
    names = [n for n in (_clean(n) for n in names) if n]
    if len(names) < 2:
        errors["names"] = N_("Enter the names of at least two new villages.")
    elif len(names) > MAX_PARTS or any(_check_name(n) for n in names):
        errors["names"] = N_("Enter at most four names of at most 200 characters each.")
    venues = venues_of(session, old)
    for venue in venues:
        part = venue_parts.get(venue.id or 0)
        if part is None or not 0 <= part < (len(names) if "names" not in errors else MAX_PARTS):
            errors[f"venue_{venue.id}"] = N_("Choose the new village this venue belongs to.")
    if errors:
        session.rollback()
        raise FormError(errors)
    assert on is not None
    parent = session.get(OrgUnit, old.parent_id)
    assert parent is not None, "a village always has its commune"
    parts = [
        _version(session, old, name=name, parent=parent, on=on, code=_split_code(session, old.code, i + 1))
        for i, name in enumerate(names)
    ]
    _retire(session, staff, old, on, [(part, LinkKind.split_up) for part in parts])
    for venue in venues:
        _place(session, venue, parts[venue_parts[venue.id or 0] or 0].id or 0, on)
    session.commit()
    return parts


def close_village(
    session: Session, staff: Staff, unit_id: int, *, on: date | None, now: datetime | None = None
) -> OrgUnit:
    """Close a village from `on`; refused while it has open venues (move or close them first)."""
    old = _open_village(session, staff, unit_id)
    errors = _check_village_day(session, old, on, now)
    if venues_of(session, old):
        errors["kind"] = N_("This village still has open venues: move or close them first.")
    if errors:
        session.rollback()
        raise FormError(errors)
    assert on is not None
    _retire(session, staff, old, on, [])
    session.commit()
    return old
