"""Login throttling: growing delays per account at an address, per account, per address; stored in the
database; never a lock-out an attacker can use against the real user. Time moves by passing `now`."""

from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from server.errors import AppError, ErrorCode
from server.models import LoginThrottle, Role, Staff, utcnow
from server.services import kiosks
from server.services.login_throttle import ACCOUNT, ACCOUNT_AT_ADDRESS, ADDRESS, PAIRING, address_of, log_in
from tests.factories import PASSWORD, count_rows, make_staff, make_tree, make_venue

HOME = "203.0.113.7"
WRONG = "sai-mat-khau-roi"


def _refusal(session: Session, username: str, password: str, host: str, now: object) -> ErrorCode:
    with pytest.raises(AppError) as caught:
        log_in(session, username, password, host, now=now)  # type: ignore[arg-type]
    return caught.value.code


def _wait(session: Session, username: str, password: str, host: str, now: object) -> int:
    with pytest.raises(AppError) as caught:
        log_in(session, username, password, host, now=now)  # type: ignore[arg-type]
    assert caught.value.code == ErrorCode.login_throttled
    return int(caught.value.extra["retry_after"])


def _client(app: FastAPI, host: str, **headers: str) -> TestClient:
    return TestClient(app, follow_redirects=False, client=(host, 50000), headers=headers)


def test_the_sixth_wrong_password_gets_a_page_that_says_how_long_to_wait(
    app: FastAPI, session: Session
) -> None:
    staff = make_staff(session, Role.organizer)
    with _client(app, HOME) as client, _client(app, HOME, **{"Accept-Language": "en"}) as english:
        _sixth_attempt(client, english, staff)


def _sixth_attempt(client: TestClient, english: TestClient, staff: Staff) -> None:
    for _ in range(ACCOUNT_AT_ADDRESS.free):
        wrong = client.post("/login", data={"username": staff.username, "password": WRONG})
        assert wrong.status_code == 401
    refused = client.post("/login", data={"username": staff.username, "password": PASSWORD})
    assert refused.status_code == 429, "even the right password waits: the lock tells nothing"
    assert 0 < int(refused.headers["retry-after"]) <= 60
    assert "Đăng nhập sai quá nhiều lần. Vui lòng thử lại sau 1 phút." in refused.text
    assert f'name="username" value="{staff.username}"' in refused.text
    assert "dd_session" not in client.cookies
    page = english.post("/login", data={"username": staff.username, "password": PASSWORD})
    assert page.status_code == 429 and "Please try again in 1 minute." in page.text


def test_delays_double_up_to_fifteen_minutes_and_the_right_password_then_gets_in(
    session: Session,
) -> None:
    staff = make_staff(session, Role.organizer)
    now = utcnow()
    for _ in range(ACCOUNT_AT_ADDRESS.free):
        assert _refusal(session, staff.username, WRONG, HOME, now) == ErrorCode.invalid_credentials
    waits = []
    for _ in range(6):
        wait = _wait(session, staff.username, WRONG, HOME, now)
        waits.append(wait)
        now += timedelta(seconds=wait)
        assert _refusal(session, staff.username, WRONG, HOME, now) == ErrorCode.invalid_credentials
    assert waits == [60, 120, 240, 480, 900, 900]
    now += timedelta(seconds=_wait(session, staff.username, PASSWORD, HOME, now))
    assert log_in(session, staff.username, PASSWORD, HOME, now=now).id == staff.id
    # A success starts the account at this address over: five free tries again.
    for _ in range(ACCOUNT_AT_ADDRESS.free):
        assert _refusal(session, staff.username, WRONG, HOME, now) == ErrorCode.invalid_credentials


def test_hammering_a_lock_does_not_make_it_longer(session: Session) -> None:
    staff = make_staff(session, Role.organizer)
    now = utcnow()
    for _ in range(ACCOUNT_AT_ADDRESS.free):
        _refusal(session, staff.username, WRONG, HOME, now)
    for second in range(30):
        assert _wait(session, staff.username, WRONG, HOME, now + timedelta(seconds=second)) == 60 - second
    assert log_in(session, staff.username, PASSWORD, HOME, now=now + timedelta(seconds=60)).id == staff.id


def test_the_real_user_elsewhere_gets_in_while_their_account_is_attacked(session: Session) -> None:
    staff = make_staff(session, Role.organizer)
    now = utcnow()
    # The attacker at one address is locked out of this account ...
    for _ in range(ACCOUNT_AT_ADDRESS.free):
        _refusal(session, staff.username, WRONG, "198.51.100.1", now)
    assert _wait(session, staff.username, PASSWORD, "198.51.100.1", now) == 60
    # ... while the real user, at another address, is not.
    assert log_in(session, staff.username, PASSWORD, HOME, now=now).id == staff.id


def test_guesses_from_many_addresses_slow_the_account_two_minutes_at_most(session: Session) -> None:
    staff = make_staff(session, Role.organizer)
    now = utcnow()
    botnet = (f"198.51.100.{n}" for n in range(1, 255))
    for _ in range(ACCOUNT.free):
        assert _refusal(session, staff.username, WRONG, next(botnet), now) == ErrorCode.invalid_credentials
    waits = []
    for _ in range(8):
        wait = _wait(session, staff.username, WRONG, next(botnet), now)
        waits.append(wait)
        now += timedelta(seconds=wait)
        _refusal(session, staff.username, WRONG, next(botnet), now)
    assert waits == [30, 60, 120, 120, 120, 120, 120, 120]
    # The real user from home waits two minutes at worst, then gets in whatever the botnet did.
    wait = _wait(session, staff.username, PASSWORD, HOME, now)
    assert wait <= ACCOUNT.cap.total_seconds()
    assert log_in(session, staff.username, PASSWORD, HOME, now=now + timedelta(seconds=wait)).id == staff.id


def test_a_village_behind_one_address_logs_in_past_the_address_limit(session: Session) -> None:
    """Carrier NAT: successes do not count against the shared address, and the address allows many tries."""
    now = utcnow()
    nat = "100.64.0.1"
    people = [make_staff(session, Role.organizer) for _ in range(12)]
    for n in range(ADDRESS.free - 5):
        assert _refusal(session, f"typo{n}", WRONG, nat, now) == ErrorCode.invalid_credentials
    for person in people:  # 12 more attempts from the address: the successes take their count back
        assert log_in(session, person.username, PASSWORD, nat, now=now).id == person.id
    assert _refusal(session, "typo-last", WRONG, nat, now) == ErrorCode.invalid_credentials


def test_one_address_trying_many_accounts_is_slowed(session: Session) -> None:
    now = utcnow()
    for n in range(ADDRESS.free):
        assert _refusal(session, f"guess{n}", WRONG, HOME, now) == ErrorCode.invalid_credentials
    staff = make_staff(session, Role.organizer)
    assert _wait(session, staff.username, PASSWORD, HOME, now) == 60
    assert log_in(session, staff.username, PASSWORD, "192.0.2.50", now=now).id == staff.id


def test_an_unknown_username_is_throttled_like_a_real_one(session: Session) -> None:
    now = utcnow()
    for _ in range(ACCOUNT_AT_ADDRESS.free):
        assert _refusal(session, "khong-co-ai", WRONG, HOME, now) == ErrorCode.invalid_credentials
    assert _wait(session, "Khong-Co-Ai ", WRONG, HOME, now) == 60


def test_old_rows_are_deleted_and_a_quiet_key_starts_again(session: Session) -> None:
    staff = make_staff(session, Role.organizer)
    then = utcnow() - timedelta(days=2)
    for _ in range(3):
        _refusal(session, staff.username, WRONG, HOME, then)
    assert count_rows(session, LoginThrottle) == 3
    _refusal(session, "someone-else", WRONG, "192.0.2.9", utcnow())
    keys = set(session.exec(select(LoginThrottle.key)).all())
    assert keys == {"account-address:someone-else|192.0.2.9", "account:someone-else", "address:192.0.2.9"}
    # An hour without failures and the account's own count starts again.
    now = utcnow()
    for n in range(ACCOUNT.free - 1):
        _refusal(session, staff.username, WRONG, f"198.51.100.{n + 1}", now - timedelta(hours=2))
    _refusal(session, staff.username, WRONG, "198.51.100.200", now)
    row = session.get(LoginThrottle, f"account:{staff.username}")
    assert row is not None
    session.refresh(row)
    assert row.failures == 1 and row.locked_until is None


def test_ipv6_addresses_are_counted_by_their_64(session: Session) -> None:
    assert address_of("2001:db8:1:2:aaaa::1") == address_of("2001:db8:1:2:bbbb::9") == "2001:db8:1:2::/64"
    assert address_of("203.0.113.7") == "203.0.113.7" and address_of(None) == "unknown"


def test_a_deactivated_account_is_refused_and_counted(session: Session) -> None:
    staff: Staff = make_staff(session, Role.organizer)
    staff.active = False
    session.add(staff)
    session.commit()
    assert _refusal(session, staff.username, PASSWORD, HOME, utcnow()) == ErrorCode.invalid_credentials
    assert session.get(LoginThrottle, f"account:{staff.username}") is not None


def test_wrong_pairing_codes_from_one_address_are_slowed_down_and_the_right_code_then_pairs(
    app: FastAPI, session: Session
) -> None:
    """Guessing a kiosk's 8-digit code: after PAIRING.free wrong codes from one address, even the right
    code waits (the lock tells nothing); another address pairs at once."""
    tree = make_tree(session)
    organizer = make_staff(session, Role.organizer, tree["commune"])
    venue = make_venue(session, tree["commune"])
    _device, code = kiosks.enrol_device(session, organizer, venue.id, "Máy cửa", utcnow())
    wrong = "0000 0000" if code != "00000000" else "1111 1111"
    with _client(app, HOME) as guesser, _client(app, "203.0.113.99") as organizer_phone:
        for _ in range(PAIRING.free):
            assert guesser.post("/kiosk/pair", data={"code": wrong}).status_code == 422
        locked = guesser.post("/kiosk/pair", data={"code": code})
        assert locked.status_code == 429 and 0 < int(locked.headers["retry-after"]) <= 60
        assert "Đã nhập sai mã ghép nối quá nhiều lần" in locked.text
        assert "dd_kiosk" not in guesser.cookies
        paired = organizer_phone.post("/kiosk/pair", data={"code": code})
        assert paired.status_code == 303 and "dd_kiosk" in organizer_phone.cookies
