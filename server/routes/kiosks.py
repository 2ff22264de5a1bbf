"""Kiosk pages: /kiosks (staff enrol, re-pair and revoke phones) and /kiosk/pair (the phone pairs)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response
from sqlmodel import Session

import qr
from server.config import Settings
from server.deps import CurrentStaff, SessionDep, SettingsDep, TemplatesDep
from server.errors import MESSAGES, N_, AppError, ErrorCode, FormError
from server.middleware import kiosk_cookie
from server.models import KioskDevice, Staff, utcnow
from server.services import events, kiosks, login_throttle

router = APIRouter(include_in_schema=False)


def _pairing(settings: Settings, device: KioskDevice, code: str) -> dict[str, Any]:
    """What the page shows once after an enrolment or a new code: the code, its expiry, its QR link."""
    link = f"{settings.base_url}/kiosk/pair?code={code}"
    expires_at: datetime | None = device.pairing_expires_at
    return {
        "device": device,
        "code": kiosks.pretty_code(code),
        "expires_at": expires_at,
        "link": link,
        "qr_svg": qr.render_svg(link),
    }


def _page(
    request: Request,
    session: Session,
    staff: Staff,
    templates: TemplatesDep,
    status: int = 200,
    **extra: Any,
) -> Response:
    context: dict[str, Any] = {
        "rows": kiosks.list_devices(session, staff),
        "venues": events.venues_for(session, staff),
        "form": {},
        "errors": {},
        **extra,
    }
    return templates.render(request, "kiosks/index.html", context, status_code=status)


@router.get("/kiosks")
def list_kiosks(
    request: Request, staff: CurrentStaff, session: SessionDep, templates: TemplatesDep
) -> Response:
    """The kiosks at your venues, and the form to enrol one."""
    done = "revoked" if request.query_params.get("done") == "revoked" else ""
    return _page(request, session, staff, templates, done=done)


@router.post("/kiosks")
def enrol_kiosk(
    request: Request,
    staff: CurrentStaff,
    session: SessionDep,
    settings: SettingsDep,
    templates: TemplatesDep,
    venue_id: Annotated[str, Form(max_length=20)] = "",
    name: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    """Enrol a phone as a kiosk at a venue; the page shows its pairing code once."""
    form = {"venue_id": venue_id, "name": name}
    venue = int(venue_id) if venue_id.strip().isdigit() else None
    try:
        device, code = kiosks.enrol_device(session, staff, venue, name, utcnow())
    except FormError as error:
        return _page(request, session, staff, templates, 422, form=form, errors=error.fields)
    except AppError as error:
        if error.code not in (ErrorCode.not_found, ErrorCode.forbidden):
            raise
        errors = {"venue_id": N_("Choose one of your venues.")}
        return _page(request, session, staff, templates, 422, form=form, errors=errors)
    return _page(request, session, staff, templates, pairing=_pairing(settings, device, code))


@router.post("/kiosks/{device_id}/pair")
def new_pairing_code(
    request: Request,
    device_id: int,
    staff: CurrentStaff,
    session: SessionDep,
    settings: SettingsDep,
    templates: TemplatesDep,
) -> Response:
    """A new pairing code for a kiosk (pair it again, or another phone); its old token stops at once."""
    code = kiosks.new_pairing_code(session, staff, device_id, utcnow())
    device = session.get(KioskDevice, device_id)
    assert device is not None
    return _page(request, session, staff, templates, pairing=_pairing(settings, device, code))


@router.post("/kiosks/{device_id}/revoke")
def revoke_kiosk(device_id: int, staff: CurrentStaff, session: SessionDep) -> Response:
    """Revoke a kiosk: the phone stops at once."""
    kiosks.revoke_device(session, staff, device_id, utcnow())
    return RedirectResponse("/kiosks?done=revoked", status_code=303)


@router.get("/kiosk/pair")
def pair_form(request: Request, templates: TemplatesDep, code: str = "") -> Response:
    """The phone's side: type the pairing code (a scan of the QR code fills it in)."""
    return templates.render(request, "kiosks/pair.html", {"code": code[:20]})


@router.post("/kiosk/pair")
def pair_kiosk(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    templates: TemplatesDep,
    code: Annotated[str, Form(max_length=40)] = "",
) -> Response:
    """Trade the pairing code for the kiosk's token, kept in a long-lived HttpOnly cookie."""
    host = request.client.host if request.client else None
    try:
        _device, token = login_throttle.pair_kiosk(session, code, host)
    except AppError as error:
        context = {"code": code, "error": MESSAGES[error.code]}
        headers = {"Retry-After": str(error.extra["retry_after"])} if "retry_after" in error.extra else None
        return templates.render(
            request, "kiosks/pair.html", context, status_code=error.status, headers=headers
        )
    response = RedirectResponse("/kiosk", status_code=303)
    response.headers.append("set-cookie", kiosk_cookie(token, settings))
    return response
