"""Flooding an event's count (services/flood.py): the budget of new people one address may bring to one event
in a minute, what is stored past it (suspicious) and refused past three times it, and the one logged action
that takes a flood out of every count and its undoing. Times are passed as `now=`; nothing here depends on
the clock. Each test runs on SQLite and PostgreSQL; tests/browser/test_flood_workers.py floods the real app
with two workers.
"""

from __future__ import annotations

import io
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import openpyxl
import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, col, select

from server.config import Settings
from server.errors import AppError, ErrorCode
from server.models import AuditEntry, Channel, CheckIn, CheckInAttempt, CheckInExclusion, Event, Role, Staff
from server.services import attendance, checkin_export, flood, indicators, reports
from server.services.areas import Area
from server.services.checkin import CheckInRequest, Identity, check_in, new_nonce
from tests.factories import login, make_event, make_staff, make_tree, make_venue
from tests.test_checkin import ADULT, phone

T0 = datetime(2026, 3, 10, 2, 0, tzinfo=UTC)  # 9:00 in Vietnam; the event runs 9:00-12:00
MINUTE_A = T0 + timedelta(minutes=30)
MINUTE_B = MINUTE_A + timedelta(minutes=1)
VILLAGE_NAT = "203.0.113.7"  # one carrier address for a whole village
ELSEWHERE = "198.51.100.20"
TODAY = date(2026, 12, 31)
BUDGET = 3  # a small budget keeps the tests short; the rule is the same at the default 20
TZ = ZoneInfo("Asia/Ho_Chi_Minh")


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The app's settings in this module (the client's app too), with the small budget."""
    return replace(settings, flood_new_per_minute=BUDGET)


@pytest.fixture
def small(settings: Settings) -> Settings:
    return settings


def newcomer(session: Session, settings: Settings, event: Event, address: str, now: datetime) -> CheckIn:
    """A new person from an anonymous phone, from `address`."""
    return check_in(session, settings, phone(event, settings), now=now, address=address).check_in


def stored(session: Session, event_id: int) -> list[CheckIn]:
    session.commit()
    return list(session.exec(select(CheckIn).where(CheckIn.event_id == event_id).order_by(col(CheckIn.id))))


def test_past_the_budget_new_people_are_stored_but_suspicious_and_past_three_times_refused(
    session: Session, small: Settings
) -> None:
    event = make_event(session, make_venue(session, make_tree(session)["village"]), starts_at=T0)
    for n in range(BUDGET):
        assert not newcomer(session, small, event, VILLAGE_NAT, MINUTE_A + timedelta(seconds=n)).suspicious
    rows = stored(session, event.id or 0)
    assert [r.suspicious for r in rows] == [False] * BUDGET

    for n in range(BUDGET, 3 * BUDGET):
        assert newcomer(session, small, event, VILLAGE_NAT, MINUTE_A + timedelta(seconds=n)).suspicious
    rows = stored(session, event.id or 0)
    # Once the address is over its budget, its whole minute is suspicious (the first ones were the flood too).
    assert len(rows) == 3 * BUDGET and all(r.suspicious for r in rows)
    assert len({r.source for r in rows}) == 1 and VILLAGE_NAT not in (rows[0].source or "")

    with pytest.raises(AppError) as refused:
        newcomer(session, small, event, VILLAGE_NAT, MINUTE_A + timedelta(seconds=45))
    error = refused.value
    assert error.code == ErrorCode.checkin_busy and error.extra["retry_after"] == 15
    assert len(stored(session, event.id or 0)) == 3 * BUDGET
    last = session.exec(select(CheckInAttempt).order_by(col(CheckInAttempt.id).desc())).first()
    assert last is not None and last.outcome == "checkin_busy"

    # The next minute the address has its budget again.
    assert not newcomer(session, small, event, VILLAGE_NAT, MINUTE_B).suspicious


def test_budget_holds_per_address_and_per_event(session: Session, small: Settings) -> None:
    venue = make_venue(session, make_tree(session)["village"])
    event, other_event = (make_event(session, venue, starts_at=T0) for _ in range(2))
    for n in range(3 * BUDGET):
        newcomer(session, small, event, VILLAGE_NAT, MINUTE_A + timedelta(seconds=n))
    assert not newcomer(session, small, event, ELSEWHERE, MINUTE_A + timedelta(seconds=50)).suspicious
    assert not newcomer(session, small, other_event, VILLAGE_NAT, MINUTE_A + timedelta(seconds=51)).suspicious


def test_an_ipv6_subscriber_is_one_source_whatever_its_last_64_bits(small: Settings) -> None:
    first = flood.source_of(small, "2001:db8:1:2:aaaa::1")
    assert first == flood.source_of(small, "2001:db8:1:2:ffff:1:2:3")
    assert first != flood.source_of(small, "2001:db8:1:3::1")
    assert flood.source_of(small, "::ffff:203.0.113.7") == flood.source_of(small, VILLAGE_NAT)


def test_returning_phones_staff_and_kiosks_are_never_limited(session: Session, small: Settings) -> None:
    units = make_tree(session)
    venue = make_venue(session, units["village"])
    first, event = (make_event(session, venue, starts_at=T0) for _ in range(2))
    organizer = make_staff(session, Role.organizer, units["commune"])
    tokens = []
    for n in range(2 * BUDGET):  # residents who came before, each from their own phone
        result = check_in(session, small, phone(first, small), now=MINUTE_A - timedelta(minutes=5 + n))
        tokens.append(result.device_token)
    for n in range(3 * BUDGET):  # the village's address is over its hard limit at this event
        newcomer(session, small, event, VILLAGE_NAT, MINUTE_A + timedelta(seconds=n))
    for n, token in enumerate(tokens):
        request = phone(event, small, token=token, profile=None)
        kept = check_in(
            session, small, request, now=MINUTE_A + timedelta(seconds=20 + n), address=VILLAGE_NAT
        )
        assert not kept.check_in.suspicious and kept.check_in.source is None
    for n in range(3 * BUDGET):  # the organizer types in new people from a paper list, same minute
        request = CheckInRequest(
            channel=Channel.staff_form, key=new_nonce(), identity=Identity(profile=ADULT), event_id=event.id
        )
        row = check_in(
            session, small, request, staff=organizer, now=MINUTE_A + timedelta(seconds=40 + n)
        ).check_in
        assert not row.suspicious and row.source is None


def test_an_event_expecting_a_big_crowd_has_a_bigger_budget(session: Session, small: Settings) -> None:
    venue = make_venue(session, make_tree(session)["village"])
    event = make_event(session, venue, starts_at=T0, expected_audience=80)
    assert flood.budget(small, event) == 8 and flood.hard_limit(small, event) == 24
    for n in range(8):
        assert not newcomer(session, small, event, VILLAGE_NAT, MINUTE_A + timedelta(seconds=n)).suspicious
    assert newcomer(session, small, event, VILLAGE_NAT, MINUTE_A + timedelta(seconds=9)).suspicious


# --- Excluding a flood from every count --------------------------------------------------------------


def _counts(session: Session, office: Staff, event_id: int) -> dict[str, int]:
    """Visits as every count sees them: live, the yearly report, the indicators, the records export."""
    session.commit()
    window = reports.report_window(2026, until=None, today=TODAY)
    live = attendance.live_summary(session, event_id)
    totals = reports.yearly_totals(session, office, window, TZ)
    everything = Area(value="", name="", unit_ids=None)
    visits, people = indicators.visit_totals(session, window, everything, TZ, None)
    exported = list(checkin_export.export_rows(session, office, window, TZ))
    return {
        "live visits": live.visits,
        "live people": live.people,
        "yearly visits": totals.visits,
        "yearly people": totals.people,
        "indicator visits": visits,
        "indicator people": people,
        "exported rows": len(exported),
    }


def test_excluded_flood_is_gone_from_every_count_and_comes_back_on_undo(
    session: Session, small: Settings
) -> None:
    units = make_tree(session)
    event = make_event(session, make_venue(session, units["village"]), starts_at=T0)
    organizer = make_staff(session, Role.organizer, units["commune"])
    office = make_staff(session, Role.admin)
    for n in range(2):  # two people who really came, from their own phones
        newcomer(session, small, event, f"192.0.2.{n + 1}", MINUTE_A)
    for n in range(3 * BUDGET):  # a script, one address, one minute
        newcomer(session, small, event, ELSEWHERE, MINUTE_B + timedelta(seconds=n))
    everything = 2 + 3 * BUDGET
    assert set(_counts(session, office, event.id or 0).values()) == {everything}

    view = flood.overview(session, event.id or 0)
    assert view.suspicious == 3 * BUDGET and view.excluded == 0
    assert [(g.count, g.minute) for g in view.groups] == [(3 * BUDGET, MINUTE_B)]

    version = attendance.live_version(session, event.id or 0)
    exclusion = flood.exclude(session, organizer, event, now=MINUTE_B + timedelta(minutes=5))
    assert attendance.live_version(session, event.id or 0) != version  # the organizer's live page updates
    assert (exclusion.count, exclusion.excluded_by_id) == (3 * BUDGET, organizer.id)
    assert set(_counts(session, office, event.id or 0).values()) == {2}
    assert flood.overview(session, event.id or 0).excluded == 3 * BUDGET

    flood.undo(session, office, event, exclusion.id or 0, now=MINUTE_B + timedelta(minutes=9))
    assert set(_counts(session, office, event.id or 0).values()) == {everything}
    log = flood.overview(session, event.id or 0).exclusions
    assert [(e.count, by.id, undone.id if undone else None) for e, by, undone in log] == [
        (3 * BUDGET, organizer.id, office.id)
    ]
    session.commit()
    logged = session.exec(
        select(AuditEntry).where(col(AuditEntry.target_kind) == "exclusion").order_by(col(AuditEntry.id))
    ).all()
    assert [(a.action, a.staff_id, a.target_id) for a in logged] == [
        ("checkins_excluded", organizer.id, str(exclusion.id)),
        ("exclusion_undone", office.id, str(exclusion.id)),
    ]


def test_one_source_one_minute_can_be_excluded_alone(session: Session, small: Settings) -> None:
    units = make_tree(session)
    event = make_event(session, make_venue(session, units["village"]), starts_at=T0)
    organizer = make_staff(session, Role.organizer, units["commune"])
    for n in range(2 * BUDGET):
        newcomer(session, small, event, ELSEWHERE, MINUTE_A + timedelta(seconds=n))
        newcomer(session, small, event, VILLAGE_NAT, MINUTE_A + timedelta(seconds=n))
    source = flood.source_of(small, ELSEWHERE)
    flood.exclude(session, organizer, event, source=source, minute=MINUTE_A + timedelta(seconds=30))
    rows = stored(session, event.id or 0)
    assert {r.source for r in rows if r.excluded_by_id} == {source}
    assert sum(1 for r in rows if r.excluded_by_id is None) == 2 * BUDGET


# --- Over HTTP ---------------------------------------------------------------------------------------


def test_public_api_over_the_limit_is_429_with_retry_after_in_vietnamese(
    session: Session, settings: Settings, client: TestClient
) -> None:
    event = make_event(session, make_venue(session, make_tree(session)["village"]))
    code = phone(event, settings).code
    limit = flood.hard_limit(settings, event)
    answers = []
    for _ in range(2 * limit + 1):  # a refusal even if a minute boundary falls inside
        body = {
            "code": code,
            "nonce": new_nonce(),
            "profile": {"age_band": "25-59", "gender": "female", "consent": True},
        }
        answers.append(client.post("/api/v1/checkins", json=body, headers={"Accept-Language": "vi"}))
    statuses = [a.status_code for a in answers]
    # The test client is one address; a minute boundary in the middle gives it a second budget.
    assert statuses.count(201) >= limit and set(statuses) <= {201, 429} and 429 in statuses
    stored_rows = stored(session, event.id or 0)
    by_minute: dict[datetime, list[CheckIn]] = {}
    for row in stored_rows:
        by_minute.setdefault(flood.minute_of(row.received_at), []).append(row)
    for rows in by_minute.values():
        assert len(rows) <= limit
        assert sum(1 for r in rows if not r.suspicious) <= flood.budget(settings, event)
    flagged = [a.json() for a in answers if a.status_code == 201 and a.json()["suspicious"]]
    assert flagged and all(not f["excluded"] for f in flagged)
    refused = answers[statuses.index(429)]
    assert refused.json()["code"] == "checkin_busy"
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert "quá nhiều người mới" in refused.json()["title"] + refused.json().get("detail", "")


def test_organizer_sees_and_excludes_on_the_event_page_office_sees_the_list(
    session: Session, small: Settings, settings: Settings, client: TestClient
) -> None:
    units = make_tree(session)
    event = make_event(session, make_venue(session, units["village"]))
    organizer = make_staff(session, Role.organizer, units["commune"])
    stranger = make_staff(session, Role.organizer, units["other"])
    office = make_staff(session, Role.office, units["province"])
    now = datetime.now(UTC)
    for _ in range(3 * BUDGET):
        newcomer(session, small, event, ELSEWHERE, now)
    login(client, office)
    listing = client.get("/events/suspicious")
    assert (
        listing.status_code == 200
        and event.title in listing.text
        and f"/events/{event.id}#suspicious" in listing.text
    )
    client.post("/logout")

    login(client, stranger)
    assert client.post(f"/events/{event.id}/suspicious/exclude").status_code in (403, 404)
    assert event.title not in client.get("/events/suspicious").text
    client.post("/logout")

    login(client, organizer)
    page = client.get(f"/events/{event.id}", headers={"Accept-Language": "vi"})
    assert 'id="suspicious"' in page.text and "Lượt điểm danh đáng ngờ" in page.text
    done = client.post(f"/events/{event.id}/suspicious/exclude", follow_redirects=False)
    assert done.status_code == 303
    assert attendance.live_summary(session, event.id or 0).visits == 0
    exclusion = session.exec(select(CheckInExclusion)).one()
    assert client.post(f"/events/{event.id}/suspicious/exclude").status_code == 409  # nothing left
    undone = client.post(f"/events/{event.id}/suspicious/{exclusion.id}/undo", follow_redirects=False)
    assert undone.status_code == 303
    session.commit()
    assert attendance.live_summary(session, event.id or 0).visits == 3 * BUDGET
    assert client.post(f"/events/{event.id}/suspicious/{exclusion.id}/undo").status_code == 409


def test_exports_drop_an_excluded_flood(session: Session, small: Settings, client: TestClient) -> None:
    units = make_tree(session)
    event = make_event(session, make_venue(session, units["village"]), starts_at=T0)
    admin = make_staff(session, Role.admin)
    newcomer(session, small, event, "192.0.2.1", MINUTE_A)
    for n in range(3 * BUDGET):
        newcomer(session, small, event, ELSEWHERE, MINUTE_B + timedelta(seconds=n))
    login(client, admin)

    def exported() -> tuple[int, int]:
        records = client.get("/reports/2026/checkins.csv?until=2026-12-31")
        assert records.status_code == 200
        book = client.get("/reports/2026.xlsx?until=2026-12-31")
        assert book.status_code == 200
        sheet = openpyxl.load_workbook(io.BytesIO(book.content)).worksheets[0]
        numbers = [c for row in sheet.iter_rows(values_only=True) for c in row if isinstance(c, int)]
        return records.text.strip().count("\n"), max(numbers)

    assert exported() == (1 + 3 * BUDGET, 1 + 3 * BUDGET)
    exclusion = flood.exclude(session, admin, event)
    assert exported() == (1, 1)
    flood.undo(session, admin, event, exclusion.id or 0)
    assert exported() == (1 + 3 * BUDGET, 1 + 3 * BUDGET)


def test_page_over_the_limit_keeps_the_form_and_says_wait_a_minute(
    session: Session, settings: Settings, client: TestClient
) -> None:
    event = make_event(session, make_venue(session, make_tree(session)["village"]))
    path = f"/c/{phone(event, settings).code}"
    form = {"age_band": "25-59", "gender": "female", "consent": "yes"}
    answers = []
    # Twice the hard limit and one: a refusal even if a minute boundary falls inside.
    for _ in range(2 * flood.hard_limit(settings, event) + 1):
        client.cookies.clear()  # a new phone each time
        answers.append(
            client.post(path, data={**form, "nonce": new_nonce()}, headers={"Accept-Language": "vi"})
        )
    statuses = [a.status_code for a in answers]
    assert set(statuses) <= {200, 429} and statuses.count(200) >= flood.hard_limit(settings, event)
    assert 429 in statuses
    for busy in (a for a in answers if a.status_code == 429):
        assert "Vui lòng đợi một phút rồi bấm nút điểm danh lại" in busy.text
        assert 'name="consent"' in busy.text and 1 <= int(busy.headers["Retry-After"]) <= 60
