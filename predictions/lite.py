"""The fast path of ``tracker add`` and ``tracker list`` on a SQLite file, without SQLAlchemy.

Why it exists: importing SQLAlchemy costs about 330 ms on the reference machine (2 cores;
~944 M instructions measured with callgrind), more than the 300 ms a person should wait for the two
commands typed most. So on an existing SQLite file at the current schema, these two commands talk
to it through the standard library's :mod:`sqlite3`; everything else (and PostgreSQL, and a file
that needs creating or migrating) goes through the SQLAlchemy store.

Nothing here decides anything the store does not: field validation is
:func:`predictions.validation.check_registration` / :func:`~predictions.validation.check_estimate`,
ledger payloads and hashes come from :mod:`predictions.chain`, records from
:func:`predictions.records.forecast_record`, and the filters mirror ``store.list_forecasts``.
``tests/predictions/test_lite.py`` runs the same operations through both paths and requires
identical records, identical ledger entries and a passing ``verify``.

Values are stored exactly as SQLAlchemy stores them on SQLite: datetimes as
``YYYY-MM-DD HH:MM:SS.ffffff`` text, booleans as 0/1.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from predictions.chain import LEDGER, SQLiteExecutor, estimate_payload, register_payload, stored
from predictions.clock import now as clock_now
from predictions.records import ForecastQuery, forecast_where
from predictions.revision import SCHEMA_REVISION
from predictions.validation import check_estimate, check_registration

__all__ = [
    "ForecastRow",
    "add_forecast",
    "connect",
    "count_forecasts",
    "list_forecasts",
    "sqlite_file",
]

_BUSY_TIMEOUT_S = 60
_FORECAST_COLUMNS = (
    "id, title, criteria, due, created_at, author, source, ref, status, outcome, "
    "resolved_at, resolved_by, resolution_note, resolution_evidence"
)


def sqlite_file(url: str) -> Path | None:
    """The file behind a plain ``sqlite:///PATH`` URL (or a bare path), else None."""
    if "://" not in url:
        return Path(url).expanduser().resolve()
    for prefix in ("sqlite:///", "sqlite+pysqlite:///"):
        if url.startswith(prefix):
            rest = url[len(prefix) :]
            if not rest or "?" in rest or rest == ":memory:":
                return None
            return Path(rest)
    return None


def connect(path: Path) -> sqlite3.Connection | None:
    """A connection to an existing SQLite file at the current schema, or None to use the store.

    Same settings as the SQLAlchemy engine: WAL, foreign keys, busy timeout; autocommit mode, so
    writers begin their transactions IMMEDIATE themselves.
    """
    if not path.is_file():
        return None
    conn = sqlite3.connect(path, timeout=_BUSY_TIMEOUT_S, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute(f"PRAGMA busy_timeout={_BUSY_TIMEOUT_S * 1000}")
        conn.execute("PRAGMA synchronous=NORMAL")
        row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
    except sqlite3.DatabaseError:
        conn.close()
        return None
    if row is None or row[0] != SCHEMA_REVISION:
        conn.close()
        return None
    return conn


def _stored(value: datetime) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S.%f")


def _loaded(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


@dataclass
class EstimateRow:
    """An estimate read without the ORM (same attribute names as the model)."""

    id: int
    forecast_id: int
    forecaster: str
    probability: float
    made_at: datetime
    note: str | None


@dataclass
class TagRow:
    """A tag read without the ORM."""

    name: str


@dataclass
class ForecastRow:
    """A forecast read without the ORM, with its estimates and tags (no amendments are loaded)."""

    id: int
    title: str
    criteria: str
    due: datetime
    created_at: datetime
    author: str
    source: str | None
    ref: str | None
    status: str
    outcome: bool | None
    resolved_at: datetime | None
    resolved_by: str | None
    resolution_note: str | None
    resolution_evidence: str | None
    estimates: list[EstimateRow] = field(default_factory=list)
    tags: list[TagRow] = field(default_factory=list)
    amendments: list[Any] = field(default_factory=list)


def add_forecast(
    conn: sqlite3.Connection,
    *,
    title: str,
    criteria: str,
    due: datetime,
    author: str,
    probability: float | None,
    tags: Iterable[str] = (),
    source: str | None = None,
    note: str | None = None,
    created_at: datetime | None = None,
) -> ForecastRow:
    """Register a forecast and its first estimate in one IMMEDIATE transaction, ledger included."""
    fields = check_registration(
        title=title,
        criteria=criteria,
        author=author,
        source=source,
        due=due,
        created_at=created_at or clock_now(),
        tags=tags,
    )
    estimate = check_estimate(fields.author, probability, note) if probability is not None else None
    conn.execute("BEGIN IMMEDIATE")
    try:
        cursor = conn.execute(
            "INSERT INTO forecast (title, criteria, due, created_at, author, source, ref, status) "
            "VALUES (?, ?, ?, ?, ?, ?, NULL, 'open')",
            (
                fields.title,
                fields.criteria,
                _stored(fields.due),
                _stored(fields.created_at),
                fields.author,
                fields.source,
            ),
        )
        assert cursor.lastrowid is not None
        row = ForecastRow(
            id=cursor.lastrowid,
            title=fields.title,
            criteria=fields.criteria,
            due=fields.due,
            created_at=fields.created_at,
            author=fields.author,
            source=fields.source,
            ref=None,
            status="open",
            outcome=None,
            resolved_at=None,
            resolved_by=None,
            resolution_note=None,
            resolution_evidence=None,
            tags=[TagRow(name) for name in fields.tags],
        )
        conn.executemany(
            "INSERT INTO tag (forecast_id, name) VALUES (?, ?)", [(row.id, t) for t in fields.tags]
        )
        entries = [("register", register_payload(row, fields.tags), row.id, fields.created_at)]
        if estimate is not None:
            name, p, note_ = estimate
            cursor = conn.execute(
                "INSERT INTO estimate (forecast_id, forecaster, probability, made_at, note) VALUES (?, ?, ?, ?, ?)",
                (row.id, name, p, _stored(fields.created_at), note_),
            )
            assert cursor.lastrowid is not None
            e = EstimateRow(cursor.lastrowid, row.id, name, p, fields.created_at, note_)
            row.estimates.append(e)
            entries.append(("estimate", estimate_payload(e), row.id, fields.created_at))
        LEDGER.append_many(SQLiteExecutor(conn), entries)
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return row


def _where(query: ForecastQuery, now: datetime) -> tuple[str, dict[str, Any]]:
    where, params = forecast_where(
        alias="forecast", status=query.status, tag=query.tag, by=query.by, now=now
    )
    return " WHERE " + where, stored(params)


def list_forecasts(
    conn: sqlite3.Connection, query: ForecastQuery, *, now: datetime | None = None
) -> Sequence[ForecastRow]:
    """Forecasts matching ``query`` in the store's order, with their estimates and tags."""
    where, params = _where(query, now or clock_now())
    order = "resolved_at DESC, id DESC" if query.status in ("resolved", "annulled") else "due, id"
    sql = f"SELECT {_FORECAST_COLUMNS} FROM forecast{where} ORDER BY {order}"
    if query.limit or query.offset:
        sql += " LIMIT :limit OFFSET :offset"
        params.update(limit=query.limit or -1, offset=query.offset)
    rows = []
    for r in conn.execute(sql, params):
        rows.append(
            ForecastRow(
                id=r[0], title=r[1], criteria=r[2], due=_loaded(r[3]),  # type: ignore[arg-type]
                created_at=_loaded(r[4]), author=r[5], source=r[6], ref=r[7],  # type: ignore[arg-type]
                status=r[8], outcome=None if r[9] is None else bool(r[9]), resolved_at=_loaded(r[10]),
                resolved_by=r[11], resolution_note=r[12], resolution_evidence=r[13],
            )
        )  # fmt: skip
    if rows:
        by_id = {f.id: f for f in rows}
        marks = ",".join("?" * len(by_id))
        for fid, name in conn.execute(
            f"SELECT forecast_id, name FROM tag WHERE forecast_id IN ({marks}) ORDER BY name",
            list(by_id),
        ):
            by_id[fid].tags.append(TagRow(name))
        for eid, fid, who, p, at, note in conn.execute(
            f"SELECT id, forecast_id, forecaster, probability, made_at, note FROM estimate WHERE forecast_id IN ({marks}) ORDER BY id",
            list(by_id),
        ):
            by_id[fid].estimates.append(EstimateRow(eid, fid, who, p, _loaded(at), note))  # type: ignore[arg-type]
    return rows


def count_forecasts(
    conn: sqlite3.Connection, query: ForecastQuery, *, now: datetime | None = None
) -> int:
    """How many forecasts match ``query`` (ignoring its limit)."""
    where, params = _where(query, now or clock_now())
    return int(conn.execute(f"SELECT COUNT(*) FROM forecast{where}", params).fetchone()[0])
