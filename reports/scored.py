"""Which estimate a forecast is scored on: the one rule, for the calibration report, the daily
email and any page to come.

Per resolved question and forecaster, the score uses the **last estimate made before the due date
and before the resolution**; an estimate made at either instant, or later, does not count, and of
two estimates made at the same instant the later-recorded one (the higher id) does. Each
forecaster is scored on their own estimates: a market's price recorded as forecaster ``manifold``
is one more forecaster. Annulled and open questions are not scored.

Beside it, the time-averaged Brier score over the forecaster's open lifetime of the question, from
the same estimates (:func:`reports.scoring.time_averaged_brier`: each estimate holds until the
next one, the last until the earlier of due date and resolution).

Worked example: due 10 March, resolved YES on 4 March; alice said 40% on 1 March and 90% on
4 March at the very instant of the resolution. Her scored estimate is the 40% (Brier 0.36), over
an open lifetime of 3 days.

:func:`read_scored` applies the rule to a database with one plain-SQL query (a sqlite3
connection, or a SQLAlchemy session on any database) and picks the last estimate with numpy.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from predictions.chain import Executor, SQLiteExecutor
from reports import scoring

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

__all__ = ["Scored", "executor", "read_scored"]

#: The estimates the rule may score (``e``, joined to its forecast ``f``): those of resolved
#: questions, made before the due date and before the resolution.
_CANDIDATES = (
    "f.status = 'resolved' AND f.kind = 'binary' AND f.outcome IS NOT NULL"
    " AND e.made_at < f.due AND e.made_at < f.resolved_at"
)
_READ = (
    "SELECT e.forecast_id, e.forecaster, e.probability, e.made_at, f.outcome, f.due,"
    " f.resolved_at FROM estimate e JOIN forecast f ON f.id = e.forecast_id"
    f" WHERE {_CANDIDATES}"
)
#: One row of :data:`_READ` as numpy reads it (text or datetime times, 0/1 or bool outcomes).
_ROW = np.dtype(
    [
        ("forecast_id", np.int64),
        ("forecaster", object),
        ("probability", np.float64),
        ("made_at", "datetime64[us]"),
        ("outcome", np.float64),
        ("due", "datetime64[us]"),
        ("resolved_at", "datetime64[us]"),
    ]
)
#: the columns kept as they are (the forecaster becomes a code)
_NUMBERS = ("forecast_id", "probability", "made_at", "outcome", "due", "resolved_at")
_CHUNK = 50_000
_DAY = np.timedelta64(1, "D")


@dataclass(frozen=True)
class Scored:
    """One row per scored (question, forecaster), ordered by question then forecaster: the scored
    estimate's probability and time, the outcome (1.0 or 0.0), the question's due date and
    resolution, and the time-averaged Brier score. ``who`` indexes ``names`` (sorted)."""

    forecast_id: NDArray[np.int64]
    who: NDArray[np.int64]
    names: list[str]
    probability: NDArray[np.float64]
    made_at: NDArray[np.datetime64]
    outcome: NDArray[np.float64]
    due: NDArray[np.datetime64]
    resolved_at: NDArray[np.datetime64]
    time_averaged_brier: NDArray[np.float64]


def executor(source: Session | sqlite3.Connection) -> Executor:
    """The plain-SQL executor of a sqlite3 connection (no SQLAlchemy import: ``tracker report``
    on a SQLite file) or of a session's transaction."""
    if isinstance(source, sqlite3.Connection):
        return SQLiteExecutor(source)
    from predictions.db import executor as session_executor

    return session_executor(source)


def read_scored(db: Executor, where: str = "1 = 1", params: dict[str, Any] | None = None) -> Scored:
    """The scored estimates of the questions matching ``where`` (SQL over ``e``, the estimate,
    and ``f``, its forecast, with ``:name`` params; e.g. from
    :func:`predictions.records.forecast_where`)."""
    # Each (question, forecaster)'s estimates in the order they were made (and recorded): on
    # SQLite the join walks the status index and the (forecast_id, forecaster, made_at, id) index
    # in this order (no sort).
    cursor = db.execute(
        f"{_READ} AND {where} ORDER BY f.id, e.forecaster, e.made_at, e.id", params or {}
    )
    parts: list[list[NDArray[Any]]] = []
    codes: dict[str, int] = {}
    while rows := cursor.fetchmany(_CHUNK):
        chunk = np.array(list(map(tuple, rows)), dtype=_ROW)  # (a SQLAlchemy row is no tuple)
        who = chunk["forecaster"].tolist()
        for name in dict.fromkeys(who):
            codes.setdefault(name, len(codes))
        code = np.fromiter(map(codes.__getitem__, who), np.int64, len(who))
        # (copies: the chunk, with its forecaster strings, goes)
        parts.append([code, *(chunk[k].copy() for k in _NUMBERS)])
    names = sorted(codes)
    if not parts:
        empty = np.empty(0)
        none = empty.astype("datetime64[us]")
        ids = empty.astype(np.int64)
        return Scored(ids, ids, names, empty, none, empty, none, none, empty)
    columns = [np.concatenate(c) for c in zip(*parts, strict=True)]
    parts.clear()
    rank = np.empty(len(codes), dtype=np.int64)
    rank[[codes[name] for name in names]] = np.arange(len(names))
    who, fid, p, made, y, due, resolved = columns
    who = rank[who]
    # The last estimate of each (question, forecaster) is the scored one.
    first = np.r_[True, (fid[1:] != fid[:-1]) | (who[1:] != who[:-1])]
    last = np.r_[first[1:], True]
    start = made.min()
    _, tab = scoring.time_averaged_brier(
        np.cumsum(first),
        (made - start) / _DAY,
        p,
        y,
        (np.minimum(due, resolved) - start) / _DAY,
    )
    # By question, then forecaster in the order of ``names`` (a database may collate names
    # otherwise, e.g. PostgreSQL by its locale).
    lasts = np.flatnonzero(last)
    by_name = np.argsort(fid[lasts] * len(names) + who[lasts], kind="stable")
    pick = lasts[by_name]
    return Scored(
        forecast_id=fid[pick],
        who=who[pick],
        names=names,
        probability=p[pick],
        made_at=made[pick],
        outcome=y[pick],
        due=due[pick],
        resolved_at=resolved[pick],
        time_averaged_brier=tab[by_name],
    )
