"""Organizer screens under /clubs: list and create clubs, a club's details, schedule, members, sessions and
its year-round poster. The rules are in services/clubs.py; a session is edited as an event (/events)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response
from sqlmodel import Session

import qr
from server import codes, labels
from server.config import Settings
from server.deps import CurrentStaff, SessionDep, SettingsDep, TemplatesDep, text_fields
from server.errors import N_, FormError
from server.i18n import gettext, pick_language
from server.models import Club, ClubType, OrgUnit, Staff, Venue, utcnow
from server.services import clubs, events, identities

router = APIRouter(prefix="/clubs", include_in_schema=False)


def schedule_text(club: Club, language: str) -> str:
    """ "Every Sunday, 19:30–21:00" in the page's language, or "" without a schedule."""
    days = clubs.weekdays_of(club)
    if not days or club.start_time is None:
        return ""
    names = ", ".join(gettext(language, labels.WEEKDAYS[d]) for d in days)
    start = club.start_time.strftime("%H:%M")
    minutes = club.start_time.hour * 60 + club.start_time.minute + club.duration_minutes
    end = f"{minutes // 60 % 24:02d}:{minutes % 60:02d}"
    return gettext(language, "Every %(days)s, %(start)s–%(end)s") % {
        "days": names,
        "start": start,
        "end": end,
    }


def _club_form(club: Club | None) -> dict[str, str]:
    if club is None:
        return {"type": ClubType.club.value}
    return {
        "name": club.name,
        "type": club.type.value,
        "venue_id": str(club.venue_id),
        "leader_name": club.leader_name,
        "description": club.description,
        "active": "yes" if club.active else "",
    }


def _schedule_form(club: Club) -> dict[str, Any]:
    return {
        "weekdays": [str(d) for d in clubs.weekdays_of(club)],
        "start_time": club.start_time.strftime("%H:%M") if club.start_time else "19:30",
        "duration_minutes": str(club.duration_minutes),
        "starts_on": club.schedule_from.isoformat() if club.schedule_from else "",
        "until": club.schedule_until.isoformat() if club.schedule_until else "",
    }


@router.get("")
def list_clubs(
    request: Request, staff: CurrentStaff, session: SessionDep, settings: SettingsDep, templates: TemplatesDep
) -> Response:
    return templates.render(request, "clubs/list.html", _list_context(session, settings, staff))


def _list_context(session: Session, settings: Settings, staff: Staff, **extra: Any) -> dict[str, Any]:
    now = utcnow()
    rows = clubs.list_clubs(session, staff, now=now)
    # Opening the list keeps every listed club's sessions made 8 weeks ahead (cheap when nothing is due).
    if clubs.top_up(session, settings, [row.club for row in rows], now=now):
        rows = clubs.list_clubs(session, staff, now=now)
    return {
        "rows": rows,
        "venues": events.venues_for(session, staff),
        "club_types": list(ClubType),
        "errors": {},
        "form": _club_form(None),
        **extra,
    }


@router.post("")
async def create_club(
    request: Request, staff: CurrentStaff, session: SessionDep, settings: SettingsDep, templates: TemplatesDep
) -> Response:
    form = text_fields(await request.form())
    try:
        club = clubs.create_club(session, staff, clubs.parse_club_form(form))
    except FormError as error:
        context = _list_context(session, settings, staff, errors=error.fields, form=form)
        return templates.render(request, "clubs/list.html", context, status_code=422)
    return RedirectResponse(f"/clubs/{club.id}", status_code=303)


@router.get("/{club_id}")
def show_club(
    club_id: int,
    request: Request,
    staff: CurrentStaff,
    session: SessionDep,
    settings: SettingsDep,
    templates: TemplatesDep,
    q: str = "",
    made: int | None = None,
) -> Response:
    club = clubs.get_club(session, staff, club_id)
    clubs.top_up(session, settings, [club], now=utcnow())
    context = show_context(request, session, settings, staff, club, q=q[:100], made=made)
    return templates.render(request, "clubs/show.html", context)


def show_context(
    request: Request, session: Session, settings: Settings, staff: Staff, club: Club, **extra: Any
) -> dict[str, Any]:
    venue = session.get(Venue, club.venue_id)
    assert venue is not None
    upcoming, past = clubs.list_sessions(session, club)
    query = extra.get("q", "")
    roster = clubs.members(session, staff, club)
    on_roster = {m.participant.id for m in roster}
    found = identities.find_participants(session, settings, staff, query) if query else []
    return {
        "club": club,
        "venue": venue,
        "unit": session.get(OrgUnit, venue.unit_id),
        "schedule": schedule_text(club, pick_language(request)),
        "weekdays": list(enumerate(labels.WEEKDAYS)),
        "upcoming": upcoming,
        "past": past,
        "members": roster,
        "found": [f for f in found if f.participant.id not in on_roster],
        "link": clubs.link_for(club, settings),
        "pretty_code": codes.pretty(clubs.code_for(club, settings)),
        "venues": events.venues_for(session, staff),
        "club_types": list(ClubType),
        "errors": {},
        "form": _club_form(club),
        "schedule_errors": {},
        "schedule_form": _schedule_form(club),
        "member_error": None,
        "made": None,
        **extra,
    }


@router.post("/{club_id}")
async def update_club(
    club_id: int,
    request: Request,
    staff: CurrentStaff,
    session: SessionDep,
    settings: SettingsDep,
    templates: TemplatesDep,
) -> Response:
    club = clubs.get_club(session, staff, club_id)
    form = text_fields(await request.form())
    try:
        clubs.update_club(
            session, staff, club, clubs.parse_club_form(form), active=form.get("active") == "yes"
        )
    except FormError as error:
        session.refresh(club)
        context = show_context(request, session, settings, staff, club, errors=error.fields, form=form)
        return templates.render(request, "clubs/show.html", context, status_code=422)
    return RedirectResponse(f"/clubs/{club.id}", status_code=303)


@router.post("/{club_id}/schedule")
async def set_schedule(
    club_id: int,
    request: Request,
    staff: CurrentStaff,
    session: SessionDep,
    settings: SettingsDep,
    templates: TemplatesDep,
) -> Response:
    """Save the schedule and make the sessions of the next 8 weeks."""
    club = clubs.get_club(session, staff, club_id)
    raw = await request.form()
    form: dict[str, Any] = dict(text_fields(raw))
    form["weekdays"] = [str(v) for v in raw.getlist("weekdays")]
    now = utcnow()
    try:
        clubs.set_schedule(
            session, staff, club, clubs.parse_schedule_form(form, settings.tz, now=now), now=now
        )
    except FormError as error:
        context = show_context(
            request, session, settings, staff, club, schedule_errors=error.fields, schedule_form=form
        )
        return templates.render(request, "clubs/show.html", context, status_code=422)
    made = clubs.generate_sessions(session, club, now=now, settings=settings, staff=staff)
    return RedirectResponse(f"/clubs/{club.id}?made={len(made)}", status_code=303)


@router.post("/{club_id}/sessions")
def generate_sessions(
    club_id: int, staff: CurrentStaff, session: SessionDep, settings: SettingsDep
) -> Response:
    """Make the sessions of the next 8 weeks that the schedule asks for and that do not exist yet."""
    club = clubs.get_club(session, staff, club_id)
    made = clubs.generate_sessions(session, club, settings=settings, staff=staff)
    return RedirectResponse(f"/clubs/{club.id}?made={len(made)}", status_code=303)


@router.post("/{club_id}/members")
def add_member(
    club_id: int,
    request: Request,
    staff: CurrentStaff,
    session: SessionDep,
    settings: SettingsDep,
    templates: TemplatesDep,
    participant_id: Annotated[str, Form(max_length=12)] = "",
) -> Response:
    club = clubs.get_club(session, staff, club_id)
    try:
        if not participant_id.isdigit():
            raise FormError({"participant_id": N_("Choose a participant from the search.")})
        clubs.add_member(session, staff, club, int(participant_id))
    except FormError as error:
        message = error.fields.get("participant_id")
        context = show_context(request, session, settings, staff, club, member_error=message)
        return templates.render(request, "clubs/show.html", context, status_code=422)
    return RedirectResponse(f"/clubs/{club.id}#members", status_code=303)


@router.post("/{club_id}/members/{participant_id}/remove")
def remove_member(club_id: int, participant_id: int, staff: CurrentStaff, session: SessionDep) -> Response:
    club = clubs.get_club(session, staff, club_id)
    clubs.remove_member(session, staff, club, participant_id)
    return RedirectResponse(f"/clubs/{club.id}#members", status_code=303)


@router.get("/{club_id}/poster")
def poster(
    club_id: int,
    request: Request,
    staff: CurrentStaff,
    session: SessionDep,
    settings: SettingsDep,
    templates: TemplatesDep,
) -> Response:
    """The club's A4 poster for the whole year: its code opens whichever session is open."""
    club = clubs.get_club(session, staff, club_id)
    language = pick_language(request)
    venue = session.get(Venue, club.venue_id)
    assert venue is not None
    unit = session.get(OrgUnit, venue.unit_id)
    parent = session.get(OrgUnit, unit.parent_id) if unit and unit.parent_id else None
    place = ", ".join(u.name for u in (unit, parent) if u is not None and u.kind != "province")
    site = settings.base_url.split("://", 1)[1]
    link = clubs.link_for(club, settings)
    svg = qr.render_poster_svg(
        qr.Poster(
            url=link,
            title=club.name,
            when=schedule_text(club, language) or gettext(language, "At every session"),
            venue=venue.name,
            place=place,
            short_code=codes.pretty(clubs.code_for(club, settings)),
            heading=gettext(language, "CHECK IN"),
            scan_hint=gettext(language, "Open your phone's camera and scan this code"),
            type_hint=gettext(language, "Cannot scan? Open %(site)s/c and type the code:") % {"site": site},
            footer=gettext(
                language, "This code works at every session of the club. No app or account needed."
            ),
        )
    )
    return templates.render(request, "clubs/poster.html", {"club": club, "poster_svg": svg, "link": link})
