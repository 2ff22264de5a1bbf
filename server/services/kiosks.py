"""Kiosk devices: an organizer's phone that scans residents' personal cards at one venue.

Staff enrol a device for a venue they may use and get an 8-digit pairing code (single use, 15 minutes,
kept as a hash). The phone types it (or scans its QR code) and gets a long-lived device token, also kept
as a hash. The token is not a staff session: it only checks people in by card and changes headcounts at
its venue's events, through the same engine as every other channel, acting as the staff member who
enrolled it. Revoking the device, a new pairing code or deactivating that staff member stops it at once.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from dataclasses import dataclass, replace
from datetime import UTC, datetime, time, timedelta

from sqlmodel import Session, col, select

from server.auth import can_use_venue, venue_scope_clause
from server.config import Settings
from server.db import begin_write
from server.errors import N_, AppError, ErrorCode, FormError
from server.models import Channel, Event, EventStatus, KioskDevice, OrgUnit, Staff, Venue
from server.services import sync
from server.services.checkin import CheckInRequest
from server.services.headcounts import HeadcountRequest

logger = logging.getLogger(__name__)

TOKEN_PREFIX = "ddk_"
PAIRING_LIFETIME = timedelta(minutes=15)
# A busy kiosk sends every few seconds: note it was seen at most once a minute, not on every request.
SEEN_EVERY = timedelta(minutes=1)
MAX_NAME = 60


@dataclass(frozen=True)
class DeviceRow:
    device: KioskDevice
    venue: Venue
    enrolled_by: Staff


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def normalize_code(raw: str) -> str | None:
    """The 8 digits of a typed pairing code ("1234 5678", "1234-5678"), or None."""
    code = "".join((raw or "").replace("-", " ").split())
    return code if len(code) == 8 and code.isascii() and code.isdigit() else None


def pretty_code(code: str) -> str:
    """A pairing code as shown: "1234 5678"."""
    return f"{code[:4]} {code[4:]}"


def _venue_for(session: Session, staff: Staff, venue_id: int | None) -> Venue:
    venue = session.get(Venue, venue_id) if venue_id else None
    if venue is None:
        raise AppError(ErrorCode.not_found)
    if not can_use_venue(session, staff, venue):
        raise AppError(ErrorCode.forbidden)
    return venue


def _device_for(session: Session, staff: Staff, device_id: int) -> KioskDevice:
    device = session.get(KioskDevice, device_id)
    if device is None:
        raise AppError(ErrorCode.not_found)
    _venue_for(session, staff, device.venue_id)
    return device


def _set_pairing_code(session: Session, device: KioskDevice, now: datetime) -> str:
    """A fresh code for the device, unlike any other code still open (two open codes must never match)."""
    while True:
        code = f"{secrets.randbelow(10**8):08d}"
        taken = select(KioskDevice.id).where(
            KioskDevice.pairing_hash == _digest(code), col(KioskDevice.pairing_expires_at) > now
        )
        if session.exec(taken).first() is None:
            break
    device.pairing_hash = _digest(code)
    device.pairing_expires_at = now + PAIRING_LIFETIME
    return code


def enrol_device(
    session: Session, staff: Staff, venue_id: int | None, name: str, now: datetime
) -> tuple[KioskDevice, str]:
    """A new kiosk at a venue the staff member may use, and its first pairing code (shown once)."""
    name = " ".join((name or "").split())
    if not name:
        raise FormError({"name": N_("Give the phone a name, for example “Phone at the library door”.")})
    if len(name) > MAX_NAME:
        raise FormError({"name": N_("The name is too long (at most 60 characters).")})
    venue = _venue_for(session, staff, venue_id)
    # The same form sent again (a reload, a double tap) while its code is still waiting: the same kiosk
    # with a fresh code, not a second kiosk.
    waiting = session.exec(
        select(KioskDevice).where(
            KioskDevice.enrolled_by_id == staff.id,
            KioskDevice.venue_id == venue.id,
            KioskDevice.name == name,
            col(KioskDevice.paired_at).is_(None),
            col(KioskDevice.revoked_at).is_(None),
            col(KioskDevice.pairing_expires_at) > now,
        )
    ).first()
    device = waiting or KioskDevice(
        name=name, venue_id=venue.id or 0, enrolled_by_id=staff.id or 0, created_at=now
    )
    code = _set_pairing_code(session, device, now)
    session.add(device)
    session.commit()
    session.refresh(device)
    if waiting:
        logger.info("kiosk %s: enrolment sent again by staff %s, a new code", device.id, staff.id)
    else:
        logger.info("kiosk %s enrolled at venue %s by staff %s", device.id, venue.id, staff.id)
    return device, code


def new_pairing_code(session: Session, staff: Staff, device_id: int, now: datetime) -> str:
    """A new pairing code for the device (pairing again, or another phone). Its token stops at once: the
    phone that pairs with this code gets a new one."""
    device = _device_for(session, staff, device_id)
    if device.revoked_at is not None:
        raise AppError(ErrorCode.forbidden)
    code = _set_pairing_code(session, device, now)
    device.token_hash = None
    session.add(device)
    session.commit()
    logger.info("kiosk %s: new pairing code by staff %s, its token stopped", device.id, staff.id)
    return code


def pair_device(session: Session, code: str, now: datetime) -> tuple[KioskDevice, str]:
    """Trade a pairing code for the device's token (shown once, kept by the phone as a cookie)."""
    digits = normalize_code(code)
    if digits is None:
        raise AppError(ErrorCode.pairing_code_invalid)
    begin_write(session)  # two phones typing the same code at once: one wins, the other is refused
    device = session.exec(
        select(KioskDevice)
        .where(KioskDevice.pairing_hash == _digest(digits))
        .order_by(col(KioskDevice.id).desc())
        .with_for_update()
        .execution_options(populate_existing=True)
    ).first()
    expires = device.pairing_expires_at if device else None
    if device is None or device.revoked_at is not None or expires is None or expires <= now:
        session.rollback()
        logger.info("kiosk pairing refused")
        raise AppError(ErrorCode.pairing_code_invalid)
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    device.token_hash = _digest(token)
    device.pairing_hash = None
    device.pairing_expires_at = None
    device.paired_at = now
    device.last_seen_at = now
    session.add(device)
    session.commit()
    logger.info("kiosk %s paired", device.id)
    return device, token


def device_from_token(session: Session, token: str, now: datetime) -> KioskDevice:
    """The kiosk a token belongs to, or `device_revoked` (unknown, revoked, or its staff member is gone)."""
    device = session.exec(select(KioskDevice).where(KioskDevice.token_hash == _digest(token or ""))).first()
    if device is None or device.revoked_at is not None:
        raise AppError(ErrorCode.device_revoked)
    enrolling_staff(session, device)
    if device.last_seen_at is None or now - device.last_seen_at > SEEN_EVERY:
        device.last_seen_at = now
        session.add(device)
        session.commit()
    return device


def revoke_device(session: Session, staff: Staff, device_id: int, now: datetime) -> KioskDevice:
    """Retire a kiosk: its token stops at once and it can never pair again."""
    device = _device_for(session, staff, device_id)
    if device.revoked_at is None:
        device.revoked_at = now
        device.revoked_by_id = staff.id
        device.pairing_hash = None
        device.pairing_expires_at = None
        session.add(device)
        session.commit()
        logger.info("kiosk %s revoked by staff %s", device.id, staff.id)
    return device


def list_devices(session: Session, staff: Staff) -> list[DeviceRow]:
    """Kiosks at the venues the staff member may use, newest first."""
    statement = (
        select(KioskDevice, Venue, Staff)
        .join(Venue, col(Venue.id) == KioskDevice.venue_id)
        .join(OrgUnit, col(OrgUnit.id) == Venue.unit_id)
        .join(Staff, col(Staff.id) == KioskDevice.enrolled_by_id)
        .where(venue_scope_clause(session, staff))
        .order_by(col(KioskDevice.created_at).desc(), col(KioskDevice.id).desc())
    )
    return [DeviceRow(device, venue, by) for device, venue, by in session.exec(statement)]


def enrolling_staff(session: Session, device: KioskDevice) -> Staff:
    """Whom the kiosk acts as; a deactivated staff member's kiosks stop with them."""
    staff = session.get(Staff, device.enrolled_by_id)
    if staff is None or not staff.active:
        raise AppError(ErrorCode.device_revoked)
    return staff


def kiosk_events(session: Session, settings: Settings, device: KioskDevice, now: datetime) -> list[Event]:
    """The venue's events a kiosk offers: not cancelled, and their check-in window (start - margin to
    end + margin, as scans.ensure_open decides) touches today's local day (an event open now always
    does), ordered by start."""
    margin = timedelta(minutes=settings.checkin_margin_minutes)
    today = now.astimezone(settings.tz).date()
    day_start = datetime.combine(today, time(), settings.tz).astimezone(UTC)
    day_end = day_start + timedelta(days=1)
    statement = (
        select(Event)
        .where(
            Event.venue_id == device.venue_id,
            Event.status != EventStatus.cancelled,
            col(Event.starts_at) < day_end + margin,
            col(Event.ends_at) >= day_start - margin,
        )
        .order_by(col(Event.starts_at), col(Event.id))
    )
    return list(session.exec(statement))


def run_batch(
    session: Session,
    settings: Settings,
    device: KioskDevice,
    items: list[CheckInRequest | HeadcountRequest | AppError],
    keys: list[str],
    now: datetime,
) -> list[sync.Outcome]:
    """A kiosk's batch: the same engine as every channel, as its enrolling staff member on the kiosk
    channel; the engine refuses (and logs) an event at another venue and any identity but a card."""
    staff = enrolling_staff(session, device)
    items = [item if isinstance(item, AppError) else replace(item, channel=Channel.kiosk) for item in items]
    return sync.run_batch(
        session,
        settings,
        items,
        staff=staff,
        now=now,
        keys=keys,
        venue_id=device.venue_id,
        cards_only=True,
    )
