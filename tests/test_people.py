"""The people pages: cards for a group printed on A4 and decoded back, a card issued, replaced, revoked."""

from __future__ import annotations

import re
from xml.etree import ElementTree as ET

import PIL.Image
import zxingcpp
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from server import codes
from server.config import Settings
from server.models import Credential, CredentialKind, Participant, Role
from server.services import identities
from tests.factories import count_rows, login, make_staff, make_tree, make_venue

SVG = "{http://www.w3.org/2000/svg}"


def _organizer(session: Session, client: TestClient) -> dict:  # type: ignore[type-arg]
    tree = make_tree(session)
    venue = make_venue(session, tree["commune"])
    staff = make_staff(session, Role.organizer, tree["commune"])
    login(client, staff)
    return {**tree, "venue": venue, "staff": staff}


def _decode_sheet(svg: str) -> set[str]:
    """Draw every card's QR code at its place on the page (8 px/mm) and decode the whole page at once."""
    root = ET.fromstring(svg)
    scale = 8
    page = PIL.Image.new("L", (210 * scale, 297 * scale), 255)
    for box in root.iter(f"{SVG}svg"):
        if box is root:
            continue
        x, y, width = (float(box.attrib[k]) for k in ("x", "y", "width"))
        side = float(box.attrib["viewBox"].split()[2])
        module = width * scale / side
        path = box.find(f"{SVG}path")
        assert path is not None
        for x0, y0, x1, y1 in re.findall(r"M(\d+),(\d+)H(\d+)V(\d+)H\d+z", path.attrib["d"]):
            page.paste(
                0,
                (
                    round(x * scale + int(x0) * module),
                    round(y * scale + int(y0) * module),
                    round(x * scale + int(x1) * module),
                    round(y * scale + int(y1) * module),
                ),
            )
    return {result.text for result in zxingcpp.read_barcodes(page)}


def test_cards_for_a_class_print_on_a4_and_every_card_decodes(
    client: TestClient, session: Session, settings: Settings
) -> None:
    world = _organizer(session, client)
    data = {
        "venue_id": str(world["venue"].id),
        "age_band": "6-11",
        "gender": "",
        "count": "12",
        "consent": "yes",
    }
    made = client.post("/people/cards/new", data=data)
    assert made.status_code == 303 and made.headers["location"].startswith("/people/cards?card=")
    sheet = client.get(made.headers["location"])
    assert sheet.status_code == 200
    pages = re.findall(r"<svg [^>]*viewBox=\"0 0 210 297\".*?</svg>\s*</div>", sheet.text, flags=re.S)
    assert len(pages) == 2  # 10 cards on the first A4 page, 2 on the second
    cards = session.exec(select(Credential).where(Credential.kind == CredentialKind.card)).all()
    assert len(cards) == 12 and count_rows(session, Participant) == 12
    decoded = set().union(*(_decode_sheet(page.removesuffix("</div>").strip()) for page in pages))
    assert decoded == {codes.card_payload(card.lookup) for card in cards}
    # Later, from the people page: every card still in use at the venue, printed again.
    people = client.get("/people")
    assert 'action="/people/cards"' in people.text and f'value="{world["venue"].id}"' in people.text
    again = client.get("/people/cards", params={"venue": world["venue"].id})
    assert again.text.count('viewBox="0 0 210 297"') == 2
    assert "gia số" in sheet.text  # no names for children: "Người tham gia số N" instead (wrapped)


def test_a_childs_name_refuses_the_whole_group(client: TestClient, session: Session) -> None:
    world = _organizer(session, client)
    data = {
        "venue_id": str(world["venue"].id),
        "age_band": "12-15",
        "names": "Hoàng Văn A\nLương Thị B",
        "consent": "yes",
    }
    refused = client.post("/people/cards/new", data=data)
    assert refused.status_code == 422 and "dưới 16" in refused.text and "Lương Thị B" in refused.text
    assert count_rows(session, Participant) == 0 and count_rows(session, Credential) == 0


def test_group_form_without_consent_or_people_says_what_to_fix(client: TestClient, session: Session) -> None:
    world = _organizer(session, client)
    refused = client.post("/people/cards/new", data={"venue_id": str(world["venue"].id), "age_band": "60+"})
    assert (
        refused.status_code == 422
        and 'id="count-error"' in refused.text
        and 'id="consent-error"' in refused.text
    )
    assert count_rows(session, Participant) == 0


def test_lost_card_is_replaced_and_the_old_number_stops_working(
    client: TestClient, session: Session, settings: Settings
) -> None:
    world = _organizer(session, client)
    data = {"venue_id": str(world["venue"].id), "age_band": "60+", "names": "Nông Văn Lý", "consent": "yes"}
    client.post("/people/cards/new", data=data)
    session.commit()
    old = session.exec(select(Credential)).one()
    page = client.get(f"/people/{old.participant_id}")
    assert page.status_code == 200 and codes.pretty(old.lookup) in page.text
    replaced = client.post(f"/people/cards/{old.id}/replace")
    assert replaced.status_code == 303
    session.commit()
    session.expire_all()  # the app changed rows this session holds
    cards = session.exec(select(Credential).order_by(Credential.id)).all()
    assert len(cards) == 2 and cards[0].revoked_at is not None and cards[1].revoked_at is None
    assert cards[1].participant_id == old.participant_id
    found = identities.find_participants(session, settings, world["staff"], codes.pretty(cards[1].lookup))
    assert [f.participant.id for f in found] == [old.participant_id]
    revoked = client.post(f"/people/cards/{cards[1].id}/revoke")
    assert revoked.status_code == 303
    session.commit()
    session.expire_all()
    assert all(card.revoked_at is not None for card in session.exec(select(Credential)).all())


def test_people_search_finds_by_name_without_diacritics(client: TestClient, session: Session) -> None:
    world = _organizer(session, client)
    data = {
        "venue_id": str(world["venue"].id),
        "age_band": "60+",
        "names": "Nguyễn Văn Đức",
        "consent": "yes",
    }
    client.post("/people/cards/new", data=data)
    found = client.get("/people", params={"q": "nguyen van duc"})
    assert found.status_code == 200 and "Nguyễn Văn Đức" in found.text
    other = make_staff(session, Role.organizer, world["other"])
    client.post("/logout")
    login(client, other)
    assert "Nguyễn Văn Đức" not in client.get("/people", params={"q": "nguyen"}).text
    card = session.exec(select(Credential)).one()
    assert client.get(f"/people/{card.participant_id}").status_code == 404
    assert client.post(f"/people/cards/{card.id}/revoke").status_code == 404
