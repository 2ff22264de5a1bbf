"""Participants and their personal cards (/people): find someone, issue, replace or revoke a card, print
A4 sheets of cards for a club or a school class. The rules are in services/identities.py."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import RedirectResponse, Response
from sqlmodel import Session

import qr
from server import codes
from server.deps import CurrentStaff, SessionDep, SettingsDep, TemplatesDep
from server.errors import N_, AppError, ErrorCode, FormError
from server.i18n import gettext, pick_language
from server.models import AgeBand, Gender, Staff, Venue
from server.routes import my_data
from server.routes.checkin import FORM_CODES, profile_of
from server.services import events, identities, names, rights
from server.services.identities import Profile

router = APIRouter(prefix="/people", include_in_schema=False)
MAX_GROUP = 100
CARD_FOOTER = N_("Show this card to the organizer to check in. If you lose it, ask for a new one.")


@router.get("")
def list_people(
    request: Request,
    staff: CurrentStaff,
    session: SessionDep,
    settings: SettingsDep,
    templates: TemplatesDep,
    q: Annotated[str, Query(max_length=100)] = "",
) -> Response:
    """Search participants by name or card number; without a search, the latest card holders."""
    found = (
        identities.find_participants(session, settings, staff, q)
        if q.strip()
        else identities.recent_card_holders(session, staff)
    )
    fragment = request.headers.get("hx-request") == "true" and request.headers.get("hx-boosted") != "true"
    if fragment:
        return templates.render(request, "people/_rows.html", {"found": found, "q": q})
    context = {"found": found, "q": q, "venues": events.venues_for(session, staff)}
    return templates.render(request, "people/index.html", context)


@router.get("/cards/new")
def new_cards(
    request: Request, staff: CurrentStaff, session: SessionDep, templates: TemplatesDep
) -> Response:
    return templates.render(request, "people/new_cards.html", _group_context(session, staff))


@router.post("/cards/new")
def issue_group_cards(
    request: Request,
    staff: CurrentStaff,
    session: SessionDep,
    settings: SettingsDep,
    templates: TemplatesDep,
    venue_id: Annotated[str, Form(max_length=12)] = "",
    age_band: Annotated[str, Form(max_length=8)] = "",
    gender: Annotated[str, Form(max_length=16)] = "",
    names: Annotated[str, Form(max_length=20_000)] = "",
    count: Annotated[str, Form(max_length=4)] = "",
    consent: Annotated[str, Form(max_length=8)] = "",
) -> Response:
    """New participants with a card each (a club, a school class), then their A4 sheet to print."""
    form = {"venue_id": venue_id, "age_band": age_band, "gender": gender, "names": names, "count": count}
    form["consent"] = consent
    try:
        venue, profiles = _group(session, form)
        cards = identities.issue_cards(session, settings, staff, venue, profiles)
    except FormError as error:
        context = _group_context(session, staff, form=form, errors=error.fields)
        return templates.render(request, "people/new_cards.html", context, status_code=422)
    except AppError as error:
        if error.code == ErrorCode.forbidden:
            raise
        context = _group_context(session, staff, form=form, error=error.code)
        return templates.render(request, "people/new_cards.html", context, status_code=422)
    query = "&".join(f"card={card.id}" for card in cards)
    return RedirectResponse(f"/people/cards?{query}", status_code=303)


@router.get("/cards")
def print_cards(
    request: Request,
    staff: CurrentStaff,
    session: SessionDep,
    settings: SettingsDep,
    templates: TemplatesDep,
    card: Annotated[list[int] | None, Query(max_length=500)] = None,
    venue: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
) -> Response:
    """A4 sheets of cards to print and cut: the cards named, or every active card of a venue."""
    if card is None and venue is None:
        raise AppError(ErrorCode.invalid_input, "card or venue")
    rows = identities.card_rows(session, staff, card_ids=card, venue_id=venue)
    language = pick_language(request)
    pages = qr.render_card_sheet_svg(
        [
            qr.Card(
                payload=codes.card_payload(row.card.lookup),
                number=codes.pretty(row.card.lookup),
                name=row.name or gettext(language, "Participant no. %(num)s") % {"num": row.participant.id},
                place=row.venue.name if row.venue else "",
            )
            for row in rows
        ],
        heading=gettext(language, N_("CHECK-IN CARD")),
        footer=gettext(
            language, "Show this card to the organizer to check in. If you lose it, ask for a new one."
        ),
    )
    return templates.render(request, "people/cards.html", {"pages": pages, "rows": rows})


@router.get("/{participant_id}")
def show_person(
    participant_id: int,
    request: Request,
    staff: CurrentStaff,
    session: SessionDep,
    templates: TemplatesDep,
) -> Response:
    identities.view_participant(session, staff, participant_id)
    return templates.render(request, "people/show.html", _person_context(session, staff, participant_id))


@router.post("/{participant_id}/cards")
def issue_card(
    participant_id: int,
    staff: CurrentStaff,
    session: SessionDep,
    settings: SettingsDep,
    request: Request,
    templates: TemplatesDep,
    venue_id: Annotated[str, Form(max_length=12)] = "",
) -> Response:
    """Give a participant (found by name, or just checked in) a personal card."""
    participant = identities.get_participant(session, staff, participant_id)
    venue = session.get(Venue, int(venue_id)) if venue_id.isdigit() else None
    if venue is None:
        context = _person_context(session, staff, participant_id, errors={"venue_id": N_("Choose a venue.")})
        return templates.render(request, "people/show.html", context, status_code=422)
    card = identities.issue_card(session, settings, staff, participant, venue)
    return RedirectResponse(f"/people/{participant.id}?issued={card.id}", status_code=303)


@router.post("/cards/{card_id}/revoke")
def revoke_card(card_id: int, staff: CurrentStaff, session: SessionDep) -> Response:
    """A card that was lost or handed on stops working at once, on every device."""
    card = identities.get_card(session, staff, card_id)
    identities.revoke(session, staff, card)
    return RedirectResponse(f"/people/{card.participant_id}", status_code=303)


@router.post("/cards/{card_id}/replace")
def replace_card(card_id: int, staff: CurrentStaff, session: SessionDep, settings: SettingsDep) -> Response:
    """A lost card: the old number stops working and the same person gets a new one."""
    card = identities.get_card(session, staff, card_id)
    new = identities.replace_card(session, settings, staff, card)
    return RedirectResponse(f"/people/{card.participant_id}?issued={new.id}", status_code=303)


def _group(session: Session, form: dict[str, str]) -> tuple[Venue, list[Profile]]:
    """Read the group form: where, who (names one per line, or a number of anonymous cards), consent."""
    errors: dict[str, str] = {}
    venue = session.get(Venue, int(form["venue_id"])) if form["venue_id"].isdigit() else None
    if venue is None:
        errors["venue_id"] = N_("Choose a venue.")
    try:
        band = AgeBand(form["age_band"])
    except ValueError:
        errors["age_band"] = N_("Choose an age group.")
    try:
        gender = Gender(form["gender"] or Gender.unspecified)
    except ValueError:
        errors["gender"] = N_("Choose a gender.")
    names = [line.strip()[:200] for line in form["names"].splitlines() if line.strip()]
    count = int(form["count"]) if form["count"].strip().isdigit() else 0
    if not names and not 1 <= count <= MAX_GROUP:
        errors["count"] = N_("Type the names, one per line, or the number of cards (1 to 100).")
    if len(names) > MAX_GROUP:
        errors["names"] = N_("At most 100 people at a time.")
    if form["consent"] != "yes":
        errors["consent"] = N_("Tick the box: each person (or a parent) was told what we record and agreed.")
    if errors:
        raise FormError(errors)
    assert venue is not None
    people: list[str | None] = list(names) if names else [None] * count
    return venue, [Profile(band, gender, None, name, consent=True) for name in people]


def _group_context(session: Session, staff: Staff, **extra: Any) -> dict[str, Any]:
    return {
        "venues": events.venues_for(session, staff),
        "age_bands": list(AgeBand),
        "genders": list(Gender),
        "form": {},
        "errors": {},
        "error": None,
        **extra,
    }


def _person_context(session: Session, staff: Staff, participant_id: int, **extra: Any) -> dict[str, Any]:
    participant = identities.get_participant(session, staff, participant_id)
    # Only staff who may see the name see what is stored and act for the person (services/names.py).
    may_act = names.is_visible(session, staff, participant)
    return {
        **(my_data.form_context(session, participant) if may_act else {}),
        "staff_view": True,
        "action_base": f"/people/{participant.id}",
        "person": participant,
        "name": participant.name if may_act else None,
        "may_act": may_act,
        "cards": identities.all_cards(session, participant.id or 0),
        "venues": events.venues_for(session, staff),
        "errors": {},
        **extra,
    }


# --- A resident's rights, for someone without a phone (services/rights.py; each action is logged) -------


@router.get("/{participant_id}/data.json")
def download_person(participant_id: int, staff: CurrentStaff, session: SessionDep) -> Response:
    """Everything stored about a participant, as a JSON file to hand them."""
    participant = identities.get_participant_to_act(session, staff, participant_id)
    document = rights.download(session, staff, participant)
    return Response(
        json.dumps(document, ensure_ascii=False, indent=2),
        media_type="application/json",
        headers={
            "Cache-Control": "no-store",
            "Content-Disposition": f'attachment; filename="nguoi-tham-gia-{participant.id}.json"',
        },
    )


@router.post("/{participant_id}/correct")
def correct_person(
    participant_id: int,
    request: Request,
    staff: CurrentStaff,
    session: SessionDep,
    templates: TemplatesDep,
    age_band: Annotated[str, Form(max_length=8)] = "",
    gender: Annotated[str, Form(max_length=16)] = "",
    home_unit_id: Annotated[str, Form(max_length=12)] = "",
    name: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    """Correct a participant's age group, gender, home and name at their request."""
    participant = identities.get_participant_to_act(session, staff, participant_id)
    form = {
        "age_band": age_band,
        "gender": gender,
        "home_unit_id": home_unit_id,
        "name": name,
        "consent": True,
    }
    try:
        rights.correct(session, staff, participant, profile_of(form))
    except AppError as error:
        if error.code not in FORM_CODES:
            raise
        session.rollback()
        context = _person_context(session, staff, participant_id, error=error.code)
        context["form"] = form
        return templates.render(request, "people/show.html", context, status_code=422)
    return RedirectResponse(f"/people/{participant_id}?done=corrected", status_code=303)


def _confirmed_person(
    request: Request,
    staff: Staff,
    session: Session,
    templates: TemplatesDep,
    participant_id: int,
    confirm: str,
) -> Response | None:
    if confirm == "yes":
        return None
    context = _person_context(session, staff, participant_id, confirm_error=True)
    return templates.render(request, "people/show.html", context, status_code=422)


@router.post("/{participant_id}/withdraw")
def withdraw_person(
    participant_id: int,
    request: Request,
    staff: CurrentStaff,
    session: SessionDep,
    templates: TemplatesDep,
    confirm: Annotated[str, Form(max_length=8)] = "",
) -> Response:
    """Withdraw a participant's consent at their request: name forgotten, phones and cards stop."""
    participant = identities.get_participant_to_act(session, staff, participant_id)
    if refused := _confirmed_person(request, staff, session, templates, participant_id, confirm):
        return refused
    rights.withdraw(session, staff, participant)
    return RedirectResponse(f"/people/{participant_id}?done=withdrawn", status_code=303)


@router.post("/{participant_id}/delete")
def delete_person(
    participant_id: int,
    request: Request,
    staff: CurrentStaff,
    session: SessionDep,
    templates: TemplatesDep,
    confirm: Annotated[str, Form(max_length=8)] = "",
) -> Response:
    """Delete a participant's identifying data at their request; their visits stay as anonymous counts."""
    participant = identities.get_participant_to_act(session, staff, participant_id)
    if refused := _confirmed_person(request, staff, session, templates, participant_id, confirm):
        return refused
    rights.delete(session, staff, participant)
    return RedirectResponse("/people?done=deleted", status_code=303)
