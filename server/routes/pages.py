"""Home, login and logout, language choice, the staff profile (password, API tokens), a health check."""

from __future__ import annotations

import math
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from sqlalchemy import text
from sqlmodel import Session, col, select

from server import auth
from server.deps import CurrentStaff, OptionalStaff, SessionDep, SettingsDep, TemplatesDep
from server.errors import N_, AppError, ErrorCode, FormError
from server.i18n import LANG_COOKIE, LANGUAGES
from server.middleware import session_cookie
from server.models import ApiToken, Staff
from server.services import login_throttle
from server.services import staff as staff_service

router = APIRouter(include_in_schema=False)


def _local_path(target: str | None, default: str = "/") -> str:
    """Only same-site paths, so `next=` cannot send someone to another site after login."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return default
    return target


@router.get("/")
def home(request: Request, staff: OptionalStaff, templates: TemplatesDep) -> Response:
    """The start page: residents type a code, staff go to their events."""
    if staff is not None:
        return RedirectResponse("/events", status_code=303)
    return templates.render(request, "home.html")


@router.get("/api/docs")
def api_docs(request: Request, templates: TemplatesDep) -> Response:
    """The API's reference (Swagger UI, vendored: nothing loads from a CDN)."""
    return templates.render(request, "api_docs.html", {"openapi_url": request.app.openapi_url})


@router.get("/healthz")
def health(session: SessionDep) -> JSONResponse:
    session.exec(text("SELECT 1"))  # type: ignore[call-overload]
    return JSONResponse({"status": "ok"})


@router.get("/login")
def login_page(request: Request, templates: TemplatesDep, next: str = "/") -> Response:
    return templates.render(request, "auth/login.html", {"next": _local_path(next)})


@router.post("/login")
def login(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    templates: TemplatesDep,
    username: Annotated[str, Form(max_length=64)] = "",
    password: Annotated[str, Form(max_length=256)] = "",
    next: Annotated[str, Form()] = "/",
) -> Response:
    """Log in; after too many failures (services/login_throttle.py) a 429 page says how long to wait, with
    Retry-After, and keeps the username typed."""
    host = request.client.host if request.client else None
    try:
        staff = login_throttle.log_in(session, username, password, host)
    except AppError as error:
        context: dict[str, object] = {"next": _local_path(next), "username": username, "error": error.code}
        if error.code == ErrorCode.login_throttled:
            seconds = int(error.extra["retry_after"])
            context["minutes"] = max(1, math.ceil(seconds / 60))
            headers = {"Retry-After": str(seconds)}
            return templates.render(request, "auth/login.html", context, status_code=429, headers=headers)
        return templates.render(request, "auth/login.html", context, status_code=401)
    token = auth.start_session(session, staff, settings)
    response = RedirectResponse(_local_path(next, "/events"), status_code=303)
    response.headers.append("set-cookie", session_cookie(token, settings))
    return response


@router.post("/logout")
def logout(request: Request, session: SessionDep, settings: SettingsDep, staff: OptionalStaff) -> Response:
    session_id = getattr(request.state, "session_id", None)
    if staff is not None and session_id:
        auth.end_session(session, session_id)
    request.state.renewed_session_token = None
    response = RedirectResponse("/login", status_code=303)
    response.headers.append("set-cookie", session_cookie("", settings, max_age=0))
    return response


@router.post("/lang")
def choose_language(lang: Annotated[str, Form()] = "vi", next: Annotated[str, Form()] = "/") -> Response:
    response = RedirectResponse(_local_path(next), status_code=303)
    if lang in LANGUAGES:
        response.set_cookie(LANG_COOKIE, lang, max_age=365 * 24 * 3600, samesite="lax")
    return response


@router.get("/profile")
def profile(request: Request, staff: CurrentStaff, session: SessionDep, templates: TemplatesDep) -> Response:
    return templates.render(request, "auth/profile.html", {"tokens": _tokens(session, staff)})


@router.post("/profile/tokens")
def create_token(
    request: Request,
    staff: CurrentStaff,
    session: SessionDep,
    templates: TemplatesDep,
    name: Annotated[str, Form(max_length=100)] = "",
    access: Annotated[str, Form(max_length=10)] = "write",
) -> Response:
    """A new token, read-only (`access=read`) or allowed to change data too (`access=write`)."""
    if not name.strip() or access not in ("read", "write"):
        raise AppError(ErrorCode.invalid_input)
    _record, plain = auth.create_api_token(session, staff, name, read_only=access == "read")
    tokens = _tokens(session, staff)
    # Shown once, on this response only: only its hash is stored.
    return templates.render(
        request,
        "auth/profile.html",
        {"tokens": tokens, "new_token": plain},
        headers={"Cache-Control": "no-store"},
    )


@router.post("/profile/tokens/{token_id}/revoke")
def revoke_token(token_id: int, staff: CurrentStaff, session: SessionDep) -> Response:
    auth.revoke_api_token(session, staff, token_id)
    return RedirectResponse("/profile", status_code=303)


@router.post("/profile/password")
def change_password(
    request: Request,
    staff: CurrentStaff,
    session: SessionDep,
    settings: SettingsDep,
    templates: TemplatesDep,
    current: Annotated[str, Form(max_length=256)] = "",
    password: Annotated[str, Form(max_length=256)] = "",
    confirm: Annotated[str, Form(max_length=256)] = "",
) -> Response:
    """Change one's own password: every other session ends, this one goes on with a fresh cookie."""
    errors: dict[str, str] = {}
    if not auth.verify_password(current, staff.password_hash):
        errors["current"] = N_("This is not your current password.")
    elif password != confirm:
        errors["confirm"] = N_("The two new passwords are not the same.")
    else:
        try:
            staff_service.set_password(session, staff.id or 0, password, by=staff)
        except FormError as error:
            errors = error.fields
    if errors:
        context = {"tokens": _tokens(session, staff), "password_errors": errors}
        return templates.render(request, "auth/profile.html", context, status_code=422)
    response = RedirectResponse("/profile?password=changed", status_code=303)
    response.headers.append(
        "set-cookie", session_cookie(auth.start_session(session, staff, settings), settings)
    )
    request.state.renewed_session_token = None
    return response


def _tokens(session: Session, staff: Staff) -> list[ApiToken]:
    return list(
        session.exec(
            select(ApiToken).where(ApiToken.staff_id == staff.id).order_by(col(ApiToken.created_at).desc())
        ).all()
    )
