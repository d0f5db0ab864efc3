"""The geometry of the HTML report's inline SVG charts, computed from the report dict in plain
Python over its few rows (bins, periods, groups), never per forecast.

Every number drawn is read from the report dict, so the chart says what the JSON says. The time
and group charts come in two drawings, ``narrow`` (phones) and ``wide``, and the page shows one
of them by a CSS media query: one aspect ratio cannot suit both a phone and a desktop. Each
drawing has a viewBox sized to it, so it scales to its container; its ``font`` is the largest
text size (in the drawing's units) the page's CSS gives it, and label spacing, margins and the
thinning of axis labels are computed for that size, so labels never collide. The sizes are chosen
so that a label is at least 11 px on a 390 px wide phone (``tests/reports/test_report_html.py``
checks this, and the collisions, in Chromium).
"""

from __future__ import annotations

import math
import unicodedata
from dataclasses import dataclass
from typing import Any

from reports.build import period_index

__all__ = ["GROUP_CHART_ROWS", "html_charts"]

#: The group chart shows this many groups (those with the most forecasts); the table has all.
GROUP_CHART_ROWS = 12


@dataclass(frozen=True)
class _Drawing:
    name: str
    width: float
    font: float  # the largest text size the page's CSS gives this drawing (drawing units)


_DRAWINGS = (_Drawing("narrow", 360.0, 12.0), _Drawing("wide", 900.0, 17.5))
# A time axis labels every k-th period, k the first of these that leaves room (see _label_step).
_STEPS = {
    "month": (1, 2, 3, 6, 12, 24, 60, 120),
    "quarter": (1, 2, 4, 8, 20, 40),
    "year": (1, 2, 5, 10, 20, 50),
}
_PER_YEAR = {"month": 12, "quarter": 4, "year": 1}


def html_charts(report: dict[str, Any]) -> dict[str, Any]:
    """Everything the HTML template draws: ``reliability`` (one drawing), ``over_time`` and
    ``groups`` (a dict of drawings by name each, or None when there is nothing to draw); per
    question type with scored forecasts (``types``), the ``pit`` histogram and the interval
    ``coverage`` of numeric and date questions, the option ``reliability`` of choice ones."""
    over_time = report.get("over_time", {})
    periods = [p for p in over_time.get("periods", []) if p.get("count")]
    group_by = report.get("filters", {}).get("group_by")
    groups = report.get("groups", []) if group_by not in _PER_YEAR else []
    types: dict[str, dict[str, Any]] = {}
    for kind, section in report.get("types", {}).items():
        if not section.get("count"):
            continue
        overall = section["overall"]
        if kind == "choice":
            types[kind] = {"reliability": _reliability(overall)}
        else:
            types[kind] = {"pit": _pit(overall), "coverage": _coverage(overall)}
    return {
        "types": types,
        "reliability": _reliability(report.get("overall", {})),
        "over_time": {d.name: _time_chart(periods, over_time, d) for d in _DRAWINGS}
        if periods
        else None,
        "groups": {d.name: _group_chart(groups, group_by, d) for d in _DRAWINGS}
        if groups
        else None,
    }


def _width(text: str, font: float) -> float:
    """A generous estimate of a label's advance (DejaVu Sans, the widest common sans)."""
    em = 0.0
    for ch in text:
        if unicodedata.east_asian_width(ch) in "WF":
            em += 1.0
        elif ch.isupper() or ch in "mw@%":
            em += 0.8
        else:
            em += 0.64
    return em * font


def _fit(text: str, room: float, font: float) -> str:
    """``text``, cut with an ellipsis to fit ``room``."""
    if _width(text, font) <= room:
        return text
    while text and _width(text + "…", font) > room:
        text = text[:-1]
    return text + "…"


def _r(value: float) -> float:
    return round(value, 2)


def _scale_top(highest: float) -> tuple[float, float]:
    """The top of a Brier axis covering ``highest`` (and the 0.25 line), and its tick step."""
    highest = max(highest, 0.3)
    step = 0.05 if highest <= 0.3 else 0.1 if highest <= 0.6 else 0.2
    return min(1.0, math.ceil(highest / step - 1e-9) * step), step


def _highest(rows: list[dict[str, Any]], *extra: str) -> float:
    values = [r["brier"] for r in rows] + [r["brier_interval"]["high"] for r in rows]
    values += [r[k] for r in rows for k in extra if r.get(k) is not None]
    return max(values)


# --- reliability diagram ---------------------------------------------------------------------


def _reliability(overall: dict[str, Any]) -> dict[str, Any] | None:
    """Points at (mean forecast, observed frequency) sized by count, Wilson bars, the CORP step
    curve (where the summary has one), the diagonal; the counts in rows under the axis,
    staggered where two would touch."""
    if not overall.get("count"):
        return None
    font, left, top, side = 11.0, 54.0, 12.0, 260.0
    bins = [b for b in overall["calibration"] if b["count"] > 0]
    biggest = max(b["count"] for b in bins)

    def x(v: float) -> float:
        return _r(left + v * side)

    def y(v: float) -> float:
        return _r(top + (1 - v) * side)

    rows_end: list[float] = []
    points = []
    for b in bins:
        cx, label = x(b["mean_forecast"]), str(b["count"])
        half = _width(label, font) / 2 + 2
        row = next((i for i, end in enumerate(rows_end) if cx - half > end), len(rows_end))
        if row == len(rows_end):
            rows_end.append(-math.inf)
        rows_end[row] = cx + half
        points.append(
            {
                "bin": b,
                "cx": cx,
                "cy": y(b["observed"]),
                "r": _r(3 + 7 * math.sqrt(b["count"] / biggest)),
                "bar_top": y(b["ci_high"]),
                "bar_bottom": y(b["ci_low"]),
                "label": label,
                "label_x": _r(min(max(cx, left + half), left + side + 10 - half)),
                "row": row,
            }
        )
    y0 = top + side
    count_y = y0 + 3.1 * font
    for p in points:
        p["label_y"] = _r(count_y + p["row"] * 1.3 * font)
    axis_y = count_y + len(rows_end) * 1.3 * font + 0.4 * font
    curve = overall.get("corp_curve", [])
    steps = []
    for i, point in enumerate(curve):
        x1 = curve[i + 1]["forecast"] if i + 1 < len(curve) else point["forecast"]
        steps.append(f"{x(point['forecast'])},{y(point['recalibrated'])}")
        steps.append(f"{x(x1)},{y(point['recalibrated'])}")
    return {
        "width": left + side + 18,
        "height": _r(axis_y + 0.5 * font),
        "font": font,
        "x0": left,
        "x1": left + side,
        "y0": y0,
        "y1": top,
        "tick_y": _r(y0 + 1.7 * font),
        "count_y": _r(count_y),
        "axis_y": _r(axis_y),
        "points": points,
        "corp": " ".join(steps),
        "ticks": [{"v": v / 10, "x": x(v / 10), "y": y(v / 10)} for v in range(0, 11, 2)],
    }


# --- calibration over time -------------------------------------------------------------------


def _label_step(unit: str, slot: float, font: float) -> tuple[int, bool]:
    """Label every k-th period, k the smallest step whose labels do not touch; whole years are
    labelled by the year alone."""
    per_year = _PER_YEAR[unit]
    for k in _STEPS[unit]:
        as_year = k % per_year == 0
        text = "2025" if as_year else {"month": "2025-12", "quarter": "2025-Q4"}.get(unit, "2025")
        if k * slot >= _width(text, font) + font:
            return k, as_year
    last = _STEPS[unit][-1]  # centuries of months: whole multiples of the last step
    return last * math.ceil((_width("2025", font) + font) / (last * slot)), True


def _key_of(index: int, unit: str) -> str:
    if unit == "month":
        return f"{index // 12}-{index % 12 + 1:02d}"
    if unit == "quarter":
        return f"{index // 4}-Q{index % 4 + 1}"
    return str(index)


def _time_chart(
    periods: list[dict[str, Any]], over_time: dict[str, Any], d: _Drawing
) -> dict[str, Any]:
    """Brier per period with its 95% interval, the rolling Brier, the 0.25 line of always saying
    50%, and the count per period as bars underneath, on an axis where every period (empty ones
    too) has the same width."""
    unit, f = over_time["unit"], d.font
    index = [period_index(p["key"], unit) for p in periods]
    first, slots = index[0], index[-1] - index[0] + 1
    top_value, step = _scale_top(_highest(periods, "rolling_brier"))
    yticks = [round(i * step, 2) for i in range(int(round(top_value / step)) + 1)]
    x0 = _width("0.00", f) + 0.7 * f
    x1 = d.width - max(f, _width("2025-Q4", f) / 2)
    slot = (x1 - x0) / slots
    b_top = 2.0 * f
    b_bottom = b_top + (190.0 if d.name == "narrow" else 300.0)
    c_top = b_bottom + 2.4 * f
    c_bottom = c_top + (60.0 if d.name == "narrow" else 90.0)

    def xc(i: int) -> float:
        return _r(x0 + (i - first + 0.5) * slot)

    def yb(v: float) -> float:
        return _r(b_bottom - v / top_value * (b_bottom - b_top))

    most = max(p["count"] for p in periods)
    labelled = all(_width(str(p["count"]), f) + 2 <= slot for p in periods)
    bar_room = (c_bottom - c_top) - (1.2 * f if labelled else 0)
    radius = _r(min(max(slot * 0.3, 2.0), 0.3 * f))
    cap = _r(min(slot * 0.3, 0.4 * f))
    bar_w = min(max(slot * 0.7, 1.0), 3.0 * f)
    points, bars = [], []
    for i, p in zip(index, periods, strict=True):
        ci = p["brier_interval"]
        cx = xc(i)
        points.append(
            {"p": p, "cx": cx, "cy": yb(p["brier"]), "low": yb(ci["low"]), "high": yb(ci["high"])}
        )
        h = _r(max(1.0, bar_room * p["count"] / most))
        bars.append(
            {
                "p": p,
                "x": _r(cx - bar_w / 2),
                "w": _r(bar_w),
                "y": _r(c_bottom - h),
                "h": h,
                "label_y": _r(c_bottom - h - 0.3 * f),
            }
        )
    rolling, previous = [], None
    for i, p in zip(index, periods, strict=True):
        if p.get("rolling_brier") is None:
            previous = None
            continue
        command = "L" if previous == i - 1 else "M"
        rolling.append(f"{command}{xc(i)},{yb(p['rolling_brier'])}")
        previous = i
    # (first, last) of each run of empty periods
    runs = [(a + 1, b - 1) for a, b in zip(index, index[1:], strict=False) if b - a > 1]
    gaps = [
        {
            "x": _r(x0 + (start - first) * slot),
            "w": _r((end - start + 1) * slot),
            "text": _key_of(start, unit) + (f" to {_key_of(end, unit)}" if end > start else ""),
        }
        for start, end in runs
    ]
    k, as_year = _label_step(unit, slot, f)
    per_year = _PER_YEAR[unit]
    labels = [
        {"x": xc(i), "text": str(i // per_year) if as_year else _key_of(i, unit)}
        for i in range(first, index[-1] + 1)
        if i % k == 0
    ]
    if not labels:  # fewer periods than one step: label the first
        labels = [{"x": xc(first), "text": _key_of(first, unit)}]
    return {
        "name": d.name,
        "width": d.width,
        "height": _r(c_bottom + 1.6 * f),
        "font": f,
        "x0": _r(x0),
        "x1": _r(x1),
        "b_top": _r(b_top),
        "b_bottom": _r(b_bottom),
        "c_top": _r(c_top),
        "c_bottom": _r(c_bottom),
        "half": yb(0.25),
        "yticks": [{"v": v, "y": yb(v)} for v in yticks],
        "points": points,
        "radius": radius,
        "cap": cap,
        "rolling": " ".join(rolling),
        "bars": bars,
        "labelled": labelled,
        "most": most,
        "most_y": _r(c_bottom - bar_room),
        "gaps": gaps,
        "labels": labels,
        "label_y": _r(c_bottom + 1.3 * f),
        "unit": unit,
    }


# --- the grouped view (tag, forecaster, horizon) ---------------------------------------------


def _group_chart(groups: list[dict[str, Any]], group_by: str, d: _Drawing) -> dict[str, Any]:
    """Brier per group with its 95% interval and count, the groups with the most forecasts
    (horizons in their order, others largest first). Narrow: the name above its bar; wide: names
    in a column on the left."""
    shown = sorted(groups, key=lambda g: -g["count"])[:GROUP_CHART_ROWS]
    if group_by == "horizon":
        shown = [g for g in groups if g in shown]
    f = d.font
    top_value, step = _scale_top(_highest(shown))
    stacked = d.name == "narrow"
    n_room = max(_width(f"n={g['count']}", f) for g in shown)
    tick_half = _width("0.00", f) / 2
    if stacked:
        x0, x1 = tick_half, d.width - tick_half
        name_room = x1 - x0 - n_room - f
    else:
        names = max(_width(str(g["key"]), f) for g in shown)
        name_room = min(names, d.width * 0.3)
        x0 = name_room + f
        x1 = d.width - max(n_room + f, tick_half)
    row_h = (1.2 * f + 14) if stacked else max(1.9 * f, 24)
    y_top = 1.6 * f

    def xv(v: float) -> float:
        return _r(x0 + v / top_value * (x1 - x0))

    rows = []
    for i, g in enumerate(shown):
        row_top = y_top + 0.4 * f + i * row_h
        cy = row_top + (1.2 * f + 6 if stacked else row_h / 2)
        ci = g["brier_interval"]
        rows.append(
            {
                "g": g,
                "name": _fit(str(g["key"]), name_room, f),
                "name_x": _r(x0 if stacked else x0 - 0.5 * f),
                "name_y": _r(row_top + f if stacked else cy + 0.35 * f),
                "n_x": _r(x1 if stacked else x1 + 0.6 * f),
                "cx": xv(g["brier"]),
                "cy": _r(cy),
                "low": xv(ci["low"]),
                "high": xv(ci["high"]),
            }
        )
    y_bottom = y_top + 0.4 * f + len(shown) * row_h
    ticks = [round(i * step, 2) for i in range(int(round(top_value / step)) + 1)]
    # Thin the tick labels until they do not touch.
    every = 1
    while every < len(ticks) and (xv(ticks[every]) - xv(0)) < _width("0.00", f) + 0.6 * f:
        every += 1
    return {
        "name": d.name,
        "width": d.width,
        "height": _r(y_bottom + 1.6 * f),
        "font": f,
        "stacked": stacked,
        "x0": _r(x0),
        "x1": _r(x1),
        "y_top": _r(y_top),
        "y_bottom": _r(y_bottom),
        "half": xv(0.25),
        "ticks": [{"v": v, "x": xv(v), "label": i % every == 0} for i, v in enumerate(ticks)],
        "tick_y": _r(y_bottom + 1.3 * f),
        "rows": rows,
        "radius": _r(0.3 * f),
        "cap": _r(0.35 * f),
        "shown": len(shown),
        "total": len(groups),
    }


# --- numeric and date questions: PIT histogram, interval coverage ----------------------------

#: The small drawings (PIT, coverage): as wide as the reliability diagram, their text as large.
_SMALL_WIDTH, _SMALL_FONT = 332.0, 11.0


def _pit(overall: dict[str, Any]) -> dict[str, Any]:
    """The PIT histogram: a bar per tenth of [0, 1] as tall as its count, and the dashed line of
    a flat histogram (every tenth holding a tenth of the forecasts)."""
    counts = overall["pit_histogram"]
    f, width = _SMALL_FONT, _SMALL_WIDTH
    total, most = sum(counts), max(counts)
    top = max(most, math.ceil(total / len(counts)))
    x0 = _width(str(top), f) + 0.8 * f
    x1 = width - f
    y1, y0 = 2.0 * f, 2.0 * f + 160.0
    slot = (x1 - x0) / len(counts)

    def y(v: float) -> float:
        return _r(y0 - v / top * (y0 - y1))

    bars = [
        {
            "count": c,
            "low": i / len(counts),
            "high": (i + 1) / len(counts),
            "x": _r(x0 + i * slot + 0.1 * slot),
            "w": _r(0.8 * slot),
            "y": y(c),
            "h": _r(y0 - y(c)),
        }
        for i, c in enumerate(counts)
    ]
    ticks = [{"v": v / 10, "x": _r(x0 + v / 10 * (x1 - x0))} for v in range(0, 11, 2)]
    return {
        "width": width,
        "height": _r(y0 + 3.6 * f),
        "font": f,
        "x0": _r(x0),
        "x1": _r(x1),
        "y0": _r(y0),
        "y1": _r(y1),
        "flat": y(total / len(counts)),
        "top": top,
        "bars": bars,
        "ticks": ticks,
        "tick_y": _r(y0 + 1.7 * f),
        "axis_y": _r(y0 + 3.1 * f),
    }


def _coverage(overall: dict[str, Any]) -> dict[str, Any]:
    """Each central interval's coverage on a 0-100% axis: a point at the share of outcomes it
    held, its Wilson 95% bar, and a mark at the level it should hold."""
    f, width = _SMALL_FONT, _SMALL_WIDTH
    x0 = _width("90%", f) + 0.8 * f
    x1 = width - _width("100%", f) / 2 - 0.5 * f
    row_h, y1 = 2.4 * f, 1.2 * f
    y0 = y1 + row_h * len(overall["intervals"])

    def x(v: float) -> float:
        return _r(x0 + v * (x1 - x0))

    rows = [
        {
            "i": i,
            "label": f"{round(100 * t['level'])}%",
            "cy": _r(y1 + (i + 0.5) * row_h),
            "cx": x(t["share"]),
            "low": x(t["ci_low"]),
            "high": x(t["ci_high"]),
            "level_x": x(t["level"]),
        }
        for i, t in enumerate(overall["intervals"])
    ]
    return {
        "width": width,
        "height": _r(y0 + 3.0 * f),
        "font": f,
        "x0": _r(x0),
        "x1": _r(x1),
        "y0": _r(y0),
        "y1": _r(y1),
        "rows": rows,
        "half": _r(0.35 * row_h),
        "ticks": [{"v": v / 4, "x": x(v / 4)} for v in range(5)],
        "tick_y": _r(y0 + 1.3 * f),
        "axis_y": _r(y0 + 2.7 * f),
    }
