"""Walk every route: an anonymous visitor and an out-of-scope organizer are refused, and nothing changes."""

from __future__ import annotations

import re

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from sqlmodel import Session

from server.auth import create_api_token
from server.config import Settings
from server.models import (
    AgeBand,
    ApiToken,
    BookRotation,
    CheckIn,
    Club,
    ClubMember,
    ClubType,
    Event,
    Gender,
    KioskDevice,
    LibraryChange,
    LibraryFigure,
    OrgUnit,
    Role,
    Staff,
    Venue,
    utcnow,
)
from server.routes import (
    api,
    api_kiosk,
    api_people,
    app_shell,
    checkin,
    clubs,
    desk,
    events,
    indicators,
    kiosks,
    library,
    pages,
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
from server.services.identities import Profile
from tests.factories import count_rows, login, make_event, make_staff, make_tree, make_venue

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
}
ROUTERS = (
    api,
    api_kiosk,
    api_people,
    checkin,
    clubs,
    desk,
    events,
    indicators,
    kiosks,
    library,
    pages,
    places,
    places_history,
    report_groups,
    reports,
    staff,
)
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
    ("GET", "/api/v1/events"),
    ("POST", "/api/v1/events"),
    ("GET", "/people"),
    ("GET", "/people/cards/new"),
    ("POST", "/people/cards/new"),
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


def _routes(app: FastAPI) -> list[tuple[str, str]]:
    """Every (method, path) the app serves, from the routers it includes (each carries its full path)."""
    found = []
    for module in ROUTERS:
        for route in module.router.routes:
            if isinstance(route, APIRoute):
                found.extend((method, route.path) for method in sorted(route.methods) if method != "HEAD")
    return found


def test_the_walk_covers_every_router_the_app_includes(app: FastAPI) -> None:
    served = {path for _method, path in _routes(app)}
    schema_paths = set(app.openapi()["paths"])
    assert schema_paths <= served and "/events/{event_id}" in served and "/c/{code}" in served
    # Every route of the app, in the schema or not, is walked (app_shell serves static shell files only).
    included = {route.path for route in app.routes if isinstance(route, APIRoute)}
    shell = {route.path for route in app_shell.router.routes if isinstance(route, APIRoute)}
    assert included - shell <= served


def _fill(path: str, ids: dict[str, int]) -> str:
    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        if name == "year":
            return "2026"
        if name == "code":
            return "ZZZZZZZZZZ"
        return str(ids.get(name, ids["default"]))

    return re.sub(r"\{(\w+)(?::\w+)?\}", value, path)


@pytest.fixture
def world(session: Session, settings: Settings) -> dict[str, object]:
    tree = make_tree(session)
    mine = make_venue(session, tree["commune"])
    theirs = make_venue(session, tree["other"])
    their_event = make_event(session, theirs)
    make_event(session, mine)
    other_staff = make_staff(session, Role.organizer, tree["other"])
    token, _plain = create_api_token(session, other_staff, "theirs")
    organizer = make_staff(session, Role.organizer, tree["commune"])
    neighbour = Profile(AgeBand.from_60, Gender.female, home_unit_id=tree["other"].id, consent=True)
    (their_card,) = identities.issue_cards(session, settings, other_staff, theirs, [neighbour])
    their_kiosk, _code = kiosk_devices.enrol_device(session, other_staff, theirs.id, "theirs", utcnow())
    their_club = club_service.create_club(
        session, other_staff, club_service.ClubInput("CLB Hát then", ClubType.club, theirs.id or 0)
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
    return {"ids": ids, "organizer": organizer}


def _snapshot(session: Session) -> tuple[int, ...]:
    return tuple(
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
        )
    )


def test_anonymous_visitor_is_refused_everywhere(
    app: FastAPI, client: TestClient, session: Session, world: dict
) -> None:  # type: ignore[type-arg]
    before = _snapshot(session)
    checked = 0
    for method, path in _routes(app):
        if (method, path) in PUBLIC:
            continue
        response = client.request(method, _fill(path, world["ids"]), data={} if method != "GET" else None)
        if path.startswith("/api/"):
            assert response.status_code == 401, (method, path, response.status_code)
        else:
            assert response.status_code == 303, (method, path, response.status_code)
            assert response.headers["location"].startswith("/login"), (method, path)
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
        response = client.request(method, _fill(path, world["ids"]), **kwargs)  # type: ignore[arg-type]
        assert response.status_code in (403, 404), (method, path, response.status_code)
        checked += 1
    assert checked >= 15
    assert _snapshot(session) == before
