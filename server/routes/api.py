"""The JSON API under /api/v1: the same services as the pages; errors are problem details with a `code`."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from pydantic import ValidationError
from sqlmodel import col, select

from server.deps import (
    CurrentStaff,
    LanguageDep,
    OfficeStaff,
    OptionalStaff,
    SessionDep,
    SettingsDep,
    client_address,
    staff_token_check,
)
from server.errors import MESSAGES, AppError, ErrorCode
from server.i18n import gettext
from server.models import Channel, CheckIn, Event, Staff
from server.schemas import (
    BY_ID,
    ENGINE,
    PROBLEM_RESPONSES,
    WRITE,
    BatchIn,
    BatchItemIn,
    BatchOut,
    BatchResultOut,
    BreakdownOut,
    CheckInOut,
    CountOut,
    EventIn,
    EventOut,
    EventPage,
    EventPatch,
    HeadcountIn,
    HeadcountOut,
    LiveOut,
    ProfileIn,
    PublicCheckInIn,
    ReportRowOut,
    StaffCheckInIn,
    YearlyTotalsOut,
    problems,
)
from server.services import attendance, checkin, events, headcounts, reports, scans, sync
from server.services.checkin import CheckInRequest, CheckInResult, Identity
from server.services.headcounts import HeadcountRequest
from server.services.identities import Profile

router = APIRouter(
    prefix="/api/v1", tags=["api"], dependencies=[Depends(staff_token_check)], responses=PROBLEM_RESPONSES
)


def _replayed(model: type) -> dict[int | str, dict[str, Any]]:
    """The statuses of a write with an idempotency key: 201 stored, 200 the same key again (or a problem)."""
    return {200: {"model": model, "description": "The same key again: the first answer, nothing stored"}}


def _event_out(event: Event, settings: Any) -> EventOut:
    out = EventOut.model_validate(event)
    out.checkin_code = scans.code_for(event, settings)
    out.checkin_url = scans.link_for(event, settings)
    return out


def profile_of(profile: ProfileIn | None) -> Profile | None:
    """The service's Profile of the API's shape (None stays None: a known phone or card needs none)."""
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
        received_at=record.received_at,
        late=record.late,
        channel=record.channel,
        age_band=record.age_band,
        gender=record.gender,
        created=result.created if result else True,
        device_token=result.device_token if result else None,
        suspicious=record.suspicious,
        excluded=record.excluded_by_id is not None,
    )


@router.get("/events")
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


@router.post("/events", status_code=201, responses=problems(*WRITE))
def create_event(body: EventIn, staff: CurrentStaff, session: SessionDep, settings: SettingsDep) -> EventOut:
    """Create an event at a venue in your scope."""
    data = events.EventInput(**body.model_dump())
    return _event_out(events.create_event(session, staff, data), settings)


@router.get("/events/{event_id}", responses=problems(*BY_ID))
def get_event(event_id: int, staff: CurrentStaff, session: SessionDep, settings: SettingsDep) -> EventOut:
    """One event, with its check-in link."""
    return _event_out(events.get_event(session, staff, event_id), settings)


@router.patch("/events/{event_id}", responses=problems(*WRITE, 404))
def update_event(
    event_id: int, body: EventPatch, staff: CurrentStaff, session: SessionDep, settings: SettingsDep
) -> EventOut:
    """Change some fields of an event (its check-in code changes with its times)."""
    event = events.get_event(session, staff, event_id)
    current = {name: getattr(event, name) for name in events.EventInput.__dataclass_fields__}
    current.update(body.model_dump(exclude_unset=True))
    return _event_out(events.update_event(session, staff, event, events.EventInput(**current)), settings)


@router.post("/events/{event_id}/cancel", responses=problems(*WRITE, 404))
def cancel_event(event_id: int, staff: CurrentStaff, session: SessionDep, settings: SettingsDep) -> EventOut:
    """Cancel an event: no new check-in or headcount is taken; those taken before stay counted."""
    event = events.get_event(session, staff, event_id)
    return _event_out(events.cancel_event(session, event), settings)


@router.get("/events/{event_id}/live", responses=problems(*BY_ID))
def live_counts(event_id: int, staff: CurrentStaff, session: SessionDep) -> LiveOut:
    """Visits, distinct people and breakdowns of one event, as they are now."""
    event = events.get_event(session, staff, event_id)
    summary = attendance.live_summary(session, event.id or 0, latest=0)
    return LiveOut(
        event_id=event.id or 0,
        visits=summary.visits,
        people=summary.people,
        walk_ins=summary.walk_ins,
        version=summary.version,
        by_age_band=[CountOut(key=band.value if band else "", visits=n) for band, n in summary.by_age],
        by_gender=[CountOut(key=gender.value if gender else "", visits=n) for gender, n in summary.by_gender],
    )


@router.get("/events/{event_id}/checkins", responses=problems(*BY_ID))
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


@router.post(
    "/events/{event_id}/checkins",
    status_code=201,
    responses={**_replayed(CheckInOut), **problems(*WRITE, *ENGINE)},
)
def add_check_in(
    event_id: int,
    body: StaffCheckInIn,
    response: Response,
    staff: CurrentStaff,
    session: SessionDep,
    settings: SettingsDep,
) -> CheckInOut:
    """Check someone in as staff: a card, a participant found by name, a phone's token or a new person
    (`checked_in_at` for a paper register typed in later); the same nonce again returns 200."""
    request = CheckInRequest(
        channel=Channel.staff_api,
        key=body.nonce,
        event_id=event_id,
        claimed_at=body.checked_in_at,
        identity=Identity(
            device_token=body.device_token,
            card=body.card,
            participant_id=body.participant_id,
            profile=profile_of(body.profile),
        ),
    )
    result = checkin.check_in(session, settings, request, staff=staff)
    if not result.created:
        response.status_code = 200
    return _check_in_out(result.check_in, result)


@router.post(
    "/events/{event_id}/headcounts",
    status_code=201,
    responses={**_replayed(HeadcountOut), **problems(*WRITE, *ENGINE)},
)
def change_headcount(
    event_id: int,
    body: HeadcountIn,
    response: Response,
    staff: CurrentStaff,
    session: SessionDep,
    settings: SettingsDep,
) -> HeadcountOut:
    """Add to or take from the walk-in count (visits, never people); the same nonce again returns 200."""
    request = HeadcountRequest(
        key=body.nonce,
        event_id=event_id,
        delta=body.delta,
        age_band=body.age_band,
        gender=body.gender,
        claimed_at=body.counted_at,
        channel=Channel.staff_api,
    )
    result = headcounts.change_headcount(session, settings, request, staff=staff)
    if not result.created:
        response.status_code = 200
    row = result.headcount
    return HeadcountOut(
        id=row.id or 0,
        event_id=row.event_id,
        delta=row.delta,
        age_band=row.age_band,
        gender=row.gender,
        counted_at=row.counted_at,
        total=result.total,
        created=result.created,
    )


@router.post(
    "/checkins",
    status_code=201,
    responses={**_replayed(CheckInOut), **problems(*WRITE, *ENGINE, 429)},
)
def public_check_in(
    body: PublicCheckInIn,
    request: Request,
    response: Response,
    session: SessionDep,
    settings: SettingsDep,
) -> CheckInOut:
    """A resident checks in with the poster's code (no login). The same rules as the check-in page; past
    its address's budget of new people a minute at the event it answers 429 (`checkin_busy`)."""
    wanted = CheckInRequest(
        channel=Channel.public_api,
        key=body.nonce,
        code=body.code,
        rotation=body.rotation,
        claimed_at=body.checked_in_at,
        identity=Identity(device_token=body.device_token, profile=profile_of(body.profile)),
    )
    result = checkin.check_in(session, settings, wanted, address=client_address(request))
    if not result.created:
        response.status_code = 200
    return _check_in_out(result.check_in, result)


@router.post("/checkins/batch", responses=problems(*WRITE))
def sync_batch(
    body: BatchIn,
    request: Request,
    staff: OptionalStaff,
    session: SessionDep,
    settings: SettingsDep,
    language: LanguageDep,
) -> BatchOut:
    """Check-ins and headcount changes made offline, each with its key and scan time, answered item by
    item in order. Without a login, items are a resident's phone's (event code and device token); with a
    staff login or token, the staff member's or their kiosk's."""
    items, keys = batch_items(body, staff)
    outcomes = sync.run_batch(
        session, settings, items, staff=staff, keys=keys, address=client_address(request)
    )
    return batch_out(outcomes, language)


def batch_items(
    body: BatchIn, staff: Staff | None
) -> tuple[list[CheckInRequest | HeadcountRequest | AppError], list[str]]:
    """A batch's items as the engine's requests (or the error that makes one unreadable) and their keys,
    for every batch endpoint (offline phones and staff here, kiosks in api_kiosk.py)."""
    keys = [raw.get("key", "") if isinstance(raw, dict) else "" for raw in body.items]
    return [_batch_item(raw, staff) for raw in body.items], [str(k)[:64] for k in keys]


def batch_out(outcomes: list[sync.Outcome], language: str) -> BatchOut:
    """The answer to a batch, item by item, with each refusal's message in the caller's language."""
    return BatchOut(
        results=[
            BatchResultOut(
                key=o.key,
                status=o.status,
                code=o.code.value if o.code else None,
                message=gettext(language, MESSAGES[o.code]) if o.code else None,
                check_in_id=o.check_in_id,
                headcount_id=o.headcount_id,
                late=o.late,
                who=o.who,
                participant_id=o.participant_id,
                checked_in_at=o.checked_in_at,
                device_token=o.device_token,
            )
            for o in outcomes
        ]
    )


def _batch_item(raw: object, staff: Staff | None) -> CheckInRequest | HeadcountRequest | AppError:
    """One item of a batch as the engine's request, or the error that makes it unreadable."""
    try:
        item = BatchItemIn.model_validate(raw)
    except ValidationError as error:
        return AppError(ErrorCode.invalid_input, str(error.errors()[0].get("msg", "")))
    if item.type == "headcount":
        if item.event_id is None or item.delta is None:
            return AppError(ErrorCode.invalid_input, "a headcount needs event_id and delta")
        return HeadcountRequest(
            key=item.key,
            event_id=item.event_id,
            delta=item.delta,
            age_band=item.age_band,
            gender=item.gender,
            claimed_at=item.claimed_at,
            channel=Channel.kiosk if item.kiosk else Channel.batch,
        )
    return CheckInRequest(
        channel=Channel.kiosk if item.kiosk and staff else Channel.batch,
        key=item.key,
        event_id=item.event_id,
        code=item.code,
        claimed_at=item.claimed_at,
        identity=Identity(
            device_token=item.device_token,
            card=item.card,
            participant_id=item.participant_id,
            profile=profile_of(item.profile),
        ),
    )


@router.get("/reports/yearly", responses=problems(403))
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
        walk_ins=totals.walk_ins,
        breakdowns=[
            BreakdownOut(
                key=b.key,
                title=gettext(language, b.title),
                rows=[
                    ReportRowOut(
                        key=r.key,
                        name=r.text(language),
                        visits=r.visits,
                        people=r.people,
                        walk_ins=r.walk_ins,
                    )
                    for r in b.rows
                ],
            )
            for b in totals.breakdowns
        ],
    )
