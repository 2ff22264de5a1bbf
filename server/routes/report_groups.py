"""Routes under /places/groups (admin only): saved reporting groups of communes."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response
from sqlmodel import Session, col, select

from server.deps import AdminStaff, SessionDep, TemplatesDep
from server.errors import FormError
from server.labels import sort_key
from server.models import OrgUnit, ReportGroup, UnitKind
from server.services import report_groups

router = APIRouter(include_in_schema=False)


def _ids(values: list[str]) -> list[int]:
    return [int(v) for v in values if v.isdigit() and len(v) < 12]


def _communes(session: Session, ticked: set[int]) -> list[OrgUnit]:
    """Current communes, and any former commune a group still names."""
    current = col(OrgUnit.valid_to).is_(None) | col(OrgUnit.id).in_(ticked)
    units = session.exec(select(OrgUnit).where(OrgUnit.kind == UnitKind.commune, current)).all()
    return sorted(units, key=lambda u: sort_key(u.name))


def _page(
    request: Request,
    session: Session,
    templates: TemplatesDep,
    group: ReportGroup | None = None,
    status: int = 200,
    form: dict[str, Any] | None = None,
    **extra: Any,
) -> Response:
    if form is None:
        members = report_groups.group_units(session, group.id or 0) if group else []
        form = {
            "name": group.name if group else "",
            "description": group.description if group else "",
            "unit_ids": {u.id for u in members},
        }
    groups = report_groups.list_groups(session)
    context: dict[str, Any] = {
        "group": group,
        "groups": [(g, report_groups.group_units(session, g.id or 0)) for g in groups],
        "communes": _communes(session, form["unit_ids"]),
        "form": form,
        "errors": {},
        "done": request.query_params.get("done", ""),
        **extra,
    }
    return templates.render(request, "places/groups.html", context, status_code=status)


@router.get("/places/groups")
def list_groups(
    request: Request, staff: AdminStaff, session: SessionDep, templates: TemplatesDep
) -> Response:
    """The saved reporting groups and the form that makes one."""
    return _page(request, session, templates)


@router.get("/places/groups/{group_id}")
def show_group(
    request: Request, group_id: int, staff: AdminStaff, session: SessionDep, templates: TemplatesDep
) -> Response:
    """A group's form: its name, description and communes."""
    return _page(request, session, templates, report_groups.get_group(session, group_id))


def _save(
    request: Request,
    session: Session,
    templates: TemplatesDep,
    staff: AdminStaff,
    group_id: int | None,
    name: str,
    description: str,
    unit_id: list[str],
) -> Response:
    group = report_groups.get_group(session, group_id) if group_id is not None else None
    ids = _ids(unit_id)
    try:
        saved = report_groups.save_group(
            session, staff, name=name, description=description, unit_ids=ids, group_id=group_id
        )
    except FormError as error:
        session.rollback()
        form = {"name": name, "description": description, "unit_ids": set(ids)}
        return _page(request, session, templates, group, 422, form=form, errors=error.fields)
    return RedirectResponse(f"/places/groups?done=saved#group-{saved.id}", status_code=303)


@router.post("/places/groups")
def create_group(
    request: Request,
    staff: AdminStaff,
    session: SessionDep,
    templates: TemplatesDep,
    name: Annotated[str, Form(max_length=300)] = "",
    description: Annotated[str, Form(max_length=1100)] = "",
    unit_id: Annotated[list[str], Form(max_length=500)] = [],  # noqa: B006 (FastAPI copies defaults)
) -> Response:
    """Save a new reporting group of communes."""
    return _save(request, session, templates, staff, None, name, description, unit_id)


@router.post("/places/groups/{group_id}")
def update_group(
    request: Request,
    group_id: int,
    staff: AdminStaff,
    session: SessionDep,
    templates: TemplatesDep,
    name: Annotated[str, Form(max_length=300)] = "",
    description: Annotated[str, Form(max_length=1100)] = "",
    unit_id: Annotated[list[str], Form(max_length=500)] = [],  # noqa: B006 (FastAPI copies defaults)
) -> Response:
    """Change a group's name, description and communes."""
    return _save(request, session, templates, staff, group_id, name, description, unit_id)


@router.post("/places/groups/{group_id}/delete")
def delete_group(group_id: int, staff: AdminStaff, session: SessionDep) -> Response:
    """Delete a group (its communes and their figures stay)."""
    report_groups.delete_group(session, staff, group_id)
    return RedirectResponse("/places/groups?done=deleted", status_code=303)
