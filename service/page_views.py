"""What the forecast pages show, computed in plain Python for the templates: the rows of a list
of forecasts (:func:`row_of`), the forecast page's context (:func:`forecast_context`) and its
history charts.

:func:`history_charts` gives the geometry of a forecast's history chart as inline SVG (no
script, no ``style=``: presentation attributes only, as the CSP demands): the probability over
time per forecaster (binary), each forecaster's median with its 10-90% band (numeric and date),
each option's probability over time per forecaster (choice). Like the report's charts
(:mod:`reports.charts`) each chart comes in two drawings, ``narrow`` (phones) and ``wide``, one of
them shown by a CSS media query, each with a viewBox sized to it and its text size in drawing
units chosen so that labels stay readable (at least 11 px) at 390 px and on a desktop.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

import resolvers.review as reviews
from predictions import records, store
from predictions.accounts import UserRow, allows
from predictions.checks import evidence_record, proposal_record
from predictions.models import Evidence, Proposal
from predictions.questions import Question, format_read, format_value, quantile
from predictions.records import EstimateRow, ForecastQuery, ForecastRow, Standing, is_market
from predictions.shown import (
    BLIND_TAG,
    beyond_bounds,
    closing_words,
    format_estimate,
    format_others,
    format_outcome,
    hidden_from,
    quantile_points,
    question_line,
    relative,
)
from predictions.timetext import local_due, local_time

__all__ = ["PALETTE", "Row", "forecast_context", "history_charts", "row_of", "rows_of"]

_TZ = ZoneInfo("UTC")  # the pages show times in UTC
_EVIDENCE_SHOWN = 20
_ESTIMATES_SHOWN = 50

#: Series colours (Okabe-Ito, told apart with colour blindness), then repeated.
PALETTE = ("#0072b2", "#d55e00", "#009e73", "#cc79a7", "#e69f00", "#56b4e9", "#5b6673", "#000000")


@dataclass(frozen=True)
class _Drawing:
    name: str
    width: float
    height: float
    font: float


_DRAWINGS = (_Drawing("narrow", 360.0, 230.0, 12.0), _Drawing("wide", 640.0, 280.0, 14.0))
_MAX_CHOICE_CHARTS = 6  # a choice question draws the options of this many forecasters at most


@dataclass(frozen=True)
class _Series:
    """One line: (time, value, low, high) steps, values on the chart's 0..1 scale."""

    name: str
    color: str
    steps: tuple[tuple[datetime, float, float | None, float | None], ...]
    mine: bool
    market: bool


def history_charts(
    forecast: ForecastRow, estimates: Sequence[EstimateRow], viewer: str, now: datetime
) -> list[dict[str, Any]]:
    """The charts of ``forecast``'s history over the ``estimates`` the viewer may see: one chart
    (binary, numeric, date) or one per forecaster (choice, the viewer's first); none without
    estimates. Each: ``title``, ``legend`` (``name``, ``color``, ``latest``, ``mine``) and
    ``drawings`` by name."""
    if not estimates:
        return []
    question = forecast.question
    ordered = sorted(estimates, key=lambda e: (e.made_at, e.id))
    start = min(ordered[0].made_at, forecast.created_at)
    end = forecast.resolved_at if forecast.status != "open" and forecast.resolved_at else now
    end = max(end, ordered[-1].made_at, start + timedelta(days=1))
    people = _by_forecaster(ordered, viewer)
    if question is not None and question.kind == "choice":
        charts = []
        for name, rows in people[:_MAX_CHOICE_CHARTS]:
            series = [
                _series(option, i, rows, viewer == name, lambda e, i=i: (e.values[i], None, None))
                for i, option in enumerate(question.options)
                if all(e.values is not None for e in rows)
            ]
            title = f"{name}{' (you)' if name == viewer else ''}"
            charts.append(_chart(title, series, forecast, start, end))
        return charts
    series = [
        _series(name, i, rows, name == viewer, _reader(question))
        for i, (name, rows) in enumerate(people)
    ]
    return [_chart(None, series, forecast, start, end)]


def _by_forecaster(
    ordered: Sequence[EstimateRow], viewer: str
) -> list[tuple[str, list[EstimateRow]]]:
    """Each forecaster's estimates in time order: the viewer first, then people, then markets."""
    groups: dict[str, list[EstimateRow]] = {}
    for e in ordered:
        groups.setdefault(e.forecaster, []).append(e)
    return sorted(groups.items(), key=lambda kv: (kv[0] != viewer, is_market(kv[0]), kv[0]))


def _reader(question: Question | None) -> Any:
    """An estimate's point on the chart's scale: its probability (binary), or its median with
    the 10% and 90% quantiles in the range's scaled coordinate (numeric and date)."""
    if question is None:
        return lambda e: (e.probability, None, None)

    def read(e: EstimateRow) -> tuple[float, float, float]:
        assert e.values is not None
        low, mid, high = (question.scaled(quantile(question, e.values, p)) for p in (0.1, 0.5, 0.9))
        return mid, low, high

    return read


def _series(name: str, index: int, rows: list[EstimateRow], mine: bool, read: Any) -> _Series:
    steps = tuple((e.made_at, *read(e)) for e in rows if e.probability is not None or e.values)
    return _Series(
        name=name,
        color=PALETTE[index % len(PALETTE)],
        steps=steps,
        mine=mine,
        market=is_market(rows[0].forecaster),
    )


def _chart(
    title: str | None, series: list[_Series], forecast: ForecastRow, start: datetime, end: datetime
) -> dict[str, Any]:
    question = forecast.question
    legend = []
    for s in series:
        if question is not None and question.kind == "choice":
            latest = f"{s.steps[-1][1] * 100:.0f}%" if s.steps else "-"
        else:
            latest = _latest_text(question, s)
        mine = s.mine and (question is None or question.kind != "choice")
        legend.append({"name": s.name, "color": s.color, "latest": latest, "mine": mine})
    return {
        "title": title,
        "legend": legend,
        "drawings": {d.name: _drawing(d, series, forecast, start, end) for d in _DRAWINGS},
    }


def _latest_text(question: Question | None, s: _Series) -> str:
    if not s.steps:
        return "-"
    _, value, low, high = s.steps[-1]
    if question is None:
        return f"{value * 100:.0f}%"
    mid, lo, hi = (format_read(question, question.unscaled(u)) for u in (value, low, high))  # type: ignore[arg-type]
    return f"median {mid} (10-90%: {lo} to {hi})"


def _width(text: str, font: float) -> float:
    """A generous estimate of a label's advance in drawing units."""
    return sum(0.8 if c.isupper() or c in "mw%" else 0.62 for c in text) * font


def _r(value: float) -> float:
    return round(value, 1)


def _y_labels(question: Question | None) -> list[tuple[float, str]]:
    levels = (0.0, 0.25, 0.5, 0.75, 1.0)
    if question is None or question.kind == "choice":
        return [(v, f"{v * 100:.0f}%") for v in levels]
    return [(v, format_value(question, question.unscaled(v))) for v in levels]


def _time_labels(
    start: datetime, end: datetime, room: float, font: float
) -> list[tuple[float, str]]:
    """Evenly spaced times as fractions of the axis with their labels, as many as fit."""
    span = end - start
    fmt = "%Y-%m-%d" if span >= timedelta(days=3) else "%m-%d %H:%M"
    label = _width(datetime(2026, 12, 31, 23, 59).strftime(fmt), font) + 2 * font
    count = max(2, min(6, int(room // label) + 1))
    return [
        (k / (count - 1), (start + span * (k / (count - 1))).strftime(fmt)) for k in range(count)
    ]


def _drawing(
    d: _Drawing, series: list[_Series], forecast: ForecastRow, start: datetime, end: datetime
) -> dict[str, Any]:
    f = d.font
    question = forecast.question
    ylabels = _y_labels(question)
    half = _width("12-31 23:59", f) / 2 + 2  # half the widest time label
    x0 = max(max(_width(text, f) for _, text in ylabels) + 0.6 * f, half)
    x1 = d.width - half
    y0, y1 = 0.8 * f, d.height - 2.2 * f
    seconds = (end - start).total_seconds()

    def x(t: datetime) -> float:
        return _r(x0 + (t - start).total_seconds() / seconds * (x1 - x0))

    def y(v: float) -> float:
        return _r(y1 - min(1.0, max(0.0, v)) * (y1 - y0))

    drawn = []
    for s in sorted(series, key=lambda s: s.mine):  # the viewer's own on top
        if not s.steps:
            continue
        times = [t for t, *_ in s.steps] + [end]
        line = _steps(x, times, [y(v) for _, v, _, _ in s.steps])
        band = None
        if s.steps[0][2] is not None:
            highs = _steps(x, times, [y(h) for *_, h in s.steps])  # type: ignore[arg-type]
            lows = _steps(x, times, [y(lo) for _, _, lo, _ in s.steps])  # type: ignore[arg-type]
            band = " ".join(highs + lows[::-1])
        drawn.append(
            {
                "color": s.color,
                "points": " ".join(line),
                "band": band,
                "width": 3 if s.mine else 2,
                "dash": "6 4" if s.market else None,
                "dots": [{"cx": x(t), "cy": y(v)} for t, v, _, _ in s.steps][-60:],
            }
        )
    due = x(forecast.due) if start <= forecast.due <= end else None
    resolution = None
    if forecast.status == "resolved":
        if question is None:
            resolution = y(1.0 if forecast.outcome else 0.0)
        elif question.continuous and forecast.resolution_value is not None:
            resolution = y(question.scaled(forecast.resolution_value))
    return {
        "name": d.name,
        "width": d.width,
        "height": d.height,
        "font": f,
        "x0": _r(x0),
        "x1": _r(x1),
        "y0": _r(y0),
        "y1": _r(y1),
        "yticks": [{"y": y(v), "text": text} for v, text in ylabels],
        "xticks": [
            {"x": _r(x0 + share * (x1 - x0)), "text": text}
            for share, text in _time_labels(start, end, x1 - x0, f)
        ],
        "xlabel_y": _r(y1 + 1.8 * f),
        "series": drawn,
        "due": due,
        "resolution": resolution,
    }


def _steps(x: Any, times: Iterable[datetime], ys: list[float]) -> list[str]:
    """A step line: each value held until the next time (the last until the end)."""
    times = list(times)
    points = []
    for i, value in enumerate(ys):
        points.append(f"{x(times[i])},{value}")
        points.append(f"{x(times[i + 1])},{value}")
    return points


@dataclass(frozen=True)
class Row:
    """One forecast in a list as the signed-in person sees it."""

    id: int
    title: str
    kind: str
    mine: str
    others: str
    due: str
    when: str
    tags: list[str]
    status: str


def row_of(f: ForecastRow, viewer: str, now: datetime) -> Row:
    """A list's row of ``f``: the viewer's latest, the others' (hidden on a blind forecast the
    viewer has not forecast), the due date and how far off it is, or what it resolved to."""
    view = records.standing(f, viewer)
    others = "hidden (blind)" if hidden_from(f, viewer) else format_others(view, f.question)
    when = relative(f.due, now, f.status) or (
        format_outcome(f) if f.status == "resolved" else f.status
    )
    return Row(
        id=f.id,
        title=f.title,
        kind=f.kind,
        mine=format_estimate(f.question, view.mine),
        others=others,
        due=local_due(f.due, _TZ, f.due_zone),
        when=when,
        tags=[t.name for t in f.tags],
        status=f.status,
    )


def rows_of(session: Session, query: ForecastQuery, viewer: str, now: datetime) -> list[Row]:
    """The rows of the forecasts ``query`` finds (each forecaster's latest estimate read)."""
    found = store.list_forecasts(session, query, now=now, latest_only=True)
    return [row_of(f, viewer, now) for f in found]


def forecast_context(
    session: Session, forecast_id: int, user: UserRow, now: datetime
) -> dict[str, Any]:
    """What the forecast page shows ``user``: the forecast, their estimate and the others'
    (hidden on a blind forecast they have not forecast), the history charts, checks with their
    latest evidence, proposals, closings and amendments, and which forms they may use."""
    f = store.get_forecast(session, forecast_id)
    history = store.closings(session, f.id)
    receipts: list[dict[str, Any]] = []
    pending: list[dict[str, Any]] = []
    decided: list[dict[str, Any]] = []
    if f.checks:  # evidence and proposals come from checks only (none are ever deleted)
        evidence = session.scalars(
            select(Evidence)
            .where(Evidence.forecast_id == f.id)
            .order_by(Evidence.id.desc())
            .limit(_EVIDENCE_SHOWN + 1)
        ).all()
        receipts = [evidence_record(e) for e in evidence]
        pending = reviews.review(session, f.id)
        decided = [
            proposal_record(p)
            for p in session.scalars(
                select(Proposal)
                .where(Proposal.forecast_id == f.id, Proposal.status != "pending")
                .order_by(Proposal.id)
            )
        ]
    q = f.question
    view = records.standing(f, user.name)
    hidden = hidden_from(f, user.name)
    visible = [e for e in f.estimates if not hidden or e.forecaster == user.name]
    owner = f.author == user.name or allows(user.role, "admin")
    member = allows(user.role, "member")
    mine_values = view.mine.values if view.mine else None
    return {
        "f": f,
        "kind": f.kind,
        "question": question_line(q) if q is not None else None,
        "options": list(q.options) if q is not None and q.kind == "choice" else [],
        "due": local_due(f.due, _TZ, f.due_zone),
        "when": relative(f.due, now, f.status),
        "outcome": format_outcome(f) if f.status == "resolved" else None,
        "created": local_time(f.created_at, _TZ),
        "closed": local_time(f.resolved_at, _TZ) if f.resolved_at else None,
        "blind": any(t.name == BLIND_TAG for t in f.tags),
        "hidden": hidden,
        "mine": _estimate_view(f, view.mine) if view.mine else None,
        "mine_points": quantile_points(q, mine_values)
        if q and q.continuous and mine_values
        else [],
        "mine_beyond": beyond_bounds(q, mine_values) if q and q.continuous and mine_values else [],
        "others": [] if hidden else [_estimate_view(f, e) for e in view.others],
        "markets": [] if hidden else [_estimate_view(f, e) for e in view.markets],
        "median": _median(view, f),
        "charts": history_charts(f, visible, user.name, now),
        "estimates": [
            _estimate_view(f, e)
            for e in sorted(visible, key=lambda e: (e.made_at, e.id), reverse=True)
        ][:_ESTIMATES_SHOWN],
        "more_estimates": max(0, len(visible) - _ESTIMATES_SHOWN),
        "amendments": [{**a.__dict__, "at": local_time(a.made_at, _TZ)} for a in f.amendments],
        "history": [
            {"words": closing_words(h, q), "at": local_time(h["at"], _TZ), "note": h.get("note")}
            for h in history
        ],
        "checks": [
            {
                "id": c.id,
                "kind": c.kind,
                "mode": c.mode,
                "params": c.params,
                "running": c.enabled,
                "last": local_time(c.last_checked_at, _TZ) if c.last_checked_at else None,
                "next": local_time(c.next_check_at, _TZ) if c.enabled else None,
            }
            for c in f.checks
        ],
        "receipts": [
            {**r, "at": local_time(r["checked_at"], _TZ), "link": _link(r["url"])}
            for r in receipts[:_EVIDENCE_SHOWN]
        ],
        "more_receipts": len(receipts) > _EVIDENCE_SHOWN,
        "pending": pending,
        "decided": decided,
        "can_forecast": member and f.status == "open",
        "can_close": member and owner,
        "current": _current_text(f, view),
    }


def _estimate_view(f: ForecastRow, e: records.EstimateRow) -> dict[str, Any]:
    q = f.question
    bars = []
    if q is not None and q.kind == "choice" and e.values is not None:
        bars = [
            {"name": name, "p": p, "text": f"{p * 100:.0f}%"}
            for name, p in zip(q.options, e.values, strict=True)
        ]
    return {
        "forecaster": e.forecaster,
        "text": format_estimate(q, e),
        "at": local_time(e.made_at, _TZ),
        "note": e.note,
        "bars": bars,
        "market": records.is_market(e.forecaster),
    }


def _median(view: Standing, f: ForecastRow) -> str | None:
    if hidden_from(f, view.viewer) or f.question is not None or len(view.others) < 2:
        return None
    return format_estimate(None, records.EstimateRow(0, f.id, "", view.median, f.created_at, None))


def _current_text(f: ForecastRow, view: Standing) -> dict[str, str]:
    """The update form's fields filled with the viewer's latest (a probability; the quantiles;
    each option's percentage)."""
    mine = view.mine
    if mine is None:
        return {}
    q = f.question
    if q is None and mine.probability is not None:
        return {"forecast": f"{mine.probability * 100:g}%"}
    if q is not None and mine.values is not None:
        if q.kind == "choice":
            return {f"option{i}": f"{p * 100:g}" for i, p in enumerate(mine.values)}
        return {"forecast": ",".join(f"{p}={x}" for p, x in quantile_points(q, mine.values))}
    return {}


def _link(url: str | None) -> str | None:
    """An evidence URL fit to link to (http or https), else None (shown as text)."""
    return url if url and url.startswith(("https://", "http://")) else None
