"""server/charts.py: bars counted and measured from the parsed SVG, empty states, escaping, number format."""

from __future__ import annotations

import math
from xml.etree import ElementTree as ET

import pytest

from server.charts import growth_chart, horizontal_bars, number, percent, vertical_bars

NS = {"s": "http://www.w3.org/2000/svg"}
COMMUNES = ["Xã Văn Quan", "Xã Tri Lễ", "Cấp tỉnh (không thuộc xã)"]
SERIES = [("Lượt", [1234, 617, 0]), ("Người", [800, 400, 100])]


def _svg(text: str) -> ET.Element:
    root = ET.fromstring(text)
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    return root


def _bars(root: ET.Element, series: int | None = None) -> list[ET.Element]:
    bars = [r for r in root.iterfind(".//s:rect", NS) if "chart-bar" in r.get("class", "").split()]
    if series is None:
        return bars
    return [r for r in bars if f"series-{series}" in r.get("class", "").split()]


def _texts(root: ET.Element) -> list[str]:
    return [t.text or "" for t in root.iterfind(".//s:text", NS)]


def test_horizontal_bars_one_per_label_and_series_with_widths_proportional_to_values() -> None:
    root = _svg(horizontal_bars(COMMUNES, SERIES, title="Theo xã", empty_text="Không có số liệu"))
    assert len(_bars(root)) == 6
    visits = [float(r.get("width", "")) for r in _bars(root, 0)]
    people = [float(r.get("width", "")) for r in _bars(root, 1)]
    assert visits[1] == pytest.approx(visits[0] / 2, abs=0.01)
    assert visits[2] == 0
    assert people[0] == pytest.approx(visits[0] * 800 / 1234, abs=0.01)  # one scale for both series
    assert max(visits + people) <= 640
    assert "1.234" in _texts(root) and COMMUNES[2] in _texts(root)


def test_vertical_bars_twelve_months_two_series_heights_proportional_and_on_the_baseline() -> None:
    months = [str(m) for m in range(1, 13)]
    visits = [0, 5, 10, 20, 0, 0, 0, 0, 0, 40, 0, 0]
    people = [0, 5, 8, 10, 0, 0, 0, 0, 0, 25, 0, 0]
    svg = vertical_bars(
        months,
        [("Lượt", visits), ("Người", people)],
        title="Theo tháng",
        empty_text="-",
        axis_title="Tháng",
        long_labels=[f"Tháng {m}" for m in months],
    )
    root = _svg(svg)
    assert len(_bars(root)) == 24
    heights = [float(r.get("height", "")) for r in _bars(root, 0)]
    assert heights[3] == pytest.approx(2 * heights[2]) and heights[9] == pytest.approx(4 * heights[2])
    assert heights[0] == 0
    bottoms = {round(float(r.get("y", "")) + float(r.get("height", "")), 1) for r in _bars(root)}
    assert len(bottoms) == 1  # every bar stands on the same baseline
    assert "Tháng" in _texts(root) and "40" in _texts(root)  # the top gridline is 4 x 10
    assert _bars(root, 0)[9].findtext("s:title", namespaces=NS) == "Tháng 10 – Lượt: 40"


def test_no_data_draws_the_empty_message_and_no_bars() -> None:
    for svg in (
        horizontal_bars([], [("Lượt", []), ("Người", [])], title="Theo xã", empty_text="Chưa có lượt nào"),
        vertical_bars(
            ["1", "2"], [("Lượt", [0, 0]), ("Người", [0, 0])], title="T", empty_text="Chưa có lượt nào"
        ),
        growth_chart(
            [],
            title="Tăng trưởng",
            empty_text="Chưa có lượt nào",
            no_base_text="x",
            growth_text="g",
            target_text="t",
        ),
    ):
        root = _svg(svg)
        assert _bars(root) == []
        assert "Chưa có lượt nào" in _texts(root)
        assert "chart-empty" in root.get("class", "")


def test_labels_are_escaped_and_keep_their_diacritics() -> None:
    label = 'Thôn <Bản> "Cưởm" & Nà Lầu'
    svg = horizontal_bars([label], [("Lượt", [3])], title="A & B", empty_text="-")
    assert "<Bản>" not in svg
    root = _svg(svg)
    assert label in _texts(root)
    assert root.find("s:title", NS) is not None and root.find("s:title", NS).text == "A & B"  # type: ignore[union-attr]
    assert any(label in (t.text or "") for t in root.iterfind(".//s:rect/s:title", NS))


def test_long_labels_are_shortened_with_an_ellipsis_and_kept_whole_in_the_tooltip() -> None:
    label = "Trung tâm Văn hóa - Thể thao xã Tri Lễ và các thôn lân cận thuộc huyện Văn Quan"
    root = _svg(horizontal_bars([label], [("Lượt", [3])], title="T", empty_text="-"))
    shown = next(t for t in _texts(root) if t.startswith("Trung tâm"))
    assert shown.endswith("…") and len(shown) < len(label)
    assert any(label in (t.text or "") for t in root.iterfind(".//s:rect/s:title", NS))


def test_chart_is_an_image_named_by_its_title_and_described_with_every_value() -> None:
    root = _svg(horizontal_bars(COMMUNES, SERIES, title="Theo xã", empty_text="-", chart_id="chart-commune"))
    assert root.get("role") == "img"
    assert root.get("aria-labelledby") == "chart-commune-title chart-commune-desc"
    desc = root.find("s:desc", NS)
    assert desc is not None and desc.get("id") == "chart-commune-desc"
    assert "Xã Văn Quan: Lượt 1.234, Người 800" in (desc.text or "")
    legend = [t.text for t in root.iterfind(".//s:g[@class='chart-legend']/s:text", NS)]
    assert legend == ["Lượt", "Người"]


def test_numbers_are_written_the_vietnamese_way() -> None:
    assert number(1234567) == "1.234.567"
    assert number(1234, "en") == "1,234"
    assert percent(0.085) == "8,5 %"
    assert percent(-0.1) == "-10 %"


GROWTH_TEXTS = {
    "title": "Tăng trưởng so với mục tiêu",
    "empty_text": "Chưa có chỉ tiêu",
    "no_base_text": "Chưa có năm gốc",
    "growth_text": "Tăng trưởng",
    "target_text": "Mục tiêu",
}


def test_growth_chart_draws_a_bar_per_indicator_with_a_base_and_a_band_per_target() -> None:
    items = [
        ("Lượt người tham gia", 0.09, 0.08, 0.10),
        ("Số người khác nhau", 0.02, 0.08, 0.10),
        ("Lượt sách báo phục vụ", None, 0.08, 0.10),  # no base year
        ("Câu lạc bộ hoạt động", -0.05, None, None),  # no target
    ]
    root = _svg(growth_chart(items, **GROWTH_TEXTS))
    bars = _bars(root)
    assert len(bars) == 3
    bands = [r for r in root.iterfind(".//s:rect", NS) if r.get("class") == "chart-target"]
    assert len(bands) == 3
    assert _texts(root).count("Chưa có năm gốc") == 1
    met, behind, untargeted = (r.get("fill") for r in bars)
    assert met != behind and untargeted not in {met, behind}
    widths = [float(r.get("width", "")) for r in bars]
    assert widths[0] == pytest.approx(widths[1] * 4.5, rel=0.01)
    assert "9 %" in _texts(root) and "-5 %" in _texts(root)
    band = bands[0]
    assert float(band.get("width", "")) == pytest.approx(widths[0] * 0.02 / 0.09, rel=0.01)


@pytest.mark.parametrize(
    "items",
    [
        [("A", 0.0, None, None), ("B", 0.0, 0.0, 0.0)],
        [("A", None, None, None)],
        [("A", math.inf, 0.08, 0.1), ("B", math.nan, None, None)],
    ],
)
def test_growth_chart_never_divides_by_zero_and_reads_infinite_growth_as_no_base(
    items: list[tuple[str, float | None, float | None, float | None]],
) -> None:
    root = _svg(growth_chart(items, **GROWTH_TEXTS))
    for rect in root.iterfind(".//s:rect", NS):
        assert all(math.isfinite(float(rect.get(a, "0"))) for a in ("x", "y", "width", "height"))
    if any(g is None or not math.isfinite(g) for _l, g, _lo, _hi in items):
        assert "Chưa có năm gốc" in _texts(root)
