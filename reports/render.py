"""Render a calibration report (the dict of :func:`reports.build.build_report`) as text, JSON,
Markdown or one self-contained HTML file with inline SVG charts.

Templates live in ``reports/templates/report.{txt,md,html}`` and use ``StrictUndefined``; the HTML
environment autoescapes, so every user-supplied string (forecaster names, tags, the title) is
escaped, and the Markdown renderer escapes Markdown's own characters. The chart geometry is
computed here, in plain Python over the report's few rows (bins, periods), never per forecast.
"""

from __future__ import annotations

import functools
import json
import math
import re
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from predictions.timetext import local_time

__all__ = ["FORMATS", "render"]

FORMATS = ("text", "json", "md", "html")
TEMPLATE_DIR = Path(__file__).resolve().parent / "templates"
_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]<>#|~])")


@functools.cache
def _environment(autoescape: bool) -> Any:
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATE_DIR)),
        undefined=jinja2.StrictUndefined,
        autoescape=autoescape,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["pct"] = _pct
    env.filters["num"] = _num
    env.filters["md"] = _md
    env.filters["signed"] = _signed
    env.filters["local_time"] = local_time
    return env


def _pct(value: float | None, digits: int = 0) -> str:
    if value is None:
        return "-"
    return f"{100 * value:.{digits}f}%"


def _num(value: float | None, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    return f"{value:.{digits}f}"


def _signed(value: float | None, digits: int = 2) -> str:
    if value is None:
        return "-"
    return f"{value:+.{digits}f}"


def _md(value: object) -> str:
    """Escape Markdown's special characters (and line breaks) in a user-supplied string."""
    text = str(value).replace("\r", " ").replace("\n", " ")
    return _MD_SPECIAL.sub(r"\\\1", text)


def render(
    report: dict[str, Any],
    fmt: str,
    *,
    title: str = "Calibration report",
    tz: ZoneInfo | None = None,
    typed: dict[str, str | None] | None = None,
) -> str:
    """The report in ``fmt`` (one of :data:`FORMATS`): its times in ``tz`` (default UTC), its
    ``since`` and ``until`` filters as the user ``typed`` them (``{"since": "2026-12"}``), if
    given. JSON keeps UTC ISO 8601."""
    if fmt == "json":
        return json.dumps(report, indent=2, ensure_ascii=False, allow_nan=False) + "\n"
    tz = tz or ZoneInfo("UTC")
    filters = report["filters"]
    shown = {
        name: (typed or {}).get(name) or (filters[name] and local_time(filters[name], tz))
        for name in ("since", "until")
    }
    context = {"r": report, "title": title, "charts": None, "tz": tz, "shown": shown}
    if fmt == "text":
        return _environment(False).get_template("report.txt").render(context)
    if fmt == "md":
        return _environment(False).get_template("report.md").render(context)
    if fmt == "html":
        context["charts"] = {
            "reliability": _reliability_chart(report),
            "over_time": _over_time_chart(report),
        }
        return _environment(True).get_template("report.html").render(context)
    raise ValueError(f"unknown format {fmt!r}")


# --- chart geometry ---------------------------------------------------------------------------

_W, _H, _PAD = 320.0, 320.0, 40.0


def _x(value: float) -> float:
    return round(_PAD + value * (_W - 2 * _PAD), 2)


def _y(value: float, top: float = 1.0) -> float:
    return round(_H - _PAD - (value / top) * (_H - 2 * _PAD), 2)


def _reliability_chart(report: dict[str, Any]) -> dict[str, Any] | None:
    """Points at (mean forecast, observed frequency) sized by count, Wilson bars, the CORP step
    curve, the diagonal and the axes."""
    overall = report.get("overall", {})
    if not overall.get("count"):
        return None
    bins = [b for b in overall["calibration"] if b["count"] > 0]
    biggest = max(b["count"] for b in bins)
    points = [
        {
            "cx": _x(b["mean_forecast"]),
            "cy": _y(b["observed"]),
            "r": round(3 + 7 * math.sqrt(b["count"] / biggest), 2),
            "bar_top": _y(b["ci_high"]),
            "bar_bottom": _y(b["ci_low"]),
            "label_y": round(min(_y(b["ci_low"]) + 13, _H - _PAD - 2), 2),
            "count": b["count"],
            "tip": (
                f"{_pct(b['low'])}-{_pct(b['high'])}: n={b['count']}, mean forecast "
                f"{_pct(b['mean_forecast'], 1)}, came true {_pct(b['observed'], 1)} "
                f"(95% CI {_pct(b['ci_low'])}-{_pct(b['ci_high'])})"
            ),
        }
        for b in bins
    ]
    curve = overall["corp_curve"]
    steps: list[str] = []
    for i, point in enumerate(curve):
        x0 = point["forecast"]
        x1 = curve[i + 1]["forecast"] if i + 1 < len(curve) else x0
        steps.append(f"{_x(x0)},{_y(point['recalibrated'])}")
        steps.append(f"{_x(x1)},{_y(point['recalibrated'])}")
    ticks = [
        {"v": v / 10, "x": _x(v / 10), "y": _y(v / 10), "label": f"{v * 10}%"}
        for v in range(0, 11, 2)
    ]
    return {
        "width": _W,
        "height": _H,
        "pad": _PAD,
        "x0": _x(0),
        "x1": _x(1),
        "y0": _y(0),
        "y1": _y(1),
        "points": points,
        "corp": " ".join(steps),
        "ticks": ticks,
    }


def _over_time_chart(report: dict[str, Any]) -> dict[str, Any] | None:
    """Brier per period (dots, line) and the rolling Brier (line), with the 0.25 line of always
    saying 50%."""
    periods = [p for p in report.get("over_time", {}).get("periods", []) if p.get("count")]
    if not periods:
        return None
    width = max(_W, min(900.0, 60.0 + 36.0 * len(periods)))
    top = max(0.5, max(p["brier"] for p in periods) * 1.1)
    span = width - 2 * _PAD
    step = span / max(1, len(periods) - 1) if len(periods) > 1 else 0.0

    def px(i: int) -> float:
        return round(_PAD + (i * step if len(periods) > 1 else span / 2), 2)

    dots = [
        {
            "cx": px(i),
            "cy": _y(p["brier"], top),
            "tip": f"{p['key']}: Brier {p['brier']:.3f} (n={p['count']})",
        }
        for i, p in enumerate(periods)
    ]
    rolling = [
        f"{px(i)},{_y(p['rolling_brier'], top)}"
        for i, p in enumerate(periods)
        if p.get("rolling_brier") is not None
    ]
    every = max(1, math.ceil(len(periods) / 8))
    labels = [{"x": px(i), "text": p["key"]} for i, p in enumerate(periods) if i % every == 0]
    yticks = [
        {"y": _y(v, top), "label": f"{v:.2f}"} for v in (0.0, 0.1, 0.2, 0.3, 0.4, 0.5) if v <= top
    ]
    return {
        "width": round(width, 2),
        "height": _H,
        "pad": _PAD,
        "x0": _PAD,
        "x1": round(width - _PAD, 2),
        "y0": _y(0, top),
        "half": _y(0.25, top),
        "line": " ".join(f"{d['cx']},{d['cy']}" for d in dots),
        "rolling": " ".join(rolling),
        "dots": dots,
        "labels": labels,
        "yticks": yticks,
        "window": report["over_time"]["window"],
        "unit": report["over_time"]["unit"],
    }
