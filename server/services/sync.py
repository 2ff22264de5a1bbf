"""A batch of check-ins and headcount changes made offline (an outbox, a kiosk), answered item by item.

Each item goes through the same engine as a live scan, in its own transaction, in the order sent: one
refused item never sinks the others, and a resent batch stores nothing twice (each item's key).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from sqlmodel import Session

from server.config import Settings
from server.errors import AppError, ErrorCode
from server.models import Staff, utcnow
from server.services import attempts, checkin, headcounts, names
from server.services.checkin import CheckInRequest
from server.services.headcounts import HeadcountRequest


@dataclass(frozen=True)
class Outcome:
    key: str
    status: Literal["stored", "replayed", "refused"]
    code: ErrorCode | None = None
    check_in_id: int | None = None
    headcount_id: int | None = None
    late: bool = False
    # For the kiosk's and the desk's answer on the screen: who it was (staff only: a phone is anonymous;
    # the name only where the staff member may see it, services/names.py) and, for a check-in or an
    # earlier one, when they came.
    who: str | None = None
    participant_id: int | None = None
    checked_in_at: datetime | None = None
    device_token: str | None = None  # a token the server made for a new phone


def run_batch(
    session: Session,
    settings: Settings,
    items: list[CheckInRequest | HeadcountRequest | AppError],
    *,
    staff: Staff | None,
    now: datetime | None = None,
    keys: list[str] | None = None,
    venue_id: int | None = None,
    cards_only: bool = False,
    address: str | None = None,
) -> list[Outcome]:
    """Send every item through the engine. An item the caller could not even parse comes as the AppError
    it raised (with its key in `keys`), so it is answered in its place. A kiosk's batch passes its
    `venue_id` and `cards_only` on to the engine, which refuses what the kiosk may not do; `address` is where
    an anonymous phone's batch came from (the engine's flood budget)."""
    now = now or utcnow()
    outcomes = []
    for index, item in enumerate(items):
        key = (keys[index] if keys else "") if isinstance(item, AppError) else item.key
        if isinstance(item, AppError):
            outcomes.append(Outcome(key, "refused", item.code))
            continue
        try:
            if isinstance(item, HeadcountRequest):
                if staff is None:  # phones check themselves in; only staff count at the door
                    attempts.log_attempt(
                        session,
                        item.channel,
                        None,
                        item.key,
                        ErrorCode.login_required.value,
                        now,
                        action="headcount",
                    )
                    raise AppError(ErrorCode.login_required)
                counted = headcounts.change_headcount(
                    session, settings, item, staff=staff, now=now, venue_id=venue_id
                )
                status: Literal["stored", "replayed"] = "stored" if counted.created else "replayed"
                outcomes.append(Outcome(key, status, headcount_id=counted.headcount.id))
            else:
                result = checkin.check_in(
                    session,
                    settings,
                    item,
                    staff=staff,
                    now=now,
                    venue_id=venue_id,
                    cards_only=cards_only,
                    address=address,
                )
                status = "stored" if result.created else "replayed"
                outcomes.append(
                    Outcome(
                        key,
                        status,
                        check_in_id=result.check_in.id,
                        late=result.check_in.late,
                        who=names.shown(session, staff, result.participant) if staff else None,
                        participant_id=result.participant.id if staff else None,
                        checked_in_at=result.check_in.checked_in_at,
                        device_token=result.device_token,
                    )
                )
        except AppError as error:
            holder = error.extra.get("participant")
            outcomes.append(
                Outcome(
                    key,
                    "refused",
                    error.code,
                    who=names.shown(session, staff, holder) if holder is not None and staff else None,
                    participant_id=holder.id if holder is not None and staff else None,
                    checked_in_at=error.extra.get("checked_in_at"),
                )
            )
    return outcomes
