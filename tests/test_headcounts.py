"""Walk-in headcounts (services/headcounts.py): visits, never people, under the same rules as a check-in."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlmodel import Session, col, select

from server.config import Settings
from server.errors import AppError, ErrorCode
from server.models import (
    AgeBand,
    Channel,
    CheckInAttempt,
    Event,
    Gender,
    Headcount,
    OrgUnit,
    Role,
    Staff,
    Venue,
)
from server.services import attendance, checkin, events, reports
from server.services.checkin import CheckInRequest, Identity, Profile
from server.services.headcounts import MAX_STEP, HeadcountRequest, HeadcountResult, change_headcount
from server.services.scans import code_for
from tests.factories import count_rows, make_event, make_staff, make_tree, make_venue

T0 = datetime(2026, 3, 10, 2, 0, tzinfo=UTC)
DURING = T0 + timedelta(minutes=30)
TODAY = date(2026, 12, 31)


@dataclass(frozen=True)
class Scene:
    units: dict[str, OrgUnit]
    venue: Venue
    organizer: Staff
    event: Event


@pytest.fixture
def scene(session: Session) -> Scene:
    units = make_tree(session)
    venue = make_venue(session, units["village"])
    organizer = make_staff(session, Role.organizer, units["commune"])
    return Scene(units, venue, organizer, make_event(session, venue, starts_at=T0))


def count(
    session: Session,
    settings: Settings,
    scene: Scene,
    delta: int,
    *,
    band: AgeBand | None = None,
    gender: Gender | None = None,
    key: str | None = None,
    staff: Staff | None = None,
    now: datetime = DURING,
    claimed_at: datetime | None = None,
) -> HeadcountResult:
    request = HeadcountRequest(
        key=key or checkin.new_nonce(),
        event_id=scene.event.id or 0,
        delta=delta,
        age_band=band,
        gender=gender,
        claimed_at=claimed_at,
    )
    return change_headcount(session, settings, request, staff=staff or scene.organizer, now=now)


def refusal(session: Session, settings: Settings, scene: Scene, delta: int, **kwargs: object) -> AppError:
    with pytest.raises(AppError) as refused:
        count(session, settings, scene, delta, **kwargs)  # type: ignore[arg-type]
    return refused.value


def attempts(session: Session) -> list[tuple[str, str]]:
    """The attempt log as (action, outcome), oldest first."""
    session.commit()
    rows = session.exec(select(CheckInAttempt).order_by(col(CheckInAttempt.id))).all()
    return [(a.action, a.outcome) for a in rows]


def total_of(session: Session) -> int:
    session.commit()
    return sum(row.delta for row in session.exec(select(Headcount)).all())


def test_plus_and_minus_change_the_live_total_by_age_band(
    session: Session, settings: Settings, scene: Scene
) -> None:
    request = CheckInRequest(
        channel=Channel.public_api,
        key=checkin.new_nonce(),
        code=code_for(scene.event, settings),
        identity=Identity(profile=Profile(AgeBand.from_25, Gender.female, consent=True)),
    )
    checkin.check_in(session, settings, request, now=DURING)
    assert count(session, settings, scene, +3, band=AgeBand.from_6).total == 3
    assert count(session, settings, scene, -1, band=AgeBand.from_6).total == 2
    assert count(session, settings, scene, +2).total == 4  # no age band given
    live = attendance.live_summary(session, scene.event.id or 0)
    assert (live.visits, live.people, live.walk_ins) == (5, 1, 4)  # walk-ins are visits, never people
    by_age = dict(live.by_age)
    assert (by_age[AgeBand.from_6], by_age[AgeBand.from_25], by_age[None]) == (2, 1, 2)
    assert by_age[AgeBand.from_60] == 0
    assert count_rows(session, Headcount) == 3


def test_headcount_below_zero_is_refused(session: Session, settings: Settings, scene: Scene) -> None:
    count(session, settings, scene, +1, band=AgeBand.from_6)
    refused = refusal(session, settings, scene, -2, band=AgeBand.from_6)
    assert refused.code == ErrorCode.headcount_below_zero and refused.status == 409
    assert count_rows(session, Headcount) == 1 and total_of(session) == 1
    assert attempts(session)[-1] == ("headcount", "headcount_below_zero")


def test_headcount_below_zero_counts_each_age_band_on_its_own(
    session: Session, settings: Settings, scene: Scene
) -> None:
    count(session, settings, scene, +5, band=AgeBand.from_6)
    refused = refusal(session, settings, scene, -1, band=AgeBand.from_12)  # nobody counted in this band
    assert refused.code == ErrorCode.headcount_below_zero
    refused = refusal(session, settings, scene, -1)  # nor without a band
    assert refused.code == ErrorCode.headcount_below_zero
    assert count_rows(session, Headcount) == 1 and total_of(session) == 5


def test_replay_with_the_same_key_stores_no_second_row(
    session: Session, settings: Settings, scene: Scene
) -> None:
    first = count(session, settings, scene, +2, band=AgeBand.from_6, key="door-count-0001")
    again = count(
        session,
        settings,
        scene,
        +2,
        band=AgeBand.from_6,
        key="door-count-0001",
        now=DURING + timedelta(minutes=1),
    )
    assert first.created and not again.created
    assert again.headcount.id == first.headcount.id and again.total == 2
    assert count_rows(session, Headcount) == 1 and total_of(session) == 2
    assert attempts(session)[-1] == ("headcount", "replayed")


def test_same_key_with_another_delta_is_key_reused(
    session: Session, settings: Settings, scene: Scene
) -> None:
    count(session, settings, scene, +2, key="door-count-0002")
    refused = refusal(session, settings, scene, +3, key="door-count-0002")
    assert refused.code == ErrorCode.key_reused and refused.status == 409
    assert count_rows(session, Headcount) == 1 and total_of(session) == 2
    assert attempts(session)[-1] == ("headcount", "key_reused")


def test_every_headcount_attempt_is_logged(session: Session, settings: Settings, scene: Scene) -> None:
    """check_in_attempt holds every attempt, accepted or refused (models.CheckInAttempt)."""
    count(session, settings, scene, +2, key="door-count-0003")
    count(session, settings, scene, +2, key="door-count-0003")
    refusal(session, settings, scene, -9)
    assert attempts(session) == [
        ("headcount", "accepted"),
        ("headcount", "replayed"),
        ("headcount", "headcount_below_zero"),
    ]


@pytest.mark.parametrize("delta", [0, MAX_STEP + 1, -MAX_STEP - 1])
def test_headcount_step_must_be_small_and_not_zero(
    session: Session, settings: Settings, scene: Scene, delta: int
) -> None:
    assert refusal(session, settings, scene, delta).code == ErrorCode.invalid_input
    assert count_rows(session, Headcount) == 0


def test_headcount_with_an_invalid_key_is_refused(session: Session, settings: Settings, scene: Scene) -> None:
    assert refusal(session, settings, scene, +1, key="short").code == ErrorCode.invalid_key
    assert count_rows(session, Headcount) == 0


def test_headcount_of_a_cancelled_event_is_refused(
    session: Session, settings: Settings, scene: Scene
) -> None:
    count(session, settings, scene, +4)
    events.cancel_event(session, scene.event, now=DURING)
    refused = refusal(session, settings, scene, +1, now=DURING + timedelta(minutes=1))
    assert refused.code == ErrorCode.event_cancelled
    assert count_rows(session, Headcount) == 1
    assert attendance.live_summary(session, scene.event.id or 0).visits == 4  # what was counted stays
    assert attempts(session)[-1] == ("headcount", "event_cancelled")


def test_headcount_outside_the_window_is_refused(session: Session, settings: Settings, scene: Scene) -> None:
    closes = scene.event.ends_at + timedelta(minutes=settings.checkin_margin_minutes)
    refused = refusal(session, settings, scene, +1, now=closes + timedelta(minutes=1))
    assert refused.code == ErrorCode.code_expired
    assert count_rows(session, Headcount) == 0
    assert attempts(session)[-1] == ("headcount", "code_expired")


def test_headcount_typed_in_later_keeps_the_counted_time(
    session: Session, settings: Settings, scene: Scene
) -> None:
    typed = DURING + timedelta(days=2)
    count(session, settings, scene, +3, claimed_at=DURING, now=typed)
    session.commit()
    [row] = session.exec(select(Headcount)).all()
    assert (row.counted_at, row.received_at) == (DURING, typed)


def test_headcounts_appear_in_the_yearly_totals(session: Session, settings: Settings, scene: Scene) -> None:
    request = CheckInRequest(
        channel=Channel.public_api,
        key=checkin.new_nonce(),
        code=code_for(scene.event, settings),
        identity=Identity(profile=Profile(AgeBand.from_25, Gender.female, consent=True)),
    )
    checkin.check_in(session, settings, request, now=DURING)
    count(session, settings, scene, +3, band=AgeBand.from_6, gender=Gender.male)
    count(session, settings, scene, +2)  # counted at the door without age band or gender
    admin = make_staff(session, Role.admin)
    window = reports.report_window(2026, until=None, today=TODAY)
    totals = reports.yearly_totals(session, admin, window, settings.tz, now=DURING)
    assert (totals.visits, totals.people, totals.walk_ins) == (6, 1, 5)
    breakdowns = {
        b.key: {row.key: (row.visits, row.people, row.walk_ins) for row in b.rows} for b in totals.breakdowns
    }
    assert breakdowns["age_band"]["6-11"] == (3, 0, 3)
    assert breakdowns["age_band"]["25-59"] == (1, 1, 0)
    assert breakdowns["age_band"][""] == (2, 0, 2)
    assert breakdowns["gender"][""] == (2, 0, 2)
    assert breakdowns["commune"][str(scene.units["commune"].id)] == (6, 1, 5)
    assert breakdowns["month"]["3"] == (6, 1, 5)


def test_every_headcount_row_names_who_made_it(session: Session, settings: Settings, scene: Scene) -> None:
    admin = make_staff(session, Role.admin)
    count(session, settings, scene, +2)
    count(session, settings, scene, +1, staff=admin)
    count(session, settings, scene, -1)
    session.commit()
    rows = session.exec(select(Headcount).order_by(col(Headcount.id))).all()
    assert [row.recorded_by_id for row in rows] == [scene.organizer.id, admin.id, scene.organizer.id]
    assert all(row.channel == Channel.staff_form and row.received_at == DURING for row in rows)
    assert {(row.commune_id, row.village_id) for row in rows} == {
        (scene.units["commune"].id, scene.units["village"].id)
    }


def test_staff_out_of_scope_cannot_change_a_headcount(
    session: Session, settings: Settings, scene: Scene
) -> None:
    stranger = make_staff(session, Role.organizer, scene.units["other"])
    refused = refusal(session, settings, scene, +1, staff=stranger)
    assert refused.code == ErrorCode.forbidden
    assert count_rows(session, Headcount) == 0
    session.commit()
    [attempt] = session.exec(select(CheckInAttempt)).all()
    assert (attempt.action, attempt.outcome, attempt.staff_id) == ("headcount", "forbidden", stranger.id)
