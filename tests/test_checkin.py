"""The check-in service: one rule per test, asserting the error code and what was stored."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlmodel import Session, select

from server.config import Settings
from server.errors import AppError, ErrorCode
from server.models import (
    AgeBand,
    CheckIn,
    CheckInAttempt,
    CheckInMethod,
    EventStatus,
    Gender,
    Participant,
    UnitKind,
)
from server.services.checkin import Profile, check_in, code_for, event_from_code, new_nonce
from tests.factories import count_rows, make_event, make_tree, make_venue

ADULT = Profile(age_band=AgeBand.from_25, gender=Gender.female, consent=True)


def _outcomes(session: Session) -> list[str]:
    session.commit()
    return [a.outcome for a in session.exec(select(CheckInAttempt).order_by(CheckInAttempt.id)).all()]


def test_first_check_in_creates_participant_and_device_token(session: Session, settings: Settings) -> None:
    event = make_event(session)
    result = check_in(
        session, settings, event=event, nonce=new_nonce(), method=CheckInMethod.qr, profile=ADULT
    )
    assert result.created and result.device_token
    assert count_rows(session, CheckIn) == 1 and count_rows(session, Participant) == 1
    assert result.participant.consent_at is not None and result.participant.consent_version
    assert _outcomes(session) == ["accepted"]


def test_returning_device_checks_in_with_one_tap(session: Session, settings: Settings) -> None:
    first, second = make_event(session), make_event(session)
    token = check_in(
        session, settings, event=first, nonce=new_nonce(), method=CheckInMethod.qr, profile=ADULT
    ).device_token
    again = check_in(
        session, settings, event=second, nonce=new_nonce(), method=CheckInMethod.qr, device_token=token
    )
    assert again.created and again.device_token is None
    assert count_rows(session, Participant) == 1 and count_rows(session, CheckIn) == 2


def test_single_entry_second_scan_is_refused_with_first_time(session: Session, settings: Settings) -> None:
    event = make_event(session)
    first = check_in(
        session, settings, event=event, nonce=new_nonce(), method=CheckInMethod.qr, profile=ADULT
    )
    with pytest.raises(AppError) as refused:
        check_in(
            session,
            settings,
            event=event,
            nonce=new_nonce(),
            method=CheckInMethod.qr,
            device_token=first.device_token,
        )
    assert refused.value.code == ErrorCode.already_checked_in
    assert refused.value.extra["check_in"].checked_in_at == first.check_in.checked_in_at
    assert count_rows(session, CheckIn) == 1
    assert _outcomes(session) == ["accepted", "already_checked_in"]


def test_single_entry_repeat_nonce_is_a_no_op(session: Session, settings: Settings) -> None:
    event = make_event(session)
    nonce = new_nonce()
    first = check_in(session, settings, event=event, nonce=nonce, method=CheckInMethod.qr, profile=ADULT)
    again = check_in(session, settings, event=event, nonce=nonce, method=CheckInMethod.qr, profile=ADULT)
    assert not again.created and again.check_in.id == first.check_in.id
    assert count_rows(session, CheckIn) == 1 and count_rows(session, Participant) == 1
    assert _outcomes(session) == ["accepted", "replayed"]


def test_nonce_from_another_event_is_refused(session: Session, settings: Settings) -> None:
    first, second = make_event(session), make_event(session)
    nonce = new_nonce()
    check_in(session, settings, event=first, nonce=nonce, method=CheckInMethod.qr, profile=ADULT)
    with pytest.raises(AppError) as refused:
        check_in(session, settings, event=second, nonce=nonce, method=CheckInMethod.qr, profile=ADULT)
    assert refused.value.code == ErrorCode.invalid_input
    assert count_rows(session, CheckIn) == 1


def test_consent_is_required(session: Session, settings: Settings) -> None:
    event = make_event(session)
    with pytest.raises(AppError) as refused:
        check_in(
            session,
            settings,
            event=event,
            nonce=new_nonce(),
            method=CheckInMethod.qr,
            profile=Profile(age_band=AgeBand.from_25, gender=Gender.male, consent=False),
        )
    assert refused.value.code == ErrorCode.consent_required
    assert count_rows(session, CheckIn) == 0 and count_rows(session, Participant) == 0
    assert _outcomes(session) == ["consent_required"]


@pytest.mark.parametrize("band", [AgeBand.under_6, AgeBand.from_6, AgeBand.from_12])
def test_no_name_from_under_16s(session: Session, settings: Settings, band: AgeBand) -> None:
    event = make_event(session)
    with pytest.raises(AppError) as refused:
        check_in(
            session,
            settings,
            event=event,
            nonce=new_nonce(),
            method=CheckInMethod.qr,
            profile=Profile(age_band=band, gender=Gender.female, name="Bé Lan", consent=True),
        )
    assert refused.value.code == ErrorCode.name_not_allowed_for_child
    assert count_rows(session, Participant) == 0


def test_adult_may_give_a_name(session: Session, settings: Settings) -> None:
    event = make_event(session)
    result = check_in(
        session,
        settings,
        event=event,
        nonce=new_nonce(),
        method=CheckInMethod.qr,
        profile=Profile(age_band=AgeBand.from_60, gender=Gender.male, name=" Hoàng Văn Páo ", consent=True),
    )
    assert result.participant.name == "Hoàng Văn Páo"


def test_unknown_device_without_profile_is_asked_for_one(session: Session, settings: Settings) -> None:
    event = make_event(session)
    with pytest.raises(AppError) as refused:
        check_in(
            session,
            settings,
            event=event,
            nonce=new_nonce(),
            method=CheckInMethod.qr,
            device_token="unknown-token-123456789",
        )
    assert refused.value.code == ErrorCode.profile_required


def test_qr_check_in_outside_window_is_refused(session: Session, settings: Settings) -> None:
    event = make_event(session)
    late = event.ends_at + timedelta(minutes=settings.checkin_margin_minutes + 1)
    with pytest.raises(AppError) as refused:
        check_in(
            session,
            settings,
            event=event,
            nonce=new_nonce(),
            method=CheckInMethod.qr,
            profile=ADULT,
            now=late,
        )
    assert refused.value.code == ErrorCode.code_expired
    assert count_rows(session, CheckIn) == 0


def test_manual_check_in_may_be_entered_late(session: Session, settings: Settings) -> None:
    event = make_event(session)
    late = event.ends_at + timedelta(days=3)
    result = check_in(
        session,
        settings,
        event=event,
        nonce=new_nonce(),
        method=CheckInMethod.manual,
        profile=ADULT,
        now=late,
    )
    assert result.check_in.checked_in_at == late and result.participant.device_hash is None


def test_cancelled_event_refuses_check_in(session: Session, settings: Settings) -> None:
    event = make_event(session, status=EventStatus.cancelled)
    with pytest.raises(AppError) as refused:
        check_in(
            session, settings, event=event, nonce=new_nonce(), method=CheckInMethod.manual, profile=ADULT
        )
    assert refused.value.code == ErrorCode.event_cancelled
    assert count_rows(session, CheckIn) == 0


def test_place_is_stored_as_it_was_on_the_day(session: Session, settings: Settings) -> None:
    tree = make_tree(session)
    venue = make_venue(session, tree["village"])
    event = make_event(session, venue)
    record = check_in(
        session, settings, event=event, nonce=new_nonce(), method=CheckInMethod.qr, profile=ADULT
    ).check_in
    assert (record.commune_id, record.village_id) == (tree["commune"].id, tree["village"].id)
    assert record.venue_type == venue.type and record.age_band == AgeBand.from_25
    assert tree["village"].kind == UnitKind.village


def test_signed_code_opens_its_event(session: Session, settings: Settings) -> None:
    event = make_event(session)
    assert event_from_code(session, settings, code_for(event, settings)).id == event.id


@pytest.mark.parametrize(
    "mangle",
    [
        lambda code: code[:-1] + ("0" if code[-1] != "0" else "1"),  # altered signature
        lambda code: "1" + code,  # another event id, same signature
        lambda code: "ZZZZZZZZZZZZ",  # unknown
        lambda code: "not a code!",  # garbage
    ],
)
def test_forged_or_altered_code_is_refused(session: Session, settings: Settings, mangle) -> None:  # type: ignore[no-untyped-def]
    event = make_event(session)
    with pytest.raises(AppError) as refused:
        event_from_code(session, settings, mangle(code_for(event, settings)))
    assert refused.value.code == ErrorCode.code_invalid


def test_code_changes_when_event_is_moved(session: Session, settings: Settings) -> None:
    event = make_event(session)
    old = code_for(event, settings)
    event.starts_at += timedelta(hours=1)
    event.ends_at += timedelta(hours=1)
    session.add(event)
    session.commit()
    with pytest.raises(AppError) as refused:
        event_from_code(session, settings, old)
    assert refused.value.code == ErrorCode.code_invalid


def test_code_is_refused_before_the_window(session: Session, settings: Settings) -> None:
    event = make_event(session)
    early = event.starts_at - timedelta(minutes=settings.checkin_margin_minutes + 1)
    with pytest.raises(AppError) as refused:
        event_from_code(session, settings, code_for(event, settings), now=early)
    assert refused.value.code == ErrorCode.code_not_yet_valid
