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
its observed frequency; overall statements need at least :data:`FINDING_MIN_TOTAL` forecasts:
a lean towards YES or NO when the mean forecast lies outside the Wilson 95% interval of the base
rate, and a comparison with always saying 50% from the bootstrap interval of the Brier score.
(Ten bins are ten tests: at 95% one in twenty well-calibrated bins is flagged by chance; the
count and interval are printed with every finding so a reader can weigh it.)
"""

from __future__ import annotations

import calendar
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import (
    Float,
    Integer,
    String,
    and_,
    case,
    func,
    literal,
    literal_column,
    select,
    true,
)
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from predictions.clock import now as clock_now
from predictions.clock import to_utc_naive
from predictions.errors import InputError
from predictions.models import Estimate, Forecast, Tag
from predictions.validation import parse_tag
from reports import scoring

__all__ = [
    "FINDING_MIN_COUNT",
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


# --- SQL, per dialect -------------------------------------------------------------------------


@dataclass(frozen=True)
class _Sql:
    dialect: str

    def days(self, col: Any) -> ColumnElement[Any]:
        """A datetime as a number of days (for differences only)."""
        if self.dialect == "sqlite":
            return func.julianday(col, type_=Float)
        return func.extract("epoch", col).cast(Float) / 86400.0

    def month(self, col: Any) -> ColumnElement[str]:
        """'YYYY-MM' of a datetime."""
        if self.dialect == "sqlite":
            # SQLAlchemy stores SQLite datetimes as 'YYYY-MM-DD HH:MM:SS.ffffff'.
            return func.substr(col, 1, 7, type_=String)
        return func.to_char(col, "YYYY-MM", type_=String)

    def least(self, a: Any, b: Any) -> ColumnElement[Any]:
        if self.dialect == "sqlite":
            return func.min(a, b)
        return func.least(a, b)

    def horizon_bucket(self, due: Any, made: Any) -> ColumnElement[int]:
        """The index in :data:`HORIZONS` of the time from ``made`` to ``due``."""
        span = self.days(due) - self.days(made)
        if self.dialect == "sqlite":
            # Every bound is a whole number of days, so the bucket of the span is the bucket of
            # its whole days; a lookup string evaluates the span once (a CASE would repeat it).
            whole = span.cast(Integer)
            table = literal(_HORIZON_TABLE, String)
            digit = func.nullif(func.substr(table, whole + 1, 1), "")
            return func.coalesce(digit, str(len(HORIZONS) - 1)).cast(Integer)
        whens = [(span < upper, i) for i, (_, upper) in enumerate(HORIZONS) if math.isfinite(upper)]
        return case(*whens, else_=len(HORIZONS) - 1).cast(Integer)


def _scored_conditions(query: ReportQuery) -> list[ColumnElement[bool]]:
    conds: list[ColumnElement[bool]] = [
        Forecast.status == "resolved",
        Forecast.outcome.is_not(None),
        Estimate.made_at < Forecast.due,
        Estimate.made_at < Forecast.resolved_at,
    ]
    if query.by:
        conds.append(Estimate.forecaster == query.by)
    if query.tag:
        conds.append(Forecast.id.in_(select(Tag.forecast_id).where(Tag.name == query.tag)))
    if query.since:
        conds.append(Forecast.resolved_at >= query.since)
    if query.until:
        conds.append(Forecast.resolved_at <= query.until)
    return conds


def _positions(count: int) -> list[Any]:
    """``GROUP BY 1, 2, ...``: PostgreSQL does not match repeated expressions with parameters."""
    return [literal_column(str(i)) for i in range(1, count + 1)]


def _multi_ids() -> Any:
    """Questions with more than one estimate (any forecaster): read estimate by estimate."""
    return (
        select(Estimate.forecast_id)
        .group_by(Estimate.forecast_id)
        .having(func.count(Estimate.id) > 1)
        .scalar_subquery()
    )


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

    def subset(self, mask: NDArray[np.bool_]) -> tuple[Any, Any, Any, Any]:
        return self.p[mask], self.y[mask], self.n[mask], self.tab[mask]


def _codes(values: list[str]) -> tuple[list[str], NDArray[np.int64]]:
    names = sorted(set(values))
    index = {name: i for i, name in enumerate(names)}
    return names, np.array([index[v] for v in values], dtype=np.int64)


def _gather(session: Session, query: ReportQuery) -> tuple[_Rows, list[tuple[str, _Rows]]]:
    sql = _Sql(session.get_bind().dialect.name)
    conds = _scored_conditions(query)
    month = sql.month(Forecast.resolved_at)
    bucket = sql.horizon_bucket(Forecast.due, Estimate.made_at)
    multi = _multi_ids()
    # One cheap look along the (forecast_id, made_at) index: is there any estimate history at all?
    # When not (a ledger of one estimate per question), the history query and filter are skipped.
    first_history = (
        select(Estimate.forecast_id)
        .group_by(Estimate.forecast_id)
        .having(func.count(Estimate.id) > 1)
        .limit(1)
    )
    any_history = session.execute(first_history).first() is not None
    joined = Estimate.__table__.join(Forecast.__table__, Forecast.id == Estimate.forecast_id)
    single_only = Estimate.forecast_id.not_in(multi) if any_history else true()

    # 1. Questions with one estimate: one row per distinct (probability, outcome, forecaster,
    # month, horizon) with its count. Core execution: no ORM row loading.
    conn = session.connection()
    where = and_(*conds, single_only)
    single = _single_by_fetch(conn, joined, where) if sql.dialect == "sqlite" else None
    if single is None:
        single = _single_by_group(conn, joined, where, month, bucket)

    # 2. Questions with an estimate history: every estimate before the cut-off, in order.
    close = sql.least(Forecast.due, Forecast.resolved_at)
    multi_stmt = (
        select(
            Estimate.forecast_id,
            Estimate.forecaster,
            Estimate.probability,
            sql.days(Estimate.made_at),
            sql.days(close),
            Forecast.outcome,
            month,
            bucket,
        )
        .select_from(joined)
        .where(and_(*conds), Estimate.forecast_id.in_(multi))
        .order_by(Estimate.forecast_id, Estimate.forecaster, Estimate.made_at, Estimate.id)
    )
    history = conn.execute(multi_stmt).all() if any_history else []

    # 3. Tags of scored questions (single ones aggregated; history ones by id). Read from the tag
    # side, and not at all when no question has a tag.
    tag_single: Sequence[Any] = []
    tag_multi: Sequence[Any] = []
    if session.execute(select(Tag.forecast_id).limit(1)).first() is not None:
        tagged = Tag.__table__.join(Forecast.__table__, Forecast.id == Tag.forecast_id).join(
            Estimate.__table__, Estimate.forecast_id == Forecast.id
        )
        tag_single = session.execute(
            select(Tag.name, Estimate.probability, Forecast.outcome, func.count())
            .select_from(tagged)
            .where(and_(*conds), single_only)
            .group_by(*_positions(3))
        ).all()
        if history:
            tag_multi = session.execute(
                select(Tag.forecast_id, Tag.name)
                .where(Tag.forecast_id.in_(multi))
                .order_by(Tag.forecast_id, Tag.name)
            ).all()

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
    conn: Any, joined: Any, where: ColumnElement[bool], month: Any, bucket: Any
) -> _Single:
    """Grouped in the database (PostgreSQL hashes this; any database can run it)."""
    stmt = (
        select(
            Estimate.probability, Forecast.outcome, Estimate.forecaster, month, bucket, func.count()
        )
        .select_from(joined)
        .where(where)
        .group_by(*_positions(5))
    )
    rows = conn.execute(stmt).all()
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


def _single_by_fetch(conn: Any, joined: Any, where: ColumnElement[bool]) -> _Single | None:
    """Read numeric columns in chunks and group with numpy (SQLite: its GROUP BY sorts every row,
    slower than numpy on the raw values).

    Every column comes back as a number, so a chunk becomes one float array in C: the forecaster
    as its offset in one string of all names (``instr``), the resolution day as the Julian day of
    its date part (exact), the horizon as ``julianday(due) - julianday(made_at)``. SQLite's
    ``julianday`` keeps milliseconds, so a span within a few milliseconds of a bucket bound is
    re-read as text and computed to the microsecond (:func:`_exact_horizons`). None when a name
    holds the separator or a stored time cannot be read (then the caller groups in SQL instead).
    """
    names = sorted(conn.execute(select(Estimate.forecaster).distinct()).scalars().all())
    if any(_SEP in name for name in names):
        return None
    joined_names = _SEP + _SEP.join(names) + _SEP
    offset_of = {joined_names.index(_SEP + v + _SEP) + 1: i for i, v in enumerate(names)}
    code = func.instr(literal(joined_names, String), literal(_SEP) + Estimate.forecaster + _SEP)
    stmt = (
        select(
            Estimate.id,
            Estimate.probability,
            Forecast.outcome,
            code,
            func.julianday(func.substr(Forecast.resolved_at, 1, 10), type_=Float),
            func.julianday(Forecast.due, type_=Float)
            - func.julianday(Estimate.made_at, type_=Float),
        )
        .select_from(joined)
        .where(where)
    )
    # Raw DB-API rows of numbers, in this session's transaction.
    cursor = conn.connection.dbapi_connection.cursor()
    cursor.execute(*_compiled(conn, stmt))
    parts: list[NDArray[np.float64]] = []
    while rows := cursor.fetchmany(_FETCH_CHUNK):
        parts.append(np.array(rows, dtype=np.float64).reshape(len(rows), 6))
    if not parts:
        e_i = np.empty(0, dtype=np.int64)
        e_f = np.empty(0)
        return _Single(e_f, e_f, e_f, e_i, e_i, e_i, [], [])
    cols = np.concatenate(parts)
    if not np.all(np.isfinite(cols)):
        return None  # NULL from julianday(): a time SQLite cannot read
    ids, p, y, offsets, resolved_jd, span_days = cols.T
    p, y = np.ascontiguousarray(p), np.ascontiguousarray(y)
    known = np.array(sorted(offset_of), dtype=np.int64)
    offsets_i = offsets.astype(np.int64)
    pos = np.searchsorted(known, offsets_i)
    if np.any(pos >= known.size) or np.any(known[np.minimum(pos, known.size - 1)] != offsets_i):
        return None
    who = np.array([offset_of[k] for k in known.tolist()], dtype=np.int64)[pos]
    # Julian day of a date at midnight is n + 0.5 exactly; n + 0.5 - 2440588 is days since 1970.
    day = (np.floor(resolved_jd + 0.5).astype(np.int64) - _UNIX_EPOCH_JDN).astype("datetime64[D]")
    month_num = day.astype("datetime64[M]").astype(np.int64)
    uppers = np.array([upper for _, upper in HORIZONS if math.isfinite(upper)])
    horizon = np.searchsorted(uppers, span_days, side="right").astype(np.int64)
    nearest = np.rint(span_days)
    unsure = np.isin(nearest, uppers) & (np.abs(span_days - nearest) < _HORIZON_SLACK_DAYS)
    if unsure.any():
        exact = _exact_horizons(conn, ids[unsure].astype(np.int64).tolist())
        if exact is None:
            return None
        horizon[unsure] = np.searchsorted(uppers, exact, side="right")
    # Group identical (probability, outcome, forecaster, month, horizon) with one integer key,
    # counted in one pass (no sort) when the key range is small, as it is for a real ledger.
    p_values, p_ix = np.unique(p, return_inverse=True)
    first_month = int(month_num.min())
    present = np.bincount(month_num - first_month) > 0
    m_ix = (np.cumsum(present) - 1)[month_num - first_month]
    m_values = (np.flatnonzero(present) + first_month).astype("datetime64[M]")
    sizes = (p_values.size, 2, len(names), m_values.size, len(HORIZONS))
    key = (
        ((p_ix.astype(np.int64) * 2 + y.astype(np.int64)) * sizes[2] + who) * sizes[3] + m_ix
    ) * sizes[4] + horizon
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


#: Count groups with bincount when the key range is at most this many times the number of rows.
_BINCOUNT_FACTOR = 4
#: Julian day number of 1970-01-01.
_UNIX_EPOCH_JDN = 2_440_588
#: julianday() rounds each time to the millisecond: spans this close to a bound are re-read.
_HORIZON_SLACK_DAYS = 1e-7


def _exact_horizons(conn: Any, ids: list[int]) -> NDArray[np.float64] | None:
    """Days from estimate to due date of these estimates, to the microsecond, in ``ids`` order."""
    spans: dict[int, float] = {}
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        stmt = (
            select(Estimate.id, Forecast.due, Estimate.made_at)
            .select_from(
                Estimate.__table__.join(Forecast.__table__, Forecast.id == Estimate.forecast_id)
            )
            .where(Estimate.id.in_(chunk))
        )
        for eid, due, made in conn.execute(stmt):
            if due is None or made is None:
                return None
            spans[eid] = (due - made) / _ONE_DAY
    return np.array([spans[i] for i in ids], dtype=np.float64)


_ONE_DAY = timedelta(days=1)


def _compiled(conn: Any, stmt: Any) -> tuple[str, tuple[Any, ...]]:
    """A statement as SQL text and positional parameters for the DB-API cursor."""
    compiled = stmt.compile(dialect=conn.dialect)
    params = compiled.construct_params()
    return str(compiled), tuple(params[name] for name in compiled.positiontup or ())


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


def _counts(session: Session, query: ReportQuery, now: datetime) -> dict[str, int]:
    """How many questions match the filters, by state (the date filter is on the resolution date
    of closed questions and the due date of open ones)."""
    conds: list[ColumnElement[bool]] = [true()]
    if query.by:
        conds.append(
            (Forecast.author == query.by)
            | Forecast.id.in_(select(Estimate.forecast_id).where(Estimate.forecaster == query.by))
        )
    if query.tag:
        conds.append(Forecast.id.in_(select(Tag.forecast_id).where(Tag.name == query.tag)))
    when = func.coalesce(Forecast.resolved_at, Forecast.due)
    if query.since:
        conds.append(when >= query.since)
    if query.until:
        conds.append(when <= query.until)
    is_open = Forecast.status.not_in(("resolved", "annulled"))

    def _count(cond: ColumnElement[bool]) -> Any:
        # One pass with conditional sums: no GROUP BY, so no sort of the whole table.
        return func.coalesce(func.sum(case((cond, 1), else_=0)), 0)

    stmt = select(
        func.count(),
        _count(Forecast.status == "resolved"),
        _count(and_(Forecast.status == "resolved", Forecast.resolved_at < Forecast.due)),
        _count(Forecast.status == "annulled"),
        _count(is_open),
        _count(and_(is_open, Forecast.due <= now)),
    ).where(and_(*conds))
    row = session.execute(stmt).one()
    questions, resolved, early, annulled, still_open, pending = (int(v or 0) for v in row)
    counts = {
        "questions": questions,
        "resolved": resolved,
        "resolved_before_due": early,
        "annulled": annulled,
        "open": still_open,
        "pending": pending,
        "not_yet_due": still_open - pending,
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
    for i, label in enumerate(labels):
        mask = per_row == i
        entry: dict[str, Any] = {"key": label}
        entry.update(_summary(*rows.subset(mask), query=query))
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
    for i, label in enumerate(labels):
        mask = codes == i
        if not mask.any():
            continue
        entry: dict[str, Any] = {"key": label}
        entry.update(_summary(*rows.subset(mask), query=query))
        out.append(entry)
    return out


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
        if lo <= mean <= hi:
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
    if not lo <= said <= hi:
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
            "No calibration bin with at least "
            f"{FINDING_MIN_COUNT} forecasts is off by more than its 95% interval.",
        )
    return found


def build_report(
    session: Session, query: ReportQuery | None = None, *, now: datetime | None = None
) -> dict[str, Any]:
    """The calibration report as a JSON-ready dict (see the module docstring for the rules)."""
    query = query or ReportQuery()
    now = now or clock_now()
    counts = _counts(session, query, now)
    rows, tag_rows = _gather(session, query)
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
