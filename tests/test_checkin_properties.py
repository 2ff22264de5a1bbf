"""Properties of the check-in engine and of what counts, over sequences Hypothesis makes up.

Any interleaving of first scans, replays (the same key sent again: an outbox retrying, a lost answer) and
retries (a new key for someone already in: a second scan, a card read at the door after the phone) across
channels stores each person's visit exactly once, answers every replay with the first answer, and the
count the reports use equals a naive count over what the test sent."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from sqlalchemy import select as sa_select
from sqlmodel import Session

from server.config import Settings
from server.errors import AppError, ErrorCode
from server.models import AgeBand, Channel, Event, Gender, OrgUnit, Role, Staff, Venue
from server.services import areas, counting, identities, reports
from server.services.checkin import CheckInRequest, Identity, Profile, check_in, new_nonce
from server.services.headcounts import HeadcountRequest, change_headcount
from server.services.scans import code_for
from tests.factories import make_event, make_participant, make_staff, make_tree, make_venue

TZ = ZoneInfo("Asia/Ho_Chi_Minh")
T0 = datetime(2026, 3, 10, 2, 0, tzinfo=UTC)  # 9:00 in Vietnam; the check-in window is 7:00-14:00
ADULT = Profile(age_band=AgeBand.from_25, gender=Gender.male, consent=True)
EXAMPLES = hypothesis_settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

# Who a person is and the channels that can name them: a phone (its own token), a card holder (the card,
# at a kiosk, the desk or the staff API) or someone staff find by name (the desk or the staff API).
PHONE_CHANNELS = (Channel.page, Channel.public_api, Channel.batch)
CARD_CHANNELS = (Channel.kiosk, Channel.staff_form, Channel.staff_api, Channel.batch)
FOUND_CHANNELS = (Channel.staff_form, Channel.staff_api, Channel.batch)


@dataclass
class Place:
    venue: Venue
    organizer: Staff
    village: OrgUnit  # where the participants live: inside the organizer's scope


def _place(session: Session) -> Place:
    units = make_tree(session)
    venue = make_venue(session, units["village"])
    return Place(venue, make_staff(session, Role.organizer, units["commune"]), units["village"])


# One step: (person 0-5, channel choice, what it is: "send", or "replay" of an earlier step's request,
# named by its index), and the minute of the scan after 9:00.
steps = st.lists(
    st.tuples(st.integers(0, 5), st.integers(0, 3), st.sampled_from(["send", "replay"]), st.integers(0, 400)),
    min_size=1,
    max_size=25,
)


@EXAMPLES
@given(plan=steps)
def test_any_interleaving_of_replays_retries_and_channels_stores_each_visit_once(
    session: Session, settings: Settings, plan: list[tuple[int, int, str, int]]
) -> None:
    place = _place(session)
    event = make_event(session, place.venue, starts_at=T0)
    # People 0-1 have phones (each its own token), 2-3 cards, 4-5 are found by staff.
    tokens = [secrets.token_urlsafe(32) for _ in range(2)]
    holders = [make_participant(session, home_unit=place.village) for _ in range(4)]
    cards = [
        identities.issue_card(session, settings, place.organizer, h, place.venue, now=T0) for h in holders[:2]
    ]

    def request_for(person: int, channel_choice: int, minute: int) -> tuple[CheckInRequest, Staff | None]:
        at = T0 + timedelta(minutes=minute % 180)
        if person < 2:
            identity = Identity(device_token=tokens[person], profile=ADULT)
            channel = PHONE_CHANNELS[channel_choice % len(PHONE_CHANNELS)]
            return CheckInRequest(
                channel, new_nonce(), identity, code=code_for(event, settings), claimed_at=at
            ), None
        if person < 4:
            identity = Identity(card=cards[person - 2].lookup)
            channel = CARD_CHANNELS[channel_choice % len(CARD_CHANNELS)]
        else:
            identity = Identity(participant_id=holders[person - 2].id)
            channel = FOUND_CHANNELS[channel_choice % len(FOUND_CHANNELS)]
        return CheckInRequest(
            channel, new_nonce(), identity, event_id=event.id, claimed_at=at
        ), place.organizer

    sent: list[tuple[CheckInRequest, Staff | None, int | None]] = []  # each request and the check-in it got
    first_of: dict[int, int] = {}  # person -> the check-in id of their first accepted scan
    for step, (person, channel_choice, kind, minute) in enumerate(plan):
        now = T0 + timedelta(minutes=180 + step)  # after every scan time: some arrive late, as outboxes do
        if kind == "replay" and sent:
            request, staff, answer = sent[minute % len(sent)]
            if answer is None:  # the first send was refused: a replay of a refusal is refused again
                try:
                    check_in(session, settings, request, staff=staff, now=now)
                except AppError as error:
                    assert error.code == ErrorCode.already_checked_in
                    continue
                raise AssertionError(f"step {step}: a refused request was accepted on replay")
            again = check_in(session, settings, request, staff=staff, now=now)
            assert not again.created and again.check_in.id == answer, step
            continue
        request, staff = request_for(person, channel_choice, minute)
        try:
            result = check_in(session, settings, request, staff=staff, now=now)
        except AppError as error:
            assert error.code == ErrorCode.already_checked_in, (step, error.code)
            assert person in first_of, f"step {step}: a first scan was refused"
            sent.append((request, staff, None))
            continue
        assert result.created and person not in first_of, step
        first_of[person] = result.check_in.id or 0
        sent.append((request, staff, result.check_in.id))

    area = areas.resolve_area(session, make_staff(session, Role.admin), "")
    rows = counting.visits_in(T0 - timedelta(days=1), T0 + timedelta(days=1), area, None)
    visits, people, _walk_ins = counting.measures(rows)
    counted = session.execute(sa_select(visits, people).where(rows.c.event_id == event.id)).one()
    assert (int(counted[0]), int(counted[1])) == (len(first_of), len(first_of))


# --- What counts: a naive count over the test's own list -----------------------------------------------

# A record: (event 0-2, minutes after 00:00 local on 1/1/2025 over two years, a headcount delta or 0 for a
# check-in of a new person).
records = st.lists(
    st.tuples(st.integers(0, 2), st.integers(0, 2 * 365 * 24 * 60 - 1), st.integers(-3, 4)),
    max_size=30,
)
cutoffs = st.one_of(st.none(), st.tuples(st.integers(1, 12), st.integers(1, 28)))


@EXAMPLES
@given(made=records, cutoff=cutoffs, until_day=st.one_of(st.none(), st.integers(0, 364)))
def test_a_reporting_window_counts_what_a_naive_count_of_local_days_finds(
    session: Session,
    settings: Settings,
    made: list[tuple[int, int, int]],
    cutoff: tuple[int, int] | None,
    until_day: int | None,
) -> None:
    """Check-ins and walk-in corrections (+ and -) at any hour of two years, against the 2026 reporting
    year (calendar or ending on a cut-off, up to a chosen day or not): visits, people and walk-ins equal the
    test's own sums over the records whose local day falls in the window."""
    place = _place(session)
    first = datetime(2025, 1, 1, tzinfo=TZ)
    evs: list[Event] = [
        make_event(
            session,
            place.venue,
            starts_at=first.astimezone(UTC),
            ends_at=(first + timedelta(days=731)).astimezone(UTC),
        )
        for _ in range(3)
    ]
    kept: list[tuple[date, int, int | None]] = []  # (local day, weight, person)
    walk_ins = [0, 0, 0]  # each event's count so far: a correction never takes it below zero
    for event_index, minute, delta in made:
        at = first + timedelta(minutes=minute)
        event = evs[event_index]
        if delta:
            if walk_ins[event_index] + delta < 0:
                continue
            request = HeadcountRequest(new_nonce(), event.id or 0, delta, claimed_at=at.astimezone(UTC))
            change_headcount(session, settings, request, staff=place.organizer, now=at.astimezone(UTC))
            walk_ins[event_index] += delta
            kept.append((at.date(), delta, None))
            continue
        someone = make_participant(session, home_unit=place.village)
        request = CheckInRequest(
            Channel.staff_form, new_nonce(), Identity(participant_id=someone.id), event_id=event.id,
            claimed_at=at.astimezone(UTC),
        )  # fmt: skip
        check_in(session, settings, request, staff=place.organizer, now=at.astimezone(UTC))
        kept.append((at.date(), 1, someone.id))
    today = date(2027, 6, 30)
    year_start = reports.report_window(2026, until=None, today=today, cutoff=cutoff).start
    until = year_start + timedelta(days=until_day) if until_day is not None else None
    window = reports.report_window(2026, until=until, today=today, cutoff=cutoff)

    admin = make_staff(session, Role.admin)
    area = areas.resolve_area(session, admin, f"u:{place.village.parent_id}")  # this example's commune only
    totals = reports.yearly_totals(session, admin, window, TZ, area=area)

    inside = [(weight, person) for day, weight, person in kept if window.start <= day <= window.end]
    assert totals.visits == sum(weight for weight, _person in inside)
    assert totals.people == len({person for _weight, person in inside if person is not None})
    assert totals.walk_ins == sum(weight for weight, person in inside if person is None)
