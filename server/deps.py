"""Request dependencies as Annotated aliases: the database session, settings, the current staff member."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

import anyio
from fastapi import Depends, Request
from sqlmodel import Session
from starlette.datastructures import FormData

from server import auth
from server.config import Settings
from server.errors import AppError, ErrorCode
from server.i18n import pick_language
from server.models import KioskDevice, Role, Staff, utcnow
from server.services import kiosks
from server.templating import Templates

# These three are `async def` although they do no I/O on the way in: FastAPI runs a plain `def` dependency in
# its thread pool, and each hand-off costs about as much as a small query. Closing the session may talk to
# the database (it gives its connection back), so that part runs in a thread when there is a connection,
# outside the pool's limit as FastAPI does it: when every pooled thread waits for a database connection,
# the sessions holding the connections must still be able to close.


async def get_session(request: Request) -> AsyncIterator[Session]:
    session = Session(request.app.state.engine, expire_on_commit=False)
    try:
        yield session
    finally:
        if session.in_transaction():
            await anyio.to_thread.run_sync(session.close, limiter=anyio.CapacityLimiter(1))
        else:
            session.close()


async def get_settings(request: Request) -> Settings:
    return request.app.state.settings


async def get_templates(request: Request) -> Templates:
    return request.app.state.templates


SessionDep = Annotated[Session, Depends(get_session)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
TemplatesDep = Annotated[Templates, Depends(get_templates)]


def optional_staff(request: Request, session: SessionDep, settings: SettingsDep) -> Staff | None:
    """The staff member behind the bearer token or session cookie, if any; remembered on request.state."""
    if hasattr(request.state, "staff"):
        return request.state.staff
    staff: Staff | None = None
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        staff = auth.staff_from_api_token(session, header[7:].strip(), method=request.method)
        if staff is None:
            raise AppError(ErrorCode.login_required)
    elif token := request.cookies.get(auth.SESSION_COOKIE):
        found = auth.staff_from_session_cookie(session, token, settings)
        if found is not None:
            staff = found.staff
            request.state.session_id = found.record.id
            if found.renewed_token:
                # Picked up by the middleware, which adds the Set-Cookie header to whatever response goes out.
                request.state.renewed_session_token = found.renewed_token
    request.state.staff = staff
    return staff


def staff_token_check(request: Request, session: SessionDep, settings: SettingsDep) -> None:
    """On every API route, even one that needs no login: a staff API token in the request is checked, so a
    revoked token is refused (401) and a read-only one is refused on any write (403 `token_read_only`)."""
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer ") and header[7:].strip().startswith(auth.TOKEN_PREFIX):
        optional_staff(request, session, settings)


def current_staff(staff: Annotated[Staff | None, Depends(optional_staff)]) -> Staff:
    if staff is None:
        raise AppError(ErrorCode.login_required)
    return staff


def office_staff(staff: Annotated[Staff, Depends(current_staff)]) -> Staff:
    auth.require_role(staff, Role.admin, Role.office)
    return staff


def admin_staff(staff: Annotated[Staff, Depends(current_staff)]) -> Staff:
    auth.require_role(staff, Role.admin)
    return staff


def kiosk_device(request: Request, session: SessionDep) -> KioskDevice:
    """The kiosk behind the `dd_kiosk` cookie or an `Authorization: Bearer ddk_...` header; a kiosk is
    never a staff member, and a staff login is never a kiosk."""
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        token = header[7:].strip()
    else:
        token = request.cookies.get(auth.KIOSK_COOKIE, "")
    if not token.startswith(kiosks.TOKEN_PREFIX):
        raise AppError(ErrorCode.device_revoked)
    return kiosks.device_from_token(session, token, utcnow())


def text_fields(form: FormData) -> dict[str, str]:
    """A posted form's text fields (the last value of each name). A file sent under a field's name is
    refused (422, the form's usual "check the form" error) instead of being saved as "UploadFile(...)"."""
    fields: dict[str, str] = {}
    for name, value in form.multi_items():
        if not isinstance(value, str):
            for _name, part in form.multi_items():
                if not isinstance(part, str):
                    part.file.close()  # its spooled temporary file; nothing else will read it
            raise AppError(ErrorCode.invalid_input)
        fields[name] = value
    return fields


def client_address(request: Request) -> str | None:
    """Where a request came from (uvicorn puts a trusted proxy's X-Forwarded-For here): the source of an
    anonymous phone's check-in for the flood budget (services/flood.py)."""
    return request.client.host if request.client else None


def language(request: Request) -> str:
    return pick_language(request)


OptionalStaff = Annotated[Staff | None, Depends(optional_staff)]
CurrentStaff = Annotated[Staff, Depends(current_staff)]
OfficeStaff = Annotated[Staff, Depends(office_staff)]
AdminStaff = Annotated[Staff, Depends(admin_staff)]
LanguageDep = Annotated[str, Depends(language)]
KioskDep = Annotated[KioskDevice, Depends(kiosk_device)]
