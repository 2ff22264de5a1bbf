"""A resident's own data from their own phone (/my-data, "Dữ liệu của tôi"): the phone's device cookie is
the key (no account, no password). See it, download it, correct it, withdraw consent, delete it; the rules
are in services/rights.py."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response
from sqlmodel import Session, col, select

from server.deps import SessionDep, TemplatesDep
from server.errors import AppError, ErrorCode
from server.models import AgeBand, Gender, OrgUnit, Participant, UnitKind
from server.routes.checkin import DEVICE_COOKIE, FORM_CODES, profile_of
from server.services import identities, rights

router = APIRouter(prefix="/my-data", include_in_schema=False)
NO_STORE = {"Cache-Control": "no-store"}


def home_choices(session: Session, participant: Participant) -> list[OrgUnit]:
    """The commune the participant lives in (or the one of their village) and its current villages."""
    unit = session.get(OrgUnit, participant.home_unit_id) if participant.home_unit_id else None
    if unit is not None and unit.kind == UnitKind.village and unit.parent_id:
        unit = session.get(OrgUnit, unit.parent_id)
    if unit is None or unit.kind != UnitKind.commune:
        return [unit] if unit else []
    villages = session.exec(
        select(OrgUnit)
        .where(
            OrgUnit.parent_id == unit.id, OrgUnit.kind == UnitKind.village, col(OrgUnit.valid_to).is_(None)
        )
        .order_by(col(OrgUnit.name))
    ).all()
    return [unit, *villages]


def form_context(session: Session, participant: Participant, **extra: Any) -> dict[str, Any]:
    """What the page and the organizer's page show: the data, and the correction form with its choices."""
    data = rights.my_data(session, participant)
    form = {
        "age_band": participant.age_band.value,
        "gender": participant.gender.value,
        "home_unit_id": str(participant.home_unit_id or ""),
        "name": participant.name or "",
    }
    return {
        "data": data,
        "form": form,
        "homes": home_choices(session, participant),
        "age_bands": list(AgeBand),
        "genders": list(Gender),
        "error": None,
        **extra,
    }


def _participant(request: Request, session: Session) -> Participant | None:
    return identities.participant_for_device(session, request.cookies.get(DEVICE_COOKIE))


def _gone(request: Request, templates: TemplatesDep, done: str) -> Response:
    response = templates.render(request, "my_data/page.html", {"data": None, "done": done}, headers=NO_STORE)
    response.delete_cookie(DEVICE_COOKIE)
    return response


@router.get("")
def show_my_data(request: Request, session: SessionDep, templates: TemplatesDep) -> Response:
    """What the app stores about the person whose phone this is."""
    participant = _participant(request, session)
    if participant is None:
        return templates.render(request, "my_data/page.html", {"data": None}, headers=NO_STORE)
    context = form_context(session, participant, saved=request.query_params.get("saved") == "1")
    return templates.render(request, "my_data/page.html", context, headers=NO_STORE)


@router.get("/data.json")
def download_my_data(request: Request, session: SessionDep) -> Response:
    """The same data as a JSON file."""
    participant = _participant(request, session)
    if participant is None:
        raise AppError(ErrorCode.not_found)
    document = rights.download(session, None, participant)
    return Response(
        json.dumps(document, ensure_ascii=False, indent=2),
        media_type="application/json",
        headers={**NO_STORE, "Content-Disposition": 'attachment; filename="du-lieu-cua-toi.json"'},
    )


@router.post("")
def correct_my_data(
    request: Request,
    session: SessionDep,
    templates: TemplatesDep,
    age_band: Annotated[str, Form(max_length=8)] = "",
    gender: Annotated[str, Form(max_length=16)] = "",
    home_unit_id: Annotated[str, Form(max_length=12)] = "",
    name: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    """Correct age group, gender, home and name (no name under 16)."""
    participant = _participant(request, session)
    if participant is None:
        raise AppError(ErrorCode.not_found)
    form = {
        "age_band": age_band,
        "gender": gender,
        "home_unit_id": home_unit_id,
        "name": name,
        "consent": True,
    }
    try:
        rights.correct(session, None, participant, profile_of(form))
    except AppError as error:
        if error.code not in FORM_CODES:
            raise
        session.rollback()
        context = form_context(session, participant, error=error.code)
        context["form"] = form
        return templates.render(request, "my_data/page.html", context, status_code=422, headers=NO_STORE)
    return RedirectResponse("/my-data?saved=1", status_code=303)


def _confirmed(
    request: Request, session: Session, templates: TemplatesDep, confirm: str
) -> Participant | Response:
    participant = _participant(request, session)
    if participant is None:
        raise AppError(ErrorCode.not_found)
    if confirm != "yes":
        context = form_context(session, participant, confirm_error=True)
        return templates.render(request, "my_data/page.html", context, status_code=422, headers=NO_STORE)
    return participant


@router.post("/withdraw")
def withdraw_consent(
    request: Request,
    session: SessionDep,
    templates: TemplatesDep,
    confirm: Annotated[str, Form(max_length=8)] = "",
) -> Response:
    """Withdraw consent: the phone is no longer recognised and the name is forgotten."""
    found = _confirmed(request, session, templates, confirm)
    if isinstance(found, Response):
        return found
    rights.withdraw(session, None, found)
    return _gone(request, templates, "withdrawn")


@router.post("/delete")
def delete_my_data(
    request: Request,
    session: SessionDep,
    templates: TemplatesDep,
    confirm: Annotated[str, Form(max_length=8)] = "",
) -> Response:
    """Delete the identifying data; past visits stay as anonymous counts."""
    found = _confirmed(request, session, templates, confirm)
    if isinstance(found, Response):
        return found
    rights.delete(session, None, found)
    return _gone(request, templates, "deleted")
