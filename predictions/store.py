"""Forecast operations: register, estimate, amend, resolve, annul, read.

Each is written once, in plain SQL with ``:name`` parameters (portable to SQLite and PostgreSQL),
through a :class:`~predictions.chain.Executor`. Every function takes the database as the caller
holds it and owns its transaction:

- a SQLAlchemy :class:`~sqlalchemy.orm.Session` (``with write_session(engine) as s: ...``), run
  through :func:`predictions.db.executor` in the session's transaction;
- a :mod:`sqlite3` connection (the CLI's fast path, :mod:`predictions.lite`), whose caller begins
  and ends the transaction (:func:`predictions.lite.transaction`).

Each change appends its ledger entry (:data:`predictions.chain.LEDGER`) in the same transaction,
so the tables and the chain never disagree. Reads return :class:`~predictions.records.ForecastRow`
and friends: plain dataclasses with the models' attribute names.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from predictions.chain import (
    LEDGER,
    Executor,
    SQLiteExecutor,
    amend_payload,
    close_payload,
    estimate_payload,
    iso,
    loaded,
    register_payload,
)
from predictions.clock import now as clock_now
from predictions.errors import InputError, NotFoundError, StateError
from predictions.records import (
    LIST_STATUSES,
    AmendmentRow,
    CheckRow,
    EstimateRow,
    ForecastQuery,
    ForecastRow,
    TagRow,
    forecast_record,
    forecast_where,
    latest_estimate,
)
from predictions.validation import Due, check_estimate, check_registration, require_text

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    Database = Session | sqlite3.Connection
else:
    Database = Any

__all__ = [
    "LIST_STATUSES",
    "AmendmentRow",
    "CheckRow",
    "Database",
    "EstimateRow",
    "ForecastQuery",
    "ForecastRow",
    "TagRow",
    "add_estimate",
    "add_forecast",
    "amend",
    "annul",
    "count_forecasts",
    "forecast_record",
    "get_forecast",
    "latest_estimate",
    "list_forecasts",
    "resolve",
]

AMENDABLE = ("title", "criteria", "due")
_MAX_ID = 2**31 - 1  # the largest INTEGER key on PostgreSQL
_CHUNK = 500  # forecast ids per query when reading a list's estimates and tags


_COLUMNS = (
    "f.id, f.title, f.criteria, f.due, f.created_at, f.author, f.source, f.ref, f.status, "
    "f.outcome, f.resolved_at, f.resolved_by, f.resolution_note, f.resolution_evidence, f.due_zone"
)
_ESTIMATE = "SELECT id, forecast_id, forecaster, probability, made_at, note FROM estimate"


def _executor(db: Database) -> Executor:
    if isinstance(db, sqlite3.Connection):
        return SQLiteExecutor(db)
    from predictions.db import executor  # a Session: SQLAlchemy is loaded already

    return executor(db)


def _changed(db: Database, forecast_id: int) -> None:
    """A Session holding this forecast as a model object reloads it (the SQL wrote around it)."""
    if isinstance(db, sqlite3.Connection):
        return
    from predictions.models import Forecast

    loaded_ = db.identity_map.get(db.identity_key(Forecast, forecast_id))
    if loaded_ is not None:
        db.expire(loaded_)


def _forecast(r: Sequence[Any]) -> ForecastRow:
    return ForecastRow(
        id=r[0], title=r[1], criteria=r[2], due=loaded(r[3]), created_at=loaded(r[4]),  # type: ignore[arg-type]
        author=r[5], source=r[6], ref=r[7], status=r[8],
        outcome=None if r[9] is None else bool(r[9]), resolved_at=loaded(r[10]),
        resolved_by=r[11], resolution_note=r[12], resolution_evidence=r[13], due_zone=r[14],
    )  # fmt: skip


def _estimate(r: Sequence[Any]) -> EstimateRow:
    return EstimateRow(r[0], r[1], r[2], float(r[3]), loaded(r[4]), r[5])  # type: ignore[arg-type]


def _insert(x: Executor, table: str, values: dict[str, Any]) -> int:
    """Insert one row of ``values`` (column: value) and return its id."""
    sql = f"INSERT INTO {table} ({', '.join(values)}) VALUES (:{', :'.join(values)}) RETURNING id"
    return int(x.execute(sql, values).fetchall()[0][0])


def _update(x: Executor, forecast: ForecastRow, columns: Iterable[str]) -> None:
    """Write these columns of ``forecast`` (as the row holds them) to its table row."""
    values = {name: getattr(forecast, name) for name in columns}
    sets = ", ".join(f"{name} = :{name}" for name in values)
    x.execute(f"UPDATE forecast SET {sets} WHERE id = :id", {**values, "id": forecast.id})


# --- writing --------------------------------------------------------------------------------


def add_forecast(
    db: Database,
    *,
    title: str,
    criteria: str,
    due: datetime | Due,
    author: str,
    probability: float | None = None,
    tags: Iterable[str] = (),
    source: str | None = None,
    ref: str | None = None,
    note: str | None = None,
    created_at: datetime | None = None,
    allow_past_due: bool = False,
) -> ForecastRow:
    """Register a forecast (and its first estimate, if a probability is given).

    A due date in the past is refused unless ``allow_past_due`` (imports of history). A
    :class:`~predictions.validation.Due` keeps the zone of a date-only due with it.
    """
    due, due_zone = (due.at, due.zone) if isinstance(due, Due) else (due, None)
    fields = check_registration(
        title=title,
        criteria=criteria,
        author=author,
        source=source,
        due=due,
        created_at=created_at or clock_now(),
        tags=tags,
        allow_past_due=allow_past_due,
    )
    first = check_estimate(fields.author, probability, note) if probability is not None else None
    x = _executor(db)
    taken = "SELECT id FROM forecast WHERE ref = :ref"
    if ref is not None and x.execute(taken, {"ref": ref}).fetchone():
        raise InputError("ref", ref, "a reference not already imported")
    row = ForecastRow(
        id=0, title=fields.title, criteria=fields.criteria, due=fields.due,
        created_at=fields.created_at, author=fields.author, source=fields.source, ref=ref,
        status="open", outcome=None, resolved_at=None, resolved_by=None, resolution_note=None,
        resolution_evidence=None, tags=[TagRow(name) for name in fields.tags], due_zone=due_zone,
    )  # fmt: skip
    columns = ("title", "criteria", "due", "created_at", "author", "source", "ref", "status",
               "due_zone")  # fmt: skip
    row.id = _insert(x, "forecast", {name: getattr(row, name) for name in columns})
    if fields.tags:
        x.execute(
            "INSERT INTO tag (forecast_id, name) VALUES (:forecast_id, :name)",
            [{"forecast_id": row.id, "name": name} for name in fields.tags],
        )
    at = row.created_at
    LEDGER.append(x, "register", register_payload(row, fields.tags), forecast_id=row.id, at=at)
    if first is not None:
        _append_estimate(x, row, *first, made_at=at)
    return row


def _append_estimate(
    x: Executor, forecast: ForecastRow, name: str, p: float, note: str | None, *, made_at: datetime
) -> EstimateRow:
    values = {"forecast_id": forecast.id, "forecaster": name, "probability": p}
    eid = _insert(x, "estimate", {**values, "made_at": made_at, "note": note})
    estimate = EstimateRow(eid, forecast.id, name, p, made_at, note)
    forecast.estimates.append(estimate)
    LEDGER.append(x, "estimate", estimate_payload(estimate), forecast_id=forecast.id, at=made_at)
    return estimate


def add_estimate(
    db: Database,
    forecast: ForecastRow | int | str,
    forecaster: str,
    probability: float,
    *,
    note: str | None = None,
    made_at: datetime | None = None,
) -> EstimateRow:
    """Append a probability to a forecast's history. Refused once it is resolved or annulled.

    Given a :class:`ForecastRow`, the estimate is added to its ``estimates`` too.
    """
    x = _executor(db)
    if not isinstance(forecast, ForecastRow):
        forecast = _read(x, forecast)
    if forecast.status != "open":
        raise StateError(f"forecast {forecast.id} is {forecast.status}; its estimates are closed")
    name, p, note_ = check_estimate(forecaster, probability, note)
    estimate = _append_estimate(x, forecast, name, p, note_, made_at=made_at or clock_now())
    _changed(db, forecast.id)
    return estimate


def amend(
    db: Database,
    forecast_id: int | str,
    field: str,
    value: str | datetime | Due,
    *,
    by: str,
    note: str | None = None,
) -> AmendmentRow:
    """Change a forecast's title, criteria or due date, recorded as an amendment."""
    if field not in AMENDABLE:
        raise InputError("field", field, "one of " + ", ".join(AMENDABLE))
    x = _executor(db)
    forecast = _read(x, forecast_id, for_update=True)
    if forecast.status != "open":
        raise StateError(
            f"forecast {forecast.id} is {forecast.status}; it can no longer be amended"
        )
    at = clock_now()
    if field == "due":
        if isinstance(value, Due):
            forecast.due_zone, value = value.zone, value.at
        else:
            forecast.due_zone = None
        if not isinstance(value, datetime):
            raise InputError("due", value, "a date")
        old, new = iso(forecast.due), iso(value)
    else:
        new = require_text(value, field, multiline=field != "title")
        old, value = getattr(forecast, field), new or ""
    if old == new:
        raise InputError(field, new, f"a {field} different from the current one")
    assert old is not None and new is not None
    made_by = require_text(by, "forecaster", multiline=False) or by
    note = require_text(note, "note", optional=True)
    setattr(forecast, field, value)
    _update(x, forecast, [field, "due_zone"] if field == "due" else [field])
    values = {"forecast_id": forecast.id, "field": field, "old_value": old, "new_value": new}
    values.update(made_at=at, made_by=made_by, note=note)
    aid = _insert(x, "amendment", values)
    amendment = AmendmentRow(aid, forecast.id, field, old, new, at, made_by, note)
    LEDGER.append(x, "amend", amend_payload(amendment), forecast_id=forecast.id, at=at)
    _changed(db, forecast.id)
    return amendment


_CLOSING = ("status", "outcome", "resolved_at", "resolved_by", "resolution_note",
            "resolution_evidence")  # fmt: skip


def _close(
    db: Database,
    forecast_id: int | str,
    kind: str,
    outcome: bool | None,
    by: str,
    note: str | None,
    evidence: str | None,
    at: datetime | None,
) -> ForecastRow:
    """Resolve or annul (``kind``): the forecast's one closing, with its ledger entry."""
    x = _executor(db)
    forecast = get_forecast(db, forecast_id, for_update=True)
    if forecast.status != "open":
        raise StateError(f"forecast {forecast.id} is already {forecast.status}")
    forecast.status = "resolved" if kind == "resolve" else "annulled"
    forecast.outcome = outcome
    forecast.resolved_at = at = at or clock_now()
    forecast.resolved_by = require_text(by, "resolved_by", multiline=False)
    forecast.resolution_note = require_text(note, "note", optional=True)
    forecast.resolution_evidence = require_text(
        evidence, "evidence", optional=True, multiline=False
    )
    _update(x, forecast, _CLOSING)
    LEDGER.append(x, kind, close_payload(forecast), forecast_id=forecast.id, at=at)
    _changed(db, forecast.id)
    return forecast


def resolve(
    db: Database,
    forecast_id: int | str,
    outcome: bool,
    *,
    by: str,
    note: str | None = None,
    evidence: str | None = None,
    at: datetime | None = None,
) -> ForecastRow:
    """Resolve a forecast YES (True) or NO (False). Resolving twice is refused."""
    return _close(db, forecast_id, "resolve", bool(outcome), by, note, evidence, at)


def annul(
    db: Database,
    forecast_id: int | str,
    *,
    by: str,
    note: str | None,
    at: datetime | None = None,
) -> ForecastRow:
    """Annul a forecast (the question became moot); it is excluded from scores."""
    return _close(db, forecast_id, "annul", None, by, note, None, at)


# --- reading --------------------------------------------------------------------------------


def _read(x: Executor, forecast_id: int | str, *, for_update: bool = False) -> ForecastRow:
    """The forecast's own columns (no estimates, tags...), or :class:`NotFoundError`."""
    try:
        fid = int(forecast_id)
    except (TypeError, ValueError):
        raise InputError("id", forecast_id, "a forecast id (a whole number)") from None
    if not 1 <= fid <= _MAX_ID:  # no such row can exist; the database would refuse the number
        raise NotFoundError("forecast", fid)
    lock = " FOR UPDATE" if for_update and x.dialect == "postgresql" else ""
    row = x.execute(f"SELECT {_COLUMNS} FROM forecast AS f WHERE f.id = :id{lock}", {"id": fid})
    found = row.fetchone()
    if found is None:
        raise NotFoundError("forecast", fid)
    return _forecast(found)


def get_forecast(db: Database, forecast_id: int | str, *, for_update: bool = False) -> ForecastRow:
    """The forecast with this id, with its estimates, tags, amendments and checks, or
    :class:`NotFoundError`."""
    x = _executor(db)
    f = _read(x, forecast_id, for_update=for_update)
    key = {"id": f.id}
    estimates = x.execute(f"{_ESTIMATE} WHERE forecast_id = :id ORDER BY id", key)
    f.estimates = [_estimate(r) for r in estimates]
    tags = x.execute("SELECT name FROM tag WHERE forecast_id = :id ORDER BY name", key)
    f.tags = [TagRow(name) for (name,) in tags]
    f.amendments = [
        AmendmentRow(r[0], r[1], r[2], r[3], r[4], loaded(r[5]), r[6], r[7])  # type: ignore[arg-type]
        for r in x.execute(
            "SELECT id, forecast_id, field, old_value, new_value, made_at, made_by, note "
            "FROM amendment WHERE forecast_id = :id ORDER BY id",
            key,
        )
    ]
    checks = x.execute(
        "SELECT id, kind, mode, params, enabled, last_checked_at, next_check_at "
        "FROM check_spec WHERE forecast_id = :id ORDER BY id",
        key,
    )
    f.checks = [
        CheckRow(cid, kind, mode, json.loads(params) if isinstance(params, str) else params or {},
                 bool(on), loaded(last), loaded(next_))  # type: ignore[arg-type]
        for cid, kind, mode, params, on, last, next_ in checks
    ]  # fmt: skip
    return f


def _where(query: ForecastQuery, now: datetime | None) -> tuple[str, dict[str, Any]]:
    return forecast_where(status=query.status, tag=query.tag, by=query.by, now=now or clock_now())


def list_forecasts(
    db: Database, query: ForecastQuery, *, now: datetime | None = None
) -> list[ForecastRow]:
    """Forecasts matching ``query``, soonest due first (resolved ones: latest resolved first),
    with their estimates and tags."""
    x = _executor(db)
    where, params = _where(query, now)
    closed = query.status in ("resolved", "annulled")
    order = "f.resolved_at DESC, f.id DESC" if closed else "f.due, f.id"
    page = f"FROM forecast AS f WHERE {where} ORDER BY {order}"
    if query.limit or query.offset:
        page += " LIMIT :limit OFFSET :offset"
        no_limit = -1 if x.dialect == "sqlite" else None  # PostgreSQL: LIMIT NULL
        params.update(limit=query.limit or no_limit, offset=query.offset)
    rows = [_forecast(r) for r in x.execute(f"SELECT {_COLUMNS} {page}", params)]
    by_id = {f.id: f for f in rows}
    ids = list(by_id)
    for start in range(0, len(ids), _CHUNK):  # not one IN list: SQLite allows 32,766 parameters
        chunk = {f"i{n}": fid for n, fid in enumerate(ids[start : start + _CHUNK])}
        within = f"forecast_id IN ({', '.join(':' + name for name in chunk)})"
        tags = f"SELECT forecast_id, name FROM tag WHERE {within} ORDER BY name"
        for fid, name in x.execute(tags, chunk):
            by_id[fid].tags.append(TagRow(name))
        for r in x.execute(f"{_ESTIMATE} WHERE {within} ORDER BY id", chunk):
            by_id[r[1]].estimates.append(_estimate(r))
    return rows


def count_forecasts(db: Database, query: ForecastQuery, *, now: datetime | None = None) -> int:
    """How many forecasts match ``query`` (ignoring its limit)."""
    where, params = _where(query, now)
    sql = f"SELECT COUNT(*) FROM forecast AS f WHERE {where}"
    return int(_executor(db).execute(sql, params).fetchone()[0])
