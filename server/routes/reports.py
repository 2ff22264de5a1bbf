"""Routes under /reports: the yearly report page, its XLSX and CSV downloads, and the CSV of every check-in
(admin and office)."""

from __future__ import annotations

from typing import Any

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
from server.routes import chooser
from server.services import checkin_export, exports, indicators, reports
from server.services.areas import Area
from server.services.reports import ReportWindow
from server.templating import Templates

router = APIRouter(prefix="/reports", include_in_schema=False)


def _chosen(
    request: Request, session: Session, staff: Staff, settings: Settings, language: str, year: str = ""
) -> tuple[dict[str, Any], ReportWindow | None, Area | None]:
    """The chooser's context and the window and area it names (or the refusal); `year` from the path."""
    query = dict(request.query_params)
    if year:
        query["year"] = year
    context = chooser.choice(session, staff, settings, query, language)
    context["totals"] = None
    try:
        window, area = chooser.window_and_area(session, staff, context)
    except FormError as error:
        context.update(errors=error.fields, message=MESSAGES[error.code])
        return context, None, None
    chooser.stated(context, window, area, language)
    return context, window, area


@router.get("")
def show_report(
    request: Request,
    staff: OfficeStaff,
    session: SessionDep,
    settings: SettingsDep,
    templates: TemplatesDep,
    language: LanguageDep,
) -> Response:
    """The annual report page: the chooser, the plan's indicators against their targets, the totals and
    every breakdown, with charts that print."""
    context, window, area = _chosen(request, session, staff, settings, language)
    if window is None or area is None:
        return templates.render(request, "reports/index.html", context, status_code=422)
    totals = reports.yearly_totals(session, staff, window, settings.tz, area=area)
    evaluation = indicators.evaluate(session, staff, window, area, settings.tz)
    query = "?" + chooser.query_string({k: v for k, v in context["form"].items() if k != "year"})
    context.update(
        query=chooser.query_string(context["form"]),
        totals=totals,
        evaluation=evaluation,
        unit_text=context["area_text"],
        report_rule_text=reports.RULE_TEXT,
        notes=reports.NOTES,
        xlsx_url=f"/reports/{window.year}.xlsx{query}",
        csv_url=f"/reports/{window.year}.csv{query}",
        checkins_url=f"/reports/{window.year}/checkins.csv{query}",
        charts=_charts(totals, language) | {"growth": _growth_chart(evaluation, language)},
    )
    return templates.render(request, "reports/index.html", context)


def _growth_chart(evaluation: indicators.Evaluation, language: str) -> Markup:
    """The growth indicators' growth over their target bands (fractions), "no base" where there is none."""

    def _(msgid: str) -> str:
        return gettext(language, msgid)

    items = [
        (
            _(r.definition.title),
            None if r.change is None else r.change / 100,
            None if r.target.low is None else r.target.low / 100,
            None if r.target.high is None else r.target.high / 100,
        )
        for r in evaluation.results
        if r.definition.kind == indicators.Kind.growth
    ]
    return Markup(
        charts.growth_chart(
            items,
            title=_(N_("Growth against the target")),
            empty_text=_(N_("Nothing recorded in this window.")),
            no_base_text=_(N_("No base")),
            growth_text=_(N_("Growth")),
            target_text=_(N_("Target")),
            chart_id="chart-growth",
            language=language,
        )
    )


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
) -> Response:
    """The annual report as an XLSX workbook: indicators against targets, then every breakdown."""
    return _download(request, staff, session, settings, templates, language, year, "xlsx")


@router.get("/{year}.csv")
def download_csv(
    year: str,
    request: Request,
    staff: OfficeStaff,
    session: SessionDep,
    settings: SettingsDep,
    templates: TemplatesDep,
    language: LanguageDep,
) -> Response:
    """The report as a CSV file."""
    return _download(request, staff, session, settings, templates, language, year, "csv")


@router.get("/{year}/checkins.csv")
def download_checkins_csv(
    year: str,
    request: Request,
    staff: OfficeStaff,
    session: SessionDep,
    settings: SettingsDep,
    templates: TemplatesDep,
    language: LanguageDep,
) -> Response:
    """Every check-in and walk-in count of the window as one CSV row each, streamed."""
    context, window, area = _chosen(request, session, staff, settings, language, year)
    if window is None or area is None:
        return templates.render(request, "reports/index.html", context, status_code=422)
    rows = checkin_export.export_rows(session, staff, window, settings.tz, area=area)
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
    extension: str,
) -> Response:
    context, window, area = _chosen(request, session, staff, settings, language, year)
    if window is None or area is None:
        return templates.render(request, "reports/index.html", context, status_code=422)
    totals = reports.yearly_totals(session, staff, window, settings.tz, area=area)
    if extension == "xlsx":
        evaluation = indicators.evaluate(session, staff, window, area, settings.tz)
        body, media_type = (
            exports.to_xlsx(
                totals,
                language,
                evaluation,
                indicators.annual_tables(session, staff, window, area, settings.tz),
            ),
            exports.XLSX_MEDIA_TYPE,
        )
    else:
        body, media_type = exports.to_csv(totals, language), exports.CSV_MEDIA_TYPE
    disposition = f'attachment; filename="{exports.filename(totals, extension)}"'
    return Response(
        body, media_type=media_type, headers={"Content-Disposition": disposition, "Cache-Control": "no-store"}
    )
