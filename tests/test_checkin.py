"""The check-in engine (services/checkin.py): one rule per test, asserting the error code and what was stored.

Every time is relative to one event (9:00-12:00 in Vietnam on 10/3/2026, so its check-in window runs
7:00-14:00) and passed as `now=`; nothing here depends on the clock.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, col, select

from server import codes, rotation
from server.config import Settings
from server.errors import AppError, ErrorCode
from server.models import (
    AgeBand,
    Channel,
    CheckIn,
    CheckInAttempt,
    CheckInMode,
    Credential,
    CredentialKind,
    Event,
    Gender,
    OrgUnit,
    Participant,
    Role,
    Staff,
    Venue,
    VenueType,
)
from server.services import attendance, events, identities, reports
from server.services.checkin import (
    LATE_AFTER,
    LATE_SYNC_LIMIT,
    MAX_CLOCK_SKEW,
    CheckInRequest,
    CheckInResult,
    Identity,
    Profile,
    check_in,
    new_nonce,
)
from server.services.scans import SCAN_PASS_LIFETIME, code_for, open_scan, rotation_key
from tests.factories import (
    count_rows,
    make_event,
    make_participant,
    make_staff,
    make_tree,
    make_venue,
)

T0 = datetime(2026, 3, 10, 2, 0, tzinfo=UTC)  # 9:00 in Vietnam
DURING = T0 + timedelta(minutes=30)
ADULT = Profile(age_band=AgeBand.from_25, gender=Gender.female, consent=True)
CHILDREN = (AgeBand.under_6, AgeBand.from_6, AgeBand.from_12)
TODAY = date(2026, 12, 31)  # the reports' "today": the whole of 2026 has happened


@dataclass(frozen=True)
class Scene:
    units: dict[str, OrgUnit]
    venue: Venue  # in the village of the commune
    organizer: Staff  # of the commune
    event: Event  # T0 .. T0 + 3 h


@pytest.fixture
def scene(session: Session) -> Scene:
    units = make_tree(session)
    venue = make_venue(session, units["village"])
    organizer = make_staff(session, Role.organizer, units["commune"])
    return Scene(units, venue, organizer, make_event(session, venue, starts_at=T0))


def phone(
    event: Event,
    settings: Settings,
    *,
    key: str | None = None,
    token: str | None = None,
    profile: Profile | None = ADULT,
    channel: Channel = Channel.public_api,
    claimed_at: datetime | None = None,
    screen: str | None = None,
) -> CheckInRequest:
    """A resident's own check-in: the event by its signed code (send with staff=None)."""
    return CheckInRequest(
        channel=channel,
        key=new_nonce() if key is None else key,
        code=code_for(event, settings),
        rotation=screen,
        claimed_at=claimed_at,
        identity=Identity(device_token=token, profile=profile),
    )


def desk(
    event: Event,
    *,
    key: str | None = None,
    channel: Channel = Channel.staff_form,
    card: str | None = None,
    participant_id: int | None = None,
    profile: Profile | None = None,
    claimed_at: datetime | None = None,
) -> CheckInRequest:
    """A check-in entered by staff: the event by its id (send with staff=...)."""
    return CheckInRequest(
        channel=channel,
        key=new_nonce() if key is None else key,
        event_id=event.id,
        claimed_at=claimed_at,
        identity=Identity(card=card, participant_id=participant_id, profile=profile),
    )


def refusal(
    session: Session,
    settings: Settings,
    request: CheckInRequest,
    *,
    staff: Staff | None = None,
    now: datetime = DURING,
) -> AppError:
    with pytest.raises(AppError) as refused:
        check_in(session, settings, request, staff=staff, now=now)
    return refused.value


def outcomes(session: Session) -> list[str]:
    """The attempt log, oldest first."""
    session.commit()
    return [a.outcome for a in session.exec(select(CheckInAttempt).order_by(col(CheckInAttempt.id))).all()]


def stored(session: Session) -> list[CheckIn]:
    session.commit()
    return list(session.exec(select(CheckIn).order_by(col(CheckIn.id))).all())


def assert_nothing_stored(session: Session) -> None:
    assert count_rows(session, CheckIn) == 0
    assert count_rows(session, Participant) == 0
    assert count_rows(session, Credential) == 0


# --- One entry point -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("channel", "by_staff"),
    [
        (Channel.page, False),
        (Channel.public_api, False),
        (Channel.batch, False),
        (Channel.staff_form, True),
        (Channel.staff_api, True),
        (Channel.kiosk, True),
        (Channel.batch, True),
    ],
)
def test_every_channel_checks_in_through_the_one_entry_point(
    session: Session, settings: Settings, scene: Scene, channel: Channel, by_staff: bool
) -> None:
    if by_staff:
        request = desk(scene.event, channel=channel, profile=ADULT)
    else:
        request = phone(scene.event, settings, channel=channel)
    result = check_in(session, settings, request, staff=scene.organizer if by_staff else None, now=DURING)
    assert result.created
    [record] = stored(session)
    assert record.channel == channel and record.event_id == scene.event.id
    assert record.recorded_by_id == (scene.organizer.id if by_staff else None)
    assert record.checked_in_at == DURING and record.received_at == DURING and not record.late
    # A phone gets a token to come back with; a staff entry for someone without a phone gets none.
    assert (result.device_token is None) == by_staff
    assert count_rows(session, Credential) == (0 if by_staff else 1)
    session.commit()
    [attempt] = session.exec(select(CheckInAttempt)).all()
    assert (attempt.channel, attempt.outcome, attempt.check_in_id) == (channel, "accepted", record.id)
    assert attempt.staff_id == (scene.organizer.id if by_staff else None)


def test_phone_must_name_the_event_by_its_code(session: Session, settings: Settings, scene: Scene) -> None:
    request = replace(phone(scene.event, settings), code=None, event_id=scene.event.id)
    assert refusal(session, settings, request).code == ErrorCode.code_invalid
    assert_nothing_stored(session)
    assert outcomes(session) == ["code_invalid"]


@pytest.mark.parametrize(
    "mangle",
    [
        lambda code: code[:-1] + ("0" if code[-1] != "0" else "1"),  # altered signature
        lambda code: "1" + code,  # another event id, same signature
        lambda code: "not a code!",
    ],
    ids=["altered", "other_event", "garbage"],
)
def test_forged_code_is_code_invalid(
    session: Session, settings: Settings, scene: Scene, mangle: Callable[[str], str]
) -> None:
    request = replace(phone(scene.event, settings), code=mangle(code_for(scene.event, settings)))
    assert refusal(session, settings, request).code == ErrorCode.code_invalid
    assert_nothing_stored(session)


def test_code_of_a_moved_event_is_code_invalid(session: Session, settings: Settings, scene: Scene) -> None:
    old = phone(scene.event, settings)
    scene.event.starts_at += timedelta(hours=1)
    scene.event.ends_at += timedelta(hours=1)
    session.add(scene.event)
    session.commit()
    assert refusal(session, settings, old).code == ErrorCode.code_invalid
    assert_nothing_stored(session)


def test_staff_event_outside_scope_is_forbidden(session: Session, settings: Settings, scene: Scene) -> None:
    stranger = make_staff(session, Role.organizer, scene.units["other"])
    refused = refusal(session, settings, desk(scene.event, profile=ADULT), staff=stranger)
    assert refused.code == ErrorCode.forbidden
    assert_nothing_stored(session)
    assert outcomes(session) == ["forbidden"]


def test_staff_cannot_act_on_an_event_outside_scope_by_its_code(
    session: Session, settings: Settings, scene: Scene
) -> None:
    """The poster's code lets anyone check themselves in; it must not lend a staff member of another
    commune the powers they have only in their own scope (checking in someone else's card)."""
    holder = make_participant(session, home_unit=scene.units["village"])
    card = identities.issue_card(session, settings, scene.organizer, holder, scene.venue, now=T0)
    stranger = make_staff(session, Role.organizer, scene.units["other"])
    request = replace(
        desk(scene.event, channel=Channel.batch, card=card.lookup),
        event_id=None,
        code=code_for(scene.event, settings),
    )
    assert refusal(session, settings, request, staff=stranger).code == ErrorCode.forbidden
    assert count_rows(session, CheckIn) == 0
    assert outcomes(session) == ["forbidden"]


# --- Who: phones -------------------------------------------------------------------------------------


def test_first_phone_check_in_creates_participant_device_credential_and_token(
    session: Session, settings: Settings, scene: Scene
) -> None:
    result = check_in(session, settings, phone(scene.event, settings), now=DURING)
    assert result.created and identities.valid_device_token(result.device_token)
    assert count_rows(session, Participant) == 1 and count_rows(session, CheckIn) == 1
    [credential] = session.exec(select(Credential)).all()
    assert credential.kind == CredentialKind.device and credential.participant_id == result.participant.id
    assert credential.lookup == identities.device_hash(result.device_token or "")  # only the hash is kept
    assert result.check_in.credential_id == credential.id
    participant = session.get(Participant, result.participant.id)
    assert participant is not None and participant.name is None
    assert participant.consent_at == DURING and participant.consent_version == identities.CONSENT_VERSION
    assert outcomes(session) == ["accepted"]


def phone_made_token() -> str:
    """A token as a phone makes it for itself (the offline app does, before its first send)."""
    return secrets.token_urlsafe(24)


def test_first_phone_check_in_keeps_the_token_the_phone_made(
    session: Session, settings: Settings, scene: Scene
) -> None:
    token = phone_made_token()
    result = check_in(session, settings, phone(scene.event, settings, token=token), now=DURING)
    assert result.device_token is None  # the phone has it already
    assert identities.participant_for_device(session, token) == result.participant


def test_returning_phone_checks_in_with_one_tap(session: Session, settings: Settings, scene: Scene) -> None:
    token = check_in(session, settings, phone(scene.event, settings), now=DURING).device_token
    second = make_event(session, scene.venue, starts_at=T0 + timedelta(days=1))
    again = check_in(
        session, settings, phone(second, settings, token=token, profile=None), now=DURING + timedelta(days=1)
    )
    assert again.created and again.device_token is None
    assert count_rows(session, Participant) == 1 and count_rows(session, Credential) == 1
    assert {r.participant_id for r in stored(session)} == {again.participant.id}
    assert outcomes(session) == ["accepted", "accepted"]


def test_unknown_phone_without_profile_is_asked_for_one(
    session: Session, settings: Settings, scene: Scene
) -> None:
    request = phone(scene.event, settings, token=phone_made_token(), profile=None)
    assert refusal(session, settings, request).code == ErrorCode.profile_required
    assert_nothing_stored(session)
    assert outcomes(session) == ["profile_required"]


def test_revoked_device_credential_is_credential_revoked(
    session: Session, settings: Settings, scene: Scene
) -> None:
    token = check_in(session, settings, phone(scene.event, settings), now=DURING).device_token
    credential = identities.device_credential(session, token)
    assert credential is not None
    identities.revoke(session, scene.organizer, credential, now=DURING)
    second = make_event(session, scene.venue, starts_at=T0 + timedelta(days=1))
    request = phone(second, settings, token=token)  # with a profile: still no new person behind its back
    refused = refusal(session, settings, request, now=DURING + timedelta(days=1))
    assert refused.code == ErrorCode.credential_revoked
    assert count_rows(session, CheckIn) == 1 and count_rows(session, Participant) == 1
    assert outcomes(session) == ["accepted", "credential_revoked"]


def test_phone_cannot_use_a_card(session: Session, settings: Settings, scene: Scene) -> None:
    request = replace(phone(scene.event, settings), identity=Identity(card=codes.make_card_number("x" * 32)))
    assert refusal(session, settings, request).code == ErrorCode.forbidden
    assert_nothing_stored(session)
    assert outcomes(session) == ["forbidden"]


def test_phone_cannot_use_a_participant_id(session: Session, settings: Settings, scene: Scene) -> None:
    someone = make_participant(session, home_unit=scene.units["village"])
    request = replace(phone(scene.event, settings), identity=Identity(participant_id=someone.id))
    assert refusal(session, settings, request).code == ErrorCode.forbidden
    assert count_rows(session, CheckIn) == 0 and count_rows(session, Participant) == 1
    assert outcomes(session) == ["forbidden"]


# --- Who: new participants ----------------------------------------------------------------------------


@pytest.mark.parametrize("by_staff", [False, True], ids=["phone", "staff"])
def test_new_participant_needs_consent(
    session: Session, settings: Settings, scene: Scene, by_staff: bool
) -> None:
    profile = replace(ADULT, consent=False)
    request = (
        desk(scene.event, profile=profile) if by_staff else phone(scene.event, settings, profile=profile)
    )
    refused = refusal(session, settings, request, staff=scene.organizer if by_staff else None)
    assert refused.code == ErrorCode.consent_required
    assert_nothing_stored(session)
    assert outcomes(session) == ["consent_required"]


@pytest.mark.parametrize("band", CHILDREN)
def test_no_name_is_taken_from_a_child(
    session: Session, settings: Settings, scene: Scene, band: AgeBand
) -> None:
    profile = Profile(age_band=band, gender=Gender.male, name="Bé Lan", consent=True)
    refused = refusal(session, settings, phone(scene.event, settings, profile=profile))
    assert refused.code == ErrorCode.name_not_allowed_for_child
    assert_nothing_stored(session)
    assert outcomes(session) == ["name_not_allowed_for_child"]


def test_adult_may_give_a_name(session: Session, settings: Settings, scene: Scene) -> None:
    profile = Profile(age_band=AgeBand.from_60, gender=Gender.male, name=" Hoàng  Văn Páo ", consent=True)
    result = check_in(
        session, settings, desk(scene.event, profile=profile), staff=scene.organizer, now=DURING
    )
    participant = session.get(Participant, result.participant.id)
    assert participant is not None
    assert participant.name == "Hoàng  Văn Páo" and participant.search_name == "hoang van pao"


def test_unknown_home_unit_is_invalid_input(session: Session, settings: Settings, scene: Scene) -> None:
    profile = replace(ADULT, home_unit_id=999_999)
    refused = refusal(session, settings, phone(scene.event, settings, profile=profile))
    assert refused.code == ErrorCode.invalid_input and refused.status == 422  # a refusal, not a 500
    assert_nothing_stored(session)
    assert outcomes(session) == ["invalid_input"]


def test_unknown_home_unit_over_http_is_422_not_500(
    client: TestClient, session: Session, settings: Settings, scene: Scene
) -> None:
    live = make_event(session, scene.venue)  # the API stamps a request with the server's clock
    body = {
        "code": code_for(live, settings),
        "nonce": new_nonce(),
        "profile": {"age_band": "25-59", "gender": "female", "consent": True, "home_unit_id": 999_999},
    }
    response = client.post("/api/v1/checkins", json=body)
    assert response.status_code == 422 and response.json()["code"] == "invalid_input"
    assert_nothing_stored(session)


# --- Who: people staff know ---------------------------------------------------------------------------


def test_known_participant_checked_in_by_staff_on_three_events_stays_one_person(
    session: Session, settings: Settings, scene: Scene
) -> None:
    profile = Profile(age_band=AgeBand.from_60, gender=Gender.male, name="Hoàng Văn Páo", consent=True)
    first = check_in(session, settings, desk(scene.event, profile=profile), staff=scene.organizer, now=DURING)
    for day in (7, 14):
        event = make_event(session, scene.venue, starts_at=T0 + timedelta(days=day))
        request = desk(event, participant_id=first.participant.id)
        check_in(session, settings, request, staff=scene.organizer, now=DURING + timedelta(days=day))
    assert count_rows(session, Participant) == 1
    assert [r.participant_id for r in stored(session)] == [first.participant.id] * 3
    admin = make_staff(session, Role.admin)
    window = reports.report_window(2026, until=None, today=TODAY)
    totals = reports.yearly_totals(session, admin, window, settings.tz, now=DURING)
    assert (totals.visits, totals.people) == (3, 1)


def test_participant_outside_staff_scope_is_not_found(
    session: Session, settings: Settings, scene: Scene
) -> None:
    elsewhere = make_participant(session, name="Lò Thị Mai", home_unit=scene.units["other"])
    refused = refusal(
        session, settings, desk(scene.event, participant_id=elsewhere.id), staff=scene.organizer
    )
    assert refused.code == ErrorCode.not_found  # the same answer as an id nobody has
    assert count_rows(session, CheckIn) == 0
    assert outcomes(session) == ["not_found"]


def test_participant_staff_cannot_find_is_not_found(
    session: Session, settings: Settings, scene: Scene
) -> None:
    refused = refusal(session, settings, desk(scene.event, participant_id=999_999), staff=scene.organizer)
    assert refused.code == ErrorCode.not_found
    assert count_rows(session, CheckIn) == 0


# --- One check-in per person, and the idempotency key -------------------------------------------------


def test_single_entry_second_check_in_is_refused_with_the_first_time(
    session: Session, settings: Settings, scene: Scene
) -> None:
    first = check_in(session, settings, phone(scene.event, settings), now=DURING)
    request = phone(scene.event, settings, token=first.device_token, profile=None)
    refused = refusal(session, settings, request, now=DURING + timedelta(minutes=40))
    assert refused.code == ErrorCode.already_checked_in and refused.status == 409
    assert refused.extra["check_in"].checked_in_at == DURING
    assert refused.extra["check_in"].id == first.check_in.id
    assert count_rows(session, CheckIn) == 1
    assert outcomes(session) == ["accepted", "already_checked_in"]


def test_single_entry_holds_across_channels(session: Session, settings: Settings, scene: Scene) -> None:
    someone = make_participant(session, home_unit=scene.units["village"])
    check_in(
        session, settings, desk(scene.event, participant_id=someone.id), staff=scene.organizer, now=DURING
    )
    request = desk(scene.event, channel=Channel.staff_api, participant_id=someone.id)
    refused = refusal(session, settings, request, staff=scene.organizer)
    assert refused.code == ErrorCode.already_checked_in
    assert count_rows(session, CheckIn) == 1


def test_replay_with_same_key_and_content_returns_the_first_answer(
    session: Session, settings: Settings, scene: Scene
) -> None:
    request = phone(scene.event, settings)
    first = check_in(session, settings, request, now=DURING)
    again = check_in(session, settings, request, now=DURING + timedelta(minutes=5))
    assert not again.created
    assert again.check_in.id == first.check_in.id and again.participant.id == first.participant.id
    assert again.check_in.checked_in_at == DURING and again.check_in.received_at == DURING
    assert count_rows(session, CheckIn) == 1 and count_rows(session, Participant) == 1
    assert count_rows(session, Credential) == 1
    assert outcomes(session) == ["accepted", "replayed"]
    replayed = session.exec(select(CheckInAttempt).where(CheckInAttempt.outcome == "replayed")).one()
    assert replayed.check_in_id == first.check_in.id and replayed.nonce == request.key


def test_replay_of_a_first_phone_check_in_gives_back_its_device_token(
    session: Session, settings: Settings, scene: Scene
) -> None:
    """The first answer was lost on the way (the phone retries with the same key): the retry must still
    tell the phone its token, or its next check-in makes a second person."""
    request = phone(scene.event, settings)
    first: CheckInResult = check_in(session, settings, request, now=DURING)
    again = check_in(session, settings, request, now=DURING + timedelta(seconds=10))
    assert not again.created
    assert again.device_token == first.device_token


def test_replay_after_the_window_still_returns_the_first_answer(
    session: Session, settings: Settings, scene: Scene
) -> None:
    request = phone(scene.event, settings)
    first = check_in(session, settings, request, now=DURING)
    again = check_in(session, settings, request, now=T0 + timedelta(days=1))  # an outbox retrying
    assert not again.created and again.check_in.id == first.check_in.id
    assert outcomes(session) == ["accepted", "replayed"]


def test_same_key_with_other_content_is_key_reused(
    session: Session, settings: Settings, scene: Scene
) -> None:
    first = phone(scene.event, settings)
    check_in(session, settings, first, now=DURING)
    other = phone(
        scene.event, settings, key=first.key, profile=Profile(AgeBand.from_60, Gender.male, consent=True)
    )
    refused = refusal(session, settings, other)
    assert refused.code == ErrorCode.key_reused and refused.status == 409
    assert count_rows(session, CheckIn) == 1 and count_rows(session, Participant) == 1
    assert outcomes(session) == ["accepted", "key_reused"]


def test_same_key_with_other_claimed_time_is_key_reused(
    session: Session, settings: Settings, scene: Scene
) -> None:
    first = desk(scene.event, profile=ADULT, claimed_at=DURING)
    check_in(session, settings, first, staff=scene.organizer, now=DURING)
    other = replace(first, claimed_at=DURING - timedelta(minutes=1))
    refused = refusal(session, settings, other, staff=scene.organizer)
    assert refused.code == ErrorCode.key_reused
    assert [r.checked_in_at for r in stored(session)] == [DURING]


def test_same_key_for_another_event_is_key_reused(session: Session, settings: Settings, scene: Scene) -> None:
    first = phone(scene.event, settings)
    check_in(session, settings, first, now=DURING)
    other_event = make_event(session, scene.venue, starts_at=T0)
    refused = refusal(session, settings, phone(other_event, settings, key=first.key))
    assert refused.code == ErrorCode.key_reused
    assert [r.event_id for r in stored(session)] == [scene.event.id]
    assert count_rows(session, Participant) == 1
    assert outcomes(session) == ["accepted", "key_reused"]


@pytest.mark.parametrize("key", ["", "short", "x" * 65, "has spaces in it", "ký-tự-lạ-123"])
def test_invalid_key_is_refused(session: Session, settings: Settings, scene: Scene, key: str) -> None:
    refused = refusal(session, settings, phone(scene.event, settings, key=key))
    assert refused.code == ErrorCode.invalid_key
    assert_nothing_stored(session)
    assert outcomes(session) == ["invalid_key"]


# --- Time --------------------------------------------------------------------------------------------


def test_claimed_time_inside_the_window_is_stored_as_checked_in_at(
    session: Session, settings: Settings, scene: Scene
) -> None:
    scanned = T0 - timedelta(minutes=90)  # in the margin before the start
    now = T0 + timedelta(hours=2)
    check_in(session, settings, phone(scene.event, settings, claimed_at=scanned), now=now)
    [record] = stored(session)
    assert record.checked_in_at == scanned and record.received_at == now


def test_claimed_after_the_window_is_code_expired(session: Session, settings: Settings, scene: Scene) -> None:
    closes = scene.event.ends_at + timedelta(minutes=settings.checkin_margin_minutes)
    request = phone(scene.event, settings, claimed_at=closes + timedelta(minutes=1))
    refused = refusal(session, settings, request, now=closes + timedelta(minutes=2))
    assert refused.code == ErrorCode.code_expired
    assert_nothing_stored(session)
    assert outcomes(session) == ["code_expired"]


def test_claimed_before_the_window_is_code_not_yet_valid(
    session: Session, settings: Settings, scene: Scene
) -> None:
    opens = scene.event.starts_at - timedelta(minutes=settings.checkin_margin_minutes)
    request = phone(scene.event, settings, claimed_at=opens - timedelta(minutes=1))
    refused = refusal(session, settings, request, now=DURING)
    assert refused.code == ErrorCode.code_not_yet_valid
    assert_nothing_stored(session)
    assert outcomes(session) == ["code_not_yet_valid"]


def test_claimed_in_the_future_beyond_the_clock_skew_is_refused(
    session: Session, settings: Settings, scene: Scene
) -> None:
    request = phone(scene.event, settings, claimed_at=DURING + MAX_CLOCK_SKEW + timedelta(seconds=1))
    refused = refusal(session, settings, request, now=DURING)
    assert refused.code == ErrorCode.clock_skew
    assert_nothing_stored(session)
    assert outcomes(session) == ["clock_skew"]


def test_claimed_in_the_future_within_the_clock_skew_is_stored_as_now(
    session: Session, settings: Settings, scene: Scene
) -> None:
    request = phone(scene.event, settings, claimed_at=DURING + MAX_CLOCK_SKEW - timedelta(seconds=1))
    check_in(session, settings, request, now=DURING)
    [record] = stored(session)
    assert record.checked_in_at == DURING and record.received_at == DURING and not record.late


def test_claimed_time_without_time_zone_is_invalid_input(
    session: Session, settings: Settings, scene: Scene
) -> None:
    request = phone(scene.event, settings, claimed_at=DURING.replace(tzinfo=None))
    assert refusal(session, settings, request).code == ErrorCode.invalid_input
    assert_nothing_stored(session)


@pytest.mark.parametrize(
    ("delay", "late"),
    [
        (timedelta(0), False),
        (LATE_AFTER, False),
        (LATE_AFTER + timedelta(seconds=1), True),
        (timedelta(days=2), True),
    ],
)
def test_arrival_later_than_late_after_is_marked_late(
    session: Session, settings: Settings, scene: Scene, delay: timedelta, late: bool
) -> None:
    result = check_in(session, settings, phone(scene.event, settings, claimed_at=DURING), now=DURING + delay)
    assert result.check_in.late is late
    [record] = stored(session)
    assert record.late is late and record.checked_in_at == DURING


def test_anonymous_phone_delivering_after_the_sync_limit_is_sync_too_late(
    session: Session, settings: Settings, scene: Scene
) -> None:
    request = phone(scene.event, settings, channel=Channel.batch, claimed_at=DURING)
    refused = refusal(session, settings, request, now=DURING + LATE_SYNC_LIMIT + timedelta(minutes=1))
    assert refused.code == ErrorCode.sync_too_late
    assert_nothing_stored(session)
    assert outcomes(session) == ["sync_too_late"]


def test_anonymous_phone_delivering_within_the_sync_limit_is_accepted_late(
    session: Session, settings: Settings, scene: Scene
) -> None:
    request = phone(scene.event, settings, channel=Channel.batch, claimed_at=DURING)
    check_in(session, settings, request, now=DURING + LATE_SYNC_LIMIT - timedelta(minutes=1))
    [record] = stored(session)
    assert record.late and record.checked_in_at == DURING


def test_staff_may_deliver_a_paper_register_a_month_later(
    session: Session, settings: Settings, scene: Scene
) -> None:
    typed = DURING + timedelta(days=30)
    request = desk(scene.event, profile=ADULT, claimed_at=DURING)
    check_in(session, settings, request, staff=scene.organizer, now=typed)
    [record] = stored(session)
    assert record.checked_in_at == DURING and record.received_at == typed and record.late
    assert outcomes(session) == ["accepted"]


def test_staff_entry_three_days_after_the_window_is_refused(
    session: Session, settings: Settings, scene: Scene
) -> None:
    closes = scene.event.ends_at + timedelta(minutes=settings.checkin_margin_minutes)
    refused = refusal(
        session,
        settings,
        desk(scene.event, profile=ADULT),
        staff=scene.organizer,
        now=closes + timedelta(days=3),
    )
    assert refused.code == ErrorCode.code_expired
    assert_nothing_stored(session)
    assert outcomes(session) == ["code_expired"]


def test_report_counts_a_late_staff_entry_in_the_year_of_the_visit(
    session: Session, settings: Settings, scene: Scene
) -> None:
    new_year_eve = datetime(2025, 12, 31, 12, 0, tzinfo=UTC)  # 19:00 on 31/12 in Vietnam
    event = make_event(session, scene.venue, starts_at=new_year_eve)
    visit = new_year_eve + timedelta(hours=1)
    typed = datetime(2026, 1, 2, 2, 0, tzinfo=UTC)  # the register typed in on 2/1
    request = desk(event, profile=ADULT, claimed_at=visit)
    check_in(session, settings, request, staff=scene.organizer, now=typed)
    admin = make_staff(session, Role.admin)
    today = date(2026, 1, 5)
    old_year = reports.yearly_totals(
        session, admin, reports.report_window(2025, until=None, today=today), settings.tz, now=typed
    )
    new_year = reports.yearly_totals(
        session, admin, reports.report_window(2026, until=None, today=today), settings.tz, now=typed
    )
    assert (old_year.visits, old_year.people) == (1, 1)
    [by_month] = [b for b in old_year.breakdowns if b.key == "month"]
    months = {row.key: row.visits for row in by_month.rows}
    assert months["12"] == 1
    assert (new_year.visits, new_year.people) == (0, 0)


# --- The event ---------------------------------------------------------------------------------------


def test_cancelled_event_refuses_every_channel_and_keeps_earlier_check_ins(
    session: Session, settings: Settings, scene: Scene
) -> None:
    token = check_in(session, settings, phone(scene.event, settings), now=DURING).device_token
    events.cancel_event(session, scene.event, now=DURING + timedelta(minutes=1))
    later = DURING + timedelta(minutes=5)
    attempts = [
        (phone(scene.event, settings, channel=Channel.page), None),
        (phone(scene.event, settings, channel=Channel.public_api), None),
        (phone(scene.event, settings, channel=Channel.batch, claimed_at=DURING), None),
        (phone(scene.event, settings, token=token, profile=None), None),
        (desk(scene.event, channel=Channel.staff_form, profile=ADULT), scene.organizer),
        (desk(scene.event, channel=Channel.staff_api, profile=ADULT), scene.organizer),
        (desk(scene.event, channel=Channel.kiosk, profile=ADULT), scene.organizer),
        (desk(scene.event, channel=Channel.batch, profile=ADULT, claimed_at=DURING), scene.organizer),
    ]
    for request, staff in attempts:
        assert refusal(session, settings, request, staff=staff, now=later).code == ErrorCode.event_cancelled
    with pytest.raises(AppError) as scan:
        open_scan(session, settings, code_for(scene.event, settings), None, now=later)
    assert scan.value.code == ErrorCode.event_cancelled
    assert count_rows(session, CheckIn) == 1 and count_rows(session, Participant) == 1
    assert outcomes(session) == ["accepted"] + ["event_cancelled"] * (len(attempts) + 1)
    live = attendance.live_summary(session, scene.event.id or 0)
    assert (live.visits, live.people) == (1, 1)
    admin = make_staff(session, Role.admin)
    window = reports.report_window(2026, until=None, today=TODAY)
    totals = reports.yearly_totals(session, admin, window, settings.tz, now=later)
    assert (totals.visits, totals.people) == (1, 1)


@pytest.mark.parametrize("at", ["village", "commune"])
def test_the_venue_place_is_copied_into_the_check_in(
    session: Session, settings: Settings, scene: Scene, at: str
) -> None:
    venue = make_venue(session, scene.units[at], type=VenueType.commune_library)
    event = make_event(session, venue, starts_at=T0)
    profile = Profile(age_band=AgeBand.from_12, gender=Gender.male, consent=True)
    check_in(session, settings, phone(event, settings, profile=profile), now=DURING)
    [record] = stored(session)
    village = scene.units["village"].id if at == "village" else None
    assert (record.commune_id, record.village_id) == (scene.units["commune"].id, village)
    assert (record.venue_id, record.venue_type) == (venue.id, VenueType.commune_library)
    assert (record.age_band, record.gender) == (AgeBand.from_12, Gender.male)


# --- Rotating screen codes ---------------------------------------------------------------------------


def screen_token(event: Event, settings: Settings, at: datetime, steps_back: int = 0) -> str:
    return rotation.token(rotation_key(event, settings), rotation.step_at(at) - steps_back)


@pytest.fixture
def rotating(session: Session, scene: Scene) -> Event:
    return make_event(session, scene.venue, starts_at=T0, checkin_mode=CheckInMode.rotating)


@pytest.mark.parametrize("steps_back", [0, 1], ids=["current", "previous"])
def test_rotating_code_of_the_current_or_previous_step_is_accepted(
    session: Session, settings: Settings, rotating: Event, steps_back: int
) -> None:
    token = screen_token(rotating, settings, DURING, steps_back)
    check_in(session, settings, phone(rotating, settings, screen=token), now=DURING)
    [record] = stored(session)
    assert record.event_id == rotating.id and record.checked_in_at == DURING


def test_rotating_code_of_an_older_step_is_stale(
    session: Session, settings: Settings, rotating: Event
) -> None:
    request = phone(rotating, settings, screen=screen_token(rotating, settings, DURING, 2))
    assert refusal(session, settings, request, now=DURING).code == ErrorCode.rotating_code_stale
    assert_nothing_stored(session)
    assert outcomes(session) == ["rotating_code_stale"]


def test_rotating_code_of_another_event_is_stale(
    session: Session, settings: Settings, scene: Scene, rotating: Event
) -> None:
    request = phone(rotating, settings, screen=screen_token(scene.event, settings, DURING))
    assert refusal(session, settings, request, now=DURING).code == ErrorCode.rotating_code_stale
    assert_nothing_stored(session)


@pytest.mark.parametrize("channel", [Channel.page, Channel.public_api])
def test_rotating_event_without_screen_code_is_refused(
    session: Session, settings: Settings, rotating: Event, channel: Channel
) -> None:
    refused = refusal(session, settings, phone(rotating, settings, channel=channel), now=DURING)
    assert refused.code == ErrorCode.rotating_code_required
    assert_nothing_stored(session)
    assert outcomes(session) == ["rotating_code_required"]


def test_scan_pass_keeps_the_scan_time_when_posted_later(
    session: Session, settings: Settings, rotating: Event
) -> None:
    token = screen_token(rotating, settings, DURING)
    event, scan_pass = open_scan(session, settings, code_for(rotating, settings), token, now=DURING)
    assert event.id == rotating.id
    posted = DURING + timedelta(minutes=10)
    assert not rotation.accepts(rotation_key(rotating, settings), token, posted)  # the token alone is stale
    stale = phone(rotating, settings, screen=token)
    assert refusal(session, settings, stale, now=posted).code == ErrorCode.rotating_code_stale
    request = phone(rotating, settings, channel=Channel.page, screen=scan_pass)
    result = check_in(session, settings, request, now=posted)
    assert result.created
    [record] = stored(session)
    assert record.checked_in_at == DURING and record.received_at == posted
    assert outcomes(session) == ["rotating_code_stale", "accepted"]


@pytest.mark.parametrize(
    ("forge", "age"),
    [(False, SCAN_PASS_LIFETIME + timedelta(seconds=1)), (True, timedelta(minutes=1))],
    ids=["expired", "forged"],
)
def test_scan_pass_expired_or_forged_is_stale(
    session: Session, settings: Settings, rotating: Event, forge: bool, age: timedelta
) -> None:
    _event, scan_pass = open_scan(
        session, settings, code_for(rotating, settings), screen_token(rotating, settings, DURING), now=DURING
    )
    if forge:
        stamp, _, mac = scan_pass.partition(".")
        scan_pass = f"{int(stamp) - 600}.{mac}"  # claims an earlier scan
    request = phone(rotating, settings, channel=Channel.page, screen=scan_pass)
    assert refusal(session, settings, request, now=DURING + age).code == ErrorCode.rotating_code_stale
    assert_nothing_stored(session)


def test_open_scan_with_an_old_screen_code_is_stale_and_logged(
    session: Session, settings: Settings, rotating: Event
) -> None:
    with pytest.raises(AppError) as refused:
        open_scan(
            session,
            settings,
            code_for(rotating, settings),
            screen_token(rotating, settings, DURING, 3),
            now=DURING,
        )
    assert refused.value.code == ErrorCode.rotating_code_stale
    assert outcomes(session) == ["rotating_code_stale"]


@pytest.mark.parametrize("channel", [Channel.page, Channel.public_api])
def test_both_mode_accepts_the_plain_poster_code(
    session: Session, settings: Settings, scene: Scene, channel: Channel
) -> None:
    event = make_event(session, scene.venue, starts_at=T0, checkin_mode=CheckInMode.both)
    check_in(session, settings, phone(event, settings, channel=channel), now=DURING)
    assert [r.event_id for r in stored(session)] == [event.id]


def test_both_mode_still_refuses_a_stale_screen_code(
    session: Session, settings: Settings, scene: Scene
) -> None:
    event = make_event(session, scene.venue, starts_at=T0, checkin_mode=CheckInMode.both)
    request = phone(event, settings, screen=screen_token(event, settings, DURING, 5))
    assert refusal(session, settings, request, now=DURING).code == ErrorCode.rotating_code_stale
    assert_nothing_stored(session)


def test_phone_batch_item_on_a_rotating_event_is_refused(
    session: Session, settings: Settings, rotating: Event
) -> None:
    request = phone(
        rotating,
        settings,
        channel=Channel.batch,
        claimed_at=DURING,
        screen=screen_token(rotating, settings, DURING),  # an outbox cannot prove when it saw the screen
    )
    refused = refusal(session, settings, request, now=DURING + timedelta(minutes=1))
    assert refused.code == ErrorCode.rotating_code_required
    assert_nothing_stored(session)
    assert outcomes(session) == ["rotating_code_required"]


@pytest.mark.parametrize("channel", [Channel.staff_form, Channel.staff_api, Channel.kiosk, Channel.batch])
def test_staff_need_no_screen_code_on_a_rotating_event(
    session: Session, settings: Settings, scene: Scene, rotating: Event, channel: Channel
) -> None:
    request = desk(rotating, channel=channel, profile=ADULT)
    check_in(session, settings, request, staff=scene.organizer, now=DURING)
    assert [r.channel for r in stored(session)] == [channel]
