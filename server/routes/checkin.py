"""The resident's check-in page: `/c/<code>` from the QR poster. No account, no app, no JavaScript needed."""

from __future__ import annotations

from functools import cached_property
from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import RedirectResponse, Response
from sqlmodel import Session, col, select

from server import codes
from server.config import Settings
from server.deps import SessionDep, SettingsDep, TemplatesDep, client_address
from server.errors import AppError, ErrorCode
from server.models import AgeBand, Channel, Event, Gender, OrgUnit, UnitKind, Venue, utcnow
from server.services import checkin, clubs, identities, scans
from server.services.identities import Profile

router = APIRouter(include_in_schema=False)

DEVICE_COOKIE = "dd_device"
DEVICE_COOKIE_AGE = 2 * 365 * 24 * 3600
# Refusals that mean "fix the form", shown next to the form rather than as an error page.
FORM_CODES = {
    ErrorCode.consent_required,
    ErrorCode.name_not_allowed_for_child,
    ErrorCode.profile_required,
    ErrorCode.invalid_input,
    ErrorCode.checkin_busy,  # the form stays filled in: press again a minute later
}


@router.get("/c")
def enter_code(
    request: Request, session: SessionDep, settings: SettingsDep, templates: TemplatesDep, code: str = ""
) -> Response:
    """Where a typed code goes: on to its check-in page, or back with what was typed and "check the code"."""
    normalized = codes.normalize(code) if code else None
    if normalized and codes.is_club_code(normalized):
        try:
            clubs.club_by_code(session, settings, normalized)
        except AppError:
            normalized = None
        else:
            return RedirectResponse(f"/c/{normalized}", status_code=303)
    elif normalized:
        try:
            checkin.resolve_event(session, settings, None, normalized, None)
        except AppError:
            normalized = None
        else:
            return RedirectResponse(f"/c/{normalized}", status_code=303)
    context = {"code_error": bool(code), "code": code[:40]}
    return templates.render(request, "home.html", context, status_code=422 if code else 200)


@router.get("/c/{code}")
def show_check_in(
    code: str,
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    templates: TemplatesDep,
    t: Annotated[str, Query(max_length=16)] = "",
) -> Response:
    """The page a poster's (or a screen's rotating) QR code opens; a club's code opens its session now."""
    normalized = codes.normalize(code)
    if normalized and codes.is_club_code(normalized):
        club_page = _club_session(request, session, settings, templates, normalized)
        if isinstance(club_page, Response):
            return club_page
        code = club_page
    event, scan = scans.open_scan(session, settings, code, t or None)
    participant = identities.participant_for_device(session, request.cookies.get(DEVICE_COOKIE))
    earlier = checkin.existing_check_in(session, event.id or 0, participant.id or 0) if participant else None
    context = _context(session, settings, event, code, scan)
    context.update(participant=participant, earlier=earlier)
    return templates.render(request, "checkin/page.html", context, headers={"Cache-Control": "no-store"})


@router.post("/c/{code}")
def submit_check_in(
    code: str,
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    templates: TemplatesDep,
    nonce: Annotated[str, Form(max_length=64)] = "",
    scan: Annotated[str, Form(max_length=40)] = "",
    device: Annotated[str, Form(max_length=64)] = "",
    age_band: Annotated[str, Form(max_length=8)] = "",
    gender: Annotated[str, Form(max_length=16)] = "",
    home_unit_id: Annotated[str, Form(max_length=12)] = "",
    name: Annotated[str, Form(max_length=200)] = "",
    consent: Annotated[str, Form(max_length=8)] = "",
) -> Response:
    token = request.cookies.get(DEVICE_COOKIE) or (device if identities.valid_device_token(device) else None)
    form = {
        "age_band": age_band,
        "gender": gender,
        "home_unit_id": home_unit_id,
        "name": name,
        "consent": consent == "yes",
    }
    wants_profile = bool(age_band or gender or consent)
    try:
        result = checkin.check_in(
            session,
            settings,
            checkin.CheckInRequest(
                channel=Channel.page,
                key=nonce,
                code=code,
                rotation=scan or None,
                identity=checkin.Identity(
                    device_token=token, profile=profile_of(form) if wants_profile else None
                ),
            ),
            address=client_address(request),
        )
    except AppError as error:
        event = error.extra.get("event")
        if event is None or error.code not in FORM_CODES | {ErrorCode.already_checked_in}:
            return _reload_or_raise(request, error)
        context = _context(session, settings, event, code, scan)
        if error.code == ErrorCode.already_checked_in:
            context.update(participant=error.extra["participant"], earlier=error.extra["check_in"])
            return _respond(request, templates, context, token)
        participant = identities.participant_for_device(session, token)
        context.update(participant=participant, form=form, error=error.code)
        if error.code == ErrorCode.checkin_busy:
            wait = {"Retry-After": str(error.extra["retry_after"])}
            return _respond(request, templates, context, token, status_code=429, headers=wait)
        return _respond(request, templates, context, token, status_code=422)
    context = _context(session, settings, result.event, code, scan, venue=result.venue)
    context.update(participant=result.participant, done=result.check_in, earlier=None)
    return _respond(request, templates, context, result.device_token or token)


def _club_session(
    request: Request, session: Session, settings: Settings, templates: TemplatesDep, code: str
) -> Response | str:
    """A club's year-round code: the code of the session open now, or a page naming the next session."""
    now = utcnow()
    club, event = clubs.scan_club(session, settings, code, now)
    if event is not None:
        return scans.code_for(event, settings)
    venue = session.get(Venue, club.venue_id)
    context = {"club": club, "venue": venue, "next_session": clubs.next_session(session, club, now)}
    return templates.render(
        request, "checkin/no_session.html", context, headers={"Cache-Control": "no-store"}
    )


def _reload_or_raise(request: Request, error: AppError) -> Response:
    """Let the error page show: htmx does not swap an error page into the form, so ask it to reload."""
    if request.headers.get("hx-request") == "true":
        return Response(status_code=200, headers={"HX-Refresh": "true", "Cache-Control": "no-store"})
    raise error


def profile_of(form: dict[str, Any]) -> Profile:
    """A profile from form fields (the page's and the organizer's); the engine checks its rules."""
    try:
        band, gender = AgeBand(form["age_band"]), Gender(form["gender"])
    except ValueError:
        raise AppError(ErrorCode.profile_required) from None
    unit_id: int | None = None
    if form.get("home_unit_id"):
        try:
            unit_id = int(form["home_unit_id"])
        except ValueError:
            raise AppError(ErrorCode.invalid_input) from None
    return Profile(
        age_band=band,
        gender=gender,
        home_unit_id=unit_id,
        name=(form.get("name") or "").strip() or None,
        consent=bool(form.get("consent")),
    )


class _Place:
    """Where the event is, read only when a page shows it (the whole page, the first-time form's homes):
    the answer to an htmx check-in needs none of it."""

    def __init__(self, session: Session, venue: Venue) -> None:
        self._session = session
        self._venue = venue

    @cached_property
    def unit(self) -> OrgUnit | None:
        return self._session.get(OrgUnit, self._venue.unit_id)

    @cached_property
    def commune(self) -> OrgUnit | None:
        unit = self.unit
        if unit is None or unit.kind != UnitKind.village:
            return unit
        return self._session.get(OrgUnit, unit.parent_id)

    def homes(self) -> list[OrgUnit]:
        """The commune and its villages, for the first-time form's "where do you live"."""
        commune = self.commune
        if commune is None:
            return []
        villages = self._session.exec(
            select(OrgUnit)
            .where(OrgUnit.parent_id == commune.id, OrgUnit.kind == UnitKind.village)
            .order_by(col(OrgUnit.name))
        ).all()
        return [commune, *villages]


def _context(
    session: Session, settings: Settings, event: Event, code: str, scan: str, *, venue: Venue | None = None
) -> dict[str, Any]:
    """What every state of the page shows: the event and where it is (`venue` if the caller has it)."""
    venue = venue or session.get(Venue, event.venue_id)
    assert venue is not None
    return {
        "event": event,
        "venue": venue,
        "place": _Place(session, venue),
        "code": codes.normalize(code) or code,
        "nonce": checkin.new_nonce(),
        "scan": scan,
        "form": {},
        "age_bands": list(AgeBand),
        "genders": list(Gender),
    }


def _respond(
    request: Request,
    templates: TemplatesDep,
    context: dict[str, Any],
    token: str | None,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
) -> Response:
    fragment = request.headers.get("hx-request") == "true"
    name = "checkin/_checkin.html" if fragment else "checkin/page.html"
    response = templates.render(
        request,
        name,
        context,
        status_code=status_code,
        headers={"Cache-Control": "no-store", **(headers or {})},
    )
    if token and request.cookies.get(DEVICE_COOKIE) != token:
        # Not HttpOnly on purpose: the page's script mirrors it into localStorage, which outlives cookies in
        # some in-app browsers (Zalo). It identifies an anonymous participant, nothing more.
        response.set_cookie(
            DEVICE_COOKIE,
            token,
            max_age=DEVICE_COOKIE_AGE,
            samesite="lax",
            secure=request.url.scheme == "https",
        )
    return response
