"""Native Excel charts in the yearly workbook: which sheets, which cells the series read, the titles."""

from __future__ import annotations

import io
import re
import zipfile

import pytest
from sqlmodel import Session

from server.config import Settings
from server.models import Role
from server.services.exports import to_xlsx
from server.services.reports import YearlyTotals, report_window, yearly_totals
from tests.factories import make_staff
from tests.test_reports import TODAY, TZ, build_dataset, utc


@pytest.fixture
def totals(session: Session, settings: Settings) -> YearlyTotals:
    build_dataset(session, settings)
    window = report_window(2025, until=None, today=TODAY)
    return yearly_totals(session, make_staff(session, Role.admin), window, TZ, now=utc(2026, 11, 24, 3, 5))


def _charts(body: bytes) -> dict[str, str]:
    with zipfile.ZipFile(io.BytesIO(body)) as book:
        return {
            name: book.read(name).decode("utf-8")
            for name in book.namelist()
            if re.fullmatch(r"xl/charts/chart\d+\.xml", name)
        }


def _refs(chart: str) -> list[str]:
    return re.findall(r"<c:f>([^<]*)</c:f>", chart)


def test_commune_and_month_sheets_each_have_a_column_chart_of_visits_and_people(totals: YearlyTotals) -> None:
    charts = list(_charts(to_xlsx(totals, "vi")).values())
    assert len(charts) == 2
    communes = next(b for b in totals.breakdowns if b.key == "commune")
    last = len(communes.rows) + 1  # row 1 is the header; the Total row is not charted
    by_commune, by_month = sorted(charts, key=lambda c: "Theo tháng" in c)
    assert "<c:barChart>" in by_commune and '<c:barDir val="col"/>' in by_commune
    assert _refs(by_commune) == [
        "'Theo xã'!$B$1",
        f"'Theo xã'!$A$2:$A${last}",
        f"'Theo xã'!$B$2:$B${last}",
        "'Theo xã'!$C$1",
        f"'Theo xã'!$A$2:$A${last}",
        f"'Theo xã'!$C$2:$C${last}",
    ]
    assert _refs(by_month) == [
        "'Theo tháng'!$B$1",
        "'Theo tháng'!$A$2:$A$13",
        "'Theo tháng'!$B$2:$B$13",
        "'Theo tháng'!$C$1",
        "'Theo tháng'!$A$2:$A$13",
        "'Theo tháng'!$C$2:$C$13",
    ]
    assert "Lượt và người theo xã, phường" in by_commune
    assert "Lượt và người theo tháng" in by_month


def test_chart_titles_follow_the_report_language(totals: YearlyTotals) -> None:
    charts = "".join(_charts(to_xlsx(totals, "en")).values())
    assert "Visits and people by commune" in charts and "Visits and people by month" in charts
    assert "'By month'!$B$2:$B$13" in charts


def test_a_window_without_data_still_charts_the_twelve_months(session: Session) -> None:
    window = report_window(2025, until=None, today=TODAY)
    empty = yearly_totals(session, make_staff(session, Role.admin), window, TZ)
    charts = list(_charts(to_xlsx(empty, "vi")).values())
    assert len(charts) == 1  # no commune rows: no commune chart
    assert "'Theo tháng'!$B$2:$B$13" in charts[0]
