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

The rule is the same for every question type (:data:`predictions.questions.KINDS`): a numeric,
date or choice question's scored estimate is its ``distribution`` (a CDF on the grid, or one
probability per option) and its outcome the ``resolution_value``; the time-averaged Brier score
is binary's alone.

:func:`read_scored` applies the rule to a database with one plain-SQL query (a sqlite3
connection, or a SQLAlchemy session on any database) and picks the last estimate with numpy; of
a non-binary question it then reads only the picked estimates' distributions (a second query by
id: the candidates' blobs are never all held) and decodes them in one ``np.frombuffer``.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from predictions.chain import Executor, SQLiteExecutor
from predictions.questions import GRID, KINDS
from reports import scoring

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

__all__ = ["TYPES", "Scored", "executor", "read_scored", "read_scored_types"]

#: The question types scored on their distributions (:func:`read_scored_types`).
TYPES = KINDS[1:]

#: The estimates the rule may score (``e``, joined to its forecast ``f``): those of resolved
#: questions (binary, or of the other types), made before the due date and before the resolution.
_CANDIDATES = (
    "f.status = 'resolved' AND {kind} AND {outcome} IS NOT NULL"
    " AND e.made_at < f.due AND e.made_at < f.resolved_at"
)
#: What each candidate row carries: the probability (binary) or the estimate's id (whose
#: distribution is read once it is picked), and the outcome or resolution value.
_READ = (
    "SELECT e.forecast_id, e.forecaster, {value}, {made_at}, {outcome}, {due}, {resolved_at}"
    " FROM estimate e JOIN forecast f ON f.id = e.forecast_id WHERE " + _CANDIDATES
)
#: The times as text, which numpy reads ten times faster than datetime objects: SQLite holds them
#: so; PostgreSQL writes them in a fixed form (a plain cast would follow its DateStyle).
_TIMES = {
    "sqlite": {"made_at": "e.made_at", "due": "f.due", "resolved_at": "f.resolved_at"},
    "postgresql": {
        name: f"to_char({column}, 'YYYY-MM-DD HH24:MI:SS.US')"
        for name, column in (
            ("made_at", "e.made_at"),
            ("due", "f.due"),
            ("resolved_at", "f.resolved_at"),
        )
    },
}
_TYPED = "f.kind IN (" + ", ".join(f"'{kind}'" for kind in KINDS[1:]) + ")"
_COLUMNS = {
    "binary": {"value": "e.probability", "outcome": "f.outcome", "kind": "f.kind = 'binary'"},
    "other": {"value": "e.id", "outcome": "f.resolution_value", "kind": _TYPED},
}


def _row(value: Any) -> np.dtype:
    """One row of :data:`_READ` as numpy reads it (text or datetime times, 0/1 or bool
    outcomes)."""
    return np.dtype(
        [
            ("forecast_id", np.int64),
            ("forecaster", object),
            ("value", value),
            ("made_at", "datetime64[us]"),
            ("outcome", np.float64),
            ("due", "datetime64[us]"),
            ("resolved_at", "datetime64[us]"),
        ]
    )


#: the columns kept as they are (the forecaster becomes a code)
_NUMBERS = ("forecast_id", "value", "made_at", "outcome", "due", "resolved_at")
_CHUNK = 50_000
#: ids per query when reading the picked estimates' distributions
_IDS = 10_000
_DAY = np.timedelta64(1, "D")


def _none() -> NDArray[Any]:
    return np.empty(0)


@dataclass(frozen=True)
class Scored:
    """One row per scored (question, forecaster), ordered by question then forecaster: the scored
    estimate's time, the outcome, the question's due date and resolution. ``who`` indexes
    ``names`` (sorted).

    Binary: ``probability``, ``outcome`` 1.0 or 0.0 and the ``time_averaged_brier``. Numeric,
    date and choice: ``outcome`` is the resolution value, ``values`` the scored distributions
    (an ``(n, 201)`` CDF per row; for choice ``(n, W)`` option probabilities padded with zeros
    beyond each row's ``options``) and ``spec`` each row's question as columns (the fields of
    :meth:`predictions.questions.Question.spec`: ``lower``, ``upper`` (dates in POSIX seconds),
    ``open_lower``, ``open_upper``, ``log``; for choice ``ordered``).
    """

    forecast_id: NDArray[np.int64]
    who: NDArray[np.int64]
    names: list[str]
    probability: NDArray[np.float64]
    made_at: NDArray[np.datetime64]
    outcome: NDArray[np.float64]
    due: NDArray[np.datetime64]
    resolved_at: NDArray[np.datetime64]
    time_averaged_brier: NDArray[np.float64]
    kind: str = "binary"
    values: NDArray[np.float64] = field(default_factory=lambda: np.empty((0, 0)))
    options: NDArray[np.int64] = field(default_factory=lambda: np.empty(0, np.int64))
    spec: dict[str, NDArray[Any]] = field(default_factory=dict)


def executor(source: Session | sqlite3.Connection) -> Executor:
    """The plain-SQL executor of a sqlite3 connection (no SQLAlchemy import: ``tracker report``
    on a SQLite file) or of a session's transaction."""
    if isinstance(source, sqlite3.Connection):
        return SQLiteExecutor(source)
    from predictions.db import executor as session_executor

    return session_executor(source)


def read_scored(db: Executor, where: str = "1 = 1", params: dict[str, Any] | None = None) -> Scored:
    """The scored estimates of the binary questions matching ``where`` (SQL over ``e``, the
    estimate, and ``f``, its forecast, with ``:name`` params; e.g. from
    :func:`predictions.records.forecast_where`)."""
    found = _candidates(db, "binary", where, params)
    if found is None:
        return _empty("binary")
    names, (who, fid, p, made, y, due, resolved) = found
    first, pick, by_name = _rule(fid, who, len(names))
    start = made.min()
    _, tab = scoring.time_averaged_brier(
        np.cumsum(first),
        (made - start) / _DAY,
        p,
        y,
        (np.minimum(due, resolved) - start) / _DAY,
    )
    return Scored(
        fid[pick],
        who[pick],
        names,
        p[pick],
        made[pick],
        y[pick],
        due[pick],
        resolved[pick],
        tab[by_name],
    )


def read_scored_types(
    db: Executor, where: str = "1 = 1", params: dict[str, Any] | None = None
) -> dict[str, Scored]:
    """The scored estimates of the numeric, date and choice questions matching ``where`` (as
    :func:`read_scored`), by type: one pass over the candidates of all three."""
    found = _candidates(db, "other", where, params)
    if found is None:
        return {kind: _empty(kind) for kind in TYPES}
    names, (who, fid, eid, made, y, due, resolved) = found
    _, pick, _ = _rule(fid, who, len(names))
    kinds, grid, choices, texts = _distributions(db, eid[pick])
    result = {}
    for kind in TYPES:
        mine = np.flatnonzero(kinds == kind)
        if mine.size == 0:
            result[kind] = _empty(kind)
            continue
        if kind == "choice":
            values, options = _padded([choices[i] for i in mine.tolist()])
        else:  # (no copy of the grid when every row is of this type)
            values = grid if mine.size == pick.size else grid[mine]
            options = np.full(mine.size, GRID, dtype=np.int64)
        rows = pick[mine]
        result[kind] = Scored(
            fid[rows],
            who[rows],
            names,
            _none(),
            made[rows],
            y[rows],
            due[rows],
            resolved[rows],
            _none(),
            kind,
            values,
            options,
            _specs(kind, [texts[i] for i in mine.tolist()]),
        )
    return result


def _empty(kind: str) -> Scored:
    none = _none().astype("datetime64[us]")
    ids = _none().astype(np.int64)
    return Scored(ids, ids, [], _none(), none, _none(), none, none, _none(), kind)


def _candidates(
    db: Executor, which: str, where: str, params: dict[str, Any] | None
) -> tuple[list[str], list[NDArray[Any]]] | None:
    """The forecaster names (sorted) and the columns of the estimates the rule may score
    (``who`` coded by name, forecast, value, made, outcome, due, resolved), each (question,
    forecaster)'s in the order they were made (and recorded); None when there is none."""
    # On SQLite the join walks the status index and the (forecast_id, forecaster, made_at, id)
    # index in this order (no sort).
    read = _READ.format(**_COLUMNS[which], **_TIMES[db.dialect])
    cursor = db.execute(
        f"{read} AND {where} ORDER BY f.id, e.forecaster, e.made_at, e.id", params or {}
    )
    # A SQLAlchemy result's rows straight from its DBAPI cursor, as tuples: no Row object per row
    # (a third of the read). A bare sqlite3 cursor has no .cursor and is read as it is.
    cursor = getattr(cursor, "cursor", cursor)
    row = _row(np.float64 if which == "binary" else np.int64)
    parts: list[list[NDArray[Any]]] = []
    codes: dict[str, int] = {}
    while rows := cursor.fetchmany(_CHUNK):
        chunk = np.array(rows, dtype=row)
        who = chunk["forecaster"].tolist()
        for name in dict.fromkeys(who):
            codes.setdefault(name, len(codes))
        code = np.fromiter(map(codes.__getitem__, who), np.int64, len(who))
        # (copies: the chunk, with its forecaster strings, goes)
        parts.append([code, *(chunk[k].copy() for k in _NUMBERS)])
    if not parts:
        return None
    names = sorted(codes)
    columns = [np.concatenate(c) for c in zip(*parts, strict=True)]
    rank = np.empty(len(codes), dtype=np.int64)
    rank[[codes[name] for name in names]] = np.arange(len(names))
    columns[0] = rank[columns[0]]
    return names, columns


def _rule(
    fid: NDArray[np.int64], who: NDArray[np.int64], names: int
) -> tuple[NDArray[np.bool_], NDArray[np.intp], NDArray[np.intp]]:
    """The rule on ordered candidates: where each (question, forecaster)'s run ``first``
    starts; the ``pick`` of its last estimate (the scored one) for each, by question, then
    forecaster in name order (a database may collate names otherwise, e.g. PostgreSQL by its
    locale); and ``by_name``, that order among the runs."""
    first = np.r_[True, (fid[1:] != fid[:-1]) | (who[1:] != who[:-1])]
    lasts = np.flatnonzero(np.r_[first[1:], True])
    by_name = np.argsort(fid[lasts] * names + who[lasts], kind="stable")
    return first, lasts[by_name], by_name


def _distributions(
    db: Executor, ids: NDArray[np.int64]
) -> tuple[NDArray[Any], NDArray[np.float64], dict[int, Any], list[str]]:
    """The type, distribution and question (JSON) of the estimates ``ids``, in their order: the
    CDFs as rows of one ``(n, GRID)`` matrix (decoded a chunk at a time by one
    ``np.frombuffer``; rows of choice estimates left unset), the choice estimates' distributions
    by row."""
    order = np.argsort(ids)
    kinds = np.empty(ids.size, dtype=object)
    grid = np.empty((ids.size, GRID))
    choices: dict[int, Any] = {}
    texts: list[str] = [""] * ids.size
    for start in range(0, ids.size, _IDS):
        wanted = ids[order[start : start + _IDS]]
        listed = ",".join(map(str, wanted.tolist()))  # (our own integer ids)
        found = db.execute(
            "SELECT e.id, f.kind, e.distribution, f.question FROM estimate e"
            f" JOIN forecast f ON f.id = e.forecast_id WHERE e.id IN ({listed})"
        ).fetchall()
        got = np.array([r[0] for r in found], dtype=np.int64)
        at = order[start + np.searchsorted(wanted, got)]
        cdfs = []
        for i, (_, kind, blob, text) in zip(at.tolist(), found, strict=True):
            kinds[i], texts[i] = kind, text
            if kind == "choice":
                choices[i] = blob
            else:
                cdfs.append(blob)
        continuous = at[kinds[at] != "choice"]
        grid[continuous] = np.frombuffer(b"".join(cdfs), dtype="<f8").reshape(-1, GRID)
    return kinds, grid, choices, texts


def _padded(blobs: list[Any]) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
    """Choice distributions (:func:`predictions.questions.encode`: little-endian float64s) as
    one matrix, each row zero-padded to the longest, and each row's number of options."""
    lengths = np.fromiter(map(len, blobs), np.int64, len(blobs)) // 8
    flat = np.frombuffer(b"".join(blobs), dtype="<f8")
    values = np.zeros((len(blobs), int(lengths.max())))
    values[np.arange(values.shape[1]) < lengths[:, None]] = flat
    return values, lengths


def _specs(kind: str, texts: list[str]) -> dict[str, NDArray[Any]]:
    """The questions' specs as columns: what :meth:`Question.from_spec` reads, for many at once
    (one ``json.loads`` of them all; one by one, 100,000 specs cost the report a third of its
    time)."""
    specs = json.loads("[" + ",".join(texts) + "]")

    def flag(name: str) -> NDArray[np.bool_]:
        return np.array([d.get(name) for d in specs], dtype=bool)  # (None: False)

    if kind == "choice":
        return {"ordered": flag("ordered")}
    columns: dict[str, NDArray[Any]] = {"open_lower": flag("open_lower")}
    columns.update(open_upper=flag("open_upper"), log=flag("log"))
    for bound in ("lower", "upper"):
        given = [d[bound] for d in specs]
        if kind == "date" and given and isinstance(given[0], str):
            # ISO instants in UTC ("2026-01-01T00:00:00Z", as Question.spec writes them)
            at = np.array([g.removesuffix("Z") for g in given], dtype="datetime64[us]")
            columns[bound] = at.astype(np.int64) / 1e6
        else:
            columns[bound] = np.array(given, dtype=np.float64)
    return columns
