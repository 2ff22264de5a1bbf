"""The chooser of the indicator and report pages: a reporting year, a window (the calendar year or the year
ending on the office's cut-off), an optional earlier day to count up to, and an area (a unit or a group).
A GET form, so a chosen view can be shared as a link."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from sqlmodel import Session

from server.config import Settings
from server.i18n import gettext
from server.models import Staff
from server.services import areas, indicators, reports
from server.services.reports import ReportWindow

CALENDAR = "31/12"  # the cut-off of a calendar year


def choice(
    session: Session, staff: Staff, settings: Settings, query: dict[str, str], language: str
) -> dict[str, Any]:
    """The chooser's state (year, reporting year, cut-off date, area) and its options."""
    today = datetime.now(settings.tz).date()
    rules = indicators.load_rules(session)
    configured = rules.cutoff_text or CALENDAR
    form = {
        "year": query.get("year", "").strip() or str(today.year),
        "cutoff": query.get("cutoff", "").strip() or configured,
        "until": query.get("until", "").strip(),
        "area": query.get("area", "").strip(),
    }
    cutoffs = list(dict.fromkeys([CALENDAR, configured, "31/10"]))
    years = reports.years_with_data(session, staff, settings.tz, today=today)
    return {
        "today": today,
        "rules": rules,
        "status_text": indicators.STATUS_TEXT,
        "form": form,
        "errors": {},
        "year_options": [(str(y), str(y)) for y in years],
        "cutoff_options": cutoffs,
        "area_options": [
            (value, gettext(language, text) if value == "" else text)
            for value, text in areas.area_choices(session, staff, language)
        ],
    }


def window_and_area(
    session: Session, staff: Staff, context: dict[str, Any]
) -> tuple[ReportWindow, areas.Area]:
    form = context["form"]
    cutoff = reports.parse_cutoff("" if form["cutoff"] == CALENDAR else form["cutoff"])
    window = reports.window_from_query(form["year"], form["until"], today=context["today"], cutoff=cutoff)
    return window, areas.resolve_area(session, staff, form["area"])


def query_string(form: dict[str, str], **changes: str) -> str:
    values = {**form, **changes}
    return urlencode({k: v for k, v in values.items() if v})


def stated(context: dict[str, Any], window: ReportWindow, area: areas.Area, language: str) -> None:
    rules: indicators.Rules = context["rules"]
    context.update(
        window=window,
        area=area,
        area_text=area.text(lambda s: gettext(language, s)),
        window_text=reports.window_text(window, language),
        rule_text=gettext(language, indicators.RULES_TEXT)
        % {"months": rules.active_months, "visits": rules.active_min_visits},
    )
