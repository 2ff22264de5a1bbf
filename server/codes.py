"""Check-in codes: short, unguessable, signed by the server, bound to an event and its time window.

A code is the event id in Crockford base32 followed by 8 characters (40 bits) of an HMAC over the
event id and its start and end. No JWT goes into the QR code: a short link is a small QR version that
cheap cameras read from afar. Changing the event's time changes the code, so an old poster cannot
open check-in at the wrong time.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
MAC_LENGTH = 8
_DECODE = {ch: i for i, ch in enumerate(ALPHABET)}
# Crockford's forgiving reading: people type O for 0 and I or L for 1.
_DECODE.update({"O": 0, "I": 1, "L": 1})


def _b32(number: int, width: int = 1) -> str:
    digits = []
    while number:
        number, rest = divmod(number, 32)
        digits.append(ALPHABET[rest])
    return "".join(reversed(digits)).rjust(width, "0")


def _mac(secret: str, event_id: int, starts_at: datetime, ends_at: datetime) -> str:
    message = f"checkin:{event_id}:{int(starts_at.timestamp())}:{int(ends_at.timestamp())}".encode()
    digest = hmac.new(secret.encode(), message, hashlib.sha256).digest()
    return _b32(int.from_bytes(digest[:5], "big"), MAC_LENGTH)


def make_code(secret: str, event_id: int, starts_at: datetime, ends_at: datetime) -> str:
    """The compact code that goes into the link (`/c/<code>`)."""
    return _b32(event_id) + _mac(secret, event_id, starts_at, ends_at)


def normalize(raw: str) -> str | None:
    """Upper-case Crockford characters without separators, or None if something else is in there."""
    cleaned = "".join(ch for ch in raw.strip().upper() if ch not in "- ")
    if not cleaned or any(ch not in _DECODE for ch in cleaned):
        return None
    return "".join(ALPHABET[_DECODE[ch]] for ch in cleaned)


def event_id_of(code: str) -> int | None:
    """The event id a (normalized) code claims, before any check of its signature."""
    if len(code) <= MAC_LENGTH or len(code) > MAC_LENGTH + 7 or code.startswith(CLUB_PREFIX):
        return None
    number = 0
    for ch in code[:-MAC_LENGTH]:
        number = number * 32 + _DECODE[ch]
    return number or None


def signature_matches(secret: str, code: str, event_id: int, starts_at: datetime, ends_at: datetime) -> bool:
    return hmac.compare_digest(code[-MAC_LENGTH:], _mac(secret, event_id, starts_at, ends_at))


# A club's permanent code: "0", the club id in base32, 8 characters of HMAC over the club id alone (no time:
# the poster stays on the wall all year). An event code never starts with 0 (its id has no leading zero),
# so the two kinds cannot collide, and the MACs are over different messages.
CLUB_PREFIX = "0"


def _club_mac(secret: str, club_id: int) -> str:
    digest = hmac.new(secret.encode(), f"club:{club_id}".encode(), hashlib.sha256).digest()
    return _b32(int.from_bytes(digest[:5], "big"), MAC_LENGTH)


def make_club_code(secret: str, club_id: int) -> str:
    return CLUB_PREFIX + _b32(club_id) + _club_mac(secret, club_id)


def is_club_code(code: str) -> bool:
    """Whether a normalized code has the shape of a club code (before any check of its signature)."""
    return code.startswith(CLUB_PREFIX) and MAC_LENGTH + 1 < len(code) <= MAC_LENGTH + 8


def club_id_of(code: str, secret: str) -> int | None:
    """The club a normalized club code opens, or None if it is not one or its signature is wrong."""
    if not is_club_code(code):
        return None
    number = 0
    for ch in code[1:-MAC_LENGTH]:
        number = number * 32 + _DECODE[ch]
    if not number or not hmac.compare_digest(code[-MAC_LENGTH:], _club_mac(secret, number)):
        return None
    return number


def pretty(code: str) -> str:
    """Groups of four from the right, for people to read and type: `1Z-3F9Q-X2MA`."""
    groups = []
    while code:
        groups.append(code[-4:])
        code = code[:-4]
    return "-".join(reversed(groups))


# Personal cards: 7 random characters (35 bits) and 3 of HMAC (15 bits). Ten characters are quick to type
# from a card; a made-up number fails the HMAC before any database look-up, and a guess that passes it
# must still be a number that was issued.
CARD_RANDOM = 7
CARD_MAC = 3
CARD_PREFIX = "DIEMDANH:"  # upper case: the card's QR code stays in alphanumeric mode, version 1


def _card_mac(secret: str, body: str) -> str:
    digest = hmac.new(secret.encode(), f"card:{body}".encode(), hashlib.sha256).digest()
    return _b32(int.from_bytes(digest[:2], "big") >> 1, CARD_MAC)


def make_card_number(secret: str) -> str:
    """A new random card number, signed by the server."""
    body = _b32(secrets.randbits(5 * CARD_RANDOM), CARD_RANDOM)
    return body + _card_mac(secret, body)


def card_number_of(raw: str) -> str | None:
    """The normalized number typed from a card or read from its QR code, or None if it cannot be one."""
    text = raw.strip()
    if text.upper().startswith(CARD_PREFIX):
        text = text[len(CARD_PREFIX) :]
    number = normalize(text)
    return number if number and len(number) == CARD_RANDOM + CARD_MAC else None


def card_signature_matches(secret: str, number: str) -> bool:
    return hmac.compare_digest(number[CARD_RANDOM:], _card_mac(secret, number[:CARD_RANDOM]))


def card_payload(number: str) -> str:
    """What a card's QR code holds."""
    return CARD_PREFIX + number
