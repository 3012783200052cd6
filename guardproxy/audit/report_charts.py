"""Inline SVG charts for the audit report: no scripts, no external assets, every string escaped.

Each function returns one ``<svg>`` element with a ``<title>`` (what screen readers and hover
show), axes and a legend where the chart has series, or ``empty_chart`` when there is nothing to
draw. Text from the trail (labels, entry and policy names) only ever goes through ``esc``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape

VERDICT_COLORS = {"pass": "#4c9f70", "flagged": "#e0a526", "redacted": "#4a7fc1", "blocked": "#c8423b"}
SERIES_COLORS = ("#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7",
                 "#9c755f", "#bab0ac")
PERCENTILE_COLORS = {"p50": "#9ecae1", "p95": "#4292c6", "p99": "#08519c"}
FONT = 'font-family="Helvetica, Arial, sans-serif" font-size="12"'


def esc(value: object) -> str:
    """Text or attribute content, escaped (quotes too)."""
    return escape(str(value), quote=True)


def _svg(width: int, height: int, title: str, body: list[str]) -> str:
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}" role="img" {FONT}><title>{esc(title)}</title>'
            + "".join(body) + "</svg>")


def _text(x: float, y: float, text: object, anchor: str = "start", extra: str = "") -> str:
    return f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}"{extra}>{esc(text)}</text>'


def nice_ticks(maximum: float, count: int = 5) -> list[float]:
    """Round axis ticks from 0 to at least ``maximum``."""
    if maximum <= 0:
        return [0.0, 1.0]
    raw = maximum / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    return [step * i for i in range(math.ceil(maximum / step) + 1)]


def _number(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 or value == int(value) else f"{value:.2g}" if value < 1 else f"{value:.1f}"


def empty_chart(title: str, message: str, width: int = 720) -> str:
    """A dashed frame saying there is nothing to show, and why."""
    return _svg(width, 70, title, [
        f'<rect x="1" y="1" width="{width - 2}" height="68" fill="#fafafa" stroke="#999" stroke-dasharray="6 4"/>',
        _text(width / 2, 40, message, "middle", ' fill="#555" font-size="14"'),
    ])


def stacked_columns(title: str, columns: Sequence[str], series: Sequence[str], values: dict[str, list[int]],
                    y_title: str, x_title: str) -> str:
    """Columns (time buckets) stacked by series, with a y axis of counts and a legend below."""
    width, left, top, plot_h, legend_cols = 960, 56, 16, 240, 2
    plot_w = width - left - 20
    legend_top = top + plot_h + 52
    height = legend_top + 18 * math.ceil(len(series) / legend_cols) + 8
    totals = [sum(values[s][i] for s in series) for i in range(len(columns))]
    ticks = nice_ticks(max(totals, default=0))
    scale = plot_h / ticks[-1]
    slot = plot_w / max(len(columns), 1)
    bar = min(max(slot * 0.8, 1.0), 48.0)
    body = _y_axis(left, top, plot_w, plot_h, ticks, y_title)
    for i in range(len(columns)):
        y = float(top + plot_h)
        for s_index, name in enumerate(series):
            count = values[name][i]
            if count:
                h = count * scale
                y -= h
                body.append(f'<rect x="{left + i * slot + (slot - bar) / 2:.1f}" y="{y:.1f}" width="{bar:.1f}" '
                            f'height="{h:.1f}" fill="{SERIES_COLORS[s_index % len(SERIES_COLORS)]}">'
                            f'<title>{esc(columns[i])}: {esc(name)}: {count}</title></rect>')
    every = max(1, math.ceil(len(columns) / 8))
    for i in range(0, len(columns), every):
        body.append(_text(left + i * slot + slot / 2, top + plot_h + 16, columns[i], "middle"))
    body.append(_text(left + plot_w / 2, top + plot_h + 36, x_title, "middle", ' font-weight="bold"'))
    column_w = plot_w / legend_cols
    for i, name in enumerate(series):
        x, y = left + (i % legend_cols) * column_w, legend_top + (i // legend_cols) * 18
        body.append(f'<rect x="{x:.1f}" y="{y}" width="12" height="12" '
                    f'fill="{SERIES_COLORS[i % len(SERIES_COLORS)]}"/>')
        body.append(f'<text x="{x + 18:.1f}" y="{y + 10}"><title>{esc(name)}</title>{esc(_shorten(name, 62))}</text>')
    return _svg(width, height, title, body)


def _shorten(text: str, most: int) -> str:
    return text if len(text) <= most else text[: most - 1] + "\u2026"


def _y_axis(left: float, top: float, plot_w: float, plot_h: float, ticks: Sequence[float], title: str) -> list[str]:
    body = [f'<line x1="{left}" y1="{top}" x2="{left}" y2="{top + plot_h}" stroke="#333"/>',
            f'<line x1="{left}" y1="{top + plot_h}" x2="{left + plot_w}" y2="{top + plot_h}" stroke="#333"/>']
    for tick in ticks:
        y = top + plot_h - tick / ticks[-1] * plot_h
        body.append(f'<line x1="{left - 4}" y1="{y:.1f}" x2="{left + plot_w}" y2="{y:.1f}" stroke="#e3e3e3"/>')
        body.append(_text(left - 7, y + 4, _number(tick), "end"))
    body.append(_text(14, top + plot_h / 2, title, "middle",
                      f' font-weight="bold" transform="rotate(-90 14 {top + plot_h / 2:.1f})"'))
    return body


def horizontal_bars(title: str, rows: Sequence[tuple[str, float, str]], x_title: str,
                    value_text: Sequence[str] | None = None) -> str:
    """One bar per row (label, value, color), the value written at the bar's end; a row with an
    empty label is a gap between groups."""
    label_w, row_h, top, width = 260, 24, 10, 900
    plot_w = width - label_w - 130
    height = top + row_h * len(rows) + 44
    ticks = nice_ticks(max((v for _, v, _ in rows), default=0))
    body = []
    for tick in ticks:
        x = label_w + tick / ticks[-1] * plot_w
        body.append(f'<line x1="{x:.1f}" y1="{top}" x2="{x:.1f}" y2="{top + row_h * len(rows)}" stroke="#e3e3e3"/>')
        body.append(_text(x, top + row_h * len(rows) + 16, _number(tick), "middle"))
    for i, (label, value, color) in enumerate(rows):
        y = top + i * row_h
        if not label:
            continue  # a spacer between groups of rows
        w = value / ticks[-1] * plot_w
        body.append(_text(label_w - 8, y + 16, label, "end"))
        body.append(f'<rect x="{label_w}" y="{y + 4}" width="{max(w, 0.5):.1f}" height="{row_h - 8}" fill="{color}">'
                    f'<title>{esc(label)}: {esc(value_text[i] if value_text else _number(value))}</title></rect>')
        body.append(_text(label_w + w + 6, y + 16, value_text[i] if value_text else _number(value)))
    body.append(f'<line x1="{label_w}" y1="{top}" x2="{label_w}" y2="{top + row_h * len(rows)}" stroke="#333"/>')
    body.append(_text(label_w + plot_w / 2, height - 6, x_title, "middle", ' font-weight="bold"'))
    return _svg(width, height, title, body)


def grouped_bars(title: str, rows: Sequence[tuple[str, dict[str, float]]], keys: Sequence[str],
                 colors: dict[str, str], x_title: str) -> str:
    """Per row (a guard), one thin bar per key (p50, p95, p99), with a legend and an x axis."""
    label_w, bar_h, gap, top, width = 260, 12, 12, 30, 900
    plot_w = width - label_w - 110
    group_h = bar_h * len(keys) + gap
    height = top + group_h * len(rows) + 44
    ticks = nice_ticks(max((v for _, values in rows for v in values.values()), default=0))
    body = _legend_row(label_w, 8, keys, [colors[k] for k in keys])
    for tick in ticks:
        x = label_w + tick / ticks[-1] * plot_w
        body.append(f'<line x1="{x:.1f}" y1="{top}" x2="{x:.1f}" y2="{top + group_h * len(rows)}" stroke="#e3e3e3"/>')
        body.append(_text(x, top + group_h * len(rows) + 16, _number(tick), "middle"))
    for i, (label, values) in enumerate(rows):
        y = top + i * group_h
        body.append(_text(label_w - 8, y + group_h / 2 + 2, label, "end"))
        for k_index, key in enumerate(keys):
            w = values[key] / ticks[-1] * plot_w
            by = y + k_index * bar_h
            body.append(f'<rect x="{label_w}" y="{by:.1f}" width="{max(w, 0.5):.1f}" height="{bar_h - 1}" '
                        f'fill="{colors[key]}"><title>{esc(label)} {esc(key)}: {values[key]:.2f} ms</title></rect>')
            body.append(_text(label_w + w + 4, by + bar_h - 1, f"{values[key]:.2f}", extra=' font-size="10"'))
    body.append(f'<line x1="{label_w}" y1="{top}" x2="{label_w}" y2="{top + group_h * len(rows)}" stroke="#333"/>')
    body.append(_text(label_w + plot_w / 2, height - 6, x_title, "middle", ' font-weight="bold"'))
    return _svg(width, height, title, body)


def _legend_row(x: float, y: float, names: Sequence[str], colors: Sequence[str]) -> list[str]:
    body = []
    for i, (name, color) in enumerate(zip(names, colors, strict=True)):
        body.append(f'<rect x="{x + i * 90:.1f}" y="{y}" width="12" height="12" fill="{color}"/>')
        body.append(_text(x + i * 90 + 18, y + 10, name))
    return body


def matrix(title: str, rows: Sequence[str], columns: Sequence[str], counts: dict[tuple[str, str], int],
           row_title: str, column_title: str) -> str:
    """A count per (row, column) cell: agreeing cells (row == column) in grey, the others in orange,
    darker for more."""
    cell_w, cell_h, left, top = 92, 36, 150, 56
    width, height = left + cell_w * len(columns) + 20, top + cell_h * len(rows) + 12
    largest = max(counts.values(), default=0) or 1
    body = [_text(left + cell_w * len(columns) / 2, 16, column_title, "middle", ' font-weight="bold"'),
            _text(12, top + cell_h * len(rows) / 2, row_title, "middle",
                  f' font-weight="bold" transform="rotate(-90 12 {top + cell_h * len(rows) / 2:.1f})"')]
    for j, column in enumerate(columns):
        body.append(_text(left + j * cell_w + cell_w / 2, top - 8, column, "middle"))
    for i, row in enumerate(rows):
        body.append(_text(left - 8, top + i * cell_h + cell_h / 2 + 4, row, "end"))
        for j, column in enumerate(columns):
            count = counts.get((row, column), 0)
            strength = count / largest
            if row == column:
                fill = f"rgb({int(245 - 110 * strength)},{int(245 - 110 * strength)},{int(245 - 100 * strength)})"
            else:
                fill = f"rgb(255,{int(245 - 150 * strength)},{int(235 - 200 * strength)})" if count else "#fcfcfc"
            body.append(f'<rect x="{left + j * cell_w}" y="{top + i * cell_h}" width="{cell_w}" height="{cell_h}" '
                        f'fill="{fill}" stroke="#bbb"><title>{esc(row)} / {esc(column)}: {count}</title></rect>')
            weight = ' font-weight="bold"' if count and row != column else ""
            body.append(_text(left + j * cell_w + cell_w / 2, top + i * cell_h + cell_h / 2 + 4, count, "middle",
                              weight))
    return _svg(width, height, title, body)


def timeline(title: str, rows: Sequence[tuple[str, float, float, str]], start_label: str, end_label: str) -> str:
    """One bar per row (label, start, end, note) with start and end as fractions of the period."""
    label_w, row_h, top, width = 260, 26, 10, 900
    plot_w = width - label_w - 30
    height = top + row_h * len(rows) + 40
    body = [f'<rect x="{label_w}" y="{top}" width="{plot_w}" height="{row_h * len(rows)}" fill="#f7f7f7"/>']
    for i, (label, start, end, note) in enumerate(rows):
        y = top + i * row_h
        x = label_w + start * plot_w
        w = max((end - start) * plot_w, 3.0)
        color = SERIES_COLORS[i % len(SERIES_COLORS)]
        body.append(_text(label_w - 8, y + 17, label, "end"))
        body.append(f'<rect x="{x:.1f}" y="{y + 5}" width="{w:.1f}" height="{row_h - 10}" fill="{color}">'
                    f'<title>{esc(label)}: {esc(note)}</title></rect>')
        inside = w > 7 * len(note)
        body.append(_text(x + 5 if inside else min(x + w + 5, width - 5), y + 17, note,
                          "start" if inside or x + w + 5 < width - 7 * len(note) else "end",
                          ' fill="#fff"' if inside else ""))
    axis_y = top + row_h * len(rows)
    body.append(f'<line x1="{label_w}" y1="{axis_y}" x2="{label_w + plot_w}" y2="{axis_y}" stroke="#333"/>')
    body.append(_text(label_w, axis_y + 16, start_label, "start"))
    body.append(_text(label_w + plot_w, axis_y + 16, end_label, "end"))
    body.append(_text(label_w + plot_w / 2, axis_y + 32, "time (UTC)", "middle", ' font-weight="bold"'))
    return _svg(width, height, title, body)
