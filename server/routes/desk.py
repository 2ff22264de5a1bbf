"""The organizer's desk at an event (/events/{id}/...): check in a card, a person found by name or a new
person without a phone; count walk-ins; show the rotating screen code. Each action returns its own
fragment to htmx and redirects (303) without it; every rule is the engine's (services/checkin.py)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from server import codes, rotation
from server.config import Settings
from server.deps import CurrentStaff, SessionDep, SettingsDep, TemplatesDep
from server.errors import AppError, ErrorCode
from server.models import AgeBand, Channel, CheckIn, CheckInMode, Event, Gender, Participant, Venue, utcnow
from server.routes.checkin import profile_of
from server.routes.events import is_fragment, show_context
from server.services import checkin, events, headcounts, names, scans
from server.services.checkin import CheckInRequest, Identity
from server.services.headcounts import HeadcountRequest

router = APIRouter(prefix="/events", include_in_schema=False)


@dataclass(frozen=True)
class Outcome:
    """What a desk form shows after a try: the stored check-in (and the name, if the organizer may see
    it), or the refusal."""

    check_in: CheckIn | None = None
    participant: Participant | None = None
    error: ErrorCode | None = None
    already: bool = False
    name: str | None = None


def _visit_time(day: str, clock: str, settings: Settings) -> datetime | None:
    """The time of the visit typed from a paper register (local date and time); None: now."""
    if not day and not clock:
        return None
    try:
        local_day = date.fromisoformat(day) if day else datetime.now(settings.tz).date()
        return datetime.combine(local_day, time.fromisoformat(clock or "00:00"), settings.tz)
    except ValueError:
        raise AppError(ErrorCode.invalid_input, "visit time") from None


def _try(
    session: SessionDep, settings: Settings, staff: CurrentStaff, make: Any, day: str, clock: str
) -> Outcome:
    """Run one check-in through the engine and turn its refusal into something to show in the form."""
    try:
        request: CheckInRequest = make(_visit_time(day, clock, settings))
        result = checkin.check_in(session, settings, request, staff=staff)
    except AppError as error:
        if error.code == ErrorCode.already_checked_in:
            holder = error.extra["participant"]
            name = names.shown(session, staff, holder)
            return Outcome(error.extra["check_in"], holder, already=True, name=name)
        return Outcome(error=error.code)
    name = names.shown(session, staff, result.participant)
    return Outcome(result.check_in, result.participant, name=name)


def _answer(
    request: Request,
    templates: TemplatesDep,
    session: SessionDep,
    settings: Settings,
    staff: CurrentStaff,
    event: Event,
    fragment: str,
    anchor: str,
    **context: Any,
) -> Response:
    outcome: Outcome = context["outcome"]
    if not is_fragment(request) and outcome.error is None:
        return RedirectResponse(f"/events/{event.id}#{anchor}", status_code=303)
    page = show_context(session, settings, event, staff=staff, outcome_for=anchor, **context)
    name = fragment if is_fragment(request) else "events/show.html"
    return templates.render(request, name, page, status_code=422 if outcome.error else 200)


@router.post("/{event_id}/checkins")
def add_new_person(
    event_id: int,
    request: Request,
    staff: CurrentStaff,
    session: SessionDep,
    settings: SettingsDep,
    templates: TemplatesDep,
    nonce: Annotated[str, Form(max_length=64)] = "",
    age_band: Annotated[str, Form(max_length=8)] = "",
    gender: Annotated[str, Form(max_length=16)] = "",
    name: Annotated[str, Form(max_length=200)] = "",
    consent: Annotated[str, Form(max_length=8)] = "",
    visit_date: Annotated[str, Form(max_length=10)] = "",
    visit_time: Annotated[str, Form(max_length=8)] = "",
) -> Response:
    """Check in someone with neither phone nor card (also a paper register typed in later)."""
    event = events.get_event(session, staff, event_id)
    form = {"age_band": age_band, "gender": gender, "name": name, "consent": consent == "yes"}

    def make(at: datetime | None) -> CheckInRequest:
        identity = Identity(profile=profile_of(form))
        return CheckInRequest(Channel.staff_form, nonce, identity, event_id=event.id, claimed_at=at)

    outcome = _try(session, settings, staff, make, visit_date, visit_time)
    keep = {} if outcome.check_in else {**form, "visit_date": visit_date, "visit_time": visit_time}
    return _answer(
        request,
        templates,
        session,
        settings,
        staff,
        event,
        "events/_manual.html",
        "manual",
        outcome=outcome,
        form=keep,
    )


@router.post("/{event_id}/checkins/card")
def check_in_card(
    event_id: int,
    request: Request,
    staff: CurrentStaff,
    session: SessionDep,
    settings: SettingsDep,
    templates: TemplatesDep,
    nonce: Annotated[str, Form(max_length=64)] = "",
    card: Annotated[str, Form(max_length=40)] = "",
    visit_date: Annotated[str, Form(max_length=10)] = "",
    visit_time: Annotated[str, Form(max_length=8)] = "",
) -> Response:
    """Check in a personal card by its number (typed, or from a scanner that types like a keyboard)."""
    event = events.get_event(session, staff, event_id)

    def make(at: datetime | None) -> CheckInRequest:
        if not card.strip():
            raise AppError(ErrorCode.card_invalid)  # an empty field (the browser asks first)
        identity = Identity(card=card.strip())
        return CheckInRequest(Channel.staff_form, nonce, identity, event_id=event.id, claimed_at=at)

    outcome = _try(session, settings, staff, make, visit_date, visit_time)
    keep = {"card": "" if outcome.check_in else card, "visit_date": visit_date, "visit_time": visit_time}
    return _answer(
        request,
        templates,
        session,
        settings,
        staff,
        event,
        "events/_card.html",
        "card",
        outcome=outcome,
        card_form=keep,
    )


@router.get("/{event_id}/people")
def find_people(
    event_id: int,
    request: Request,
    staff: CurrentStaff,
    session: SessionDep,
    settings: SettingsDep,
    templates: TemplatesDep,
    q: str = "",
) -> Response:
    """Participants in your area whose name or card number matches, each with a check-in button."""
    event = events.get_event(session, staff, event_id)
    context = show_context(session, settings, event, staff=staff, q=q[:100])
    name = "events/_people_results.html" if is_fragment(request) else "events/show.html"
    return templates.render(request, name, context)


@router.post("/{event_id}/checkins/person")
def check_in_person(
    event_id: int,
    request: Request,
    staff: CurrentStaff,
    session: SessionDep,
    settings: SettingsDep,
    templates: TemplatesDep,
    nonce: Annotated[str, Form(max_length=64)] = "",
    participant_id: Annotated[int, Form(ge=1, le=2**31 - 1)] = 1,
    q: Annotated[str, Form(max_length=100)] = "",
    visit_date: Annotated[str, Form(max_length=10)] = "",
    visit_time: Annotated[str, Form(max_length=8)] = "",
) -> Response:
    """Check in a participant found by name: a regular without a phone stays one person."""
    event = events.get_event(session, staff, event_id)

    def make(at: datetime | None) -> CheckInRequest:
        identity = Identity(participant_id=participant_id)
        return CheckInRequest(Channel.staff_form, nonce, identity, event_id=event.id, claimed_at=at)

    outcome = _try(session, settings, staff, make, visit_date, visit_time)
    return _answer(
        request,
        templates,
        session,
        settings,
        staff,
        event,
        "events/_people_results.html",
        "people",
        outcome=outcome,
        q=q,
    )


@router.post("/{event_id}/headcounts")
def count_walk_in(
    event_id: int,
    request: Request,
    staff: CurrentStaff,
    session: SessionDep,
    settings: SettingsDep,
    templates: TemplatesDep,
    nonce: Annotated[str, Form(max_length=64)] = "",
    delta: Annotated[int, Form(ge=-500, le=500)] = 0,
    age_band: Annotated[str, Form(max_length=8)] = "",
    gender: Annotated[str, Form(max_length=16)] = "",
) -> Response:
    """+1 / -1 on the walk-in count (people who do not check in), optionally by age band and gender."""
    event = events.get_event(session, staff, event_id)
    error: ErrorCode | None = None
    try:
        band = AgeBand(age_band) if age_band else None
        sex = Gender(gender) if gender else None
    except ValueError:
        band = sex = None
        error = ErrorCode.invalid_input
    if error is None:
        try:
            change = HeadcountRequest(nonce, event.id or 0, delta, age_band=band, gender=sex)
            headcounts.change_headcount(session, settings, change, staff=staff)
        except AppError as failure:
            error = failure.code
    if not is_fragment(request) and error is None:
        return RedirectResponse(f"/events/{event.id}#headcount", status_code=303)
    counting = {"age_band": age_band, "gender": gender}
    context = show_context(session, settings, event, staff=staff, headcount_error=error, counting=counting)
    name = "events/_headcount.html" if is_fragment(request) else "events/show.html"
    return templates.render(request, name, context, status_code=422 if error else 200)


@router.get("/{event_id}/screen")
def screen(
    event_id: int,
    request: Request,
    staff: CurrentStaff,
    session: SessionDep,
    settings: SettingsDep,
    templates: TemplatesDep,
) -> Response:
    """A QR code that changes every 20 seconds, for a screen or the organizer's phone; it keeps working
    with no network once loaded (the page holds the event's own key, never the server's secret)."""
    event = events.get_event(session, staff, event_id)
    if event.checkin_mode == CheckInMode.poster:
        raise AppError(ErrorCode.invalid_input, "this event uses the printed poster only")
    venue = session.get(Venue, event.venue_id)
    code = scans.code_for(event, settings)
    context = {
        "event": event,
        "venue": venue,
        "rotation_key": scans.rotation_key(event, settings),
        "link": scans.link_for(event, settings),
        "period": rotation.PERIOD,
        "server_ms": int(utcnow().timestamp() * 1000),  # the page corrects a phone clock that is off
        "pretty_code": codes.pretty(code),
    }
    return templates.render(request, "events/screen.html", context, headers={"Cache-Control": "no-store"})
