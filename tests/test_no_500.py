"""No 500s: every malformed input gets a clear refusal (a Vietnamese page, or problem details with a code
on the API), decided at the one place that owns the rule. Each test names its rule."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from server.auth import create_api_token
from server.config import Settings
from server.errors import ErrorCode, database_refusal
from server.models import Event, OrgUnit, Participant, Role, Venue
from server.services import scans
from tests.factories import count_rows, login, make_event, make_staff, make_tree, make_venue

FAR = datetime(9999, 12, 31, 20, tzinfo=UTC)  # 9999-12-31 20:00 UTC is already year 10000 in Hà Nội
EARLY = datetime(1, 1, 1, 1, tzinfo=UTC)


@pytest.fixture
def world(session: Session) -> dict[str, Any]:
    tree = make_tree(session)
    venue = make_venue(session, tree["commune"])
    staff = make_staff(session, Role.organizer, tree["commune"])
    _record, token = create_api_token(session, staff, "test")
    return {"venue": venue, "staff": staff, "auth": {"Authorization": f"Bearer {token}"}}


def _event_json(venue: Venue, **overrides: Any) -> dict[str, Any]:
    return {
        "title": "Ngày hội đọc sách",
        "type": "reading_festival",
        "venue_id": venue.id,
        "starts_at": "2026-12-31T09:00:00+07:00",
        "ends_at": "2026-12-31T11:00:00+07:00",
        **overrides,
    }


def _event_form(venue: Venue, **overrides: Any) -> dict[str, Any]:
    return {
        "title": "Ngày hội đọc sách",
        "type": "reading_festival",
        "venue_id": venue.id,
        "date": "2026-12-31",
        "start_time": "09:00",
        "end_time": "11:00",
        **overrides,
    }


def _problem(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["code"] == code and body["status"] == status
    return body


def _page(response: Any, status: int) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("text/html")
    text: str = response.text
    assert '<html lang="vi">' in text
    return text


@pytest.mark.parametrize("day", ["9999-12-31", "0001-01-01", "1999-12-31", "2101-01-01"])
def test_event_date_outside_2000_to_2100_is_refused_on_the_form(
    client: TestClient, session: Session, world: dict[str, Any], day: str
) -> None:
    login(client, world["staff"])
    response = client.post("/events", data=_event_form(world["venue"], date=day))
    assert "Hãy nhập ngày trong khoảng từ năm 2000 đến năm 2100." in _page(response, 422)
    assert count_rows(session, Event) == 0


@pytest.mark.parametrize("moment", ["9999-12-31T10:00:00+00:00", "0001-01-01T10:00:00+00:00"])
def test_event_date_outside_2000_to_2100_is_refused_on_the_api(
    client: TestClient, session: Session, world: dict[str, Any], moment: str
) -> None:
    body = _event_json(world["venue"], starts_at=moment, ends_at=moment.replace("T10", "T12"))
    response = client.post("/api/v1/events", json=body, headers=world["auth"])
    problem = _problem(response, 422, "invalid_input")
    assert "2000 and 2100" in str(problem["errors"])
    assert count_rows(session, Event) == 0


def test_event_date_outside_2000_to_2100_is_refused_on_edit(
    client: TestClient, session: Session, world: dict[str, Any]
) -> None:
    event = make_event(session, world["venue"])
    login(client, world["staff"])
    response = client.post(f"/events/{event.id}", data=_event_form(world["venue"], date="9999-12-31"))
    _page(response, 422)
    patch = {"starts_at": "0001-01-01T10:00:00+00:00", "ends_at": "0001-01-01T12:00:00+00:00"}
    response = client.patch(f"/api/v1/events/{event.id}", json=patch, headers=world["auth"])
    _problem(response, 422, "invalid_input")
    session.expire_all()
    stored = session.get(Event, event.id)
    assert stored is not None and stored.starts_at == event.starts_at


@pytest.mark.parametrize("start", [FAR, EARLY])
def test_stored_event_at_the_calendar_edge_still_shows_its_list_page_and_link(
    client: TestClient, session: Session, settings: Settings, world: dict[str, Any], start: datetime
) -> None:
    end = start.replace(hour=start.hour + 3)
    event = make_event(session, world["venue"], starts_at=start, ends_at=end, title="Sự kiện lạc năm")
    login(client, world["staff"])
    assert "Sự kiện lạc năm" in _page(client.get("/events?when=all"), 200)
    assert "Sự kiện lạc năm" in _page(client.get(f"/events/{event.id}"), 200)
    _page(client.get(f"/events/{event.id}/edit"), 200)
    # The check-in link says "not open yet" or "closed", as for any event outside its window.
    link = client.get("/c/" + scans.code_for(event, settings))
    _page(link, 403 if start == FAR else 410)
    assert client.get("/api/v1/events", headers=world["auth"]).status_code == 200


def test_unknown_home_unit_in_the_public_check_in_api_is_a_422_problem(
    client: TestClient, session: Session, settings: Settings, world: dict[str, Any]
) -> None:
    event = make_event(session, world["venue"])
    profile = {"age_band": "25-59", "gender": "female", "home_unit_id": 2**31 - 1, "consent": True}
    body = {"code": scans.code_for(event, settings), "nonce": "nonce-0001", "profile": profile}
    _problem(client.post("/api/v1/checkins", json=body), 422, "invalid_input")
    assert count_rows(session, Participant) == 0


def test_unknown_venue_in_the_api_is_a_422_problem(
    client: TestClient, session: Session, world: dict[str, Any]
) -> None:
    response = client.post(
        "/api/v1/events", json=_event_json(world["venue"], venue_id=999), headers=world["auth"]
    )
    _problem(response, 422, "invalid_input")
    assert count_rows(session, Event) == 0


def test_an_unknown_foreign_key_no_service_checks_is_a_422_problem(
    client: TestClient, session: Session, world: dict[str, Any]
) -> None:
    """The last line of defence: the database's own foreign key refusal becomes unknown_reference."""
    # A real IntegrityError from the database: a venue naming a unit that does not exist.

    session.add(Venue(name="Không có xã", type=world["venue"].type, unit_id=10**6))
    with pytest.raises(IntegrityError) as raised:
        session.commit()
    session.rollback()
    refusal = database_refusal(raised.value)
    assert refusal is not None and refusal.code == ErrorCode.unknown_reference and refusal.status == 422


@pytest.mark.parametrize("char", ["\x00", "\x01", "\x1b", "\x7f"])
def test_control_characters_in_a_search_are_refused(
    client: TestClient, world: dict[str, Any], char: str
) -> None:
    login(client, world["staff"])
    page = _page(client.get("/events", params={"q": f"đọc{char}sách"}), 422)
    assert "ký tự điều khiển" in page
    _problem(
        client.get("/api/v1/events", params={"q": f"a{char}"}, headers=world["auth"]),
        422,
        "invalid_characters",
    )


def test_tab_and_newline_in_a_text_field_are_kept(
    client: TestClient, session: Session, world: dict[str, Any]
) -> None:
    login(client, world["staff"])
    form = _event_form(world["venue"], description="Dòng một\r\n\tDòng hai")
    assert client.post("/events", data=form).status_code == 303
    assert count_rows(session, Event) == 1


def test_control_characters_in_a_form_field_are_refused(
    client: TestClient, session: Session, world: dict[str, Any]
) -> None:
    login(client, world["staff"])
    page = _page(client.post("/events", data=_event_form(world["venue"], title="Ngày\x00hội")), 422)
    assert "ký tự điều khiển" in page
    assert count_rows(session, Event) == 0


def _parts(form: dict[str, Any]) -> dict[str, Any]:
    """A form as multipart text parts (no file name), as a browser sends a form with a file input."""
    return {name: (None, str(value)) for name, value in form.items()}


@pytest.mark.parametrize("char", ["\x00", "\x01", "\x1b", "\x7f"])
def test_control_characters_in_a_multipart_text_field_are_refused(
    client: TestClient, session: Session, world: dict[str, Any], char: str
) -> None:
    login(client, world["staff"])
    refused = client.post("/events", files=_parts(_event_form(world["venue"], title=f"Họp{char}x")))
    assert "ký tự điều khiển" in _page(refused, 422)
    assert count_rows(session, Event) == 0
    # The same form without the character is stored: multipart itself is not refused.
    assert client.post("/events", files=_parts(_event_form(world["venue"]))).status_code == 303
    assert count_rows(session, Event) == 1


def test_a_control_character_in_a_multipart_field_name_is_refused(
    client: TestClient, session: Session, world: dict[str, Any]
) -> None:
    login(client, world["staff"])
    body = b"".join(
        f'--b\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
        for name, value in _event_form(world["venue"], **{"x\x01": "y"}).items()
    )
    headers = {"content-type": "multipart/form-data; boundary=b"}
    response = client.post("/events", content=body + b"--b--\r\n", headers=headers)
    assert "ký tự điều khiển" in _page(response, 422)
    assert count_rows(session, Event) == 0


def test_a_file_sent_where_a_form_expects_text_is_refused_not_saved(
    client: TestClient, session: Session, world: dict[str, Any]
) -> None:
    login(client, world["staff"])
    parts = _parts(_event_form(world["venue"]))
    parts["title"] = ("title.txt", "Ngày hội đọc sách".encode(), "text/plain")
    page = _page(client.post("/events", files=parts), 422)
    assert "Một số thông tin chưa hợp lệ" in page
    assert count_rows(session, Event) == 0  # before: saved with the title "UploadFile(...)"


def test_a_file_part_is_data_for_its_import_not_text(
    client: TestClient, session: Session, world: dict[str, Any]
) -> None:
    """Uploads are not read by the guard: a file with bytes that are control characters in text reaches
    its route, which answers with its own rule (here: not UTF-8), and a good file is still imported."""
    login(client, make_staff(session, Role.admin))
    binary = {"file": ("thon.csv", b"\xff\x00\x01\x1b", "text/csv")}
    page = _page(client.post("/places/import", files=binary), 422)
    assert "ký tự điều khiển" not in page and "UTF-8" in page
    commune = world["venue"].unit_id
    code = session.get(OrgUnit, commune).code  # type: ignore[union-attr]
    good = f"kind,name,parent_code\nvillage,Thôn Nà Pàn,{code}\n".encode()
    before = count_rows(session, OrgUnit)
    response = client.post("/places/import", files={"file": ("thon.csv", good, "text/csv")})
    assert response.status_code == 303, response.text
    assert count_rows(session, OrgUnit) == before + 1


def test_control_characters_in_a_json_field_are_refused(
    client: TestClient, session: Session, world: dict[str, Any]
) -> None:
    body = _event_json(world["venue"], title="Ngày\x00hội")
    _problem(client.post("/api/v1/events", json=body, headers=world["auth"]), 422, "invalid_characters")
    nested = {"code": "123456789", "nonce": "nonce-0001", "profile": {"name": "A\x00", "age_band": "25-59"}}
    _problem(client.post("/api/v1/checkins", json=nested), 422, "invalid_characters")
    assert count_rows(session, Event) == 0


@pytest.mark.parametrize("number", [2**31, 2**63, 10**20])
def test_an_id_beyond_the_database_integer_range_is_refused(
    client: TestClient, world: dict[str, Any], number: int
) -> None:
    login(client, world["staff"])
    page = client.get(f"/events/{number}")
    assert page.status_code in (404, 422)
    _page(page, page.status_code)
    api = client.get(f"/api/v1/events/{number}", headers=world["auth"])
    assert api.status_code in (404, 422) and api.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize("number", [2**31, 2**63, 10**20])
def test_a_page_number_beyond_the_database_integer_range_is_refused(
    client: TestClient, world: dict[str, Any], number: int
) -> None:
    login(client, world["staff"])
    page = client.get(f"/events?page={number}")
    assert page.status_code in (200, 422)
    _page(page, page.status_code)
    api = client.get(f"/api/v1/events?page={number}", headers=world["auth"])
    assert api.status_code in (200, 422), api.text


def test_null_in_a_patch_for_a_field_that_cannot_be_empty_is_a_422_problem(
    client: TestClient, session: Session, world: dict[str, Any]
) -> None:
    event = make_event(session, world["venue"])
    for field in ("title", "type", "venue_id", "starts_at", "ends_at", "campaign", "checkin_mode"):
        response = client.patch(f"/api/v1/events/{event.id}", json={field: None}, headers=world["auth"])
        assert field in str(_problem(response, 422, "invalid_input")["errors"])
    # expected_audience may be cleared: "not known".
    response = client.patch(
        f"/api/v1/events/{event.id}", json={"expected_audience": None}, headers=world["auth"]
    )
    assert response.status_code == 200 and response.json()["expected_audience"] is None


def test_a_form_posted_to_the_api_is_a_415_problem(client: TestClient, world: dict[str, Any]) -> None:
    response = client.post("/api/v1/events", data={"title": "x"}, headers=world["auth"])
    _problem(response, 415, "unsupported_media_type")


def test_json_posted_to_a_page_is_a_415_page(client: TestClient, world: dict[str, Any]) -> None:
    login(client, world["staff"])
    _page(client.post("/events", json=_event_form(world["venue"])), 415)


def test_an_api_post_without_a_body_is_a_422_problem(client: TestClient, world: dict[str, Any]) -> None:
    _problem(client.post("/api/v1/events", headers=world["auth"]), 422, "invalid_input")
    _problem(
        client.post("/api/v1/checkins", content=b"{not json", headers={"content-type": "application/json"}),
        422,
        "invalid_input",
    )


def test_a_body_over_the_limit_is_a_413(
    client: TestClient, settings: Settings, world: dict[str, Any]
) -> None:
    limit = settings.max_body_kb * 1024
    big = {"title": "x" * (limit + 1)}
    _problem(client.post("/api/v1/events", json=big, headers=world["auth"]), 413, "payload_too_large")
    login(client, world["staff"])
    _page(client.post("/events", data={"title": "x" * (limit + 1)}), 413)


def test_a_chunked_body_over_the_limit_is_a_413(
    client: TestClient, settings: Settings, world: dict[str, Any]
) -> None:
    """No Content-Length to trust: the middleware counts the bytes as they arrive."""
    chunk = b"x" * 65536
    chunks = settings.max_body_kb * 1024 // len(chunk) + 2

    def stream() -> Any:
        for _ in range(chunks):
            yield chunk

    login(client, world["staff"])
    headers = {"content-type": "multipart/form-data; boundary=zzz"}
    response = client.post("/places/import", content=stream(), headers=headers)
    assert "content-length" not in {k.lower() for k in response.request.headers}
    _page(response, 413)
    api = client.post(
        "/api/v1/events", content=stream(), headers={**world["auth"], "content-type": "application/json"}
    )
    _problem(api, 413, "payload_too_large")


def test_405_names_every_method_of_the_path_in_allow(client: TestClient, world: dict[str, Any]) -> None:
    login(client, world["staff"])
    response = client.put("/events")
    _page(response, 405)
    assert response.headers["allow"] == "GET, HEAD, POST"
    problem = client.delete("/api/v1/events", headers=world["auth"])
    _problem(problem, 405, "method_not_allowed")
    assert problem.headers["allow"] == "GET, HEAD, POST"


def test_head_on_a_route_without_get_is_a_405_with_allow(client: TestClient) -> None:
    response = client.head("/api/v1/checkins")
    assert response.status_code == 405 and response.headers["allow"] == "POST"


def test_head_answers_as_get_without_the_body(client: TestClient, world: dict[str, Any]) -> None:
    for path, headers in (("/healthz", {}), ("/login", {}), ("/api/v1/events", world["auth"])):
        get, head = client.get(path, headers=headers), client.head(path, headers=headers)
        assert get.status_code == head.status_code == 200, path
        assert head.content == b"" and len(get.content) > 0, path
        assert head.headers["content-type"] == get.headers["content-type"], path
        assert head.headers["content-length"] == get.headers["content-length"], path
    refused = client.head("/events")  # a staff page: the same redirect to the login page as GET
    assert refused.status_code == 303 and refused.headers["location"].startswith("/login")
