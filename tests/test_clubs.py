"""Clubs and their sessions: the schedule, members, scope, the year-round code and poster, through HTTP."""

from __future__ import annotations

import re
import threading
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from xml.etree import ElementTree as ET

import PIL.Image
import pytest
import zxingcpp
from fastapi.testclient import TestClient
from sqlmodel import Session, col, select

from server import codes
from server.__main__ import main
from server.config import Settings
from server.errors import AppError, ErrorCode
from server.models import (
    AgeBand,
    Channel,
    CheckIn,
    CheckInAttempt,
    Club,
    ClubMember,
    ClubType,
    Event,
    EventStatus,
    EventType,
    Gender,
    Role,
    Staff,
    Venue,
)
from server.services import attendance, clubs, events
from server.services.checkin import CheckInRequest, Identity, check_in
from server.services.clubs import ClubInput, ScheduleInput
from server.services.identities import Profile
from tests.factories import (
    count_rows,
    login,
    make_event,
    make_participant,
    make_staff,
    make_tree,
    make_venue,
)

# Wednesday 3 December 2026, 10:00 in Vietnam.
NOW = datetime(2026, 12, 3, 3, 0, tzinfo=UTC)
SVG_NS = "{http://www.w3.org/2000/svg}"


def _world(session: Session) -> dict:  # type: ignore[type-arg]
    tree = make_tree(session)
    venue = make_venue(session, tree["village"], name="Nhà văn hóa thôn Bản Cưởm")
    staff = make_staff(session, Role.organizer, tree["commune"])
    club = clubs.create_club(
        session, staff, ClubInput("CLB Hát then", ClubType.club, venue.id or 0, "Hoàng Văn Sơn"), now=NOW
    )
    return {"tree": tree, "venue": venue, "staff": staff, "club": club}


def _sundays(session: Session, staff: Staff, club: Club, **overrides: object) -> Club:
    values: dict[str, object] = {
        "weekdays": (6,),
        "start_time": time(19, 30),
        "duration_minutes": 90,
        "starts_on": date(2026, 12, 1),
    }
    values.update(overrides)
    return clubs.set_schedule(session, staff, club, ScheduleInput(**values), now=NOW)  # type: ignore[arg-type]


def _sessions(session: Session, club: Club) -> list[Event]:
    session.commit()
    return list(session.exec(select(Event).where(Event.club_id == club.id).order_by(col(Event.club_slot))))


def _session_now(session: Session, club: Club, **overrides: object) -> Event:
    starts_at = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=30)
    values: dict[str, object] = {
        "title": club.name,
        "type": EventType.club_session,
        "club_id": club.id,
        "club_slot": starts_at,
        "starts_at": starts_at,
    }
    values.update(overrides)
    venue = session.get(Venue, club.venue_id)
    return make_event(session, venue, **values)  # type: ignore[arg-type]


# The schedule


def test_weekly_schedule_makes_sessions_at_local_times_for_8_weeks(
    session: Session, settings: Settings
) -> None:
    w = _world(session)
    club = _sundays(session, w["staff"], w["club"])
    made = clubs.generate_sessions(session, club, now=NOW, settings=settings)
    assert len(made) == 8
    local = [e.starts_at.astimezone(settings.tz) for e in _sessions(session, club)]
    assert [d.date() for d in local] == [date(2026, 12, 6) + timedelta(weeks=n) for n in range(8)]
    assert all((d.hour, d.minute, d.weekday()) == (19, 30, 6) for d in local)
    first = _sessions(session, club)[0]
    assert first.starts_at == datetime(2026, 12, 6, 12, 30, tzinfo=UTC)  # stored UTC
    assert first.ends_at - first.starts_at == timedelta(minutes=90)
    assert (first.type, first.venue_id, first.club_slot) == (
        EventType.club_session,
        club.venue_id,
        first.starts_at,
    )


def test_generating_again_is_idempotent(session: Session, settings: Settings) -> None:
    w = _world(session)
    club = _sundays(session, w["staff"], w["club"])
    clubs.generate_sessions(session, club, now=NOW, settings=settings)
    assert clubs.generate_sessions(session, club, now=NOW, settings=settings) == []
    later = clubs.generate_sessions(session, club, now=NOW + timedelta(weeks=1), settings=settings)
    assert len(later) == 1 and count_rows(session, Event) == 9


def test_moved_or_cancelled_session_is_not_made_again(session: Session, settings: Settings) -> None:
    w = _world(session)
    club = _sundays(session, w["staff"], w["club"])
    first, second, *_ = clubs.generate_sessions(session, club, now=NOW, settings=settings)
    moved_to = first.starts_at + timedelta(days=1)
    data = events.EventInput(first.title, first.type, first.venue_id, moved_to, moved_to + timedelta(hours=2))
    events.update_event(session, w["staff"], first, data, now=NOW)
    events.cancel_event(session, second, now=NOW)
    assert clubs.generate_sessions(session, club, now=NOW, settings=settings) == []
    stored = _sessions(session, club)
    assert len(stored) == 8
    assert stored[0].starts_at == moved_to and stored[0].club_slot == first.club_slot
    assert stored[1].status == EventStatus.cancelled
    assert all(e.status == EventStatus.scheduled for e in stored[2:])


def test_until_date_is_respected(session: Session, settings: Settings) -> None:
    w = _world(session)
    club = _sundays(session, w["staff"], w["club"], weekdays=(1, 4), until=date(2026, 12, 18))
    made = clubs.generate_sessions(session, club, now=NOW, settings=settings)
    days = [e.starts_at.astimezone(settings.tz).date() for e in made]
    assert days == [
        date(2026, 12, 4),
        date(2026, 12, 8),
        date(2026, 12, 11),
        date(2026, 12, 15),
        date(2026, 12, 18),
    ]


def test_schedule_form_refuses_bad_input(client: TestClient, session: Session) -> None:
    w = _world(session)
    login(client, w["staff"])
    url = f"/clubs/{w['club'].id}/schedule"
    bad = client.post(url, data={"start_time": "25:99", "duration_minutes": "0", "until": "hôm qua"})
    assert bad.status_code == 422
    assert "Hãy chọn ít nhất một ngày trong tuần." in bad.text and "Nhập giờ bắt đầu." in bad.text
    wrong_order = {"weekdays": "6", "start_time": "19:30", "duration_minutes": "90"}
    wrong = client.post(url, data={**wrong_order, "starts_on": "2026-12-10", "until": "2026-12-01"})
    assert wrong.status_code == 422 and count_rows(session, Event) == 0
    ok = client.post(
        url, data={"weekdays": ["6", "2"], **{k: v for k, v in wrong_order.items() if k != "weekdays"}}
    )
    assert ok.status_code == 303 and ok.headers["location"].startswith(f"/clubs/{w['club'].id}?made=")
    assert count_rows(session, Event) >= 15
    page = client.get(ok.headers["location"])
    assert page.status_code == 200 and "Chủ nhật" in page.text and "19:30–21:00" in page.text


# Pages and scope


def test_create_club_and_pages_render(client: TestClient, session: Session) -> None:
    tree = make_tree(session)
    venue = make_venue(session, tree["commune"])
    staff = make_staff(session, Role.organizer, tree["commune"])
    login(client, staff)
    assert client.get("/clubs").status_code == 200
    empty = client.post("/clubs", data={"name": "  ", "type": "club", "venue_id": str(venue.id)})
    assert empty.status_code == 422 and "Nhập tên." in empty.text
    bad = client.post("/clubs", data={"name": "Lớp múa", "type": "dance", "venue_id": "x"})
    assert bad.status_code == 422 and count_rows(session, Club) == 0
    made = client.post("/clubs", data={"name": "Lớp múa", "type": "talent_class", "venue_id": str(venue.id)})
    assert made.status_code == 303
    page = client.get(made.headers["location"])
    assert page.status_code == 200 and "Lớp múa" in page.text and "Lớp năng khiếu" in page.text
    listed = client.get("/clubs")
    assert "Lớp múa" in listed.text and "Câu lạc bộ" in listed.text
    assert client.get("/clubs/999999").status_code == 404
    assert client.get("/clubs/abc").status_code == 422
    assert client.get("/clubs/999999/poster").status_code == 404


def test_another_communes_organizer_cannot_see_or_edit(client: TestClient, session: Session) -> None:
    w = _world(session)
    stranger = make_staff(session, Role.organizer, w["tree"]["other"])
    login(client, stranger)
    club_id = w["club"].id
    assert client.get(f"/clubs/{club_id}").status_code == 403
    assert (
        client.post(f"/clubs/{club_id}", data={"name": "x", "type": "club", "venue_id": "1"}).status_code
        == 403
    )
    assert client.post(f"/clubs/{club_id}/sessions").status_code == 403
    assert "CLB Hát then" not in client.get("/clubs").text
    # Nor may they make a club at a venue out of their scope.
    data = {"name": "CLB", "type": "club", "venue_id": str(w["venue"].id)}
    assert client.post("/clubs", data=data).status_code == 403
    assert count_rows(session, Club) == 1


def test_members_are_added_by_search_and_removed(client: TestClient, session: Session) -> None:
    w = _world(session)
    person = make_participant(session, name="Lương Thị Hoa", home_unit=w["tree"]["village"])
    no_consent = make_participant(
        session, name="Vi Văn Tuấn", home_unit=w["tree"]["village"], consent_at=None
    )
    login(client, w["staff"])
    url = f"/clubs/{w['club'].id}"
    found = client.get(url, params={"q": "luong hoa"})
    assert found.status_code == 200 and "Lương Thị Hoa" in found.text
    assert client.post(f"{url}/members", data={"participant_id": str(person.id)}).status_code == 303
    assert client.post(f"{url}/members", data={"participant_id": str(person.id)}).status_code == 303
    assert count_rows(session, ClubMember) == 1
    refused = client.post(f"{url}/members", data={"participant_id": str(no_consent.id)})
    assert refused.status_code == 422 and count_rows(session, ClubMember) == 1
    assert client.post(f"{url}/members", data={"participant_id": "abc"}).status_code == 422
    page = client.get(url)
    assert "Lương Thị Hoa" in page.text and "Thành viên (1)" in page.text
    removed = client.post(f"{url}/members/{person.id}/remove")
    assert removed.status_code == 303 and count_rows(session, ClubMember) == 0


def test_session_lists_attendance_and_event_page_links_back(
    client: TestClient, session: Session, settings: Settings
) -> None:
    w = _world(session)
    event = _session_now(session, w["club"])
    page = client.get(f"/c/{clubs.code_for(w['club'], settings)}")
    nonce = re.search(r'name="nonce" value="([^"]+)"', page.text)
    assert nonce
    data = {"nonce": nonce.group(1), "age_band": "25-59", "gender": "male", "consent": "yes"}
    assert client.post(f"/c/{codes.normalize(_action(page.text))}", data=data).status_code == 200
    login(client, w["staff"])
    club_page = client.get(f"/clubs/{w['club'].id}")
    assert f'href="/events/{event.id}"' in club_page.text
    assert re.search(r"<td>1</td><td>1</td>", club_page.text)
    event_page = client.get(f"/events/{event.id}")
    assert f'href="/clubs/{w["club"].id}"' in event_page.text and "CLB Hát then" in event_page.text


# The year-round code


def _action(html: str) -> str:
    match = re.search(r'action="/c/([0-9A-Z]+)"', html)
    assert match, "the page posts to a check-in code"
    return match.group(1)


def test_club_code_opens_the_session_open_now_and_checks_in(
    client: TestClient, session: Session, settings: Settings
) -> None:
    w = _world(session)
    _session_now(session, w["club"], starts_at=datetime.now(UTC) - timedelta(days=7), club_slot=None)
    event = _session_now(session, w["club"])
    club_code = clubs.code_for(w["club"], settings)
    assert not club_code.startswith(tuple("123456789")) and codes.event_id_of(club_code) is None
    page = client.get(f"/c/{club_code}")
    assert page.status_code == 200 and "CLB Hát then" in page.text
    assert _action(page.text) == events_code(event, settings)
    nonce = re.search(r'name="nonce" value="([^"]+)"', page.text)
    assert nonce
    data = {"nonce": nonce.group(1), "age_band": "60+", "gender": "female", "consent": "yes"}
    done = client.post(f"/c/{_action(page.text)}", data=data)
    assert done.status_code == 200 and "Bạn đã điểm danh thành công" in done.text
    assert [c.event_id for c in session.exec(select(CheckIn))] == [event.id]
    assert attendance.live_summary(session, event.id or 0).visits == 1
    # Typed by hand on /c, the club code leads to the same page.
    typed = client.get("/c", params={"code": codes.pretty(club_code).lower()})
    assert typed.status_code == 303 and typed.headers["location"] == f"/c/{club_code}"


def events_code(event: Event, settings: Settings) -> str:
    from server.services.scans import code_for

    return code_for(event, settings)


def test_club_code_without_open_session_names_the_next_one(
    client: TestClient, session: Session, settings: Settings
) -> None:
    w = _world(session)
    url = f"/c/{clubs.code_for(w['club'], settings)}"
    nothing = client.get(url)
    assert nothing.status_code == 200 and "Chưa có buổi sinh hoạt nào đang mở điểm danh" in nothing.text
    start = datetime(2030, 1, 6, 12, 30, tzinfo=UTC)
    _session_now(session, w["club"], starts_at=start, ends_at=start + timedelta(hours=1), club_slot=start)
    cancelled = _session_now(session, w["club"], status=EventStatus.cancelled)
    page = client.get(url)
    assert page.status_code == 200 and "CLB Hát then" in page.text
    assert "06/01/2030 19:30" in page.text and 'name="nonce"' not in page.text
    assert cancelled.id and count_rows(session, CheckIn) == 0


def test_forged_or_closed_club_code_is_refused(
    client: TestClient, session: Session, settings: Settings
) -> None:
    w = _world(session)
    code = clubs.code_for(w["club"], settings)
    forged = code[:-1] + ("0" if code[-1] != "0" else "1")
    assert client.get(f"/c/{forged}").status_code == 404
    # Logged like every refused scan, so the organizer and the office can see it.
    refused = session.exec(select(CheckInAttempt).where(CheckInAttempt.outcome == "code_invalid")).all()
    assert [(a.channel, a.event_id) for a in refused] == [(Channel.page, None)]
    other = codes.CLUB_PREFIX + codes.ALPHABET[(w["club"].id or 0) + 1] + code[-codes.MAC_LENGTH :]
    assert client.get(f"/c/{other}").status_code == 404
    typed = client.get("/c", params={"code": forged})
    assert typed.status_code == 422
    clubs.update_club(
        session,
        w["staff"],
        w["club"],
        ClubInput("CLB Hát then", ClubType.club, w["venue"].id or 0),
        active=False,
    )
    assert client.get(f"/c/{code}").status_code == 404


def test_poster_renders_and_its_qr_decodes_to_the_club_link(
    client: TestClient, session: Session, settings: Settings
) -> None:
    w = _world(session)
    _sundays(session, w["staff"], w["club"])
    login(client, w["staff"])
    poster = client.get(f"/clubs/{w['club'].id}/poster")
    assert poster.status_code == 200 and "ĐIỂM DANH" in poster.text and "CLB Hát then" in poster.text
    assert "Chủ nhật" in poster.text
    svg = re.search(r"<svg.*</svg>", poster.text, re.S)
    assert svg
    root = ET.fromstring(svg.group(0))
    (qr,) = root.findall(f"{SVG_NS}svg")
    _, _, side, _ = (int(float(v)) for v in qr.attrib["viewBox"].split())
    path = qr.find(f"{SVG_NS}path")
    assert path is not None
    image = PIL.Image.new("L", (side * 8, side * 8), 255)
    for x0, y0, x1, y1 in re.findall(r"M(\d+),(\d+)H(\d+)V(\d+)H\d+z", path.attrib["d"]):
        image.paste(0, (int(x0) * 8, int(y0) * 8, int(x1) * 8, int(y1) * 8))
    assert [r.text for r in zxingcpp.read_barcodes(image)] == [clubs.link_for(w["club"], settings)]


def test_offline_scan_of_the_club_code_counts_for_the_session_open_then(
    session: Session, settings: Settings
) -> None:
    w = _world(session)
    held = _session_now(
        session, w["club"], starts_at=NOW - timedelta(hours=1), club_slot=NOW - timedelta(hours=1)
    )
    code = clubs.code_for(w["club"], settings)
    profile = Profile(AgeBand.from_25, Gender.female, consent=True)

    def send(key: str, scanned: datetime) -> CheckIn:
        identity = Identity(device_token=f"phone-{key}-0123456789abcdef", profile=profile)
        request = CheckInRequest(Channel.batch, key, identity, code=code, claimed_at=scanned)
        return check_in(session, settings, request, now=NOW + timedelta(hours=5)).check_in

    assert send("offline-0001", NOW - timedelta(minutes=20)).event_id == held.id
    try:
        send("offline-0002", NOW + timedelta(days=2))
    except AppError as error:
        assert error.code == ErrorCode.code_expired
    else:
        raise AssertionError("a scan with no session open is refused")
    assert count_rows(session, CheckIn) == 1


# Sessions keep coming: the top-up


def _ran_out(session: Session, settings: Settings) -> tuple[dict, datetime]:  # type: ignore[type-arg]
    """A club meeting weekly at the time it is now minus 30 minutes, whose 8 weeks of sessions were made 10
    weeks ago and nobody made more: today's session and last week's do not exist."""
    w = _world(session)
    real = datetime.now(UTC).replace(second=0, microsecond=0)
    start = (real - timedelta(minutes=30)).astimezone(settings.tz)
    _sundays(
        session,
        w["staff"],
        w["club"],
        weekdays=(start.weekday(),),
        start_time=start.time(),
        starts_on=start.date() - timedelta(weeks=12),
    )
    made = clubs.generate_sessions(session, w["club"], now=real - timedelta(weeks=10), settings=settings)
    assert len(made) == 8 and max(e.starts_at for e in made) < real - timedelta(weeks=1)
    return w, start.astimezone(UTC)


def test_club_code_opens_todays_session_after_the_sessions_ran_out(
    client: TestClient, session: Session, settings: Settings
) -> None:
    w, today = _ran_out(session, settings)
    page = client.get(f"/c/{clubs.code_for(w['club'], settings)}")
    assert page.status_code == 200 and "CLB Hát then" in page.text
    stored = {e.club_slot: e for e in _sessions(session, w["club"])}
    assert _action(page.text) == events_code(stored[today], settings)
    nonce = re.search(r'name="nonce" value="([^"]+)"', page.text)
    assert nonce
    data = {"nonce": nonce.group(1), "age_band": "60+", "gender": "female", "consent": "yes"}
    done = client.post(f"/c/{_action(page.text)}", data=data)
    assert done.status_code == 200 and "Bạn đã điểm danh thành công" in done.text
    assert [c.event_id for c in session.exec(select(CheckIn))] == [stored[today].id]
    # Today's session and the next 8 weeks' were made; last week's, long over, was not made after the fact.
    slots = sorted(stored)
    assert slots[-9:] == [today + timedelta(weeks=n) for n in range(9)]
    assert today - timedelta(weeks=1) not in stored and len(stored) == 8 + 9


def test_club_page_and_list_top_up_the_sessions(
    client: TestClient, session: Session, settings: Settings
) -> None:
    w, today = _ran_out(session, settings)
    login(client, w["staff"])
    listed = client.get("/clubs")
    assert listed.status_code == 200
    assert today.astimezone(settings.tz).strftime("%d/%m/%Y") in listed.text  # its next session
    assert len(_sessions(session, w["club"])) == 8 + 9
    later = _sessions(session, w["club"])[-1]
    events.cancel_event(session, later, now=NOW)
    page = client.get(f"/clubs/{w['club'].id}")
    assert page.status_code == 200
    stored = _sessions(session, w["club"])
    assert len(stored) == 8 + 9 and stored[-1].status == EventStatus.cancelled


def test_top_up_makes_nothing_twice_and_costs_one_query_when_nothing_is_due(
    session: Session, settings: Settings, engine: object
) -> None:
    w = _world(session)
    club = _sundays(session, w["staff"], w["club"])
    assert len(clubs.generate_sessions(session, club, now=NOW, settings=settings)) == 8
    later = NOW + timedelta(weeks=10)
    assert clubs.top_up(session, settings, [club], now=NOW) == []
    made = clubs.top_up(session, settings, [club], now=later)
    # From the session that may still be open (none today: it is a Wednesday) to 8 weeks ahead.
    assert [e.starts_at.astimezone(settings.tz).date() for e in made] == [
        date(2027, 2, 14) + timedelta(weeks=n) for n in range(8)
    ]
    moved, cancelled = made[-1], made[-2]
    when = moved.starts_at + timedelta(days=1)
    data = events.EventInput(moved.title, moved.type, moved.venue_id, when, when + timedelta(hours=2))
    events.update_event(session, w["staff"], moved, data, now=later)
    events.cancel_event(session, cancelled, now=later)
    statements: list[str] = []

    def count(*args: object) -> None:
        statements.append(str(args[2]))

    from sqlalchemy import event as sa_event

    sa_event.listen(engine, "before_cursor_execute", count)
    try:
        assert clubs.top_up(session, settings, [club], now=later) == []
    finally:
        sa_event.remove(engine, "before_cursor_execute", count)
    assert len(statements) == 1 and "max" in statements[0].lower()
    assert clubs.top_up(session, settings, [club], now=later + timedelta(days=3)) == []
    stored = _sessions(session, club)
    assert len(stored) == 16 and len({e.club_slot for e in stored}) == 16
    assert stored[-1].starts_at == when and stored[-2].status == EventStatus.cancelled
    # A week on, one more; an inactive club or one without a schedule gets none.
    assert len(clubs.top_up(session, settings, [club], now=later + timedelta(weeks=1))) == 1
    idle = clubs.create_club(
        session, w["staff"], ClubInput("CLB cờ tướng", ClubType.club, w["venue"].id or 0)
    )
    clubs.update_club(
        session, w["staff"], club, ClubInput("CLB Hát then", ClubType.club, w["venue"].id or 0), active=False
    )
    assert clubs.top_up(session, settings, [club, idle], now=later + timedelta(weeks=5)) == []


def test_two_scans_at_once_make_each_session_once(
    session: Session, settings: Settings, engine: object
) -> None:
    w = _world(session)
    club = _sundays(session, w["staff"], w["club"])
    later = NOW + timedelta(weeks=10)
    barrier = threading.Barrier(4)
    made: list[int] = []
    failed: list[BaseException] = []

    def scan() -> None:
        with Session(engine, expire_on_commit=False) as own:  # type: ignore[call-overload]
            mine = own.get(Club, club.id)
            barrier.wait()
            try:
                clubs.open_session(own, settings, mine, later)
                made.append(1)
            except BaseException as error:
                failed.append(error)

    threads = [threading.Thread(target=scan) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failed == [] and len(made) == 4
    stored = _sessions(session, club)
    assert len(stored) == 8 and len({e.club_slot for e in stored}) == 8


def test_a_lost_race_on_the_slot_constraint_reads_the_slots_again(
    session: Session, settings: Settings, engine: object
) -> None:
    """Another request makes some of the same sessions between this one's read and its write: the
    constraint refuses this one's rows, and it reads again and makes only the others (PostgreSQL; SQLite
    takes the write lock before reading, so there the other request waits instead)."""
    w = _world(session)
    club = _sundays(session, w["staff"], w["club"])
    later = NOW + timedelta(weeks=10)
    if settings.is_sqlite:
        made = clubs.top_up(session, settings, [club], now=later)
        assert len(made) == 8 and clubs.top_up(session, settings, [club], now=later) == []
        return
    from sqlalchemy import event as sa_event

    other_made: list[Event] = []

    def meanwhile(flushing: Session, *_args: object) -> None:
        if not other_made:
            with Session(engine, expire_on_commit=False) as other:  # type: ignore[call-overload]
                other_made.extend(
                    clubs.generate_sessions(
                        other,
                        other.get(Club, club.id),
                        now=later,
                        since=later - timedelta(hours=4),
                        until=later + timedelta(weeks=4),  # half of them
                        settings=settings,
                    )
                )

    sa_event.listen(session, "before_flush", meanwhile)
    try:
        made = clubs.top_up(session, settings, [club], now=later)
    finally:
        sa_event.remove(session, "before_flush", meanwhile)
    assert len(other_made) == 4 and len(made) == 4
    stored = _sessions(session, club)
    assert len(stored) == 8 and {e.id for e in stored} == {e.id for e in other_made + made}
    assert min(e.starts_at for e in made) > max(e.starts_at for e in other_made)


def test_make_sessions_command_tops_up_every_active_club(
    session: Session,
    settings: Settings,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    w = _world(session)
    real = datetime.now(UTC)
    _sundays(session, w["staff"], w["club"], weekdays=(0, 3), starts_on=real.date() - timedelta(weeks=20))
    closed = clubs.create_club(
        session, w["staff"], ClubInput("CLB đã nghỉ", ClubType.club, w["venue"].id or 0)
    )
    _sundays(session, w["staff"], closed, starts_on=real.date() - timedelta(weeks=20))
    clubs.update_club(
        session, w["staff"], closed, ClubInput("CLB đã nghỉ", ClubType.club, w["venue"].id or 0), active=False
    )
    monkeypatch.setenv("DIEMDANH_ENV", "development")
    monkeypatch.setenv("DIEMDANH_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("DIEMDANH_DATA_DIR", str(tmp_path))
    assert main(["make-sessions"]) == 0
    stored = _sessions(session, w["club"])
    assert 16 <= len(stored) <= 17 and len({e.club_slot for e in stored}) == len(stored)
    assert all(e.starts_at <= real + timedelta(weeks=8, minutes=1) for e in stored)
    assert max(e.starts_at for e in stored) > real + timedelta(weeks=7)
    assert _sessions(session, closed) == []
    assert f"Made {len(stored)} club sessions: every active club" in capsys.readouterr().out
    assert main(["make-sessions"]) == 0
    assert "Made 0 club sessions" in capsys.readouterr().out
    assert len(_sessions(session, w["club"])) == len(stored)


def test_a_late_offline_scan_makes_its_session_but_a_scan_time_far_off_makes_none(
    session: Session, settings: Settings
) -> None:
    """A batch may claim any scan time: the top-up follows when the scan arrived and reaches back a week at
    most, so a phone's late outbox finds last Sunday's missing session, but a forged time in 2099 or a
    month ago makes no session then."""
    w = _world(session)
    profile = Profile(AgeBand.from_25, Gender.female, consent=True)
    last_sunday = datetime(2026, 11, 29, 12, 45, tzinfo=UTC)  # 19:45 local, during the session

    def scan(name: str, claimed: datetime) -> tuple[Club, int | None]:
        made = clubs.create_club(session, w["staff"], ClubInput(name, ClubType.club, w["venue"].id or 0))
        club = _sundays(session, w["staff"], made, starts_on=date(2026, 9, 1))
        identity = Identity(device_token=f"phone-{made.id}-0123456789abcdef", profile=profile)
        request = CheckInRequest(
            Channel.batch,
            f"late-{made.id}-key",
            identity,
            code=clubs.code_for(club, settings),
            claimed_at=claimed,
        )
        try:
            return club, check_in(session, settings, request, now=NOW).check_in.event_id
        except AppError as error:
            assert error.code == ErrorCode.code_expired
            return club, None

    def days(club: Club) -> list[date]:
        return [e.starts_at.astimezone(settings.tz).date() for e in _sessions(session, club)]

    ahead = [date(2026, 12, 6) + timedelta(weeks=n) for n in range(8)]
    late, event_id = scan("CLB muộn", last_sunday)
    assert days(late) == [date(2026, 11, 29), *ahead] and event_id == _sessions(session, late)[0].id
    month_ago, refused = scan("CLB tháng trước", last_sunday - timedelta(weeks=4))
    assert refused is None and days(month_ago) == ahead
    far, refused = scan("CLB 2099", datetime(2099, 1, 4, 12, 45, tzinfo=UTC))
    assert refused is None and days(far) == ahead
