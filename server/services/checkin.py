"""Check-in: the one function every path calls (resident's phone, organizer's manual entry, the API).

Rules, each with its own coded error: the event must exist and not be cancelled; a QR check-in must fall in
the event's window; a new participant must consent and give age band and gender; no name from under-16s;
one check-in per participant per event. A retry with the same client nonce is a no-op that returns the
first result, and every attempt, accepted or refused, is logged.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from server import codes
from server.config import Settings
from server.db import begin_write
from server.errors import AppError, ErrorCode
from server.models import (
    AgeBand,
    CheckIn,
    CheckInAttempt,
    CheckInMethod,
    Event,
    EventStatus,
    Gender,
    OrgUnit,
    Participant,
    UnitKind,
    Venue,
    utcnow,
)

CONSENT_VERSION = "2026-01"
_TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
_NONCE_RE = re.compile(r"^[A-Za-z0-9_.:-]{8,64}$")


@dataclass(frozen=True)
class Profile:
    """What a new participant tells us: anonymous unless an adult chooses to give a name."""

    age_band: AgeBand
    gender: Gender
    home_unit_id: int | None = None
    name: str | None = None
    consent: bool = False


@dataclass(frozen=True)
class CheckInResult:
    check_in: CheckIn
    participant: Participant
    # False when the nonce had been seen: the stored result of the first attempt is returned.
    created: bool
    # Set when this call made a new device token: the caller stores it on the phone.
    device_token: str | None = None


def new_nonce() -> str:
    return secrets.token_urlsafe(16)


def new_device_token() -> str:
    return secrets.token_urlsafe(24)


def device_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def valid_device_token(token: str | None) -> bool:
    return bool(token) and _TOKEN_RE.match(token or "") is not None


def check_in_window(event: Event, settings: Settings) -> tuple[datetime, datetime]:
    margin = timedelta(minutes=settings.checkin_margin_minutes)
    return event.starts_at - margin, event.ends_at + margin


def code_for(event: Event, settings: Settings) -> str:
    return codes.make_code(settings.secret_key, event.id or 0, event.starts_at, event.ends_at)


def link_for(event: Event, settings: Settings) -> str:
    """The check-in link printed in the QR code: `BASE_URL/c/<code>`."""
    return f"{settings.base_url}/c/{code_for(event, settings)}"


def event_from_code(
    session: Session, settings: Settings, raw_code: str, *, now: datetime | None = None
) -> Event:
    """The event a check-in code opens, or a coded refusal (forged, unknown, cancelled, too early or late)."""
    now = now or utcnow()
    code = codes.normalize(raw_code)
    event_id = codes.event_id_of(code) if code else None
    event = session.get(Event, event_id) if event_id else None
    if (
        code is None
        or event is None
        or not codes.signature_matches(
            settings.secret_key, code, event.id or 0, event.starts_at, event.ends_at
        )
    ):
        raise AppError(ErrorCode.code_invalid)
    _ensure_open(event, settings, now)
    return event


def _ensure_open(event: Event, settings: Settings, now: datetime) -> None:
    if event.status == EventStatus.cancelled:
        raise AppError(ErrorCode.event_cancelled, event=event)
    opens_at, closes_at = check_in_window(event, settings)
    if now < opens_at:
        raise AppError(ErrorCode.code_not_yet_valid, event=event, opens_at=opens_at)
    if now > closes_at:
        raise AppError(ErrorCode.code_expired, event=event)


def participant_for_device(session: Session, token: str | None) -> Participant | None:
    if not valid_device_token(token):
        return None
    return session.exec(
        select(Participant).where(Participant.device_hash == device_hash(token or ""))
    ).first()


def existing_check_in(session: Session, event_id: int, participant_id: int) -> CheckIn | None:
    return session.exec(
        select(CheckIn).where(CheckIn.event_id == event_id, CheckIn.participant_id == participant_id)
    ).first()


def check_in(
    session: Session,
    settings: Settings,
    *,
    event: Event,
    nonce: str,
    method: CheckInMethod,
    device_token: str | None = None,
    profile: Profile | None = None,
    recorded_by_id: int | None = None,
    now: datetime | None = None,
) -> CheckInResult:
    """Record that a participant came to an event.

    - `device_token`: the phone's token; a known token is a returning participant (one tap).
    - `profile`: required for a participant we do not know yet (new phone, or a manual entry).
    - `method`: `qr` enforces the event's time window; `manual` and `api` entries by staff may be late.
    - `nonce`: the client's idempotency key; the same nonce again returns the first result.
    """
    now = now or utcnow()
    try:
        result = _check_in(
            session, settings, event, nonce, method, device_token, profile, recorded_by_id, now
        )
    except AppError as error:
        session.rollback()
        participant = error.extra.get("participant")
        log_attempt(
            session,
            event.id,
            nonce,
            method,
            error.code.value,
            now,
            participant_id=participant.id if participant else None,
        )
        raise
    if not result.created:  # an accepted check-in logged its attempt in its own transaction
        log_attempt(
            session,
            event.id,
            nonce,
            method,
            "replayed",
            now,
            participant_id=result.participant.id,
            check_in_id=result.check_in.id,
        )
    return result


def _check_in(
    session: Session,
    settings: Settings,
    event: Event,
    nonce: str,
    method: CheckInMethod,
    device_token: str | None,
    profile: Profile | None,
    recorded_by_id: int | None,
    now: datetime,
) -> CheckInResult:
    if not _NONCE_RE.match(nonce or ""):
        raise AppError(ErrorCode.invalid_input, "nonce")
    begin_write(session)
    replay = _replay(session, event, nonce)
    if replay is not None:
        return replay
    if event.status == EventStatus.cancelled:
        raise AppError(ErrorCode.event_cancelled)
    if method == CheckInMethod.qr:
        _ensure_open(event, settings, now)

    new_token: str | None = None
    participant = participant_for_device(session, device_token) if method != CheckInMethod.manual else None
    if participant is None:
        if profile is None:
            raise AppError(ErrorCode.profile_required)
        _validate_profile(profile)
        if method != CheckInMethod.manual and not valid_device_token(device_token):
            new_token = device_token = new_device_token()
        participant = Participant(
            device_hash=device_hash(device_token)
            if device_token and method != CheckInMethod.manual
            else None,
            name=(profile.name or "").strip() or None,
            age_band=profile.age_band,
            gender=profile.gender,
            home_unit_id=profile.home_unit_id,
            consent_at=now if profile.consent else None,
            consent_version=CONSENT_VERSION if profile.consent else None,
            created_at=now,
        )
        session.add(participant)
        try:
            session.flush()
        except IntegrityError:
            # Another request from the same phone created it first.
            session.rollback()
            participant = participant_for_device(session, device_token)
            if participant is None:
                raise
            new_token = None
    elif (earlier := existing_check_in(session, event.id or 0, participant.id or 0)) is not None:
        raise AppError(
            ErrorCode.already_checked_in,
            check_in=earlier,
            participant=participant,
            checked_in_at=earlier.checked_in_at,
        )

    venue = session.get(Venue, event.venue_id)
    assert venue is not None, "events always have a venue (foreign key)"
    commune_id, village_id = _place_of(session, venue)
    record = CheckIn(
        event_id=event.id or 0,
        participant_id=participant.id or 0,
        nonce=nonce,
        method=method,
        checked_in_at=now,
        recorded_by_id=recorded_by_id,
        venue_id=venue.id or 0,
        venue_type=venue.type,
        commune_id=commune_id,
        village_id=village_id,
        age_band=participant.age_band,
        gender=participant.gender,
    )
    session.add(record)
    try:
        session.flush()
        session.add(_attempt(event.id, nonce, method, "accepted", now, participant.id, record.id))
        session.commit()
    except IntegrityError:
        # A concurrent request won the race (same nonce, or same participant): report what it stored.
        session.rollback()
        replay = _replay(session, event, nonce)
        if replay is not None:
            return replay
        earlier = existing_check_in(session, event.id or 0, participant.id or 0)
        if earlier is not None:
            raise AppError(
                ErrorCode.already_checked_in,
                check_in=earlier,
                participant=participant,
                checked_in_at=earlier.checked_in_at,
            ) from None
        raise
    return CheckInResult(check_in=record, participant=participant, created=True, device_token=new_token)


def _replay(session: Session, event: Event, nonce: str) -> CheckInResult | None:
    earlier = session.exec(select(CheckIn).where(CheckIn.nonce == nonce)).first()
    if earlier is None:
        return None
    if earlier.event_id != event.id:
        raise AppError(ErrorCode.invalid_input, "nonce")
    participant = session.get(Participant, earlier.participant_id)
    assert participant is not None
    return CheckInResult(check_in=earlier, participant=participant, created=False)


def _validate_profile(profile: Profile) -> None:
    if not profile.consent:
        raise AppError(ErrorCode.consent_required)
    if profile.name and profile.name.strip() and profile.age_band.is_child:
        raise AppError(ErrorCode.name_not_allowed_for_child)


def _place_of(session: Session, venue: Venue) -> tuple[int | None, int | None]:
    """The commune and village of a venue as the tree stands today, copied into the check-in."""
    unit = session.get(OrgUnit, venue.unit_id)
    if unit is None:
        return None, None
    if unit.kind == UnitKind.village:
        return unit.parent_id, unit.id
    if unit.kind == UnitKind.commune:
        return unit.id, None
    return None, None


def log_attempt(
    session: Session,
    event_id: int | None,
    nonce: str,
    method: CheckInMethod,
    outcome: str,
    now: datetime,
    *,
    participant_id: int | None = None,
    check_in_id: int | None = None,
) -> None:
    """Write one line of the attempt log (also for refusals that happen before an event is known)."""
    session.add(_attempt(event_id, nonce, method, outcome, now, participant_id, check_in_id))
    session.commit()


def _attempt(
    event_id: int | None,
    nonce: str,
    method: CheckInMethod,
    outcome: str,
    now: datetime,
    participant_id: int | None,
    check_in_id: int | None,
) -> CheckInAttempt:
    return CheckInAttempt(
        at=now,
        event_id=event_id,
        participant_id=participant_id,
        nonce=(nonce or "")[:64],
        method=method,
        outcome=outcome,
        check_in_id=check_in_id,
    )
