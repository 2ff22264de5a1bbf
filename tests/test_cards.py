"""Personal cards and finding participants (services/identities.py), and card check-ins through the engine."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import Session, col, select

from server import codes
from server.config import Settings
from server.errors import AppError, ErrorCode
from server.models import (
    AgeBand,
    Channel,
    CheckIn,
    CheckInAttempt,
    Credential,
    CredentialKind,
    Event,
    Gender,
    OrgUnit,
    Participant,
    Role,
    Staff,
    Venue,
)
from server.services import identities
from server.services.checkin import CheckInRequest, Identity, check_in, new_nonce
from server.services.identities import Profile
from tests.factories import count_rows, make_event, make_participant, make_staff, make_tree, make_venue

T0 = datetime(2026, 3, 10, 2, 0, tzinfo=UTC)
DURING = T0 + timedelta(minutes=30)
ISSUED = T0 - timedelta(days=10)


@dataclass(frozen=True)
class Scene:
    units: dict[str, OrgUnit]
    venue: Venue  # in the village of the commune
    organizer: Staff  # of the commune
    event: Event
    duc: Participant  # lives in the village


@pytest.fixture
def scene(session: Session) -> Scene:
    units = make_tree(session)
    venue = make_venue(session, units["village"])
    return Scene(
        units=units,
        venue=venue,
        organizer=make_staff(session, Role.organizer, units["commune"]),
        event=make_event(session, venue, starts_at=T0),
        duc=make_participant(session, name="Nguyễn Văn Đức", home_unit=units["village"]),
    )


def issue(session: Session, settings: Settings, scene: Scene) -> Credential:
    return identities.issue_card(session, settings, scene.organizer, scene.duc, scene.venue, now=ISSUED)


def by_card(event: Event, card: str) -> CheckInRequest:
    return CheckInRequest(
        channel=Channel.kiosk, key=new_nonce(), event_id=event.id, identity=Identity(card=card)
    )


def refusal(session: Session, settings: Settings, request: CheckInRequest, staff: Staff) -> AppError:
    with pytest.raises(AppError) as refused:
        check_in(session, settings, request, staff=staff, now=DURING)
    return refused.value


def outcomes(session: Session) -> list[str]:
    session.commit()
    return [a.outcome for a in session.exec(select(CheckInAttempt).order_by(col(CheckInAttempt.id))).all()]


def other_char(char: str) -> str:
    return "0" if char != "0" else "1"


# --- Issuing -----------------------------------------------------------------------------------------


def test_issued_card_has_a_ten_character_signed_number(
    session: Session, settings: Settings, scene: Scene
) -> None:
    card = issue(session, settings, scene)
    number = card.lookup
    assert len(number) == 10 and codes.card_number_of(number) == number
    assert codes.card_signature_matches(settings.secret_key, number)
    assert not codes.card_signature_matches("another-secret-0123456789-abcdefghijkl", number)
    [stored] = session.exec(select(Credential)).all()
    assert stored.kind == CredentialKind.card and stored.participant_id == scene.duc.id
    assert (stored.venue_id, stored.issued_by_id, stored.issued_at) == (
        scene.venue.id,
        scene.organizer.id,
        ISSUED,
    )
    assert stored.revoked_at is None


def test_organizer_cannot_issue_a_card_outside_their_scope(
    session: Session, settings: Settings, scene: Scene
) -> None:
    elsewhere = make_venue(session, scene.units["other"])
    with pytest.raises(AppError) as refused:
        identities.issue_card(session, settings, scene.organizer, scene.duc, elsewhere, now=ISSUED)
    assert refused.value.code == ErrorCode.forbidden
    with pytest.raises(AppError) as refused_class:
        identities.issue_cards(
            session,
            settings,
            scene.organizer,
            elsewhere,
            [Profile(AgeBand.from_6, Gender.male, consent=True)],
        )
    assert refused_class.value.code == ErrorCode.forbidden
    assert count_rows(session, Credential) == 0 and count_rows(session, Participant) == 1


def test_issue_cards_gives_every_child_of_a_class_a_card(
    session: Session, settings: Settings, scene: Scene
) -> None:
    profiles = [Profile(AgeBand.from_6, gender, consent=True) for gender in (Gender.female, Gender.male) * 3]
    cards = identities.issue_cards(session, settings, scene.organizer, scene.venue, profiles, now=ISSUED)
    assert len({card.lookup for card in cards}) == 6
    assert all(codes.card_signature_matches(settings.secret_key, card.lookup) for card in cards)
    assert count_rows(session, Credential) == 6 and count_rows(session, Participant) == 7
    children = session.exec(select(Participant).where(Participant.id != scene.duc.id)).all()
    assert {(p.age_band, p.name) for p in children} == {(AgeBand.from_6, None)}


def test_issue_cards_for_a_class_is_all_or_nothing(
    session: Session, settings: Settings, scene: Scene
) -> None:
    profiles = [
        Profile(AgeBand.from_6, Gender.female, consent=True),
        Profile(AgeBand.from_6, Gender.male, consent=True),
        Profile(AgeBand.from_6, Gender.female, name="Bé Lan", consent=True),
        Profile(AgeBand.from_6, Gender.male, consent=True),
    ]
    with pytest.raises(AppError) as refused:
        identities.issue_cards(session, settings, scene.organizer, scene.venue, profiles, now=ISSUED)
    assert refused.value.code == ErrorCode.name_not_allowed_for_child
    assert count_rows(session, Credential) == 0
    assert count_rows(session, Participant) == 1  # only Đức, who was there before


# --- Checking in with a card -------------------------------------------------------------------------


def test_made_up_and_unknown_card_numbers_get_the_same_refusal(
    session: Session, settings: Settings, scene: Scene
) -> None:
    real = issue(session, settings, scene).lookup
    made_up = real[:-1] + other_char(real[-1])  # the right shape, a wrong MAC
    assert not codes.card_signature_matches(settings.secret_key, made_up)
    unknown = codes.make_card_number(settings.secret_key)  # signed, never issued
    assert unknown != real
    first = refusal(session, settings, by_card(scene.event, made_up), scene.organizer)
    second = refusal(session, settings, by_card(scene.event, unknown), scene.organizer)
    assert first.code == second.code == ErrorCode.card_invalid
    assert (first.status, str(first), first.detail) == (second.status, str(second), second.detail)
    assert count_rows(session, CheckIn) == 0
    assert outcomes(session) == ["card_invalid", "card_invalid"]


@pytest.mark.parametrize(
    "typed",
    [
        lambda number: f"{number[:5]}-{number[5:]}".lower(),
        lambda number: f" {number[:3]}-{number[3:6]}-{number[6:]} ".lower(),
        codes.card_payload,
        lambda number: codes.card_payload(number).lower(),
    ],
    ids=["lower_dashes", "groups_of_three", "qr_payload", "qr_payload_lower"],
)
def test_card_check_in_by_typed_number_or_qr_payload(
    session: Session, settings: Settings, scene: Scene, typed: Callable[[str], str]
) -> None:
    card = issue(session, settings, scene)
    assert codes.card_payload(card.lookup) == f"DIEMDANH:{card.lookup}"
    result = check_in(
        session, settings, by_card(scene.event, typed(card.lookup)), staff=scene.organizer, now=DURING
    )
    assert result.created and result.participant.id == scene.duc.id
    session.commit()
    [record] = session.exec(select(CheckIn)).all()
    assert (record.participant_id, record.credential_id) == (scene.duc.id, card.id)
    assert (record.channel, record.recorded_by_id) == (Channel.kiosk, scene.organizer.id)
    assert count_rows(session, Participant) == 1
    assert outcomes(session) == ["accepted"]


def test_card_works_at_events_of_other_venues_in_scope(
    session: Session, settings: Settings, scene: Scene
) -> None:
    card = issue(session, settings, scene)
    library = make_venue(session, scene.units["commune"])
    event = make_event(session, library, starts_at=T0)
    check_in(session, settings, by_card(event, card.lookup), staff=scene.organizer, now=DURING)
    assert count_rows(session, CheckIn) == 1 and count_rows(session, Participant) == 1


def test_revoked_card_is_refused_and_nothing_stored(
    session: Session, settings: Settings, scene: Scene
) -> None:
    card = issue(session, settings, scene)
    identities.revoke(session, scene.organizer, card, now=ISSUED + timedelta(days=1))
    refused = refusal(session, settings, by_card(scene.event, card.lookup), scene.organizer)
    assert refused.code == ErrorCode.credential_revoked
    assert count_rows(session, CheckIn) == 0
    revoked = session.get(Credential, card.id)
    assert revoked is not None and revoked.revoked_by_id == scene.organizer.id
    assert outcomes(session) == ["credential_revoked"]


def test_replaced_card_refuses_the_old_number_and_checks_in_the_same_person(
    session: Session, settings: Settings, scene: Scene
) -> None:
    old = issue(session, settings, scene)
    new = identities.replace_card(session, settings, scene.organizer, old, now=ISSUED + timedelta(days=1))
    assert new.lookup != old.lookup and new.participant_id == scene.duc.id and new.venue_id == scene.venue.id
    refused = refusal(session, settings, by_card(scene.event, old.lookup), scene.organizer)
    assert refused.code == ErrorCode.credential_revoked
    result = check_in(session, settings, by_card(scene.event, new.lookup), staff=scene.organizer, now=DURING)
    assert result.participant.id == scene.duc.id and result.check_in.credential_id == new.id
    assert count_rows(session, Participant) == 1 and count_rows(session, CheckIn) == 1
    assert count_rows(session, Credential) == 2
    assert [c.id for c in identities.cards_of(session, [scene.duc.id or 0])[scene.duc.id or 0]] == [new.id]
    assert outcomes(session) == ["credential_revoked", "accepted"]


def test_replace_card_refused_outside_scope_changes_nothing(
    session: Session, settings: Settings, scene: Scene
) -> None:
    """An organizer of the commune the holder lives in may find them, but not issue at the venue that
    gave the card: the refusal must leave the old card working, not revoke it without a replacement."""
    neighbour = make_participant(session, name="Lò Thị Mai", home_unit=scene.units["other"])
    card = identities.issue_card(session, settings, scene.organizer, neighbour, scene.venue, now=ISSUED)
    home_organizer = make_staff(session, Role.organizer, scene.units["other"])
    assert identities.get_card(session, home_organizer, card.id or 0).id == card.id  # the holder is in scope
    with pytest.raises(AppError) as refused:
        identities.replace_card(session, settings, home_organizer, card, now=ISSUED + timedelta(days=1))
    assert refused.value.code == ErrorCode.forbidden
    session.commit()
    [stored] = session.exec(select(Credential)).all()
    assert stored.id == card.id and stored.revoked_at is None
    check_in(session, settings, by_card(scene.event, card.lookup), staff=scene.organizer, now=DURING)
    assert count_rows(session, CheckIn) == 1


def test_card_holder_checks_in_once_per_event(session: Session, settings: Settings, scene: Scene) -> None:
    card = issue(session, settings, scene)
    check_in(session, settings, by_card(scene.event, card.lookup), staff=scene.organizer, now=DURING)
    refused = refusal(
        session, settings, by_card(scene.event, codes.card_payload(card.lookup)), scene.organizer
    )
    assert refused.code == ErrorCode.already_checked_in
    assert count_rows(session, CheckIn) == 1


# --- Finding participants ----------------------------------------------------------------------------


@pytest.mark.parametrize("query", ["nguyen van", "Nguyễn Văn", "NGUYEN  van  duc", "van duc", "đức"])
def test_find_participants_by_name_without_diacritics(
    session: Session, settings: Settings, scene: Scene, query: str
) -> None:
    make_participant(session, name="Trần Thị Lan", home_unit=scene.units["village"])
    found = identities.find_participants(session, settings, scene.organizer, query)
    assert [f.participant.id for f in found] == [scene.duc.id]
    assert found[0].home is not None and found[0].home.id == scene.units["village"].id


def test_find_participants_by_card_number(session: Session, settings: Settings, scene: Scene) -> None:
    card = issue(session, settings, scene)
    make_participant(session, name="Trần Thị Lan", home_unit=scene.units["village"])
    typed = f"{card.lookup[:5]}-{card.lookup[5:]}".lower()
    found = identities.find_participants(session, settings, scene.organizer, typed)
    assert [f.participant.id for f in found] == [scene.duc.id]
    assert [c.id for c in found[0].cards] == [card.id]


def test_find_participants_stays_inside_the_staff_scope(
    session: Session, settings: Settings, scene: Scene
) -> None:
    card = issue(session, settings, scene)
    stranger = make_staff(session, Role.organizer, scene.units["other"])
    assert identities.find_participants(session, settings, stranger, "nguyen van") == []
    assert identities.find_participants(session, settings, stranger, card.lookup) == []
    with pytest.raises(AppError) as refused:
        identities.get_participant(session, stranger, scene.duc.id or 0)
    assert refused.value.code == ErrorCode.not_found
    province = make_staff(session, Role.office, scene.units["province"])
    assert [
        f.participant.id for f in identities.find_participants(session, settings, province, "nguyen")
    ] == [scene.duc.id]


def test_participant_who_came_to_an_event_in_scope_is_found_by_card_not_by_name(
    session: Session, settings: Settings, scene: Scene
) -> None:
    """Someone named elsewhere who came here once is in scope here (came_here) and their card number finds
    them next time, but their name is neither found nor shown here (services/names.py)."""
    elsewhere = make_venue(session, scene.units["other"])
    visitor = make_participant(session, name="Lò Văn Pao", home_unit=scene.units["other"])
    admin = make_staff(session, Role.admin)
    card = identities.issue_card(session, settings, admin, visitor, elsewhere, now=ISSUED)
    assert identities.find_participants(session, settings, scene.organizer, card.lookup) == []
    request = CheckInRequest(
        channel=Channel.staff_form,
        key=new_nonce(),
        event_id=scene.event.id,
        identity=Identity(participant_id=visitor.id),
    )
    check_in(session, settings, request, staff=admin, now=DURING)
    assert identities.find_participants(session, settings, scene.organizer, "lo van") == []
    found = identities.find_participants(session, settings, scene.organizer, card.lookup)
    assert [(f.participant.id, f.name) for f in found] == [(visitor.id, None)]
    assert [f.name for f in identities.find_participants(session, settings, admin, "lo van")] == [
        "Lò Văn Pao"
    ]
