"""Walk every route: visitors without a staff login and out-of-scope staff are refused and nothing changes;
an administrator is refused nowhere."""

from __future__ import annotations

import re
import secrets

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from sqlmodel import Session, col, select

from server import codes
from server.auth import create_api_token
from server.config import Settings
from server.models import (
    AgeBand,
    ApiToken,
    AuditEntry,
    BookRotation,
    Channel,
    CheckIn,
    Club,
    ClubMember,
    ClubType,
    Credential,
    Event,
    Gender,
    KioskDevice,
    LibraryChange,
    LibraryFigure,
    OrgUnit,
    Participant,
    Role,
    Staff,
    UnitKind,
    Venue,
    utcnow,
)
from server.routes import (
    api,
    api_kiosk,
    api_people,
    api_tokens,
    app_shell,
    audit,
    checkin,
    clubs,
    desk,
    events,
    indicators,
    kiosks,
    library,
    my_data,
    pages,
    people,
    places,
    places_history,
    report_groups,
    reports,
    staff,
)
from server.services import clubs as club_service
from server.services import identities
from server.services import kiosks as kiosk_devices
from server.services import library as library_service
from server.services.checkin import CheckInRequest, Identity, check_in, new_nonce
from server.services.identities import Profile
from tests.factories import (
    count_rows,
    login,
    make_event,
    make_participant,
    make_staff,
    make_tree,
    make_unit,
    make_venue,
    served_routes,
)

VALID_JSON = {
    ("POST", "/api/v1/events/{event_id}/checkins"): {
        "nonce": "walk-0000001",
        "profile": {"age_band": "60+", "gender": "male", "consent": True},
    },
    ("PATCH", "/api/v1/events/{event_id}"): {"title": "Đổi tên"},
    ("POST", "/api/v1/events/{event_id}/headcounts"): {"nonce": "walk-0000003", "delta": 1},
    ("POST", "/api/v1/participants/{participant_id}/cards"): {"venue_id": 1},
}
VALID_FORM = {
    "nonce": "walk-0000002",
    "age_band": "60+",
    "gender": "male",
    "consent": "yes",
    "name": "x",
    "title": "x",
    "type": "contest",
    "date": "2026-04-21",
    "start_time": "08:00",
    "end_time": "09:00",
    "desk_visits_1": "5",
    "copies": "5",
    "sent_on": "2026-01-05",
    "offers_lifelong_learning": "yes",
    "confirm": "yes",
}
ROUTERS = (
    api,
    audit,
    api_kiosk,
    api_people,
    api_tokens,
    checkin,
    clubs,
    desk,
    events,
    indicators,
    kiosks,
    library,
    my_data,
    pages,
    people,
    places,
    places_history,
    report_groups,
    reports,
    staff,
)
# Query strings some routes need to get past validation to the scope (the ids are filled like paths).
QUERIES = {("GET", "/people/cards"): "?card={card_id}&venue={venue_id}"}
# Routes anyone may use: the resident's check-in, the start page, login, language, health, the API's docs.
PUBLIC = {
    ("GET", "/"),
    ("GET", "/healthz"),
    ("GET", "/api/docs"),  # the reference of the API (its schema is public at /openapi.json too)
    ("GET", "/login"),
    ("POST", "/login"),
    ("POST", "/logout"),
    ("POST", "/lang"),
    ("GET", "/c"),
    ("GET", "/c/{code}"),
    ("POST", "/c/{code}"),
    ("POST", "/api/v1/checkins"),
    ("POST", "/api/v1/checkins/batch"),  # a resident's phone; staff items are checked item by item
    ("GET", "/kiosk/pair"),  # a phone pairing with its code
    ("POST", "/kiosk/pair"),
    # A kiosk's own API: only its device token opens it, a staff login gets 401 (tests/test_kiosks.py).
    ("GET", "/api/v1/kiosk"),
    ("POST", "/api/v1/kiosk/batch"),
    # A resident's own data: only the phone's device cookie opens it, 404 otherwise (tests/test_my_data.py).
    ("GET", "/my-data"),
    ("GET", "/my-data/data.json"),
    ("POST", "/my-data"),
    ("POST", "/my-data/withdraw"),
    ("POST", "/my-data/delete"),
}
# What an organizer may open without any id in scope (they show only the organizer's own data).
ORGANIZER_OPEN = {
    ("GET", "/events"),
    ("GET", "/events/new"),
    ("POST", "/events"),
    ("GET", "/events/suspicious"),  # only events in scope (tests/test_flood.py)
    ("GET", "/profile"),
    ("POST", "/profile/tokens"),
    ("POST", "/profile/password"),
    ("GET", "/api/v1/tokens"),  # one's own tokens only (tests/test_tokens.py)
    ("POST", "/api/v1/tokens"),
    ("GET", "/api/v1/events"),
    ("POST", "/api/v1/events"),
    ("GET", "/people"),
    ("GET", "/people/cards/new"),
    ("POST", "/people/cards/new"),
    ("GET", "/people/cards"),  # a sheet of the named cards whose holders are in scope (test_lists_...)
    ("GET", "/api/v1/participants"),
    ("POST", "/api/v1/participants"),  # registering someone new; a card at a venue out of scope: 403
    ("GET", "/kiosks"),
    ("GET", "/clubs"),  # only the clubs in scope (tests/test_clubs.py)
    ("POST", "/clubs"),  # a club at a venue out of scope: 403 (tests/test_clubs.py)
    ("GET", "/library"),  # only the libraries in scope (tests/test_library.py)
    ("GET", "/library/template.csv"),  # an example file, the same for everyone
    ("POST", "/library/import"),  # every line's venue is checked against the scope (tests/test_library.py)
    ("POST", "/kiosks"),  # enrolling at a venue out of scope is refused in the form (tests/test_kiosks.py)
}

# What an office may open without an id in scope: the organizer's list, and the plan's pages for its unit.
OFFICE_OPEN = ORGANIZER_OPEN | {
    ("GET", "/indicators"),
    ("GET", "/indicators/{key}"),  # one indicator over the office's own unit
    ("GET", "/indicators/targets"),
    ("POST", "/indicators/targets"),  # the office's own targets (tests/test_indicators.py)
    ("POST", "/indicators/rules"),
    ("GET", "/reports"),
    ("GET", "/reports/{year}.xlsx"),
    ("GET", "/reports/{year}.csv"),
    ("GET", "/reports/{year}/checkins.csv"),
    ("GET", "/api/v1/reports/yearly"),
    ("GET", "/places"),  # its own part of the tree (tests/test_places_history.py)
}
# Names of the other commune's things: no list a staff member of "commune" sees may show them.
THEIR_VENUE = "Nhà văn hóa thôn Ngoài Phạm Vi"
THEIR_EVENT = "Hội thi kể chuyện Ngoài Phạm Vi"
THEIR_PERSON = "Lương Thị Ngoài"
THEIR_CLUB = "CLB Hát then Ngoài Phạm Vi"
THEIR_KIOSK = "Máy Ngoài Phạm Vi"


def _routes(app: FastAPI) -> list[tuple[str, str]]:
    """Every (method, path) the walk visits: the routes of ROUTERS (each carries its full path)."""
    found = []
    for module in ROUTERS:
        for route in module.router.routes:
            if isinstance(route, APIRoute):
                found.extend((method, route.path) for method in sorted(route.methods) if method != "HEAD")
    return found


def test_the_walk_covers_every_router_the_app_includes(app: FastAPI) -> None:
    walked = set(_routes(app))
    served = served_routes(app.router.routes)
    # The enumeration itself is not empty: the app serves well over a hundred routes.
    assert len(served) > 100 and ("GET", "/people/{participant_id}") in served
    # Every route of the app, in the schema or not, is walked; app_shell serves the static shell files
    # (manifest, service worker, offline pages) and FastAPI its OpenAPI document, neither behind a login.
    shell = served_routes(app_shell.router.routes) | {("GET", "/openapi.json")}
    assert served - shell - walked == set()
    schema_paths = set(app.openapi()["paths"])
    assert schema_paths <= {path for _method, path in walked}


def _fill(path: str, ids: dict[str, int]) -> str:
    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        if name == "year":
            return "2026"
        if name == "code":
            return "ZZZZZZZZZZ"
        if name == "key":
            return "participation"  # an indicator that exists: the venue or the scope must refuse
        return str(ids.get(name, ids["default"]))

    return re.sub(r"\{(\w+)(?::\w+)?\}", value, path)


def _url(method: str, path: str, ids: dict[str, int]) -> str:
    return _fill(path + QUERIES.get((method, path), ""), ids)


@pytest.fixture
def world(session: Session, settings: Settings) -> dict[str, object]:
    tree = make_tree(session)
    mine = make_venue(session, tree["commune"])
    theirs = make_venue(session, tree["other"], name=THEIR_VENUE)
    their_event = make_event(session, theirs, title=THEIR_EVENT)
    make_event(session, mine)
    other_staff = make_staff(session, Role.organizer, tree["other"])
    token, _plain = create_api_token(session, other_staff, "theirs")
    organizer = make_staff(session, Role.organizer, tree["commune"])
    neighbour = Profile(
        AgeBand.from_60, Gender.female, home_unit_id=tree["other"].id, name=THEIR_PERSON, consent=True
    )
    (their_card,) = identities.issue_cards(session, settings, other_staff, theirs, [neighbour])
    check_in(
        session,
        settings,
        CheckInRequest(
            Channel.staff_form, new_nonce(), Identity(card=their_card.lookup), event_id=their_event.id
        ),
        staff=other_staff,
    )
    their_kiosk, _code = kiosk_devices.enrol_device(session, other_staff, theirs.id, THEIR_KIOSK, utcnow())
    their_club = club_service.create_club(
        session, other_staff, club_service.ClubInput(THEIR_CLUB, ClubType.club, theirs.id or 0)
    )
    their_branch = make_venue(session, tree["other"])
    their_rotation = library_service.add_rotation(
        session,
        other_staff,
        theirs,
        library_service.RotationInput(their_branch.id or 0, 10, utcnow().date()),
        today=utcnow().date(),
    )
    ids = {
        "rotation_id": their_rotation.id or 0,
        "club_id": their_club.id or 0,
        "participant_id": their_card.participant_id,
        "card_id": their_card.id or 0,
        "default": their_event.id or 0,
        "event_id": their_event.id or 0,
        "token_id": token.id or 0,
        "staff_id": other_staff.id or 0,
        "unit_id": tree["other"].id or 0,
        "venue_id": theirs.id or 0,
        "device_id": their_kiosk.id or 0,
    }
    phone = make_participant(session, home_unit=tree["village"])
    device = secrets.token_urlsafe(32)
    identities.add_device(session, phone, device, utcnow())
    session.commit()
    _kiosk, kiosk_code = kiosk_devices.enrol_device(session, organizer, mine.id, "Máy cửa", utcnow())
    _paired, kiosk_token = kiosk_devices.pair_device(session, kiosk_code, utcnow())
    return {
        "ids": ids,
        "organizer": organizer,
        "tree": tree,
        "device": device,
        "kiosk": kiosk_token,
        "their_card": their_card.lookup,
        "their_card_printed": codes.pretty(their_card.lookup),  # as a card sheet prints it
    }


def _snapshot(session: Session) -> tuple[object, ...]:
    counts = tuple(
        count_rows(session, model)
        for model in (
            Event,
            CheckIn,
            Staff,
            OrgUnit,
            Venue,
            ApiToken,
            KioskDevice,
            Club,
            ClubMember,
            BookRotation,
            LibraryFigure,
            LibraryChange,
            AuditEntry,
        )
    )
    # People and cards change in place (a correction, a withdrawal, a revoked card), so their rows are
    # compared, not only counted.
    people = session.exec(
        select(
            Participant.id,
            Participant.name,
            Participant.age_band,
            Participant.gender,
            Participant.home_unit_id,
            Participant.consent_at,
            Participant.erased_at,
        ).order_by(col(Participant.id))
    ).all()
    cards = session.exec(
        select(Credential.id, Credential.lookup, Credential.revoked_at).order_by(col(Credential.id))
    ).all()
    return counts, tuple(people), tuple(cards)


@pytest.mark.parametrize("who", ["anonymous", "resident phone", "kiosk"])
def test_no_staff_login_is_refused_everywhere(
    app: FastAPI,
    client: TestClient,
    session: Session,
    world: dict,
    who: str,  # type: ignore[type-arg]
) -> None:
    """An anonymous visitor, a resident's phone (its device cookie) and a paired kiosk (its device cookie)
    reach only the public routes and, for the kiosk, its own API."""
    if who == "resident phone":
        client.cookies.set("dd_device", world["device"])
    elif who == "kiosk":
        client.cookies.set("dd_kiosk", world["kiosk"])
    before = _snapshot(session)
    checked = 0
    for method, path in _routes(app):
        if (method, path) in PUBLIC:
            continue
        response = client.request(
            method, _url(method, path, world["ids"]), data={} if method != "GET" else None
        )
        if path.startswith("/api/"):
            assert response.status_code == 401, (who, method, path, response.status_code)
        else:
            assert response.status_code == 303, (who, method, path, response.status_code)
            assert response.headers["location"].startswith("/login"), (who, method, path)
        checked += 1
    assert checked >= 20
    assert _snapshot(session) == before


def test_out_of_scope_organizer_is_refused_everywhere(
    app: FastAPI, client: TestClient, session: Session, world: dict
) -> None:  # type: ignore[type-arg]
    login(client, world["organizer"])
    before = _snapshot(session)
    checked = 0
    for method, path in _routes(app):
        if (method, path) in PUBLIC | ORGANIZER_OPEN:
            continue
        # Valid bodies, so that it is the scope (not validation) that refuses.
        kwargs: dict[str, object] = {}
        if path.startswith("/api/") and method != "GET":
            kwargs["json"] = VALID_JSON.get((method, path), {})
        elif method != "GET":
            kwargs["data"] = VALID_FORM
        response = client.request(method, _url(method, path, world["ids"]), **kwargs)  # type: ignore[arg-type]
        assert response.status_code in (403, 404), (method, path, response.status_code)
        checked += 1
    assert checked >= 15
    assert _snapshot(session) == before


def test_out_of_scope_office_is_refused_everywhere(
    app: FastAPI, client: TestClient, session: Session, world: dict
) -> None:  # type: ignore[type-arg]
    login(client, make_staff(session, Role.office, world["tree"]["commune"]))
    before = _snapshot(session)
    checked = 0
    for method, path in _routes(app):
        if (method, path) in PUBLIC | OFFICE_OPEN:
            continue
        kwargs: dict[str, object] = {}
        if path.startswith("/api/") and method != "GET":
            kwargs["json"] = VALID_JSON.get((method, path), {})
        elif method != "GET":
            kwargs["data"] = VALID_FORM
        response = client.request(method, _url(method, path, world["ids"]), **kwargs)  # type: ignore[arg-type]
        assert response.status_code in (403, 404), (method, path, response.status_code)
        checked += 1
    assert checked >= 15
    assert _snapshot(session) == before


# Routes an administrator's login does not open: the kiosk's own API takes only a kiosk's device token.
KIOSK_ONLY = {("GET", "/api/v1/kiosk"), ("POST", "/api/v1/kiosk/batch")}


def test_an_administrator_is_refused_nowhere(
    app: FastAPI, client: TestClient, session: Session, world: dict
) -> None:  # type: ignore[type-arg]
    """An administrator opens and posts to every route with valid bodies: never 401 or 403, never sent to
    the login page, never a server error (writes run in route order; an id a write removed may be 404)."""
    login(client, make_staff(session, Role.admin))
    checked = 0
    for method, path in _routes(app):
        if (method, path) in KIOSK_ONLY | {("POST", "/logout"), ("POST", "/login")}:
            continue  # logging out or in again (with the form's made-up password) is not a walk
        kwargs: dict[str, object] = {}
        if path.startswith("/api/") and method != "GET":
            kwargs["json"] = VALID_JSON.get((method, path), {})
        elif method != "GET":
            kwargs["data"] = VALID_FORM
        response = client.request(method, _url(method, path, world["ids"]), **kwargs)  # type: ignore[arg-type]
        assert response.status_code not in (401, 403), (method, path, response.status_code)
        assert response.status_code < 500, (method, path, response.status_code)
        assert not response.headers.get("location", "").startswith("/login"), (method, path)
        checked += 1
    assert checked >= 120


LISTS = (
    "/events",
    "/api/v1/events",
    "/people",
    "/people?q=Ngoai",
    "/people/cards?card={card_id}&venue={venue_id}",
    "/api/v1/participants",
    "/api/v1/participants?q=Ngoai",
    "/clubs",
    "/library",
    "/kiosks",
    "/profile",
)
OFFICE_LISTS = (
    "/indicators",
    "/indicators/participation",
    "/reports",
    "/reports/{year}.csv",
    "/reports/{year}/checkins.csv",
    "/api/v1/reports/yearly?year={year}",
    "/places",
)


def _theirs(world: dict) -> tuple[str, ...]:  # type: ignore[type-arg]
    card = (world["their_card"], world["their_card_printed"])
    return (THEIR_VENUE, THEIR_EVENT, THEIR_PERSON, THEIR_CLUB, THEIR_KIOSK, *card)


@pytest.mark.parametrize("role", [Role.organizer, Role.office])
def test_lists_show_nothing_of_another_commune(
    client: TestClient,
    session: Session,
    world: dict,
    role: Role,  # type: ignore[type-arg]
) -> None:
    """Every list, search, report and export a staff member of one commune opens, with the other commune's
    venue, event, named participant, card, club and kiosk present in the database."""
    login(client, make_staff(session, role, world["tree"]["commune"]))
    year = str(utcnow().year)
    paths = LISTS + (OFFICE_LISTS if role == Role.office else ())
    for path in paths:
        response = client.get(path.format(year=year, **world["ids"]))
        assert response.status_code == 200, (path, response.status_code)
        text = response.text
        for theirs in _theirs(world):
            assert theirs not in text, (path, theirs)
    # The same lists as an administrator do show them: the names are really there to be found.
    client.post("/logout")
    login(client, make_staff(session, Role.admin))
    shown = "".join(client.get(path.format(year=year, **world["ids"])).text for path in paths)
    for theirs in _theirs(world):
        assert theirs in shown, theirs


@pytest.mark.parametrize(
    "headers", [{"Sec-Fetch-Site": "cross-site"}, {"Origin": "https://evil.example"}], ids=["fetch", "origin"]
)
def test_every_cross_site_write_is_refused(
    app: FastAPI,
    client: TestClient,
    session: Session,
    world: dict,  # type: ignore[type-arg]
    headers: dict[str, str],
) -> None:
    """CSRF: an administrator's browser, tricked by another site into sending any write the app has (the
    public ones included), with bodies that would be valid; every one is refused and nothing changes."""
    login(client, make_staff(session, Role.admin))
    client.cookies.set("dd_device", world["device"])
    before = _snapshot(session)
    checked = 0
    for method, path in _routes(app):
        if method == "GET":
            continue
        kwargs: dict[str, object] = {"headers": headers}
        if path.startswith("/api/"):
            kwargs["json"] = VALID_JSON.get((method, path), {})
        else:
            kwargs["data"] = VALID_FORM
        response = client.request(method, _url(method, path, world["ids"]), **kwargs)  # type: ignore[arg-type]
        assert response.status_code == 403, (method, path, response.status_code)
        checked += 1
    assert checked >= 40
    assert _snapshot(session) == before


HOSTILE = '<script>alert("x")</script><img src=x onerror=alert(1)>'


def test_every_page_escapes_what_people_typed(
    app: FastAPI, client: TestClient, session: Session, settings: Settings
) -> None:
    """Names, titles and places made of markup, on every page an administrator can open: shown as text."""
    province = make_unit(session, UnitKind.province, name=f"Tỉnh {HOSTILE}")
    commune = make_unit(session, UnitKind.commune, province, name=f"Xã {HOSTILE}")
    village = make_unit(session, UnitKind.village, commune, name=f"Thôn {HOSTILE}")
    venue = make_venue(session, village, name=f"Nhà văn hóa {HOSTILE}")
    event = make_event(session, venue, title=f"Ngày hội {HOSTILE}")
    admin = make_staff(session, Role.admin, full_name=f"Cán bộ {HOSTILE}")
    person = Profile(
        AgeBand.from_25, Gender.male, home_unit_id=village.id, name=f"Anh {HOSTILE}", consent=True
    )
    (card,) = identities.issue_cards(session, settings, admin, venue, [person])
    check_in(
        session,
        settings,
        CheckInRequest(Channel.staff_form, new_nonce(), Identity(card=card.lookup), event_id=event.id),
        staff=admin,
    )
    device, _code = kiosk_devices.enrol_device(session, admin, venue.id, "Máy <b>cửa</b>", utcnow())
    club = club_service.create_club(
        session, admin, club_service.ClubInput(f"CLB {HOSTILE}", ClubType.club, venue.id or 0)
    )
    ids = {
        "default": event.id or 0,
        "event_id": event.id or 0,
        "club_id": club.id or 0,
        "participant_id": card.participant_id,
        "card_id": card.id or 0,
        "venue_id": venue.id or 0,
        "unit_id": village.id or 0,
        "device_id": device.id or 0,
        "staff_id": admin.id or 0,
    }
    login(client, admin)
    escaped = 0
    for method, path in _routes(app):
        if method != "GET" or path.startswith("/api/"):
            continue
        response = client.get(_url(method, path, ids))
        if not response.headers.get("content-type", "").startswith("text/html"):
            continue
        assert "<script>alert" not in response.text and "<img src=x" not in response.text, path
        assert "<b>cửa</b>" not in response.text, path
        escaped += "&lt;script&gt;" in response.text
    assert escaped >= 15


def test_every_staff_answer_is_never_stored_by_a_cache(
    app: FastAPI, client: TestClient, session: Session, world: dict
) -> None:  # type: ignore[type-arg]
    """Every GET route an admin opens (pages, API, exports, posters) says `Cache-Control: no-store`."""
    admin = make_staff(session, Role.admin)
    login(client, admin)
    checked = 0
    for method, path in _routes(app):
        if method != "GET" or (method, path) in PUBLIC:
            continue
        response = client.get(_url(method, path, world["ids"]))
        assert response.headers.get("cache-control") == "no-store", (path, response.status_code)
        checked += 1
    assert checked >= 30
