"""Clubs and their sessions: the schedule, members, scope, the year-round code and poster, through HTTP."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta
from xml.etree import ElementTree as ET

import PIL.Image
import zxingcpp
from fastapi.testclient import TestClient
from sqlmodel import Session, col, select

from server import codes
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
