"""The audit log page (/audit, admins only): filter by action, staff member and days; newest first."""

from __future__ import annotations

from datetime import date
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from server.deps import AdminStaff, SessionDep, SettingsDep, TemplatesDep
from server.errors import N_
from server.services import audit
from server.services import staff as accounts

router = APIRouter(include_in_schema=False)
BAD_DAY = N_("Enter a date as dd/mm/yyyy, between 2000 and 2100.")


def _day(raw: str, errors: dict[str, str], name: str) -> date | None:
    if not raw.strip():
        return None
    try:
        day = date.fromisoformat(raw.strip())
    except ValueError:
        day = None
    if day is None or not 2000 <= day.year <= 2100:
        errors[name] = BAD_DAY
        return None
    return day


@router.get("/audit")
def show_audit(
    request: Request,
    admin: AdminStaff,
    session: SessionDep,
    settings: SettingsDep,
    templates: TemplatesDep,
    action: Annotated[str, Query(max_length=40)] = "",
    staff_id: Annotated[str, Query(max_length=12)] = "",
    day_from: Annotated[str, Query(alias="from", max_length=10)] = "",
    day_to: Annotated[str, Query(alias="to", max_length=10)] = "",
    page: Annotated[int, Query(ge=1, le=audit.MAX_PAGE)] = 1,
) -> Response:
    """Who did what and when, for administrators."""
    errors: dict[str, str] = {}
    if action and action not in audit.Action.__members__:
        errors["action"] = N_("Choose an action from the list.")
    who = int(staff_id) if staff_id.isdigit() and len(staff_id) <= 9 else None
    if staff_id and who is None:
        errors["staff_id"] = N_("Choose a staff member from the list.")
    filters = audit.Filters(
        action="" if "action" in errors else action,
        staff_id=who,
        day_from=_day(day_from, errors, "from"),
        day_to=_day(day_to, errors, "to"),
    )
    found = audit.entries(session, filters, settings.tz, page=page)
    query = {"action": filters.action, "staff_id": staff_id if who else "", "from": day_from, "to": day_to}
    context = {
        "found": found,
        "errors": errors,
        "form": query,
        "base": "/audit?" + urlencode(query),
        "actions": [(a.value, audit.LABELS[a]) for a in audit.Action],
        "labels": {a.value: audit.LABELS[a] for a in audit.Action},
        "accounts": accounts.list_staff(session),
        "page_size": audit.PAGE_SIZE,
    }
    return templates.render(
        request,
        "audit/index.html",
        context,
        status_code=422 if errors else 200,
        headers={"Cache-Control": "no-store"},
    )
