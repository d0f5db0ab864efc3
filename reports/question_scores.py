"""The report's sections of numeric, date and multiple-choice questions: each type scored with its
own scores (:mod:`reports.distributions`), never averaged with another type's.

Each scored forecast (the one rule of :mod:`reports.scored`) is scored once, vectorised; a group's
numbers are sums of those scores over its rows (``np.bincount``), so a breakdown costs no more
than the scores themselves.

- **numeric** and **date**: the mean CRPS in the scaled coordinate (the range has length 1, so
  questions of different units and ranges can be averaged; date questions also in days), the mean
  log score (minus the log density, scaled), Metaculus's mean baseline score, the coverage of the
  central 50%, 80% and 90% intervals (with Wilson 95% intervals overall) and the PIT histogram.
- **choice**: the mean multi-class Brier score (sum over options, 0..2), the mean log score of the
  option that happened, the mean ranked probability score over the questions whose options are
  ordered, and the calibration table of every option's probability taken as a binary forecast.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.typing import NDArray

from reports import distributions, scoring
from reports.scored import Scored

__all__ = ["HEADLINES", "Groups", "headline", "headlines", "per_forecast", "section"]

#: Each type's headline score (a loss), as a snapshot such as the daily email shows it.
HEADLINES = {"numeric": "CRPS", "date": "CRPS", "choice": "Brier"}

#: Per group, the rows it holds and a label for each code: ``(codes, rows, labels)``; ``rows``
#: indexes the scored forecasts (a tag's groups overlap: a question may have two tags).
Groups = tuple[NDArray[np.int64], NDArray[np.int64], list[str]]
_DAY = 86_400.0
_CONTINUOUS = ("crps", "log", "baseline")
_CHOICE = ("brier", "log")


def per_forecast(s: Scored) -> dict[str, NDArray[Any]]:
    """The scores of each scored forecast of one type (arrays in the order of ``s``)."""
    if s.kind == "choice":
        happened = s.outcome.astype(np.int64)
        ordered = s.spec["ordered"]
        rps = np.full(happened.size, np.nan)
        if ordered.any():
            rps[ordered] = distributions.ranked_probability_score(
                s.values[ordered], s.options[ordered], happened[ordered]
            )
        return {
            "brier": distributions.choice_brier(s.values, s.options, happened),
            "log": distributions.choice_log_score(s.values, s.options, happened),
            "rps": rps,
            "ordered": ordered,
        }
    spec = s.spec
    u = distributions.scaled(s.outcome, spec["lower"], spec["upper"], spec["log"])
    scores = {
        "crps": distributions.crps(s.values, u),
        "log": distributions.log_score(s.values, u),
        "baseline": distributions.baseline_score(
            s.values, u, spec["open_lower"], spec["open_upper"]
        ),
        "pit": distributions.pit(s.values, u),
    }
    for level, hit in distributions.coverage(s.values, u).items():
        scores[_level(level)] = hit.astype(np.float64)
    if s.kind == "date":
        scores["crps_days"] = scores["crps"] * (spec["upper"] - spec["lower"]) / _DAY
    return scores


def headline(s: Scored) -> NDArray[np.float64]:
    """Each scored forecast's :data:`HEADLINES` score: the CRPS (range = 1) of a numeric or
    date forecast, the multi-class Brier score of a choice one."""
    return per_forecast(s)[HEADLINES[s.kind].lower()]


def headlines(
    scored: dict[str, Scored],
) -> dict[int, dict[str, tuple[tuple[float, ...], float]]]:
    """Per question and forecaster, the scored estimate's values and :func:`headline` score, of
    the numeric, date and choice questions ``scored`` (from
    :func:`reports.scored.read_scored_types`): a snapshot such as the daily email shows."""
    found: dict[int, dict[str, tuple[tuple[float, ...], float]]] = {}
    for s in scored.values():
        if s.forecast_id.size:
            rows = (s.forecast_id.tolist(), s.who.tolist(), s.values, s.options.tolist())
            for fid, who, values, n, score in zip(*rows, headline(s).tolist(), strict=True):
                found.setdefault(fid, {})[s.names[who]] = (tuple(values[:n].tolist()), score)
    return found


def _level(level: float) -> str:
    return f"{round(100 * level)}"


def _num(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


def _aggregate(kind: str, scores: dict[str, NDArray[Any]], groups: Groups) -> list[dict]:
    """Per group with rows: its count and the mean of each score (None where undefined)."""
    codes, rows, labels = groups
    size = len(labels)
    n = np.bincount(codes, minlength=size)

    def mean(name: str, among: NDArray[np.float64] | None = None) -> list[float | None]:
        values = scores[name][rows]
        weight = np.ones(rows.size) if among is None else among[rows].astype(np.float64)
        total = np.bincount(codes, weights=np.where(weight > 0, values, 0.0), minlength=size)
        count = np.bincount(codes, weights=weight, minlength=size)
        with np.errstate(invalid="ignore", divide="ignore"):
            return [_num(v) for v in (total / count).tolist()]

    if kind == "choice":
        means = {name: mean(name) for name in _CHOICE}
        means["rps"] = mean("rps", scores["ordered"])
        ordered = np.bincount(codes, weights=scores["ordered"][rows], minlength=size)
        extra: list[dict[str, Any]] = [{"rps_count": int(v)} for v in ordered.tolist()]
    else:
        names = [*_CONTINUOUS, *(["crps_days"] if "crps_days" in scores else [])]
        means = {name: mean(name) for name in names}
        levels = {_level(level): mean(_level(level)) for level in distributions.LEVELS}
        extra = [{"coverage": {k: v[i] for k, v in levels.items()}} for i in range(size)]
    out = []
    for i, label in enumerate(labels):
        if n[i]:
            entry: dict[str, Any] = {"key": label, "count": int(n[i])}
            entry.update({name: values[i] for name, values in means.items()})
            entry.update(extra[i])
            out.append(entry)
    return out


def _overall(kind: str, s: Scored, scores: dict[str, NDArray[Any]]) -> dict[str, Any]:
    """The whole type: the group numbers of everything, with the calibration pictures."""
    count = s.forecast_id.size
    every = np.arange(count)
    [out] = _aggregate(kind, scores, (np.zeros(count, np.int64), every, [""]))
    del out["key"]
    out["forecasters"] = len(set(s.who.tolist()))
    if kind == "choice":
        table = distributions.option_calibration(s.values, s.options, s.outcome.astype(np.int64))
        out["calibration"] = [
            {k: _num(v) if isinstance(v, float) else v for k, v in b.as_dict().items()}
            for b in table
        ]
        return out
    out["pit_histogram"] = distributions.pit_histogram(scores["pit"]).tolist()
    intervals = []
    for level in distributions.LEVELS:
        hits = int(scores[_level(level)].sum())
        low, high = scoring.wilson_interval(hits, count)
        intervals.append(
            {
                "level": level,
                "covered": hits,
                "share": hits / count,
                "ci_low": float(low),
                "ci_high": float(high),
            }
        )
    out["intervals"] = intervals
    return out


def section(
    s: Scored, groups: dict[str, Groups], periods: Groups, unit: str, group_by: str
) -> dict[str, Any]:
    """The JSON section of one type: ``overall``, ``over_time`` (per ``unit`` of resolution),
    ``breakdowns`` (``groups``: tag, forecaster, horizon) and ``groups`` (the ``group_by`` view)."""
    if s.forecast_id.size == 0:
        return {"count": 0}
    scores = per_forecast(s)
    overall = _overall(s.kind, s, scores)
    over_time = {"unit": unit, "periods": _aggregate(s.kind, scores, periods)}
    breakdowns = {name: _aggregate(s.kind, scores, g) for name, g in groups.items()}
    return {
        "count": overall["count"],
        "overall": overall,
        "over_time": over_time,
        "breakdowns": breakdowns,
        "groups": over_time["periods"] if group_by == unit else breakdowns[group_by],
    }
