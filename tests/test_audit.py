"""The audit log: every staff action on personal data, figures, targets, places, accounts and tokens is one
row, stored with the action, readable by admins at /audit, and never changed or removed by any route."""

from __future__ import annotations

import importlib
import json
import pkgutil
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from sqlmodel import Session, col, select

import server.routes
from server.config import Settings
from server.models import AuditEntry, Credential, Role, VenueType
from server.services import audit, identities
from server.services import staff as accounts
from tests.factories import (
    count_rows,
    login,
    make_participant,
    make_staff,
    make_tree,
    make_venue,
    served_routes,
)

ROOT = Path(__file__).resolve().parent.parent
# Every route of every router module (the app includes each of them: tests/test_permissions.py).
ROUTES = [
    route
    for info in pkgutil.iter_modules(server.routes.__path__)
    for route in getattr(importlib.import_module(f"server.routes.{info.name}"), "router", APIRouter()).routes
    if isinstance(route, APIRoute)
]


def entries(session: Session) -> list[AuditEntry]:
    session.commit()  # a fresh read: the app committed in its own session
    return list(session.exec(select(AuditEntry).order_by(col(AuditEntry.id))).all())


def actions(session: Session) -> list[str]:
    return [entry.action for entry in entries(session)]


def test_account_and_token_changes_are_logged_with_who_and_where(
    client: TestClient, session: Session
) -> None:
    tree = make_tree(session)
    admin = make_staff(session, Role.admin)
    login(client, admin)
    created = client.post(
        "/staff",
        data={
            "username": "to.chuc",
            "password": "mot-mat-khau-dai",
            "role": "organizer",
            "unit_id": tree["commune"].id,
        },
    )
    assert created.status_code == 303
    new = session.exec(select(AuditEntry).where(AuditEntry.action == "staff_created")).one()
    assert new.staff_id == admin.id and new.staff_username == admin.username
    assert new.address == "testclient" and new.target_kind == "staff"
    target = int(new.target_id)
    assert client.post(f"/staff/{target}/deactivate").status_code == 303
    assert client.post(f"/staff/{target}/activate").status_code == 303
    assert client.post(f"/staff/{target}/password", data={"password": "mot-mat-khau-khac"}).status_code == 303
    assert client.post("/profile/tokens", data={"name": "máy tính"}).status_code == 200
    token = session.exec(select(AuditEntry).where(AuditEntry.action == "api_token_created")).one()
    assert client.post(f"/profile/tokens/{token.target_id}/revoke").status_code == 303
    assert actions(session) == [
        "staff_created",
        "staff_deactivated",
        "staff_activated",
        "staff_password_set",
        "api_token_created",
        "api_token_revoked",
    ]


def test_a_refused_change_logs_nothing(client: TestClient, session: Session) -> None:
    admin = make_staff(session, Role.admin)
    other = make_staff(session)
    login(client, admin)
    assert client.post(f"/staff/{other.id}/password", data={"password": "short"}).status_code == 422
    assert (
        client.post("/staff", data={"username": "x", "password": "short", "role": "admin"}).status_code == 422
    )
    assert client.post(f"/staff/{admin.id}/deactivate").status_code == 422
    assert count_rows(session, AuditEntry) == 0


def test_the_entry_commits_with_its_action_and_rolls_back_with_it(session: Session) -> None:
    admin = make_staff(session, Role.admin)
    accounts.set_password(session, admin.id or 0, "mot-mat-khau-moi", by=admin)
    assert actions(session) == ["staff_password_set"]
    audit.record(session, admin, audit.Action.staff_password_set)
    session.rollback()
    assert actions(session) == ["staff_password_set"]


def test_personal_data_looks_and_exports_are_logged(client: TestClient, session: Session) -> None:
    tree = make_tree(session)
    venue = make_venue(session, tree["commune"])
    office = make_staff(session, Role.office, tree["commune"])
    person = make_participant(session, name="Hoàng Văn Tư", home_unit=tree["village"])
    login(client, office)
    assert client.get(f"/people/{person.id}").status_code == 200
    assert client.get("/people/cards", params={"venue": venue.id}).status_code == 200
    assert client.get("/reports/2025/checkins.csv", params={"until": "2025-06-30"}).status_code == 200
    logged = entries(session)
    assert [e.action for e in logged] == ["participant_viewed", "cards_printed", "checkins_exported"]
    assert logged[0].target_kind == "participant" and logged[0].target_id == str(person.id)
    assert all(e.staff_id == office.id for e in logged)
    assert '"year": 2025' in logged[2].detail


def test_figures_targets_rules_and_places_are_logged(client: TestClient, session: Session) -> None:
    tree = make_tree(session)
    library = make_venue(session, tree["commune"], type=VenueType.commune_library)
    office = make_staff(session, Role.office, tree["commune"])
    login(client, office)
    year = datetime.now(UTC).year
    assert (
        client.post(f"/library/{library.id}/{year}/figures", data={"desk_visits_1": "9"}).status_code == 303
    )
    saved = client.post(
        "/indicators/targets", data={f"library_users-{year}-low": "8", f"library_users-{year}-high": "10"}
    )
    assert saved.status_code == 303
    rules = client.post(
        "/indicators/rules", data={"cutoff": "31/10", "active_months": "9", "active_min_visits": "1"}
    )
    assert rules.status_code == 303
    renamed = client.post(
        f"/places/venues/{library.id}/change",
        data={"kind": "rename", "effective_on": f"{year}-01-01", "name": "Thư viện xã mới"},
    )
    assert renamed.status_code == 303
    assert actions(session) == ["library_figures_saved", "targets_saved", "rules_saved", "place_changed"]
    assert '"renamed"' in entries(session)[-1].detail


def test_card_revocations_replacements_and_reporting_groups_are_logged(
    client: TestClient, session: Session, settings: Settings
) -> None:
    tree = make_tree(session)
    house = make_venue(session, tree["village"])
    organizer = make_staff(session, Role.organizer, tree["commune"])
    holder = make_participant(session, name="Bà Hoàng Thị Lan", home_unit=tree["village"])
    lost = identities.issue_card(session, settings, organizer, holder, house)
    handed_on = identities.issue_card(session, settings, organizer, holder, house)
    login(client, organizer)
    assert client.post(f"/people/cards/{lost.id}/replace").status_code == 303
    assert client.post(f"/people/cards/{handed_on.id}/revoke").status_code == 303
    logged = entries(session)
    # Replacing revokes the old number (its own entry) and logs the new one beside it.
    assert [e.action for e in logged] == ["credential_revoked", "card_replaced", "credential_revoked"]
    assert [e.target_id for e in logged] == [str(lost.id), str(lost.id), str(handed_on.id)]
    assert {e.staff_id for e in logged} == {organizer.id}
    new_card = json.loads(logged[1].detail)["new_card"]
    assert session.get(Credential, new_card) is not None

    admin = make_staff(session, Role.admin)
    login(client, admin)
    made = client.post(
        "/places/groups", data={"name": "Huyện Văn Quan cũ", "unit_id": [str(tree["commune"].id)]}
    )
    assert made.status_code == 303
    group_id = session.exec(select(AuditEntry.target_id).order_by(col(AuditEntry.id).desc())).first()
    assert client.post(f"/places/groups/{group_id}/delete").status_code == 303
    assert actions(session)[-2:] == ["group_saved", "group_deleted"]
    assert "Huyện Văn Quan cũ" in entries(session)[-1].detail


def test_only_admins_read_the_log(client: TestClient, session: Session) -> None:
    tree = make_tree(session)
    for role in (Role.organizer, Role.office):
        client.cookies.clear()
        login(client, make_staff(session, role, tree["commune"]))
        assert client.get("/audit").status_code == 403
        assert 'href="/audit"' not in client.get("/people").text
    client.cookies.clear()
    assert client.get("/audit").status_code in (303, 401)
    login(client, make_staff(session, Role.admin))
    page = client.get("/audit")
    assert page.status_code == 200 and 'href="/audit"' in page.text
    assert page.headers["cache-control"] == "no-store"


def test_the_log_filters_by_action_staff_and_day_and_pages(client: TestClient, session: Session) -> None:
    admin = make_staff(session, Role.admin)
    other = make_staff(session, Role.admin)
    now = datetime(2026, 5, 10, 3, tzinfo=UTC)
    for n in range(60):
        audit.record(
            session, admin, audit.Action.cards_printed, detail={"n": n}, now=now + timedelta(minutes=n)
        )
    audit.record(session, other, audit.Action.staff_created, now=now - timedelta(days=3))
    session.commit()
    login(client, admin)
    first = client.get("/audit")
    assert first.text.count('class="card" id="audit-') == audit.PAGE_SIZE
    assert "&#34;n&#34;: 59" in first.text
    assert "/audit?action=&amp;staff_id=&amp;from=&amp;to=&page=2" in first.text
    second = client.get("/audit", params={"page": 2})
    assert second.text.count('class="card" id="audit-') == 11
    by_action = client.get("/audit", params={"action": "staff_created"})
    assert by_action.text.count('class="card" id="audit-') == 1
    by_staff = client.get("/audit", params={"staff_id": other.id})
    assert by_staff.text.count('class="card" id="audit-') == 1
    by_day = client.get("/audit", params={"from": "2026-05-10", "to": "2026-05-10"})
    assert by_day.text.count('class="card" id="audit-') == audit.PAGE_SIZE
    assert (
        client.get("/audit", params={"from": "2026-05-08", "to": "2026-05-08"}).text.count(
            'class="card" id="audit-'
        )
        == 0
    )
    assert client.get("/audit", params={"from": "10/05/2026"}).status_code == 422
    assert client.get("/audit", params={"action": "drop_table"}).status_code == 422
    assert client.get("/audit", params={"staff_id": "9" * 12}).status_code == 422
    assert client.get("/audit", params={"page": 10**9}).status_code == 422


def _fill(path: str, value: str) -> str:
    return re.sub(r"\{[^}]+\}", value, path)


def test_no_route_changes_or_removes_an_entry(client: TestClient, session: Session, app: FastAPI) -> None:
    """Every unsafe route of the app, called by an admin with the entries' ids in every path parameter,
    leaves the stored entries as they were (new ones may be added)."""
    admin = make_staff(session, Role.admin)
    for action in list(audit.Action)[:5]:
        audit.record(session, admin, action, target_kind="x", target_id=1, detail={"keep": True})
    session.commit()
    before = [(e.id, e.at, e.action, e.detail, e.staff_id, e.target_id) for e in entries(session)]
    login(client, admin)
    called = 0
    for route in ROUTES:
        for method in route.methods & {"POST", "PUT", "PATCH", "DELETE"}:
            if route.path in ("/logout",):
                continue
            for value in ("1", "2", "5"):
                client.request(method, _fill(route.path, value), data={"id": value})
                called += 1
    assert called > 100
    after = [(e.id, e.at, e.action, e.detail, e.staff_id, e.target_id) for e in entries(session)]
    assert after[: len(before)] == before
    served = served_routes(app.router.routes)
    assert ("GET", "/audit") in served
    assert not [(method, path) for method, path in served if "audit" in path and method != "GET"]


def test_only_the_audit_service_writes_entries() -> None:
    """No module but services/audit.py builds, updates or deletes an AuditEntry."""
    for path in (ROOT / "server").rglob("*.py"):
        if path.name in ("audit.py", "models.py") or "migrations" in path.parts:
            continue
        text = path.read_text(encoding="utf-8")
        assert "AuditEntry" not in text and "audit_entry" not in text, path
