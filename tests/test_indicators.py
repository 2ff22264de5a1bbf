"""The plan's indicators: values worked out by hand (or by a naive count over the test's own list), windows,
the "regularly active" rule, targets and their status, and the pages with their drill-down."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from server.config import Settings
from server.errors import FormError
from server.models import (
    BookRotation,
    Channel,
    Club,
    ClubType,
    EventType,
    IndicatorTarget,
    LibraryFigure,
    LibraryMetric,
    LibraryStandard,
    Role,
    SchoolLibraryYear,
    Staff,
    UnitKind,
    Venue,
    VenueType,
)
from server.services import areas, commune_changes, events, indicators, places, places_history, report_groups
from server.services.checkin import CheckInRequest, Identity, check_in, new_nonce
from server.services.headcounts import HeadcountRequest, change_headcount
from server.services.indicators import BY_KEY, Figure, Status, Target
from server.services.reports import report_window, yearly_totals
from tests.factories import count_rows, login, make_event, make_staff, make_tree, make_unit, make_venue
from tests.test_reports import PEOPLE, build_dataset, in_window

TZ = ZoneInfo("Asia/Ho_Chi_Minh")
TODAY = date(2026, 11, 24)
LIBRARIES = ("library", "province")


def _value(evaluation: indicators.Evaluation, key: str) -> indicators.Result:
    return next(r for r in evaluation.results if r.definition.key == key)


def _all(session: Session, staff: Staff) -> areas.Area:
    return areas.resolve_area(session, staff, "")


def test_library_users_are_visits_at_public_libraries_against_the_same_window_a_year_earlier(
    session: Session, settings: Settings
) -> None:
    data = build_dataset(session, settings)
    admin = make_staff(session, Role.admin)
    window = report_window(2025, until=None, today=TODAY)
    now = in_window(data, date(2025, 1, 1), date(2025, 12, 31), LIBRARIES)
    before = in_window(data, date(2024, 1, 1), date(2024, 12, 31), LIBRARIES)
    assert (len(now), len(before)) == (6, 1)  # the data set's own numbers, counted by hand

    result = _value(indicators.evaluate(session, admin, window, _all(session, admin), TZ), "library_users")

    assert result.value == len(now) and result.previous == len(before)
    assert result.people == len({m.person for m in now})
    assert result.change == pytest.approx(100 * (len(now) - len(before)) / len(before))
    assert result.target == Target(8, 10) and result.status == Status.met


def test_an_area_counts_the_place_stored_on_each_record(session: Session, settings: Settings) -> None:
    data = build_dataset(session, settings)
    admin = make_staff(session, Role.admin)
    window = report_window(2025, until=None, today=TODAY)
    commune = areas.resolve_area(session, admin, f"u:{data.units['commune'].id}")
    # The provincial library stands above the commune: only the commune library counts for it.
    now = in_window(data, date(2025, 1, 1), date(2025, 12, 31), ("library",))

    evaluation = indicators.evaluate(session, admin, window, commune, TZ)

    assert _value(evaluation, "library_users").value == len(now)
    expected = [
        m for m in in_window(data, date(2025, 1, 1), date(2025, 12, 31)) if m.commune == data.units["commune"]
    ]
    assert _value(evaluation, "participation").value == len(expected)


def test_growth_over_an_empty_year_is_no_base(session: Session, settings: Settings) -> None:
    data = build_dataset(session, settings)
    admin = make_staff(session, Role.admin)
    other = areas.resolve_area(session, admin, f"u:{data.units['other'].id}")
    window = report_window(2025, until=None, today=TODAY)
    # The centre's only 2024 event began at 00:00 on 1/1/2025 local time: nothing in 2024.
    assert in_window(data, date(2024, 1, 1), date(2024, 12, 31), ("centre",)) == []

    result = _value(indicators.evaluate(session, admin, window, other, TZ), "participation")

    assert result.previous == 0 and result.change is None and result.status == Status.no_base


def test_a_year_ending_on_a_cut_off_counts_its_twelve_months(session: Session, settings: Settings) -> None:
    data = build_dataset(session, settings)
    admin = make_staff(session, Role.admin)
    window = report_window(2025, until=None, today=TODAY, cutoff=(10, 31))
    assert (window.start, window.end, window.complete) == (date(2024, 11, 1), date(2025, 10, 31), True)
    assert window.previous().start == date(2023, 11, 1)

    result = _value(indicators.evaluate(session, admin, window, _all(session, admin), TZ), "participation")

    assert result.value == len(in_window(data, date(2024, 11, 1), date(2025, 10, 31)))
    assert result.previous == len(in_window(data, date(2023, 11, 1), date(2024, 10, 31)))


def test_a_running_year_is_on_track_not_met() -> None:
    window = report_window(2026, until=None, today=TODAY)
    growth, share = BY_KEY["library_users"], BY_KEY["active_houses"]
    assert not window.complete
    assert (
        indicators.result(growth, Figure(110), Figure(100), Target(8, 10), window).status == Status.on_track
    )
    assert indicators.result(growth, Figure(105), Figure(100), Target(8, 10), window).status == Status.behind
    done = report_window(2025, until=None, today=TODAY)
    assert indicators.result(growth, Figure(120), Figure(100), Target(8, 10), done).status == Status.met
    assert indicators.result(growth, Figure(5), Figure(0), Target(8, 10), done).status == Status.no_base
    # A share below its target but rising between milestones (2026) is on track; falling, it is behind;
    # in a milestone year (2025) rising is not enough.
    between = report_window(2026, until=None, today=date(2027, 1, 5))
    rising = indicators.result(
        share,
        Figure(numerator=4, denominator=10),
        Figure(numerator=3, denominator=10),
        Target(50, None),
        between,
    )
    assert (rising.status, rising.change) == (Status.on_track, pytest.approx(10))
    in_2025 = indicators.result(
        share,
        Figure(numerator=4, denominator=10),
        Figure(numerator=3, denominator=10),
        Target(50, None),
        done,
    )
    assert in_2025.status == Status.behind
    falling = indicators.result(
        share,
        Figure(numerator=2, denominator=10),
        Figure(numerator=3, denominator=10),
        Target(50, None),
        done,
    )
    assert falling.status == Status.behind
    empty = indicators.result(share, Figure(), Figure(), Target(50, None), done)
    assert (empty.status, empty.value, empty.change) == (Status.no_base, None, None)


def _club_with_sessions(
    session: Session, settings: Settings, staff: Staff, venue: Venue, months: list[int], visits: int
) -> Club:
    """A club with one session on the 10th of each given month of 2025, each with `visits` check-ins."""
    club = Club(venue_id=venue.id or 0, name=f"CLB {venue.name}", type=ClubType.club)
    session.add(club)
    session.commit()
    session.refresh(club)
    for month in months:
        start = datetime(2025, month, 10, 12, tzinfo=UTC)
        event = make_event(session, venue, starts_at=start, type=EventType.club_session, club_id=club.id)
        for n in range(visits):
            request = CheckInRequest(
                Channel.staff_form, new_nonce(), Identity(profile=PEOPLE["m3"]), event_id=event.id
            )
            check_in(session, settings, request, staff=staff, now=start + timedelta(minutes=n + 1))
    return club


def test_a_house_is_regularly_active_with_attended_sessions_in_nine_months_not_eight(
    session: Session, settings: Settings
) -> None:
    units = make_tree(session)
    admin = make_staff(session, Role.admin)
    nine, eight, empty = (make_venue(session, units["village"]) for _ in range(3))
    centre = make_venue(session, units["other"], type=VenueType.culture_sport_centre)
    make_venue(session, units["commune"], type=VenueType.commune_library)  # not in the denominator
    _club_with_sessions(session, settings, admin, nine, list(range(1, 10)), 1)
    _club_with_sessions(session, settings, admin, eight, list(range(1, 9)), 2)
    # The centre's club met in twelve months, but in three of them nobody came.
    club = _club_with_sessions(session, settings, admin, centre, list(range(1, 10)), 1)
    for month in (10, 11, 12):
        make_event(session, centre, starts_at=datetime(2025, month, 10, 12, tzinfo=UTC), club_id=club.id)
    window = report_window(2025, until=None, today=TODAY)

    result = _value(indicators.evaluate(session, admin, window, _all(session, admin), TZ), "active_houses")

    assert (result.numerator, result.denominator) == (2, 4)  # nine and the centre; eight and empty are not
    assert result.value == pytest.approx(50) and result.target == Target(50, None)
    assert result.status == Status.met

    tables = indicators.annual_tables(session, admin, window, _all(session, admin), TZ)
    regular = {row.venue.id: (row.months, row.sessions, row.regular) for row in tables.clubs}
    assert regular == {nine.id: (9, 9, True), eight.id: (8, 8, False), centre.id: (9, 9, True)}

    # A stricter rule: a session counts only with at least two visits. Only `eight` had two a session.
    client_rules = {"cutoff": "", "active_months": "8", "active_min_visits": "2"}
    indicators.save_rules(session, admin, client_rules)
    stricter = _value(indicators.evaluate(session, admin, window, _all(session, admin), TZ), "active_houses")
    assert (stricter.numerator, stricter.denominator) == (1, 4)

    drill = indicators.drill(session, admin, "active_houses", window, _all(session, admin), TZ)
    by_venue = {row.key: (row.result.numerator, row.result.denominator) for row in drill.venues}
    assert by_venue == {nine.id: (0, 1), eight.id: (1, 1), empty.id: (0, 1), centre.id: (0, 1)}
    by_commune = {row.key: (row.result.numerator, row.result.denominator) for row in drill.communes}
    assert by_commune == {units["commune"].id: (1, 3), units["other"].id: (0, 1)}


def test_school_library_offers_services_when_it_had_visits(session: Session, settings: Settings) -> None:
    units = make_tree(session)
    admin = make_staff(session, Role.admin)
    busy, _quiet = (make_venue(session, units["commune"], type=VenueType.school_library) for _ in range(2))
    event = make_event(session, busy, starts_at=datetime(2025, 3, 3, 2, tzinfo=UTC))
    at = datetime(2025, 3, 3, 3, tzinfo=UTC)
    change_headcount(session, settings, HeadcountRequest(new_nonce(), event.id or 0, 12), staff=admin, now=at)
    window = report_window(2025, until=None, today=TODAY)

    result = _value(indicators.evaluate(session, admin, window, _all(session, admin), TZ), "school_lifelong")

    assert (result.numerator, result.denominator) == (1, 2) and result.status == Status.behind
    records = indicators.records(session, admin, "school_lifelong", window, busy.id or 0, TZ)
    assert [(r.event.id, r.visits, r.people) for r in records.events] == [(event.id, 12, 0)]


def test_office_targets_apply_to_its_unit_and_clearing_one_brings_back_the_plan(
    client: TestClient, session: Session
) -> None:
    units = make_tree(session)
    office = make_staff(session, Role.office, units["commune"])
    login(client, office)
    page = client.get("/indicators/targets")
    assert page.status_code == 200 and 'name="library_users-2026-low"' in page.text

    saved = client.post(
        "/indicators/targets", data={"library_users-2026-low": "12,5", "library_users-2026-high": "15"}
    )
    assert saved.status_code == 303
    row = session.exec(select(IndicatorTarget)).one()
    assert (row.indicator, row.year, row.unit_id, row.low, row.high, row.updated_by_id) == (
        "library_users",
        2026,
        units["commune"].id,
        12.5,
        15,
        office.id,
    )
    mine = areas.resolve_area(session, office, "")
    assert indicators.targets(session, mine, [2026])["library_users", 2026] == Target(12.5, 15, True)
    admin = make_staff(session, Role.admin)
    other = areas.resolve_area(session, admin, f"u:{units['other'].id}")
    assert indicators.targets(session, other, [2026])["library_users", 2026] == Target(8, 10)

    bad = client.post(
        "/indicators/targets",
        data={"library_users-2026-low": "", "active_houses-2026-low": "120", "library_users-2025-low": "x"},
    )
    assert bad.status_code == 422
    assert "active_houses-2026-low-error" in bad.text and "library_users-2025-low-error" in bad.text
    assert count_rows(session, IndicatorTarget) == 1  # nothing of the refused form was saved

    cleared = client.post(
        "/indicators/targets", data={"library_users-2026-low": "", "library_users-2026-high": ""}
    )
    assert cleared.status_code == 303 and count_rows(session, IndicatorTarget) == 0


def test_rules_form_changes_the_default_window_and_refuses_bad_values(
    client: TestClient, session: Session
) -> None:
    units = make_tree(session)
    office = make_staff(session, Role.office, units["province"])
    login(client, office)
    bad = client.post(
        "/indicators/rules", data={"cutoff": "31/02", "active_months": "13", "active_min_visits": "0"}
    )
    assert bad.status_code == 422
    for name in ("cutoff", "active_months", "active_min_visits"):
        assert f'id="{name}-error"' in bad.text
    assert (
        client.post(
            "/indicators/rules", data={"cutoff": "31/10", "active_months": "6", "active_min_visits": "1"}
        ).status_code
        == 303
    )

    page = client.get("/indicators", params={"year": "2025"})

    assert page.status_code == 200
    assert "01/11/2024–31/10/2025" in page.text
    assert re.search(r"ít nhất 6 tháng|at least 6 different months", page.text)


def test_indicator_pages_drill_down_to_venues_and_records(
    client: TestClient, session: Session, settings: Settings
) -> None:
    data = build_dataset(session, settings)
    office = make_staff(session, Role.office, data.units["province"])
    login(client, office)
    query = {"year": "2025", "cutoff": "31/12"}

    page = client.get("/indicators", params=query)
    assert page.status_code == 200
    for key in BY_KEY:
        assert f'id="indicator-{key.replace("_", "-")}"' in page.text
    drill = client.get("/indicators/library_users", params=query)
    assert drill.status_code == 200 and "Thư viện xã Văn Quan" in drill.text
    venue = data.venues["library"]
    records = client.get(f"/indicators/library_users/venues/{venue.id}", params=query)
    assert records.status_code == 200
    titles = {m.event.title for m in in_window(data, date(2025, 1, 1), date(2025, 12, 31), ("library",))}
    assert all(title in records.text for title in titles) and 'href="/events/' in records.text

    assert client.get("/indicators/unknown", params=query).status_code == 404
    assert client.get("/indicators", params={"area": "u:999999"}).status_code == 422
    assert client.get("/indicators", params={"year": "1999"}).status_code == 422


def test_indicators_stay_inside_the_staff_scope(client: TestClient, session: Session) -> None:
    units = make_tree(session)
    outside = make_venue(session, units["other"])
    office = make_staff(session, Role.office, units["commune"])
    organizer = make_staff(session, Role.organizer, units["commune"])
    login(client, organizer)
    assert client.get("/indicators").status_code == 403
    assert client.get("/indicators/targets").status_code == 403
    login(client, office)
    assert client.get("/indicators", params={"area": f"u:{units['other'].id}"}).status_code == 422
    assert client.get(f"/indicators/active_houses/venues/{outside.id}").status_code == 403
    page = client.get("/indicators")
    assert page.status_code == 200 and units["other"].name not in page.text


def _figures(session: Session, venue: Venue, metric: LibraryMetric, year: int, monthly: int) -> None:
    for month in range(1, 13):
        session.add(
            LibraryFigure(venue_id=venue.id or 0, year=year, month=month, metric=metric, value=monthly)
        )
    session.commit()


def test_library_figures_feed_their_indicators(session: Session, settings: Settings) -> None:
    units = make_tree(session)
    admin = make_staff(session, Role.admin)
    mine = make_venue(session, units["commune"], type=VenueType.commune_library)
    theirs = make_venue(session, units["other"], type=VenueType.commune_library)
    for venue, added in ((mine, (10, 11)), (theirs, (5, 5))):
        _figures(session, venue, LibraryMetric.copies_added, 2024, added[0])
        _figures(session, venue, LibraryMetric.copies_added, 2025, added[1])
    _figures(session, mine, LibraryMetric.materials_served, 2024, 100)
    _figures(session, mine, LibraryMetric.materials_served, 2025, 105)
    session.add(
        LibraryFigure(venue_id=mine.id or 0, year=2025, month=1, metric=LibraryMetric.desk_visits, value=50)
    )
    session.add(
        BookRotation(
            from_venue_id=mine.id or 0, to_venue_id=theirs.id or 0, copies=100, sent_on=date(2024, 5, 2)
        )
    )
    session.add(
        BookRotation(
            from_venue_id=mine.id or 0, to_venue_id=theirs.id or 0, copies=108, sent_on=date(2025, 5, 2)
        )
    )
    session.commit()
    window = report_window(2025, until=None, today=TODAY)
    everything = indicators.evaluate(session, admin, window, _all(session, admin), TZ)

    added = _value(everything, "materials_added")
    assert (added.value, added.previous) == (12 * 16, 12 * 15)  # both libraries, every month
    assert added.change == pytest.approx(100 / 15) and added.status == Status.behind  # 6.7 % < 8 %
    served = _value(everything, "materials_served")
    assert served.change == pytest.approx(5) and served.status == Status.behind  # the plan wants +10 %
    rotation = _value(everything, "book_rotation")
    assert (rotation.value, rotation.previous, rotation.status) == (108, 100, Status.met)
    users = _value(everything, "library_users")
    assert (users.value, users.previous, users.status) == (50, 0, Status.no_base)  # desk visits only

    commune = areas.resolve_area(session, admin, f"u:{units['commune'].id}")
    in_commune = _value(indicators.evaluate(session, admin, window, commune, TZ), "materials_added")
    assert (in_commune.value, in_commune.previous, in_commune.status) == (132, 120, Status.met)
    records = indicators.records(session, admin, "materials_added", window, mine.id or 0, TZ)
    assert [(r.figure.month, r.figure.value) for r in records.figures] == [(m, 11) for m in range(1, 13)]
    sent = indicators.records(session, admin, "book_rotation", window, mine.id or 0, TZ)
    assert [r.rotation.copies for r in sent.rotations] == [108]


def test_school_libraries_marked_by_hand_win_over_their_events(session: Session, settings: Settings) -> None:
    units = make_tree(session)
    admin = make_staff(session, Role.admin)
    busy, quiet, standard = (
        make_venue(session, units["commune"], type=VenueType.school_library) for _ in range(3)
    )
    event = make_event(session, busy, starts_at=datetime(2025, 3, 3, 2, tzinfo=UTC))
    at = datetime(2025, 3, 3, 3, tzinfo=UTC)
    change_headcount(session, settings, HeadcountRequest(new_nonce(), event.id or 0, 12), staff=admin, now=at)
    session.add(SchoolLibraryYear(venue_id=busy.id or 0, year=2025, offers_lifelong_learning=False))
    session.add(SchoolLibraryYear(venue_id=quiet.id or 0, year=2025, offers_lifelong_learning=True))
    session.add(LibraryStandard(venue_id=standard.id or 0, met_since=date(2025, 6, 1)))
    session.commit()
    window = report_window(2025, until=None, today=TODAY)
    evaluation = indicators.evaluate(session, admin, window, _all(session, admin), TZ)

    lifelong = _value(evaluation, "school_lifelong")
    assert (lifelong.numerator, lifelong.denominator) == (1, 3)  # quiet (marked), not busy (marked no)
    meets = _value(evaluation, "school_standard")
    assert (meets.numerator, meets.denominator, meets.previous_numerator) == (1, 3, 0)
    # 33 % against 80 % by 2030, up from 0 % in a year between milestones: on track.
    assert meets.status == Status.on_track
    early = report_window(2025, until=date(2025, 5, 31), today=TODAY)
    assert (
        _value(
            indicators.evaluate(session, admin, early, _all(session, admin), TZ), "school_standard"
        ).numerator
        == 0
    )


def test_a_group_and_a_moved_venue_count_where_they_stood(session: Session, settings: Settings) -> None:
    units = make_tree(session)
    admin = make_staff(session, Role.admin)
    house = make_venue(session, units["village"])  # in "commune" until 30/6/2025, then in "other"
    make_venue(session, units["other"], type=VenueType.culture_sport_centre)
    places_history.move_venue(session, admin, house.id or 0, unit_id=units["other"].id, on=date(2025, 7, 1))
    group = report_groups.save_group(session, admin, name="Huyện cũ", unit_ids=[units["other"].id or 0])
    in_group = areas.resolve_area(session, admin, f"g:{group.id}")
    commune = areas.resolve_area(session, admin, f"u:{units['commune'].id}")
    window = report_window(2025, until=None, today=TODAY)

    now_group = _value(indicators.evaluate(session, admin, window, in_group, TZ), "active_houses")
    now_commune = _value(indicators.evaluate(session, admin, window, commune, TZ), "active_houses")

    assert (now_group.denominator, now_group.previous_denominator) == (2, 1)
    assert (now_commune.denominator, now_commune.previous_denominator) == (0, 1)
    assert now_commune.status == Status.no_base and now_commune.value is None
    choices = dict(areas.area_choices(session, admin, "vi"))
    assert choices[f"g:{group.id}"] == "Nhóm: Huyện cũ" and choices[""] == "All communes and wards"
    office = make_staff(session, Role.office, units["commune"])
    with pytest.raises(FormError):
        areas.resolve_area(session, office, f"g:{group.id}")  # the group lies outside its scope


def _visits(session: Session, settings: Settings, staff: Staff, event_id: int | None, at: datetime, n: int,
            *, now: datetime | None = None) -> None:  # fmt: skip
    """`n` people checked in at the desk at `at` (typed in at `now`: later for a late batch)."""
    for i in range(n):
        request = CheckInRequest(
            Channel.staff_form,
            new_nonce(),
            Identity(profile=PEOPLE["m3"]),
            event_id=event_id,
            claimed_at=at + timedelta(minutes=i),
        )
        check_in(session, settings, request, staff=staff, now=(now or at) + timedelta(minutes=i))


def test_a_cancelled_session_keeps_the_visits_it_took_for_the_regularly_active_rule(
    session: Session, settings: Settings
) -> None:
    units = make_tree(session)
    admin = make_staff(session, Role.admin)
    attended, empty = (make_venue(session, units["village"]) for _ in range(2))
    for venue, visits_in_september in ((attended, 1), (empty, 0)):
        club = _club_with_sessions(session, settings, admin, venue, list(range(1, 9)), 1)
        start = datetime(2025, 9, 10, 12, tzinfo=UTC)
        ninth = make_event(session, venue, starts_at=start, type=EventType.club_session, club_id=club.id)
        _visits(session, settings, admin, ninth.id, start + timedelta(minutes=5), visits_in_september)
        events.cancel_event(session, ninth, now=start + timedelta(hours=1))  # called off half-way
    window = report_window(2025, until=None, today=TODAY)
    everywhere = _all(session, admin)

    evaluation = indicators.evaluate(session, admin, window, everywhere, TZ)

    # 8 months each, and a ninth for the house whose cancelled session had someone in it (by hand).
    assert (
        _value(evaluation, "active_houses").numerator,
        _value(evaluation, "active_houses").denominator,
    ) == (1, 2)
    assert _value(evaluation, "participation").value == 8 + 8 + 1
    months = {
        row.venue.id: row.months
        for row in indicators.annual_tables(session, admin, window, everywhere, TZ).clubs
    }
    assert months == {attended.id: 9, empty.id: 8}


def test_a_merge_into_another_commune_a_split_and_a_late_batch_count_where_each_record_stood(
    session: Session, settings: Settings
) -> None:
    """Mid-2025: village A of commune 1 merges into village B of commune 2, village C of commune 1 splits.
    Every visit is worked out by hand from the day it happened, then compared with the indicator, its
    drill-down by commune and the yearly report."""
    units = make_tree(session)
    admin = make_staff(session, Role.admin)
    one, two = units["commune"], units["other"]
    village_b = make_unit(session, UnitKind.village, two, name="Thôn Nà Pàn")
    village_c = make_unit(session, UnitKind.village, one, name="Thôn Khòn Pá")
    house_a = places.add_venue(
        session, name="NVH thôn Bản Cưởm", type="village_cultural_house", unit_id=units["village"].id
    )
    house_b = places.add_venue(
        session, name="NVH thôn Nà Pàn", type="village_cultural_house", unit_id=village_b.id
    )
    house_c = places.add_venue(
        session, name="NVH thôn Khòn Pá", type="village_cultural_house", unit_id=village_c.id
    )
    march, september = datetime(2025, 3, 10, 2, tzinfo=UTC), datetime(2025, 9, 10, 2, tzinfo=UTC)
    at = {
        (v.id, m): make_event(session, v, starts_at=m)
        for v in (house_a, house_b, house_c)
        for m in (march, september)
    }
    for (venue_id, month), n in {
        (house_a.id, march): 2,
        (house_b.id, march): 1,
        (house_c.id, march): 4,
    }.items():
        _visits(session, settings, admin, at[(venue_id, month)].id, month + timedelta(minutes=10), n)

    merged_on = date(2025, 8, 1)  # the units began on 1/7/2025, with the reform
    places_history.merge_village(session, admin, units["village"].id or 0, into_id=village_b.id, on=merged_on)
    parts = places_history.split_village(
        session, admin, village_c.id or 0, names=["Thôn Khòn Pá 1", "Thôn Khòn Pá 2"],
        venue_parts={house_c.id or 0: 1}, on=merged_on,
    )  # fmt: skip
    for (venue_id, month), n in {
        (house_a.id, september): 3,
        (house_b.id, september): 2,
        (house_c.id, september): 5,
    }.items():
        _visits(session, settings, admin, at[(venue_id, month)].id, month + timedelta(minutes=10), n)
    # A paper register of A's March event typed in after the merge: it counts for March's commune.
    _visits(
        session, settings, admin, at[(house_a.id, march)].id, march + timedelta(minutes=30), 6, now=september
    )

    expected = {one.id: 2 + 6 + 4 + 5, two.id: 1 + 3 + 2}  # by hand, from the day of each visit
    window = report_window(2025, until=None, today=TODAY)
    everywhere = _all(session, admin)

    drill = indicators.drill(session, admin, "participation", window, everywhere, TZ)
    assert {row.key: row.result.value for row in drill.communes} == expected
    for commune_id, visits in expected.items():
        area = areas.resolve_area(session, admin, f"u:{commune_id}")
        assert _value(indicators.evaluate(session, admin, window, area, TZ), "participation").value == visits
        assert yearly_totals(session, admin, window, TZ, area=area).visits == visits
    # The houses count for where they stand at the end of the year: A's house in commune 2, C's in its part.
    houses = _value(
        indicators.evaluate(session, admin, window, areas.resolve_area(session, admin, f"u:{two.id}"), TZ),
        "active_houses",
    )
    assert houses.denominator == 2
    assert places_history.venue_unit_on(session, house_c.id or 0, date(2025, 12, 31)) == parts[1].id


def _participation_and_visits(
    session: Session, staff: Staff, year: int, area_value: str
) -> tuple[int | None, int | None, int]:
    """The participation indicator, its last-year figure and the yearly report's visits of an area (""
    for all), through the window the pages use."""
    window = report_window(year, until=None, today=TODAY)
    area = areas.resolve_area(session, staff, area_value)
    result = _value(indicators.evaluate(session, staff, window, area, TZ), "participation")
    return result.value, result.previous, yearly_totals(session, staff, window, TZ, area=area).visits


def test_a_commune_merged_mid_year_counts_its_visits_before_the_merge_and_the_other_after(
    session: Session, settings: Settings
) -> None:
    """Commune A merges into commune B on 1/7/2026. Visits at a village house of A before the merge count
    for A, those after for B (with B's own); the whole area counts each once; 2025 stays as it was."""
    units = make_tree(session)
    admin = make_staff(session, Role.admin)
    a, b = units["commune"], units["other"]
    village_b = make_unit(session, UnitKind.village, b, name="Thôn Nà Pàn")
    house_a = places.add_venue(
        session, name="NVH thôn Bản Cưởm", type="village_cultural_house", unit_id=units["village"].id
    )
    house_b = places.add_venue(
        session, name="NVH thôn Nà Pàn", type="village_cultural_house", unit_id=village_b.id
    )
    last_year = datetime(2025, 9, 10, 2, tzinfo=UTC)
    march, september = datetime(2026, 3, 10, 2, tzinfo=UTC), datetime(2026, 9, 10, 2, tzinfo=UTC)
    at = {
        (v.id, m): make_event(session, v, starts_at=m)
        for v in (house_a, house_b)
        for m in (last_year, march, september)
    }
    for (venue_id, month), n in {
        (house_a.id, last_year): 3,
        (house_b.id, last_year): 1,
        (house_a.id, march): 2,
        (house_b.id, march): 1,
    }.items():
        _visits(session, settings, admin, at[(venue_id, month)].id, month + timedelta(minutes=10), n)
    a_in_2025 = _participation_and_visits(session, admin, 2025, f"u:{a.id}")
    assert a_in_2025[0] == a_in_2025[2] == 3  # by hand: A's house had 3 visits in September 2025

    commune_changes.merge_commune(
        session, admin, a.id or 0, into_id=b.id, on=date(2026, 7, 1), now=datetime(2026, 11, 24, tzinfo=UTC)
    )
    for (venue_id, month), n in {(house_a.id, september): 4, (house_b.id, september): 5}.items():
        _visits(session, settings, admin, at[(venue_id, month)].id, month + timedelta(minutes=10), n)
    # A paper register of A's March event typed in after the merge: March's commune, A.
    _visits(
        session, settings, admin, at[(house_a.id, march)].id, march + timedelta(minutes=30), 1, now=september
    )

    # By hand, from the day of each visit: 2026 gives A 2 + 1 (March), B 1 (March) + 4 + 5 (September).
    assert _participation_and_visits(session, admin, 2026, f"u:{a.id}") == (2 + 1, 3, 2 + 1)
    assert _participation_and_visits(session, admin, 2026, f"u:{b.id}") == (1 + 4 + 5, 1, 1 + 4 + 5)
    assert _participation_and_visits(session, admin, 2026, "") == (13, 4, 13)
    assert _participation_and_visits(session, admin, 2025, f"u:{a.id}") == a_in_2025
    assert _participation_and_visits(session, admin, 2025, f"u:{b.id}")[::2] == (1, 1)
    window = report_window(2026, until=None, today=TODAY)
    drill = indicators.drill(session, admin, "participation", window, _all(session, admin), TZ)
    assert {row.key: row.result.value for row in drill.communes} == {a.id: 3, b.id: 10}
