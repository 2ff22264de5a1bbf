"""Yearly totals: windows, counts checked against numbers computed here from the check-ins made, scope."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from server.config import Settings
from server.errors import AppError, ErrorCode, FormError
from server.models import (
    AgeBand,
    Campaign,
    Channel,
    Event,
    EventType,
    Gender,
    OrgUnit,
    Role,
    Venue,
    VenueType,
)
from server.services.checkin import CheckInRequest, Identity, check_in, new_nonce
from server.services.identities import Profile
from server.services.reports import YearlyTotals, report_window, window_from_query, yearly_totals
from server.services.scans import code_for
from tests.factories import login, make_event, make_staff, make_tree, make_venue

TZ = ZoneInfo("Asia/Ho_Chi_Minh")
TODAY = date(2026, 11, 24)
RETURNING = ("an", "binh")  # they come back with their phone; the others are one-off entries by staff
PEOPLE = {
    name: Profile(age_band=AgeBand(band), gender=Gender(gender), consent=True)
    for name, band, gender in [
        ("an", "25-59", "female"),
        ("binh", "12-15", "male"),
        ("m0", "6-11", "female"),
        ("m1", "60+", "male"),
        ("m2", "16-24", "unspecified"),
        ("m3", "25-59", "male"),
        ("m4", "0-5", "female"),
        ("m5", "60+", "female"),
        ("m6", "16-24", "male"),
        ("m7", "25-59", "female"),
        ("m8", "12-15", "female"),
    ]
}


@dataclass(frozen=True)
class Made:
    """One check-in as the test made it: what the report must count, worked out without the database."""

    person: str
    event: Event
    venue: Venue
    commune: OrgUnit | None
    at: datetime

    @property
    def profile(self) -> Profile:
        return PEOPLE[self.person]

    @property
    def local_day(self) -> date:
        return self.at.astimezone(TZ).date()


@dataclass(frozen=True)
class DataSet:
    units: dict[str, OrgUnit]
    venues: dict[str, Venue]
    made: list[Made]


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def build_dataset(session: Session, settings: Settings) -> DataSet:
    """Two communes, a village, a province-level library; eight event types and campaigns; 2024-2026."""
    units = make_tree(session)
    places = {  # key: (unit, its commune, venue name, venue type)
        "house": ("village", "commune", "Nhà văn hóa thôn Bản Cưởm", VenueType.village_cultural_house),
        "library": ("commune", "commune", "Thư viện xã Văn Quan", VenueType.commune_library),
        "centre": (
            "other",
            "other",
            "Trung tâm Văn hóa - Thể thao xã Tri Lễ",
            VenueType.culture_sport_centre,
        ),
        "province": ("province", None, "Thư viện tỉnh Lạng Sơn", VenueType.provincial_library),
    }
    venues = {
        key: make_venue(session, units[u], name=name, type=kind) for key, (u, _, name, kind) in places.items()
    }
    commune_of = {key: units[c] if c else None for key, (_, c, _, _) in places.items()}

    def event(venue: str, kind: EventType, campaign: Campaign, starts: datetime) -> tuple[str, Event]:
        return venue, make_event(session, venues[venue], starts_at=starts, type=kind, campaign=campaign)

    festival = event("house", EventType.reading_festival, Campaign.reading_day, utc(2025, 4, 21, 1))
    contest = event("library", EventType.contest, Campaign.world_book_day, utc(2025, 4, 23, 2))
    club = event("library", EventType.club_session, Campaign.none, utc(2025, 1, 31, 18, 30))
    new_year = event("centre", EventType.talk, Campaign.none, utc(2024, 12, 31, 17))
    exhibit = event("province", EventType.exhibition, Campaign.museum_day, utc(2025, 5, 18, 2))
    week = event("house", EventType.talk, Campaign.lifelong_learning_week, utc(2025, 10, 2, 1))
    donation = event("centre", EventType.book_donation, Campaign.heritage_day, utc(2025, 12, 31, 15))
    old = event("library", EventType.library_visit, Campaign.none, utc(2024, 6, 1, 2))
    this_year = event("library", EventType.other, Campaign.none, utc(2026, 3, 8, 2))
    plan = [
        ("an", festival, utc(2025, 4, 21, 2)),
        ("an", contest, utc(2025, 4, 23, 3)),
        ("an", week, utc(2025, 10, 2, 2)),
        ("an", club, utc(2025, 1, 31, 20)),  # 03:00 on 1 February in Vietnam
        ("binh", festival, utc(2025, 4, 21, 3)),
        ("binh", exhibit, utc(2025, 5, 18, 3)),
        ("binh", old, utc(2024, 6, 1, 3)),
        ("binh", this_year, utc(2026, 3, 8, 3)),
        ("m0", festival, utc(2025, 4, 21, 4)),
        ("m1", festival, utc(2025, 4, 21, 5)),
        ("m2", contest, utc(2025, 4, 23, 4)),
        ("m3", exhibit, utc(2025, 5, 18, 4)),
        ("m4", new_year, utc(2024, 12, 31, 18, 30)),  # 01:30 on 1/1/2025 in Vietnam: counts in 2025
        ("m5", club, utc(2025, 1, 31, 16, 59)),  # 23:59 on 31 January in Vietnam
        ("m6", donation, utc(2025, 12, 31, 16, 30)),  # 23:30 on 31/12/2025 in Vietnam
        ("m7", donation, utc(2025, 12, 31, 17, 30)),  # 00:30 on 1/1/2026 in Vietnam: not in 2025
        ("m8", week, utc(2025, 10, 2, 3)),
    ]
    tokens: dict[str, str] = {}
    made = []
    organizer = make_staff(session, Role.admin)
    for person, (venue, ev), at in plan:
        if person in RETURNING:  # their phone scans the poster
            token = tokens.get(person)
            identity = Identity(device_token=token, profile=None if token else PEOPLE[person])
            request = CheckInRequest(Channel.page, new_nonce(), identity, code=code_for(ev, settings))
            result = check_in(session, settings, request, now=at)
            tokens[person] = token or result.device_token or ""
        else:  # no phone: the organizer enters them
            request = CheckInRequest(
                Channel.staff_form, new_nonce(), Identity(profile=PEOPLE[person]), event_id=ev.id
            )
            check_in(session, settings, request, staff=organizer, now=at)
        made.append(Made(person, ev, venues[venue], commune_of[venue], at))
    return DataSet(units, venues, made)


KEYS: dict[str, Callable[[Made], str]] = {
    "commune": lambda m: str(m.commune.id) if m.commune else "",
    "venue": lambda m: str(m.venue.id),
    "venue_type": lambda m: m.venue.type.value,
    "event_type": lambda m: m.event.type.value,
    "campaign": lambda m: m.event.campaign.value,
    "month": lambda m: str(m.at.astimezone(TZ).month),
    "age_band": lambda m: m.profile.age_band.value,
    "gender": lambda m: m.profile.gender.value,
}


def expected(made: list[Made], key: Callable[[Made], str]) -> dict[str, tuple[int, int]]:
    visits: Counter[str] = Counter()
    people: defaultdict[str, set[str]] = defaultdict(set)
    for m in made:
        visits[key(m)] += 1
        people[key(m)].add(m.person)
    return {k: (visits[k], len(people[k])) for k in visits}


def counted(totals: YearlyTotals, breakdown: str) -> dict[str, tuple[int, int]]:
    rows = next(b for b in totals.breakdowns if b.key == breakdown).rows
    return {row.key: (row.visits, row.people) for row in rows if row.visits or row.people}


def in_window(data: DataSet, start: date, end: date, venues: tuple[str, ...] | None = None) -> list[Made]:
    allowed = {data.venues[v].id for v in venues} if venues else None
    return [
        m for m in data.made if start <= m.local_day <= end and (allowed is None or m.venue.id in allowed)
    ]


def admin_totals(session: Session, until: date | None = None) -> YearlyTotals:
    window = report_window(2025, until=until, today=TODAY)
    return yearly_totals(session, make_staff(session, Role.admin), window, TZ)


# --- the window --------------------------------------------------------------------------------------


def test_window_of_current_year_ends_today() -> None:
    assert report_window(2026, until=None, today=TODAY) == report_window(
        2026, until=date(2026, 12, 1), today=TODAY
    )
    window = report_window(2026, until=None, today=TODAY)
    assert (window.start, window.end) == (date(2026, 1, 1), TODAY)


def test_window_of_past_year_ends_on_31_december_or_cut_off() -> None:
    assert report_window(2025, until=None, today=TODAY).end == date(2025, 12, 31)
    assert report_window(2025, until=date(2025, 11, 10), today=TODAY).end == date(2025, 11, 10)


@pytest.mark.parametrize("until", [date(2024, 12, 31), date(2026, 1, 1)])
def test_cut_off_outside_the_year_is_refused(until: date) -> None:
    with pytest.raises(FormError) as refused:
        report_window(2025, until=until, today=TODAY)
    assert set(refused.value.fields) == {"until"}


@pytest.mark.parametrize("year", ["1800", "2027", "abc", "２０２６", "20261", ""])
def test_year_outside_range_or_not_a_year_is_refused(year: str) -> None:
    with pytest.raises(FormError) as refused:
        window_from_query(year, "", today=TODAY)
    assert set(refused.value.fields) == {"year"}


def test_window_bounds_are_local_midnights_in_utc() -> None:
    window = report_window(2025, until=None, today=TODAY)
    assert window.bounds(TZ) == (utc(2024, 12, 31, 17), utc(2025, 12, 31, 17))


# --- the counts --------------------------------------------------------------------------------------


def test_totals_count_visits_and_distinct_people_separately(session: Session, settings: Settings) -> None:
    data = build_dataset(session, settings)
    totals = admin_totals(session)
    made = in_window(data, date(2025, 1, 1), date(2025, 12, 31))
    assert (totals.visits, totals.people) == (len(made), len({m.person for m in made}))
    assert totals.visits > totals.people  # "an" came four times


@pytest.mark.parametrize("breakdown", list(KEYS))
def test_each_breakdown_matches_counts_made_in_the_test(
    session: Session, settings: Settings, breakdown: str
) -> None:
    data = build_dataset(session, settings)
    totals = admin_totals(session)
    assert counted(totals, breakdown) == expected(
        in_window(data, date(2025, 1, 1), date(2025, 12, 31)), KEYS[breakdown]
    )


def test_late_evening_utc_counts_in_the_next_local_month(session: Session, settings: Settings) -> None:
    build_dataset(session, settings)
    totals = admin_totals(session)
    months = counted(totals, "month")
    assert months["1"] == (2, 2)  # m4 (1/1 01:30) and m5 (31/1 23:59); not an's 31/1 20:00 UTC
    assert months["2"] == (1, 1)
    assert months["12"] == (1, 1)  # m6 at 23:30 on 31/12; m7 is already 2026


def test_months_and_enum_members_are_all_listed_in_declared_order(
    session: Session, settings: Settings
) -> None:
    build_dataset(session, settings)
    totals = admin_totals(session)
    keys = {b.key: [row.key for row in b.rows] for b in totals.breakdowns}
    assert keys["month"] == [str(m) for m in range(1, 13)]
    for name, kind in [
        ("venue_type", VenueType),
        ("event_type", EventType),
        ("campaign", Campaign),
        ("age_band", AgeBand),
        ("gender", Gender),
    ]:
        assert keys[name] == [member.value for member in kind]
    assert dict(counted(totals, "month")).get("3") is None  # March is listed with zeros


def test_communes_and_venues_are_sorted_by_name_with_province_level_last(
    session: Session, settings: Settings
) -> None:
    build_dataset(session, settings)
    totals = admin_totals(session)
    names = {b.key: [row.text("vi") for row in b.rows] for b in totals.breakdowns}
    assert names["commune"] == ["Xã Tri Lễ", "Xã Văn Quan", "Cấp tỉnh (không thuộc xã)"]
    assert names["venue"] == [
        "Nhà văn hóa thôn Bản Cưởm",
        "Thư viện tỉnh Lạng Sơn",
        "Thư viện xã Văn Quan",
        "Trung tâm Văn hóa - Thể thao xã Tri Lễ",
    ]


def test_cut_off_excludes_later_check_ins(session: Session, settings: Settings) -> None:
    data = build_dataset(session, settings)
    totals = admin_totals(session, until=date(2025, 4, 30))
    made = in_window(data, date(2025, 1, 1), date(2025, 4, 30))
    assert (totals.visits, totals.people) == (len(made), len({m.person for m in made}))
    assert counted(totals, "campaign") == expected(made, KEYS["campaign"])
    assert "museum_day" not in counted(totals, "campaign")


@pytest.mark.parametrize("unit", ["commune", "other"])
def test_office_sees_only_check_ins_at_venues_in_its_unit(
    session: Session, settings: Settings, unit: str
) -> None:
    data = build_dataset(session, settings)
    office = make_staff(session, Role.office, data.units[unit])
    totals = yearly_totals(session, office, report_window(2025, until=None, today=TODAY), TZ)
    made = in_window(
        data, date(2025, 1, 1), date(2025, 12, 31), ("house", "library") if unit == "commune" else ("centre",)
    )
    assert (totals.visits, totals.people) == (len(made), len({m.person for m in made}))
    assert counted(totals, "venue") == expected(made, KEYS["venue"])
    assert totals.unit_name == data.units[unit].name


def test_organizer_is_refused(session: Session, settings: Settings) -> None:
    units = make_tree(session)
    organizer = make_staff(session, Role.organizer, units["commune"])
    with pytest.raises(AppError) as refused:
        yearly_totals(session, organizer, report_window(2025, until=None, today=TODAY), TZ)
    assert refused.value.code == ErrorCode.forbidden


# --- the page ----------------------------------------------------------------------------------------


def test_report_page_states_window_rule_and_totals(
    client: TestClient, session: Session, settings: Settings
) -> None:
    data = build_dataset(session, settings)
    login(client, make_staff(session, Role.office, data.units["commune"]))
    page = client.get("/reports", params={"year": "2025", "until": "2025-06-30"})
    assert page.status_code == 200
    made = in_window(data, date(2025, 1, 1), date(2025, 6, 30), ("house", "library"))
    assert f'<b id="total-visits">{len(made)}</b>' in page.text
    assert f'<b id="total-people">{len({m.person for m in made})}</b>' in page.text
    assert "Năm thống kê 2025: 01/01/2025–30/06/2025" in page.text
    assert "Lượt = số lần điểm danh cộng số khách vãng lai đếm tại cửa" in page.text
    assert '<div class="bar" aria-hidden="true" style="width: 100.0%">' in page.text
    assert "Theo điểm tổ chức" in page.text
    assert 'href="/reports/2025.xlsx?cutoff=31%2F12&amp;until=2025-06-30"' in page.text
    assert "Xã Tri Lễ" not in page.text


def test_report_page_defaults_to_the_current_year(client: TestClient, session: Session) -> None:
    login(client, make_staff(session, Role.admin))
    page = client.get("/reports")
    year = datetime.now(TZ).year
    assert page.status_code == 200 and f"Năm thống kê {year}: 01/01/{year}" in page.text


def test_organizer_gets_403_on_reports(client: TestClient, session: Session) -> None:
    login(client, make_staff(session, Role.organizer, make_tree(session)["commune"]))
    assert client.get("/reports").status_code == 403
    assert client.get("/reports/2025.xlsx").status_code == 403


def test_reports_need_a_login(client: TestClient) -> None:
    response = client.get("/reports")
    assert response.status_code == 303 and response.headers["location"].startswith("/login")


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("/reports?year=abc", "Hãy chọn một năm từ 2000 đến năm nay."),
        ("/reports?year=1800", "Hãy chọn một năm từ 2000 đến năm nay."),
        ("/reports/1800.xlsx", "Hãy chọn một năm từ 2000 đến năm nay."),
        ("/reports/abc.csv", "Hãy chọn một năm từ 2000 đến năm nay."),
        ("/reports?year=2025&until=2024-05-01", "Ngày cắt số liệu phải nằm trong năm đã chọn."),
        ("/reports/2025.csv?until=30/06/2025", "Ngày cắt số liệu không phải là một ngày hợp lệ."),
    ],
)
def test_bad_year_or_cut_off_gives_422_page_not_500(
    client: TestClient, session: Session, url: str, message: str
) -> None:
    login(client, make_staff(session, Role.admin))
    response = client.get(url)
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("text/html")
    assert message in response.text
