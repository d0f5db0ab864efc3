"""Render a calibration report (the dict of :func:`reports.build.build_report`) as text, JSON,
Markdown or one self-contained HTML file with inline SVG charts.

Templates live in ``reports/templates/report.{txt,md,html}`` and use ``StrictUndefined``. The
HTML file is ``report.html`` around ``report.body.html`` (its sections; the team's in
``report.team.html``; the macros in ``report.macros.html``; the stylesheet ``report.css``), and
:func:`html_part` renders those pieces for the web pages, which link the same stylesheet; the HTML
environment autoescapes, so every user-supplied string (forecaster names, tags, the title) is
escaped, and the Markdown renderer escapes Markdown's own characters. The charts' geometry comes
from :mod:`reports.charts` (imported only for HTML).
"""

from __future__ import annotations

import functools
import json
import math
import re
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from predictions.questions import sparkline
from predictions.timetext import local_time
from predictions.wording import plural

__all__ = ["FORMATS", "STYLESHEET", "html_part", "render"]

FORMATS = ("text", "json", "md", "html")
TEMPLATE_DIR = Path(__file__).resolve().parent / "templates"
#: The HTML report's stylesheet (inlined in the file; served to the web pages).
STYLESHEET = TEMPLATE_DIR / "report.css"
_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]<>#|~])")
#: How the reports name the question types with sections of their own.
_TYPE_NAMES = {"numeric": "Numeric", "date": "Date", "choice": "Multiple-choice"}


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
    env.filters["plural"] = plural
    env.filters["bars"] = sparkline
    return env


def _fixed(value: float, spec: str) -> str:
    """``value`` formatted by ``spec``, never as a negative (or signed) zero: ``-0.0000`` is
    ``0.0000``, which is what a decomposition term rounding to nothing means."""
    text = format(value, spec)
    return text.lstrip("+-") if float(text.rstrip("%")) == 0 else text


def _pct(value: float | None, digits: int = 0) -> str:
    if value is None:
        return "-"
    return _fixed(100 * value, f".{digits}f") + "%"


def _num(value: float | None, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    return _fixed(value, f".{digits}f")


def _signed(value: float | None, digits: int = 2) -> str:
    if value is None:
        return "-"
    return _fixed(value, f"+.{digits}f")


def _md(value: object) -> str:
    """Escape Markdown's special characters (and line breaks) in a user-supplied string."""
    text = str(value).replace("\r", " ").replace("\n", " ")
    return _MD_SPECIAL.sub(r"\\\1", text)


def _context(
    report: dict[str, Any],
    title: str,
    tz: ZoneInfo | None,
    typed: dict[str, str | None] | None,
    links: dict[str, str] | None = None,
) -> dict[str, Any]:
    tz = tz or ZoneInfo("UTC")
    filters = report["filters"]
    shown = {
        name: (typed or {}).get(name) or (filters[name] and local_time(filters[name], tz))
        for name in ("since", "until")
    }
    types = {kind: t for kind, t in report.get("types", {}).items() if t.get("count")}
    context: dict[str, Any] = {"r": report, "title": title, "charts": None, "tz": tz}
    context.update(shown=shown, typed=types, type_names=_TYPE_NAMES, links=links)
    context["with_types"] = False
    return context


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
    given. JSON keeps UTC ISO 8601. The team view is shown where the report has one
    (``report["team"]``, under ``group_by="forecaster"``)."""
    if fmt == "json":
        return json.dumps(report, indent=2, ensure_ascii=False, allow_nan=False) + "\n"
    context = _context(report, title, tz, typed)
    if fmt == "text":
        return _environment(False).get_template("report.txt").render(context)
    if fmt == "md":
        return _environment(False).get_template("report.md").render(context)
    if fmt == "html":
        from reports.charts import html_charts

        context["charts"] = html_charts(report)
        return _environment(True).get_template("report.html").render(context)
    raise ValueError(f"unknown format {fmt!r}")


def html_part(
    report: dict[str, Any],
    part: str,
    *,
    tz: ZoneInfo | None = None,
    typed: dict[str, str | None] | None = None,
    links: dict[str, str] | None = None,
) -> str:
    """A piece of the HTML report for a web page (escaped HTML): ``body``, every section under
    the title, or ``team``, the team table with each question type's scores by forecaster.
    ``links`` makes names links: ``{"forecaster": "/record/forecasters/"}`` (the name follows,
    URL-encoded). The page links :data:`STYLESHEET`."""
    if part not in ("body", "team"):
        raise ValueError(f"unknown part {part!r}")
    context = _context(report, "", tz, typed, links)
    context["with_types"] = part == "team"
    if part == "body":
        from reports.charts import html_charts

        context["charts"] = html_charts(report)
    return _environment(True).get_template(f"report.{part}.html").render(context)
