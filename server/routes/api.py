"""The JSON API under /api/v1: the same services as the pages; errors are problem details with a `code`."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from fastapi import APIRouter, Response
from sqlmodel import col, select

from server.deps import CurrentStaff, LanguageDep, OfficeStaff, SessionDep, SettingsDep
from server.errors import AppError, ErrorCode
from server.i18n import gettext
from server.models import CheckIn, CheckInMethod, Event, utcnow
from server.schemas import (
    BreakdownOut,
    CheckInOut,
    CountOut,
    EventIn,
    EventOut,
    EventPage,
    EventPatch,
    LiveOut,
    ProfileIn,
    PublicCheckInIn,
    ReportRowOut,
    StaffCheckInIn,
    YearlyTotalsOut,
)
from server.services import attendance, checkin, events, reports
from server.services.checkin import CheckInResult, Profile

router = APIRouter(prefix="/api/v1", tags=["api"])
PROBLEM = {"content": {"application/problem+json": {}}, "description": "Problem details with a `code`"}
ERRORS: dict[int | str, dict[str, Any]] = {
    401: PROBLEM,
    403: PROBLEM,
    404: PROBLEM,
    409: PROBLEM,
    422: PROBLEM,
}
# Back-dated entries are fine (paper lists typed in later); entries from the future are a clock error.
MAX_CLOCK_SKEW = timedelta(minutes=5)


def _event_out(event: Event, settings: Any) -> EventOut:
    out = EventOut.model_validate(event)
    out.checkin_code = checkin.code_for(event, settings)
    out.checkin_url = checkin.link_for(event, settings)
    return out


def _profile(profile: ProfileIn | None) -> Profile | None:
    if profile is None:
        return None
    return Profile(
        age_band=profile.age_band,
        gender=profile.gender,
        home_unit_id=profile.home_unit_id,
        name=profile.name,
        consent=profile.consent,
    )


def _check_in_out(record: CheckIn, result: CheckInResult | None = None) -> CheckInOut:
    return CheckInOut(
        id=record.id or 0,
        event_id=record.event_id,
        participant_id=record.participant_id,
        checked_in_at=record.checked_in_at,
        method=record.method,
        age_band=record.age_band,
        gender=record.gender,
        created=result.created if result else True,
        device_token=result.device_token if result else None,
    )


@router.get("/events", responses=ERRORS)
def list_events(
    staff: CurrentStaff,
    session: SessionDep,
    settings: SettingsDep,
    q: str = "",
    when: str = "all",
    page: int = 1,
) -> EventPage:
    """Events in your scope, newest first; `when` is all, upcoming or past."""
    rows, total = events.list_events(session, staff, query=q[:100], when=when, page=page)
    return EventPage(items=[_event_out(row.event, settings) for row in rows], total=total, page=max(page, 1))


@router.post("/events", status_code=201, responses=ERRORS)
def create_event(body: EventIn, staff: CurrentStaff, session: SessionDep, settings: SettingsDep) -> EventOut:
    """Create an event at a venue in your scope."""
    data = events.EventInput(**body.model_dump())
    return _event_out(events.create_event(session, staff, data), settings)


@router.get("/events/{event_id}", responses=ERRORS)
def get_event(event_id: int, staff: CurrentStaff, session: SessionDep, settings: SettingsDep) -> EventOut:
    """One event, with its check-in link."""
    return _event_out(events.get_event(session, staff, event_id), settings)


@router.patch("/events/{event_id}", responses=ERRORS)
def update_event(
    event_id: int, body: EventPatch, staff: CurrentStaff, session: SessionDep, settings: SettingsDep
) -> EventOut:
    """Change some fields of an event (its check-in code changes with its times)."""
    event = events.get_event(session, staff, event_id)
    current = {name: getattr(event, name) for name in events.EventInput.__dataclass_fields__}
    current.update(body.model_dump(exclude_unset=True))
    return _event_out(events.update_event(session, staff, event, events.EventInput(**current)), settings)


@router.post("/events/{event_id}/cancel", responses=ERRORS)
def cancel_event(event_id: int, staff: CurrentStaff, session: SessionDep, settings: SettingsDep) -> EventOut:
    """Cancel an event: its code stops working, its check-ins stay counted."""
    event = events.get_event(session, staff, event_id)
    return _event_out(events.cancel_event(session, event), settings)


@router.get("/events/{event_id}/live", responses=ERRORS)
def live_counts(event_id: int, staff: CurrentStaff, session: SessionDep) -> LiveOut:
    """Visits, distinct people and breakdowns of one event, as they are now."""
    event = events.get_event(session, staff, event_id)
    summary = attendance.live_summary(session, event.id or 0, latest=0)
    return LiveOut(
        event_id=event.id or 0,
        visits=summary.visits,
        people=summary.people,
        version=summary.version,
        by_age_band=[CountOut(key=band.value, visits=n) for band, n in summary.by_age],
        by_gender=[CountOut(key=gender.value, visits=n) for gender, n in summary.by_gender],
    )


@router.get("/events/{event_id}/checkins", responses=ERRORS)
def list_check_ins(
    event_id: int, staff: CurrentStaff, session: SessionDep, limit: int = 100, after_id: int = 0
) -> list[CheckInOut]:
    """Check-ins of one event in the order they were stored; page with `after_id`."""
    event = events.get_event(session, staff, event_id)
    rows = session.exec(
        select(CheckIn)
        .where(CheckIn.event_id == event.id, col(CheckIn.id) > after_id)
        .order_by(col(CheckIn.id))
        .limit(max(1, min(limit, 1000)))
    ).all()
    return [_check_in_out(row) for row in rows]


@router.post("/events/{event_id}/checkins", status_code=201, responses=ERRORS)
def add_check_in(
    event_id: int,
    body: StaffCheckInIn,
    response: Response,
    staff: CurrentStaff,
    session: SessionDep,
    settings: SettingsDep,
) -> CheckInOut:
    """Check someone in as staff (no phone, or a late paper list); the same nonce again returns 200."""
    event = events.get_event(session, staff, event_id)
    now = utcnow()
    when = body.checked_in_at or now
    if when - now > MAX_CLOCK_SKEW:
        raise AppError(ErrorCode.invalid_input, "checked_in_at is in the future")
    method = CheckInMethod.api if body.device_token else CheckInMethod.manual
    result = checkin.check_in(
        session,
        settings,
        event=event,
        nonce=body.nonce,
        method=method,
        device_token=body.device_token,
        profile=_profile(body.profile),
        recorded_by_id=staff.id,
        now=when,
    )
    if not result.created:
        response.status_code = 200
    return _check_in_out(result.check_in, result)


@router.post("/checkins", status_code=201, responses=ERRORS)
def public_check_in(
    body: PublicCheckInIn, response: Response, session: SessionDep, settings: SettingsDep
) -> CheckInOut:
    """A resident checks in with the poster's code (no login). The same rules as the check-in page."""
    try:
        event = checkin.event_from_code(session, settings, body.code)
    except AppError as error:
        known = error.extra.get("event")
        checkin.log_attempt(
            session, known.id if known else None, body.nonce, CheckInMethod.qr, error.code.value, utcnow()
        )
        raise
    result = checkin.check_in(
        session,
        settings,
        event=event,
        nonce=body.nonce,
        method=CheckInMethod.qr,
        device_token=body.device_token,
        profile=_profile(body.profile),
    )
    if not result.created:
        response.status_code = 200
    return _check_in_out(result.check_in, result)


@router.get("/reports/yearly", responses=ERRORS)
def yearly_report(
    staff: OfficeStaff,
    session: SessionDep,
    settings: SettingsDep,
    language: LanguageDep,
    year: str = "",
    until: str = "",
) -> YearlyTotalsOut:
    """A year's visits and distinct people, in total and by each breakdown (admin and office)."""
    today = datetime.now(settings.tz).date()
    window = reports.window_from_query(year or str(today.year), until, today=today)
    totals = reports.yearly_totals(session, staff, window, settings.tz)
    return YearlyTotalsOut(
        year=window.year,
        start=window.start,
        end=window.end,
        unit=reports.unit_text(totals, language),
        rule=gettext(language, reports.RULE_TEXT),
        visits=totals.visits,
        people=totals.people,
        breakdowns=[
            BreakdownOut(
                key=b.key,
                title=gettext(language, b.title),
                rows=[
                    ReportRowOut(key=r.key, name=r.text(language), visits=r.visits, people=r.people)
                    for r in b.rows
                ],
            )
            for b in totals.breakdowns
        ],
    )
