"""Calibration reports built from the database: which forecasts count, how each is scored, and the
breakdowns, as one JSON-ready dict that every renderer reads.

Rules (they make a score honest):

- Only resolved questions are scored. Annulled ones are excluded; open questions past their due
  date are counted as *pending* and not scored; open questions not yet due are counted only.
- Each forecaster is scored on their own estimates: per question and forecaster, the last estimate
  made before the due date and before the resolution (ties in time: the later-recorded one). A
  market's price imported as forecaster ``manifold``, ``metaculus`` or ``polymarket`` is simply
  another forecaster.
- Beside it, the Brier score averaged over the forecaster's open lifetime of the question (from
  their first estimate to the earlier of due date and resolution), from the estimate history.
- Filters: ``by`` (forecaster), ``tag``, ``since``/``until`` (on the resolution date of resolved and
  annulled questions and the due date of open ones).
- Periods (``month``/``quarter``/``year``) are those of the resolution date; the rolling window
  covers the last 12 months, 4 quarters or 3 years. Horizon is the time from the scored estimate
  to the due date.

Speed: questions with a single estimate (the bulk of big ledgers) are grouped by (probability,
outcome, forecaster, month, horizon): in the database on PostgreSQL; on SQLite, whose GROUP BY
sorts every row, read as numeric columns (``julianday`` does the date arithmetic) and counted with
numpy. Questions with an estimate history are read estimate by estimate, ordered, and reduced with
numpy. Each summary is computed over the distinct (probability, outcome) counts of its rows. There
is no Python loop per forecast.

Findings rule: a calibration bin gets a sentence only when it holds at least
:data:`FINDING_MIN_COUNT` forecasts and its mean forecast lies outside the Wilson 95% interval of
its observed frequency, and the two differ by at least :data:`FINDING_MIN_GAP` (5 points: with a
big sample a smaller gap is significant but nothing to act on); overall statements need at least
:data:`FINDING_MIN_TOTAL` forecasts: a lean towards YES or NO when the mean forecast lies outside
the Wilson 95% interval of the base rate and 5 points from it, and a comparison with always saying 50% from the bootstrap interval of the Brier score.
(Ten bins are ten tests: at 95% one in twenty well-calibrated bins is flagged by chance; the
count and interval are printed with every finding so a reader can weigh it.)
"""

from __future__ import annotations

import calendar
import io
import json
import math
import os
import re
import selectors
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from itertools import chain
from time import monotonic
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import numpy as np
from numpy.typing import NDArray

from predictions.clock import now as clock_now
from predictions.clock import to_utc_naive
from predictions.errors import InputError
from predictions.validation import parse_tag
from reports import scoring

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

__all__ = [
    "FINDING_MIN_COUNT",
    "FINDING_MIN_GAP",
    "FINDING_MIN_TOTAL",
    "GROUP_BY",
    "HORIZONS",
    "ReportQuery",
    "build_report",
    "parse_since",
    "parse_until",
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
#: Character d of this string is the horizon bucket of a span of d whole days (SQLite lookup).
_HORIZON_TABLE = "".join(
    str(next(i for i, (_, upper) in enumerate(HORIZONS) if d < upper))
    for d in range(int(HORIZONS[-2][1]))
)
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
    #: On SQLite, a second process reads half of the questions when there are this many
    #: (0: never). The result is the same either way.
    split_rows: int = 200_000

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


# --- the database, read with plain SQL ---------------------------------------------------------
#
# Every query is SQL text with :named parameters. On SQLite it runs on the standard library's
# sqlite3 connection (``tracker report`` opens the file without SQLAlchemy, whose import alone
# costs a third of a second); on PostgreSQL on the session's connection. One text serves both
# databases; the few functions that differ are in :class:`_Db`.

#: How SQLAlchemy stores a datetime on SQLite (see predictions.lite).
_SQLITE_TIME = "%Y-%m-%d %H:%M:%S.%f"
_JOINED = "estimate e JOIN forecast f ON f.id = e.forecast_id"
#: The same join as one pass along the estimate table, each question looked up by its key: on
#: SQLite the fastest plan when most questions are resolved (the planner would walk the status
#: index and look every row up twice). The part process splits it by estimate id.
_SCANNED = "estimate e CROSS JOIN forecast f ON f.id = e.forecast_id"
#: Questions with more than one estimate (any forecaster): read estimate by estimate.
_MULTI = "SELECT forecast_id FROM estimate GROUP BY forecast_id HAVING COUNT(id) > 1"


class _Db:
    """The report's view of one database: a sqlite3 connection, or a SQLAlchemy session."""

    def __init__(self, source: Any) -> None:
        self.raw: sqlite3.Connection | None = None
        self.conn: Any = None
        if isinstance(source, sqlite3.Connection):
            self.raw = source
        else:
            conn = source.connection()
            if conn.dialect.name == "sqlite":
                self.raw = conn.connection.dbapi_connection
            else:
                self.conn = conn
        self.sqlite = self.raw is not None

    def time(self, value: datetime) -> Any:
        """A datetime parameter as the database compares it."""
        return value.strftime(_SQLITE_TIME) if self.sqlite else value

    def all(self, sql: str, params: dict[str, Any] | None = None) -> list[tuple[Any, ...]]:
        if self.raw is not None:
            return self.raw.execute(sql, params or {}).fetchall()
        from sqlalchemy import text

        return [tuple(row) for row in self.conn.execute(text(sql), params or {})]

    def days(self, col: str) -> str:
        """A datetime as a number of days (for differences only)."""
        if self.sqlite:
            return f"julianday({col})"
        return f"(CAST(EXTRACT(EPOCH FROM {col}) AS DOUBLE PRECISION) / 86400.0)"

    def month(self, col: str) -> str:
        """'YYYY-MM' of a datetime (SQLite stores 'YYYY-MM-DD HH:MM:SS.ffffff')."""
        return f"substr({col}, 1, 7)" if self.sqlite else f"to_char({col}, 'YYYY-MM')"

    def least(self, a: str, b: str) -> str:
        return f"min({a}, {b})" if self.sqlite else f"LEAST({a}, {b})"

    def horizon_bucket(self, due: str, made: str) -> str:
        """The index in :data:`HORIZONS` of the time from ``made`` to ``due``."""
        span = f"({self.days(due)} - {self.days(made)})"
        last = len(HORIZONS) - 1
        if self.sqlite:
            # Every bound is a whole number of days, so the bucket of the span is the bucket of
            # its whole days; a lookup string evaluates the span once (a CASE would repeat it).
            digit = f"nullif(substr('{_HORIZON_TABLE}', CAST({span} AS INTEGER) + 1, 1), '')"
            return f"CAST(coalesce({digit}, '{last}') AS INTEGER)"
        whens = " ".join(
            f"WHEN {span} < {upper!r} THEN {i}"
            for i, (_, upper) in enumerate(HORIZONS)
            if math.isfinite(upper)
        )
        return f"(CASE {whens} ELSE {last} END)"


def _filters(
    db: _Db, query: ReportQuery, *, by: str, when: str
) -> tuple[list[str], dict[str, Any]]:
    """The conditions of ``--by`` (the SQL ``by``, with a :by parameter), ``--tag``, and
    ``--since``/``--until`` (on the time ``when``)."""
    conds: list[str] = []
    params: dict[str, Any] = {}
    if query.by:
        conds.append(by)
        params["by"] = query.by
    if query.tag:
        conds.append("f.id IN (SELECT forecast_id FROM tag WHERE name = :tag)")
        params["tag"] = query.tag
    if query.since:
        conds.append(f"{when} >= :since")
        params["since"] = db.time(query.since)
    if query.until:
        conds.append(f"{when} <= :until")
        params["until"] = db.time(query.until)
    return conds, params


def _scored_where(db: _Db, query: ReportQuery) -> tuple[str, dict[str, Any]]:
    """The scored estimates: of resolved questions, made before the due date and the resolution."""
    conds, params = _filters(db, query, by="e.forecaster = :by", when="f.resolved_at")
    conds = [
        "f.status = 'resolved'",
        "f.outcome IS NOT NULL",
        "e.made_at < f.due",
        "e.made_at < f.resolved_at",
        *conds,
    ]
    return " AND ".join(conds), params


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


def _single_where(
    db: _Db, query: ReportQuery, *, any_history: bool | None = None
) -> tuple[str, dict[str, Any], bool]:
    """The conditions of the scored estimates of questions with one estimate, and whether any
    question has an estimate history (looked up unless given)."""
    where, params = _scored_where(db, query)
    if any_history is not None:
        where = f"{where} AND e.forecast_id NOT IN ({_MULTI})" if any_history else where
        return where, params, any_history
    # Is there any estimate history at all? (More estimates than questions with one: two counts
    # along the (forecast_id, made_at) index.) When not (a ledger of one estimate per question),
    # the history query and filter are skipped.
    # (Two queries: together SQLite counts the distinct ids the slow way.)
    [(estimates,)] = db.all("SELECT COUNT(*) FROM estimate")
    [(questions,)] = db.all("SELECT COUNT(DISTINCT forecast_id) FROM estimate")
    any_history = estimates > questions
    if any_history:
        where = f"{where} AND e.forecast_id NOT IN ({_MULTI})"
    return where, params, any_history


def _gather(
    db: _Db, query: ReportQuery, part: _Part | None = None, *, scan: bool = False
) -> tuple[_Rows, list[tuple[str, _Rows]]]:
    """Every scored estimate, grouped; and by tag. ``scan``: read single-estimate questions in one
    pass along the estimate table (on SQLite, when most questions are resolved)."""
    where, params = _scored_where(db, query)
    single_where, _, any_history = _single_where(db, query)
    month = db.month("f.resolved_at")
    bucket = db.horizon_bucket("f.due", "e.made_at")

    # 1. Questions with one estimate: one row per distinct (probability, outcome, forecaster,
    # month, horizon) with its count. On SQLite read as numbers (half of them by a second
    # process when there are many); elsewhere grouped in the database.
    single: _Single | None = None
    if part is not None:
        single = _single_halves(db, single_where, params, any_history, scan, part)
    elif db.sqlite:
        single = _single_by_fetch(db, single_where, params, joined=_SCANNED if scan else _JOINED)
    if single is None:
        single = _single_by_group(db, single_where, params, month, bucket)

    # 2. Questions with an estimate history: every estimate before the cut-off, in order.
    history: list[tuple[Any, ...]] = []
    if any_history:
        close = db.least("f.due", "f.resolved_at")
        history = db.all(
            f"SELECT e.forecast_id, e.forecaster, e.probability, {db.days('e.made_at')},"
            f" {db.days(close)}, f.outcome, {month}, {bucket} FROM {_JOINED}"
            f" WHERE {where} AND e.forecast_id IN ({_MULTI})"
            " ORDER BY e.forecast_id, e.forecaster, e.made_at, e.id",
            params,
        )

    # 3. Tags of scored questions (single ones aggregated; history ones by id). Read from the tag
    # side, and not at all when no question has a tag.
    tag_single: Sequence[Any] = []
    tag_multi: Sequence[Any] = []
    if db.all("SELECT forecast_id FROM tag LIMIT 1"):
        tag_single = db.all(
            "SELECT t.name, e.probability, f.outcome, COUNT(*) FROM tag t"
            " JOIN forecast f ON f.id = t.forecast_id JOIN estimate e ON e.forecast_id = f.id"
            f" WHERE {single_where} GROUP BY 1, 2, 3",
            params,
        )
        if history:
            tag_multi = db.all(
                f"SELECT forecast_id, name FROM tag WHERE forecast_id IN ({_MULTI})"
                " ORDER BY forecast_id, name"
            )

    names = sorted(set(single.names) | {r[1] for r in history})
    months = sorted(set(single.months) | {r[6] for r in history})
    name_ix = {s: i for i, s in enumerate(names)}
    month_ix = {s: i for i, s in enumerate(months)}
    to_name = np.array([name_ix[v] for v in single.names] or [0], dtype=np.int64)
    to_month = np.array([month_ix[v] for v in single.months] or [0], dtype=np.int64)
    s_p, s_y, s_n, s_h = single.p, single.y, single.n, single.horizon
    s_who, s_month = to_name[single.who], to_month[single.month]
    s_tab = s_n * (s_p - s_y) ** 2  # a lone estimate holds for the whole open lifetime

    m_fid, m_p, m_y, m_who, m_month, m_h, m_tab = _reduce_history(history, name_ix, month_ix)

    rows = _Rows(
        p=np.concatenate([s_p, m_p]),
        y=np.concatenate([s_y, m_y]),
        n=np.concatenate([s_n, np.ones_like(m_p)]),
        tab=np.concatenate([s_tab, m_tab]),
        who=np.concatenate([s_who, m_who]),
        month=np.concatenate([s_month, m_month]),
        horizon=np.concatenate([s_h, m_h]),
        names=names,
        months=months,
    )
    tag_rows = _tag_rows(tag_single, tag_multi, m_fid, m_p, m_y, m_tab)
    return rows, tag_rows


@dataclass
class _Single:
    """Questions with one estimate, grouped: ``who``/``month`` index ``names``/``months``."""

    p: NDArray[np.float64]
    y: NDArray[np.float64]
    n: NDArray[np.float64]
    who: NDArray[np.int64]
    month: NDArray[np.int64]
    horizon: NDArray[np.int64]
    names: list[str]
    months: list[str]


def _single_by_group(
    db: _Db, where: str, params: dict[str, Any], month: str, bucket: str
) -> _Single:
    """Grouped in the database (PostgreSQL hashes this; any database can run it)."""
    rows = db.all(
        f"SELECT e.probability, f.outcome, e.forecaster, {month}, {bucket}, COUNT(*)"
        f" FROM {_JOINED} WHERE {where} GROUP BY 1, 2, 3, 4, 5",
        params,
    )
    names = sorted({r[2] for r in rows})
    months = sorted({r[3] for r in rows})
    name_ix = {v: i for i, v in enumerate(names)}
    month_ix = {v: i for i, v in enumerate(months)}
    return _Single(
        p=np.array([r[0] for r in rows], dtype=np.float64),
        y=np.array([r[1] for r in rows], dtype=np.float64),
        n=np.array([r[5] for r in rows], dtype=np.float64),
        who=np.array([name_ix[r[2]] for r in rows], dtype=np.int64),
        month=np.array([month_ix[r[3]] for r in rows], dtype=np.int64),
        horizon=np.array([r[4] for r in rows], dtype=np.int64),
        names=names,
        months=months,
    )


_FETCH_CHUNK = 100_000
#: Separates forecaster names in the instr() lookup; a control character, which no name holds.
_SEP = "\x1f"


def _forecasters(db: _Db) -> list[str]:
    """Every forecaster's name, sorted: one step along the forecaster index per name (a skip scan;
    DISTINCT would read every entry)."""
    rows = db.all(
        "WITH RECURSIVE n(name) AS (SELECT min(forecaster) FROM estimate UNION ALL"
        " SELECT (SELECT min(forecaster) FROM estimate WHERE forecaster > n.name) FROM n"
        " WHERE n.name IS NOT NULL) SELECT name FROM n WHERE name IS NOT NULL"
    )
    return sorted(r[0] for r in rows)


def _scan_plan(db: _Db, query: ReportQuery) -> bool:
    """Whether to read the estimates in one pass along the estimate table (SQLite, no tag filter,
    at least half the questions resolved: cheaper than the planner's walk along the status index,
    which looks every row up twice). Counts the other questions along the status index, and
    stops at half."""
    if not db.sqlite or query.tag:
        return False
    [(low, high)] = db.all("SELECT (SELECT MIN(id) FROM forecast), (SELECT MAX(id) FROM forecast)")
    if low is None:
        return False
    half = (high - low + 1) // 2
    [(others,)] = db.all(
        "SELECT COUNT(*) FROM (SELECT 1 FROM forecast WHERE status IN ('open', 'annulled')"
        " LIMIT :half)",
        {"half": half + 1},
    )
    return bool(others <= half)


def _single_by_fetch(
    db: _Db,
    where: str,
    params: dict[str, Any],
    names: list[str] | None = None,
    *,
    joined: str = _JOINED,
) -> _Single | None:
    """Read numeric columns in chunks and group with numpy (SQLite: its GROUP BY sorts every row,
    slower than numpy on the raw values).

    Every column comes back as a number, so a chunk becomes one float array in C: the probability;
    the outcome, the forecaster as a code (a CASE over the names when there are few, else its
    offset in one string of all names with ``instr``) and the resolution month as YYYYMM from the
    stored text, packed in one integer; the horizon as ``julianday(due) - julianday(made_at)``.
    SQLite's ``julianday`` keeps milliseconds, so the spans within a few milliseconds of a bucket
    bound are read again with their times as text and computed to the microsecond (see
    :func:`_exact_spans`). None when a name holds the separator or a stored time cannot be read
    (then the caller groups in SQL instead).
    """
    assert db.raw is not None
    if names is None:
        names = _forecasters(db)
    extra: dict[str, Any] = {}
    if len(names) <= _CASE_MAX_NAMES:
        whens = " ".join(f"WHEN :report_n{i} THEN {i + 1}" for i in range(len(names)))
        code = f"CASE e.forecaster {whens} ELSE 0 END" if names else "0"
        extra = {f"report_n{i}": v for i, v in enumerate(names)}
        index_of = {i + 1: i for i in range(len(names))}
    else:
        if any(_SEP in name for name in names):
            return None
        joined_names = _SEP + _SEP.join(names) + _SEP
        index_of = {joined_names.index(_SEP + v + _SEP) + 1: i for i, v in enumerate(names)}
        code = "instr(:report_names, :report_sep || e.forecaster || :report_sep)"
        extra = {"report_names": joined_names, "report_sep": _SEP}
    # Outcome, forecaster code and YYYYMM packed in one integer (each Python object a row
    # brings costs more than the arithmetic): outcome + 2 * (code + codes * YYYYMM), below 2**53.
    codes = max(index_of, default=0) + 1
    packed = (
        f"f.outcome + 2 * ({code} + {codes} *"
        " (substr(f.resolved_at, 1, 4) * 100 + substr(f.resolved_at, 6, 2)))"
    )
    params = {**params, **extra}
    # The span joins the packed integer too, as a whole number of 1/scale days (a power of two:
    # the scaling is exact, so the bucket of the truncated value is the bucket of the span), when
    # there is room below 2**53; else it is a third column.
    k = min(_SPAN_FRACTION_BITS, 52 - (2 * codes * 1_000_000).bit_length() - _SPAN_DAY_BITS)
    scale = 1 << max(k, 0)
    room = scale << _SPAN_DAY_BITS
    quantum = f"CAST({_SPAN} * {scale} AS INTEGER)"
    if k >= 0:
        read, width = f"({packed}) * {room} + min({quantum}, {room - 1})", 2
    else:
        read, width = f"{packed}, {_SPAN}", 3
    parts = _read_range(
        db.raw, f"SELECT e.probability, {read} FROM {joined} WHERE {where}", params, width
    )
    if parts is None:
        return None
    if not parts:
        e_i = np.empty(0, dtype=np.int64)
        e_f = np.empty(0)
        return _Single(e_f, e_f, e_f, e_i, e_i, e_i, [], [])
    cols = np.concatenate(parts)
    if not np.all(np.isfinite(cols)):
        return None  # NULL from julianday(): a time SQLite cannot read
    if width == 2:
        p, combined = cols.T
        if np.any(combined >= 2.0**53) or np.any(combined < 0):
            return None  # not stored times (no float holds such a value exactly)
        packed_v, quanta = np.divmod(combined.astype(np.int64), room)
        horizon: NDArray[np.int64] = np.asarray(
            np.searchsorted(_UPPERS * scale, quanta, side="right"), dtype=np.int64
        )
        # julianday() keeps milliseconds: spans within one quantum of a bound are read again
        edges = [int(u) * scale + d for u in _UPPERS for d in (-1, 0)]
        unsure = np.isin(quanta, edges)
        unsure_sql = f"{quantum} IN ({', '.join(map(str, edges))})"
    else:
        p, packed_v, span_days = cols.T
        horizon = np.asarray(np.searchsorted(_UPPERS, span_days, side="right"), dtype=np.int64)
        unsure = _unsure_spans(span_days)
        unsure_sql = _UNSURE_SQL
    if unsure.any():
        again = _exact_spans(db, packed, joined, f"{where} AND {unsure_sql}", params)
        if again is None or len(again[0]) != int(unsure.sum()):
            return None
        keep = ~unsure
        p = np.concatenate([p[keep], again[0]])
        packed_v = np.concatenate([packed_v[keep], again[1]])
        horizon = np.concatenate(
            [horizon[keep], np.searchsorted(_UPPERS, np.array(again[2]), side="right")]
        )
    horizon = horizon.astype(np.int64)
    p = np.ascontiguousarray(p)
    rest, y_i = np.divmod(packed_v.astype(np.int64), 2)
    yyyymm, codes_i = np.divmod(rest, codes)
    known = np.array(sorted(index_of), dtype=np.int64)
    pos = np.searchsorted(known, codes_i)
    if np.any(pos >= known.size) or np.any(known[np.minimum(pos, known.size - 1)] != codes_i):
        return None
    who = np.array([index_of[k] for k in known.tolist()], dtype=np.int64)[pos]
    year, mon = np.divmod(yyyymm, 100)
    if np.any((mon < 1) | (mon > 12) | (year < 1)):
        return None  # not a stored time
    month_num = (year - 1970) * 12 + mon - 1  # as numpy's datetime64[M] counts months
    # Group identical (probability, outcome, forecaster, month, horizon) with one integer key,
    # counted in one pass (no sort) when the key range is small, as it is for a real ledger.
    p_values, p_ix = np.unique(p, return_inverse=True)
    first_month = int(month_num.min())
    present = np.bincount(month_num - first_month) > 0
    m_ix = (np.cumsum(present) - 1)[month_num - first_month]
    m_values = (np.flatnonzero(present) + first_month).astype("datetime64[M]")
    sizes = (p_values.size, 2, len(names), m_values.size, len(HORIZONS))
    key = (((p_ix.astype(np.int64) * 2 + y_i) * sizes[2] + who) * sizes[3] + m_ix) * sizes[
        4
    ] + horizon
    if math.prod(sizes) <= _BINCOUNT_FACTOR * key.size:
        counts_all = np.bincount(key, minlength=math.prod(sizes))
        keys = np.flatnonzero(counts_all)
        counts = counts_all[keys]
    else:
        keys, counts = np.unique(key, return_counts=True)
    k_p, k_y, k_who, k_month, k_horizon = np.unravel_index(keys, sizes)
    return _Single(
        p=p_values[k_p],
        y=k_y.astype(np.float64),
        n=counts.astype(np.float64),
        who=k_who.astype(np.int64),
        month=k_month.astype(np.int64),
        horizon=k_horizon.astype(np.int64),
        names=names,
        months=[str(v) for v in np.datetime_as_string(m_values, unit="M").tolist()],
    )


def _read_range(
    conn: sqlite3.Connection, sql: str, params: dict[str, Any], width: int
) -> list[NDArray[np.float64]] | None:
    """Rows of ``width`` numbers, as float arrays of at most :data:`_FETCH_CHUNK` rows each; None
    when a value is not a number (a NULL: a time ``julianday()`` cannot read)."""
    cursor = conn.execute(sql, params)
    parts: list[NDArray[np.float64]] = []
    while rows := cursor.fetchmany(_FETCH_CHUNK):
        # (fromiter over the flattened rows: about twice as fast as np.array of the tuples)
        try:
            flat = np.fromiter(chain.from_iterable(rows), np.float64, count=width * len(rows))
        except (TypeError, ValueError):
            return None
        parts.append(flat.reshape(len(rows), width))
    return parts


# --- the big read in two processes (SQLite) ----------------------------------------------------
#
# Reading a million rows from SQLite costs about a microsecond of one core per row, and Python's
# lock makes threads no help (the sqlite3 module releases it around every row, and handing it
# back and forth costs more than it saves). So on a big file a second process reads the upper
# part of the ids (of estimates when the read is a scan of the estimate table, else of questions)
# while this one reads the lower part; each groups its rows with numpy
# and the two small results are merged. The second process reads the same snapshot: it compares
# the head of the ledger, which every change of a question, estimate or tag extends in the same
# transaction, with this process's; when they differ (a write came between), or the process
# fails for any reason, this process reads the upper half itself.

_LEDGER_HEAD = "SELECT seq, hash FROM ledger ORDER BY seq DESC LIMIT 1"
#: Exit status of a part process that cannot help (another snapshot, unreadable values).
PART_DECLINED = 3
_PART_TIMEOUT_S = 600
#: The part process's share of the ids: less than half, as it starts later (a new interpreter
#: and numpy) and hands its rows over (balanced on the 1M bench, where this process counts the
#: questions while it waits).
_PART_SHARE = 0.40


@dataclass
class _Part:
    """The upper part of the ids (``> mid``), read by another process."""

    proc: subprocess.Popen[bytes]
    mid: int = 0
    #: Work for this process while it waits for the other one (called once, by result()).
    idle: Callable[[], None] | None = None

    def send(self, any_history: bool, names: list[str], scan: bool, mid: int) -> None:
        """What this process found while the other one started: whether any question has an
        estimate history, the forecasters (the same snapshot, so the same answers), the plan and
        where the other process's part begins."""
        self.mid = mid
        if self.proc.stdin is None:
            return
        job = {"history": any_history, "names": names, "scan": scan, "mid": mid}
        try:
            self.proc.stdin.write(json.dumps(job).encode())
            self.proc.stdin.close()
        except OSError:
            pass  # it has gone: result() says so
        self.proc.stdin = None

    def result(self) -> _Single | None:
        """Its grouped rows, or None when it declined or failed."""
        if self.idle is not None:
            idle, self.idle = self.idle, None
            idle()
        out = self._output()
        if not out:  # declined, failed or too slow
            return None
        try:
            with np.load(io.BytesIO(out), allow_pickle=False) as data:
                return _Single(
                    p=data["p"],
                    y=data["y"],
                    n=data["n"],
                    who=data["who"],
                    month=data["month"],
                    horizon=data["horizon"],
                    names=[str(v) for v in data["names"].tolist()],
                    months=[str(v) for v in data["months"].tolist()],
                )
        except Exception:  # cut short (it died while writing) or not ours: read that part here
            return None

    def _output(self) -> bytes:
        """Everything it writes, up to the end of its output: it closes its output when done, so
        this process does not wait for the other one's exit (its interpreter tearing down)."""
        stream = self.proc.stdout
        if stream is None:
            return b""
        deadline = monotonic() + _PART_TIMEOUT_S
        chunks: list[bytes] = []
        with selectors.DefaultSelector() as selector:
            selector.register(stream, selectors.EVENT_READ)
            while (left := deadline - monotonic()) > 0:
                if not selector.select(left):
                    continue
                chunk = os.read(stream.fileno(), 1 << 20)
                if not chunk:
                    return b"".join(chunks)
                chunks.append(chunk)
        self.close()
        return b""

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.communicate()


def _start_part(db: _Db, query: ReportQuery) -> _Part | None:
    """Start reading the upper half of a big SQLite file in another process, or None."""
    if db.raw is None or not db.raw.in_transaction or query.split_rows <= 0:
        return None
    files = [row[2] for row in db.raw.execute("PRAGMA database_list") if row[1] == "main"]
    if not files or not files[0]:
        return None
    # Two subqueries: each is one step along the primary key (together they scan the table).
    low, high = db.raw.execute(
        "SELECT (SELECT MIN(id) FROM forecast), (SELECT MAX(id) FROM forecast)"
    ).fetchone()
    if low is None or high - low + 1 < max(query.split_rows, 2):
        return None
    head = db.raw.execute(_LEDGER_HEAD).fetchone()
    job = {
        "path": files[0],
        "head": list(head) if head else None,
        "by": query.by,
        "tag": query.tag,
        "since": query.since.isoformat() if query.since else None,
        "until": query.until.isoformat() if query.until else None,
    }
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "reports.part", json.dumps(job)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
    except OSError:
        return None
    return _Part(proc)


def read_part(conn: sqlite3.Connection, job: dict[str, Any]) -> bytes | None:
    """The work of a part process: the grouped upper half, as an .npz file, or None."""
    conn.execute("BEGIN")
    head = conn.execute(_LEDGER_HEAD).fetchone()
    if (list(head) if head else None) != job["head"]:
        return None
    query = ReportQuery(
        by=job["by"],
        tag=job["tag"],
        since=datetime.fromisoformat(job["since"]) if job["since"] else None,
        until=datetime.fromisoformat(job["until"]) if job["until"] else None,
    )
    db = _Db(conn)
    where, params, _ = _single_where(db, query, any_history=job["history"])
    joined, split = (_SCANNED, "e.id") if job["scan"] else (_JOINED, "f.id")
    single = _single_by_fetch(
        db,
        f"{where} AND {split} > :report_mid",
        {**params, "report_mid": job["mid"]},
        job["names"],
        joined=joined,
    )
    if single is None:
        return None
    buffer = io.BytesIO()
    np.savez(
        buffer,
        p=single.p,
        y=single.y,
        n=single.n,
        who=single.who,
        month=single.month,
        horizon=single.horizon,
        names=np.array(single.names, dtype=str),
        months=np.array(single.months, dtype=str),
    )
    return buffer.getvalue()


def _single_halves(
    db: _Db, where: str, params: dict[str, Any], any_history: bool, scan: bool, part: _Part
) -> _Single | None:
    """The lower part read here, the upper part by ``part`` (or here, when it could not)."""
    assert db.raw is not None
    names = _forecasters(db)
    joined, split, table = (_SCANNED, "e.id", "estimate") if scan else (_JOINED, "f.id", "forecast")
    # Two subqueries: each is one step along the primary key (together they scan the table).
    low, high = db.raw.execute(
        f"SELECT (SELECT MIN(id) FROM {table}), (SELECT MAX(id) FROM {table})"
    ).fetchone()
    mid = (low or 0) + int(((high or 0) - (low or 0)) * (1 - _PART_SHARE))
    part.send(any_history, names, scan, mid)
    mine = _single_by_fetch(
        db,
        f"{where} AND {split} <= :report_mid",
        {**params, "report_mid": mid},
        names,
        joined=joined,
    )
    if mine is None:
        return None
    theirs = part.result()
    if theirs is None:
        theirs = _single_by_fetch(
            db,
            f"{where} AND {split} > :report_mid",
            {**params, "report_mid": mid},
            names,
            joined=joined,
        )
    return None if theirs is None else _merge_single(mine, theirs)


def _merge_single(a: _Single, b: _Single) -> _Single:
    """Both sets of grouped rows as one, grouped again and in the same order as one process
    reading everything gives (so that every sum is taken in the same order: same report)."""
    names = sorted(set(a.names) | set(b.names))
    months = sorted(set(a.months) | set(b.months))

    def remap(codes: NDArray[np.int64], old: list[str], new: list[str]) -> NDArray[np.int64]:
        index = {v: i for i, v in enumerate(new)}
        table = np.array([index[v] for v in old] or [0], dtype=np.int64)
        return table[codes]

    p_values, p_ix = np.unique(np.concatenate([a.p, b.p]), return_inverse=True)
    sizes = (p_values.size, 2, max(len(names), 1), max(len(months), 1), len(HORIZONS))
    key = np.ravel_multi_index(
        (
            p_ix.astype(np.int64),
            np.concatenate([a.y, b.y]).astype(np.int64),
            np.concatenate([remap(a.who, a.names, names), remap(b.who, b.names, names)]),
            np.concatenate([remap(a.month, a.months, months), remap(b.month, b.months, months)]),
            np.concatenate([a.horizon, b.horizon]),
        ),
        sizes,
    )
    keys, inverse = np.unique(key, return_inverse=True)
    counts = np.bincount(inverse, weights=np.concatenate([a.n, b.n]), minlength=keys.size)
    k_p, k_y, k_who, k_month, k_horizon = np.unravel_index(keys, sizes)
    return _Single(
        p=p_values[k_p],
        y=k_y.astype(np.float64),
        n=counts.astype(np.float64),
        who=k_who.astype(np.int64),
        month=k_month.astype(np.int64),
        horizon=k_horizon.astype(np.int64),
        names=names,
        months=months,
    )


#: Count groups with bincount when the key range is at most this many times the number of rows.
_BINCOUNT_FACTOR = 4
#: Up to this many forecasters, a CASE gives each a code (cheaper per row than instr()).
_CASE_MAX_NAMES = 32
#: The days from estimate to due date as SQLite reads them (to the millisecond).
_SPAN = "(julianday(f.due) - julianday(e.made_at))"
#: The upper bounds of the horizon buckets, in days (every one a whole number).
_UPPERS = np.array([upper for _, upper in HORIZONS if math.isfinite(upper)])
#: julianday() rounds each time to the millisecond: spans this close to a bound are re-read.
_HORIZON_SLACK_DAYS = 1e-7
#: The span packed with the other values: whole days below 2**_SPAN_DAY_BITS (a longer span is
#: cut there, in the last bucket anyway), in 2**-_SPAN_FRACTION_BITS days at most (21 s).
_SPAN_DAY_BITS = 11
_SPAN_FRACTION_BITS = 12
#: The same test in SQL, on the same doubles (SQLite's round() and numpy's rint() agree so close
#: to a whole number).
_UNSURE_SQL = (
    f"abs({_SPAN} - round({_SPAN})) < {_HORIZON_SLACK_DAYS!r}"
    f" AND round({_SPAN}) IN ({', '.join(repr(float(u)) for u in _UPPERS)})"
)


def _unsure_spans(span_days: NDArray[np.float64]) -> NDArray[np.bool_]:
    """Which spans read by julianday() are too close to a bucket bound to trust."""
    nearest = np.rint(span_days)
    return np.isin(nearest, _UPPERS) & (np.abs(span_days - nearest) < _HORIZON_SLACK_DAYS)


def _exact_spans(
    db: _Db, packed: str, joined: str, where: str, params: dict[str, Any]
) -> tuple[list[float], list[int], list[float]] | None:
    """The probability, packed value and exact span (to the microsecond) of every row of
    ``where`` (the rows whose julianday() span is unsure, selected by the same test as in numpy,
    not by id: the big read then needs no id column); None when a time cannot be read."""
    rows = db.all(
        f"SELECT e.probability, {packed}, f.due, e.made_at FROM {joined} WHERE {where}", params
    )
    p: list[float] = []
    values: list[int] = []
    spans: list[float] = []
    for prob, value, due, made in rows:
        if due is None or made is None:
            return None
        try:
            spans.append((_as_datetime(due) - _as_datetime(made)) / _ONE_DAY)
        except ValueError:
            return None
        p.append(prob)
        values.append(value)
    return p, values, spans


def _as_datetime(value: Any) -> datetime:
    """A stored time: text on SQLite (as SQLAlchemy writes it), a datetime elsewhere."""
    return datetime.fromisoformat(value) if isinstance(value, str) else value


_ONE_DAY = timedelta(days=1)


def _reduce_history(
    history: Sequence[Any], name_ix: dict[str, int], month_ix: dict[str, int]
) -> tuple[Any, ...]:
    """From ordered estimates to one scored row per (question, forecaster): the last estimate,
    with the time-averaged Brier score of the whole history."""
    if not history:
        e_i = np.empty(0, dtype=np.int64)
        e_f = np.empty(0)
        return e_i, e_f, e_f, e_i, e_i, e_i, e_f
    cols = list(zip(*history, strict=True))
    fid = np.array(cols[0], dtype=np.int64)
    who = np.array([name_ix[v] for v in cols[1]], dtype=np.int64)
    p = np.array(cols[2], dtype=np.float64)
    t = np.array(cols[3], dtype=np.float64)
    close = np.array(cols[4], dtype=np.float64)
    y = np.array(cols[5], dtype=np.float64)
    mon = np.array([month_ix[v] for v in cols[6]], dtype=np.int64)
    hz = np.array(cols[7], dtype=np.int64)
    group_change = np.r_[True, (fid[1:] != fid[:-1]) | (who[1:] != who[:-1])]
    group = np.cumsum(group_change) - 1
    last = np.r_[group_change[1:], True]
    _, tab = scoring.time_averaged_brier(group, t, p, y, close)
    return fid[last], p[last], y[last], who[last], mon[last], hz[last], tab


def _tag_rows(
    tag_single: Sequence[Any],
    tag_multi: Sequence[Any],
    m_fid: NDArray[np.int64],
    m_p: NDArray[np.float64],
    m_y: NDArray[np.float64],
    m_tab: NDArray[np.float64],
) -> list[tuple[str, _Rows]]:
    """Per tag, the scored rows of its questions (a question with two tags counts in both)."""
    tags = sorted({r[0] for r in tag_single} | {r[1] for r in tag_multi})
    if not tags:
        return []
    tag_ix = {t: i for i, t in enumerate(tags)}
    parts_code: list[NDArray[np.int64]] = []
    parts_p: list[NDArray[np.float64]] = []
    parts_y: list[NDArray[np.float64]] = []
    parts_n: list[NDArray[np.float64]] = []
    parts_tab: list[NDArray[np.float64]] = []
    if tag_single:
        cols = list(zip(*tag_single, strict=True))
        p = np.array(cols[1], dtype=np.float64)
        y = np.array(cols[2], dtype=np.float64)
        n = np.array(cols[3], dtype=np.float64)
        parts_code.append(np.array([tag_ix[v] for v in cols[0]], dtype=np.int64))
        parts_p.append(p)
        parts_y.append(y)
        parts_n.append(n)
        parts_tab.append(n * (p - y) ** 2)
    if tag_multi and m_fid.size:
        cols = list(zip(*tag_multi, strict=True))
        t_fid = np.array(cols[0], dtype=np.int64)
        t_code = np.array([tag_ix[v] for v in cols[1]], dtype=np.int64)
        order = np.argsort(m_fid, kind="stable")
        sorted_fid = m_fid[order]
        lo = np.searchsorted(sorted_fid, t_fid, side="left")
        hi = np.searchsorted(sorted_fid, t_fid, side="right")
        reps = hi - lo
        # Expand each (question, tag) pair to the scored rows of that question.
        pair = np.repeat(np.arange(t_fid.size), reps)
        offset = np.arange(pair.size) - np.repeat(np.cumsum(reps) - reps, reps)
        rows = order[lo[pair] + offset]
        parts_code.append(t_code[pair])
        parts_p.append(m_p[rows])
        parts_y.append(m_y[rows])
        parts_n.append(np.ones(rows.size))
        parts_tab.append(m_tab[rows])
    code = np.concatenate(parts_code)
    p_all = np.concatenate(parts_p)
    y_all = np.concatenate(parts_y)
    n_all = np.concatenate(parts_n)
    tab_all = np.concatenate(parts_tab)
    result = []
    for i, name in enumerate(tags):
        mask = code == i
        if not mask.any():
            continue
        empty = np.zeros(int(mask.sum()), dtype=np.int64)
        result.append(
            (
                name,
                _Rows(
                    p=p_all[mask],
                    y=y_all[mask],
                    n=n_all[mask],
                    tab=tab_all[mask],
                    who=empty,
                    month=empty,
                    horizon=empty,
                ),
            )
        )
    return result


def _counts(db: _Db, query: ReportQuery, now: datetime) -> dict[str, int]:
    """How many questions match the filters, by state (the date filter is on the resolution date
    of closed questions and the due date of open ones)."""
    conds, params = _filters(
        db,
        query,
        by="(f.author = :by OR f.id IN (SELECT forecast_id FROM estimate WHERE forecaster = :by))",
        when="COALESCE(f.resolved_at, f.due)",
    )
    conds.insert(0, "1 = 1")
    params["now"] = db.time(now)
    where = " AND ".join(conds)
    # By status along the status index (no table rows read when there is no filter); the open
    # questions past due along the same index.
    by_status = dict(
        db.all(f"SELECT f.status, COUNT(*) FROM forecast f WHERE {where} GROUP BY 1", params)
    )
    [(pending,)] = db.all(
        f"SELECT COUNT(*) FROM forecast f WHERE {where} AND f.status = 'open' AND f.due <= :now",
        params,
    )
    resolved = int(by_status.get("resolved", 0))
    annulled = int(by_status.get("annulled", 0))
    questions = sum(int(v) for v in by_status.values())
    still_open = questions - resolved - annulled
    counts = {
        "questions": questions,
        "resolved": resolved,
        "annulled": annulled,
        "open": still_open,
        "pending": int(pending or 0),
        "not_yet_due": still_open - int(pending or 0),
    }
    return counts


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


def _period_index(key: str, unit: str) -> int:
    year = int(key[:4])
    if unit == "month":
        return year * 12 + int(key[5:7]) - 1
    if unit == "quarter":
        return year * 4 + int(key[-1]) - 1
    return year


def _over_time(rows: _Rows, unit: str, query: ReportQuery) -> dict[str, Any]:
    """Scores per period of resolution, and a rolling window of the last few periods."""
    if not rows.months:
        return {"unit": unit, "window": _ROLLING[unit], "periods": []}
    keys = [_period_key(m, unit) for m in rows.months]
    labels = sorted(set(keys))
    label_of_month = np.array([labels.index(k) for k in keys], dtype=np.int64)
    per_row = label_of_month[rows.month]
    index = np.array([_period_index(k, unit) for k in labels])
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


def _findings(overall: dict[str, Any], over_time: dict[str, Any]) -> list[str]:
    """Plain words, only where the sample supports them (see the module docstring)."""
    n = overall.get("count", 0)
    if n < FINDING_MIN_TOTAL:
        return [
            f"Only {n} scored forecast{'s' if n != 1 else ''}: too few to say how calibrated "
            f"you are (the report states findings from {FINDING_MIN_TOTAL} on)."
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
            f"your {label} forecasts (mean {_pct(mean)}) came true {_pct(obs)} of the time "
            f"(n={b['count']}, 95% CI {100 * lo:.0f}-{100 * hi:.0f}%)"
        )
        if mean >= 0.5:
            verdict = (
                "you are overconfident at the top end"
                if obs < mean
                else "you are underconfident here: these came true more often than you said"
            )
        else:
            verdict = (
                "you are overconfident at the low end: these happened more often than you said"
                if obs > mean
                else "you are underconfident here: these happened less often than you said"
            )
        found.append(f"{said[0].upper()}{said[1:]}: {verdict}.")
    yes = round(overall["base_rate"] * n)
    lo, hi = (float(v) for v in scoring.wilson_interval(yes, n))
    said = overall["mean_forecast"]
    if not lo <= said <= hi and abs(said - overall["base_rate"]) >= FINDING_MIN_GAP:
        lean = "YES" if said > hi else "NO"
        found.append(
            f"On average you said {_pct(said)} and {_pct(overall['base_rate'])} came true "
            f"(n={n}, 95% CI {100 * lo:.0f}-{100 * hi:.0f}%): you lean towards {lean}."
        )
    ci = overall["brier_interval"]
    if ci["high"] < 0.25:
        found.append(
            f"Your Brier score {overall['brier']:.3f} (95% CI {ci['low']:.3f}-{ci['high']:.3f}) "
            "beats always saying 50% (0.250)."
        )
    elif ci["low"] > 0.25:
        found.append(
            f"Your Brier score {overall['brier']:.3f} (95% CI {ci['low']:.3f}-{ci['high']:.3f}) "
            "is worse than always saying 50% (0.250)."
        )
    else:
        found.append(
            f"Your Brier score {overall['brier']:.3f} (95% CI {ci['low']:.3f}-{ci['high']:.3f}) "
            "cannot yet be told apart from always saying 50% (0.250)."
        )
    if not any("confident" in f for f in found):
        found.insert(
            0,
            f"No calibration bin with at least {FINDING_MIN_COUNT} forecasts is off both beyond "
            "its 95% interval and by 5 points or more.",
        )
    return found


def build_report(
    source: Session | sqlite3.Connection,
    query: ReportQuery | None = None,
    *,
    now: datetime | None = None,
) -> dict[str, Any]:
    """The calibration report as a JSON-ready dict (see the module docstring for the rules).

    ``source`` is a session, or a sqlite3 connection to a file at the current schema (the fast
    path of ``tracker report``); every query then runs in one read transaction.
    """
    query = query or ReportQuery()
    now = now or clock_now()
    db = _Db(source)
    # A bare connection in autocommit mode: every query in one read transaction of our own.
    own = db.raw if db.raw is not None and not db.raw.in_transaction else None
    if own is not None:
        own.execute("BEGIN")
    part = None
    try:
        part = _start_part(db, query)
        # The counts after the big read's start (the other process starts sooner); with a part
        # process, while it finishes its part.
        counts: dict[str, int] = {}
        if part is not None:
            part.idle = lambda: counts.update(_counts(db, query, now))
        rows, tag_rows = _gather(db, query, part, scan=_scan_plan(db, query))
        if not counts:
            counts = _counts(db, query, now)
    finally:
        if part is not None:
            part.close()
        if own is not None:
            own.execute("ROLLBACK")
    counts["scored"] = int(rows.n.sum())
    counts["forecasters"] = len({rows.names[i] for i in np.unique(rows.who)}) if rows.names else 0
    time_unit = query.group_by if query.group_by in _ROLLING else "quarter"
    report: dict[str, Any] = {
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
        },
        "counts": counts,
    }
    if counts["scored"] == 0:
        report.update(
            overall={"count": 0},
            over_time={"unit": time_unit, "window": _ROLLING[time_unit], "periods": []},
            breakdowns={"tag": [], "forecaster": [], "horizon": []},
            groups=[],
            findings=["No resolved forecasts to score yet."],
        )
        return report
    keep = rows.n > 0
    overall = _summary(
        rows.p[keep], rows.y[keep], rows.n[keep], rows.tab[keep], full=True, query=query
    )
    over_time = _over_time(rows, time_unit, query)
    breakdowns = {
        "tag": [
            {"key": name, **_summary(r.p, r.y, r.n, r.tab, query=query)} for name, r in tag_rows
        ],
        "forecaster": _breakdown(rows, rows.who, rows.names, query),
        "horizon": _breakdown(rows, rows.horizon, [label for label, _ in HORIZONS], query),
    }
    groups = over_time["periods"] if query.group_by in _ROLLING else breakdowns[query.group_by]
    report.update(
        overall=overall,
        over_time=over_time,
        breakdowns=breakdowns,
        groups=groups,
        findings=_findings(overall, over_time),
    )
    return report
