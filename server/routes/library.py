"""Staff screens under /library ("Số liệu thư viện"): the libraries in scope, a venue's year of figures
(a month a row), its school-library fields, rotations and edit history, and the CSV/XLSX import.
The rules are in services/library.py and services/library_import.py."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, File, Request, UploadFile
from fastapi.responses import RedirectResponse, Response
from sqlmodel import Session

from server import labels
from server.config import Settings
from server.deps import CurrentStaff, SessionDep, SettingsDep, TemplatesDep, text_fields
from server.errors import N_, AppError, ErrorCode, FormError
from server.models import LibraryMetric, OrgUnit, Staff, Venue, VenueType, utcnow
from server.services import library, library_import

router = APIRouter(prefix="/library", include_in_schema=False)
MAX_UPLOAD = 2 * 1024 * 1024
# What each field of the edit history is called on the page.
FIELD_LABELS: dict[str, str] = {
    **{metric.value: text for metric, text in labels.LIBRARY_METRICS.items()},
    "to_venue": N_("Sent to"),
    "copies": N_("Copies"),
    "sent_on": N_("Date sent"),
    "offers_lifelong_learning": N_("Offered lifelong-learning services"),
    "met_since": N_("Meets the library standard since"),
}


def _today(settings: Settings) -> date:
    return utcnow().astimezone(settings.tz).date()


def _number(raw: str | None) -> int | None:
    return int(raw) if raw and raw.isdigit() and len(raw) <= 9 else None


@router.get("")
def list_libraries(
    request: Request,
    staff: CurrentStaff,
    session: SessionDep,
    settings: SettingsDep,
    templates: TemplatesDep,
) -> Response:
    """The libraries in scope, each linked to this year's figures, and the import form."""
    query = request.query_params
    imported = (_number(query.get("figures")), _number(query.get("rotations")), _number(query.get("school")))
    context = _list_context(session, settings, staff, imported=imported if None not in imported else None)
    return templates.render(request, "library/list.html", context)


def _list_context(session: Session, settings: Settings, staff: Staff, **extra: Any) -> dict[str, Any]:
    return {
        "rows": library.library_venues(session, staff),
        "year": _today(settings).year,
        "columns": library_import.COLUMNS,
        "metrics": list(LibraryMetric),
        "import_error": None,
        "import_rows": None,
        "imported": None,
        **extra,
    }


@router.get("/template.csv")
def template_csv(staff: CurrentStaff) -> Response:
    """An example import file: figures of one month and a rotation."""
    return Response(
        "\ufeff" + library_import.TEMPLATE,
        media_type="text/csv; charset=utf-8",
        headers={"content-disposition": 'attachment; filename="so-lieu-thu-vien-mau.csv"'},
    )


@router.post("/import")
def import_figures(
    request: Request,
    staff: CurrentStaff,
    session: SessionDep,
    settings: SettingsDep,
    templates: TemplatesDep,
    file: Annotated[UploadFile | None, File()] = None,
) -> Response:
    """Import figures and rotations from a CSV or XLSX file; one bad line and nothing is stored."""
    data = file.file.read(MAX_UPLOAD + 1) if file is not None else b""
    name = (file.filename or "").lower() if file is not None else ""
    problem = None
    if not data:
        problem = N_("Choose a CSV or XLSX file.")
    elif len(data) > MAX_UPLOAD:
        problem = N_("The file is too large (at most 2 MB).")
    if problem is not None:
        context = _list_context(session, settings, staff, import_error=problem)
        return templates.render(request, "library/list.html", context, status_code=422)
    xlsx = name.endswith(".xlsx") or data.startswith(b"PK\x03\x04")
    try:
        summary = library_import.import_file(session, staff, data, xlsx=xlsx, today=_today(settings))
    except AppError as error:
        if error.code != ErrorCode.import_failed:
            raise
        context = _list_context(session, settings, staff, import_rows=error.extra["rows"])
        return templates.render(request, "library/list.html", context, status_code=422)
    query = urlencode({"figures": summary.figures, "rotations": summary.rotations, "school": summary.school})
    return RedirectResponse(f"/library?{query}", status_code=303)


@router.post("/rotations/{rotation_id}/delete")
def delete_rotation(
    rotation_id: int, staff: CurrentStaff, session: SessionDep, settings: SettingsDep
) -> Response:
    """Delete a batch entered by mistake (the history keeps what it was)."""
    rotation = library.delete_rotation(session, staff, rotation_id)
    year = rotation.sent_on.year
    return RedirectResponse(f"/library/{rotation.from_venue_id}/{year}#rotations", status_code=303)


def _venue_year(session: Session, settings: Settings, staff: Staff, venue_id: int, year: int) -> Venue:
    venue = library.get_venue(session, staff, venue_id)
    if library.year_problem(year, _today(settings)):
        raise AppError(ErrorCode.not_found)
    return venue


@router.get("/{venue_id}/{year}")
def show_year(
    venue_id: int,
    year: int,
    request: Request,
    staff: CurrentStaff,
    session: SessionDep,
    settings: SettingsDep,
    templates: TemplatesDep,
) -> Response:
    """A venue's figures for a year, month by month, with its rotations and edit history."""
    venue = _venue_year(session, settings, staff, venue_id, year)
    query = request.query_params
    flash = {"saved": _number(query.get("saved")), "warned": _number(query.get("warned"))}
    context = show_context(session, settings, staff, venue, year, flash=flash)
    return templates.render(request, "library/show.html", context)


def show_context(
    session: Session, settings: Settings, staff: Staff, venue: Venue, year: int, **extra: Any
) -> dict[str, Any]:
    today = _today(settings)
    venue_id = venue.id or 0
    stored = library.year_figures(session, venue_id, year)
    last_year = library.year_figures(session, venue_id, year - 1)
    months = list(range(1, 13 if year < today.year else today.month + 1))
    grid = {library.field_name(m, month): str(f.value) for (month, m), f in stored.items()}
    previous = {library.field_name(m, month): f.value for (month, m), f in last_year.items()}
    outliers = {
        library.field_name(o.metric, o.month): o for o in library.outliers(session, venue_id, year).values()
    }
    entry, since = library.school_status(session, venue_id, year)
    context: dict[str, Any] = {
        "venue": venue,
        "unit": session.get(OrgUnit, venue.unit_id),
        "file_code": venue.code or f"#{venue_id}",
        "year": year,
        "years": [y for y in (year - 1, year + 1) if library.FIRST_YEAR <= y <= today.year],
        "months": months,
        "metrics": list(LibraryMetric),
        "grid": grid,
        "previous": previous,
        "outliers": outliers,
        "errors": {},
        "is_school": venue.type == VenueType.school_library,
        "school_form": {
            "offers_lifelong_learning": bool(entry and entry.offers_lifelong_learning),
            "entered": entry is not None,
            "standard_since": since.isoformat() if since else "",
        },
        "school_errors": {},
        "rotations": library.venue_rotations(session, venue_id, year),
        "targets": library.rotation_targets(session, venue),
        "rotation_form": {"sent_on": today.isoformat()},
        "rotation_errors": {},
        "history": library.history(session, venue_id),
        "field_labels": FIELD_LABELS,
        "today": today,
        "flash": {},
    }
    context.update(extra)
    return context


@router.post("/{venue_id}/{year}/figures")
async def save_figures(
    venue_id: int,
    year: int,
    request: Request,
    staff: CurrentStaff,
    session: SessionDep,
    settings: SettingsDep,
    templates: TemplatesDep,
) -> Response:
    """Save the year's grid, or one month of it (the month's own button sends `only_month`)."""
    venue = _venue_year(session, settings, staff, venue_id, year)
    form = text_fields(await request.form())
    today = _today(settings)
    only = _number(form.get("only_month"))
    months = [only] if only is not None and 1 <= only <= 12 else range(1, 13)
    try:
        values = library.parse_figures_form(form, year, today, months=months)
        result = library.save_figures(session, staff, venue, year, values, today=today)
    except FormError as error:
        grid = {k: v for k, v in form.items() if k != "only_month"}
        context = show_context(session, settings, staff, venue, year, errors=error.fields, grid=grid)
        return templates.render(request, "library/show.html", context, status_code=422)
    flash = {"saved": result.changed, "warned": len(result.warnings)}
    others = [m for m in range(1, 13) if m not in months]
    if pending := library.unsaved_cells(session, venue.id or 0, year, form, others):
        # One month saved; what was typed in the others stays on the screen, not yet saved.
        context = show_context(
            session, settings, staff, venue, year, flash={**flash, "pending": len(pending)}
        )
        context["grid"].update(pending)
        return templates.render(request, "library/show.html", context)
    query = urlencode(flash)
    return RedirectResponse(f"/library/{venue_id}/{year}?{query}#figures", status_code=303)


@router.post("/{venue_id}/{year}/school")
async def save_school(
    venue_id: int,
    year: int,
    request: Request,
    staff: CurrentStaff,
    session: SessionDep,
    settings: SettingsDep,
    templates: TemplatesDep,
) -> Response:
    """Save a school library's year: lifelong-learning services offered, and the standard met since."""
    venue = _venue_year(session, settings, staff, venue_id, year)
    form = text_fields(await request.form())
    today = _today(settings)
    try:
        offers, since = library.parse_school_form(form, today)
        library.save_school_year(session, staff, venue, year, offers, since, today=today)
    except FormError as error:
        school_form = {**form, "offers_lifelong_learning": form.get("offers_lifelong_learning") == "yes"}
        context = show_context(
            session, settings, staff, venue, year, school_errors=error.fields, school_form=school_form
        )
        return templates.render(request, "library/show.html", context, status_code=422)
    return RedirectResponse(f"/library/{venue_id}/{year}#school", status_code=303)


@router.post("/{venue_id}/{year}/rotations")
async def add_rotation(
    venue_id: int,
    year: int,
    request: Request,
    staff: CurrentStaff,
    session: SessionDep,
    settings: SettingsDep,
    templates: TemplatesDep,
) -> Response:
    """Record a batch of books this venue sent to another library."""
    venue = _venue_year(session, settings, staff, venue_id, year)
    form = text_fields(await request.form())
    today = _today(settings)
    try:
        rotation = library.add_rotation(
            session, staff, venue, library.parse_rotation_form(form, today), today=today
        )
    except FormError as error:
        context = show_context(
            session, settings, staff, venue, year, rotation_errors=error.fields, rotation_form=form
        )
        return templates.render(request, "library/show.html", context, status_code=422)
    return RedirectResponse(f"/library/{venue_id}/{rotation.sent_on.year}#rotations", status_code=303)
