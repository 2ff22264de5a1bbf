"""Routes under /staff (admin only): the accounts, new accounts, (de)activation, passwords."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response
from sqlmodel import Session

from server.deps import AdminStaff, SessionDep, TemplatesDep
from server.errors import FormError
from server.models import Role, Staff
from server.services import places
from server.services import staff as accounts

router = APIRouter(include_in_schema=False)

DONE = ("created", "deactivated", "activated", "password")


def _page(
    request: Request, session: Session, templates: TemplatesDep, status: int = 200, **extra: Any
) -> Response:
    context: dict[str, Any] = {
        "rows": accounts.list_staff(session),
        "tree": places.unit_tree(session, with_venues=False),
        "roles": list(Role),
        "form": {},
        **extra,
    }
    return templates.render(request, "staff/index.html", context, status_code=status)


def _done(done: str) -> RedirectResponse:
    return RedirectResponse(f"/staff?done={done}", status_code=303)


@router.get("/staff")
def list_staff(request: Request, admin: AdminStaff, session: SessionDep, templates: TemplatesDep) -> Response:
    """Every staff account, and the form for a new one."""
    done = request.query_params.get("done", "")
    return _page(request, session, templates, done=done if done in DONE else "")


@router.post("/staff")
def create_staff(
    request: Request,
    admin: AdminStaff,
    session: SessionDep,
    templates: TemplatesDep,
    username: Annotated[str, Form(max_length=100)] = "",
    full_name: Annotated[str, Form(max_length=300)] = "",
    password: Annotated[str, Form(max_length=300)] = "",
    role: Annotated[str, Form(max_length=20)] = "",
    unit_id: Annotated[str, Form(max_length=20)] = "",
) -> Response:
    """Create an account."""
    unit = int(unit_id) if unit_id.strip().isdigit() else None
    try:
        accounts.create_staff(
            session,
            username=username,
            password=password,
            role=role,
            unit_id=unit,
            full_name=full_name,
            by=admin,
        )
    except FormError as error:
        # The password is never sent back into the page.
        form = {"username": username, "full_name": full_name, "role": role, "unit_id": unit_id}
        return _page(request, session, templates, 422, form=form, errors=error.fields)
    return _done("created")


def _set_active(
    request: Request, admin: Staff, session: Session, templates: TemplatesDep, staff_id: int, active: bool
) -> Response:
    try:
        accounts.set_active(session, staff_id, active, by=admin)
    except FormError as error:
        return _page(request, session, templates, 422, row_errors={staff_id: error.fields["active"]})
    return _done("activated" if active else "deactivated")


@router.post("/staff/{staff_id}/deactivate")
def deactivate_staff(
    request: Request, staff_id: int, admin: AdminStaff, session: SessionDep, templates: TemplatesDep
) -> Response:
    """Turn an account off and end its sessions (not your own)."""
    return _set_active(request, admin, session, templates, staff_id, False)


@router.post("/staff/{staff_id}/activate")
def activate_staff(
    request: Request, staff_id: int, admin: AdminStaff, session: SessionDep, templates: TemplatesDep
) -> Response:
    """Turn an account back on."""
    return _set_active(request, admin, session, templates, staff_id, True)


@router.post("/staff/{staff_id}/password")
def set_password(
    request: Request,
    staff_id: int,
    admin: AdminStaff,
    session: SessionDep,
    templates: TemplatesDep,
    password: Annotated[str, Form(max_length=300)] = "",
) -> Response:
    """Give an account a new password and end its sessions."""
    try:
        accounts.set_password(session, staff_id, password, by=admin)
    except FormError as error:
        return _page(request, session, templates, 422, row_errors={staff_id: error.fields["password"]})
    return _done("password")
