"""Calibration reports built from the database: which forecasts count, how each is scored, and the
breakdowns, as one JSON-ready dict that every renderer reads.

Rules (they make a score honest):

- Only resolved questions are scored. Annulled ones are excluded; open questions past their due
  date are counted as *pending* and not scored; open questions not yet due are counted only.
- Each forecaster is scored on their own estimates, by the one rule of :mod:`reports.scored`: per
  question and forecaster, the last estimate made before the due date and before the resolution.
  Beside it, the Brier score averaged over the forecaster's open lifetime of the question.
- Filters (:func:`predictions.records.forecast_where`): ``by`` (forecaster), ``tag``,
  ``since``/``until`` (on the resolution date of resolved and annulled questions and the due date
  of open ones).
- Periods (``month``/``quarter``/``year``) are those of the resolution date; the rolling window
  covers the last 12 months, 4 quarters or 3 years. Horizon is the time from the scored estimate
  to the due date, to the microsecond.

Numeric, date and choice questions are scored apart, each type with its own scores (never
averaged with the Brier score), in the report's ``types`` (:mod:`reports.question_scores`): the
same rule, filters, periods and breakdowns; the binary questions have the rest of the report.

The scored rows are counted by (probability, outcome, forecaster, month, horizon) with numpy, and
each summary is computed over the distinct (probability, outcome) counts of its rows: there is no
Python loop per forecast.

The team view (:mod:`reports.team`: each person's Brier and relative Brier, the team's median and
geometric mean of odds scored as forecasters, the markets beside them, ranking from
``min_count`` questions) is the report's ``team`` under ``group_by="forecaster"`` (None
otherwise: it costs a fifth of the report), computed from the same scored rows.

:func:`build_report` can keep what it read in a :class:`ReportCache` (the web pages' cache, which
must outlive a process): everything but the counts of questions by state (which move with the
clock) and the time of generation, under a key naming the query and the ledger's last entry
that can change a score (a closing, a reopening, an amendment...: not a new question or estimate,
the commonest writes). Rows written beside the ledger (a benchmark's) are not seen.

Findings rule: a calibration bin gets a sentence only when it holds at least
:data:`FINDING_MIN_COUNT` forecasts and its mean forecast lies outside the Wilson 95% interval of
its observed frequency, and the two differ by at least :data:`FINDING_MIN_GAP` (5 points: with a
big sample a smaller gap is significant but nothing to act on); overall statements need at least
:data:`FINDING_MIN_TOTAL` forecasts: a lean towards YES or NO when the mean forecast lies outside
the Wilson 95% interval of the base rate and 5 points from it, and a comparison with always saying
50% from the bootstrap interval of the Brier score. (Ten bins are ten tests: at 95% one in twenty
well-calibrated bins is flagged by chance; the count and interval are printed with every finding
so a reader can weigh it.)
"""

from __future__ import annotations

import calendar
import math
import re
import sqlite3
from dataclasses import dataclass, field
from datetime import date, datetime, time
from typing import TYPE_CHECKING, Any, Protocol
from zoneinfo import ZoneInfo

import numpy as np
from numpy.typing import NDArray

from predictions.chain import Executor
from predictions.clock import now as clock_now
from predictions.clock import to_utc_naive
from predictions.errors import InputError
from predictions.records import forecast_where
from predictions.validation import parse_tag
from reports import distributions, question_scores, scoring, team
from reports.scored import Scored, executor, read_scored, read_scored_types

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

__all__ = [
    "FINDING_MIN_COUNT",
    "FINDING_MIN_GAP",
    "FINDING_MIN_TOTAL",
    "GROUP_BY",
    "HORIZONS",
    "ReportCache",
    "ReportQuery",
    "build_report",
    "parse_since",
    "parse_until",
    "period_index",
]

GROUP_BY = ("month", "quarter", "year", "tag", "forecaster", "horizon")
#: Horizon buckets: (label, upper bound in days, exclusive); the last is open-ended.
HORIZONS: tuple[tuple[str, float], ...] = (
    ("under 1 week", 7.0),
    ("1 week - 1 month", 30.0),
    ("1-3 months", 91.0),
    ("3-12 months", 365.0),
    ("1-3 years", 1096.0),
    ("over 3 years", math.inf),
)
#: A calibration bin needs this many forecasts before the report says anything about it.
FINDING_MIN_COUNT = 20
#: A bin (or the overall lean) is named only when said and happened differ by at least this
#: much: with a big sample a gap of a point is significant, but nothing to act on.
FINDING_MIN_GAP = 0.05
#: Overall statements (better than 50%? improving?) need this many scored forecasts.
FINDING_MIN_TOTAL = 30
_ROLLING = {"month": 12, "quarter": 4, "year": 3}
#: The upper bounds of the horizon buckets, as exact spans.
_UPPERS = np.array(
    [int(upper) for _, upper in HORIZONS if math.isfinite(upper)], dtype="timedelta64[D]"
).astype("timedelta64[us]")
_VERSION = 1


@dataclass(frozen=True)
class ReportQuery:
    """What to report on. ``since``/``until`` are naive-UTC instants (inclusive)."""

    by: str | None = None
    tag: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    group_by: str = "quarter"
    bootstrap_resamples: int = scoring.BOOTSTRAP_RESAMPLES
    bootstrap_seed: int = scoring.BOOTSTRAP_SEED
    min_count: int = team.MIN_COUNT

    def __post_init__(self) -> None:
        if self.group_by not in GROUP_BY:
            raise InputError("group-by", self.group_by, "one of " + ", ".join(GROUP_BY))
        if self.since and self.until and self.since > self.until:
            raise InputError("since", self.since.date().isoformat(), "a date before --until")
        if self.tag is not None:
            object.__setattr__(self, "tag", parse_tag(self.tag))


_DATE_EXPECTED = "a date: 2025-01-31, 2025-01 or 2025"


def _period_bounds(value: str, field_name: str) -> tuple[date, date]:
    text = value.strip()
    try:
        if re.fullmatch(r"\d{4}", text):
            year = int(text)
            return date(year, 1, 1), date(year, 12, 31)
        if re.fullmatch(r"\d{4}-\d{2}", text):
            year, month = int(text[:4]), int(text[5:])
            return date(year, month, 1), date(year, month, calendar.monthrange(year, month)[1])
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            day = date.fromisoformat(text)
            return day, day
    except ValueError:
        pass
    raise InputError(field_name, value, _DATE_EXPECTED)


def parse_since(value: str, tz: ZoneInfo | None = None) -> datetime:
    """The start of a day, month or year in ``tz`` (UTC by default), as naive UTC."""
    start, _ = _period_bounds(value, "since")
    return to_utc_naive(datetime.combine(start, time.min, tzinfo=tz or ZoneInfo("UTC")))


def parse_until(value: str, tz: ZoneInfo | None = None) -> datetime:
    """The last microsecond of a day, month or year in ``tz`` (UTC by default), as naive UTC."""
    _, end = _period_bounds(value, "until")
    return to_utc_naive(datetime.combine(end, time.max, tzinfo=tz or ZoneInfo("UTC")))


# --- gathering --------------------------------------------------------------------------------


@dataclass
class _Rows:
    """Scored forecasts, aggregated: one row per distinct key, ``n`` forecasts in it."""

    p: NDArray[np.float64]
    y: NDArray[np.float64]
    n: NDArray[np.float64]
    tab: NDArray[np.float64]  # sum of time-averaged Brier scores of the row's forecasts
    who: NDArray[np.int64]
    month: NDArray[np.int64]
    horizon: NDArray[np.int64]
    names: list[str] = field(default_factory=list)
    months: list[str] = field(default_factory=list)


def _scored_where(query: ReportQuery) -> tuple[str, dict[str, Any]]:
    return forecast_where(
        status="resolved",
        tag=query.tag,
        by=query.by,
        by_estimate="e",
        since=query.since,
        until=query.until,
    )


def _months(s: Scored) -> tuple[list[str], NDArray[np.int64]]:
    """The months of resolution (``2025-03``, sorted) and each scored row's among them."""
    month_numbers, month, _ = _distinct(s.resolved_at.astype("datetime64[M]").astype(np.int64))
    labels = np.datetime_as_string(month_numbers.astype("datetime64[M]"), unit="M").tolist()
    return [str(m) for m in labels], month


def _horizons(s: Scored) -> NDArray[np.int64]:
    """Each scored row's horizon bucket (:data:`HORIZONS`): from the estimate to the due date."""
    return np.searchsorted(_UPPERS, s.due - s.made_at, side="right").astype(np.int64)


def _gather(s: Scored, db: Executor) -> tuple[_Rows, list[tuple[str, _Rows]]]:
    """The scored estimates ``s``, counted by (probability, outcome, forecaster, month, horizon);
    and the scored rows of each tag."""
    months, month = _months(s)
    horizon = _horizons(s)
    p_values = np.unique(s.probability)
    p_ix = np.searchsorted(p_values, s.probability)
    sizes = (p_values.size, 2, max(len(s.names), 1), max(len(months), 1), len(HORIZONS))
    key = np.ravel_multi_index((p_ix, s.outcome.astype(np.int64), s.who, month, horizon), sizes)
    keys, inverse, counts = _distinct(key)
    k_p, k_y, k_who, k_month, k_horizon = np.unravel_index(keys, sizes)
    rows = _Rows(
        p=p_values[k_p],
        y=k_y.astype(np.float64),
        n=counts.astype(np.float64),
        tab=np.bincount(inverse, weights=s.time_averaged_brier, minlength=keys.size).astype(float),
        who=k_who.astype(np.int64),
        month=k_month.astype(np.int64),
        horizon=k_horizon.astype(np.int64),
        names=s.names,
        months=months,
    )
    return rows, _tag_rows(db, s)


def _distinct(
    values: NDArray[np.int64],
) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.int64]]:
    """``np.unique(values, return_inverse=True, return_counts=True)``, by counting (no sort)
    when the values span a range not much wider than their number."""
    if values.size == 0 or int(values.max()) - int(values.min()) > 4 * values.size + 65_536:
        return np.unique(values, return_inverse=True, return_counts=True)
    low = int(values.min())
    counts = np.bincount(values - low)
    present = np.flatnonzero(counts)
    code = np.zeros(counts.size, dtype=np.int64)
    code[present] = np.arange(present.size)
    return present + low, code[values - low], counts[present]


#: Each tag's questions as one text list of ids (``3,17,42``): the string aggregate per dialect.
_ID_LIST = {
    "sqlite": "group_concat(forecast_id, ',')",
    "postgresql": "string_agg(CAST(forecast_id AS TEXT), ',')",
}


def _tag_members(db: Executor, s: Scored) -> list[tuple[str, NDArray[np.int64]]]:
    """Per tag, the scored rows of its questions in the order of ``s`` (a question with two tags
    counts in both); tags without a scored row are left out."""
    if s.forecast_id.size == 0:
        return []
    lists = db.execute(f"SELECT name, {_ID_LIST[db.dialect]} FROM tag GROUP BY name").fetchall()
    result = []
    for name, text in sorted(lists):
        ids = np.sort(np.fromstring(text, dtype=np.int64, sep=","))
        # (the scored rows come ordered by question) each question to its run of rows
        lo = np.searchsorted(s.forecast_id, ids, side="left")
        reps = np.searchsorted(s.forecast_id, ids, side="right") - lo
        mine = np.arange(int(reps.sum())) + np.repeat(lo - (np.cumsum(reps) - reps), reps)
        if mine.size:
            result.append((name, mine))
    return result


def _tag_rows(db: Executor, s: Scored) -> list[tuple[str, _Rows]]:
    """Per tag, its scored rows as :class:`_Rows`."""
    result = []
    for name, mine in _tag_members(db, s):
        empty = np.zeros(mine.size, dtype=np.int64)
        p, y = s.probability[mine], s.outcome[mine]
        tab = s.time_averaged_brier[mine]
        result.append((name, _Rows(p, y, np.ones(mine.size), tab, empty, empty, empty)))
    return result


def _typed(db: Executor, query: ReportQuery, unit: str) -> dict[str, Any]:
    """The sections of numeric, date and choice questions (:mod:`reports.question_scores`),
    grouped as the binary report is."""
    sections = {}
    for kind, s in read_scored_types(db, *_scored_where(query)).items():
        every = np.arange(s.forecast_id.size)
        months, month = _months(s)
        labels, of_month = _period_labels(months, unit)
        tags = _tag_members(db, s)
        tag_codes = np.repeat(np.arange(len(tags)), [mine.size for _, mine in tags])
        tag_rows = np.concatenate([mine for _, mine in tags]) if tags else every[:0]
        horizons = [label for label, _ in HORIZONS]
        groups = {
            "tag": (tag_codes.astype(np.int64), tag_rows, [name for name, _ in tags]),
            "forecaster": (s.who, every, s.names),
            "horizon": (_horizons(s), every, horizons),
        }
        periods = (of_month[month], every, labels)
        sections[kind] = question_scores.section(s, groups, periods, unit, query.group_by)
    return sections


def _counts(db: Executor, query: ReportQuery, now: datetime) -> dict[str, int]:
    """How many questions match the filters, by state (the date filter is on the resolution date
    of closed questions and the due date of open ones)."""
    where, params = forecast_where(
        tag=query.tag,
        by=query.by,
        since=query.since,
        until=query.until,
        when="COALESCE(f.resolved_at, f.due)",
    )
    # By status along the status index (no table rows read when there is no filter). Pending:
    # open and past due, the due date read as the filter reads it (on f.due itself SQLite would
    # walk the due index and look up every question past due, resolved or not).
    by_status = dict(
        db.execute(
            f"SELECT f.status, COUNT(*) FROM forecast f WHERE {where} GROUP BY 1", params
        ).fetchall()
    )
    [(pending,)] = db.execute(
        f"SELECT COUNT(*) FROM forecast f WHERE {where} AND f.status = 'open'"
        " AND COALESCE(f.resolved_at, f.due) <= :report_now",
        {**params, "report_now": now},
    ).fetchall()
    resolved = int(by_status.get("resolved", 0))
    annulled = int(by_status.get("annulled", 0))
    questions = sum(int(v) for v in by_status.values())
    still_open = questions - resolved - annulled
    return {
        "questions": questions,
        "resolved": resolved,
        "annulled": annulled,
        "open": still_open,
        "pending": int(pending or 0),
        "not_yet_due": still_open - int(pending or 0),
    }


# --- summaries --------------------------------------------------------------------------------


def _num(value: float | None) -> float | None:
    if value is None or not math.isfinite(value):
        return None
    return float(value)


def _by_forecast_and_outcome(p: Any, y: Any, n: Any) -> tuple[Any, Any, Any]:
    """One row per distinct (probability, outcome) with the summed count, sorted: every score
    depends on the rows only through these counts, and the scoring then runs over at most a few
    hundred rows instead of every (forecaster, month, horizon) group."""
    p_values, p_ix = np.unique(p, return_inverse=True)
    key = p_ix.astype(np.int64) * 2 + (y > 0.5)
    keys, inverse = np.unique(key, return_inverse=True)
    counts = np.bincount(inverse, weights=n, minlength=keys.size)
    return p_values[keys // 2], (keys % 2).astype(np.float64), counts


def _summary(p: Any, y: Any, n: Any, tab: Any, *, full: bool = False, query: ReportQuery) -> dict:
    """Scores of one set of forecasts; ``full`` adds intervals, decompositions and the table."""
    keep = n > 0
    p, y, n, tab = p[keep], y[keep], n[keep], tab[keep]
    total = float(n.sum())
    if total <= 0:
        return {"count": 0}
    p, y, n = _by_forecast_and_outcome(p, y, n)
    s = scoring.summarize(p, y, n)
    corp_b = scoring.corp_decomposition(p, y, n, rule="brier")
    out: dict[str, Any] = {
        k: _num(v) if isinstance(v, float) else v for k, v in s.as_dict().items()
    }
    out["time_averaged_brier"] = _num(float(tab.sum()) / total)
    out["miscalibration"] = _num(corp_b.miscalibration)
    out["discrimination"] = _num(corp_b.discrimination)
    if not full:
        # Per period and group (the bars of the HTML charts): the normal limit of the bootstrap,
        # BS +- 1.96 sd / sqrt(N); a bootstrap per group would cost more than the whole report.
        sd = math.sqrt(float(np.dot(n, ((p - y) ** 2 - s.brier) ** 2)) / total)
        half = 1.959963984540054 * sd / math.sqrt(total)
        low, high = max(0.0, s.brier - half), min(1.0, s.brier + half)
        interval = scoring.BootstrapInterval(low, high, 0.95, "normal", 0, query.bootstrap_seed)
        out["brier_interval"] = interval.as_dict()
        return out
    ci = scoring.bootstrap_brier_interval(
        p, y, n, resamples=query.bootstrap_resamples, seed=query.bootstrap_seed
    )
    out["brier_interval"] = ci.as_dict()
    out["murphy"] = scoring.murphy_decomposition(p, y, n).as_dict()
    out["corp"] = {
        "brier": corp_b.as_dict(),
        "log": scoring.corp_decomposition(p, y, n, rule="log").as_dict(),
    }
    out["calibration"] = [
        {k: _num(v) if isinstance(v, float) else v for k, v in b.as_dict().items()}
        for b in scoring.calibration_table(p, y, n)
    ]
    out["corp_curve"] = [
        {"forecast": a, "recalibrated": b, "count": int(c)}
        for a, b, c in scoring.corp_curve(p, y, n)
    ]
    return out


def _period_key(month: str, unit: str) -> str:
    if unit == "month":
        return month
    year, mon = int(month[:4]), int(month[5:7])
    if unit == "quarter":
        return f"{year}-Q{(mon - 1) // 3 + 1}"
    return str(year)


def period_index(key: str, unit: str) -> int:
    """The position of a period key (``2025-03``, ``2025-Q2``, ``2025``) on a count of months,
    quarters or years: consecutive periods differ by one."""
    year = int(key[:4])
    if unit == "month":
        return year * 12 + int(key[5:7]) - 1
    if unit == "quarter":
        return year * 4 + int(key[-1]) - 1
    return year


def _period_labels(months: list[str], unit: str) -> tuple[list[str], NDArray[np.int64]]:
    """The periods (sorted keys) the ``months`` fall in, and each month's period."""
    keys = [_period_key(m, unit) for m in months]
    labels = sorted(set(keys))
    return labels, np.array([labels.index(k) for k in keys], dtype=np.int64)


def _over_time(rows: _Rows, unit: str, query: ReportQuery) -> dict[str, Any]:
    """Scores per period of resolution, and a rolling window of the last few periods."""
    if not rows.months:
        return {"unit": unit, "window": _ROLLING[unit], "periods": []}
    labels, label_of_month = _period_labels(rows.months, unit)
    per_row = label_of_month[rows.month]
    index = np.array([period_index(k, unit) for k in labels])
    window = _ROLLING[unit]
    se = rows.n * (rows.p - rows.y) ** 2
    n_per = np.bincount(per_row, weights=rows.n, minlength=len(labels))
    se_per = np.bincount(per_row, weights=se, minlength=len(labels))
    periods = []
    codes, p, y, n, tab = _collapse(rows, per_row)
    for i, label in enumerate(labels):
        mask = codes == i
        entry: dict[str, Any] = {"key": label}
        entry.update(_summary(p[mask], y[mask], n[mask], tab[mask], query=query))
        in_window = (index > index[i] - window) & (index <= index[i])
        rn = float(n_per[in_window].sum())
        entry["rolling_count"] = int(rn)
        entry["rolling_brier"] = _num(float(se_per[in_window].sum()) / rn) if rn else None
        periods.append(entry)
    return {"unit": unit, "window": window, "periods": periods}


def _breakdown(
    rows: _Rows, codes: NDArray[np.int64], labels: list[str], query: ReportQuery
) -> list:
    out = []
    codes, p, y, n, tab = _collapse(rows, codes)
    for i, label in enumerate(labels):
        mask = codes == i
        if not mask.any():
            continue
        entry: dict[str, Any] = {"key": label}
        entry.update(_summary(p[mask], y[mask], n[mask], tab[mask], query=query))
        out.append(entry)
    return out


def _collapse(rows: _Rows, codes: NDArray[np.int64]) -> tuple[Any, Any, Any, Any, Any]:
    """The rows summed by (group code, probability, outcome): every summary of a group depends
    on its rows only through these sums, and there are far fewer of them than rows (a row is a
    (forecaster, month, horizon) group too)."""
    p_values, p_ix = np.unique(rows.p, return_inverse=True)
    key = (codes.astype(np.int64) * max(p_values.size, 1) + p_ix) * 2 + (rows.y > 0.5)
    keys, inverse = np.unique(key, return_inverse=True)
    n = np.bincount(inverse, weights=rows.n, minlength=keys.size)
    tab = np.bincount(inverse, weights=rows.tab, minlength=keys.size)
    pair = keys // 2
    return (
        pair // max(p_values.size, 1),
        p_values[pair % max(p_values.size, 1)],
        (keys % 2).astype(np.float64),
        n,
        tab,
    )


def _pct(x: float) -> str:
    return f"{100 * x:.0f}%"


def _findings(overall: dict[str, Any], over_time: dict[str, Any], alone: bool) -> list[str]:
    """Plain words, only where the sample supports them (see the module docstring); "you" only
    when the report is about one forecaster (``alone``)."""
    you, your = ("you", "your") if alone else ("the forecasters", "the")
    n = overall.get("count", 0)
    if n < FINDING_MIN_TOTAL:
        return [
            f"Only {n} scored forecast{'s' if n != 1 else ''}: too few to say how calibrated "
            f"{you} are (the report states findings from {FINDING_MIN_TOTAL} on)."
        ]
    found = []
    for b in overall["calibration"]:
        if b["count"] < FINDING_MIN_COUNT:
            continue
        mean, obs, lo, hi = b["mean_forecast"], b["observed"], b["ci_low"], b["ci_high"]
        if lo <= mean <= hi or abs(mean - obs) < FINDING_MIN_GAP:
            continue
        label = f"{_pct(b['low'])}-{_pct(b['high'])}"
        said = (
            f"{your} {label} forecasts (mean {_pct(mean)}) came true {_pct(obs)} of the time "
            f"(n={b['count']}, 95% CI {100 * lo:.0f}-{100 * hi:.0f}%)"
        )
        if mean >= 0.5:
            verdict = (
                f"{you} are overconfident at the top end"
                if obs < mean
                else f"{you} are underconfident here: these came true more often than {you} said"
            )
        else:
            verdict = (
                f"{you} are overconfident at the low end: these happened more often than {you} said"
                if obs > mean
                else f"{you} are underconfident here: these happened less often than {you} said"
            )
        found.append(f"{said[0].upper()}{said[1:]}: {verdict}.")
    yes = round(overall["base_rate"] * n)
    lo, hi = (float(v) for v in scoring.wilson_interval(yes, n))
    said = overall["mean_forecast"]
    if not lo <= said <= hi and abs(said - overall["base_rate"]) >= FINDING_MIN_GAP:
        lean = "YES" if said > hi else "NO"
        found.append(
            f"On average {you} said {_pct(said)} and {_pct(overall['base_rate'])} came true "
            f"(n={n}, 95% CI {100 * lo:.0f}-{100 * hi:.0f}%): {you} lean towards {lean}."
        )
    ci = overall["brier_interval"]
    if ci["high"] < 0.25:
        found.append(
            f"{your.capitalize()} Brier score {overall['brier']:.3f} (95% CI {ci['low']:.3f}-{ci['high']:.3f}) "
            "beats always saying 50% (0.250)."
        )
    elif ci["low"] > 0.25:
        found.append(
            f"{your.capitalize()} Brier score {overall['brier']:.3f} (95% CI {ci['low']:.3f}-{ci['high']:.3f}) "
            "is worse than always saying 50% (0.250)."
        )
    else:
        found.append(
            f"{your.capitalize()} Brier score {overall['brier']:.3f} (95% CI {ci['low']:.3f}-{ci['high']:.3f}) "
            "cannot yet be told apart from always saying 50% (0.250)."
        )
    if not any("confident" in f for f in found):
        found.insert(
            0,
            f"No calibration bin with at least {FINDING_MIN_COUNT} forecasts is off both beyond "
            "its 95% interval and by 5 points or more.",
        )
    return found


class ReportCache(Protocol):
    """Where :func:`build_report` may keep the parts of reports that only a write can change
    (JSON-ready dicts by key); it must be shared by every process that serves them."""

    def get(self, key: str) -> dict[str, Any] | None:
        """The value stored under ``key``, or None."""

    def put(self, key: str, value: dict[str, Any]) -> None:
        """Store ``value`` under ``key``."""


def _state(db: Executor, query: ReportQuery) -> str:
    """The cache key of ``query`` on the database as it is now (see the module docstring)."""
    # A registration or an estimate changes no score: estimates close with their question, and
    # an imported closed question ends with its closing entry.
    head = db.execute(
        "SELECT seq, hash FROM ledger WHERE kind NOT IN ('register', 'estimate')"
        " ORDER BY seq DESC LIMIT 1"
    ).fetchall()
    return repr((_VERSION, query, [tuple(r) for r in head]))


def _scored_report(db: Executor, query: ReportQuery, time_unit: str) -> dict[str, Any]:
    """The parts of the report read from the scored estimates (and the numbers of scored
    forecasts and forecasters, ``scored`` and ``forecasters``)."""
    s = read_scored(db, *_scored_where(query))
    rows, tag_rows = _gather(s, db)
    types = _typed(db, query, time_unit)
    part: dict[str, Any] = {
        "scored": int(rows.n.sum()),
        "forecasters": len(rows.names),
        "types": types,
        "team": None,
    }
    if part["scored"] == 0:
        part.update(
            overall={"count": 0},
            over_time={"unit": time_unit, "window": _ROLLING[time_unit], "periods": []},
            breakdowns={"tag": [], "forecaster": [], "horizon": []},
            groups=[],
            findings=[]
            if any(t["count"] for t in types.values())
            else ["No resolved forecasts to score yet."],
        )
        return part
    overall = _summary(rows.p, rows.y, rows.n, rows.tab, full=True, query=query)
    over_time = _over_time(rows, time_unit, query)
    breakdowns = {
        "tag": [
            {"key": name, **_summary(r.p, r.y, r.n, r.tab, query=query)} for name, r in tag_rows
        ],
        "forecaster": _breakdown(rows, rows.who, rows.names, query),
        "horizon": _breakdown(rows, rows.horizon, [label for label, _ in HORIZONS], query),
    }
    groups = over_time["periods"] if query.group_by in _ROLLING else breakdowns[query.group_by]
    if query.group_by == "forecaster":
        part["team"] = team.team(s, min_count=query.min_count).as_dict()
    part.update(
        overall=overall,
        over_time=over_time,
        breakdowns=breakdowns,
        groups=groups,
        findings=_findings(overall, over_time, len(rows.names) == 1),
    )
    return part


def build_report(
    source: Session | sqlite3.Connection,
    query: ReportQuery | None = None,
    *,
    now: datetime | None = None,
    cache: ReportCache | None = None,
) -> dict[str, Any]:
    """The calibration report as a JSON-ready dict (see the module docstring for the rules).

    ``source`` is a session, or a sqlite3 connection to a file at the current schema (the fast
    path of ``tracker report``); every query then runs in one read transaction. With a
    ``cache``, the scored parts come from it when the database has not changed since they were
    kept there (the same dict, to the last bit).
    """
    query = query or ReportQuery()
    now = now or clock_now()
    db = executor(source)
    # A bare connection in autocommit mode: every query in one read transaction of our own.
    own = source if isinstance(source, sqlite3.Connection) and not source.in_transaction else None
    if own is not None:
        own.execute("BEGIN")
    time_unit = query.group_by if query.group_by in _ROLLING else "quarter"
    try:
        key = _state(db, query) if cache is not None else None
        part = cache.get(key) if cache is not None and key is not None else None
        if part is None:
            part = _scored_report(db, query, time_unit)
            if cache is not None and key is not None:
                cache.put(key, part)
        counts: dict[str, int] = _counts(db, query, now)
    finally:
        if own is not None:
            own.execute("ROLLBACK")
    counts.update(scored=part["scored"], forecasters=part["forecasters"])
    return {
        "version": _VERSION,
        "generated_at": now.isoformat(timespec="seconds") + "Z",
        "filters": {
            "by": query.by,
            "tag": query.tag,
            "since": query.since.isoformat() + "Z" if query.since else None,
            "until": query.until.isoformat() + "Z" if query.until else None,
            "group_by": query.group_by,
        },
        "policy": {
            "log_clamp": list(scoring.CLAMP),
            "bins": scoring.BINS,
            "bootstrap": {"resamples": query.bootstrap_resamples, "seed": query.bootstrap_seed},
            "finding_min_count": FINDING_MIN_COUNT,
            "finding_min_total": FINDING_MIN_TOTAL,
            "coverage_levels": list(distributions.LEVELS),
            "pit_bins": distributions.PIT_BINS,
        },
        "counts": counts,
        **{k: v for k, v in part.items() if k not in counts},
    }
