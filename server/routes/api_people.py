"""The JSON API for participants and their personal cards (/api/v1/participants, /api/v1/cards): the same
services as the /people pages (services/identities.py)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query
from sqlmodel import Session

from server import codes
from server.deps import CurrentStaff, SessionDep, SettingsDep, staff_token_check
from server.errors import AppError, ErrorCode
from server.models import Credential, Participant, Venue
from server.routes.api import profile_of
from server.schemas import (
    PROBLEM_RESPONSES,
    WRITE,
    CardIn,
    CardOut,
    NewParticipantIn,
    ParticipantOut,
    problems,
)
from server.services import identities, names

router = APIRouter(
    prefix="/api/v1", tags=["api"], dependencies=[Depends(staff_token_check)], responses=PROBLEM_RESPONSES
)


def _card_out(card: Credential) -> CardOut:
    return CardOut(
        id=card.id or 0,
        number=card.lookup,
        qr=codes.card_payload(card.lookup),
        participant_id=card.participant_id,
        venue_id=card.venue_id,
        issued_at=card.issued_at,
        revoked_at=card.revoked_at,
    )


def _participant_out(session: Session, participant: Participant, name: str | None) -> ParticipantOut:
    cards = identities.cards_of(session, [participant.id or 0])[participant.id or 0]
    return ParticipantOut(
        id=participant.id or 0,
        name=name,
        age_band=participant.age_band,
        gender=participant.gender,
        home_unit_id=participant.home_unit_id,
        cards=[card.lookup for card in cards],
    )


def _venue(session: Session, venue_id: int) -> Venue:
    venue = session.get(Venue, venue_id)
    if venue is None:
        raise AppError(ErrorCode.not_found)
    return venue


@router.get("/participants")
def find_participants(
    staff: CurrentStaff,
    session: SessionDep,
    settings: SettingsDep,
    q: Annotated[str, Query(max_length=100)] = "",
) -> list[ParticipantOut]:
    """Participants in your area whose name (diacritics optional) or card number matches `q` (at most 20);
    check one in with `participant_id`. A name finds, and `name` shows, only names given in your area or of
    people living there; a card number finds its holder, nameless if the name is not yours to see."""
    return [
        _participant_out(session, row.participant, row.name)
        for row in identities.find_participants(session, settings, staff, q)
    ]


@router.post("/participants", status_code=201, responses=problems(*WRITE, 404))
def register_participant(
    body: NewParticipantIn, staff: CurrentStaff, session: SessionDep, settings: SettingsDep
) -> ParticipantOut:
    """Register someone without a phone (consent given, no name under 16), with a card if a venue is named."""
    venue = _venue(session, body.card_venue_id) if body.card_venue_id else None
    profile = profile_of(body.profile)
    assert profile is not None  # the body requires one
    if venue is not None:
        (card,) = identities.issue_cards(session, settings, staff, venue, [profile])
        participant = session.get(Participant, card.participant_id)
        assert participant is not None
    else:
        participant = identities.register(session, staff, profile)
    return _participant_out(session, participant, names.shown(session, staff, participant))


@router.post("/participants/{participant_id}/cards", status_code=201, responses=problems(*WRITE, 404))
def issue_card(
    participant_id: int, body: CardIn, staff: CurrentStaff, session: SessionDep, settings: SettingsDep
) -> CardOut:
    """Give a participant in your area a new personal card, issued at a venue in your scope."""
    participant = identities.get_participant(session, staff, participant_id)
    venue = _venue(session, body.venue_id)
    return _card_out(identities.issue_card(session, settings, staff, participant, venue))


@router.post("/cards/{card_id}/revoke", responses=problems(*WRITE, 404))
def revoke_card(card_id: int, staff: CurrentStaff, session: SessionDep) -> CardOut:
    """Stop a card at once (lost, or handed to someone else); revoking twice changes nothing."""
    card = identities.get_card(session, staff, card_id)
    identities.revoke(session, staff, card)
    return _card_out(card)


@router.post("/cards/{card_id}/replace", status_code=201, responses=problems(*WRITE, 404))
def replace_card(card_id: int, staff: CurrentStaff, session: SessionDep, settings: SettingsDep) -> CardOut:
    """A lost card: the old number stops working and the same person gets a new card (returned)."""
    card = identities.get_card(session, staff, card_id)
    return _card_out(identities.replace_card(session, settings, staff, card))
