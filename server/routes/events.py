"""Organizer screens under /events: list, create, edit, cancel, live attendance, manual check-in, QR."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response
from sqlmodel import Session

import qr
from server import auth, codes
from server.config import Settings
from server.deps import CurrentStaff, SessionDep, SettingsDep, TemplatesDep, text_fields
from server.errors import AppError, ErrorCode, FormError
from server.i18n import gettext, pick_language
from server.models import (
    AgeBand,
    Campaign,
    CheckInMode,
    Club,
    Event,
    EventType,
    Gender,
    OrgUnit,
    Staff,
    Venue,
    in_zone,
)
from server.services import attendance, checkin, events, flood, identities, scans

router = APIRouter(prefix="/events", include_in_schema=False)


def is_fragment(request: Request) -> bool:
    return request.headers.get("hx-request") == "true" and request.headers.get("hx-boosted") != "true"


def _form_context(session: Session, staff: Staff, **extra: Any) -> dict[str, Any]:
    return {
        "venues": events.venues_for(session, staff),
        "event_types": list(EventType),
        "campaigns": list(Campaign),
        "checkin_modes": list(CheckInMode),
        "errors": {},
        "form": {},
        **extra,
    }


def _form_values(event: Event, settings: Settings) -> dict[str, str]:
    start, end = in_zone(event.starts_at, settings.tz), in_zone(event.ends_at, settings.tz)
    return {
        "title": event.title,
        "type": event.type.value,
        "venue_id": str(event.venue_id),
        "date": start.date().isoformat(),
        "start_time": start.strftime("%H:%M"),
        "end_date": end.date().isoformat() if end.date() != start.date() else "",
        "end_time": end.strftime("%H:%M"),
        "campaign": event.campaign.value,
        "expected_audience": "" if event.expected_audience is None else str(event.expected_audience),
        "description": event.description,
        "checkin_mode": event.checkin_mode.value,
    }


@router.get("")
def list_events(
    request: Request,
    staff: CurrentStaff,
    session: SessionDep,
    templates: TemplatesDep,
    q: str = "",
    when: str = "upcoming",
    page: int = 1,
) -> Response:
    rows, total = events.list_events(session, staff, query=q[:100], when=when, page=page)
    context = {
        "rows": rows,
        "total": total,
        "q": q,
        "when": when,
        "page": page,
        "page_size": events.PAGE_SIZE,
    }
    name = "events/_rows.html" if is_fragment(request) else "events/list.html"
    return templates.render(request, name, context)


@router.get("/suspicious")
def suspicious_events(
    request: Request, staff: CurrentStaff, session: SessionDep, templates: TemplatesDep
) -> Response:
    """Events in scope with check-ins marked suspicious (a flood from one address), for the office."""
    rows = flood.events_with_flags(session, staff)
    return templates.render(request, "events/suspicious.html", {"rows": rows})


@router.post("/{event_id}/suspicious/exclude")
def exclude_suspicious(
    event_id: int,
    staff: CurrentStaff,
    session: SessionDep,
    source: Annotated[str, Form(max_length=16)] = "",
    minute: Annotated[str, Form(max_length=40)] = "",
) -> Response:
    """One action: take the event's suspicious check-ins (all, or one source's in one minute) out of
    every count; it is logged and can be undone."""
    event = events.get_event(session, staff, event_id)
    at: datetime | None = None
    if minute:
        try:
            at = datetime.fromisoformat(minute)
        except ValueError:
            raise AppError(ErrorCode.invalid_input, "minute") from None
        if at.tzinfo is None:
            raise AppError(ErrorCode.invalid_input, "minute needs a time zone")
    flood.exclude(session, staff, event, source=source or None, minute=at)
    return RedirectResponse(f"/events/{event.id}#suspicious", status_code=303)


@router.post("/{event_id}/suspicious/{exclusion_id}/undo")
def undo_exclusion(event_id: int, exclusion_id: int, staff: CurrentStaff, session: SessionDep) -> Response:
    """Put an exclusion's check-ins back into every count (the log keeps both actions)."""
    event = events.get_event(session, staff, event_id)
    flood.undo(session, staff, event, exclusion_id)
    return RedirectResponse(f"/events/{event.id}#suspicious", status_code=303)


@router.get("/new")
def new_event(
    request: Request, staff: CurrentStaff, session: SessionDep, templates: TemplatesDep
) -> Response:
    return templates.render(request, "events/form.html", _form_context(session, staff, event=None))


@router.post("")
async def create_event(
    request: Request, staff: CurrentStaff, session: SessionDep, settings: SettingsDep, templates: TemplatesDep
) -> Response:
    form = text_fields(await request.form())
    try:
        data = events.parse_form(form, settings.tz)
        event = events.create_event(session, staff, data)
    except FormError as error:
        context = _form_context(session, staff, event=None, errors=error.fields, form=form)
        return templates.render(request, "events/form.html", context, status_code=422)
    return RedirectResponse(f"/events/{event.id}", status_code=303)


@router.get("/{event_id}")
def show_event(
    event_id: int,
    request: Request,
    staff: CurrentStaff,
    session: SessionDep,
    settings: SettingsDep,
    templates: TemplatesDep,
) -> Response:
    event = events.get_event(session, staff, event_id)
    return templates.render(request, "events/show.html", show_context(session, settings, event, staff=staff))


def show_context(
    session: Session, settings: Settings, event: Event, *, staff: Staff | None = None, **extra: Any
) -> dict[str, Any]:
    """Everything the event page shows; its fragments (live counts, the desk's forms) take what they need."""
    venue = session.get(Venue, event.venue_id)
    assert venue is not None
    unit = session.get(OrgUnit, venue.unit_id)
    code = scans.code_for(event, settings)
    opens_at, closes_at = scans.check_in_window(event, settings)
    query = extra.get("q", "")
    return {
        "event": event,
        "venue": venue,
        "unit": unit,
        "club": session.get(Club, event.club_id) if event.club_id else None,
        "link": scans.link_for(event, settings),
        "pretty_code": codes.pretty(code),
        "qr_svg": qr.render_svg(scans.link_for(event, settings)),
        "opens_at": opens_at,
        "closes_at": closes_at,
        "live": attendance.live_summary(session, event.id or 0, staff=staff),
        "flood": flood.overview(session, event.id or 0),
        "age_bands": list(AgeBand),
        "genders": list(Gender),
        "nonce": checkin.new_nonce(),
        "form": {},
        "card_form": {},
        "counting": {},
        "headcount_error": None,
        "outcome": None,
        "outcome_for": "",
        "q": query,
        "utc_offset": in_zone(event.starts_at, settings.tz).isoformat()[-6:],  # for "entered later" times
        "found": identities.find_participants(session, settings, staff, query) if staff and query else [],
        **extra,
    }


@router.get("/{event_id}/edit")
def edit_event(
    event_id: int,
    request: Request,
    staff: CurrentStaff,
    session: SessionDep,
    settings: SettingsDep,
    templates: TemplatesDep,
) -> Response:
    event = events.get_event(session, staff, event_id)
    context = _form_context(session, staff, event=event, form=_form_values(event, settings))
    return templates.render(request, "events/form.html", context)


@router.post("/{event_id}")
async def update_event(
    event_id: int,
    request: Request,
    staff: CurrentStaff,
    session: SessionDep,
    settings: SettingsDep,
    templates: TemplatesDep,
) -> Response:
    event = events.get_event(session, staff, event_id)
    form = text_fields(await request.form())
    try:
        data = events.parse_form(form, settings.tz)
        events.update_event(session, staff, event, data)
    except FormError as error:
        context = _form_context(session, staff, event=event, errors=error.fields, form=form)
        return templates.render(request, "events/form.html", context, status_code=422)
    return RedirectResponse(f"/events/{event.id}", status_code=303)


@router.get("/{event_id}/cancel")
def confirm_cancel(
    event_id: int, request: Request, staff: CurrentStaff, session: SessionDep, templates: TemplatesDep
) -> Response:
    """Ask before cancelling: one tap on a phone should not cancel an event."""
    event = events.get_event(session, staff, event_id)
    live = attendance.live_summary(session, event.id or 0, latest=0)
    return templates.render(request, "events/cancel.html", {"event": event, "live": live})


@router.post("/{event_id}/cancel")
def cancel_event(event_id: int, staff: CurrentStaff, session: SessionDep) -> Response:
    event = events.get_event(session, staff, event_id)
    events.cancel_event(session, event)
    return RedirectResponse(f"/events/{event.id}", status_code=303)


@router.get("/{event_id}/live")
def live(
    event_id: int,
    request: Request,
    staff: CurrentStaff,
    session: SessionDep,
    templates: TemplatesDep,
    v: str = "",
) -> Response:
    """The live attendance fragment; 204 (htmx keeps what it shows) when nothing changed since version `v`.
    Every open event page asks every second, so the version and the scope check are one statement: a 204
    loads neither the event nor its venue."""
    if v:
        scope = auth.venue_scope_clause(session, staff)
        if attendance.live_version_in_scope(session, event_id, scope) == v:
            return Response(status_code=204)
    event = events.get_event(session, staff, event_id)
    summary = attendance.live_summary(session, event.id or 0, staff=staff)
    return templates.render(
        request,
        "events/_live.html",
        {"event": event, "live": summary, "oob": True},
        headers={"Cache-Control": "no-store"},
    )


@router.get("/{event_id}/poster")
def poster(
    event_id: int,
    request: Request,
    staff: CurrentStaff,
    session: SessionDep,
    settings: SettingsDep,
    templates: TemplatesDep,
) -> Response:
    """A printable A4 poster: title, time, place, the QR code and the code to type."""
    event = events.get_event(session, staff, event_id)
    context = show_context(session, settings, event)
    language = pick_language(request)
    site = settings.base_url.split("://", 1)[1]
    when = templates.envs[language].filters["span"](event.starts_at, event.ends_at)
    unit = context["unit"]
    parent = session.get(OrgUnit, unit.parent_id) if unit and unit.parent_id else None
    place = ", ".join(u.name for u in (unit, parent) if u is not None and u.kind != "province")
    svg = qr.render_poster_svg(
        qr.Poster(
            url=context["link"],
            title=event.title,
            when=when,
            venue=context["venue"].name,
            place=place,
            short_code=context["pretty_code"],
            heading=gettext(language, "CHECK IN"),
            scan_hint=gettext(language, "Open your phone's camera and scan this code"),
            type_hint=gettext(language, "Cannot scan? Open %(site)s/c and type the code:") % {"site": site},
            footer=gettext(
                language, "No app or account needed. Your data is used only to count participation."
            ),
        )
    )
    return templates.render(request, "events/poster.html", {**context, "poster_svg": svg})


@router.get("/{event_id}/qr.svg")
def qr_svg(event_id: int, staff: CurrentStaff, session: SessionDep, settings: SettingsDep) -> Response:
    event = events.get_event(session, staff, event_id)
    link = scans.link_for(event, settings)
    return Response(
        qr.render_svg(link),
        media_type="image/svg+xml",
        headers={"Content-Disposition": f'attachment; filename="diemdanh-{event.id}.svg"'},
    )


@router.get("/{event_id}/qr.png")
def qr_png(event_id: int, staff: CurrentStaff, session: SessionDep, settings: SettingsDep) -> Response:
    event = events.get_event(session, staff, event_id)
    link = scans.link_for(event, settings)
    return Response(
        qr.render_png(link, box_size=16),
        media_type="image/png",
        headers={"Content-Disposition": f'attachment; filename="diemdanh-{event.id}.png"'},
    )
