"""Routes for dated changes of communes, villages and venues (administrators, and an office within its own
unit): their history and the change forms."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response
from sqlmodel import Session

from server import auth
from server.deps import OfficeStaff, SessionDep, TemplatesDep
from server.errors import N_, FormError
from server.models import OrgUnit, Staff, UnitKind, Venue
from server.services import commune_changes, places, places_history

router = APIRouter(include_in_schema=False)

UNIT_CHANGES = {
    "rename": N_("Rename"),
    "move": N_("Move to another commune"),
    "merge": N_("Merge into another village"),
    "split": N_("Split into new villages"),
    "close": N_("Dissolve (close)"),
}
COMMUNE_CHANGES = {
    "merge": N_("Merge into another commune"),
    "split": N_("Split into new communes"),
}
VENUE_CHANGES = {
    "rename": N_("Rename"),
    "move": N_("Move to another village or commune"),
    "close": N_("Close"),
}
PARTS = range(1, places_history.MAX_PARTS + 1)


def _int(raw: str | None) -> int | None:
    raw = (raw or "").strip()
    return int(raw) if raw.isdigit() and len(raw) < 12 else None


def _choices(session: Session, staff: Staff) -> dict[str, Any]:
    """The places a change can lead to: villages and venues stay within the staff member's own unit, while
    a village may move to any commune (the office it leaves records the move)."""
    everywhere = places.unit_tree(session, with_venues=False)
    communes = [
        node for province in everywhere for node in province.children if node.unit.kind == UnitKind.commune
    ]
    return {
        "tree": places.unit_tree(session, with_venues=False, scope=auth.scope_path(session, staff)),
        "commune_options": [(node.unit.id, node.unit.name) for node in communes],
    }


def _unit_page(
    request: Request,
    session: Session,
    staff: Staff,
    templates: TemplatesDep,
    unit: OrgUnit,
    status: int = 200,
    **extra: Any,
) -> Response:
    context: dict[str, Any] = {
        "unit": unit,
        "commune": session.get(OrgUnit, unit.parent_id),
        "history": places_history.unit_history(session, unit.id or 0),
        "venues": places_history.venues_of(session, unit),
        "changes": UNIT_CHANGES,
        "parts": PARTS,
        "form": {},
        "errors": {},
        "done": request.query_params.get("done") == "1",
        **_choices(session, staff),
        **extra,
    }
    return templates.render(request, "places/unit_change.html", context, status_code=status)


def _commune_page(
    request: Request,
    session: Session,
    staff: Staff,
    templates: TemplatesDep,
    unit: OrgUnit,
    status: int = 200,
    **extra: Any,
) -> Response:
    # The receiving commune must be within the staff member's own unit too: offer only those.
    scoped = places.unit_tree(session, with_venues=False, scope=auth.scope_path(session, staff))
    context: dict[str, Any] = {
        "unit": unit,
        "history": places_history.unit_history(session, unit.id or 0),
        "changes": COMMUNE_CHANGES,
        "parts": PARTS,
        "villages": commune_changes.villages_of(session, unit),
        "venues": places_history.venues_of(session, unit),
        "commune_options": [
            (node.unit.id, node.unit.name)
            for province in scoped
            for node in province.children
            if node.unit.kind == UnitKind.commune and node.unit.id != unit.id
        ],
        "form": {},
        "errors": {},
        "done": request.query_params.get("done") == "1",
        **extra,
    }
    return templates.render(request, "places/commune_change.html", context, status_code=status)


def _is_commune(session: Session, unit_id: int) -> bool:
    unit = session.get(OrgUnit, unit_id)
    return unit is not None and unit.kind == UnitKind.commune


@router.get("/places/units/{unit_id}/change")
def show_unit_change(
    request: Request, unit_id: int, staff: OfficeStaff, session: SessionDep, templates: TemplatesDep
) -> Response:
    """A commune's or village's versions and links, and the form that changes it from a date."""
    if _is_commune(session, unit_id):
        commune = commune_changes.commune_to_change(session, staff, unit_id)
        return _commune_page(request, session, staff, templates, commune)
    return _unit_page(
        request, session, staff, templates, places_history.village_to_change(session, staff, unit_id)
    )


def _apply_unit_change(session: Session, staff: Staff, unit: OrgUnit, form: dict[str, Any]) -> OrgUnit:
    on = places_history.parse_day(form["effective_on"])
    unit_id, kind = unit.id or 0, form["kind"]
    if kind == "rename":
        return places_history.rename_village(session, staff, unit_id, name=form["name"], on=on)
    if kind == "move":
        commune_id = _int(form["commune_id"])
        return places_history.move_village(
            session, staff, unit_id, commune_id=commune_id, on=on, name=form["name"]
        )
    if kind == "merge":
        return places_history.merge_village(session, staff, unit_id, into_id=_int(form["into_id"]), on=on)
    if kind == "split":
        names = [form[f"split_name_{n}"] for n in PARTS]
        chosen = {venue_id: (part - 1 if part else None) for venue_id, part in form["venue_parts"].items()}
        parts = places_history.split_village(session, staff, unit_id, names=names, venue_parts=chosen, on=on)
        return parts[0]
    if kind == "close":
        return places_history.close_village(session, staff, unit_id, on=on)
    raise FormError({"kind": N_("Choose a kind of change.")})


def _chosen_parts(values: list[str]) -> dict[int, int | None]:
    """Each venue's or village's chosen part from "<id>:<part number>" values."""
    chosen: dict[int, int | None] = {}
    for value in values:
        venue_id, _, part = value.partition(":")
        if (number := _int(venue_id)) is not None:
            chosen[number] = _int(part)
    return chosen


@router.post("/places/units/{unit_id}/change")
def change_unit(
    request: Request,
    unit_id: int,
    staff: OfficeStaff,
    session: SessionDep,
    templates: TemplatesDep,
    kind: Annotated[str, Form(max_length=20)] = "",
    effective_on: Annotated[str, Form(max_length=20)] = "",
    name: Annotated[str, Form(max_length=300)] = "",
    commune_id: Annotated[str, Form(max_length=20)] = "",
    into_id: Annotated[str, Form(max_length=20)] = "",
    split_name_1: Annotated[str, Form(max_length=300)] = "",
    split_name_2: Annotated[str, Form(max_length=300)] = "",
    split_name_3: Annotated[str, Form(max_length=300)] = "",
    split_name_4: Annotated[str, Form(max_length=300)] = "",
    venue_part: Annotated[list[str], Form(max_length=500)] = [],  # noqa: B006 (FastAPI copies defaults)
    village_part: Annotated[list[str], Form(max_length=500)] = [],  # noqa: B006
) -> Response:
    """Record a dated change of a commune or village; what stands in it follows from the effective date."""
    form: dict[str, Any] = {
        "kind": kind,
        "effective_on": effective_on,
        "name": name,
        "commune_id": commune_id,
        "into_id": into_id,
        "split_name_1": split_name_1,
        "split_name_2": split_name_2,
        "split_name_3": split_name_3,
        "split_name_4": split_name_4,
        "venue_parts": _chosen_parts(venue_part),
        "village_parts": _chosen_parts(village_part),
    }
    if _is_commune(session, unit_id):
        return _change_commune(request, session, staff, templates, unit_id, form)
    unit = places_history.village_to_change(session, staff, unit_id)
    try:
        result = _apply_unit_change(session, staff, unit, form)
    except FormError as error:
        session.rollback()
        return _unit_page(request, session, staff, templates, unit, 422, form=form, errors=error.fields)
    # A village moved out of an office's unit is the other office's now: this one sees the closed version.
    shown = result if places_history.in_scope(session, staff, result) else unit
    return RedirectResponse(f"/places/units/{shown.id}/change?done=1", status_code=303)


def _apply_commune_change(session: Session, staff: Staff, unit_id: int, form: dict[str, Any]) -> OrgUnit:
    on = places_history.parse_day(form["effective_on"])
    if form["kind"] == "merge":
        return commune_changes.merge_commune(session, staff, unit_id, into_id=_int(form["into_id"]), on=on)
    if form["kind"] == "split":
        parts = commune_changes.split_commune(
            session,
            staff,
            unit_id,
            names=[form[f"split_name_{n}"] for n in PARTS],
            village_parts={key: (n - 1 if n else None) for key, n in form["village_parts"].items()},
            venue_parts={key: (n - 1 if n else None) for key, n in form["venue_parts"].items()},
            on=on,
        )
        return parts[0]
    raise FormError({"kind": N_("Choose a kind of change.")})


def _change_commune(
    request: Request,
    session: Session,
    staff: Staff,
    templates: TemplatesDep,
    unit_id: int,
    form: dict[str, Any],
) -> Response:
    commune = commune_changes.commune_to_change(session, staff, unit_id)
    try:
        result = _apply_commune_change(session, staff, unit_id, form)
    except FormError as error:
        session.rollback()
        return _commune_page(request, session, staff, templates, commune, 422, form=form, errors=error.fields)
    return RedirectResponse(f"/places/units/{result.id}/change?done=1", status_code=303)


def _venue_page(
    request: Request,
    session: Session,
    staff: Staff,
    templates: TemplatesDep,
    venue: Venue,
    status: int = 200,
    **extra: Any,
) -> Response:
    context: dict[str, Any] = {
        "venue": venue,
        "place": session.get(OrgUnit, venue.unit_id),
        "history": places_history.venue_history(session, venue.id or 0),
        "changes": VENUE_CHANGES,
        "form": {},
        "errors": {},
        "done": request.query_params.get("done") == "1",
        **_choices(session, staff),
        **extra,
    }
    return templates.render(request, "places/venue_change.html", context, status_code=status)


@router.get("/places/venues/{venue_id}/change")
def show_venue_change(
    request: Request, venue_id: int, staff: OfficeStaff, session: SessionDep, templates: TemplatesDep
) -> Response:
    """A venue's places and past names, and the form that renames, moves or closes it."""
    return _venue_page(
        request, session, staff, templates, places_history.venue_to_change(session, staff, venue_id)
    )


@router.post("/places/venues/{venue_id}/change")
def change_venue(
    request: Request,
    venue_id: int,
    staff: OfficeStaff,
    session: SessionDep,
    templates: TemplatesDep,
    kind: Annotated[str, Form(max_length=20)] = "",
    effective_on: Annotated[str, Form(max_length=20)] = "",
    name: Annotated[str, Form(max_length=300)] = "",
    unit_id: Annotated[str, Form(max_length=20)] = "",
) -> Response:
    """Record a dated rename, move or closing of a venue (its id, check-ins and figures stay)."""
    venue = places_history.venue_to_change(session, staff, venue_id)
    on = places_history.parse_day(effective_on)
    try:
        if kind == "rename":
            places_history.rename_venue(session, staff, venue_id, name=name, on=on)
        elif kind == "move":
            places_history.move_venue(session, staff, venue_id, unit_id=_int(unit_id), on=on)
        elif kind == "close":
            places_history.close_venue(session, staff, venue_id, on=on)
        else:
            raise FormError({"kind": N_("Choose a kind of change.")})
    except FormError as error:
        session.rollback()
        form = {"kind": kind, "effective_on": effective_on, "name": name, "unit_id": unit_id}
        return _venue_page(request, session, staff, templates, venue, 422, form=form, errors=error.fields)
    return RedirectResponse(f"/places/venues/{venue_id}/change?done=1", status_code=303)
