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
from operator import itemgetter
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
    "f.status = 'resolved' AND f.outcome IS NOT NULL"
    " AND e.made_at < f.due AND e.made_at < f.resolved_at"
)
_READ = (
    "SELECT e.forecast_id, e.forecaster, e.probability, e.made_at, f.outcome, f.due,"
    " f.resolved_at FROM estimate e JOIN forecast f ON f.id = e.forecast_id"
    f" WHERE {_CANDIDATES}"
)
_CHUNK = 100_000
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
    # Each question's estimates in the order they were made (and recorded); on SQLite the join
    # walks the status index and the (forecast_id, made_at) index in this order (no sort).
    cursor = db.execute(f"{_READ} AND {where} ORDER BY f.id, e.made_at, e.id", params or {})
    parts: list[list[NDArray[Any]]] = []
    codes: dict[str, int] = {}
    while rows := cursor.fetchmany(_CHUNK):
        n = len(rows)
        fid, who, p, made, y, due, resolved = (map(itemgetter(i), rows) for i in range(7))
        parts.append(
            [
                np.fromiter(fid, np.int64, n),
                np.fromiter((codes.setdefault(name, len(codes)) for name in who), np.int64, n),
                np.fromiter(p, np.float64, n),
                np.array(list(made), dtype="datetime64[us]"),
                np.fromiter(y, np.float64, n),
                np.array(list(due), dtype="datetime64[us]"),
                np.array(list(resolved), dtype="datetime64[us]"),
            ]
        )
    names = sorted(codes)
    if not parts:
        empty = np.empty(0)
        none = empty.astype("datetime64[us]")
        ids = empty.astype(np.int64)
        return Scored(ids, ids, names, empty, none, empty, none, none, empty)
    columns: list[Any] = [np.concatenate(c) for c in zip(*parts, strict=True)]
    parts.clear()
    rank = np.empty(len(codes), dtype=np.int64)
    rank[[codes[name] for name in names]] = np.arange(len(names))
    columns[1] = rank[columns[1]]
    # Grouped by question and forecaster, keeping the order of time within each group: the last
    # estimate of a group is the scored one.
    order = np.argsort(columns[0] * len(names) + columns[1], kind="stable")
    for i, column in enumerate(columns):  # one column at a time: a big ledger's memory
        columns[i] = column[order]
    fid, who, p, made, y, due, resolved = columns
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
    return Scored(
        forecast_id=fid[last],
        who=who[last],
        names=names,
        probability=p[last],
        made_at=made[last],
        outcome=y[last],
        due=due[last],
        resolved_at=resolved[last],
        time_averaged_brier=tab,
    )
