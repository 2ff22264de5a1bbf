"""Native Excel charts for the yearly workbook: visits and people as two column series beside a table.

The series point at the sheet's own cells (categories in column A, visits in B, people in C, from row 2),
so the chart is Excel's own: it redraws when a number is edited, and prints with the sheet.
"""

from __future__ import annotations

from typing import Any

from server.errors import N_
from server.i18n import gettext

# Breakdown key -> chart title (msgid). Only these sheets get a chart: the ones read as a picture.
CHARTED = {
    "commune": N_("Visits and people by commune"),
    "month": N_("Visits and people by month"),
}
VISITS_COLOUR, PEOPLE_COLOUR = "#1F7A54", "#E0A526"
GROWTH_TITLE = N_("Growth against the target (%)")


def add_breakdown_chart(workbook: Any, sheet: Any, key: str, item_rows: int, language: str) -> bool:
    """A clustered column chart of the breakdown table on `sheet` (header on row 1, `item_rows` items
    below it), placed to the right of the table; False when this breakdown has none or nothing to chart."""
    if key not in CHARTED or item_rows == 0:
        return False
    name = sheet.get_name()
    first, last = 1, item_rows  # zero-based rows of the items, without the header and the Total row
    chart = workbook.add_chart({"type": "column"})
    for column, colour in ((1, VISITS_COLOUR), (2, PEOPLE_COLOUR)):
        chart.add_series(
            {
                "name": [name, 0, column],
                "categories": [name, first, 0, last, 0],
                "values": [name, first, column, last, column],
                "fill": {"color": colour},
                "gap": 80,
            }
        )
    chart.set_title({"name": gettext(language, CHARTED[key]), "name_font": {"size": 12}})
    chart.set_legend({"position": "bottom"})
    chart.set_y_axis({"num_format": "#,##0", "major_gridlines": {"visible": True}})
    if item_rows > 12:  # long commune names: slanted labels rather than every other one dropped
        chart.set_x_axis({"num_font": {"rotation": -45}})
    # Wide enough that every category keeps its label: about 40 px a category, never under 480.
    chart.set_size({"width": max(480, 40 * item_rows), "height": 320})
    sheet.insert_chart(1, 5, chart)
    return True


def add_growth_chart(workbook: Any, sheet: Any, first: int, last: int, language: str, *, at_row: int) -> None:
    """A bar chart on the indicators sheet: each growth indicator's growth (column D) beside the bottom of
    its target band (column E), rows `first`-`last`; an indicator with no base has an empty cell, no bar."""
    name = sheet.get_name()
    chart = workbook.add_chart({"type": "bar"})
    for column, colour in ((3, VISITS_COLOUR), (4, PEOPLE_COLOUR)):
        chart.add_series(
            {
                "name": [name, 0, column],
                "categories": [name, first, 0, last, 0],
                "values": [name, first, column, last, column],
                "fill": {"color": colour},
                "gap": 60,
            }
        )
    chart.set_title({"name": gettext(language, GROWTH_TITLE), "name_font": {"size": 12}})
    chart.set_legend({"position": "bottom"})
    chart.set_x_axis({"num_format": "0", "major_gridlines": {"visible": True}})
    chart.set_size({"width": 720, "height": 60 * (last - first + 1) + 120})
    sheet.insert_chart(at_row, 0, chart)
