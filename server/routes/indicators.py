"""Routes under /indicators (admin and office): the plan's indicators for a year, window and area, the
drill-down to communes, venues and records, and the targets and rules form. Rules: services/indicators.py."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from sqlmodel import Session

from server.config import Settings
from server.deps import LanguageDep, OfficeStaff, SessionDep, SettingsDep, TemplatesDep, text_fields
from server.errors import MESSAGES, FormError
from server.models import Staff
from server.routes import chooser
from server.services import areas, indicators, reports
from server.services.reports import ReportWindow
from server.templating import Templates

router = APIRouter(prefix="/indicators", include_in_schema=False)


def _page(
    request: Request,
    session: Session,
    staff: Staff,
    settings: Settings,
    templates: Templates,
    language: str,
    template: str,
    build: Callable[[ReportWindow, areas.Area], dict[str, Any]],
) -> Response:
    """An indicator page: parse the chooser, state the window, area and rules, add what `build` finds."""
    context = chooser.choice(session, staff, settings, dict(request.query_params), language)
    try:
        window, area = chooser.window_and_area(session, staff, context)
    except FormError as error:
        context.update(errors=error.fields, message=MESSAGES[error.code])
        return templates.render(request, template, context, status_code=422)
    chooser.stated(context, window, area, language)
    context.update(build(window, area), query=chooser.query_string(context["form"]))
    return templates.render(request, template, context)


@router.get("")
def show_indicators(
    request: Request,
    staff: OfficeStaff,
    session: SessionDep,
    settings: SettingsDep,
    templates: TemplatesDep,
    language: LanguageDep,
) -> Response:
    """Every indicator of the plan for the chosen year, window and area, with its status."""

    def build(window: ReportWindow, area: areas.Area) -> dict[str, Any]:
        return {"evaluation": indicators.evaluate(session, staff, window, area, settings.tz)}

    return _page(request, session, staff, settings, templates, language, "indicators/index.html", build)


@router.get("/targets")
def show_targets(
    request: Request, staff: OfficeStaff, session: SessionDep, settings: SettingsDep, templates: TemplatesDep
) -> Response:
    """The targets by year (the staff member's level) and the counting rules the office may change."""
    return templates.render(request, "indicators/targets.html", _targets_context(session, staff, settings))


def _targets_context(session: Session, staff: Staff, settings: Settings, **extra: Any) -> dict[str, Any]:
    today = datetime.now(settings.tz).date()
    years = indicators.target_years(today)
    stored = indicators.own_targets(session, staff)
    area = areas.resolve_area(session, staff, "")
    applying = indicators.targets(session, area, years)
    form: dict[str, str] = {}
    for (key, year), row in stored.items():
        form[f"{key}-{year}-low"] = _number(row.low)
        form[f"{key}-{year}-high"] = _number(row.high)
    rules = indicators.load_rules(session)
    return {
        "years": years,
        "applying": applying,
        "stored": stored,
        "form": form,
        "errors": {},
        "rules_form": {
            "cutoff": rules.cutoff_text,
            "active_months": str(rules.active_months),
            "active_min_visits": str(rules.active_min_visits),
        },
        "rules_errors": {},
        "area": area,
        "definitions": indicators.DEFINITIONS,
        **extra,
    }


def _number(value: float | None) -> str:
    if value is None:
        return ""
    return f"{value:g}".replace(".", ",")


@router.post("/targets")
async def save_targets(
    request: Request, staff: OfficeStaff, session: SessionDep, settings: SettingsDep, templates: TemplatesDep
) -> Response:
    fields = text_fields(await request.form())
    try:
        indicators.save_targets(session, staff, fields, today=datetime.now(settings.tz).date())
    except FormError as error:
        context = _targets_context(
            session, staff, settings, errors=error.fields, message=MESSAGES[error.code]
        )
        context["form"] = fields
        return templates.render(request, "indicators/targets.html", context, status_code=422)
    return RedirectResponse("/indicators/targets?saved=targets", status_code=303)


@router.post("/rules")
async def save_rules(
    request: Request, staff: OfficeStaff, session: SessionDep, settings: SettingsDep, templates: TemplatesDep
) -> Response:
    fields = text_fields(await request.form())
    try:
        indicators.save_rules(session, staff, fields)
    except FormError as error:
        context = _targets_context(
            session, staff, settings, rules_errors=error.fields, message=MESSAGES[error.code]
        )
        context["rules_form"] = fields
        return templates.render(request, "indicators/targets.html", context, status_code=422)
    return RedirectResponse("/indicators/targets?saved=rules", status_code=303)


@router.get("/{key}")
def show_drill(
    key: str,
    request: Request,
    staff: OfficeStaff,
    session: SessionDep,
    settings: SettingsDep,
    templates: TemplatesDep,
    language: LanguageDep,
) -> Response:
    """One indicator by commune and by venue, each against its own last year."""
    form = dict(request.query_params)

    def build(window: ReportWindow, area: areas.Area) -> dict[str, Any]:
        return {
            "drill": indicators.drill(session, staff, key, window, area, settings.tz),
            "key": key,
            "query_for": lambda value: chooser.query_string(form, area=value),
        }

    return _page(request, session, staff, settings, templates, language, "indicators/drill.html", build)


@router.get("/{key}/venues/{venue_id}")
def show_records(
    key: str,
    venue_id: int,
    request: Request,
    staff: OfficeStaff,
    session: SessionDep,
    settings: SettingsDep,
    templates: TemplatesDep,
    language: LanguageDep,
) -> Response:
    """The records behind one venue's figure: its events with their visits, its clubs' months."""

    def build(window: ReportWindow, area: areas.Area) -> dict[str, Any]:
        return {
            "records": indicators.records(session, staff, key, window, venue_id, settings.tz),
            "key": key,
            "months": reports.twelve_months(window),
        }

    return _page(request, session, staff, settings, templates, language, "indicators/records.html", build)
