"""Plain factory functions: make_x(session, **overrides) -> a stored row."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from functools import cache
from typing import Any

from fastapi.testclient import TestClient
from sqlmodel import Session, func, select
from starlette.routing import BaseRoute, Mount, Route

from server.auth import hash_password
from server.models import (
    AgeBand,
    Campaign,
    Event,
    EventStatus,
    EventType,
    Gender,
    OrgUnit,
    Participant,
    Role,
    Staff,
    UnitKind,
    Venue,
    VenueType,
)
from server.services.identities import CONSENT_VERSION, search_form

PASSWORD = "mat-khau-thu-nghiem"
_seq = itertools.count(1)


@cache
def _password_hash() -> str:
    # argon2 takes ~0.1 s a hash: hash the shared test password once per run.
    return hash_password(PASSWORD)


def _store(session: Session, row: Any) -> Any:
    session.add(row)
    session.commit()
    session.refresh(row)
    return row


def make_unit(
    session: Session, kind: UnitKind = UnitKind.commune, parent: OrgUnit | None = None, **overrides: Any
) -> OrgUnit:
    n = next(_seq)
    values: dict[str, Any] = {
        "kind": kind,
        "code": f"T{n:05d}",
        "code_system": "test",
        "name": f"{kind.value} {n}",
        "parent_id": parent.id if parent else None,
        "valid_from": date(2025, 7, 1),
    }
    values.update(overrides)
    unit = _store(session, OrgUnit(**values))
    unit.path = (parent.path if parent else "/") + f"{unit.id}/"
    return _store(session, unit)


def make_tree(session: Session) -> dict[str, OrgUnit]:
    """Province > two communes > a village in the first."""
    province = make_unit(session, UnitKind.province, name="Tỉnh Lạng Sơn")
    commune = make_unit(session, UnitKind.commune, province, name="Xã Văn Quan")
    other = make_unit(session, UnitKind.commune, province, name="Xã Tri Lễ")
    village = make_unit(session, UnitKind.village, commune, name="Thôn Bản Cưởm")
    return {"province": province, "commune": commune, "other": other, "village": village}


def make_venue(session: Session, unit: OrgUnit | None = None, **overrides: Any) -> Venue:
    if unit is None:
        unit = make_unit(session)
    values: dict[str, Any] = {
        "name": f"Nhà văn hóa {next(_seq)}",
        "type": VenueType.village_cultural_house,
        "unit_id": unit.id,
    }
    values.update(overrides)
    return _store(session, Venue(**values))


def make_staff(
    session: Session, role: Role = Role.organizer, unit: OrgUnit | None = None, **overrides: Any
) -> Staff:
    values: dict[str, Any] = {
        "username": f"user{next(_seq)}",
        "full_name": "Nguyễn Thị Thử",
        "password_hash": _password_hash(),
        "role": role,
        "unit_id": unit.id if unit else None,
    }
    values.update(overrides)
    return _store(session, Staff(**values))


def make_event(
    session: Session, venue: Venue | None = None, *, starts_at: datetime | None = None, **overrides: Any
) -> Event:
    if venue is None:
        venue = make_venue(session)
    starts_at = starts_at or datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=30)
    values: dict[str, Any] = {
        "title": "Ngày hội đọc sách",
        "type": EventType.reading_festival,
        "venue_id": venue.id,
        "starts_at": starts_at,
        "ends_at": starts_at + timedelta(hours=3),
        "campaign": Campaign.reading_day,
        "status": EventStatus.scheduled,
    }
    values.update(overrides)
    return _store(session, Event(**values))


def login(client: TestClient, staff: Staff, password: str = PASSWORD) -> None:
    response = client.post("/login", data={"username": staff.username, "password": password})
    assert response.status_code == 303, response.text


def served_routes(routes: Sequence[BaseRoute]) -> set[tuple[str, str]]:
    """Every (method, path) the app's routing table serves, mounts of static files excepted. Since FastAPI
    0.165 `include_router` adds one `_IncludedRouter` per router instead of copying its APIRoutes, so the
    routes are read from its effective route contexts (full path, methods); a route of a kind not known
    here fails the test rather than being skipped."""
    found: set[tuple[str, str]] = set()
    for route in routes:
        if isinstance(route, Mount):
            assert route.path == "/static", route.path
        elif hasattr(route, "effective_route_contexts"):
            for context in route.effective_route_contexts():
                found |= {(method, context.path) for method in context.methods if method != "HEAD"}
        elif isinstance(route, Route):  # APIRoute too (FastAPI before 0.165 copied them into the app)
            found |= {(method, route.path) for method in route.methods or () if method != "HEAD"}
        else:
            raise AssertionError(f"a route the walk cannot read: {route!r}")
    return found


def count_rows(session: Session, model: type) -> int:
    """Rows of a table as the database has them now (ends the session's read snapshot first: under WAL,
    an open SQLite read transaction would not see what the app committed since)."""
    session.commit()
    return int(session.exec(select(func.count()).select_from(model)).one())


def make_participant(
    session: Session,
    *,
    name: str | None = None,
    home_unit: OrgUnit | None = None,
    name_unit: OrgUnit | None = None,
    **overrides: Any,
) -> Participant:
    """A participant who gave consent: an anonymous adult unless a name is given; registered (their name
    given) at `name_unit`, by default their home."""
    given = name_unit or home_unit
    values: dict[str, Any] = {
        "name": name,
        "search_name": search_form(name or ""),
        "age_band": AgeBand.from_25,
        "gender": Gender.female,
        "home_unit_id": home_unit.id if home_unit else None,
        "name_unit_id": given.id if given else None,
        "consent_at": datetime(2025, 7, 1, tzinfo=UTC),
        "consent_version": CONSENT_VERSION,
    }
    values.update(overrides)
    return _store(session, Participant(**values))
