"""The attempt log stays bounded: the same attempt made again is counted on its first line, and old lines are
folded into daily counts by `diemdanh prune-attempts`, idempotently. On SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, col, func, select

from server.__main__ import main
from server.config import Settings, SettingsError
from server.errors import AppError, ErrorCode
from server.models import Channel, CheckIn, CheckInAttempt, CheckInAttemptSummary
from server.services import attempts, events
from server.services.checkin import check_in
from tests.factories import count_rows, make_event
from tests.test_api import _bearer
from tests.test_checkin import DURING, T0, Scene, phone
from tests.test_checkin import scene as checkin_scene

REPLAYS = 300
scene = pytest.fixture(checkin_scene.__wrapped__, name="scene")  # type: ignore[attr-defined]


def log(session: Session) -> list[tuple[str, int]]:
    session.commit()
    rows = session.exec(select(CheckInAttempt).order_by(col(CheckInAttempt.id))).all()
    return [(row.outcome, row.repeats) for row in rows]


def total_attempts(session: Session) -> int:
    """What readers of the log count: every attempt, repeats included, pruned or not."""
    session.commit()
    live = session.exec(select(func.coalesce(func.sum(CheckInAttempt.repeats), 0))).one()
    folded = session.exec(select(func.coalesce(func.sum(CheckInAttemptSummary.attempts), 0))).one()
    return int(live) + int(folded)


def test_replays_of_one_check_in_are_counted_on_one_line(
    session: Session, settings: Settings, scene: Scene
) -> None:
    request = phone(scene.event, settings)
    check_in(session, settings, request, now=DURING)
    for n in range(REPLAYS):
        assert not check_in(session, settings, request, now=DURING + timedelta(seconds=n + 1)).created
    assert log(session) == [("accepted", 1), ("replayed", REPLAYS)]
    replayed = session.exec(select(CheckInAttempt).where(col(CheckInAttempt.outcome) == "replayed")).one()
    assert replayed.at == DURING + timedelta(seconds=1)
    assert replayed.last_at == DURING + timedelta(seconds=REPLAYS)
    assert total_attempts(session) == REPLAYS + 1
    assert count_rows(session, CheckIn) == 1


def test_the_same_refusal_is_counted_other_keys_get_their_own_line(
    session: Session, settings: Settings, scene: Scene
) -> None:
    events.cancel_event(session, scene.event, now=DURING)
    request = phone(scene.event, settings)
    for _ in range(3):
        with pytest.raises(AppError) as refused:
            check_in(session, settings, request, now=DURING)
        assert refused.value.code == ErrorCode.event_cancelled
    with pytest.raises(AppError):
        check_in(session, settings, phone(scene.event, settings), now=DURING)  # another phone
    assert log(session) == [("event_cancelled", 3), ("event_cancelled", 1)]


def test_replays_over_http_are_counted(client: TestClient, session: Session) -> None:
    headers, world = _bearer(session)
    event = make_event(session, world["venue"])
    body = {
        "nonce": "offline-queue-0001",
        "profile": {"age_band": "60+", "gender": "female", "consent": True},
    }
    answers = [
        client.post(f"/api/v1/events/{event.id}/checkins", json=body, headers=headers).status_code
        for _ in range(20)
    ]
    assert answers == [201] + [200] * 19
    assert log(session) == [("accepted", 1), ("replayed", 19)]


def test_prune_folds_old_lines_into_daily_counts_once(
    session: Session, settings: Settings, scene: Scene
) -> None:
    old = DURING  # 10/3/2026, 9:30 in Vietnam
    other_day = DURING + timedelta(days=1)
    kept = DURING + timedelta(days=settings.attempt_log_days + 5)
    request = phone(scene.event, settings)
    check_in(session, settings, request, now=old)
    for n in range(4):
        check_in(session, settings, request, now=old + timedelta(minutes=n))
    next_day = make_event(session, scene.venue, starts_at=T0 + timedelta(days=1))
    check_in(session, settings, phone(next_day, settings), now=other_day)
    late = phone(scene.event, settings)
    check_in(session, settings, late, now=old)
    check_in(session, settings, late, now=old + timedelta(minutes=1))
    check_in(session, settings, late, now=kept)  # replayed again long after: that line is still in use
    assert total_attempts(session) == 9

    now = kept + timedelta(days=1)
    pruned = attempts.prune(session, settings, now=now)
    assert (pruned.rows, pruned.attempts) == (4, 7)
    assert pruned.cutoff == now - timedelta(days=settings.attempt_log_days)
    assert log(session) == [("replayed", 2)]
    summary = session.exec(
        select(CheckInAttemptSummary).order_by(
            col(CheckInAttemptSummary.day), col(CheckInAttemptSummary.outcome)
        )
    ).all()
    assert [(s.event_id, s.day, s.channel, s.action, s.outcome, s.attempts, s.rows) for s in summary] == [
        (scene.event.id, date(2026, 3, 10), Channel.public_api, "check_in", "accepted", 2, 2),
        (scene.event.id, date(2026, 3, 10), Channel.public_api, "check_in", "replayed", 4, 1),
        (next_day.id, date(2026, 3, 11), Channel.public_api, "check_in", "accepted", 1, 1),
    ]
    assert total_attempts(session) == 9  # nothing lost, only folded

    again = attempts.prune(session, settings, now=now)
    assert (again.rows, again.attempts) == (0, 0)
    assert count_rows(session, CheckInAttemptSummary) == 3 and total_attempts(session) == 9

    # Later the last line ages too, and adds to its day's count instead of a second summary line.
    later = attempts.prune(session, settings, now=now + timedelta(days=settings.attempt_log_days))
    assert (later.rows, later.attempts) == (1, 2)
    replays = session.exec(
        select(CheckInAttemptSummary).where(col(CheckInAttemptSummary.outcome) == "replayed")
    ).one()
    assert (replays.attempts, replays.rows) == (6, 2)
    assert count_rows(session, CheckInAttempt) == 0 and total_attempts(session) == 9
    assert count_rows(session, CheckIn) == 3  # check-ins are never touched


def test_prune_attempts_command(
    session: Session,
    settings: Settings,
    scene: Scene,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    check_in(session, settings, phone(scene.event, settings), now=DURING)
    session.commit()
    monkeypatch.setenv("DIEMDANH_ENV", "development")
    monkeypatch.setenv("DIEMDANH_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("DIEMDANH_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("DIEMDANH_ATTEMPT_LOG_DAYS", "1")  # DURING is months ago
    assert main(["prune-attempts"]) == 0
    assert "Folded 1 attempt-log lines (1 attempts)" in capsys.readouterr().out
    assert count_rows(session, CheckInAttempt) == 0 and count_rows(session, CheckInAttemptSummary) == 1
    assert main(["prune-attempts"]) == 0
    assert "Folded 0 attempt-log lines" in capsys.readouterr().out
    assert count_rows(session, CheckInAttemptSummary) == 1


def test_attempt_log_days_must_be_positive() -> None:
    with pytest.raises(SettingsError, match="DIEMDANH_ATTEMPT_LOG_DAYS"):
        Settings.from_env({"DIEMDANH_ENV": "development", "DIEMDANH_ATTEMPT_LOG_DAYS": "0"})
    assert Settings(env="development").attempt_log_days == 90
