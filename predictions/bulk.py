"""Bulk import: many forecasts in one transaction, all or nothing, streamed in batches.

:func:`import_records` reads :class:`~predictions.formats.records.ForecastIn` records one at a
time (the readers stream their files), and writes forecasts, tags, estimates, amendments, resolver
checks and one ledger entry per event with SQLAlchemy Core ``executemany`` in batches. The ledger
entries are built by :class:`~predictions.ledger.ChainBuilder` from the same payload functions the
store uses, so ``tracker verify`` passes after any import.

Every record is checked; if any record has a problem the rest are still read (so the user sees
every problem of the file at once), nothing more is written, and :class:`ImportProblems` rolls the
transaction back: a bad file imports nothing.

Two modes:

- **append** (the usual): new ids after the ones in the database; the chain continues from its
  head, one forecast after another (registration, then estimates and amendments in order, then
  the resolution).
- **restore**: the database is empty and the file is a complete export (every record carries the
  ids and ledger ``seq`` numbers it had). Ids and the chain are rebuilt exactly, in ``seq`` order,
  and the rebuilt head must equal the head the file states; so ``export -> import into an empty
  database -> export`` gives the same bytes, and a file changed after export is refused.

A forecast is imported once. A record is already in the database when its ``ref``
(``predictionbook:123``) is, or when its registration is: everything the ledger's registration
entry says but the id (title, criteria and due as first registered, created_at to the
microsecond, author, source, ref, tags), which an export carries and no two forecasts share. So
``export`` then ``import`` of the file into the same database (or into one that imported it
before) finds every forecast already there. Such records refuse the file, or are skipped with
``skip_existing``.
"""

from __future__ import annotations

import functools
import gc
import hashlib
import heapq
import json
import sqlite3
import sys
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import datetime
from itertools import chain, islice
from types import SimpleNamespace
from typing import Any

from sqlalchemy import func, insert, select, text
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from predictions import ledger, receipts
from predictions.chain import estimate_json, register_json
from predictions.clock import now as clock_now
from predictions.errors import ImportProblems, InputError, StateError
from predictions.formats.records import FileMeta, ForecastIn
from predictions.models import Amendment, Check, Estimate, Forecast, LedgerEntry

__all__ = ["CheckValidator", "ImportSummary", "import_records"]

#: Validates one resolver check as written in a file; returns ``{"kind", "params", "mode"}`` or
#: raises :class:`InputError`. The tracker passes ``resolvers.validate_check``.
CheckValidator = Callable[[dict[str, Any]], dict[str, Any]]

_BATCH = 2000
#: Rows per multi-row INSERT statement on SQLite (fewer if SQLite allows fewer variables).
_SQLITE_ROWS = 2000
_flatten = chain.from_iterable
#: Python's thread switch interval during an import (the default is 5 ms). The writer thread
#: needs Python's lock for a moment after every multi-row INSERT; at the default it waits up to
#: 5 ms for the reading thread to hand it over, and the overlap of reading and writing is lost
#: (measured: a writer thread gained nothing at 5 ms, 16% of the import's time at 0.1 ms).
_SWITCH_INTERVAL = 0.0001
_ID_TABLES = (Forecast, Estimate, Amendment)


@dataclass
class ImportSummary:
    """What an import wrote (or, in a dry run, would have written)."""

    source: str
    format: str
    forecasts: int = 0
    estimates: int = 0
    amendments: int = 0
    checks: int = 0
    resolved: int = 0
    annulled: int = 0
    skipped: int = 0
    ledger_entries: int = 0
    head: str = ledger.GENESIS
    restored: bool = False
    file_head: str | None = None
    file_head_verified: bool | None = None
    dry_run: bool = False

    def as_dict(self) -> dict[str, Any]:
        """The summary as plain JSON-ready data."""
        return asdict(self)


@dataclass(order=True)
class _Event:
    seq: int
    kind: str = field(compare=False)
    payload: dict[str, Any] = field(compare=False)
    forecast_id: int = field(compare=False)
    at: datetime = field(compare=False)


_COLUMNS: dict[str, tuple[str, ...]] = {
    "forecast": (
        "id",
        "title",
        "criteria",
        "due",
        "created_at",
        "author",
        "source",
        "ref",
        "status",
        "outcome",
        "resolved_at",
        "resolved_by",
        "resolution_note",
        "resolution_evidence",
    ),
    # an open forecast of the bulk loop: its status and resolution go without binding (_SHAPES)
    "forecast_open": ("id", "title", "criteria", "due", "created_at", "author", "source", "ref"),
    "tag": ("forecast_id", "name"),
    "estimate": ("id", "forecast_id", "forecaster", "probability", "made_at", "note"),
    "estimate_bare": ("id", "forecast_id", "forecaster", "probability", "made_at"),  # no note
    "amendment": (
        "id",
        "forecast_id",
        "field",
        "old_value",
        "new_value",
        "made_at",
        "made_by",
        "note",
    ),
    "ledger": ("seq", "at", "kind", "forecast_id", "payload", "prev_hash", "hash"),
}
#: Rows of a known shape, written to their table with what they leave out: a column written as a
#: literal in the statement, or left to its default (NULL). The sqlite3 module binds a None
#: about eight times slower than an int (it looks for an adapter first: ~0.4 us, holding
#: Python's lock), and a bulk file's open forecasts and note-less estimates are mostly Nones.
_SHAPES: dict[str, tuple[str, dict[str, str]]] = {
    "forecast_open": ("forecast", {"status": "'open'"}),
    "estimate_bare": ("estimate", {}),
}


@functools.lru_cache(maxsize=1024)
def _sqlite_time(value: datetime | None) -> str | None:
    """A datetime as SQLAlchemy's DateTime stores it in SQLite (each record repeats its times)."""
    return None if value is None else value.isoformat(" ", "microseconds")


def _sqlite_bool(value: bool | None) -> int | None:
    return None if value is None else int(value)


def _same(value: Any) -> Any:
    return value


def _stamp(value: datetime) -> str:
    """``YYYY-MM-DDTHH:MM:SS.ffffff`` of a naive-UTC datetime: :func:`ledger.iso` without the Z.

    Both forms an import writes come from it by slicing: the ledger's ``stamp + "Z"`` and
    SQLite's ``stamp[:10] + " " + stamp[11:]`` (what :func:`_sqlite_time` gives).
    """
    if value.tzinfo is not None:
        value = value.replace(tzinfo=None)
    # isoformat() with no arguments is the quickest; it leaves out zero microseconds.
    return value.isoformat() if value.microsecond else value.isoformat() + ".000000"


class _Buffers:
    """Rows waiting for the next executemany, per table, as tuples in :data:`_COLUMNS` order.

    Values are already in the form the column type would bind: on SQLite, datetimes as
    ``YYYY-MM-DD HH:MM:SS.ffffff`` text (what SQLAlchemy's DateTime writes) and booleans as 0/1.
    Binding 100,000s of values one by one through the type system would cost more than the
    insert itself. On SQLite the rows go straight to the driver connection's ``executemany``
    (inside the session's transaction: the connection is the session's); on PostgreSQL through
    ``Connection.exec_driver_sql``, which psycopg batches.
    """

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.sqlite = conn.dialect.name == "sqlite"
        mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
        #: per buffer: the head of its INSERT (up to VALUES) and the marks of one row
        self._head: dict[str, str] = {}
        self._marks: dict[str, str] = {}
        for table, cols in _COLUMNS.items():
            target, literals = _SHAPES.get(table, (table, {}))
            self._head[table] = f"INSERT INTO {target} ({', '.join((*cols, *literals))}) VALUES "
            self._marks[table] = "(" + ", ".join([mark] * len(cols) + list(literals.values())) + ")"
        self.sql = {table: self._head[table] + self._marks[table] for table in _COLUMNS}
        self.rows: dict[str, list[tuple[Any, ...]]] = {t: [] for t in _COLUMNS}
        #: datetime and boolean values as this database binds them
        self.time: Callable[[datetime | None], Any] = _sqlite_time if self.sqlite else _same
        self.bool: Callable[[bool | None], Any] = _sqlite_bool if self.sqlite else _same
        self.checks: list[dict[str, Any]] = []
        self._driver: Any = conn.connection.driver_connection if self.sqlite else None
        if self._driver is not None:
            limit = self._driver.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
            self._rows_per_statement = {
                table: max(1, min(_SQLITE_ROWS, limit // len(cols)))
                for table, cols in _COLUMNS.items()
            }
            self._multi_sql = {
                table: self._values(table, per) for table, per in self._rows_per_statement.items()
            }
        self._pool: ThreadPoolExecutor | None = None
        self._pending: Future[None] | None = None

    def add(self, table: str, row: tuple[Any, ...]) -> None:
        self.rows[table].append(row)

    def size(self) -> int:
        return len(self.rows["ledger"])

    def flush(self, *, wait: bool = False) -> None:
        """Send the rows so far to the database.

        The rows are written by one writer thread while the caller builds the next batch (the
        sqlite3 module releases Python's lock while SQLite inserts, psycopg while the server
        works); at most one batch is in flight, and batches run in order, parents before
        children, so foreign keys hold at every statement. With ``wait`` the rows are written
        before this returns. (The two threads take turns with Python's lock: see
        :data:`_SWITCH_INTERVAL`.)
        """
        batch = {table: rows for table, rows in self.rows.items() if rows}
        checks = self.checks
        self.rows = {t: [] for t in _COLUMNS}
        self.checks = []
        self.wait()
        if not batch and not checks:
            return
        if wait:
            self._write(batch, checks)
            return
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tracker-import")
        self._pending = self._pool.submit(self._write, batch, checks)

    def _write(self, batch: dict[str, list[tuple[Any, ...]]], checks: list[dict[str, Any]]) -> None:
        for table, rows in batch.items():
            if self._driver is not None:
                self._sqlite_insert(table, rows)
            else:
                self.conn.exec_driver_sql(self.sql[table], rows)
        if checks:
            self.conn.execute(insert(Check), checks)

    def _sqlite_insert(self, table: str, rows: list[tuple[Any, ...]]) -> None:
        """Insert ``rows`` with multi-row ``INSERT ... VALUES (...), (...)`` statements.

        One statement per :data:`_SQLITE_ROWS` rows (fewer if SQLite allows fewer variables)
        does the work of as many executemany steps with less binding overhead per row (about
        15% of SQLite's time on a bulk file), and holds the GIL only while binding.
        """
        per = self._rows_per_statement[table]
        execute = self._driver.execute
        for i in range(0, len(rows), per):
            part = rows[i : i + per]
            sql = self._multi_sql[table] if len(part) == per else self._values(table, len(part))
            execute(sql, list(_flatten(part)))

    def _values(self, table: str, n: int) -> str:
        """``INSERT INTO table (...) VALUES (?, ...), ...`` for ``n`` rows."""
        return self._head[table] + ", ".join([self._marks[table]] * n)

    def wait(self) -> None:
        """Wait for the batch in flight (re-raising its error); the connection is free after."""
        if self._pending is not None:
            pending, self._pending = self._pending, None
            pending.result()

    def close(self) -> None:
        """Wait for the writer thread and stop it."""
        try:
            self.wait()
        finally:
            if self._pool is not None:
                self._pool.shutdown(wait=True)
                self._pool = None

    def discard(self) -> None:
        for rows in self.rows.values():
            rows.clear()
        self.checks.clear()


def _chunks(records: Iterable[ForecastIn], size: int) -> Iterator[list[ForecastIn]]:
    it = iter(records)
    while chunk := list(islice(it, size)):
        yield chunk


def _original(record: ForecastIn) -> tuple[str, str, datetime]:
    """Title, criteria and due as first registered: the old value of each field's first amendment."""
    title, criteria, due = record.title, record.criteria, record.due
    seen: set[str] = set()
    for a in sorted(record.amendments, key=lambda a: (a.seq or 0, a.at)):
        if a.field in seen:
            continue
        seen.add(a.field)
        if a.field == "title":
            title = a.old
        elif a.field == "criteria":
            criteria = a.old
        else:
            due = datetime.fromisoformat(a.old.rstrip("Z"))
    return title, criteria, due


def _registration_key(payload: dict[str, Any]) -> bytes:
    """A registration payload without its id, as a digest: the same forecast in any database."""
    body = ledger.canonical({**payload, "id": 0})
    return hashlib.blake2b(body.encode(), digest_size=16).digest()


def _lock(session: Session) -> None:
    """Serialise writers: SQLite already holds BEGIN IMMEDIATE; PostgreSQL locks the id tables."""
    if session.get_bind().dialect.name == "postgresql":
        ledger.head(session, lock=True)
        session.execute(
            text(
                "LOCK TABLE forecast, tag, estimate, amendment, check_spec "
                "IN SHARE ROW EXCLUSIVE MODE"
            )
        )


def _move_sequences(session: Session) -> None:
    """After explicit ids on PostgreSQL, move each SERIAL sequence past the largest id."""
    if session.get_bind().dialect.name != "postgresql":
        return
    for table in ("forecast", "estimate", "amendment"):
        session.execute(
            text(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                f"COALESCE((SELECT MAX(id) FROM {table}), 0) + 1, false)"
            )
        )


class _Importer:
    def __init__(
        self,
        session: Session,
        summary: ImportSummary,
        meta: FileMeta,
        validate_check: CheckValidator | None,
        skip_existing: bool,
        now: datetime,
    ) -> None:
        self.session = session
        self.summary = summary
        self.meta = meta
        self.validate_check = validate_check
        self.skip_existing = skip_existing
        self.now = now
        self.problems: list[str] = []
        self.conn = session.connection()
        self.buffers = _Buffers(self.conn)
        start = ledger.head(session)
        self.builder = ledger.ChainBuilder(start)
        self.next_id = {m: int(session.scalar(select(func.max(m.id))) or 0) + 1 for m in _ID_TABLES}
        self.checks_before = int(session.scalar(select(func.max(Check.id))) or 0)
        self.empty = start.seq == 0 and self.next_id[Forecast] == 1
        self.restore: bool | None = None
        self.refs_seen: set[str] = set()
        #: the registration key of every forecast in the database (see _registered_key), loaded
        #: when the first record is read into a database that holds forecasts
        self.registrations: dict[bytes, int] | None = {} if self.empty else None
        #: records already in the database: where in the file, and what matched
        self.already: list[str] = []
        self.ids_seen: dict[str, set[int]] = {
            "forecast": set(),
            "estimate": set(),
            "amendment": set(),
        }
        self.pending: list[_Event] = []
        # Reused views for the ledger's payload functions (they read attributes, as of a model).
        self._registered = SimpleNamespace()
        self._due_stamps: dict[datetime, str] = {}
        self._estimate = SimpleNamespace()

    # --- checks --------------------------------------------------------------------------------

    def _existing_refs(self, chunk: list[ForecastIn]) -> set[str]:
        refs: list[str] = [r.ref for r in chunk if r.ref]
        if not refs or self.empty:
            return set()
        self.buffers.wait()  # the connection is the writer thread's until its batch is done
        found: set[str] = set()
        for i in range(0, len(refs), 500):
            part = refs[i : i + 500]
            for ref in self.session.scalars(select(Forecast.ref).where(Forecast.ref.in_(part))):
                if ref:
                    found.add(ref)
        return found

    def _load_registrations(self) -> dict[bytes, int]:
        self.buffers.wait()
        found: dict[bytes, int] = {}
        rows = self.session.execute(
            select(LedgerEntry.forecast_id, LedgerEntry.payload)
            .where(LedgerEntry.kind == "register")
            .execution_options(yield_per=5000)
        )
        for fid, payload in rows:
            found[_registration_key(json.loads(payload))] = fid
        return found

    def _already_here(self, r: ForecastIn, existing: set[str]) -> str | None:
        """What shows the record is already in the database (its ref, its registration), or None."""
        if r.ref and r.ref in existing:
            return f"ref {r.ref!r}"
        if self.registrations is None:
            self.registrations = self._load_registrations()
        if not self.registrations or r.created_at >= self.now:
            return None  # (a record without created_at is registered now: it is new)
        view = SimpleNamespace(id=0, created_at=r.created_at, author=r.author, source=r.source)
        view.title, view.criteria, view.due, view.ref = (*_original(r), r.ref)
        fid = self.registrations.get(_registration_key(ledger.register_payload(view, r.tags)))
        return None if fid is None else f"forecast {fid} here"

    def _restore_problems(self, r: ForecastIn) -> list[str]:
        missing = []
        if r.id is None or r.seq is None:
            missing.append("id/seq")
        if any(e.id is None or e.seq is None for e in r.estimates):
            missing.append("estimate id/seq")
        if any(a.id is None or a.seq is None for a in r.amendments):
            missing.append("amendment id/seq")
        if r.status != "open" and r.resolution_seq is None:
            missing.append("resolution_seq")
        out = []
        if missing:
            out.append(
                f"{r.where}: lacks {', '.join(missing)}; a file restored into an empty database "
                "needs the ids and seq numbers of an export on every record"
            )
        for kind, ids in (
            ("forecast", [r.id]),
            ("estimate", [e.id for e in r.estimates]),
            ("amendment", [a.id for a in r.amendments]),
        ):
            for i in ids:
                if i is None:
                    continue
                if i in self.ids_seen[kind]:
                    out.append(f"{r.where}: {kind} id {i} appears twice in the file")
                self.ids_seen[kind].add(i)
        return out

    def _checks(self, r: ForecastIn) -> list[dict[str, Any]]:
        valid = []
        for i, raw in enumerate(r.checks):
            where = f"{r.where}, check {i + 1}"
            if self.validate_check is None:
                self.problems.append(
                    f"{where}: resolver checks cannot be validated here (no resolvers installed)"
                )
                continue
            raw = dict(raw)
            stopped = raw.pop("stopped", False)
            if not isinstance(stopped, bool):
                self.problems.append(f"{where}: stopped: got {stopped!r}, expected true or false")
                continue
            try:
                spec = self.validate_check(raw)
            except InputError as exc:
                self.problems.append(f"{where}: {exc}")
                continue
            valid.append({**spec, "stopped": stopped})
        return valid

    # --- writing -------------------------------------------------------------------------------

    def run(self, records: Iterable[ForecastIn], progress: Callable[[int], None] | None) -> None:
        done = 0
        for chunk in _chunks(records, _BATCH):
            existing = self._existing_refs(chunk)
            for record in chunk:
                self._one(record, existing)
            done += len(chunk)
            if self.problems or self.already:
                self.buffers.discard()
            elif self.buffers.size() >= _BATCH:
                self.buffers.flush()
            if progress is not None:
                progress(done)
        self._finish()

    def _one(self, r: ForecastIn, existing: set[str]) -> None:
        problems = list(r.problems) if r.problems else []
        if r.ref:
            if r.ref in self.refs_seen:
                problems.append(f"{r.where}: ref {r.ref!r} appears twice in the file")
            self.refs_seen.add(r.ref)
        if not problems:
            already = self._already_here(r, existing)
            if already is not None:
                if self.skip_existing:
                    self.summary.skipped += 1
                else:
                    self.already.append(f"{r.where} is {already}")
                return
        if self.restore is None:
            self.restore = self.empty and r.id is not None and r.seq is not None
            self.summary.restored = self.restore
        if self.restore:
            problems.extend(self._restore_problems(r))
        self.problems.extend(problems)
        checks = self._checks(r) if r.checks else []
        if self.problems or self.already:
            return  # keep reading to list every problem; write nothing more
        self._write(r, checks)

    def _take_id(self, model: Any, given: int | None) -> int:
        if self.restore and given is not None:
            return given
        value = self.next_id[model]
        self.next_id[model] = value + 1
        return value

    def _write(self, r: ForecastIn, checks: list[dict[str, Any]]) -> None:
        if not self.restore and not r.amendments and r.status == "open":
            # The common case of a bulk file: estimates in time order, no amendments, no ledger
            # seqs to follow. Their entries are chained as they are read, without sorting.
            estimates = r.estimates
            for i in range(len(estimates) - 1):
                if estimates[i].seq is not None or estimates[i + 1].at < estimates[i].at:
                    break
            else:
                self._write_open(r, checks)
                return
        self._write_any(r, checks)

    def _write_open(self, r: ForecastIn, checks: list[dict[str, Any]]) -> None:
        """:meth:`_write_any` for an open forecast with ordered estimates, without amendments.

        The hot loop of a bulk import: each time is formatted once, each payload is written as
        canonical JSON directly (:func:`predictions.chain.estimate_json`, the same bytes as
        :func:`ledger.canonical`), and the rows go to the buffers as tuples.
        """
        rows = self.buffers.rows
        add_ledger = rows["ledger"].append
        add_estimate = rows["estimate"].append
        add_bare = rows["estimate_bare"].append
        sqlite = self.buffers.sqlite
        link = self.builder.link
        fid = self.next_id[Forecast]
        self.next_id[Forecast] = fid + 1
        created = r.stamp or _stamp(r.created_at)
        due = self._due_stamps.get(r.due)
        if due is None:  # files repeat their due dates
            if len(self._due_stamps) > 4096:
                self._due_stamps.clear()
            due = self._due_stamps[r.due] = _stamp(r.due)
        created_at: Any = created[:10] + " " + created[11:] if sqlite else r.created_at
        created_iso = created + "Z"
        row = (
            fid,
            r.title,
            r.criteria,
            due[:10] + " " + due[11:] if sqlite else r.due,
            created_at,
            r.author,
            r.source,
            r.ref,
        )
        if (
            r.outcome is None
            and r.resolved_at is None
            and r.resolved_by is None
            and r.resolution_note is None
            and r.resolution_evidence is None
        ):
            rows["forecast_open"].append(row)
        else:
            rows["forecast"].append(
                (
                    *row,
                    "open",
                    None if r.outcome is None else self.buffers.bool(r.outcome),
                    None if r.resolved_at is None else self.buffers.time(r.resolved_at),
                    r.resolved_by,
                    r.resolution_note,
                    r.resolution_evidence,
                )
            )
        tags = r.tags
        if tags:
            add_tag = rows["tag"].append
            for name in tags:
                add_tag((fid, name))
            if len(tags) > 1:
                tags = sorted(tags)
        body = register_json(
            fid, r.title, r.criteria, due + "Z", created_iso, r.author, r.source, r.ref, tags
        )
        seq, prev, digest = link("register", created_iso, body)
        add_ledger((seq, created_at, "register", fid, body, prev, digest))
        eid = self.next_id[Estimate]
        for e in r.estimates:
            if e.at == r.created_at:
                at, made_at = created_iso, created_at
            else:
                stamp = e.stamp or _stamp(e.at)
                at = stamp + "Z"
                made_at = stamp[:10] + " " + stamp[11:] if sqlite else e.at
            by, p, note = e.by, e.probability, e.note
            if note is None:
                add_bare((eid, fid, by, p, made_at))
            else:
                add_estimate((eid, fid, by, p, made_at, note))
            body = estimate_json(eid, fid, by, p, at, note)
            seq, prev, digest = link("estimate", at, body)
            add_ledger((seq, made_at, "estimate", fid, body, prev, digest))
            eid += 1
        self.next_id[Estimate] = eid
        self._add_checks(fid, checks)
        s = self.summary
        s.forecasts += 1
        s.estimates += len(r.estimates)
        s.checks += len(checks)

    def _add_checks(self, fid: int, checks: list[dict[str, Any]]) -> None:
        for spec in checks:
            self.buffers.checks.append(
                {
                    "forecast_id": fid,
                    "kind": spec["kind"],
                    "params": spec["params"],
                    "mode": spec["mode"],
                    "enabled": not spec.get("stopped", False),
                    "created_at": self.now,
                    "next_check_at": self.now,
                    "failures": 0,
                }
            )

    def _write_any(self, r: ForecastIn, checks: list[dict[str, Any]]) -> None:
        s = self.summary
        add = self.buffers.add
        t = self.buffers.time
        fid = self._take_id(Forecast, r.id)
        add(
            "forecast",
            (
                fid,
                r.title,
                r.criteria,
                t(r.due),
                t(r.created_at),
                r.author,
                r.source,
                r.ref,
                r.status,
                self.buffers.bool(r.outcome),
                t(r.resolved_at),
                r.resolved_by,
                r.resolution_note,
                r.resolution_evidence,
            ),
        )
        for name in r.tags:
            add("tag", (fid, name))
        view = self._registered
        view.id = fid
        view.title, view.criteria, view.due = _original(r)
        view.created_at, view.author, view.source, view.ref = (
            r.created_at,
            r.author,
            r.source,
            r.ref,
        )
        register = ledger.register_payload(view, r.tags)
        row = self.builder.row
        events: list[tuple[int, datetime, str, dict[str, Any], datetime]] = []
        # The common case of a bulk file: estimates in time order, no amendments, no ledger
        # seqs to follow. Their entries are chained as they are read, without sorting.
        direct = (
            not self.restore
            and not r.amendments
            and all(
                r.estimates[i].at <= r.estimates[i + 1].at and r.estimates[i].seq is None
                for i in range(len(r.estimates) - 1)
            )
        )
        if direct:
            entry = row("register", register, fid, r.created_at)
            add(
                "ledger",
                (
                    entry["seq"],
                    t(r.created_at),
                    "register",
                    fid,
                    entry["payload"],
                    entry["prev_hash"],
                    entry["hash"],
                ),
            )
        else:
            events.append((r.seq or 0, r.created_at, "register", register, r.created_at))
        estimate = self._estimate
        estimate.forecast_id = fid
        for e in r.estimates:
            eid = self._take_id(Estimate, e.id)
            made_at = t(e.at)
            if e.note is None:
                add("estimate_bare", (eid, fid, e.by, e.probability, made_at))
            else:
                add("estimate", (eid, fid, e.by, e.probability, made_at, e.note))
            estimate.id, estimate.forecaster, estimate.probability = eid, e.by, e.probability
            estimate.made_at, estimate.note = e.at, e.note
            payload = ledger.estimate_payload(estimate)
            if direct:
                entry = row("estimate", payload, fid, e.at)
                add(
                    "ledger",
                    (
                        entry["seq"],
                        made_at,
                        "estimate",
                        fid,
                        entry["payload"],
                        entry["prev_hash"],
                        entry["hash"],
                    ),
                )
            else:
                events.append((e.seq or 0, e.at, "estimate", payload, e.at))
        for a in r.amendments:
            aid = self._take_id(Amendment, a.id)
            add("amendment", (aid, fid, a.field, a.old, a.new, t(a.at), a.by, a.note))
            payload = {
                "id": aid,
                "forecast": fid,
                "field": a.field,
                "old": a.old,
                "new": a.new,
                "at": ledger.iso(a.at),
                "by": a.by,
                "note": a.note,
            }
            events.append((a.seq or 0, a.at, "amend", payload, a.at))
        history_end = len(events)
        if r.status != "open":
            at = r.resolved_at or r.created_at
            if r.status == "resolved":
                s.resolved += 1
                payload = {
                    "forecast": fid,
                    "outcome": r.outcome,
                    "at": ledger.iso(at),
                    "by": r.resolved_by,
                    "note": r.resolution_note,
                    "evidence": r.resolution_evidence,
                }
            else:
                s.annulled += 1
                payload = {
                    "forecast": fid,
                    "at": ledger.iso(at),
                    "by": r.resolved_by,
                    "note": r.resolution_note,
                }
            kind = "resolve" if r.status == "resolved" else "annul"
            if direct:
                entry = row(kind, payload, fid, at)
                add(
                    "ledger",
                    (
                        entry["seq"],
                        t(at),
                        kind,
                        fid,
                        entry["payload"],
                        entry["prev_hash"],
                        entry["hash"],
                    ),
                )
            else:
                events.append((r.resolution_seq or 0, at, kind, payload, at))
        self._add_checks(fid, checks)
        s.forecasts += 1
        s.estimates += len(r.estimates)
        s.amendments += len(r.amendments)
        s.checks += len(checks)
        if direct:
            return
        if self.restore:
            for seq, _t, kind, payload, at in events:
                heapq.heappush(self.pending, _Event(seq, kind, payload, fid, at))
            self._drain()
            return
        if history_end > 2:
            # Estimates and amendments in the order they happened: by ledger seq when the file
            # gives every one, else by time (a stable sort keeps the file's order for ties).
            middle = events[1:history_end]
            if all(ev[0] for ev in middle):
                if any(middle[i][0] > middle[i + 1][0] for i in range(len(middle) - 1)):
                    middle.sort(key=lambda ev: ev[0])
            elif any(middle[i][1] > middle[i + 1][1] for i in range(len(middle) - 1)):
                middle.sort(key=lambda ev: ev[1])
            events[1:history_end] = middle
        time = self.buffers.time
        for _seq, _t, kind, payload, at in events:
            entry = row(kind, payload, fid, at)
            add(
                "ledger",
                (
                    entry["seq"],
                    time(at),
                    kind,
                    fid,
                    entry["payload"],
                    entry["prev_hash"],
                    entry["hash"],
                ),
            )

    def _check_receipts(self) -> None:
        """A ``check`` receipt for every spec this import wrote, as :func:`add_checks` writes."""
        rows = self.session.execute(
            select(Check.id, Check.forecast_id, Check.kind, Check.params, Check.mode, Check.enabled)
            .where(Check.id > self.checks_before)
            .order_by(Check.id)
        ).all()
        entries: list[receipts.Entry] = [
            ("check", receipts.check_payload(cid, fid, kind, params, mode, self.now), fid, self.now)
            for cid, fid, kind, params, mode, _ in rows
        ]
        # a check the file says is stopped: stopped by the import, after its registration
        note = f"stopped in {self.summary.source}"
        entries += [
            ("stop", receipts.switch_payload(cid, "import", note), fid, self.now)
            for cid, fid, *_, enabled in rows
            if not enabled
        ]
        receipts.append_many(self.session, entries)

    def _ledger(self, kind: str, payload: dict[str, Any], fid: int, at: datetime) -> None:
        entry = self.builder.row(kind, payload, fid, at)
        self.buffers.add(
            "ledger",
            (
                entry["seq"],
                self.buffers.time(at),
                kind,
                fid,
                entry["payload"],
                entry["prev_hash"],
                entry["hash"],
            ),
        )

    def _drain(self) -> None:
        while self.pending and self.pending[0].seq <= self.builder.seq + 1:
            ev = heapq.heappop(self.pending)
            if ev.seq <= self.builder.seq:
                self.problems.append(f"ledger seq {ev.seq} appears twice in the file")
                continue
            self._ledger(ev.kind, ev.payload, ev.forecast_id, ev.at)

    def _finish(self) -> None:
        meta = self.meta
        self.problems.extend(meta.problems)
        if self.restore and not self.problems:
            if self.pending:
                gap = self.builder.seq + 1
                self.problems.append(
                    f"ledger entry {gap} is missing from the file: it cannot be restored exactly"
                )
            elif meta.ledger_head is not None:
                self.summary.file_head = meta.ledger_head
                ok = meta.ledger_head == self.builder.hash and meta.ledger_entries in (
                    None,
                    self.builder.seq,
                )
                self.summary.file_head_verified = ok
                if not ok:
                    self.problems.append(
                        f"ledger head: the file states {meta.ledger_entries} entries with head "
                        f"{meta.ledger_head}, its records rebuild {self.builder.seq} entries with "
                        f"head {self.builder.hash}: the file was changed after export"
                    )
        if self.already:
            shown = "; ".join(self.already[:3]) + ("; ..." if len(self.already) > 3 else "")
            line = (
                f"{len(self.already)} of its forecasts are already in this database, nothing "
                f"imported (--skip-existing skips them): {shown}"
            )
            if not self.problems:
                raise StateError(f"{self.summary.source}: {line}")
            self.problems.append(line)
        if self.problems:
            raise ImportProblems(self.summary.source, self.problems)
        self.buffers.flush(wait=True)
        _move_sequences(self.session)
        self._check_receipts()
        start = self.summary.ledger_entries
        self.summary.ledger_entries = self.builder.seq - start
        self.summary.head = self.builder.hash


def import_records(
    session: Session,
    records: Iterable[ForecastIn],
    *,
    source: str,
    meta: FileMeta,
    validate_check: CheckValidator | None = None,
    skip_existing: bool = False,
    progress: Callable[[int], None] | None = None,
    now: datetime | None = None,
) -> ImportSummary:
    """Write every record in the session's transaction, or raise :class:`ImportProblems`.

    ``records`` is consumed once, lazily, so a reader may stream a file of any size. ``meta`` is
    read at the end (a streaming reader fills it as it goes). ``progress`` is called with the
    number of records read so far. The caller owns the transaction: on ``ImportProblems`` it must
    roll back (``write_session`` does), for a dry run it rolls back anyway.
    """
    summary = ImportSummary(source=source, format=meta.format)
    _lock(session)
    importer = _Importer(session, summary, meta, validate_check, skip_existing, now or clock_now())
    summary.ledger_entries = importer.builder.seq
    # An import allocates millions of short-lived objects and makes no reference cycles; the
    # collector's passes over the whole heap (SQLAlchemy's objects included) would cost more than
    # the writing itself, so it rests until the import is done.
    collecting = gc.isenabled()
    gc.disable()
    switch = sys.getswitchinterval()
    sys.setswitchinterval(min(switch, _SWITCH_INTERVAL))
    try:
        importer.run(records, progress)
    finally:
        sys.setswitchinterval(switch)
        if collecting:
            gc.enable()
        importer.buffers.close()
    return summary
