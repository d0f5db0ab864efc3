"""How a forecast reads to a person, in words: an estimate, the others' beside yours, the outcome,
the question, the due date relative to now, a distribution's quantiles and the beyond-bound mass.
One home for the CLI's ``list`` and ``show`` (:mod:`tracker.display`) and the service's pages
(stdlib only: the CLI's fast path imports it)."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from predictions.questions import Question, format_read, format_value, quantile, summary
from predictions.wording import duration, format_probability

if TYPE_CHECKING:
    from predictions.records import EstimateRow, ForecastRow, Standing

__all__ = [
    "BLIND_TAG",
    "SHOWN_QUANTILES",
    "beyond_bounds",
    "blinded",
    "closing_words",
    "format_estimate",
    "format_others",
    "format_outcome",
    "hidden_from",
    "question_line",
    "quantile_points",
    "relative",
]

#: A forecast carrying this tag is *blind*: while it is open, a person who has not forecast it
#: yet is not shown the others' estimates (people's or markets'), so as not to anchor on them.
BLIND_TAG = "blind"

#: The quantiles ``show`` and the forecast page list of a numeric or date forecast.
SHOWN_QUANTILES = (0.1, 0.25, 0.5, 0.75, 0.9)


def hidden_from(forecast: ForecastRow, viewer: str) -> bool:
    """Whether the others' estimates on ``forecast`` are hidden from ``viewer``: it is blind
    (tagged :data:`BLIND_TAG`), open, and ``viewer`` has no estimate on it yet."""
    return (
        forecast.status == "open"
        and any(t.name == BLIND_TAG for t in forecast.tags)
        and not any(e.forecaster == viewer for e in forecast.estimates)
    )


def blinded(forecast: ForecastRow, viewer: str) -> ForecastRow:
    """``forecast`` as ``viewer`` may read it: while :func:`hidden_from` says so, without the
    others' estimates (what the API returns; the pages hide them by the same rule)."""
    if not hidden_from(forecast, viewer):
        return forecast
    mine = [e for e in forecast.estimates if e.forecaster == viewer]
    return dataclasses.replace(forecast, estimates=mine)


def format_estimate(question: Question | None, estimate: EstimateRow | None) -> str:
    """An estimate in a few characters: its probability (``70%``) on a binary question, else its
    :func:`~predictions.questions.summary` (``median 8``, ``DeepSeek 35%``); ``-`` for none."""
    if estimate is None:
        return "-"
    if question is None or estimate.values is None:
        return format_probability(estimate.probability)
    return summary(question, estimate.values)


def format_others(view: Standing, question: Question | None = None) -> str:
    """The others' latest beside yours, compactly: one other person by name (``bob 40%``,
    ``bob median 9``), several by their median and count (``med 55% (3)``; ``3 others`` on a
    non-binary question), then the markets (``mkt 18%``)."""
    parts = []
    if len(view.others) == 1:
        parts.append(f"{view.others[0].forecaster} {format_estimate(question, view.others[0])}")
    elif view.others and question is not None:
        parts.append(f"{len(view.others)} others")
    elif view.others:
        parts.append(f"med {format_probability(view.median)} ({len(view.others)})")
    if view.markets:
        parts.append("mkt " + "/".join(format_estimate(question, e) for e in view.markets))
    return ", ".join(parts)


def format_outcome(forecast: ForecastRow) -> str:
    """What a resolved forecast resolved to: ``YES``/``NO``, a number, a date or an option."""
    if forecast.question is None or forecast.resolution_value is None:
        return "YES" if forecast.outcome else "NO"
    return format_value(forecast.question, forecast.resolution_value)


def question_line(question: Question) -> str:
    """A question's spec in words: ``numeric 0..34 (open upper, log scale)``, ``date
    2026-01-01..2035-12-31``, ``choice of DeepSeek, Other (ordered)``."""
    if question.kind == "choice":
        return (
            "choice of " + ", ".join(question.options) + (" (ordered)" if question.ordered else "")
        )
    bounds = {(True, True): "both", (True, False): "lower", (False, True): "upper"}
    notes = []
    if question.open_lower or question.open_upper:
        notes.append(f"open {bounds[question.open_lower, question.open_upper]}")
    if question.log:
        notes.append("log scale")
    low, high = (format_value(question, x) for x in (question.lower, question.upper))
    return f"{question.kind} {low}..{high}" + (f" ({', '.join(notes)})" if notes else "")


def quantile_points(question: Question, values: Sequence[float]) -> list[tuple[str, str]]:
    """A numeric or date forecast's :data:`SHOWN_QUANTILES` as ``("10%", "4")`` pairs, each read
    to the grid's resolution (:func:`~predictions.questions.format_read`)."""
    return [
        (f"{p * 100:g}%", format_read(question, quantile(question, values, p)))
        for p in SHOWN_QUANTILES
    ]


def beyond_bounds(question: Question, values: Sequence[float]) -> list[str]:
    """The mass a numeric or date forecast puts beyond each open bound: ``below 0: 3%``."""
    low, high = (format_value(question, x) for x in (question.lower, question.upper))
    beyond = []
    if question.open_lower:
        beyond.append(f"below {low}: {format_probability(values[0])}")
    if question.open_upper:
        beyond.append(f"above {high}: {format_probability(1 - values[-1])}")
    return beyond


_VERBS = {"resolve": "resolved", "annul": "annulled", "withdraw": "withdrawn", "reopen": "reopened"}


def closing_words(entry: dict[str, Any], question: Question | None) -> str:
    """A closing or reopening of :func:`predictions.store.closings` in words, without its time:
    ``resolved YES by alice`` (a non-binary question's resolution by its value: ``resolved 11``,
    ``resolved Moonshot``)."""
    verb = _VERBS[entry["kind"]]
    if entry["kind"] == "resolve" and question is not None and entry.get("value") is not None:
        verb += " " + format_value(question, entry["value"])
    elif entry["kind"] == "resolve":
        verb += " YES" if entry["outcome"] else " NO"
    return f"{verb} by {entry['by']}"


def relative(due: datetime, now: datetime, status: str = "open") -> str:
    """``due in 3 days`` or ``overdue by 2 weeks`` for open forecasts; blank otherwise."""
    if status != "open":
        return ""
    delta = due - now
    if delta.total_seconds() >= 0:
        return f"due in {duration(delta)}"
    return f"overdue by {duration(delta)}"
