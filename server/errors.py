"""Coded errors. Each code maps to one message (translated at the edge) and one HTTP status."""

from __future__ import annotations

import sqlite3
from enum import StrEnum
from typing import Any

from sqlalchemy import exc as sa


def N_(message: str) -> str:
    """Mark a string for extraction; it is translated where it is shown."""
    return message


class ErrorCode(StrEnum):
    not_found = "not_found"
    login_required = "login_required"
    forbidden = "forbidden"
    csrf_failed = "csrf_failed"
    invalid_input = "invalid_input"
    invalid_credentials = "invalid_credentials"
    code_invalid = "code_invalid"
    code_expired = "code_expired"
    code_not_yet_valid = "code_not_yet_valid"
    event_cancelled = "event_cancelled"
    already_checked_in = "already_checked_in"
    consent_required = "consent_required"
    name_not_allowed_for_child = "name_not_allowed_for_child"
    profile_required = "profile_required"
    import_failed = "import_failed"
    conflict = "conflict"
    invalid_key = "invalid_key"
    key_reused = "key_reused"
    clock_skew = "clock_skew"
    sync_too_late = "sync_too_late"
    card_invalid = "card_invalid"
    credential_revoked = "credential_revoked"
    rotating_code_required = "rotating_code_required"
    rotating_code_stale = "rotating_code_stale"
    headcount_below_zero = "headcount_below_zero"
    pairing_code_invalid = "pairing_code_invalid"
    device_revoked = "device_revoked"
    token_read_only = "token_read_only"
    login_throttled = "login_throttled"
    pairing_throttled = "pairing_throttled"
    invalid_characters = "invalid_characters"
    unknown_reference = "unknown_reference"
    out_of_range = "out_of_range"
    method_not_allowed = "method_not_allowed"
    payload_too_large = "payload_too_large"
    unsupported_media_type = "unsupported_media_type"
    database_busy = "database_busy"
    checkin_busy = "checkin_busy"


STATUS: dict[ErrorCode, int] = {
    ErrorCode.not_found: 404,
    ErrorCode.login_required: 401,
    ErrorCode.forbidden: 403,
    ErrorCode.csrf_failed: 403,
    ErrorCode.invalid_input: 422,
    ErrorCode.invalid_credentials: 401,
    ErrorCode.code_invalid: 404,
    ErrorCode.code_expired: 410,
    ErrorCode.code_not_yet_valid: 403,
    ErrorCode.event_cancelled: 410,
    ErrorCode.already_checked_in: 409,
    ErrorCode.consent_required: 422,
    ErrorCode.name_not_allowed_for_child: 422,
    ErrorCode.profile_required: 422,
    ErrorCode.import_failed: 422,
    ErrorCode.conflict: 409,
    ErrorCode.invalid_key: 422,
    ErrorCode.key_reused: 409,
    ErrorCode.clock_skew: 422,
    ErrorCode.sync_too_late: 410,
    ErrorCode.card_invalid: 404,
    ErrorCode.credential_revoked: 410,
    ErrorCode.rotating_code_required: 403,
    ErrorCode.rotating_code_stale: 410,
    ErrorCode.headcount_below_zero: 409,
    ErrorCode.pairing_code_invalid: 422,
    ErrorCode.device_revoked: 401,
    ErrorCode.token_read_only: 403,
    ErrorCode.login_throttled: 429,
    ErrorCode.pairing_throttled: 429,
    ErrorCode.invalid_characters: 422,
    ErrorCode.unknown_reference: 422,
    ErrorCode.out_of_range: 422,
    ErrorCode.method_not_allowed: 405,
    ErrorCode.payload_too_large: 413,
    ErrorCode.unsupported_media_type: 415,
    ErrorCode.database_busy: 503,
    ErrorCode.checkin_busy: 429,
}

MESSAGES: dict[ErrorCode, str] = {
    ErrorCode.not_found: N_("We could not find this page."),
    ErrorCode.login_required: N_("Please log in to continue."),
    ErrorCode.forbidden: N_("You do not have permission to do this."),
    ErrorCode.csrf_failed: N_("This request came from another site and was refused."),
    ErrorCode.invalid_input: N_("Some of the information is not valid. Please check the form."),
    ErrorCode.invalid_credentials: N_("Wrong username or password."),
    ErrorCode.code_invalid: N_(
        "This check-in code is not valid. Please scan the QR code on the poster again."
    ),
    ErrorCode.code_expired: N_("Check-in for this event has closed."),
    ErrorCode.code_not_yet_valid: N_("Check-in for this event has not opened yet."),
    ErrorCode.event_cancelled: N_("This event has been cancelled."),
    ErrorCode.already_checked_in: N_("You have already checked in."),
    ErrorCode.consent_required: N_("Please tick the box to agree before checking in."),
    ErrorCode.name_not_allowed_for_child: N_(
        "We do not record names of people under 16. Please leave the name empty."
    ),
    ErrorCode.profile_required: N_("Please choose your age group and gender."),
    ErrorCode.import_failed: N_("The file was not imported. Nothing was saved."),
    ErrorCode.conflict: N_("This conflicts with data that already exists."),
    ErrorCode.invalid_key: N_("The request has no valid key. Please reload the page and try again."),
    ErrorCode.key_reused: N_("This key was already used for a different check-in. Nothing was changed."),
    ErrorCode.clock_skew: N_(
        "The time of the scan lies in the future. Please check the date and time of the device."
    ),
    ErrorCode.sync_too_late: N_("This check-in reached the server too late to be counted."),
    ErrorCode.card_invalid: N_("This card number is not valid. Please check the number on the card."),
    ErrorCode.credential_revoked: N_(
        "This card or phone has been cancelled. Please ask the organizer for a new card."
    ),
    ErrorCode.rotating_code_required: N_(
        "This event uses a code that changes on the organizer's screen. Please scan that code."
    ),
    ErrorCode.rotating_code_stale: N_(
        "The code you scanned has already changed. Please scan the code on the screen again."
    ),
    ErrorCode.headcount_below_zero: N_("The count cannot go below zero."),
    ErrorCode.pairing_code_invalid: N_(
        "This pairing code is not valid or has expired. Ask for a new code on the kiosks page."
    ),
    ErrorCode.device_revoked: N_(
        "This phone is no longer a kiosk: it was revoked or never paired. "
        "Ask a staff member to pair it again."
    ),
    ErrorCode.token_read_only: N_(
        "This API token is read-only: it can read data but not change anything. "
        "Create a token with write access on your account page."
    ),
    ErrorCode.login_throttled: N_("Too many failed logins. Please wait a few minutes and try again."),
    ErrorCode.pairing_throttled: N_(
        "Too many wrong pairing codes from this phone's network. Please wait a few minutes and try again."
    ),
    ErrorCode.invalid_characters: N_(
        "The text holds invisible control characters (such as a NUL byte). Please type it again."
    ),
    ErrorCode.unknown_reference: N_(
        "Something this refers to does not exist (a unit, venue or person). Please choose it again."
    ),
    ErrorCode.out_of_range: N_("A number or date is outside the range this app accepts."),
    ErrorCode.method_not_allowed: N_("This address does not accept this kind of request."),
    ErrorCode.payload_too_large: N_("What was sent is too large. Please send a smaller file."),
    ErrorCode.unsupported_media_type: N_(
        "This address does not accept data in this format. The API takes JSON; pages take forms."
    ),
    ErrorCode.database_busy: N_(
        "The database is busy or cannot be reached. Nothing was saved. Please try again in a moment."
    ),
    ErrorCode.checkin_busy: N_(
        "Too many new people are checking in from this network right now. "
        "Please wait a minute, then press the button again."
    ),
}


class AppError(Exception):
    """A refusal with a code; `detail` is an extra, already translated or user-supplied explanation."""

    def __init__(
        self, code: ErrorCode, detail: str | None = None, *, status: int | None = None, **extra: Any
    ) -> None:
        super().__init__(code.value if detail is None else f"{code.value}: {detail}")
        self.code = code
        self.detail = detail
        self.status = status or STATUS[code]
        self.extra = extra


class FormError(AppError):
    """Invalid form input: field name -> message id, shown next to each field."""

    def __init__(self, fields: dict[str, str]) -> None:
        super().__init__(ErrorCode.invalid_input, fields=fields)
        self.fields = fields


RETRY_AFTER_SECONDS = 10  # what a 503 asks clients to wait: a lock or a database restart is short


def database_refusal(exc: Exception) -> AppError | None:
    """The coded refusal for an error the database raised that no service handled, or None for a bug.

    Unknown foreign keys and unique clashes are the caller's input (422, 409); a number or text the
    database cannot hold (an id past 32 bits, a NUL byte on PostgreSQL) is out of range; a lock held
    past the busy timeout or a server that cannot be reached is a 503 the client may retry.
    """
    if isinstance(exc, sa.IntegrityError):
        text = str(exc.orig).lower()
        if "foreign key" in text:
            return AppError(ErrorCode.unknown_reference)
        if "unique" in text or "duplicate key" in text:
            return AppError(ErrorCode.conflict)
        return None
    if isinstance(exc, sa.DataError):
        return AppError(ErrorCode.out_of_range)
    if isinstance(exc, OverflowError) and "sqlite" in str(exc).lower():
        # pysqlite's own check, before any SQL runs: "Python int too large to convert to SQLite INTEGER".
        return AppError(ErrorCode.out_of_range)
    if isinstance(exc, sa.OperationalError | sa.TimeoutError | sqlite3.OperationalError) or (
        isinstance(exc, sa.DBAPIError) and exc.connection_invalidated
    ):
        # sqlite3's own error comes from db.begin_write's BEGIN IMMEDIATE, run on the raw connection.
        return AppError(ErrorCode.database_busy)
    return None
