"""Organizer event screens through HTTP: create, validate, edit, cancel, search, live, manual check-in."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient
from sqlmodel import Session, select

from server.config import Settings
from server.models import CheckIn, Event, EventStatus, Role
from server.services.scans import code_for
from tests.factories import count_rows, login, make_event, make_staff, make_tree, make_venue

FORM = {
    "title": "Ngày hội đọc sách xã Văn Quan",
    "type": "reading_festival",
    "campaign": "reading_day",
    "date": "2026-04-21",
    "start_time": "08:00",
    "end_time": "11:30",
    "expected_audience": "150",
}


def _organizer(session: Session, client: TestClient) -> dict:  # type: ignore[type-arg]
    tree = make_tree(session)
    venue = make_venue(session, tree["village"])
    other_venue = make_venue(session, tree["other"], name="Thư viện xã Tri Lễ")
    staff = make_staff(session, Role.organizer, tree["commune"])
    login(client, staff)
    return {**tree, "venue": venue, "other_venue": other_venue, "staff": staff}


def test_create_event_stores_local_times_as_utc(client: TestClient, session: Session) -> None:
    world = _organizer(session, client)
    response = client.post("/events", data={**FORM, "venue_id": str(world["venue"].id)})
    assert response.status_code == 303
    session.commit()
    event = session.exec(select(Event)).one()
    assert event.title == FORM["title"] and event.expected_audience == 150
    assert event.starts_at.isoformat() == "2026-04-21T01:00:00+00:00"  # 08:00 in Asia/Ho_Chi_Minh
    page = client.get(response.headers["location"])
    assert page.status_code == 200 and "Thứ Ba, 21/04/2026" in page.text and "08:00–11:30" in page.text


def test_event_form_errors_are_shown_and_nothing_is_stored(client: TestClient, session: Session) -> None:
    world = _organizer(session, client)
    bad = {
        **FORM,
        "venue_id": str(world["venue"].id),
        "title": " ",
        "end_time": "07:00",
        "date": "21/04/2026",
    }
    response = client.post("/events", data=bad)
    assert response.status_code == 422
    assert "Nhập tên sự kiện." in response.text and "Nhập ngày." in response.text
    assert count_rows(session, Event) == 0


def test_end_before_start_is_refused(client: TestClient, session: Session) -> None:
    world = _organizer(session, client)
    response = client.post("/events", data={**FORM, "venue_id": str(world["venue"].id), "end_time": "07:00"})
    assert response.status_code == 422 and "Giờ kết thúc phải sau giờ bắt đầu." in response.text
    assert count_rows(session, Event) == 0


def test_organizer_cannot_use_a_venue_outside_its_unit(client: TestClient, session: Session) -> None:
    world = _organizer(session, client)
    response = client.post("/events", data={**FORM, "venue_id": str(world["other_venue"].id)})
    assert response.status_code == 403
    assert count_rows(session, Event) == 0


def test_edit_event_changes_it_and_its_code(client: TestClient, session: Session, settings: Settings) -> None:
    world = _organizer(session, client)
    event = make_event(session, world["venue"])
    old_code = code_for(event, settings)
    form = client.get(f"/events/{event.id}/edit")
    assert form.status_code == 200 and event.title in form.text
    response = client.post(
        f"/events/{event.id}",
        data={**FORM, "venue_id": str(world["venue"].id), "title": "Cuộc thi Đại sứ văn hóa đọc"},
    )
    assert response.status_code == 303
    session.refresh(event)
    assert event.title == "Cuộc thi Đại sứ văn hóa đọc"
    assert code_for(event, settings) != old_code


def test_cancel_event_closes_its_check_in(client: TestClient, session: Session, settings: Settings) -> None:
    world = _organizer(session, client)
    event = make_event(session, world["venue"])
    assert client.post(f"/events/{event.id}/cancel").status_code == 303
    session.refresh(event)
    assert event.status == EventStatus.cancelled
    assert client.get(f"/c/{code_for(event, settings)}").status_code == 410


def test_list_and_search_show_only_events_in_scope(client: TestClient, session: Session) -> None:
    world = _organizer(session, client)
    make_event(session, world["venue"], title="Câu lạc bộ đọc sách thôn Bản Cưởm")
    make_event(session, world["other_venue"], title="Triển lãm sách Tri Lễ")
    listing = client.get("/events")
    assert "Câu lạc bộ đọc sách thôn Bản Cưởm" in listing.text and "Triển lãm sách Tri Lễ" not in listing.text
    found = client.get("/events", params={"q": "bản cưởm"})
    assert "Câu lạc bộ đọc sách thôn Bản Cưởm" in found.text
    missing = client.get("/events", params={"q": "không có"}, headers={"HX-Request": "true"})
    assert missing.text.startswith('<div id="event-rows">') and "Không có sự kiện nào." in missing.text


def test_live_fragment_answers_204_until_something_changes(
    client: TestClient, session: Session, settings: Settings
) -> None:
    world = _organizer(session, client)
    event = make_event(session, world["venue"])
    first = client.get(f"/events/{event.id}/live", headers={"HX-Request": "true"})
    version = re.search(r"live\?v=([\d.]+)", first.text).group(1)  # type: ignore[union-attr]
    assert client.get(f"/events/{event.id}/live", params={"v": version}).status_code == 204
    resident = TestClient(client.app)
    page = resident.get(f"/c/{code_for(event, settings)}")
    nonce = re.search(r'name="nonce" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
    resident.post(
        f"/c/{code_for(event, settings)}",
        data={"nonce": nonce, "age_band": "60+", "gender": "female", "consent": "yes"},
    )
    changed = client.get(f"/events/{event.id}/live", params={"v": version})
    assert changed.status_code == 200 and 'id="live-visits">1<' in changed.text


def test_manual_check_in_for_resident_without_phone(client: TestClient, session: Session) -> None:
    world = _organizer(session, client)
    event = make_event(session, world["venue"])
    page = client.get(f"/events/{event.id}")
    nonce = re.search(r'name="nonce" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
    data = {"nonce": nonce, "age_band": "60+", "gender": "male", "name": "Hoàng Văn Páo", "consent": "yes"}
    added = client.post(f"/events/{event.id}/checkins", data=data, headers={"HX-Request": "true"})
    assert added.status_code == 200 and 'class="flash"' in added.text and "Hoàng Văn Páo" in added.text
    again = client.post(f"/events/{event.id}/checkins", data=data)  # same nonce: a retry, not a second person
    assert again.status_code == 303
    session.commit()
    record = session.exec(select(CheckIn)).one()
    assert record.channel == "staff_form" and record.recorded_by_id == world["staff"].id


def test_manual_check_in_needs_consent(client: TestClient, session: Session) -> None:
    world = _organizer(session, client)
    event = make_event(session, world["venue"])
    refused = client.post(
        f"/events/{event.id}/checkins", data={"nonce": "manual-nonce-1", "age_band": "60+", "gender": "male"}
    )
    assert refused.status_code == 422 and "đồng ý" in refused.text
    assert count_rows(session, CheckIn) == 0


def test_qr_downloads_and_poster(client: TestClient, session: Session, settings: Settings) -> None:
    world = _organizer(session, client)
    event = make_event(session, world["venue"])
    png = client.get(f"/events/{event.id}/qr.png")
    assert png.status_code == 200 and png.content.startswith(b"\x89PNG")
    svg = client.get(f"/events/{event.id}/qr.svg")
    assert svg.headers["content-type"].startswith("image/svg+xml")
    poster = client.get(f"/events/{event.id}/poster")
    assert poster.status_code == 200 and "ĐIỂM DANH" in poster.text
    assert event.title in poster.text


def test_cancel_asks_first(client: TestClient, session: Session) -> None:
    world = _organizer(session, client)
    event = make_event(session, world["venue"])
    page = client.get(f"/events/{event.id}/cancel")
    assert page.status_code == 200 and "Hủy sự kiện này?" in page.text
    session.refresh(event)
    assert event.status == EventStatus.scheduled
