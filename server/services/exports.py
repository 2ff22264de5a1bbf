"""File versions of a yearly report: an XLSX workbook for people and a CSV file for programs.

XLSX: a first sheet "Tổng hợp" (summary: unit, window, rule, generation time, totals of visits, people and
walk-ins), then one sheet per breakdown with its header on row 1, one row per item, a Total row, and below
a blank row the window, the rule and the notes. Counts are numbers, never text. The commune and month
sheets carry a native column chart of visits and people over their own cells (xlsx_charts.py).

CSV: UTF-8 with a BOM (so Excel shows Vietnamese diacritics), comma separated, CRLF line ends, one header
row and one flat table that a program can read without skipping anything. Every row carries its unit, the
statistical year and the window's first and last day (ISO dates, inclusive), so files from several units or
years can be concatenated; the rule is stated in the headers ("Lượt (điểm danh và vãng lai)", "Người (số
người khác nhau)", "Vãng lai (...)"). The first data row is the summary (all visits in the window); then each
breakdown's rows, without per-table total rows (they would be counted twice when summing). Walk-ins counted
at the door are visits (and their own column), never people (services/counting.py).
"""

from __future__ import annotations

import csv
import io
from typing import Any

import xlsxwriter

from server.errors import N_
from server.i18n import gettext
from server.labels import LIBRARY_METRICS
from server.models import LibraryMetric
from server.services import xlsx_charts
from server.services.indicators import RULES_TEXT, STATUS_TEXT, AnnualTables, Evaluation, Kind
from server.services.reports import NOTES, RULE_TEXT, Breakdown, YearlyTotals, unit_text, window_text
from server.services.xlsx_charts import add_breakdown_chart

XLSX_MEDIA_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
CSV_MEDIA_TYPE = "text/csv; charset=utf-8"
SUMMARY = N_("Summary")
INDICATORS = N_("Indicators")
TOTAL = N_("Total")
VISITS = N_("Visits")
PEOPLE = N_("People")
WALK_INS = N_("Walk-ins")
_FORBIDDEN_IN_SHEET_NAMES = str.maketrans({c: " " for c in "[]:*?/\\"})


def filename(totals: YearlyTotals, extension: str) -> str:
    return f"diemdanh-{totals.window.year}.{extension}"


def _sheet_name(text: str) -> str:
    return text.translate(_FORBIDDEN_IN_SHEET_NAMES).strip("'")[:31]


def to_xlsx(
    totals: YearlyTotals,
    language: str,
    evaluation: Evaluation | None = None,
    tables: AnnualTables | None = None,
) -> bytes:
    """The report as an XLSX workbook: a summary sheet, the plan's indicators against their targets (with
    a chart of growth against the target), one sheet per breakdown, then the clubs and whether each was
    regularly active, the libraries' figures, and the sources, window and rules."""
    buffer = io.BytesIO()
    workbook = xlsxwriter.Workbook(buffer, {"in_memory": True})
    formats = {
        "title": workbook.add_format({"bold": True, "font_size": 14}),
        "bold": workbook.add_format({"bold": True}),
        "header": workbook.add_format({"bold": True, "bg_color": "#E8F6EF", "bottom": 1}),
        "number": workbook.add_format({"num_format": "#,##0"}),
        "total": workbook.add_format({"bold": True, "top": 1}),
        "total_number": workbook.add_format({"bold": True, "top": 1, "num_format": "#,##0"}),
        "note": workbook.add_format({"italic": True, "font_color": "#5B6470"}),
    }
    _summary_sheet(workbook, formats, totals, language)
    if evaluation is not None:
        formats["percent"] = workbook.add_format({"num_format": "0.0"})
        _indicator_sheet(workbook, formats, evaluation, language)
    for breakdown in totals.breakdowns:
        _breakdown_sheet(workbook, formats, totals, breakdown, language)
    if tables is not None:
        _table_sheet(workbook, formats, language, *_club_table(tables, language))
        _table_sheet(workbook, formats, language, *_library_table(tables, language))
    if evaluation is not None:
        _sources_sheet(workbook, formats, totals, evaluation, language)
    workbook.close()
    return buffer.getvalue()


def _summary_sheet(workbook: Any, formats: dict[str, Any], totals: YearlyTotals, language: str) -> None:
    def _(msgid: str) -> str:
        return gettext(language, msgid)

    sheet = workbook.add_worksheet(_sheet_name(_(SUMMARY)))
    sheet.write_string(0, 0, _(N_("Participation in lifelong-learning events")), formats["title"])
    facts: list[tuple[str, str | int]] = [
        (_(N_("Unit")), unit_text(totals, language)),
        (_(N_("Reporting window")), window_text(totals.window, language)),
        (_(N_("Rule")), _(RULE_TEXT)),
        (_(N_("Generated at")), totals.generated_at.strftime("%d/%m/%Y %H:%M")),
        (_(N_("Total visits")), totals.visits),
        (_(N_("Total people")), totals.people),
        (_(N_("Of the visits: walk-ins counted at the door")), totals.walk_ins),
    ]
    for row, (name, value) in enumerate(facts, start=2):
        sheet.write_string(row, 0, name, formats["bold"])
        if isinstance(value, int):
            sheet.write_number(row, 1, value, formats["number"])
        else:
            sheet.write_string(row, 1, str(safe_cell(value)))
    for offset, note in enumerate(NOTES):
        sheet.write_string(len(facts) + 3 + offset, 0, _(note), formats["note"])
    sheet.set_column(0, 0, max(len(name) for name, _value in facts) + 4)
    sheet.set_column(1, 1, 100)


def _indicator_sheet(workbook: Any, formats: dict[str, Any], evaluation: Evaluation, language: str) -> None:
    """One row per indicator: this year, last year over the same window, the change, the target and the
    status; numbers as numbers (percent as 12.5, not text) so the office can work with them."""

    def _(msgid: str) -> str:
        return gettext(language, msgid)

    sheet = workbook.add_worksheet(_sheet_name(_(INDICATORS)))
    header = [
        _(N_("Indicator")),
        _(N_("This year")),
        _(N_("Last year, same window")),
        _(N_("Change (% or points)")),
        _(N_("Target: at least (%)")),
        _(N_("Target: up to (%)")),
        _(N_("Status")),
        _(N_("Numerator")),
        _(N_("Denominator")),
        _(N_("People (this year)")),
        _(N_("What is counted")),
    ]
    for column, text in enumerate(header):
        sheet.write_string(0, column, text, formats["header"])
    for row, r in enumerate(evaluation.results, start=1):
        cells: list[object] = [
            _(r.definition.title),
            r.value,
            r.previous,
            r.change,
            r.target.low,
            r.target.high,
            _(STATUS_TEXT[r.status]),
            r.numerator,
            r.denominator,
            r.people,
            _(r.definition.counts),
        ]
        for column, value in enumerate(cells):
            if isinstance(value, int | float):
                sheet.write_number(row, column, round(float(value), 1), formats["percent"])
            elif isinstance(value, str):
                sheet.write_string(row, column, str(safe_cell(value)))
    rules = evaluation.rules
    notes = [
        window_text(evaluation.window, language),
        _(RULES_TEXT) % {"months": rules.active_months, "visits": rules.active_min_visits},
        _(
            N_(
                "Growth is (this year − last year) ÷ last year over the same window; with nothing last year "
                "there is no base to grow from. A share's change is in percentage points."
            )
        ),
    ]
    for offset, note in enumerate(notes, start=len(evaluation.results) + 2):
        sheet.write_string(offset, 0, note, formats["note"])
    sheet.set_column(0, 0, 60)
    sheet.set_column(1, 9, 14)
    sheet.set_column(10, 10, 80)
    growth = [i for i, r in enumerate(evaluation.results, start=1) if r.definition.kind == Kind.growth]
    if growth:
        xlsx_charts.add_growth_chart(
            workbook, sheet, growth[0], growth[-1], language, at_row=len(notes) + row + 3
        )


Table = tuple[str, list[str], list[list[object]]]


def _club_table(tables: AnnualTables, language: str) -> Table:
    def _(msgid: str) -> str:
        return gettext(language, msgid)

    header = [
        _(N_("Club")),
        _(N_("Venue")),
        _(N_("Months with attended sessions")),
        _(N_("Attended sessions")),
        _(N_("Regularly active")),
    ]
    rows: list[list[object]] = [
        [r.club.name, r.venue.name, r.months, r.sessions, _(N_("yes")) if r.regular else _(N_("no"))]
        for r in tables.clubs
    ]
    return _(N_("Clubs")), header, rows


def _library_table(tables: AnnualTables, language: str) -> Table:
    def _(msgid: str) -> str:
        return gettext(language, msgid)

    metrics = list(LibraryMetric)
    header = [_(N_("Venue"))] + [_(LIBRARY_METRICS[m]) for m in metrics] + [_(N_("Copies sent in rotation"))]
    rows: list[list[object]] = [
        [r.venue.name, *(r.figures[m] for m in metrics), r.rotation_copies] for r in tables.libraries
    ]
    return _(N_("Library figures")), header, rows


def _table_sheet(
    workbook: Any,
    formats: dict[str, Any],
    language: str,
    title: str,
    header: list[str],
    rows: list[list[object]],
) -> None:
    sheet = workbook.add_worksheet(_sheet_name(title))
    for column, text in enumerate(header):
        sheet.write_string(0, column, text, formats["header"])
    for row, cells in enumerate(rows, start=1):
        for column, value in enumerate(cells):
            if isinstance(value, int):
                sheet.write_number(row, column, value, formats["number"])
            else:
                sheet.write_string(row, column, str(safe_cell(value)))
    if not rows:
        sheet.write_string(1, 0, gettext(language, N_("Nothing recorded in this window.")), formats["note"])
    sheet.set_column(0, 1, 40)
    sheet.set_column(2, len(header), 18)


def _sources_sheet(
    workbook: Any, formats: dict[str, Any], totals: YearlyTotals, evaluation: Evaluation, language: str
) -> None:
    """Where each number comes from, the window and every rule used: the sheet an auditor reads first."""

    def _(msgid: str) -> str:
        return gettext(language, msgid)

    sheet = workbook.add_worksheet(_sheet_name(_(N_("Sources and rules"))))
    rules = evaluation.rules
    lines: list[tuple[str, str]] = [
        (_(N_("Unit")), unit_text(totals, language)),
        (_(N_("Reporting window")), window_text(evaluation.window, language)),
        (_(N_("Rule")), _(RULE_TEXT)),
        (
            _(N_("Rules of the indicators")),
            _(RULES_TEXT) % {"months": rules.active_months, "visits": rules.active_min_visits},
        ),
        (
            _(N_("Sources")),
            _(
                N_(
                    "Check-ins and walk-in counts recorded in Điểm danh (every channel, late batches "
                    "by the day of the scan); library figures, rotations and school-library records "
                    "entered by hand under Library figures; clubs and their sessions."
                )
            ),
        ),
        (_(N_("Counting rules")), "docs/indicators.md"),
    ]
    lines += [
        (_(r.definition.title), f"{_(r.definition.counts)} ÷ {_(r.definition.base)}")
        for r in evaluation.results
    ]
    for row, (name, value) in enumerate(lines):
        sheet.write_string(row, 0, str(safe_cell(name)), formats["bold"])
        sheet.write_string(row, 1, str(safe_cell(value)))
    sheet.set_column(0, 0, 50)
    sheet.set_column(1, 1, 120)


def _breakdown_sheet(
    workbook: Any, formats: dict[str, Any], totals: YearlyTotals, breakdown: Breakdown, language: str
) -> None:
    def _(msgid: str) -> str:
        return gettext(language, msgid)

    sheet = workbook.add_worksheet(_sheet_name(_(breakdown.title)))
    headers = [_(breakdown.column), _(VISITS), _(PEOPLE), _(WALK_INS)]
    for column, text in enumerate(headers):
        sheet.write_string(0, column, text, formats["header"])
    names = [str(safe_cell(row.text(language))) for row in breakdown.rows]
    for index, (row, name) in enumerate(zip(breakdown.rows, names, strict=True), start=1):
        sheet.write_string(index, 0, name)
        sheet.write_number(index, 1, row.visits, formats["number"])
        sheet.write_number(index, 2, row.people, formats["number"])
        sheet.write_number(index, 3, row.walk_ins, formats["number"])
    last = len(breakdown.rows) + 1
    sheet.write_string(last, 0, _(TOTAL), formats["total"])
    # Every check-in falls in exactly one row, so the visits add up; people are distinct over the window.
    sheet.write_number(last, 1, totals.visits, formats["total_number"])
    sheet.write_number(last, 2, totals.people, formats["total_number"])
    sheet.write_number(last, 3, totals.walk_ins, formats["total_number"])
    notes = [window_text(totals.window, language), _(RULE_TEXT), *(_(note) for note in NOTES)]
    for offset, note in enumerate(notes):
        sheet.write_string(last + 2 + offset, 0, note, formats["note"])
    sheet.set_column(0, 0, min(60, max(len(text) for text in [*names, *headers[:1], _(TOTAL)]) + 2))
    sheet.set_column(1, 3, 12)
    sheet.freeze_panes(1, 0)
    add_breakdown_chart(workbook, sheet, breakdown.key, len(breakdown.rows), language)


# What a spreadsheet may read as the start of a formula: OWASP's list, and a NUL, which some readers drop
# before looking at the next character.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\x00")


def safe_cell(value: object) -> object:
    """A text cell that a spreadsheet would run as a formula (a venue named `=HYPERLINK(...)`) gets a
    leading apostrophe, as OWASP advises for CSV; numbers stay numbers. Every text cell of the CSV files
    and every name people typed or imported in the XLSX (written as strings, never formulas) goes here."""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


def to_csv(totals: YearlyTotals, language: str) -> bytes:
    """The report as one flat CSV table (see the module docstring for its layout)."""

    def _(msgid: str) -> str:
        return gettext(language, msgid)

    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")

    def write(row: list[object]) -> None:
        writer.writerow([safe_cell(value) for value in row])

    write(
        [
            _(N_("Unit")),
            _(N_("Statistical year")),
            _(N_("From")),
            _(N_("To (cut-off date)")),
            _(N_("Table")),
            _(N_("Item")),
            _(N_("Visits (check-ins and walk-ins)")),
            _(N_("People (number of different people)")),
            _(N_("Walk-ins (counted at the door, included in the visits)")),
        ]
    )
    window = totals.window
    common = [unit_text(totals, language), window.year, window.start.isoformat(), window.end.isoformat()]
    write([*common, _(SUMMARY), _(TOTAL), totals.visits, totals.people, totals.walk_ins])
    for breakdown in totals.breakdowns:
        for row in breakdown.rows:
            row_values = [row.visits, row.people, row.walk_ins]
            write([*common, _(breakdown.title), row.text(language), *row_values])
    return ("\ufeff" + out.getvalue()).encode("utf-8")
