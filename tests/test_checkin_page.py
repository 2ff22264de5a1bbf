"""The resident's check-in page through real HTTP: form, consent, one tap, already checked in, bad codes."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient
from sqlmodel import Session, select

from server.assets import asset_url, data_url, manifest_url, resident_css
from server.config import ROOT, Settings
from server.models import CheckIn, CheckInAttempt, EventStatus, Participant
from server.services.scans import code_for
from tests.factories import count_rows, make_event, make_tree, make_venue


def _nonce(html: str) -> str:
    match = re.search(r'name="nonce" value="([^"]+)"', html)
    assert match, "the form carries a nonce"
    return match.group(1)


def _first_time(client: TestClient, url: str, **fields: str) -> object:
    page = client.get(url)
    data = {"nonce": _nonce(page.text), "age_band": "12-15", "gender": "female", "consent": "yes", **fields}
    return client.post(url, data=data)


def test_page_shows_event_in_vietnamese(client: TestClient, session: Session, settings: Settings) -> None:
    tree = make_tree(session)
    event = make_event(session, make_venue(session, tree["village"], name="Nhà văn hóa thôn Bản Cưởm"))
    page = client.get(f"/c/{code_for(event, settings)}")
    assert page.status_code == 200
    assert "Ngày hội đọc sách" in page.text and "Nhà văn hóa thôn Bản Cưởm" in page.text
    assert "Điểm danh" in page.text and 'lang="vi"' in page.text
    assert 'name="consent"' in page.text and "checked" not in page.text.split('name="consent"')[1][:40]
    # The venue's village is pre-selected as home.
    assert f'<option value="{tree["village"].id}" selected>' in page.text


def test_first_check_in_sets_device_cookie_and_second_scan_says_already(
    client: TestClient, session: Session, settings: Settings
) -> None:
    event = make_event(session)
    url = f"/c/{code_for(event, settings)}"
    done = _first_time(client, url)
    assert done.status_code == 200, done.text
    assert "dd_device" in client.cookies
    assert "Bạn đã điểm danh thành công" in done.text
    again = client.get(url)
    assert re.search(r"Bạn đã điểm danh lúc \d\d:\d\d", again.text)
    assert 'name="age_band"' not in again.text
    assert count_rows(session, CheckIn) == 1


def test_returning_phone_gets_one_tap_at_next_event(
    client: TestClient, session: Session, settings: Settings
) -> None:
    first, second = make_event(session), make_event(session)
    _first_time(client, f"/c/{code_for(first, settings)}")
    url = f"/c/{code_for(second, settings)}"
    page = client.get(url)
    assert 'name="age_band"' not in page.text and 'class="checkin-button"' in page.text
    done = client.post(url, data={"nonce": _nonce(page.text)})
    assert "Bạn đã điểm danh thành công" in done.text
    assert count_rows(session, Participant) == 1 and count_rows(session, CheckIn) == 2


def test_device_token_from_local_storage_is_accepted(
    client: TestClient, session: Session, settings: Settings
) -> None:
    first, second = make_event(session), make_event(session)
    _first_time(client, f"/c/{code_for(first, settings)}")
    token = client.cookies["dd_device"]
    client.cookies.clear()
    url = f"/c/{code_for(second, settings)}"
    page = client.get(url)
    done = client.post(url, data={"nonce": _nonce(page.text), "device": token})
    assert "Bạn đã điểm danh thành công" in done.text
    assert count_rows(session, Participant) == 1


def test_missing_consent_re_renders_form_and_stores_nothing(
    client: TestClient, session: Session, settings: Settings
) -> None:
    event = make_event(session)
    url = f"/c/{code_for(event, settings)}"
    page = client.get(url)
    refused = client.post(url, data={"nonce": _nonce(page.text), "age_band": "25-59", "gender": "male"})
    assert refused.status_code == 422
    assert "đồng ý" in refused.text and 'value="25-59" required checked' in refused.text
    assert count_rows(session, CheckIn) == 0 and count_rows(session, Participant) == 0


def test_child_name_is_refused_on_the_page(client: TestClient, session: Session, settings: Settings) -> None:
    event = make_event(session)
    refused = _first_time(client, f"/c/{code_for(event, settings)}", name="Lò Thị Mai")
    assert refused.status_code == 422  # type: ignore[attr-defined]
    assert "dưới 16 tuổi" in refused.text  # type: ignore[attr-defined]
    assert count_rows(session, Participant) == 0


def test_bad_age_band_is_a_form_error(client: TestClient, session: Session, settings: Settings) -> None:
    event = make_event(session)
    refused = _first_time(client, f"/c/{code_for(event, settings)}", age_band="200")
    assert refused.status_code == 422  # type: ignore[attr-defined]
    assert count_rows(session, CheckIn) == 0


def test_htmx_post_returns_the_fragment_only(
    client: TestClient, session: Session, settings: Settings
) -> None:
    event = make_event(session)
    url = f"/c/{code_for(event, settings)}"
    page = client.get(url)
    done = client.post(
        url,
        headers={"HX-Request": "true"},
        data={"nonce": _nonce(page.text), "age_band": "60+", "gender": "male", "consent": "yes"},
    )
    assert done.text.lstrip().startswith('<section id="checkin" data-checked-in>')
    assert "<html" not in done.text


def test_forged_code_gets_a_clear_vietnamese_page(
    client: TestClient, session: Session, settings: Settings
) -> None:
    event = make_event(session)
    code = code_for(event, settings)
    forged = code[:-1] + ("0" if code[-1] != "0" else "1")
    page = client.get(f"/c/{forged}")
    assert page.status_code == 404 and "Mã điểm danh không hợp lệ" in page.text
    posted = client.post(f"/c/{forged}", data={"nonce": "abcdefgh1234"})
    assert posted.status_code == 404
    session.commit()
    # The scan (opening the page) and the post are both logged as refusals.
    assert session.exec(select(CheckInAttempt.outcome)).all() == ["code_invalid", "code_invalid"]


def test_cancelled_event_page_says_so(client: TestClient, session: Session, settings: Settings) -> None:
    event = make_event(session, status=EventStatus.cancelled)
    page = client.get(f"/c/{code_for(event, settings)}")
    assert page.status_code == 410 and "đã bị hủy" in page.text


def test_typed_code_with_dashes_and_lowercase_finds_the_event(
    client: TestClient, session: Session, settings: Settings
) -> None:
    event = make_event(session)
    code = code_for(event, settings)
    typed = "-".join([code[:2], code[2:6], code[6:]]).lower()
    response = client.get("/c", params={"code": typed})
    assert response.status_code == 303 and response.headers["location"] == f"/c/{code}"


def test_english_is_chosen_by_browser_language(
    client: TestClient, session: Session, settings: Settings
) -> None:
    event = make_event(session)
    page = client.get(f"/c/{code_for(event, settings)}", headers={"Accept-Language": "en-GB,en;q=0.9"})
    assert 'lang="en"' in page.text and "Check in" in page.text


def test_cross_site_post_is_refused(client: TestClient, session: Session, settings: Settings) -> None:
    event = make_event(session)
    url = f"/c/{code_for(event, settings)}"
    page = client.get(url)
    refused = client.post(
        url,
        headers={"Sec-Fetch-Site": "cross-site"},
        data={"nonce": _nonce(page.text), "age_band": "60+", "gender": "male", "consent": "yes"},
    )
    assert refused.status_code == 403
    assert count_rows(session, CheckIn) == 0


def test_htmx_post_to_a_closed_event_reloads_the_page(
    client: TestClient, session: Session, settings: Settings
) -> None:
    event = make_event(session)
    url = f"/c/{code_for(event, settings)}"
    page = client.get(url)
    event.status = EventStatus.cancelled
    session.add(event)
    session.commit()
    data = {"nonce": _nonce(page.text), "age_band": "60+", "gender": "male", "consent": "yes"}
    response = client.post(url, headers={"HX-Request": "true"}, data=data)
    assert response.headers["HX-Refresh"] == "true"
    assert client.get(url).status_code == 410
    assert count_rows(session, CheckIn) == 0


def test_page_carries_its_stylesheet_and_icon_and_fetches_only_two_scripts(
    client: TestClient, session: Session, settings: Settings
) -> None:
    """On weak 3G every file is a round trip: the first visit is the page and two deferred scripts."""
    page = client.get(f"/c/{code_for(make_event(session), settings)}").text
    assert f"<style>{resident_css()}</style>" in page
    assert 'rel="stylesheet"' not in page and 'rel="manifest"' not in page
    assert re.findall(r'<link rel="icon" href="([^"]+)"', page) == [data_url("icon.svg")]
    scripts = re.findall(r'<script src="([^"]+)"[^>]*defer', page)
    assert scripts == [asset_url("vendor/htmx/htmx.min.js"), asset_url("js/checkin.js")]
    # The manifest (and the worker) wait for checkin.js, after a first check-in.
    assert f'data-manifest="{manifest_url("vi").replace("&", "&amp;")}"' in page
    assert "data-checked-in" not in page


def test_every_class_of_the_check_in_page_is_styled_by_its_inlined_rules(
    client: TestClient, session: Session, settings: Settings
) -> None:
    """A rule the page needs that sits below app.css's marker would leave the page unstyled there."""
    url = f"/c/{code_for(make_event(session), settings)}"
    form = client.get(url).text
    refused = client.post(url, data={"nonce": _nonce(form), "age_band": "12-15", "gender": "female"})
    assert refused.status_code == 422 and 'class="form-error"' in refused.text
    done = _first_time(client, url)
    assert "data-checked-in" in done.text  # checkin.js now keeps the app for next time
    earlier = client.get(url)
    assert "data-checked-in" in earlier.text
    used = {
        name
        for html in (form, refused.text, done.text, earlier.text)
        for value in re.findall(r'class="([^"]+)"', html)
        for name in value.split()
    }
    whole = (ROOT / "static" / "css" / "app.css").read_text()
    styled = set(re.findall(r"\.([A-Za-z][\w-]*)", whole))
    inlined = set(re.findall(r"\.([A-Za-z][\w-]*)", str(resident_css())))
    assert {"checkin-button", "choices", "consent", "wide"} <= used & inlined
    assert sorted((used & styled) - inlined) == []
