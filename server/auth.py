"""Passwords, the session cookie (short-lived JWT naming a server-side session), API tokens and scope."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import jwt
from pwdlib import PasswordHash
from sqlalchemy import ColumnElement, true
from sqlmodel import Session, col, select

from server.config import Settings
from server.errors import AppError, ErrorCode
from server.models import ApiToken, OrgUnit, Role, Staff, StaffSession, Venue, utcnow
from server.services import audit

SESSION_COOKIE = "dd_session"
KIOSK_COOKIE = "dd_kiosk"  # a kiosk's device token (services/kiosks.py), never a staff session
TOKEN_PREFIX = "dd_"
_hasher = PasswordHash.recommended()
# Verified when the username is unknown, so a wrong name costs as long as a wrong password.
_DUMMY_HASH = _hasher.hash("not-a-real-password")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password: str, password_hash: str) -> bool:
    return _hasher.verify(password, password_hash)


def authenticate(session: Session, username: str, password: str) -> Staff:
    """The active staff member with these credentials, or `invalid_credentials`."""
    staff = session.exec(select(Staff).where(Staff.username == username.strip().lower())).first()
    if staff is None:
        verify_password(password, _DUMMY_HASH)
        raise AppError(ErrorCode.invalid_credentials)
    if not verify_password(password, staff.password_hash) or not staff.active:
        raise AppError(ErrorCode.invalid_credentials)
    return staff


def start_session(session: Session, staff: Staff, settings: Settings, *, now: datetime | None = None) -> str:
    """Open a server-side session and return the cookie value that names it."""
    now = now or utcnow()
    record = StaffSession(
        id=secrets.token_urlsafe(32),
        staff_id=staff.id or 0,
        created_at=now,
        expires_at=now + timedelta(hours=settings.session_hours),
    )
    session.add(record)
    session.commit()
    return encode_session_token(record, settings, now=now)


def encode_session_token(record: StaffSession, settings: Settings, *, now: datetime | None = None) -> str:
    now = now or utcnow()
    expires = min(now + timedelta(minutes=settings.token_minutes), record.expires_at)
    claims = {"sub": str(record.staff_id), "sid": record.id, "iat": now, "exp": expires}
    return jwt.encode(claims, settings.secret_key, algorithm="HS256")


@dataclass(frozen=True)
class SessionLookup:
    staff: Staff
    record: StaffSession
    # A fresh cookie value when the old token is more than half-way to its expiry (sliding renewal).
    renewed_token: str | None


def staff_from_session_cookie(
    session: Session, token: str, settings: Settings, *, now: datetime | None = None
) -> SessionLookup | None:
    """The logged-in staff member, if the token is valid and its server-side session is still open.

    An expired JWT is accepted for renewal as long as the server-side session lives: the short JWT
    lifetime bounds how long a stolen cookie works without the database, the session row bounds the rest.
    """
    now = now or utcnow()
    try:
        claims = jwt.decode(
            token,
            settings.secret_key,
            algorithms=["HS256"],
            options={"verify_exp": False, "require": ["sid"]},
        )
    except jwt.InvalidTokenError:
        return None
    record = session.get(StaffSession, claims["sid"])
    if record is None or record.revoked_at is not None or record.expires_at <= now:
        return None
    staff = session.get(Staff, record.staff_id)
    if staff is None or not staff.active or str(staff.id) != claims.get("sub"):
        return None
    exp = datetime.fromtimestamp(int(claims["exp"]), tz=now.tzinfo)
    half_life = timedelta(minutes=settings.token_minutes) / 2
    renewed = encode_session_token(record, settings, now=now) if exp - now < half_life else None
    return SessionLookup(staff=staff, record=record, renewed_token=renewed)


def end_session(session: Session, session_id: str, *, now: datetime | None = None) -> None:
    record = session.get(StaffSession, session_id)
    if record is not None and record.revoked_at is None:
        record.revoked_at = now or utcnow()
        session.add(record)
        session.commit()


def revoke_credentials(session: Session, staff_id: int, *, now: datetime | None = None) -> int:
    """End every open session and every API token of a staff member (password change, deactivation), in
    the caller's transaction. Tokens are revoked, not just ignored while the account is off, so turning
    the account back on brings none of them back: whoever had one must be given a new one."""
    now = now or utcnow()
    sessions = session.exec(
        select(StaffSession).where(StaffSession.staff_id == staff_id, col(StaffSession.revoked_at).is_(None))
    ).all()
    tokens = session.exec(
        select(ApiToken).where(ApiToken.staff_id == staff_id, col(ApiToken.revoked_at).is_(None))
    ).all()
    for record in [*sessions, *tokens]:
        record.revoked_at = now
        session.add(record)
    return len(sessions) + len(tokens)


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_api_token(
    session: Session, staff: Staff, name: str, *, read_only: bool = False
) -> tuple[ApiToken, str]:
    """A new bearer token; the plain value is returned once and only its hash is stored. A read-only
    token is refused on every request that is not GET or HEAD (`token_read_only`)."""
    plain = TOKEN_PREFIX + secrets.token_urlsafe(32)
    record = ApiToken(
        staff_id=staff.id or 0,
        name=name.strip()[:100] or "API",
        prefix=plain[:10],
        token_hash=_token_hash(plain),
        read_only=read_only,
    )
    session.add(record)
    session.flush()
    audit.record(session, staff, audit.Action.api_token_created, target_kind="api_token", target_id=record.id)
    session.commit()
    session.refresh(record)
    return record, plain


def revoke_api_token(session: Session, staff: Staff, token_id: int) -> None:
    record = session.get(ApiToken, token_id)
    if record is None or record.staff_id != staff.id:
        raise AppError(ErrorCode.not_found)
    record.revoked_at = record.revoked_at or utcnow()
    session.add(record)
    audit.record(session, staff, audit.Action.api_token_revoked, target_kind="api_token", target_id=record.id)
    session.commit()


READ_METHODS = frozenset({"GET", "HEAD"})


def staff_from_api_token(
    session: Session, plain: str, *, method: str = "GET", now: datetime | None = None
) -> Staff | None:
    """The staff member behind a live token; `token_read_only` for a read-only token on a write."""
    record = session.exec(select(ApiToken).where(ApiToken.token_hash == _token_hash(plain))).first()
    if record is None or record.revoked_at is not None:
        return None
    staff = session.get(Staff, record.staff_id)
    if staff is None or not staff.active:
        return None
    if record.read_only and method.upper() not in READ_METHODS:
        raise AppError(ErrorCode.token_read_only)
    now = now or utcnow()
    # Written at most once a minute, so a busy API client does not turn every read into a write.
    if record.last_used_at is None or now - record.last_used_at > timedelta(minutes=1):
        record.last_used_at = now
        session.add(record)
        session.commit()
    return staff


# --- Scope: which places a staff member may act on ---------------------------------------------------


def scope_path(session: Session, staff: Staff) -> str | None:
    """The path prefix of the staff member's unit, or None for an admin (everything)."""
    if staff.role == Role.admin:
        return None
    unit = session.get(OrgUnit, staff.unit_id) if staff.unit_id else None
    if unit is None:
        # A non-admin without a unit sees nothing: a path no unit has.
        return "/none/"
    return unit.path


def venue_scope_clause(session: Session, staff: Staff) -> ColumnElement[bool]:
    """A WHERE clause on Venue (joined with its OrgUnit) limiting to the staff member's scope."""
    path = scope_path(session, staff)
    if path is None:
        return true()
    return col(OrgUnit.path).startswith(path)


def can_use_venue(session: Session, staff: Staff, venue: Venue) -> bool:
    path = scope_path(session, staff)
    if path is None:
        return True
    unit = session.get(OrgUnit, venue.unit_id)
    return unit is not None and unit.path.startswith(path)


def require_role(staff: Staff, *roles: Role) -> None:
    if staff.role not in roles:
        raise AppError(ErrorCode.forbidden)
