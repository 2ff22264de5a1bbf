"""The check-in engine: the one entry point every channel calls (the resident's page, the public API, the
organizer's event page, the staff API, the kiosk and the offline batch).

It owns every rule, logs every outcome (accepted, replayed or refused) in `check_in_attempt` and runs its
own transaction. docs/checkin-rules.md lists the rules with their error codes and the tests that prove
them. In short:
- the event is named by its signed code (anyone) or by its id (staff, within their scope); it is re-read
  under a lock (BEGIN IMMEDIATE on SQLite; SELECT ... FOR SHARE on PostgreSQL, which check-ins share and an
  edit or a cancel of the event waits for);
- the idempotency key: the same key with the same content returns the first answer and stores nothing;
  with other content it is refused (`key_reused`);
- a cancelled event takes no new check-in; a rotating-code event needs a fresh screen code from phones;
- time: the claimed scan time must lie in the event's window and not in the future (beyond a small clock
  skew); it may reach the server later (then the check-in is marked late; from an anonymous phone at most
  `LATE_SYNC_LIMIT` later). Reports count by the claimed time;
- who: a phone's token, a personal card, a participant staff found, or a new participant's profile
  (consent given, no name for under-16s); one check-in per person per event;
- flooding: a new person from an anonymous phone is counted against its source's budget at the event
  (services/flood.py): past it the check-in is stored but suspicious, past three times it refused.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from server import codes
from server.auth import can_use_venue
from server.config import Settings
from server.db import begin_write, insert_row, wrote
from server.errors import AppError, ErrorCode
from server.models import (
    Channel,
    CheckIn,
    CheckInMode,
    Credential,
    Event,
    OrgUnit,
    Participant,
    Staff,
    UnitKind,
    Venue,
    utcnow,
)
from server.services import attempts, clubs, flood, identities, places_history, scans
from server.services.identities import Profile

# A device clock may run a little fast; a scan "from the future" beyond this is refused.
MAX_CLOCK_SKEW = timedelta(minutes=5)
# Reaching the server more than this after the scan marks a check-in late (an outbox, a paper register).
LATE_AFTER = timedelta(minutes=15)
# An anonymous phone's outbox must deliver within this; staff entries (paper registers) may come later.
LATE_SYNC_LIMIT = timedelta(days=7)
_KEY_RE = re.compile(r"^[A-Za-z0-9_.:-]{8,64}$")
PUBLIC_CHANNELS = (Channel.page, Channel.public_api)

__all__ = ["Profile"]


@dataclass(frozen=True)
class Identity:
    """Who is checking in. A phone gives its token (and a profile the first time); staff give a card
    number, a participant they found, or a new participant's profile."""

    device_token: str | None = None
    card: str | None = None
    participant_id: int | None = None
    profile: Profile | None = None


@dataclass(frozen=True)
class CheckInRequest:
    channel: Channel
    key: str  # the client's idempotency key, made before the first send
    identity: Identity
    event_id: int | None = None  # staff name the event by id ...
    code: str | None = None  # ... anyone by its signed code
    rotation: str | None = None  # the screen code's token, or the page's scan pass
    claimed_at: datetime | None = None  # when the scan was made; default: when it arrives


@dataclass(frozen=True)
class CheckInResult:
    check_in: CheckIn
    participant: Participant
    created: bool  # False: the key had been seen, this is the first answer again
    event: Event  # as read under the write lock: the caller shows it without reading it again
    venue: Venue
    device_token: str | None = None  # a new token made for this phone: the caller stores it there


def valid_key(key: str | None) -> bool:
    """An idempotency key: 8-64 characters a device can make (a UUID, a token)."""
    return _KEY_RE.match(key or "") is not None


def new_nonce() -> str:
    return secrets.token_urlsafe(16)


# --- The engine --------------------------------------------------------------------------------------


def check_in(
    session: Session,
    settings: Settings,
    request: CheckInRequest,
    *,
    staff: Staff | None = None,
    now: datetime | None = None,
    venue_id: int | None = None,
    cards_only: bool = False,
    address: str | None = None,
) -> CheckInResult:
    """Record that someone came to an event, through any channel. `staff` is the source when a staff
    member (or their kiosk) sends it; None is an anonymous phone, and `address` where it came from (the
    client's address, for the flood budget). `now` is when it reached the server.

    A kiosk is limited further: `venue_id` refuses events at any other venue, `cards_only` any identity
    but a personal card (both `forbidden`, logged like every refusal)."""
    now = now or utcnow()
    event: Event | None = None
    try:
        if not valid_key(request.key):
            raise AppError(ErrorCode.invalid_key)
        request = _club_session_request(session, settings, request, now)
        try:
            event = start_write(session, settings, request.event_id, request.code, staff, venue_id=venue_id)
            result = _check_in(session, settings, request, event, staff, now, cards_only, address)
        except IntegrityError:
            # A concurrent request won a race on PostgreSQL (the same key, the same person at this event, or
            # the same new phone at another event): once more from the start finds what it stored.
            session.rollback()
            event = start_write(session, settings, request.event_id, request.code, staff, venue_id=venue_id)
            result = _check_in(session, settings, request, event, staff, now, cards_only, address)
    except AppError as error:
        if wrote(session):  # a new person or phone made before the refusal must not stay
            session.rollback()
        if event is not None:
            error.extra.setdefault("event", event)  # the page re-renders its form around it
        participant = error.extra.get("participant")
        attempts.log_attempt(
            session,
            request.channel,
            event or error.extra.get("event"),
            request.key,
            error.code.value,
            now,
            staff=staff,
            participant_id=participant.id if participant else None,
        )
        raise
    if not result.created:  # an accepted check-in logged its attempt in its own transaction
        attempts.log_attempt(
            session,
            request.channel,
            event,
            request.key,
            "replayed",
            now,
            staff=staff,
            participant_id=result.participant.id,
            check_in_id=result.check_in.id,
        )
    return result


def _club_session_request(
    session: Session, settings: Settings, request: CheckInRequest, now: datetime
) -> CheckInRequest:
    """A club's year-round code names the club's session that was open when the scan was made: a phone
    that scanned the club's poster with no signal sends that code later with its scan time."""
    code = codes.normalize(request.code or "")
    if not code or not codes.is_club_code(code):
        return request
    club = clubs.club_by_code(session, settings, code)
    event = clubs.open_session(session, settings, club, request.claimed_at or now, now=now)
    if event is None:
        raise AppError(ErrorCode.code_expired)
    return replace(request, code=scans.code_for(event, settings))


def start_write(
    session: Session,
    settings: Settings,
    event_id: int | None,
    code: str | None,
    staff: Staff | None,
    *,
    venue_id: int | None = None,
    exclusive: bool = False,
) -> Event:
    """Take the write lock, then read the event the request names inside it (one read, not two). Check-ins
    share the event's lock on PostgreSQL; `exclusive` for a write that must see no other one meanwhile (a
    walk-in count going down must not pass zero)."""
    begin_write(session)
    return resolve_event(
        session, settings, event_id, code, staff, lock=True, exclusive=exclusive, venue_id=venue_id
    )


def resolve_event(
    session: Session,
    settings: Settings,
    event_id: int | None,
    code: str | None,
    staff: Staff | None,
    *,
    lock: bool = False,
    exclusive: bool = False,
    venue_id: int | None = None,
) -> Event:
    """The event a request names: by signed code (anyone) or by id (staff). Staff act only on events in
    their scope, however they name them: a card or a paper register is not for another commune's event.
    With `venue_id` (a kiosk), only events at that venue."""
    if code:
        event = scans.event_by_code(session, settings, code, lock=lock, exclusive=exclusive)
        if staff is None:
            return event
    elif staff is None or event_id is None:
        raise AppError(ErrorCode.code_invalid)
    else:
        found = scans.load_event(session, event_id, lock=lock, exclusive=exclusive)
        if found is None:
            raise AppError(ErrorCode.not_found)
        event = found
    venue = session.get(Venue, event.venue_id)
    if venue is None or not can_use_venue(session, staff, venue):
        raise AppError(ErrorCode.forbidden)
    if venue_id is not None and event.venue_id != venue_id:
        raise AppError(ErrorCode.forbidden, event=event)
    return event


def claimed_time(
    event: Event, settings: Settings, claimed_at: datetime | None, now: datetime, *, phone: bool
) -> datetime:
    """When the scan was made: it must not lie in the future (beyond MAX_CLOCK_SKEW) and must fall in the
    event's window; an anonymous phone must deliver it within LATE_SYNC_LIMIT."""
    claimed = claimed_at or now
    if claimed.tzinfo is None:
        raise AppError(ErrorCode.invalid_input, "claimed_at needs a time zone")
    if claimed - now > MAX_CLOCK_SKEW:
        raise AppError(ErrorCode.clock_skew, event=event)
    at = min(claimed, now)  # a clock a little fast: the scan was made when it arrived
    scans.ensure_open(event, settings, at)
    if phone and now - at > LATE_SYNC_LIMIT:
        raise AppError(ErrorCode.sync_too_late, event=event)
    return at


def fingerprint(*parts: Any) -> str:
    """A digest of what a request asked for, to tell a true replay from a reused key."""
    return hashlib.sha256(json.dumps(parts, default=str, sort_keys=True).encode()).hexdigest()


def _check_in(
    session: Session,
    settings: Settings,
    request: CheckInRequest,
    event: Event,
    staff: Staff | None,
    now: datetime,
    cards_only: bool = False,
    address: str | None = None,
) -> CheckInResult:
    identity = request.identity
    phone = staff is None
    if phone and (identity.card or identity.participant_id):
        raise AppError(ErrorCode.forbidden)  # only staff check in other people
    others = (identity.device_token, identity.participant_id, identity.profile)
    if cards_only and (not identity.card or any(value is not None for value in others)):
        raise AppError(ErrorCode.forbidden)  # a kiosk reads personal cards, nothing else
    digest = fingerprint(
        event.id,
        identities.device_hash(identity.device_token) if identity.device_token else None,
        codes.card_number_of(identity.card or "") or identity.card,
        identity.participant_id,
        identity.profile,
        request.claimed_at,
    )
    replay = _replay(session, settings, event, request.key, digest)
    if replay is not None:
        return replay
    claimed_at = _phone_claim(settings, event, request, now) if phone else request.claimed_at
    at = claimed_time(event, settings, claimed_at, now, phone=phone)

    venue = session.get(Venue, event.venue_id)
    assert venue is not None, "events always have a venue (foreign key)"
    participant, credential, new_token, new = _who(session, settings, request, staff, phone, now, venue)
    earlier = None if new else existing_check_in(session, event.id or 0, participant.id or 0)
    if earlier is not None and earlier.nonce == request.key:
        # The same request sent twice at once (an outbox and Background Sync): the other copy committed
        # after this one looked for its key, so this is its replay, not a second visit.
        replay = _replay(session, settings, event, request.key, digest)
        assert replay is not None, "the key's check-in was just read"
        return replay
    if earlier is not None:
        raise AppError(
            ErrorCode.already_checked_in,
            check_in=earlier,
            participant=participant,
            checked_in_at=earlier.checked_in_at,
        )
    # Only a new person from an anonymous phone can be made up without limit: a known phone comes once per
    # event, and staff and kiosks are named on every record.
    source, suspicious = (
        flood.admit_new_person(session, settings, event, address, now) if phone and new else (None, False)
    )
    # Where the person told us who they are, if no place was known (a new person's is set as they are made).
    identities.place_name(participant, venue.unit_id)
    commune_id, village_id = place_of(session, venue, at.astimezone(settings.tz).date())
    record = CheckIn(
        event_id=event.id or 0,
        participant_id=participant.id or 0,
        nonce=request.key,
        fingerprint=digest,
        channel=request.channel,
        credential_id=credential.id if credential else None,
        checked_in_at=at,
        received_at=now,
        late=now - at > LATE_AFTER,
        recorded_by_id=staff.id if staff else None,
        venue_id=venue.id or 0,
        venue_type=venue.type,
        commune_id=commune_id,
        village_id=village_id,
        age_band=participant.age_band,
        gender=participant.gender,
        source=source,
        suspicious=suspicious,
    )
    insert_row(session, record)
    insert_row(
        session,
        attempts.attempt_row(
            request.channel,
            event,
            request.key,
            "accepted",
            now,
            staff,
            participant_id=participant.id,
            check_in_id=record.id,
        ),
    )
    session.commit()
    return CheckInResult(
        check_in=record,
        participant=participant,
        created=True,
        event=event,
        venue=venue,
        device_token=new_token,
    )


def _phone_claim(settings: Settings, event: Event, request: CheckInRequest, now: datetime) -> datetime | None:
    """When an anonymous phone scanned, and the rotating-code rule: the page's scan pass says when the page
    was opened (its screen code was checked then); the API checks the screen code on arrival; an outbox
    synced later cannot prove it saw the screen in time."""
    if request.channel == Channel.page and request.rotation:
        scanned = scans.pass_time(settings, event, request.rotation)
        if scanned is not None and timedelta(0) <= now - scanned <= scans.SCAN_PASS_LIFETIME:
            return scanned
        if event.checkin_mode == CheckInMode.rotating:
            raise AppError(ErrorCode.rotating_code_stale, event=event)
        return request.claimed_at
    if request.channel in PUBLIC_CHANNELS:
        scans.check_rotation(event, settings, request.rotation, now)
    elif event.checkin_mode == CheckInMode.rotating:
        raise AppError(ErrorCode.rotating_code_required, event=event)
    return request.claimed_at


def _who(
    session: Session,
    settings: Settings,
    request: CheckInRequest,
    staff: Staff | None,
    phone: bool,
    now: datetime,
    venue: Venue,
) -> tuple[Participant, Credential | None, str | None, bool]:
    """The participant behind the identity, the credential used, a new device token if one was made, and
    whether the participant is new (and so has no check-in to look for)."""
    identity = request.identity
    if identity.card:
        card = identities.card_credential(session, settings, identity.card)
        holder = session.get(Participant, card.participant_id)
        assert holder is not None
        return holder, card, None, False
    if identity.participant_id is not None:
        assert staff is not None
        return identities.get_participant(session, staff, identity.participant_id), None, None, False
    if identity.device_token:
        known = identities.device_owner(session, identity.device_token)
        if known is not None:
            phone_credential, owner = known
            if phone_credential.revoked_at is not None:
                raise AppError(ErrorCode.credential_revoked)
            return owner, phone_credential, None, False
    if identity.profile is None:
        raise AppError(ErrorCode.profile_required)
    participant = identities.new_participant(session, identity.profile, now, venue.unit_id)
    if not phone and not identity.device_token:
        return participant, None, None, True  # a staff entry for someone without a phone or card
    new_token = (
        None if identities.valid_device_token(identity.device_token) else _token_for(settings, request.key)
    )
    token = new_token or identity.device_token or ""
    return participant, identities.add_device(session, participant, token, now), new_token, True


def _token_for(settings: Settings, key: str) -> str:
    """The device token the server makes for a new phone, derived from the request's key: a retry whose
    first answer was lost gets the same token back, instead of the phone becoming a second person."""
    mac = hmac.new(settings.secret_key.encode(), f"device:{key}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac[:24]).decode()


def _replay(
    session: Session, settings: Settings, event: Event, key: str, digest: str
) -> CheckInResult | None:
    earlier = session.exec(select(CheckIn).where(CheckIn.nonce == key)).first()
    if earlier is None:
        return None
    if earlier.event_id != event.id or (earlier.fingerprint not in (None, digest)):
        raise AppError(ErrorCode.key_reused, event=event)
    participant = session.get(Participant, earlier.participant_id)
    assert participant is not None
    token = _token_for(settings, key)
    credential = session.get(Credential, earlier.credential_id) if earlier.credential_id else None
    made = credential is not None and credential.lookup == identities.device_hash(token)
    venue = session.get(Venue, event.venue_id)
    assert venue is not None, "events always have a venue (foreign key)"
    return CheckInResult(
        check_in=earlier,
        participant=participant,
        created=False,
        event=event,
        venue=venue,
        device_token=token if made else None,
    )


def existing_check_in(session: Session, event_id: int, participant_id: int) -> CheckIn | None:
    """The participant's check-in at the event, if any (what the page shows a returning phone)."""
    return session.exec(
        select(CheckIn).where(CheckIn.event_id == event_id, CheckIn.participant_id == participant_id)
    ).first()


def place_of(session: Session, venue: Venue, day: date | None = None) -> tuple[int | None, int | None]:
    """The commune and village of a venue on `day` (the record's own local day; today's tree if None),
    copied into each record: a late batch from before a move keeps the place it had then."""
    unit_id = places_history.venue_unit_on(session, venue.id or 0, day) if day is not None else None
    unit = session.get(OrgUnit, unit_id if unit_id is not None else venue.unit_id)
    if unit is None:
        return None, None
    if unit.kind == UnitKind.village:
        return unit.parent_id, unit.id
    if unit.kind == UnitKind.commune:
        return unit.id, None
    return None, None
