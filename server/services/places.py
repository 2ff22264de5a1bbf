"""Places: the org-unit tree, the Lạng Sơn communes, villages and venues typed by hand (CSV: places_csv)."""

from __future__ import annotations

import json
import re
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

from sqlmodel import Session, col, select

from server.errors import N_, FormError
from server.i18n import gettext as translate
from server.labels import VENUE_TYPES, sort_key
from server.models import OrgUnit, Staff, UnitKind, UnitSource, Venue, VenuePlacement, VenueType, utcnow
from server.services import audit

DEFAULT_COMMUNES_FILE = Path(__file__).resolve().parent.parent / "data" / "lang-son-communes-2025.json"
REFORM_DATE = date(2025, 7, 1)  # two-level local government: districts gone, communes merged
GSO, GSO_2024, LOCAL = "gso", "gso-2024", "local"
_CODE = re.compile(r"[A-Za-z0-9._-]{1,32}")
# The kind a hand-made unit hangs under (provinces only come from the official list).
_PARENT = {
    UnitKind.village: (UnitKind.commune, N_("Choose the commune this village belongs to.")),
    UnitKind.commune: (UnitKind.province, N_("Choose the province this commune belongs to.")),
}


@dataclass
class ImportSummary:
    provinces: int = 0
    communes: int = 0
    sources: int = 0
    villages: int = 0
    venues: int = 0


@dataclass
class TreeNode:
    unit: OrgUnit
    venues: list[Venue] = field(default_factory=list)
    children: list[TreeNode] = field(default_factory=list)

    @property
    def venue_total(self) -> int:
        """Venues of this unit and every unit below it."""
        return len(self.venues) + sum(child.venue_total for child in self.children)


def _add_unit(session: Session, parent: OrgUnit | None, **fields: Any) -> OrgUnit:
    """Store a unit under its parent and give it its path (the id is known only after a flush)."""
    unit = OrgUnit(parent_id=parent.id if parent else None, **fields)
    session.add(unit)
    session.flush()
    unit.path = (parent.path if parent else "/") + f"{unit.id}/"
    session.add(unit)
    return unit


def load_communes(
    session: Session, path: Path = DEFAULT_COMMUNES_FILE, *, now: datetime | None = None
) -> ImportSummary:
    """Create the province and its post-2025 communes with their sources; units already there are kept."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    official = {"code_system": GSO, "valid_from": REFORM_DATE, "created_at": now or utcnow()}
    summary = ImportSummary()
    # Matched on (code_system, code, valid_from): a new commune often reuses an old commune's code.
    query = select(OrgUnit).where(OrgUnit.code_system == GSO, OrgUnit.valid_from == REFORM_DATE)
    existing = {u.code: u for u in session.exec(query)}
    query_sources = select(UnitSource).where(col(UnitSource.unit_id).in_([u.id for u in existing.values()]))
    known: set[tuple[int | None, str]] = {(s.unit_id, s.code) for s in session.exec(query_sources)}
    try:
        code = f"{int(data['province']['code']):02d}"
        province = existing.get(code)
        if province is None:
            province = _add_unit(
                session, None, kind=UnitKind.province, code=code, name=data["province"]["name"], **official
            )
            summary.provinces += 1
        for item in data["communes"]:
            code = f"{int(item['code']):05d}"
            commune = existing.get(code)
            if commune is None:
                commune = _add_unit(
                    session, province, kind=UnitKind.commune, code=code, name=item["name"], **official
                )
                summary.communes += 1
            for source in item.get("legacy_sources", []):
                source_code = f"{int(source['code']):05d}"
                if (commune.id, source_code) not in known:
                    known.add((commune.id, source_code))
                    note = f"district {source.get('district_code', '')}"
                    session.add(
                        UnitSource(
                            unit_id=commune.id or 0,
                            code=source_code,
                            code_system=GSO_2024,
                            name=source["name"],
                            note=note,
                        )
                    )
                    summary.sources += 1
        session.commit()
    except BaseException:
        session.rollback()
        raise
    return summary


def _clean(value: str | None) -> str:
    return " ".join((value or "").split())


def _free_code(parent: OrgUnit, taken: set[str]) -> str:
    """The next local code under a parent ("05977-03") that no unit uses yet."""
    n = 1
    while f"{parent.code}-{n:02d}" in taken:
        n += 1
    code = f"{parent.code}-{n:02d}"
    taken.add(code)
    return code


def _code_in_use(session: Session, code: str) -> bool:
    # Unique among current units of every code system, so a CSV parent_code names one unit only.
    query = select(OrgUnit.id).where(OrgUnit.code == code, col(OrgUnit.valid_to).is_(None))
    return session.exec(query).first() is not None


def _check_name(name: str) -> str | None:
    if not name:
        return N_("Enter a name.")
    return N_("The name is too long (at most 200 characters).") if len(name) > 200 else None


def _check_code(code: str) -> str | None:
    if len(code) > 32:
        return N_("The code is too long (at most 32 characters).")
    if not _CODE.fullmatch(code):
        return N_("Use only letters without accents, digits, dots, dashes and underscores in the code.")
    return None


def add_unit(
    session: Session,
    *,
    kind: UnitKind | str,
    name: str,
    parent_id: int | None,
    code: str | None = None,
    by: Staff | None = None,
) -> OrgUnit:
    """A unit typed by hand (usually a village under a commune), with a local code if none is given."""
    errors: dict[str, str] = {}
    name, code = _clean(name), _clean(code)
    try:
        kind = UnitKind(kind)
    except ValueError:
        kind = UnitKind.province
    parent = session.get(OrgUnit, parent_id) if parent_id else None
    if kind not in _PARENT:
        errors["kind"] = N_("Only villages and communes can be added by hand.")
    elif parent is None or parent.kind != _PARENT[kind][0] or parent.valid_to is not None:
        errors["parent_id"] = _PARENT[kind][1]
    if problem := _check_name(name):
        errors["name"] = problem
    if code and (problem := _check_code(code)):
        errors["code"] = problem
    elif code and _code_in_use(session, code):
        errors["code"] = N_("This code is already used by another place.")
    if errors:
        raise FormError(errors)
    assert parent is not None
    if not code:
        taken = set(session.exec(select(OrgUnit.code).where(col(OrgUnit.code).startswith(f"{parent.code}-"))))
        code = _free_code(parent, taken)
    unit = _add_unit(
        session, parent, kind=kind, code=code, code_system=LOCAL, name=name, valid_from=parent.valid_from
    )
    audit.record(
        session, by, audit.Action.place_added, target_kind="unit", target_id=unit.id, detail={"name": name}
    )
    session.commit()
    return unit


def parse_venue_type(value: str) -> VenueType | None:
    """A venue type from its value or its English or Vietnamese name, in any letter case."""
    wanted = _clean(value).casefold()
    for venue_type, label in VENUE_TYPES.items():
        if wanted in (venue_type.value, label.casefold(), translate("vi", label).casefold()):
            return venue_type
    return None


def add_venue(
    session: Session,
    *,
    name: str,
    type: VenueType | str,
    unit_id: int | None,
    address: str = "",
    code: str | None = None,
    by: Staff | None = None,
) -> Venue:
    """A venue (library, cultural house, ...) of an existing unit."""
    errors: dict[str, str] = {}
    name, address, code = _clean(name), _clean(address), _clean(code)
    venue_type = parse_venue_type(type)
    unit = session.get(OrgUnit, unit_id) if unit_id else None
    if problem := _check_name(name):
        errors["name"] = problem
    if venue_type is None:
        errors["type"] = N_("Choose a venue type.")
    if unit is None or unit.valid_to is not None:
        errors["unit_id"] = N_("Choose the place this venue belongs to.")
    if len(address) > 300:
        errors["address"] = N_("The address is too long (at most 300 characters).")
    if code and (problem := _check_code(code)):
        errors["code"] = problem
    elif code and session.exec(select(Venue.id).where(Venue.code == code)).first() is not None:
        errors["code"] = N_("This code is already used by another venue.")
    if errors:
        raise FormError(errors)
    assert unit is not None and venue_type is not None
    venue = Venue(name=name, type=venue_type, unit_id=unit.id or 0, address=address, code=code or None)
    session.add(venue)
    session.flush()
    # Its first placement has no start: back-dated records from before it was typed in still find it.
    session.add(VenuePlacement(venue_id=venue.id or 0, unit_id=venue.unit_id))
    audit.record(
        session, by, audit.Action.place_added, target_kind="venue", target_id=venue.id, detail={"name": name}
    )
    session.commit()
    return venue


def unit_tree(session: Session, *, with_venues: bool = True, scope: str | None = None) -> list[TreeNode]:
    """Current units as a tree (provinces first), each with its venues: two queries whatever the size.

    With a `scope` (a unit's path, auth.scope_path), only that unit, what is under it and the units above it
    (so the tree keeps its shape); venues only under it."""
    units = sorted(
        (
            unit
            for unit in session.exec(select(OrgUnit).where(col(OrgUnit.valid_to).is_(None)))
            if scope is None or unit.path.startswith(scope) or scope.startswith(unit.path)
        ),
        key=lambda u: sort_key(u.name),
    )
    nodes = {u.id: TreeNode(u) for u in units}
    if with_venues:
        for venue in sorted(session.exec(select(Venue)).all(), key=lambda v: sort_key(v.name)):
            node = nodes.get(venue.unit_id)
            if node is not None and (scope is None or node.unit.path.startswith(scope)):
                node.venues.append(venue)
    roots: list[TreeNode] = []
    for node in nodes.values():
        parent = nodes.get(node.unit.parent_id)
        (parent.children if parent else roots).append(node)
    return roots


def unit_sources(session: Session) -> dict[int, list[UnitSource]]:
    """The units each unit was made from, by unit id (one query)."""
    sources: dict[int, list[UnitSource]] = defaultdict(list)
    for source in session.exec(select(UnitSource).order_by(col(UnitSource.code))):
        sources[source.unit_id].append(source)
    return sources
