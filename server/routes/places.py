"""Routes under /places: the place tree (an office sees its own unit, to record changes) and, for
administrators, the Lạng Sơn communes, new villages and venues, CSV import."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import RedirectResponse, Response
from sqlmodel import Session

from server import auth
from server.deps import AdminStaff, OfficeStaff, SessionDep, TemplatesDep
from server.errors import N_, AppError, ErrorCode, FormError
from server.models import Staff, UnitKind, VenueType
from server.services import places, places_csv

router = APIRouter(include_in_schema=False)

MAX_UPLOAD = 2 * 1024 * 1024
DONE = ("communes", "unit", "venue", "imported")
COUNTS = ("communes", "villages", "venues")


def _int(raw: str) -> int | None:
    raw = raw.strip()
    return int(raw) if raw.isdigit() else None


def _page(
    request: Request,
    session: Session,
    staff: Staff,
    templates: TemplatesDep,
    status: int = 200,
    **extra: Any,
) -> Response:
    tree = places.unit_tree(session, scope=auth.scope_path(session, staff))
    communes = [node for province in tree for node in province.children if node.unit.kind == UnitKind.commune]
    context: dict[str, Any] = {
        "tree": tree,
        "communes": communes,
        "commune_options": [(node.unit.id, node.unit.name) for node in communes],
        "sources": places.unit_sources(session),
        "village_count": sum(len(node.children) for node in communes),
        "venue_types": list(VenueType),
        "columns": places_csv.COLUMNS,
        "unit_form": {},
        "venue_form": {},
        **extra,
    }
    return templates.render(request, "places/index.html", context, status_code=status)


def _done(done: str, **counts: int) -> RedirectResponse:
    return RedirectResponse("/places?" + urlencode({"done": done, **counts}), status_code=303)


@router.get("/places")
def show_places(
    request: Request, staff: OfficeStaff, session: SessionDep, templates: TemplatesDep
) -> Response:
    """The place tree (an office's own part of it), with the forms that add to it for administrators."""
    done = request.query_params.get("done", "")
    counts = {name: _int(request.query_params.get(name, "")) or 0 for name in COUNTS}
    return _page(request, session, staff, templates, done=done if done in DONE else "", done_counts=counts)


@router.post("/places/communes")
def load_communes(staff: AdminStaff, session: SessionDep) -> Response:
    """Load the 65 communes of Lạng Sơn (after 1/7/2025); running it again adds nothing."""
    summary = places.load_communes(session)
    return _done("communes", communes=summary.communes)


@router.post("/places/units")
def add_unit(
    request: Request,
    staff: AdminStaff,
    session: SessionDep,
    templates: TemplatesDep,
    name: Annotated[str, Form(max_length=300)] = "",
    parent_id: Annotated[str, Form(max_length=20)] = "",
    code: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    """Add a village under a commune."""
    try:
        places.add_unit(
            session, kind=UnitKind.village, name=name, parent_id=_int(parent_id), code=code, by=staff
        )
    except FormError as error:
        form = {"name": name, "parent_id": parent_id, "code": code}
        return _page(request, session, staff, templates, 422, unit_form=form, unit_errors=error.fields)
    return _done("unit")


@router.post("/places/venues")
def add_venue(
    request: Request,
    staff: AdminStaff,
    session: SessionDep,
    templates: TemplatesDep,
    name: Annotated[str, Form(max_length=300)] = "",
    type: Annotated[str, Form(max_length=100)] = "",
    unit_id: Annotated[str, Form(max_length=20)] = "",
    address: Annotated[str, Form(max_length=400)] = "",
    code: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    """Add a venue (library, cultural house, ...) to a unit."""
    try:
        places.add_venue(
            session, name=name, type=type, unit_id=_int(unit_id), address=address, code=code, by=staff
        )
    except FormError as error:
        form = {"name": name, "type": type, "unit_id": unit_id, "address": address, "code": code}
        return _page(request, session, staff, templates, 422, venue_form=form, venue_errors=error.fields)
    return _done("venue")


@router.post("/places/import")
def import_places(
    request: Request,
    staff: AdminStaff,
    session: SessionDep,
    templates: TemplatesDep,
    file: Annotated[UploadFile | None, File()] = None,
) -> Response:
    """Import villages and venues from a CSV file; one bad line and nothing is stored."""
    data = file.file.read(MAX_UPLOAD + 1) if file is not None else b""
    problem = None
    if not data:
        problem = N_("Choose a CSV file.")
    elif len(data) > MAX_UPLOAD:
        problem = N_("The file is too large (at most 2 MB).")
    else:
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            problem = N_("The file is not UTF-8 text. In Excel, save it as “CSV UTF-8”.")
    if problem is not None:
        return _page(request, session, staff, templates, 422, import_error=problem)
    try:
        summary = places_csv.import_places_csv(session, text, by=staff)
    except AppError as error:
        if error.code != ErrorCode.import_failed:
            raise
        return _page(request, session, staff, templates, 422, import_rows=error.extra["rows"])
    return _done("imported", villages=summary.villages, venues=summary.venues)
