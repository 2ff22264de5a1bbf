"""Rotating screen codes: 6 Crockford characters per 20-second step; only the current and previous pass."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from server.rotation import PERIOD, accepts, event_key, step_at, token

SECRET = "test-secret-key-0123456789-abcdefghijklmnop"
STARTS = datetime(2026, 3, 8, 1, 0, tzinfo=UTC)
ENDS = datetime(2026, 3, 8, 3, 0, tzinfo=UTC)
KEY = event_key(SECRET, 42, STARTS, ENDS)
NOW = datetime(2026, 3, 8, 1, 30, 7, tzinfo=UTC)  # 7 s into step 88646670


def test_event_key_is_64_hex_characters_and_not_the_secret() -> None:
    assert re.fullmatch(r"[0-9a-f]{64}", KEY)
    assert SECRET not in KEY


def test_token_is_six_crockford_characters_and_stable() -> None:
    assert KEY == "f3f8e0bfe032148dbc3976ddc40672a97c55c66259a42a6491c2555bf9ee69df"
    assert step_at(NOW) == 88646670
    assert token(KEY, 88646670) == "M1YFWK"
    assert token("00" * 32, 0) == "K5WY9G"
    for step in range(1000):
        assert re.fullmatch(r"[0-9A-HJKMNP-TV-Z]{6}", token(KEY, step))


def test_step_follows_the_period() -> None:
    boundary = datetime.fromtimestamp(88646670 * PERIOD, UTC)
    assert step_at(boundary) == 88646670
    assert step_at(boundary - timedelta(microseconds=1)) == 88646669


def test_current_and_previous_steps_are_accepted() -> None:
    step = step_at(NOW)
    assert accepts(KEY, token(KEY, step), NOW)
    assert accepts(KEY, token(KEY, step - 1), NOW)


def test_older_and_future_steps_are_refused() -> None:
    step = step_at(NOW)
    assert not accepts(KEY, token(KEY, step - 2), NOW)
    assert not accepts(KEY, token(KEY, step + 1), NOW)


def test_a_photo_stops_working_after_the_next_step() -> None:
    shown = token(KEY, step_at(NOW))
    assert accepts(KEY, shown, NOW + timedelta(seconds=PERIOD))
    assert not accepts(KEY, shown, NOW + timedelta(seconds=2 * PERIOD))


def test_lower_case_dashes_and_crockford_lookalikes_are_accepted() -> None:
    # Pick tokens holding 0 and 1 so O, I and L can stand in for them.
    step = next(s for s in range(step_at(NOW) - 200, step_at(NOW)) if {"0", "1"} <= set(token(KEY, s)))
    when = datetime.fromtimestamp(step * PERIOD + 5, UTC)
    typed = token(KEY, step).lower()
    assert accepts(KEY, typed, when)
    assert accepts(KEY, typed.replace("0", "o").replace("1", "i"), when)
    assert accepts(KEY, typed.replace("0", "O").replace("1", "L"), when)
    assert accepts(KEY, f" {typed[:3]}-{typed[3:]} ", when)


def test_different_or_moved_events_have_different_keys() -> None:
    keys = {
        KEY,
        event_key(SECRET, 43, STARTS, ENDS),
        event_key(SECRET, 42, STARTS + timedelta(hours=1), ENDS + timedelta(hours=1)),
        event_key(SECRET, 42, STARTS, ENDS + timedelta(minutes=30)),
        event_key("another-secret-key-0123456789-abcdefghijk", 42, STARTS, ENDS),
    }
    assert len(keys) == 5
    other = event_key(SECRET, 43, STARTS, ENDS)
    assert not accepts(other, token(KEY, step_at(NOW)), NOW)


@pytest.mark.parametrize(
    "garbage",
    ["", " ", "-", "M1YFW", "M1YFWKM", "M1YFWK?", "ÜÜÜÜÜÜ", "\x00" * 6, "U1YFWK", "x" * 10_000, "🙂" * 6],
)
def test_garbage_tokens_are_refused_without_exceptions(garbage: str) -> None:
    assert not accepts(KEY, garbage, NOW)
