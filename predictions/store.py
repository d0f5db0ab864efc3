"""Forecast operations: register, estimate, amend, resolve, annul, withdraw, reopen, read.

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
    CLOSING_HISTORY,
    CLOSING_KINDS,
    LEDGER,
    VALUES_KEY,
    Executor,
    SQLiteExecutor,
    amend_payload,
    close_payload,
    estimate_payload,
    iso,
    loaded,
    loaded_question,
    question_json,
    register_payload,
    reopen_payload,
    take_over_payload,
)
from predictions.clock import now as clock_now
from predictions.errors import InputError, NotFoundError, StateError
from predictions.questions import (
    Question,
    check_cdf,
    check_outcome_value,
    check_probabilities,
    decode,
    encode,
    rounded,
)
from predictions.records import (
    AmendmentRow,
    CheckRow,
    EstimateRow,
    ForecastQuery,
    ForecastRow,
    TagRow,
    forecast_where,
    is_market,
)
from predictions.validation import (
    AMENDABLE,
    Due,
    check_estimate,
    check_registration,
    parse_tag,
    require_text,
)

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    Database = Session | sqlite3.Connection
else:
    Database = Any

__all__ = [
    "Database",
    "add_estimate",
    "add_forecast",
    "amend",
    "annul",
    "checked_resolution",
    "checked_values",
    "closings",
    "count_forecasts",
    "get_forecast",
    "list_forecasts",
    "reopen",
    "resolve",
    "take_over",
    "withdraw",
]

_MAX_ID = 2**31 - 1  # the largest INTEGER key on PostgreSQL
_CHUNK = 500  # forecast ids per query when reading a list's estimates and tags


_COLUMNS = (
    "f.id, f.title, f.criteria, f.due, f.created_at, f.author, f.source, f.ref, f.status, "
    "f.outcome, f.resolved_at, f.resolved_by, f.resolution_note, f.resolution_evidence, "
    "f.due_zone, f.kind, f.question, f.resolution_value"
)
_ESTIMATE = (
    "SELECT id, forecast_id, forecaster, probability, made_at, note, distribution FROM estimate"
)


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
        kind=r[15], question=loaded_question(r[15], r[16]), resolution_value=r[17],
    )  # fmt: skip


def _estimate(r: Sequence[Any]) -> EstimateRow:
    """An estimate's row (:data:`_ESTIMATE`'s columns): PostgreSQL gives the distribution as
    bytes or a memoryview, SQLite as bytes."""
    p, values = r[3], r[6]
    return EstimateRow(
        r[0], r[1], r[2], None if p is None else float(p), loaded(r[4]), r[5],  # type: ignore[arg-type]
        None if values is None else decode(values),
    )  # fmt: skip


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
    question: Question | None = None,
    values: Sequence[float] | None = None,
) -> ForecastRow:
    """Register a forecast (and its first estimate, if a probability or values are given).

    A binary question (no ``question``) takes a ``probability``; a numeric, date or choice
    ``question`` takes ``values`` (its CDF on the grid, or one probability per option), checked
    against the question. A due date in the past is refused unless ``allow_past_due`` (imports
    of history). A :class:`~predictions.validation.Due` keeps the zone of a date-only due with it.
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
    kind = "binary" if question is None else question.kind
    if question is not None and probability is not None:
        raise InputError(
            "probability", probability, f"a forecast of a {kind} question, not a probability"
        )
    given = probability if question is None else values
    if question is None and values is not None:
        raise InputError("values", list(values), "a probability (the question is binary)")
    first = None if given is None else _checked(kind, question, fields.author, given, note)
    x = _executor(db)
    taken = "SELECT id FROM forecast WHERE ref = :ref"
    if ref is not None and x.execute(taken, {"ref": ref}).fetchone():
        raise InputError("ref", ref, "a reference not already imported")
    row = ForecastRow(
        id=0, title=fields.title, criteria=fields.criteria, due=fields.due,
        created_at=fields.created_at, author=fields.author, source=fields.source, ref=ref,
        status="open", outcome=None, resolved_at=None, resolved_by=None, resolution_note=None,
        resolution_evidence=None, tags=[TagRow(name) for name in fields.tags], due_zone=due_zone,
        kind=kind, question=question,
    )  # fmt: skip
    columns = ("title", "criteria", "due", "created_at", "author", "source", "ref", "status",
               "due_zone", "kind")  # fmt: skip
    values_ = {name: getattr(row, name) for name in columns}
    row.id = _insert(x, "forecast", {**values_, "question": question_json(question)})
    if fields.tags:
        x.execute(
            "INSERT INTO tag (forecast_id, name) VALUES (:forecast_id, :name)",
            [{"forecast_id": row.id, "name": name} for name in fields.tags],
        )
    at = row.created_at
    LEDGER.append(x, "register", register_payload(row, fields.tags), forecast_id=row.id, at=at)
    if first is not None:
        _append_estimate(x, row, first, made_at=at)
    return row


#: An estimate as checked: forecaster, probability (binary) or values (others), note.
_Checked = tuple[str, "float | None", "tuple[float, ...] | None", "str | None"]


def _checked(
    kind: str, question: Question | None, forecaster: str, given: object, note: object
) -> _Checked:
    """An estimate's forecaster, forecast and note, checked: a probability strictly inside 0-1
    on a binary question; else the values, :func:`~predictions.questions.rounded` and checked
    against the question (a CDF, or one probability per option)."""
    if question is None:
        if not isinstance(given, int | float) or isinstance(given, bool):
            raise InputError("probability", given, "a probability (the question is binary)")
        name, p, note_ = check_estimate(forecaster, float(given), note)
        return name, p, None, note_
    values = checked_values(question, given)
    name = require_text(forecaster, "forecaster", multiline=False) or forecaster
    return name, None, values, require_text(note, "note", optional=True)


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def checked_values(question: Question, values: object) -> tuple[float, ...]:
    """An estimate of a numeric, date or choice question as stored: a sequence of numbers,
    :func:`~predictions.questions.rounded`, then checked against the question (a CDF on the grid,
    or one probability per option: :func:`~predictions.questions.check_cdf`,
    :func:`~predictions.questions.check_probabilities`). The store and the file readers call it."""
    if isinstance(values, str | bytes) or not isinstance(values, Sequence):
        raise InputError(VALUES_KEY[question.kind], values, "a list of numbers")
    if not all(map(_number, values)):
        raise InputError(VALUES_KEY[question.kind], list(values), "a list of numbers")
    stored = rounded(values)
    (check_cdf if question.continuous else check_probabilities)(question, stored)
    return stored


def checked_resolution(question: Question, value: object, field: str = "value") -> float:
    """A resolution value of a numeric, date or choice question, checked against it
    (:func:`~predictions.questions.check_outcome_value`): a number (``field`` names it)."""
    if not _number(value):
        raise InputError(field, value, f"the outcome of a {question.kind} question (a number)")
    number = float(value)  # type: ignore[arg-type]
    check_outcome_value(question, number)
    return number


def _append_estimate(
    x: Executor,
    forecast: ForecastRow,
    checked: _Checked,
    *,
    made_at: datetime,
) -> EstimateRow:
    name, p, values, note = checked
    blob = None if values is None else encode(values)
    row = {"forecast_id": forecast.id, "forecaster": name, "probability": p, "distribution": blob}
    eid = _insert(x, "estimate", {**row, "made_at": made_at, "note": note})
    estimate = EstimateRow(eid, forecast.id, name, p, made_at, note, values)
    forecast.estimates.append(estimate)
    payload = estimate_payload(estimate, forecast.kind)
    LEDGER.append(x, "estimate", payload, forecast_id=forecast.id, at=made_at)
    return estimate


def add_estimate(
    db: Database,
    forecast: ForecastRow | int | str,
    forecaster: str,
    probability: float | Sequence[float],
    *,
    note: str | None = None,
    made_at: datetime | None = None,
) -> EstimateRow:
    """Append a forecast to a forecast's history: a probability on a binary question, the values
    on the others (a CDF on the grid, or one probability per option; checked against the
    question). Refused once it is resolved or annulled.

    Given a :class:`ForecastRow`, the estimate is added to its ``estimates`` too.
    """
    x = _executor(db)
    if not isinstance(forecast, ForecastRow):
        forecast = _read(x, forecast)
    if forecast.status != "open":
        raise _closed(forecast, f"{forecast.status}; its estimates are closed")
    checked = _checked(forecast.kind, forecast.question, forecaster, probability, note)
    estimate = _append_estimate(x, forecast, checked, made_at=made_at or clock_now())
    _changed(db, forecast.id)
    return estimate


def amend(
    db: Database,
    forecast_id: int | str,
    field: str,
    value: str | datetime | Due | tuple[Iterable[str], Iterable[str]],
    *,
    by: str,
    note: str | None = None,
) -> AmendmentRow:
    """Change a forecast's title, criteria, due date or tags, recorded as an amendment.

    For ``tags``, ``value`` is ``(add, remove)``: tags to add and tags to take off (each one the
    forecast has). The amendment holds the old set and the new, each as the sorted names joined
    by commas. Tags may be amended once the forecast is closed too (they say where a forecast
    belongs, not what it claims), but not while it is withdrawn.
    """
    if field not in AMENDABLE:
        raise InputError("field", field, "one of " + ", ".join(AMENDABLE))
    x = _executor(db)
    forecast = _read(x, forecast_id, for_update=True)
    if forecast.status != "open" and (field != "tags" or forecast.status == "withdrawn"):
        raise _closed(forecast, f"{forecast.status}; it can no longer be amended")
    at = clock_now()
    if field == "tags":
        if not isinstance(value, tuple):
            raise InputError("tags", value, "(tags to add, tags to take off)")
        add, remove = value
        current = x.execute("SELECT name FROM tag WHERE forecast_id = :id", {"id": forecast.id})
        before = sorted(name for (name,) in current)
        gone = {parse_tag(t) for t in remove}
        missing = sorted(gone - set(before))
        if missing:
            raise InputError(
                "untag", missing[0], "one of its tags: " + (", ".join(before) or "none")
            )
        tags = sorted((set(before) - gone) | {parse_tag(t) for t in add})
        if tags == before:
            raise InputError("tag", ", ".join(add), "a tag it does not have yet")
        key = {"forecast_id": forecast.id}
        x.execute("DELETE FROM tag WHERE forecast_id = :forecast_id", key)
        if tags:
            x.execute(
                "INSERT INTO tag (forecast_id, name) VALUES (:forecast_id, :name)",
                [{**key, "name": name} for name in tags],
            )
        return _amendment(db, x, forecast, field, ",".join(before), ",".join(tags), by, note, at)
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
    setattr(forecast, field, value)
    _update(x, forecast, [field, "due_zone"] if field == "due" else [field])
    return _amendment(db, x, forecast, field, old, new, by, note, at)


def _amendment(
    db: Database,
    x: Executor,
    forecast: ForecastRow,
    field: str,
    old: str,
    new: str,
    by: str,
    note: str | None,
    at: datetime,
) -> AmendmentRow:
    """Record an amendment already written to the forecast: its row and its ledger entry."""
    made_by = require_text(by, "forecaster", multiline=False) or by
    note = require_text(note, "note", optional=True)
    values = {"forecast_id": forecast.id, "field": field, "old_value": old, "new_value": new}
    values.update(made_at=at, made_by=made_by, note=note)
    aid = _insert(x, "amendment", values)
    amendment = AmendmentRow(aid, forecast.id, field, old, new, at, made_by, note)
    LEDGER.append(x, "amend", amend_payload(amendment), forecast_id=forecast.id, at=at)
    _changed(db, forecast.id)
    return amendment


_CLOSING = ("status", "outcome", "resolved_at", "resolved_by", "resolution_note",
            "resolution_evidence", "resolution_value")  # fmt: skip


def _close(
    db: Database,
    forecast_id: int | str,
    kind: str,
    outcome: bool | float | None,
    by: str,
    note: str | None,
    evidence: str | None,
    at: datetime | None,
) -> ForecastRow:
    """Resolve, annul or withdraw (``kind``, see :data:`~predictions.chain.CLOSING_KINDS`): the
    forecast's closing, with its ledger entry. Resolve and annul close an open forecast; a
    withdrawal may also take a closed one out of lists and scores. A resolution's ``outcome`` is
    YES/NO on a binary question, else the resolution value (checked against the question)."""
    x = _executor(db)
    forecast = get_forecast(db, forecast_id, for_update=True)
    status = next(s for s, k in CLOSING_KINDS.items() if k == kind)
    if forecast.status != "open" and (kind != "withdraw" or forecast.status == status):
        raise _closed(forecast, f"already {forecast.status}")
    value = None
    if kind == "resolve" and forecast.question is not None:
        value, outcome = checked_resolution(forecast.question, outcome), None
    forecast.status = status
    forecast.outcome = None if outcome is None else bool(outcome)
    forecast.resolution_value = value
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
    outcome: bool | float,
    *,
    by: str,
    note: str | None = None,
    evidence: str | None = None,
    at: datetime | None = None,
) -> ForecastRow:
    """Resolve a binary forecast YES (True) or NO (False); a numeric, date or choice one to its
    resolution value (the outcome; POSIX seconds; the option's 0-based index), which must lie in
    the range (or beyond an open bound) or name an option. Resolving twice is refused."""
    return _close(db, forecast_id, "resolve", outcome, by, note, evidence, at)


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


def withdraw(
    db: Database,
    forecast_id: int | str,
    *,
    by: str,
    note: str,
    at: datetime | None = None,
) -> ForecastRow:
    """Withdraw a forecast entered by mistake (a test entry, a duplicate): it stays in the ledger
    but leaves lists, scores and emails (``list --status withdrawn`` shows it). Open or closed
    alike; :func:`reopen` brings it back. Not an annulment, which says the question became moot.
    """
    require_text(note, "note")  # a withdrawal says why
    return _close(db, forecast_id, "withdraw", None, by, note, None, at)


def reopen(
    db: Database,
    forecast_id: int | str,
    *,
    by: str,
    note: str,
    at: datetime | None = None,
) -> ForecastRow:
    """Withdraw a forecast's resolution, annulment or withdrawal by a new ledger entry
    (``reopen``; the closing entry stays): the forecast is open again, out of the scores until it
    is resolved again. Reopening an open forecast is refused."""
    x = _executor(db)
    forecast = get_forecast(db, forecast_id, for_update=True)
    if forecast.status == "open":
        raise StateError(
            f"forecast {forecast.id} is open: there is no resolution, annulment or withdrawal "
            "to reopen"
        )
    made_by = require_text(by, "forecaster", multiline=False) or by
    why = require_text(note, "note")  # a reopening says why
    at = at or clock_now()
    payload = reopen_payload(forecast.id, forecast.status, at, made_by, why)
    forecast.status = "open"
    forecast.outcome = forecast.resolved_at = forecast.resolved_by = None
    forecast.resolution_note = forecast.resolution_evidence = forecast.resolution_value = None
    _update(x, forecast, _CLOSING)
    LEDGER.append(x, "reopen", payload, forecast_id=forecast.id, at=at)
    _changed(db, forecast.id)
    return forecast


def _closed(forecast: ForecastRow, problem: str) -> StateError:
    """A change refused because the forecast is closed, saying how a closing is undone."""
    fid = forecast.id
    return StateError(
        f"forecast {fid} is {problem} (`tracker reopen {fid} --note TEXT` reopens it)"
    )


def closings(db: Database, forecast_id: int) -> list[dict[str, Any]]:
    """Every resolution, annulment, withdrawal and reopening of a forecast, in ledger order, as
    the ledger's payloads with ``kind`` and ``seq`` added: the history ``show`` and the export
    carry (the ledger is the record; the forecast's row holds only the current closing)."""
    kinds = ", ".join(f"'{k}'" for k in CLOSING_HISTORY)
    rows = _executor(db).execute(
        f"SELECT seq, kind, payload FROM ledger WHERE forecast_id = :id AND kind IN ({kinds}) "
        "ORDER BY seq",
        {"id": forecast_id},
    )
    return [{**json.loads(payload), "kind": kind, "seq": int(seq)} for seq, kind, payload in rows]


def take_over(
    db: Database, old: str, new: str, *, count_only: bool = False, at: datetime | None = None
) -> tuple[int, int]:
    """Make the forecasts registered and the estimates made under the name ``old`` ``new``'s,
    by one ``take_over`` ledger entry; returns how many forecasts and estimates (with
    ``count_only``, only counts them). A market's name is refused on either side."""
    old, new = (require_text(n, "forecaster", multiline=False) or "" for n in (old, new))
    for name in (old, new):
        if is_market(name):
            raise InputError("forecaster", name, "a person's name, not a market's")
    x = _executor(db)
    lists = [
        [r[0] for r in x.execute(f"SELECT id FROM {table} WHERE {column} = :old ORDER BY id",
                                 {"old": old})]
        for table, column in (("forecast", "author"), ("estimate", "forecaster"))
    ]  # fmt: skip
    if count_only or old == new or not any(lists):
        return len(lists[0]), len(lists[1])
    params = {"old": old, "new": new}
    x.execute("UPDATE forecast SET author = :new WHERE author = :old", params)
    x.execute("UPDATE estimate SET forecaster = :new WHERE forecaster = :old", params)
    at = at or clock_now()
    payload = take_over_payload(old, new, at, lists[0], lists[1])
    LEDGER.append(x, "take_over", payload, forecast_id=None, at=at)
    return len(lists[0]), len(lists[1])


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
    return forecast_where(
        status=query.status, tag=query.tag, by=query.by, now=now or clock_now(), search=query.search
    )


#: Each forecaster's latest estimate on each forecast ``{within}``: one index lookup per pair.
_LATEST = (
    "SELECT e.id, e.forecast_id, e.forecaster, e.probability, e.made_at, e.note, e.distribution "
    "FROM "
    "(SELECT DISTINCT forecast_id AS fid, forecaster AS who FROM estimate WHERE {within}) AS p "
    "JOIN estimate AS e ON e.id = (SELECT l.id FROM estimate AS l WHERE l.forecast_id = p.fid "
    "AND l.forecaster = p.who ORDER BY l.made_at DESC, l.id DESC LIMIT 1)"
)


def list_forecasts(
    db: Database, query: ForecastQuery, *, now: datetime | None = None, latest_only: bool = False
) -> list[ForecastRow]:
    """Forecasts matching ``query``, soonest due first (resolved ones: latest resolved first),
    with their estimates and tags; with ``latest_only``, each forecaster's latest estimate only
    (what ``list`` shows: a market's price history is not read)."""
    x = _executor(db)
    where, params = _where(query, now)
    closed = query.status in ("resolved", "annulled", "withdrawn")
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
        estimates = _LATEST.format(within=within) if latest_only else f"{_ESTIMATE} WHERE {within}"
        for r in x.execute(f"{estimates} ORDER BY id", chunk):
            by_id[r[1]].estimates.append(_estimate(r))
    return rows


def count_forecasts(db: Database, query: ForecastQuery, *, now: datetime | None = None) -> int:
    """How many forecasts match ``query`` (ignoring its limit)."""
    where, params = _where(query, now)
    sql = f"SELECT COUNT(*) FROM forecast AS f WHERE {where}"
    return int(_executor(db).execute(sql, params).fetchone()[0])
