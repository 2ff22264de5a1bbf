"""Routes under /reports: the yearly report page, its XLSX and CSV downloads, and the CSV of every check-in
(admin and office)."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import Response, StreamingResponse
from markupsafe import Markup
from sqlmodel import Session

from server import charts
from server.config import Settings
from server.deps import LanguageDep, OfficeStaff, SessionDep, SettingsDep, TemplatesDep
from server.errors import MESSAGES, N_, FormError
from server.i18n import gettext
from server.models import Staff
from server.services import checkin_export, exports, reports
from server.templating import Templates

router = APIRouter(prefix="/reports", include_in_schema=False)


def _page_context(
    session: Session, staff: Staff, settings: Settings, year: str, until: str
) -> dict[str, Any]:
    today = datetime.now(settings.tz).date()
    years = reports.years_with_data(session, staff, settings.tz, today=today)
    return {
        "today": today,
        "year_options": [(str(y), str(y)) for y in years],
        "form": {"year": year or str(today.year), "until": until},
        "errors": {},
        "totals": None,
    }


def _refused(request: Request, templates: Templates, context: dict[str, Any], error: FormError) -> Response:
    context.update(errors=error.fields, message=MESSAGES[error.code])
    return templates.render(request, "reports/index.html", context, status_code=422)


@router.get("")
def show_report(
    request: Request,
    staff: OfficeStaff,
    session: SessionDep,
    settings: SettingsDep,
    templates: TemplatesDep,
    language: LanguageDep,
    year: str = "",
    until: str = "",
) -> Response:
    """The report page: window picker, totals, and every breakdown as a table with bars."""
    context = _page_context(session, staff, settings, year, until)
    try:
        window = reports.window_from_query(context["form"]["year"], until, today=context["today"])
    except FormError as error:
        return _refused(request, templates, context, error)
    totals = reports.yearly_totals(session, staff, window, settings.tz)
    query = "?" + urlencode({"until": until.strip()}) if until.strip() else ""
    context.update(
        totals=totals,
        window_text=reports.window_text(window, language),
        unit_text=reports.unit_text(totals, language),
        rule_text=reports.RULE_TEXT,
        notes=reports.NOTES,
        xlsx_url=f"/reports/{window.year}.xlsx{query}",
        csv_url=f"/reports/{window.year}.csv{query}",
        checkins_url=f"/reports/{window.year}/checkins.csv{query}",
        charts=_charts(totals, language),
    )
    return templates.render(request, "reports/index.html", context)


def _charts(totals: reports.YearlyTotals, language: str) -> dict[str, Markup]:
    """Inline SVG charts of visits and people for the breakdowns read as a picture (they print, unlike
    CSS bars): horizontal bars by commune, vertical bars by month. The table beside each keeps the numbers."""

    def _(msgid: str) -> str:
        return gettext(language, msgid)

    drawn: dict[str, Markup] = {}
    for breakdown in totals.breakdowns:
        series = [
            (_(exports.VISITS), [row.visits for row in breakdown.rows]),
            (_(exports.PEOPLE), [row.people for row in breakdown.rows]),
        ]
        common: dict[str, Any] = {
            "title": _(breakdown.title),
            "empty_text": _(N_("No check-ins in this window.")),
            "chart_id": f"chart-{breakdown.key}",
            "language": language,
        }
        if breakdown.key == "commune":
            labels = [row.text(language) for row in breakdown.rows]
            drawn["commune"] = Markup(charts.horizontal_bars(labels, series, **common))
        elif breakdown.key == "month":
            svg = charts.vertical_bars(
                [row.key for row in breakdown.rows],
                series,
                axis_title=_(breakdown.column),
                long_labels=[row.text(language) for row in breakdown.rows],
                **common,
            )
            drawn["month"] = Markup(svg)
    return drawn


@router.get("/{year}.xlsx")
def download_xlsx(
    year: str,
    request: Request,
    staff: OfficeStaff,
    session: SessionDep,
    settings: SettingsDep,
    templates: TemplatesDep,
    language: LanguageDep,
    until: str = "",
) -> Response:
    """The report as an XLSX workbook."""
    return _download(request, staff, session, settings, templates, language, year, until, "xlsx")


@router.get("/{year}.csv")
def download_csv(
    year: str,
    request: Request,
    staff: OfficeStaff,
    session: SessionDep,
    settings: SettingsDep,
    templates: TemplatesDep,
    language: LanguageDep,
    until: str = "",
) -> Response:
    """The report as a CSV file."""
    return _download(request, staff, session, settings, templates, language, year, until, "csv")


@router.get("/{year}/checkins.csv")
def download_checkins_csv(
    year: str,
    request: Request,
    staff: OfficeStaff,
    session: SessionDep,
    settings: SettingsDep,
    templates: TemplatesDep,
    language: LanguageDep,
    until: str = "",
) -> Response:
    """Every check-in and walk-in count of the window as one CSV row each, streamed."""
    today = datetime.now(settings.tz).date()
    try:
        window = reports.window_from_query(year, until, today=today)
    except FormError as error:
        return _refused(request, templates, _page_context(session, staff, settings, year, until), error)
    rows = checkin_export.export_rows(session, staff, window, settings.tz)
    # The session dependency closes after the response is sent, so the rows are read while streaming.
    return StreamingResponse(
        checkin_export.csv_chunks(rows, language),
        media_type=exports.CSV_MEDIA_TYPE,
        headers={
            "Content-Disposition": f'attachment; filename="{checkin_export.filename(window)}"',
            "Cache-Control": "no-store",
        },
    )


def _download(
    request: Request,
    staff: Staff,
    session: Session,
    settings: Settings,
    templates: Templates,
    language: str,
    year: str,
    until: str,
    extension: str,
) -> Response:
    today = datetime.now(settings.tz).date()
    try:
        window = reports.window_from_query(year, until, today=today)
    except FormError as error:
        return _refused(request, templates, _page_context(session, staff, settings, year, until), error)
    totals = reports.yearly_totals(session, staff, window, settings.tz)
    if extension == "xlsx":
        body, media_type = exports.to_xlsx(totals, language), exports.XLSX_MEDIA_TYPE
    else:
        body, media_type = exports.to_csv(totals, language), exports.CSV_MEDIA_TYPE
    disposition = f'attachment; filename="{exports.filename(totals, extension)}"'
    return Response(
        body, media_type=media_type, headers={"Content-Disposition": disposition, "Cache-Control": "no-store"}
    )
