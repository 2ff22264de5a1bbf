"""Accessible inline SVG bar charts for the printable report: pure functions, no web or database imports.

Every text comes from the caller, already translated; numbers are formatted for `language` (Vietnamese
1.234 and 8,5 % by default). A chart is `role="img"` with a <title> and a <desc> naming every value, each
bar has its own <title> (a tooltip), and the same numbers stay in the table beside it. Charts with nothing
to show draw their `empty_text` instead of bars, so no scale ever divides by zero. The SVG is sized by its
viewBox (user units are CSS pixels at 100 %) and scales to the column it is placed in, on screen and on A4.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from xml.sax.saxutils import escape, quoteattr

from babel.numbers import format_decimal, format_percent

from qr._text import ELLIPSIS, text_width

Series = tuple[str, Sequence[float]]  # (name, one value per label)
GrowthItem = tuple[str, float | None, float | None, float | None]  # (label, growth, target low, high)

WIDTH = 640
FONT = 12
SERIES_COLOURS = ("#0b6e4f", "#d08c00")  # visits, people: apart in colour and in lightness (greyscale print)
MET, BEHIND, NO_TARGET, BAND = "#0b6e4f", "#9a3412", "#5b6470", "#cfe8dc"
INK, MUTED, GRID = "#1b1f23", "#5b6470", "#d8dde3"


def number(value: float, language: str = "vi") -> str:
    """1.234 in Vietnamese, 1,234 in English."""
    return format_decimal(value, locale=language)


def percent(value: float, language: str = "vi") -> str:
    """A fraction as a percentage with at most one decimal: 0.085 is "8,5 %" in Vietnamese."""
    return format_percent(value, "#,##0.# %", locale=language)


def _text(x: float, y: float, text: str, *, anchor: str = "start", size: int = FONT, cls: str = "") -> str:
    attrs = f' class="{cls}"' if cls else ""
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}" fill="{INK}"{attrs}>'
        f"{escape(text)}</text>"
    )


def _fit(text: str, width: float, size: int = FONT) -> str:
    """`text` shortened with an ellipsis until its estimated width fits (the full text is in <title>)."""
    if text_width(text, size) <= width:
        return text
    while text and text_width(text + ELLIPSIS, size) > width:
        text = text[:-1].rstrip()
    return text + ELLIPSIS


def _open(chart_id: str, height: float, title: str, desc: str, cls: str) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart {cls}" id={quoteattr(chart_id)} role="img" '
        f'viewBox="0 0 {WIDTH} {height:.0f}" width="{WIDTH}" height="{height:.0f}" '
        f'aria-labelledby="{chart_id}-title {chart_id}-desc" font-family="system-ui, sans-serif">'
        f'<title id="{chart_id}-title">{escape(title)}</title>'
        f'<desc id="{chart_id}-desc">{escape(desc)}</desc>'
    )


def _empty(chart_id: str, title: str, empty_text: str) -> str:
    height = 48
    return (
        _open(chart_id, height, title, empty_text, "chart-empty")
        + _text(WIDTH / 2, height / 2 + FONT / 3, empty_text, anchor="middle", cls="chart-empty-text")
        + "</svg>"
    )


def _legend(entries: Sequence[tuple[str, str]], y: float = 4) -> str:
    parts, x = [], 0.0
    for name, colour in entries:
        parts.append(
            f'<rect class="chart-swatch" x="{x:.1f}" y="{y}" width="12" height="12" fill="{colour}"/>'
        )
        parts.append(_text(x + 16, y + 10, name, cls="chart-label"))
        x += 16 + text_width(name, FONT) + 20
    return f'<g class="chart-legend">{"".join(parts)}</g>'


def _nice_max(value: float) -> float:
    """The smallest 1, 2 or 5 times a power of ten that is at least `value` (value > 0)."""
    power = 10 ** math.floor(math.log10(value))
    return next(step * power for step in (1, 2, 5, 10) if step * power >= value)


def _describe(labels: Sequence[str], series: Sequence[Series], language: str) -> str:
    return "; ".join(
        f"{label}: " + ", ".join(f"{name} {number(values[i], language)}" for name, values in series)
        for i, label in enumerate(labels)
    )


def _has_data(labels: Sequence[str], series: Sequence[Series]) -> bool:
    return bool(labels) and any(value > 0 for _name, values in series for value in values)


def horizontal_bars(
    labels: Sequence[str],
    series: Sequence[Series],
    *,
    title: str,
    empty_text: str,
    chart_id: str = "chart",
    language: str = "vi",
) -> str:
    """One row per label (for example communes) with one horizontal bar per series, values at their ends."""
    if not _has_data(labels, series):
        return _empty(chart_id, title, empty_text)
    label_w, value_w, bar_h, gap, top = 190.0, 64.0, 12.0, 10.0, 28.0
    plot_x = label_w + 8
    plot_w = WIDTH - plot_x - value_w
    top_value = max(value for _name, values in series for value in values)
    group = len(series) * bar_h + gap
    height = top + len(labels) * group + 4
    parts = [_open(chart_id, height, title, _describe(labels, series, language), "chart-hbars")]
    parts.append(_legend([(name, SERIES_COLOURS[i % 2]) for i, (name, _v) in enumerate(series)]))
    for row, label in enumerate(labels):
        y0 = top + row * group
        parts.append(
            _text(label_w, y0 + len(series) * bar_h / 2 + FONT / 3, _fit(label, label_w), anchor="end")
        )
        for index, (name, values) in enumerate(series):
            value = values[row]
            width = plot_w * value / top_value if value > 0 else 0.0
            y = y0 + index * bar_h
            tip = f"{label} – {name}: {number(value, language)}"
            parts.append(
                f'<rect class="chart-bar series-{index}" x="{plot_x:.1f}" y="{y:.1f}" width="{width:.2f}" '
                f'height="{bar_h - 2:.0f}" fill="{SERIES_COLOURS[index % 2]}">'
                f"<title>{escape(tip)}</title></rect>"
            )
            parts.append(
                _text(plot_x + width + 4, y + bar_h - 3, number(value, language), size=10, cls="chart-value")
            )
    axis = f'x1="{plot_x:.1f}" y1="{top - 2:.1f}" x2="{plot_x:.1f}" y2="{height - 4:.1f}"'
    parts.append(f'<line {axis} stroke="{MUTED}"/>')
    return "".join(parts) + "</svg>"


def vertical_bars(
    labels: Sequence[str],
    series: Sequence[Series],
    *,
    title: str,
    empty_text: str,
    axis_title: str = "",
    long_labels: Sequence[str] | None = None,
    chart_id: str = "chart",
    language: str = "vi",
) -> str:
    """One group of vertical bars per label (for example months 1-12) on a scale with gridlines;
    `long_labels` ("Tháng 1" for "1") name the groups in the tooltips and the description."""
    if not _has_data(labels, series):
        return _empty(chart_id, title, empty_text)
    names = list(long_labels) if long_labels is not None else list(labels)
    left, right, top, plot_h = 52.0, 8.0, 34.0, 180.0
    bottom = 22.0 + (16.0 if axis_title else 0.0)
    height = top + plot_h + bottom
    plot_w = WIDTH - left - right
    # Four gridline steps of 1, 2 or 5 times a power of ten, at least 1: counts never get a 2,5 tick.
    step = max(1.0, _nice_max(max(value for _name, values in series for value in values) / 4))
    scale = 4 * step
    base = top + plot_h
    parts = [_open(chart_id, height, title, _describe(names, series, language), "chart-vbars")]
    parts.append(_legend([(name, SERIES_COLOURS[i % 2]) for i, (name, _v) in enumerate(series)]))
    for tick in range(5):
        value = scale * tick / 4
        y = base - plot_h * tick / 4
        line = f'x1="{left}" y1="{y:.1f}" x2="{WIDTH - right}" y2="{y:.1f}"'
        parts.append(f'<line class="chart-grid" {line} stroke="{GRID}"/>')
        parts.append(_text(left - 6, y + 4, number(value, language), anchor="end", size=10, cls="chart-tick"))
    group = plot_w / len(labels)
    bar_w = group * 0.76 / len(series)
    for column, label in enumerate(labels):
        x0 = left + column * group + group * 0.12
        for index, (name, values) in enumerate(series):
            value = values[column]
            bar = plot_h * value / scale if value > 0 else 0.0
            tip = f"{names[column]} – {name}: {number(value, language)}"
            parts.append(
                f'<rect class="chart-bar series-{index}" x="{x0 + index * bar_w:.2f}" y="{base - bar:.2f}" '
                f'width="{bar_w - 1:.2f}" height="{bar:.2f}" fill="{SERIES_COLOURS[index % 2]}">'
                f"<title>{escape(tip)}</title></rect>"
            )
        parts.append(
            _text(left + (column + 0.5) * group, base + 15, _fit(label, group), anchor="middle", size=11)
        )
    parts.append(f'<line x1="{left}" y1="{base:.1f}" x2="{WIDTH - right}" y2="{base:.1f}" stroke="{MUTED}"/>')
    if axis_title:
        parts.append(
            _text(left + plot_w / 2, height - 4, axis_title, anchor="middle", size=11, cls="chart-axis-title")
        )
    return "".join(parts) + "</svg>"


def growth_chart(
    items: Sequence[GrowthItem],
    *,
    title: str,
    empty_text: str,
    no_base_text: str,
    growth_text: str,
    target_text: str,
    chart_id: str = "growth",
    language: str = "vi",
) -> str:
    """One row per indicator: its growth (a fraction, 0.085 = 8.5 %) as a bar from zero, over its target
    band [low, high] (either end may be None: open on that side; both None: no target). A growth of None
    (or not finite) has no base year to compare with and reads `no_base_text` instead of a bar."""
    if not items:
        return _empty(chart_id, title, empty_text)
    rows = [
        (label, g if g is not None and math.isfinite(g) else None, low, high) for label, g, low, high in items
    ]
    points = [0.0] + [
        v for _l, g, low, high in rows for v in (g, low, high) if v is not None and math.isfinite(v)
    ]
    lo, hi = min(points), max(points)
    if hi - lo < 0.1:  # nothing but zeros (or a tiny spread): a ±10 % scale, never a zero-width one
        hi = lo + 0.1
    span = hi - lo
    lo, hi = lo - (span * 0.05 if lo < 0 else 0.0), hi + span * 0.05
    label_w, value_w, row_h, top = 210.0, 70.0, 26.0, 30.0
    plot_x = label_w + 10
    plot_w = WIDTH - plot_x - value_w

    def x(value: float) -> float:
        return plot_x + plot_w * (value - lo) / (hi - lo)

    height = top + len(rows) * row_h + 6
    desc = "; ".join(
        f"{label}: "
        + (no_base_text if g is None else percent(g, language))
        + (
            f" ({target_text} {_band_text(low, high, language)})"
            if low is not None or high is not None
            else ""
        )
        for label, g, low, high in rows
    )
    parts = [_open(chart_id, height, title, desc, "chart-growth")]
    parts.append(_legend([(growth_text, MET), (target_text, BAND)]))
    for row, (label, growth, low, high) in enumerate(rows):
        y0 = top + row * row_h
        parts.append(_text(label_w, y0 + row_h / 2 + FONT / 3, _fit(label, label_w), anchor="end"))
        if low is not None or high is not None:
            x1, x2 = x(lo if low is None else low), x(hi if high is None else high)
            parts.append(
                f'<rect class="chart-target" x="{x1:.1f}" y="{y0 + 2:.1f}" width="{max(x2 - x1, 1.0):.1f}" '
                f'height="{row_h - 4:.0f}" fill="{BAND}"><title>{escape(label)} – {escape(target_text)} '
                f"{escape(_band_text(low, high, language))}</title></rect>"
            )
        if growth is None:
            parts.append(_text(x(0) + 6, y0 + row_h / 2 + FONT / 3, no_base_text, cls="chart-no-base"))
            continue
        colour = (
            NO_TARGET
            if low is None and high is None
            else (BEHIND if low is not None and growth < low else MET)
        )
        start, end = sorted((x(0), x(growth)))
        parts.append(
            f'<rect class="chart-bar growth" x="{start:.2f}" y="{y0 + 7:.1f}" width="{end - start:.2f}" '
            f'height="{row_h - 14:.0f}" fill="{colour}"><title>{escape(label)}: '
            f"{escape(percent(growth, language))}</title></rect>"
        )
        parts.append(
            _text(
                WIDTH - 4,
                y0 + row_h / 2 + FONT / 3,
                percent(growth, language),
                anchor="end",
                cls="chart-value",
            )
        )
    parts.append(
        f'<line x1="{x(0):.1f}" y1="{top - 2}" x2="{x(0):.1f}" y2="{height - 4:.1f}" stroke="{MUTED}"/>'
    )
    return "".join(parts) + "</svg>"


def _band_text(low: float | None, high: float | None, language: str) -> str:
    if low is not None and high is not None:
        return f"{percent(low, language)} – {percent(high, language)}"
    return f"≥ {percent(low, language)}" if low is not None else f"≤ {percent(high or 0.0, language)}"
