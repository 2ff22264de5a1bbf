"""The kiosk's JSON API under /api/v1/kiosk: authenticated by the kiosk's device token (cookie or bearer),
never by a staff login. The batch is the same shape as /api/v1/checkins/batch."""

from __future__ import annotations

from fastapi import APIRouter

from server.deps import KioskDep, LanguageDep, SessionDep, SettingsDep
from server.models import Venue, utcnow
from server.routes.api import batch_items, batch_out
from server.schemas import (
    PROBLEM_RESPONSES,
    WRITE,
    BatchIn,
    BatchOut,
    KioskDeviceOut,
    KioskEventOut,
    KioskOut,
    problems,
)
from server.services import kiosks, scans

router = APIRouter(prefix="/api/v1", tags=["api"], responses=PROBLEM_RESPONSES)


@router.get("/kiosk")
def show_kiosk(device: KioskDep, session: SessionDep, settings: SettingsDep) -> KioskOut:
    """This kiosk, its venue and the venue's events whose check-in window touches today."""
    now = utcnow()
    venue = session.get(Venue, device.venue_id)
    assert venue is not None, "a kiosk's venue exists (foreign key)"
    events = []
    for event in kiosks.kiosk_events(session, settings, device, now):
        opens_at, closes_at = scans.check_in_window(event, settings)
        events.append(
            KioskEventOut(
                id=event.id or 0,
                title=event.title,
                starts_at=event.starts_at,
                ends_at=event.ends_at,
                opens_at=opens_at,
                closes_at=closes_at,
            )
        )
    return KioskOut(
        device=KioskDeviceOut(
            id=device.id or 0, name=device.name, venue_id=device.venue_id, venue_name=venue.name
        ),
        events=events,
        server_time=now,
    )


@router.post("/kiosk/batch", responses=problems(*WRITE))
def kiosk_batch(
    body: BatchIn, device: KioskDep, session: SessionDep, settings: SettingsDep, language: LanguageDep
) -> BatchOut:
    """Check-ins by personal card and headcount changes from this kiosk, answered item by item (the same
    items and answers as /api/v1/checkins/batch); events at another venue and other identities are
    refused with `forbidden`."""
    staff = kiosks.enrolling_staff(session, device)
    items, keys = batch_items(body, staff)
    return batch_out(kiosks.run_batch(session, settings, device, items, keys, utcnow()), language)
