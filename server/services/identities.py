"""Participants and their credentials: the phone's device token and printed personal cards.

A participant may hold several credentials, each revocable. Staff find participants in their scope by
card number or name, so a regular without a phone stays one person however often they come.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, exists, func, or_
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import aliased
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import Session, col, select

from server import codes
from server.auth import can_use_venue, scope_path
from server.config import Settings
from server.db import insert_row
from server.errors import AppError, ErrorCode
from server.models import (
    AgeBand,
    CheckIn,
    Credential,
    CredentialKind,
    Gender,
    OrgUnit,
    Participant,
    Staff,
    Venue,
    utcnow,
)
from server.services import audit, names

# Known here too: the check-in engine records with place_name where a known person without a place told us
# who they are.
from server.services.names import place_name as place_name
from server.services.names import search_form as search_form

CONSENT_VERSION = "2026-12"  # 2026-12: the "My data" page and the retention period
SEARCH_LIMIT = 20
_TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]{16,64}$")


@dataclass(frozen=True)
class Profile:
    """What a new participant tells us: anonymous unless an adult chooses to give a name."""

    age_band: AgeBand
    gender: Gender
    home_unit_id: int | None = None
    name: str | None = None
    consent: bool = False


@dataclass(frozen=True)
class Found:
    """A participant as staff see them in a search: their name if they may see it (services/names.py),
    their active cards and where they live."""

    participant: Participant
    name: str | None
    cards: list[Credential]
    home: OrgUnit | None


def device_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def valid_device_token(token: str | None) -> bool:
    return bool(token) and _TOKEN_RE.match(token or "") is not None


def device_credential(session: Session, token: str | None) -> Credential | None:
    """The credential of a phone's token, revoked or not; None for an unknown or malformed token."""
    found = device_owner(session, token)
    return found[0] if found else None


def device_owner(session: Session, token: str | None) -> tuple[Credential, Participant] | None:
    """A phone's credential (revoked or not) and its participant, read together (one statement on the
    check-in path); None for an unknown or malformed token."""
    if not valid_device_token(token):
        return None
    row = session.exec(
        select(Credential, Participant)
        .join(Participant, col(Participant.id) == col(Credential.participant_id))
        .where(Credential.kind == CredentialKind.device, Credential.lookup == device_hash(token or ""))
    ).first()
    return (row[0], row[1]) if row else None


def participant_for_device(session: Session, token: str | None) -> Participant | None:
    """The participant a phone belongs to, if its token is known and not revoked."""
    found = device_owner(session, token)
    if found is None or found[0].revoked_at is not None:
        return None
    return found[1]


def card_credential(session: Session, settings: Settings, raw: str) -> Credential:
    """The card a typed or scanned number names. A made-up number and an unknown one get the same
    answer, so the refusal tells a guesser nothing; a revoked card has its own."""
    number = codes.card_number_of(raw)
    if number is None or not codes.card_signature_matches(settings.secret_key, number):
        raise AppError(ErrorCode.card_invalid)
    credential = session.exec(
        select(Credential).where(Credential.kind == CredentialKind.card, Credential.lookup == number)
    ).first()
    if credential is None:
        raise AppError(ErrorCode.card_invalid)
    if credential.revoked_at is not None:
        raise AppError(ErrorCode.credential_revoked, credential=credential)
    return credential


def validate_profile(session: Session, profile: Profile) -> None:
    """The rules for a new participant, whichever channel brings them."""
    if not profile.consent:
        raise AppError(ErrorCode.consent_required)
    if profile.name and profile.name.strip() and profile.age_band.is_child:
        raise AppError(ErrorCode.name_not_allowed_for_child)
    if profile.home_unit_id is not None and session.get(OrgUnit, profile.home_unit_id) is None:
        raise AppError(ErrorCode.invalid_input, "home_unit_id")


def new_participant(
    session: Session, profile: Profile, now: datetime, given_at: int | None = None
) -> Participant:
    """Insert (not commit) a participant after checking the profile's rules; `given_at` is the unit where
    they tell us who they are (the event's venue's unit for a check-in)."""
    validate_profile(session, profile)
    participant = Participant(
        age_band=profile.age_band,
        gender=profile.gender,
        home_unit_id=profile.home_unit_id,
        consent_at=now,
        consent_version=CONSENT_VERSION,
        created_at=now,
    )
    names.set_name(participant, profile.name, given_at)
    return insert_row(session, participant)


def register(session: Session, staff: Staff, profile: Profile, *, now: datetime | None = None) -> Participant:
    """A new participant without phone or card (staff of the registering unit find them by name later)."""
    participant = new_participant(session, profile, now or utcnow(), staff.unit_id)
    session.commit()
    return participant


def add_device(session: Session, participant: Participant, token: str, now: datetime) -> Credential:
    """Insert (not commit) the phone's token as a credential of the participant (db.insert_row)."""
    credential = Credential(
        participant_id=participant.id or 0,
        kind=CredentialKind.device,
        lookup=device_hash(token),
        issued_at=now,
    )
    return insert_row(session, credential)


# --- Cards -------------------------------------------------------------------------------------------


def issue_card(
    session: Session,
    settings: Settings,
    staff: Staff,
    participant: Participant,
    venue: Venue,
    *,
    now: datetime | None = None,
    commit: bool = True,
) -> Credential:
    """Give a participant a new personal card, issued at a venue in the staff member's scope."""
    if not can_use_venue(session, staff, venue):
        raise AppError(ErrorCode.forbidden)
    for _ in range(5):  # 35 random bits: a clash is rare, but the unique constraint decides
        card = Credential(
            participant_id=participant.id or 0,
            kind=CredentialKind.card,
            lookup=codes.make_card_number(settings.secret_key),
            venue_id=venue.id,
            issued_by_id=staff.id,
            issued_at=now or utcnow(),
        )
        try:
            with session.begin_nested():
                session.add(card)
        except IntegrityError:
            continue
        if commit:
            session.commit()
        return card
    raise AppError(ErrorCode.conflict)


def issue_cards(
    session: Session,
    settings: Settings,
    staff: Staff,
    venue: Venue,
    profiles: list[Profile],
    *,
    now: datetime | None = None,
) -> list[Credential]:
    """New participants with a card each (a club or a school class), all or nothing."""
    now = now or utcnow()
    if not can_use_venue(session, staff, venue):
        raise AppError(ErrorCode.forbidden)
    try:
        cards = [
            issue_card(
                session,
                settings,
                staff,
                new_participant(session, profile, now, venue.unit_id),
                venue,
                now=now,
                commit=False,
            )
            for profile in profiles
        ]
    except AppError:
        session.rollback()
        raise
    session.commit()
    return cards


def revoke(
    session: Session,
    staff: Staff,
    credential: Credential,
    *,
    now: datetime | None = None,
    commit: bool = True,
) -> None:
    """Stop a card (lost, or handed to someone else) or a phone from checking anyone in (logged)."""
    if credential.revoked_at is None:
        credential.revoked_at = now or utcnow()
        credential.revoked_by_id = staff.id
        session.add(credential)
        audit.record(
            session,
            staff,
            audit.Action.credential_revoked,
            target_kind="credential",
            target_id=credential.id,
            detail={"kind": credential.kind.value, "participant": credential.participant_id},
            now=credential.revoked_at,
        )
        if commit:
            session.commit()


def replace_card(
    session: Session, settings: Settings, staff: Staff, card: Credential, *, now: datetime | None = None
) -> Credential:
    """A lost card: revoke it and issue a new number to the same person at the same venue."""
    venue = session.get(Venue, card.venue_id) if card.venue_id else None
    participant = session.get(Participant, card.participant_id)
    if venue is None or participant is None or card.kind != CredentialKind.card:
        raise AppError(ErrorCode.not_found)
    if not can_use_venue(session, staff, venue):
        raise AppError(ErrorCode.forbidden)  # before anything changes: the old card keeps working
    now = now or utcnow()
    revoke(session, staff, card, now=now, commit=False)
    new = issue_card(session, settings, staff, participant, venue, now=now, commit=False)
    audit.record(
        session,
        staff,
        audit.Action.card_replaced,
        target_kind="credential",
        target_id=card.id,
        detail={"new_card": new.id, "participant": participant.id, "venue": venue.id},
        now=now,
    )
    session.commit()
    return new


def cards_of(
    session: Session, participant_ids: list[int], *, active: bool = True
) -> dict[int, list[Credential]]:
    """Each participant's cards, oldest first (only those not revoked when `active`)."""
    stmt = select(Credential).where(
        col(Credential.participant_id).in_(participant_ids), Credential.kind == CredentialKind.card
    )
    if active:
        stmt = stmt.where(col(Credential.revoked_at).is_(None))
    found: dict[int, list[Credential]] = {pid: [] for pid in participant_ids}
    for card in session.exec(stmt.order_by(col(Credential.issued_at), col(Credential.id))).all():
        found[card.participant_id].append(card)
    return found


# --- Finding participants ----------------------------------------------------------------------------


def participant_scope_clause(session: Session, staff: Staff) -> ColumnElement[bool]:
    """Participants a staff member may find: registered or living in their area, holding a card issued
    there, or having come to an event there. An administrator finds everyone. Whether their name is shown,
    and whether the staff member may act for them, is the narrower rule of services/names.py."""
    path = scope_path(session, staff)
    if path is None:
        return col(Participant.id).is_not(None)
    # Aliases of their own, so the clause never correlates with the tables of the query it joins.
    home, given, place, venue = aliased(OrgUnit), aliased(OrgUnit), aliased(OrgUnit), aliased(Venue)
    card, visit = aliased(Credential), aliased(CheckIn)
    venue_here = (
        select(venue.id)
        .join(place, col(place.id) == venue.unit_id)
        .where(col(place.path).startswith(path))
        .scalar_subquery()
    )
    lives_here = exists().where(col(home.id) == Participant.home_unit_id, col(home.path).startswith(path))
    named_here = exists().where(col(given.id) == Participant.name_unit_id, col(given.path).startswith(path))
    card_here = exists().where(col(card.participant_id) == Participant.id, col(card.venue_id).in_(venue_here))
    came_here = exists().where(
        col(visit.participant_id) == Participant.id, col(visit.venue_id).in_(venue_here)
    )
    return or_(lives_here, named_here, card_here, came_here)


def get_participant(session: Session, staff: Staff, participant_id: int) -> Participant:
    """A participant in the staff member's scope (not_found otherwise, so ids cannot be probed)."""
    participant = session.exec(
        select(Participant).where(Participant.id == participant_id, participant_scope_clause(session, staff))
    ).first()
    if participant is None:
        raise AppError(ErrorCode.not_found)
    return participant


def get_participant_to_act(session: Session, staff: Staff, participant_id: int) -> Participant:
    """A participant whose name the staff member may see (services/names.py): only they may download,
    correct, withdraw or delete for the person (not_found otherwise, as for one out of scope)."""
    participant = session.exec(
        select(Participant).where(
            Participant.id == participant_id,
            participant_scope_clause(session, staff),
            names.visible_clause(session, staff),
        )
    ).first()
    if participant is None:
        raise AppError(ErrorCode.not_found)
    return participant


def view_participant(session: Session, staff: Staff, participant_id: int) -> Participant:
    """A participant in scope, for their page: the look is logged, with whether their name was shown."""
    participant = get_participant(session, staff, participant_id)
    audit.record(
        session,
        staff,
        audit.Action.participant_viewed,
        target_kind="participant",
        target_id=participant_id,
        detail={"name_shown": names.shown(session, staff, participant) is not None},
    )
    session.commit()
    return participant


def find_participants(
    session: Session, settings: Settings, staff: Staff, query: str, *, limit: int = SEARCH_LIMIT
) -> list[Found]:
    """Participants in scope whose card number or name matches what was typed (no diacritics needed). A
    name finds only people whose name the staff member may see; a card number finds its holder in scope
    (the number is printed on the card they hold), shown without a name if it is not theirs to see."""
    query = query.strip()[:100]
    if not query:
        return []
    stmt = select(Participant, names.shown_column(session, staff)).where(
        participant_scope_clause(session, staff)
    )
    number = codes.card_number_of(query)
    by_card = exists().where(
        col(Credential.participant_id) == Participant.id,
        col(Credential.kind) == CredentialKind.card,
        col(Credential.lookup) == (number or ""),
    )
    words = search_form(query).split()[:5]
    by_name = and_(*[col(Participant.search_name).contains(word, autoescape=True) for word in words])
    by_visible_name = and_(by_name, names.visible_clause(session, staff))
    stmt = stmt.where(or_(by_card, by_visible_name) if number else by_visible_name)
    rows = session.exec(stmt.order_by(col(Participant.search_name), col(Participant.id)).limit(limit)).all()
    return _found(session, [(p, name) for p, name in rows])


def _found(session: Session, rows: list[tuple[Participant, str | None]]) -> list[Found]:
    cards = cards_of(session, [p.id or 0 for p, _ in rows])
    homes = {
        unit.id: unit
        for unit in session.exec(
            select(OrgUnit).where(col(OrgUnit.id).in_({p.home_unit_id for p, _ in rows if p.home_unit_id}))
        ).all()
    }
    return [
        Found(participant=p, name=name, cards=cards[p.id or 0], home=homes.get(p.home_unit_id or 0))
        for p, name in rows
    ]


# --- Cards for staff pages ---------------------------------------------------------------------------


@dataclass(frozen=True)
class CardRow:
    card: Credential
    participant: Participant
    venue: Venue | None
    name: str | None = None  # the holder's name, if the staff member may see it (printed on the card)


def get_card(session: Session, staff: Staff, card_id: int) -> Credential:
    """A card whose holder the staff member may find (not_found otherwise)."""
    card = session.get(Credential, card_id)
    if card is None or card.kind != CredentialKind.card:
        raise AppError(ErrorCode.not_found)
    get_participant(session, staff, card.participant_id)
    return card


def card_rows(
    session: Session, staff: Staff, *, card_ids: list[int] | None = None, venue_id: int | None = None
) -> list[CardRow]:
    """Active cards to print: the ones named, or every card issued at a venue; only holders in scope."""
    stmt = (
        select(Credential, Participant, Venue, names.shown_column(session, staff))
        .join(Participant, col(Participant.id) == Credential.participant_id)
        .outerjoin(Venue, col(Venue.id) == Credential.venue_id)
        .where(
            Credential.kind == CredentialKind.card,
            col(Credential.revoked_at).is_(None),
            participant_scope_clause(session, staff),
        )
    )
    if card_ids is not None:
        stmt = stmt.where(col(Credential.id).in_(card_ids[:500]))
    if venue_id is not None:
        stmt = stmt.where(Credential.venue_id == venue_id)
    rows = session.exec(stmt.order_by(col(Credential.id)).limit(500)).all()
    detail = {"venue": venue_id, "cards": [row[0].id for row in rows][:100], "count": len(rows)}
    audit.record(
        session,
        staff,
        audit.Action.cards_printed,
        target_kind="venue" if venue_id else "",
        target_id=venue_id,
        detail=detail,
    )
    session.commit()
    return [CardRow(card, participant, venue, name) for card, participant, venue, name in rows]


def recent_card_holders(session: Session, staff: Staff, *, limit: int = 50) -> list[Found]:
    """The participants in scope who were given a card most recently (the people page before a search)."""
    newest = (
        select(Credential.participant_id, func.max(Credential.id).label("last"))
        .where(Credential.kind == CredentialKind.card)
        .group_by(col(Credential.participant_id))
        .subquery()
    )
    rows = session.exec(
        select(Participant, names.shown_column(session, staff))
        .join(newest, newest.c.participant_id == Participant.id)
        .where(participant_scope_clause(session, staff))
        .order_by(newest.c.last.desc())
        .limit(limit)
    ).all()
    return _found(session, [(p, name) for p, name in rows])


def all_cards(session: Session, participant_id: int) -> list[CardRow]:
    """Every card a participant was given, revoked ones too, newest first."""
    rows = session.exec(
        select(Credential, Participant, Venue)
        .join(Participant, col(Participant.id) == Credential.participant_id)
        .outerjoin(Venue, col(Venue.id) == Credential.venue_id)
        .where(Credential.participant_id == participant_id, Credential.kind == CredentialKind.card)
        .order_by(col(Credential.id).desc())
    ).all()
    return [CardRow(card, participant, venue) for card, participant, venue in rows]
