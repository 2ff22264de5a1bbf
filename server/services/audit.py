"""The audit log of staff actions: who viewed or exported personal data, who changed figures, targets,
places, accounts or tokens, and what was done for a resident's rights.

`record()` adds a row to the caller's session, so the entry commits (or rolls back) with the action it
logs. Rows are only ever inserted: nothing in the app updates or deletes them (tests/test_audit.py).
"""

from __future__ import annotations

import json
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, tzinfo
from enum import StrEnum
from typing import Any

from sqlalchemy import func
from sqlmodel import Session, col, select

from server.errors import N_
from server.models import AuditEntry, Staff, utcnow

PAGE_SIZE = 50
MAX_PAGE = 100_000
DETAIL_LIMIT = 2000
# The client address of the request being handled, set by middleware.AddressMiddleware; "" elsewhere.
request_address: ContextVar[str] = ContextVar("request_address", default="")


class Action(StrEnum):
    participant_viewed = "participant_viewed"
    participant_downloaded = "participant_downloaded"
    participant_corrected = "participant_corrected"
    consent_withdrawn = "consent_withdrawn"
    participant_deleted = "participant_deleted"
    checkins_exported = "checkins_exported"
    cards_printed = "cards_printed"
    library_figures_saved = "library_figures_saved"
    library_school_saved = "library_school_saved"
    library_rotation_added = "library_rotation_added"
    library_rotation_deleted = "library_rotation_deleted"
    library_imported = "library_imported"
    targets_saved = "targets_saved"
    rules_saved = "rules_saved"
    place_changed = "place_changed"
    places_imported = "places_imported"
    place_added = "place_added"
    staff_created = "staff_created"
    staff_activated = "staff_activated"
    staff_deactivated = "staff_deactivated"
    staff_password_set = "staff_password_set"
    api_token_created = "api_token_created"
    api_token_revoked = "api_token_revoked"
    retention_run = "retention_run"
    checkins_excluded = "checkins_excluded"
    exclusion_undone = "exclusion_undone"
    credential_revoked = "credential_revoked"
    card_replaced = "card_replaced"
    group_saved = "group_saved"
    group_deleted = "group_deleted"


LABELS: dict[Action, str] = {
    Action.participant_viewed: N_("Viewed a participant"),
    Action.participant_downloaded: N_("Downloaded a participant's data"),
    Action.participant_corrected: N_("Corrected a participant's data"),
    Action.consent_withdrawn: N_("Withdrew a participant's consent"),
    Action.participant_deleted: N_("Deleted a participant's data"),
    Action.checkins_exported: N_("Exported check-ins"),
    Action.cards_printed: N_("Printed card sheets"),
    Action.library_figures_saved: N_("Changed library figures"),
    Action.library_school_saved: N_("Changed a school library's status"),
    Action.library_rotation_added: N_("Recorded a book rotation"),
    Action.library_rotation_deleted: N_("Deleted a book rotation"),
    Action.library_imported: N_("Imported library figures"),
    Action.targets_saved: N_("Changed targets"),
    Action.rules_saved: N_("Changed the counting rules"),
    Action.place_changed: N_("Changed a place"),
    Action.places_imported: N_("Imported places"),
    Action.place_added: N_("Added a place"),
    Action.staff_created: N_("Created an account"),
    Action.staff_activated: N_("Turned an account on"),
    Action.staff_deactivated: N_("Turned an account off"),
    Action.staff_password_set: N_("Set a password"),
    Action.api_token_created: N_("Created an API token"),
    Action.api_token_revoked: N_("Revoked an API token"),
    Action.retention_run: N_("Removed old identifying data"),
    Action.checkins_excluded: N_("Excluded suspicious check-ins from the counts"),
    Action.exclusion_undone: N_("Put excluded check-ins back into the counts"),
    Action.credential_revoked: N_("Revoked a card or a phone"),
    Action.card_replaced: N_("Replaced a lost card"),
    Action.group_saved: N_("Saved a reporting group"),
    Action.group_deleted: N_("Deleted a reporting group"),
}


def _detail(detail: dict[str, Any] | None) -> str:
    text = json.dumps(detail or {}, ensure_ascii=False, sort_keys=True, default=str)
    if len(text) > DETAIL_LIMIT:  # a short note, never a dump: cut and say so, still valid JSON
        text = json.dumps({"truncated": text[: DETAIL_LIMIT - 40]}, ensure_ascii=False)[:DETAIL_LIMIT]
    return text


def record(
    session: Session,
    staff: Staff | None,
    action: Action,
    *,
    target_kind: str = "",
    target_id: int | str | None = None,
    detail: dict[str, Any] | None = None,
    now: datetime | None = None,
) -> AuditEntry:
    """Add (not commit) one entry: it is stored in the transaction of the action it logs. `staff` None is
    the command line or a resident acting from their own phone."""
    entry = AuditEntry(
        at=now or utcnow(),
        staff_id=staff.id if staff is not None else None,
        staff_username=(staff.username if staff is not None else "")[:64],
        action=action.value,
        target_kind=target_kind[:32],
        target_id="" if target_id is None else str(target_id)[:64],
        detail=_detail(detail),
        address=request_address.get()[:64],
    )
    session.add(entry)
    return entry


# --- Reading (admins only: the route checks the role) --------------------------------------------------


@dataclass(frozen=True)
class Filters:
    action: str = ""
    staff_id: int | None = None
    day_from: date | None = None
    day_to: date | None = None


@dataclass(frozen=True)
class Page:
    entries: list[AuditEntry]
    page: int
    pages: int
    total: int


def entries(session: Session, filters: Filters, tz: tzinfo, *, page: int = 1) -> Page:
    """The entries matching the filters, newest first, PAGE_SIZE a page (days are local days)."""
    stmt = select(AuditEntry)
    if filters.action:
        stmt = stmt.where(AuditEntry.action == filters.action)
    if filters.staff_id is not None:
        stmt = stmt.where(AuditEntry.staff_id == filters.staff_id)
    if filters.day_from is not None:
        stmt = stmt.where(col(AuditEntry.at) >= datetime.combine(filters.day_from, time(), tz))
    if filters.day_to is not None:
        end = datetime.combine(filters.day_to + timedelta(days=1), time(), tz)
        stmt = stmt.where(col(AuditEntry.at) < end)
    total = session.exec(select(func.count()).select_from(stmt.subquery())).one()
    pages = max(1, -(-total // PAGE_SIZE))
    page = min(max(page, 1), pages)
    rows = session.exec(
        stmt.order_by(col(AuditEntry.at).desc(), col(AuditEntry.id).desc())
        .offset((page - 1) * PAGE_SIZE)
        .limit(PAGE_SIZE)
    ).all()
    return Page(list(rows), page, pages, total)
