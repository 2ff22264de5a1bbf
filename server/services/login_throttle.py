"""Login throttling (and kiosk pairing's): failed logins are counted in the database (table
login_throttle), so the limit holds whichever process answers (uvicorn --workers N), on SQLite and
PostgreSQL, without Redis. A kiosk's pairing code is throttled the same way, by address (`PAIRING`).

Each attempt is counted under three keys, each with its own rule (RULES):

- the account at this address: a few free tries, then growing delays up to 15 minutes. It stops one
  machine guessing one account, and it is the only key that can keep someone out for long;
- the account from anywhere: more free tries, and delays capped at 2 minutes, so guesses spread over many
  addresses are slowed down while the real user, coming from an address that has not been failing, waits
  2 minutes at worst: an attacker can never lock them out;
- the address, whatever account: many free tries, since a carrier's NAT puts a whole village behind one
  address, and delays capped at 5 minutes; it slows one machine trying many accounts.

The attempt is counted before the password is checked (one short transaction; the upsert's row lock, or
SQLite's write lock, orders attempts from any process), so concurrent guesses cannot slip through between
a check and a count; a success then takes its own count back. While any key is locked the attempt is
refused without checking the password (a correct password would otherwise tell the guesser it is right),
and the refusal is not counted, so hammering a lock does not lengthen it. Rows are deleted a day after
their last failure.
"""

from __future__ import annotations

import ipaddress
import logging
import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, case, delete, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session

from server import auth
from server.db import begin_write
from server.errors import AppError, ErrorCode
from server.models import KioskDevice, LoginThrottle, Staff, utcnow
from server.services import kiosks

logger = logging.getLogger(__name__)
_table = cast(Table, LoginThrottle.__table__)  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Rule:
    kind: str
    free: int  # failures counted before the first delay
    base: timedelta  # the first delay; each further failure doubles it
    cap: timedelta  # the longest delay
    forget_after: timedelta  # a key whose last failure is older starts again from zero

    def delay(self, failures: int) -> timedelta | None:
        """The wait after the `failures`-th failure, or None while there are free tries left."""
        if failures < self.free:
            return None
        return min(self.base * 2 ** min(failures - self.free, 16), self.cap)


ACCOUNT_AT_ADDRESS = Rule(
    "account-address", 5, timedelta(minutes=1), timedelta(minutes=15), timedelta(days=1)
)
ACCOUNT = Rule("account", 20, timedelta(seconds=30), timedelta(minutes=2), timedelta(hours=1))
ADDRESS = Rule("address", 50, timedelta(minutes=1), timedelta(minutes=5), timedelta(hours=1))
# A kiosk's pairing code (8 digits, 15 minutes, once) typed wrong from one address: a few free tries (a
# typo, a code read off a neighbour's screen), then growing delays, so one machine tries a few dozen codes
# an hour instead of the whole space; the organizer's phone that pairs is at that address only once.
PAIRING = Rule("pairing-address", 10, timedelta(minutes=1), timedelta(minutes=15), timedelta(days=1))
RULES = (ACCOUNT_AT_ADDRESS, ACCOUNT, ADDRESS, PAIRING)
KEEP = max(rule.forget_after for rule in RULES)


def address_of(host: str | None) -> str:
    """The address a throttle counts: IPv4 as it is, IPv6 by its /64 (what one subscriber gets)."""
    try:
        ip = ipaddress.ip_address(host or "")
    except ValueError:
        return (host or "unknown")[:45]
    if ip.version == 6:
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


def _keys(username: str, address: str) -> list[tuple[Rule, str]]:
    name = username.strip().lower()[:64]
    return [
        (ACCOUNT_AT_ADDRESS, f"{ACCOUNT_AT_ADDRESS.kind}:{name}|{address}"),
        (ACCOUNT, f"{ACCOUNT.kind}:{name}"),
        (ADDRESS, f"{ADDRESS.kind}:{address}"),
    ]


def _upsert(session: Session, rule: Rule, key: str, now: datetime) -> Any:
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stale = _table.c.last_failure_at < now - rule.forget_after
    values = insert(_table).values(key=key, failures=1, last_failure_at=now, locked_until=None)
    statement = values.on_conflict_do_update(
        index_elements=[_table.c.key],
        set_={
            "failures": case((stale, 1), else_=_table.c.failures + 1),
            "locked_until": case((stale, None), else_=_table.c.locked_until),
            "last_failure_at": now,
        },
    ).returning(_table.c.failures, _table.c.locked_until)
    return session.execute(statement).one()


def _count_attempt(session: Session, keys: list[tuple[Rule, str]], now: datetime) -> int | None:
    """Count one attempt under every key; the seconds to wait instead if a key is locked (not counted)."""
    begin_write(session)
    session.execute(delete(_table).where(_table.c.last_failure_at < now - KEEP))
    waits: list[float] = []
    counted: list[tuple[Rule, str, int]] = []
    for rule, key in keys:
        failures, locked_until = _upsert(session, rule, key, now)
        if locked_until is not None and locked_until > now:
            waits.append((locked_until - now).total_seconds())
        counted.append((rule, key, failures))
    if waits:
        session.rollback()
        return max(1, math.ceil(max(waits)))
    for rule, key, failures in counted:
        if (wait := rule.delay(failures)) is not None:
            session.execute(update(_table).where(_table.c.key == key).values(locked_until=now + wait))
            if failures == rule.free:
                logger.warning("login throttle: %s locked after %d failures", key, failures)
    session.commit()
    return None


def _take_back(session: Session, keys: list[tuple[Rule, str]]) -> None:
    """A success: the account at this address starts again; the other keys lose this attempt's count."""
    begin_write(session)
    (_pair, pair_key), *others = keys
    session.execute(delete(_table).where(_table.c.key == pair_key))
    for rule, key in others:
        session.execute(
            update(_table)
            .where(_table.c.key == key, _table.c.failures > 0)
            .values(
                failures=_table.c.failures - 1,
                locked_until=case((_table.c.failures - 1 < rule.free, None), else_=_table.c.locked_until),
            )
        )
    session.commit()


def pair_kiosk(
    session: Session, code: str, host: str | None, *, now: datetime | None = None
) -> tuple[KioskDevice, str]:
    """Pair a kiosk with its code (services/kiosks.pair_device); `pairing_throttled` (with `retry_after`)
    while this address has typed too many wrong codes."""
    now = now or utcnow()
    keys = [(PAIRING, f"{PAIRING.kind}:{address_of(host)}")]
    wait = _count_attempt(session, keys, now)
    if wait is not None:
        raise AppError(ErrorCode.pairing_throttled, retry_after=wait)
    paired = kiosks.pair_device(session, code, now)
    _take_back(session, keys)
    return paired


def log_in(
    session: Session, username: str, password: str, host: str | None, *, now: datetime | None = None
) -> Staff:
    """The staff member with these credentials; `login_throttled` (with `retry_after` in seconds) while
    this account, address or both have failed too often, else `invalid_credentials`."""
    now = now or utcnow()
    keys = _keys(username, address_of(host))
    wait = _count_attempt(session, keys, now)
    if wait is not None:
        raise AppError(ErrorCode.login_throttled, retry_after=wait)
    staff = auth.authenticate(session, username, password)
    _take_back(session, keys)
    return staff
