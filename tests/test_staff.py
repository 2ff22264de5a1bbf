"""Staff accounts: creation rules, (de)activation, passwords, and the /staff page."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import func
from sqlmodel import Session, SQLModel, col, select

from server.auth import verify_password
from server.errors import AppError, ErrorCode, FormError
from server.models import Role, Staff, StaffSession
from server.services import staff as accounts
from tests.factories import PASSWORD, login, make_staff, make_tree

NEW_PASSWORD = "mot-mat-khau-moi"


def count(session: Session, model: type[SQLModel], *where: Any) -> int:
    n = session.exec(select(func.count()).select_from(model).where(*where)).one()
    session.commit()  # ends the read transaction: on SQLite it holds the write lock (BEGIN IMMEDIATE)
    return n


@pytest.fixture
def other_client(app: FastAPI) -> Iterator[TestClient]:
    """A second browser, for the staff member an admin acts on."""
    with TestClient(app, follow_redirects=False) as client:
        yield client


def test_username_is_stored_lower_case(session: Session) -> None:
    made = accounts.create_staff(session, username=" Lan.Nguyen ", password=PASSWORD, role=Role.admin)

    assert made.username == "lan.nguyen"
    assert verify_password(PASSWORD, made.password_hash)
    assert count(session, Staff) == 1


@pytest.mark.parametrize("username", ["ab", "nguyễn", "lan nguyen", "x" * 65])
def test_username_needs_3_to_64_plain_characters(session: Session, username: str) -> None:
    with pytest.raises(FormError) as caught:
        accounts.create_staff(session, username=username, password=PASSWORD, role=Role.admin)

    assert set(caught.value.fields) == {"username"}
    assert count(session, Staff) == 0


def test_username_must_be_unique_whatever_its_case(session: Session) -> None:
    make_staff(session, Role.admin, username="lan")

    with pytest.raises(FormError) as caught:
        accounts.create_staff(session, username="LAN", password=PASSWORD, role=Role.admin)

    assert set(caught.value.fields) == {"username"}
    assert count(session, Staff) == 1


def test_password_shorter_than_10_characters_stores_nothing(session: Session) -> None:
    with pytest.raises(FormError) as caught:
        accounts.create_staff(session, username="lan", password="123456789", role=Role.admin)

    assert set(caught.value.fields) == {"password"}
    assert count(session, Staff) == 0


def test_admin_needs_no_unit(session: Session) -> None:
    made = accounts.create_staff(session, username="admin2", password=PASSWORD, role="admin")

    assert (made.role, made.unit_id) == (Role.admin, None)


def test_office_sits_at_a_province_or_commune(session: Session) -> None:
    tree = make_tree(session)

    made = accounts.create_staff(
        session, username="phong", password=PASSWORD, role=Role.office, unit_id=tree["province"].id
    )
    with pytest.raises(FormError) as caught:
        accounts.create_staff(
            session, username="phong2", password=PASSWORD, role=Role.office, unit_id=tree["village"].id
        )

    assert made.unit_id == tree["province"].id
    assert set(caught.value.fields) == {"unit_id"}
    assert count(session, Staff) == 1


def test_organizer_sits_at_a_commune_or_village(session: Session) -> None:
    tree = make_tree(session)

    made = accounts.create_staff(
        session, username="to.chuc", password=PASSWORD, role=Role.organizer, unit_id=tree["village"].id
    )
    for unit_id in (tree["province"].id, None, 99999):
        with pytest.raises(FormError) as caught:
            accounts.create_staff(
                session, username="to.chuc2", password=PASSWORD, role=Role.organizer, unit_id=unit_id
            )
        assert set(caught.value.fields) == {"unit_id"}

    assert made.unit_id == tree["village"].id
    assert count(session, Staff) == 1


def test_role_must_be_known(session: Session) -> None:
    with pytest.raises(FormError) as caught:
        accounts.create_staff(session, username="lan", password=PASSWORD, role="boss")

    assert set(caught.value.fields) == {"role"}
    assert count(session, Staff) == 0


def test_deactivating_revokes_every_open_session(session: Session) -> None:
    member = make_staff(session, Role.admin)
    now = datetime(2026, 5, 1, 8, 0, tzinfo=UTC)
    for n in range(2):
        session.add(
            StaffSession(id=f"s{n}", staff_id=member.id or 0, expires_at=datetime(2026, 5, 2, tzinfo=UTC))
        )
    session.commit()

    accounts.set_active(session, member.id or 0, False, now=now)

    assert not session.get(Staff, member.id).active  # type: ignore[union-attr]
    assert count(session, StaffSession, col(StaffSession.revoked_at).is_(None)) == 0


def test_nobody_can_deactivate_themselves(session: Session) -> None:
    admin = make_staff(session, Role.admin)

    with pytest.raises(FormError) as caught:
        accounts.set_active(session, admin.id or 0, False, by=admin)

    assert set(caught.value.fields) == {"active"}
    assert count(session, Staff, col(Staff.active).is_(True)) == 1


def test_unknown_account_is_not_found(session: Session) -> None:
    with pytest.raises(AppError) as caught:
        accounts.set_active(session, 99999, False)

    assert caught.value.code == ErrorCode.not_found


def test_short_new_password_keeps_the_old_one(session: Session) -> None:
    member = make_staff(session, Role.admin)

    with pytest.raises(FormError) as caught:
        accounts.set_password(session, member.id or 0, "short")

    assert set(caught.value.fields) == {"password"}
    session.refresh(member)
    assert verify_password(PASSWORD, member.password_hash)


def test_list_staff_gives_each_account_its_unit(session: Session) -> None:
    tree = make_tree(session)
    make_staff(session, Role.organizer, tree["commune"], username="b.organizer")
    make_staff(session, Role.admin, username="a.admin")

    rows = accounts.list_staff(session)

    assert [(r.staff.username, r.unit.name if r.unit else None) for r in rows] == [
        ("a.admin", None),
        ("b.organizer", "Xã Văn Quan"),
    ]


# --- Pages --------------------------------------------------------------------------------------------


def test_staff_page_lists_role_unit_and_creation_day(client: TestClient, session: Session) -> None:
    tree = make_tree(session)
    # 20:30 UTC is 03:30 the next morning in Vietnam: the page shows the local day.
    make_staff(
        session,
        Role.organizer,
        tree["commune"],
        username="to.chuc",
        created_at=datetime(2026, 3, 5, 20, 30, tzinfo=UTC),
    )
    login(client, make_staff(session, Role.admin))

    response = client.get("/staff")

    assert response.status_code == 200
    row = response.text.split('<tr id="staff-')[1]
    assert "to.chuc" in row and "Người tổ chức" in row and "Xã Văn Quan" in row and "06/03/2026" in row


def test_staff_page_is_refused_to_a_culture_office(client: TestClient, session: Session) -> None:
    tree = make_tree(session)
    login(client, make_staff(session, Role.office, tree["province"]))

    assert client.get("/staff").status_code == 403
    response = client.post("/staff", data={"username": "lan", "password": PASSWORD, "role": "admin"})
    assert response.status_code == 403
    assert count(session, Staff) == 1


def test_staff_page_sends_an_anonymous_visitor_to_login(client: TestClient) -> None:
    response = client.get("/staff")

    assert response.status_code == 303
    assert response.headers["location"].startswith("/login")


def test_create_account_through_the_form(client: TestClient, session: Session) -> None:
    tree = make_tree(session)
    login(client, make_staff(session, Role.admin))

    response = client.post(
        "/staff",
        data={
            "username": "To.Chuc",
            "full_name": "Hoàng Văn Tú",
            "password": PASSWORD,
            "role": "organizer",
            "unit_id": str(tree["village"].id),
        },
    )

    assert response.status_code == 303 and response.headers["location"] == "/staff?done=created"
    made = session.exec(select(Staff).where(Staff.username == "to.chuc")).one()
    assert (made.role, made.unit_id, made.full_name) == (Role.organizer, tree["village"].id, "Hoàng Văn Tú")


def test_create_account_with_a_short_password_shows_the_error_and_stores_nothing(
    client: TestClient, session: Session
) -> None:
    login(client, make_staff(session, Role.admin))

    response = client.post("/staff", data={"username": "lan", "password": "123", "role": "admin"})

    assert response.status_code == 422
    assert 'id="password-error"' in response.text and "ít nhất 10 ký tự" in response.text
    assert 'value="lan"' in response.text and 'value="123"' not in response.text
    assert count(session, Staff) == 1


def test_deactivated_staff_member_is_sent_to_login(
    client: TestClient, other_client: TestClient, session: Session
) -> None:
    member = make_staff(session, Role.admin)
    login(other_client, member)
    assert other_client.get("/staff").status_code == 200
    login(client, make_staff(session, Role.admin))

    response = client.post(f"/staff/{member.id}/deactivate")

    assert response.status_code == 303
    after = other_client.get("/staff")
    assert after.status_code == 303 and after.headers["location"].startswith("/login")
    assert (
        count(
            session, StaffSession, StaffSession.staff_id == member.id, col(StaffSession.revoked_at).is_(None)
        )
        == 0
    )


def test_reactivated_staff_member_can_log_in_again(client: TestClient, session: Session) -> None:
    member = make_staff(session, Role.admin, active=False)
    login(client, make_staff(session, Role.admin))

    response = client.post(f"/staff/{member.id}/activate")

    assert response.status_code == 303
    assert count(session, Staff, Staff.id == member.id, col(Staff.active).is_(True)) == 1


def test_admin_cannot_deactivate_themselves_through_the_page(client: TestClient, session: Session) -> None:
    admin = make_staff(session, Role.admin)
    login(client, admin)

    response = client.post(f"/staff/{admin.id}/deactivate")

    assert response.status_code == 422
    assert "Bạn không thể tự khóa tài khoản của mình." in response.text
    assert count(session, Staff, col(Staff.active).is_(True)) == 1


def test_new_password_logs_the_account_out(
    client: TestClient, other_client: TestClient, session: Session
) -> None:
    member = make_staff(session, Role.admin)
    login(other_client, member)
    login(client, make_staff(session, Role.admin))

    response = client.post(f"/staff/{member.id}/password", data={"password": NEW_PASSWORD})

    assert response.status_code == 303
    assert other_client.get("/staff").status_code == 303
    session.refresh(member)
    assert verify_password(NEW_PASSWORD, member.password_hash)
    login(other_client, member, NEW_PASSWORD)
