"""Staff accounts: create, (de)activate, set a password, list; locking someone out ends their sessions
and revokes their API tokens."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from server import auth
from server.errors import N_, AppError, ErrorCode, FormError
from server.models import OrgUnit, Role, Staff, UnitKind
from server.services import audit

USERNAME = re.compile(r"[a-z0-9._-]{3,64}")
MIN_PASSWORD, MAX_PASSWORD = 10, 256
# Where each role may sit in the place tree; an admin sees everything and needs no unit.
UNIT_KINDS: dict[Role, tuple[UnitKind, ...]] = {
    Role.office: (UnitKind.province, UnitKind.commune),
    Role.organizer: (UnitKind.commune, UnitKind.village),
}


@dataclass(frozen=True)
class StaffRow:
    staff: Staff
    unit: OrgUnit | None


def _password_error(password: str) -> str | None:
    if len(password) < MIN_PASSWORD:
        return N_("The password must have at least 10 characters.")
    if len(password) > MAX_PASSWORD:
        return N_("The password is too long (at most 256 characters).")
    return None


def create_staff(
    session: Session,
    *,
    username: str,
    password: str,
    role: Role | str,
    unit_id: int | None = None,
    full_name: str = "",
    by: Staff | None = None,
) -> Staff:
    """A new account; office staff sit at a province or commune, organizers at a commune or village."""
    errors: dict[str, str] = {}
    username = username.strip().lower()
    full_name = " ".join(full_name.split())
    if not USERNAME.fullmatch(username):
        errors["username"] = N_(
            "Use 3 to 64 characters: letters a-z without accents, digits, dot, dash, underscore."
        )
    elif session.exec(select(Staff.id).where(Staff.username == username)).first() is not None:
        errors["username"] = N_("This username is already taken.")
    if len(full_name) > 200:
        errors["full_name"] = N_("The name is too long (at most 200 characters).")
    if problem := _password_error(password):
        errors["password"] = problem
    try:
        role = Role(role)
    except ValueError:
        errors["role"] = N_("Choose a role.")
    else:
        if role == Role.admin:
            unit_id = None
        else:
            unit = session.get(OrgUnit, unit_id) if unit_id else None
            if unit is None or unit.valid_to is not None or unit.kind not in UNIT_KINDS[role]:
                errors["unit_id"] = (
                    N_("Choose the province or commune of this culture office.")
                    if role == Role.office
                    else N_("Choose the commune or village of this organizer.")
                )
    if errors:
        raise FormError(errors)
    staff = Staff(
        username=username,
        full_name=full_name,
        password_hash=auth.hash_password(password),
        role=Role(role),
        unit_id=unit_id,
    )
    session.add(staff)
    try:
        session.flush()
        audit.record(
            session,
            by,
            audit.Action.staff_created,
            target_kind="staff",
            target_id=staff.id,
            detail={"username": username, "role": staff.role},
        )
        session.commit()
    except IntegrityError as exc:  # the same username created by someone else a moment ago
        session.rollback()
        raise FormError({"username": N_("This username is already taken.")}) from exc
    return staff


def _get(session: Session, staff_id: int) -> Staff:
    staff = session.get(Staff, staff_id)
    if staff is None:
        raise AppError(ErrorCode.not_found)
    return staff


def set_active(
    session: Session, staff_id: int, active: bool, *, by: Staff | None = None, now: datetime | None = None
) -> Staff:
    """Turn an account on or off; turning it off ends its open sessions and revokes its API tokens for good
    (turning it back on brings none back). Nobody can turn themselves off."""
    staff = _get(session, staff_id)
    if not active and by is not None and by.id == staff.id:
        raise FormError({"active": N_("You cannot deactivate your own account.")})
    staff.active = active
    session.add(staff)
    audit.record(
        session,
        by,
        audit.Action.staff_activated if active else audit.Action.staff_deactivated,
        target_kind="staff",
        target_id=staff.id,
    )
    if not active:
        auth.revoke_credentials(session, staff_id, now=now)
    session.commit()
    return staff


def set_password(
    session: Session, staff_id: int, password: str, *, by: Staff | None = None, now: datetime | None = None
) -> Staff:
    """A new password; every open session and API token of the account ends, so whoever knew the old
    password (or took a token while they could) is out."""
    staff = _get(session, staff_id)
    if problem := _password_error(password):
        raise FormError({"password": problem})
    staff.password_hash = auth.hash_password(password)
    session.add(staff)
    auth.revoke_credentials(session, staff_id, now=now)
    audit.record(session, by, audit.Action.staff_password_set, target_kind="staff", target_id=staff.id)
    session.commit()
    return staff


def list_staff(session: Session) -> list[StaffRow]:
    """Every account with its unit, by username (one query)."""
    rows = session.exec(
        select(Staff, OrgUnit)
        .join(OrgUnit, col(Staff.unit_id) == col(OrgUnit.id), isouter=True)
        .order_by(col(Staff.username))
    ).all()
    return [StaffRow(staff, unit) for staff, unit in rows]
