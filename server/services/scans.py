"""What a check-in code opens: an event's signed code and link, its check-in window, the rotating screen
code, and the pass the resident's page carries from the scan to the button. The engine
(services/checkin.py) applies these rules to every channel; the resident's page opens scans here."""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime, timedelta

from sqlmodel import Session, select

from server import codes, rotation
from server.config import Settings
from server.errors import AppError, ErrorCode
from server.models import Channel, CheckInMode, Event, EventStatus, shifted, utcnow
from server.services.attempts import log_attempt

# The resident's page: from opening it (the scan) to pressing the button.
SCAN_PASS_LIFETIME = timedelta(minutes=30)


def check_in_window(event: Event, settings: Settings) -> tuple[datetime, datetime]:
    margin = timedelta(minutes=settings.checkin_margin_minutes)
    return shifted(event.starts_at, -margin), shifted(event.ends_at, margin)


def code_for(event: Event, settings: Settings) -> str:
    return codes.make_code(settings.secret_key, event.id or 0, event.starts_at, event.ends_at)


def link_for(event: Event, settings: Settings) -> str:
    """The check-in link printed in the QR code: `BASE_URL/c/<code>`."""
    return f"{settings.base_url}/c/{code_for(event, settings)}"


def rotation_key(event: Event, settings: Settings) -> str:
    """The per-event key the screen page computes its changing codes from (never the server's secret)."""
    return rotation.event_key(settings.secret_key, event.id or 0, event.starts_at, event.ends_at)


def event_from_code(
    session: Session, settings: Settings, raw_code: str, *, now: datetime | None = None
) -> Event:
    """The event a check-in code opens, or a coded refusal (forged, unknown, cancelled, too early or late)."""
    event = event_by_code(session, settings, raw_code)
    ensure_open(event, settings, now or utcnow())
    return event


def open_scan(
    session: Session, settings: Settings, raw_code: str, token: str | None, *, now: datetime | None = None
) -> tuple[Event, str]:
    """A phone opened the check-in page: the event and a signed pass saying when, which the page posts
    back. On a rotating-code event the screen's token must be current (or one step old)."""
    now = now or utcnow()
    try:
        event = event_from_code(session, settings, raw_code, now=now)
        check_rotation(event, settings, token, now)
    except AppError as error:
        log_attempt(session, Channel.page, error.extra.get("event"), None, error.code.value, now)
        raise
    return event, scan_pass(settings, event, now)


def event_by_code(
    session: Session, settings: Settings, raw_code: str, *, lock: bool = False, exclusive: bool = False
) -> Event:
    code = codes.normalize(raw_code or "")
    event_id = codes.event_id_of(code) if code else None
    event = load_event(session, event_id, lock=lock, exclusive=exclusive) if event_id else None
    if (
        code is None
        or event is None
        or not codes.signature_matches(
            settings.secret_key, code, event.id or 0, event.starts_at, event.ends_at
        )
    ):
        raise AppError(ErrorCode.code_invalid)
    return event


def load_event(session: Session, event_id: int, *, lock: bool, exclusive: bool = False) -> Event | None:
    """The event as the database has it now; with `lock`, inside the write (after BEGIN IMMEDIATE on
    SQLite; on PostgreSQL FOR SHARE, or FOR UPDATE when `exclusive`), so a cancel or a move cannot slip in
    before the check-in is stored. Check-ins only add rows next to the event, so they share the lock and
    run side by side; whatever changes the event (an edit, a cancel: an UPDATE) or must see no check-in
    arrive meanwhile (`exclusive`) waits for them, and they for it."""
    if not lock:
        return session.get(Event, event_id)
    statement = select(Event).where(Event.id == event_id).with_for_update(read=not exclusive)
    return session.exec(statement.execution_options(populate_existing=True)).first()


def ensure_open(event: Event, settings: Settings, at: datetime) -> None:
    if event.status == EventStatus.cancelled:
        raise AppError(ErrorCode.event_cancelled, event=event)
    opens_at, closes_at = check_in_window(event, settings)
    if at < opens_at:
        raise AppError(ErrorCode.code_not_yet_valid, event=event, opens_at=opens_at)
    if at > closes_at:
        raise AppError(ErrorCode.code_expired, event=event)


def scan_pass(settings: Settings, event: Event, at: datetime) -> str:
    stamp = str(int(at.timestamp()))
    mac = hmac.new(settings.secret_key.encode(), f"pass:{event.id}:{stamp}".encode(), hashlib.sha256)
    return f"{stamp}.{mac.hexdigest()[:16]}"


def pass_time(settings: Settings, event: Event, value: str) -> datetime | None:
    stamp, _, _mac = value.partition(".")
    if not stamp.isdigit() or len(stamp) > 12:
        return None
    at = datetime.fromtimestamp(int(stamp), tz=event.starts_at.tzinfo)
    return at if hmac.compare_digest(scan_pass(settings, event, at), value) else None


def check_rotation(event: Event, settings: Settings, token: str | None, now: datetime) -> None:
    if event.checkin_mode == CheckInMode.poster:
        return
    if not token:
        if event.checkin_mode == CheckInMode.rotating:
            raise AppError(ErrorCode.rotating_code_required, event=event)
        return
    if not rotation.accepts(rotation_key(event, settings), token, now):
        raise AppError(ErrorCode.rotating_code_stale, event=event)
