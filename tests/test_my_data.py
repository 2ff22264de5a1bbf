"""A resident's own data from their own phone (/my-data): see, download, correct, withdraw, delete; the
device cookie is the key, the counts stay, every action is logged."""

from __future__ import annotations

import json
import re

from fastapi.testclient import TestClient
from sqlmodel import Session, select

from server import codes
from server.config import Settings
from server.models import AuditEntry, Channel, CheckIn, Credential, Event, Participant, Role
from server.services import attendance, checkin, identities
from server.services.checkin import CheckInRequest, Identity, new_nonce
from server.services.scans import code_for
from tests.factories import count_rows, login, make_event, make_participant, make_staff, make_tree, make_venue


def _nonce(html: str) -> str:
    match = re.search(r'name="nonce" value="([^"]+)"', html)
    assert match
    return match.group(1)


def _check_in(client: TestClient, settings: Settings, event: Event, **fields: str) -> str:
    url = f"/c/{code_for(event, settings)}"
    page = client.get(url)
    data = {"nonce": _nonce(page.text), **fields}
    if "age_band" in page.text.split('class="checkin-button"')[0] and 'name="age_band"' in page.text:
        data = {"age_band": "25-59", "gender": "female", "consent": "yes", **data}
    done = client.post(url, data=data)
    assert done.status_code == 200, done.text
    return done.text


def _resident(client: TestClient, session: Session, settings: Settings) -> tuple[Participant, list[Event]]:
    tree = make_tree(session)
    venue = make_venue(session, tree["village"], name="Nhà văn hóa thôn Bản Cưởm")
    events = [
        make_event(session, venue, title="Ngày hội đọc sách"),
        make_event(session, venue, title="CLB cờ"),
    ]
    done = _check_in(client, settings, events[0], name="Lý Thị Mai", home_unit_id=str(tree["village"].id))
    assert 'href="/my-data"' in done  # the confirmation links the page
    _check_in(client, settings, events[1])
    participant = session.exec(select(Participant)).one()
    return participant, events


def _logged(session: Session) -> list[str]:
    session.commit()
    return [e.action for e in session.exec(select(AuditEntry).order_by(AuditEntry.id)).all()]  # type: ignore[arg-type]


def test_the_start_page_links_my_data_and_an_unknown_phone_is_told_so(client: TestClient) -> None:
    assert 'href="/my-data"' in client.get("/").text
    page = client.get("/my-data")
    assert page.status_code == 200 and "Dữ liệu của tôi" in page.text
    assert 'action="/my-data/delete"' not in page.text
    assert client.get("/my-data/data.json").status_code == 404
    assert client.post("/my-data/delete", data={"confirm": "yes"}).status_code == 404
    client.cookies.set("dd_device", "x" * 40)
    assert client.post("/my-data", data={"age_band": "60+", "gender": "male"}).status_code == 404


def test_a_phone_sees_and_downloads_what_is_stored(
    client: TestClient, session: Session, settings: Settings
) -> None:
    participant, _events = _resident(client, session, settings)
    page = client.get("/my-data")
    assert page.status_code == 200 and page.headers["cache-control"] == "no-store"
    assert "Lý Thị Mai" in page.text and "Thôn Bản Cưởm" in page.text
    assert (
        "Ngày hội đọc sách" in page.text and "CLB cờ" in page.text and identities.CONSENT_VERSION in page.text
    )
    download = client.get("/my-data/data.json")
    assert download.status_code == 200 and "attachment" in download.headers["content-disposition"]
    document = json.loads(download.text)
    assert document["participant"]["name"] == "Lý Thị Mai"
    assert (
        document["participant"]["age_band"] == "25-59" and document["participant"]["home"] == "Thôn Bản Cưởm"
    )
    assert {v["event"] for v in document["check_ins"]} == {"Ngày hội đọc sách", "CLB cờ"}
    assert document["participant"]["consent_version"] == participant.consent_version
    assert _logged(session) == ["participant_downloaded"]


def test_another_phone_sees_nothing_of_it(client: TestClient, session: Session, settings: Settings) -> None:
    _resident(client, session, settings)
    client.cookies.clear()
    page = client.get("/my-data")
    assert "Lý Thị Mai" not in page.text and "Ngày hội đọc sách" not in page.text


def test_a_correction_follows_the_check_in_rules(
    client: TestClient, session: Session, settings: Settings
) -> None:
    participant, _events = _resident(client, session, settings)
    refused = client.post("/my-data", data={"age_band": "12-15", "gender": "female", "name": "Lý Thị Mai"})
    assert refused.status_code == 422 and 'id="correct-error"' in refused.text
    bad_home = client.post("/my-data", data={"age_band": "60+", "gender": "male", "home_unit_id": "999999"})
    assert bad_home.status_code == 422
    assert client.post("/my-data", data={"age_band": "old", "gender": "male"}).status_code == 422
    session.refresh(participant)
    assert participant.name == "Lý Thị Mai" and participant.age_band.value == "25-59"
    saved = client.post(
        "/my-data", data={"age_band": "60+", "gender": "male", "home_unit_id": "", "name": " Lý Văn Mai "}
    )
    assert saved.status_code == 303 and saved.headers["location"] == "/my-data?saved=1"
    session.refresh(participant)
    assert (participant.name, participant.search_name) == ("Lý Văn Mai", "ly van mai")
    assert participant.age_band.value == "60+" and participant.home_unit_id is None
    # Past check-ins keep what they were counted with.
    assert {c.age_band.value for c in session.exec(select(CheckIn)).all()} == {"25-59"}
    child = client.post("/my-data", data={"age_band": "12-15", "gender": "male", "name": ""})
    assert child.status_code == 303
    assert _logged(session) == ["participant_corrected", "participant_corrected"]


def test_withdrawing_forgets_the_name_and_the_phone_and_keeps_the_counts(
    client: TestClient, session: Session, settings: Settings
) -> None:
    participant, events = _resident(client, session, settings)
    assert client.post("/my-data/withdraw", data={}).status_code == 422  # the box was not ticked
    done = client.post("/my-data/withdraw", data={"confirm": "yes"})
    assert done.status_code == 200 and "dd_device" not in client.cookies
    session.refresh(participant)
    assert participant.name is None and participant.search_name == "" and participant.consent_at is None
    assert all(c.revoked_at is not None for c in session.exec(select(Credential)).all())
    assert count_rows(session, CheckIn) == 2
    assert attendance.live_summary(session, events[0].id or 0).people == 1
    assert _logged(session) == ["consent_withdrawn"]
    entry = session.exec(select(AuditEntry)).one()
    assert entry.staff_id is None and entry.target_id == str(participant.id)


def test_deleting_removes_identifying_fields_and_keeps_the_counts(
    client: TestClient, session: Session, settings: Settings
) -> None:
    participant, events = _resident(client, session, settings)
    token = client.cookies["dd_device"]
    done = client.post("/my-data/delete", data={"confirm": "yes"})
    assert done.status_code == 200
    session.refresh(participant)
    assert participant.name is None and participant.home_unit_id is None and participant.erased_at is not None
    assert count_rows(session, Credential) == 0
    assert count_rows(session, CheckIn) == 2
    summary = attendance.live_summary(session, events[1].id or 0)
    assert (summary.visits, summary.people) == (1, 1)
    # The phone is a stranger now: the next check-in is a first time again, and my data shows nothing.
    client.cookies.set("dd_device", token)
    assert "Lý Thị Mai" not in client.get("/my-data").text
    assert 'name="age_band"' in client.get(f"/c/{code_for(events[0], settings)}").text
    assert _logged(session) == ["participant_deleted"]


def test_a_cross_site_post_is_refused(client: TestClient, session: Session, settings: Settings) -> None:
    participant, _events = _resident(client, session, settings)
    refused = client.post(
        "/my-data/delete", data={"confirm": "yes"}, headers={"Sec-Fetch-Site": "cross-site"}
    )
    assert refused.status_code == 403
    session.refresh(participant)
    assert participant.name == "Lý Thị Mai"


# --- An organizer does the same for someone without a phone (found by card or name on /people) -------


def _organizer_case(
    client: TestClient, session: Session, settings: Settings
) -> tuple[Participant, Event, Credential]:
    tree = make_tree(session)
    venue = make_venue(session, tree["commune"])
    organizer = make_staff(session, Role.organizer, tree["commune"])
    person = make_participant(session, name="Nông Văn Ba", home_unit=tree["village"])
    card = identities.issue_card(session, settings, organizer, person, venue)
    event = make_event(session, venue)
    result = checkin.check_in(
        session,
        settings,
        CheckInRequest(
            channel=Channel.staff_form,
            key=new_nonce(),
            event_id=event.id,
            identity=Identity(card=card.lookup),
        ),
        staff=organizer,
    )
    assert result.check_in.participant_id == person.id
    login(client, organizer)
    found = client.get("/people", params={"q": codes.pretty(card.lookup)})
    assert f'href="/people/{person.id}"' in found.text
    return person, event, card


def test_an_organizer_shows_and_downloads_a_persons_data(
    client: TestClient, session: Session, settings: Settings
) -> None:
    person, _event, card = _organizer_case(client, session, settings)
    page = client.get(f"/people/{person.id}")
    assert page.status_code == 200 and 'id="stored"' in page.text and "Ngày hội đọc sách" in page.text
    document = json.loads(client.get(f"/people/{person.id}/data.json").text)
    assert document["participant"]["name"] == "Nông Văn Ba" and document["cards"] == [card.lookup]
    assert _logged(session)[-2:] == ["participant_viewed", "participant_downloaded"]


def test_an_organizer_corrects_withdraws_and_deletes_each_logged(
    client: TestClient, session: Session, settings: Settings
) -> None:
    person, event, _card = _organizer_case(client, session, settings)
    refused = client.post(
        f"/people/{person.id}/correct", data={"age_band": "6-11", "gender": "male", "name": "Nông Văn Ba"}
    )
    assert refused.status_code == 422
    fixed = client.post(
        f"/people/{person.id}/correct", data={"age_band": "60+", "gender": "male", "name": "Nông Văn Bá"}
    )
    assert fixed.status_code == 303
    session.refresh(person)
    assert person.name == "Nông Văn Bá"
    assert client.post(f"/people/{person.id}/withdraw", data={}).status_code == 422
    assert client.post(f"/people/{person.id}/withdraw", data={"confirm": "yes"}).status_code == 303
    session.commit()
    session.expire_all()  # the card was loaded here before the app revoked it
    assert person.name is None and all(c.revoked_at for c in session.exec(select(Credential)).all())
    assert client.post(f"/people/{person.id}/delete", data={"confirm": "yes"}).status_code == 303
    session.refresh(person)
    assert person.erased_at is not None and count_rows(session, Credential) == 0
    assert attendance.live_summary(session, event.id or 0).people == 1
    logged = session.exec(select(AuditEntry).where(AuditEntry.target_kind == "participant")).all()
    assert [e.action for e in logged if e.action != "participant_viewed"] == [
        "participant_corrected",
        "consent_withdrawn",
        "participant_deleted",
    ]
    assert all(e.staff_username for e in logged)


def test_an_organizer_of_another_commune_cannot_act(
    client: TestClient, session: Session, settings: Settings
) -> None:
    person, _event, _card = _organizer_case(client, session, settings)
    other = make_staff(session, Role.organizer, make_tree(session)["other"])
    client.cookies.clear()
    login(client, other)
    for method, path in (("GET", "data.json"), ("POST", "correct"), ("POST", "withdraw"), ("POST", "delete")):
        data = {"confirm": "yes", "age_band": "60+", "gender": "male"} if method == "POST" else None
        assert client.request(method, f"/people/{person.id}/{path}", data=data).status_code == 404
    session.refresh(person)
    assert person.name == "Nông Văn Ba"
