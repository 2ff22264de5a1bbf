"""Rotating screen codes: a QR code on the organizer's screen that changes every 20 seconds.

The printed poster's link works for the whole event, so a photo of it forwarded to a group chat lets
people check in from home. The screen adds a short token to that link which changes every PERIOD
seconds, and the server accepts only the current and the previous step, so a forwarded photo stops
working within 20 to 40 seconds.

The screen computes the token itself, with no network, from a per-event key that came with the page:
an HMAC of the server's secret over the event id and its time window (moving the event changes the key,
like the check-in code in server/codes.py). The page never sees the secret, and a key only opens its own
event. static/js/rotation.js must compute exactly the same tokens (a browser test checks it).

The trade-off: the resident must be online when scanning, because the token is checked against the
server's clock within seconds. Organizers without signal put up the printed poster instead.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime

from server.codes import ALPHABET, normalize

PERIOD = 20
TOKEN_LENGTH = 6  # 30 bits


def event_key(secret: str, event_id: int, starts_at: datetime, ends_at: datetime) -> str:
    """The event's rotation key (64 hex characters) that the screen page loads; never the secret itself."""
    message = f"rotate:{event_id}:{int(starts_at.timestamp())}:{int(ends_at.timestamp())}".encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def step_at(moment: datetime) -> int:
    """The number of whole periods since the Unix epoch."""
    return int(moment.timestamp() // PERIOD)


def token(key_hex: str, step: int) -> str:
    """The 6-character Crockford token of one step: the first 30 bits of HMAC-SHA256(key, str(step))."""
    digest = hmac.new(bytes.fromhex(key_hex), str(step).encode("ascii"), hashlib.sha256).digest()
    number = int.from_bytes(digest[:4], "big") >> 2
    chars = []
    for _ in range(TOKEN_LENGTH):
        number, rest = divmod(number, 32)
        chars.append(ALPHABET[rest])
    return "".join(reversed(chars))


def accepts(key_hex: str, raw_token: str, now: datetime) -> bool:
    """True for the token of the current or the previous step, typed in any case and with O/I/L."""
    cleaned = normalize(raw_token)
    if cleaned is None or len(cleaned) != TOKEN_LENGTH:
        return False
    current = step_at(now)
    # Check both steps every time, so the answer takes as long whichever one matches.
    matches = [hmac.compare_digest(cleaned, token(key_hex, step)) for step in (current, current - 1)]
    return any(matches)
