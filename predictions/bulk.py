"""Bulk import: many forecasts in one transaction, all or nothing, streamed in batches.

:func:`import_records` reads :class:`~predictions.formats.records.ForecastIn` records one at a
time (the readers stream their files) and writes forecasts, tags, estimates, amendments, resolver
checks and one ledger entry per event, a batch of records at a time with one ``executemany`` per
table. Ledger payloads come from the payload functions the store uses and are linked by the one
chain class, so ``tracker verify`` passes after any import.

Every record is checked; if any record has a problem the rest are still read (so the user sees
every problem of the file at once), nothing more is written, and :class:`ImportProblems` rolls the
transaction back: a bad file imports nothing.

Two modes:

- **append** (the usual): new ids after the ones in the database; the chain continues from its
  head, one forecast after another (registration, then estimates, amendments and corrections
  (earlier closings and their reopenings) in order, then the current closing).
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
import hashlib
import heapq
import json
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from datetime import datetime
from itertools import islice
from types import SimpleNamespace
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from predictions.chain import (
    CLOSING_KINDS,
    GENESIS,
    LEDGER,
    ChainBuilder,
    amend_payload,
    canonical,
    close_payload,
    estimate_payload,
    iso,
    question_json,
    register_payload,
    reopen_payload,
)
from predictions.checks import add_checks, switch_check
from predictions.clock import now as clock_now
from predictions.db import executor
from predictions.errors import ImportProblems, InputError, StateError
from predictions.formats.records import CorrectionIn, FileMeta, ForecastIn
from predictions.models import Amendment, Estimate, Forecast, LedgerEntry, Tag
from predictions.questions import encode

__all__ = ["CheckValidator", "ImportSummary", "import_records"]

#: Validates one resolver check as written in a file, for a question of the given kind (binary,
#: numeric, date, choice); returns ``{"kind", "params", "mode"}`` or raises :class:`InputError`.
#: The tracker passes ``resolvers.validate_check``.
CheckValidator = Callable[..., dict[str, Any]]

#: Records read between two writes.
_BATCH = 2000


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
    withdrawn: int = 0
    corrections: int = 0
    skipped: int = 0
    ledger_entries: int = 0
    head: str = GENESIS
    restored: bool = False
    file_head: str | None = None
    file_head_verified: bool | None = None
    dry_run: bool = False

    def as_dict(self) -> dict[str, Any]:
        """The summary as plain JSON-ready data."""
        return asdict(self)


#: The columns each table is written with: its columns in the model's order (the ledger's but its
#: own row id), the order of the rows' tuples below. A forecast is written as registered (open),
#: and a closed one then gets its :data:`_CLOSING` columns, as the store does: so an open forecast
#: binds no NULLs (the sqlite3 module binds a None several times slower than a value). So a binary
#: question's rows leave the other types' columns to their defaults (binary, NULL), and a numeric,
#: date or choice question's are written by statements of their own (:data:`_TYPED`).
_COLUMNS: dict[Any, tuple[str, ...]] = {
    model: tuple(
        c.name
        for c in model.__table__.c
        if not (model is LedgerEntry and c.name == "id") and c.name != "distribution"
    )
    for model in (Tag, Estimate, Amendment, LedgerEntry)
}
_REGISTERED = ("id", "title", "criteria", "due", "created_at", "author", "source", "ref")
_CLOSING = ("status", "outcome", "resolved_at", "resolved_by", "resolution_note",
            "resolution_evidence")  # fmt: skip
#: The rows of numeric, date and choice questions: a registration with its kind and question, an
#: estimate with its distribution (and no probability), a closing with its resolution value.
_TYPED = {
    "registered": (*_REGISTERED, "kind", "question"),
    "estimate": ("id", "forecast_id", "forecaster", "made_at", "note", "distribution"),
    "closing": (*_CLOSING, "resolution_value"),
}

#: One ledger event of a record: seq in the file (or None), time, the time as bound, kind, payload.
_Event = tuple[int | None, datetime, Any, str, dict[str, Any]]


class _Rows:
    """Rows waiting to be written, per table, as tuples of values bound as the column types bind
    them (the types' own bind processors), sent with one driver ``executemany`` per table.

    Speed: SQLAlchemy's Core and ``text()`` executemany spend a few microseconds a row on the
    parameters, about as much as the import's whole work on a row; the driver takes the tuples.
    """

    def __init__(self, session: Session) -> None:
        self.conn = session.connection()
        dialect = self.conn.dialect
        mark = "?" if dialect.paramstyle == "qmark" else "%s"
        inserts = {
            Forecast: ("forecast", _REGISTERED),
            "registered": ("forecast", _TYPED["registered"]),
            **{model: (model.__tablename__, cols) for model, cols in _COLUMNS.items()},
            "estimate": ("estimate", _TYPED["estimate"]),
        }  # parents before children
        self.sql: dict[Any, str] = {}
        for key, (table, cols) in inserts.items():
            opened = ", status" if table == "forecast" else ""
            names, values = ", ".join(cols) + opened, ", ".join([mark] * len(cols))
            values += ", 'open'" if opened else ""
            self.sql[key] = f"INSERT INTO {table} ({names}) VALUES ({values})"
        for key, cols in ((_CLOSING, _CLOSING), ("closing", _TYPED["closing"])):
            assignments = ", ".join(f"{c} = {mark}" for c in cols)
            self.sql[key] = f"UPDATE forecast SET {assignments} WHERE id = {mark}"
        self.rows: dict[Any, list[tuple[Any, ...]]] = {key: [] for key in self.sql}
        columns = Forecast.__table__.c
        # cached: a file repeats its due dates, and an estimate often has its forecast's time
        self.time = functools.lru_cache(maxsize=4096)(_processor(columns.due.type, dialect))
        self.bool = _processor(columns.outcome.type, dialect)
        #: resolver checks, (forecast id, validated specs), written after their forecasts
        self.checks: list[tuple[int, list[dict[str, Any]]]] = []

    def flush(self) -> None:
        """Write the rows so far, parents before children."""
        for model, rows in self.rows.items():
            if rows:
                self.conn.exec_driver_sql(self.sql[model], rows)
                rows.clear()

    def discard(self) -> None:
        for rows in self.rows.values():
            rows.clear()
        self.checks.clear()


def _processor(type_: Any, dialect: Any) -> Callable[[Any], Any]:
    """How a column of this type binds a value on this database (SQLAlchemy's own conversion)."""
    return type_.dialect_impl(dialect).bind_processor(dialect) or (lambda value: value)


def _original(record: ForecastIn) -> tuple[str, str, datetime, list[str]]:
    """Title, criteria, due and tags as first registered: the old value of each field's first
    amendment."""
    title, criteria, due, tags = record.title, record.criteria, record.due, record.tags
    seen: set[str] = set()
    for a in sorted(record.amendments, key=lambda a: (a.seq or 0, a.at)):
        if a.field in seen:
            continue
        seen.add(a.field)
        if a.field == "title":
            title = a.old
        elif a.field == "criteria":
            criteria = a.old
        elif a.field == "tags":
            tags = [t for t in a.old.split(",") if t]
        else:
            due = datetime.fromisoformat(a.old.rstrip("Z"))
    return title, criteria, due, tags


def _registration(record: ForecastIn, fid: int) -> dict[str, Any]:
    """The ledger payload of the record's registration as forecast ``fid``."""
    title, criteria, due, tags = _original(record)
    view = SimpleNamespace(
        id=fid,
        title=title,
        criteria=criteria,
        due=due,
        created_at=record.created_at,
        author=record.author,
        source=record.source,
        ref=record.ref,
        question=record.question,
    )
    return register_payload(view, tags)


def _correction_payload(c: CorrectionIn, fid: int, kind: str) -> dict[str, Any]:
    """The ledger payload of an earlier closing or reopening of forecast ``fid`` (a question of
    this ``kind``)."""
    if c.kind == "reopen":
        return reopen_payload(fid, c.was or "", c.at, c.by, c.note)
    status = next(s for s, k in CLOSING_KINDS.items() if k == c.kind)
    view = SimpleNamespace(id=fid, status=status, outcome=c.outcome, resolved_at=c.at)
    view.kind, view.resolution_value = kind, c.value
    view.resolved_by, view.resolution_note, view.resolution_evidence = c.by, c.note, c.evidence
    return close_payload(view)


def _registration_key(payload: dict[str, Any]) -> bytes:
    """A registration payload without its id, as a digest: the same forecast in any database."""
    body = canonical({**payload, "id": 0})
    return hashlib.blake2b(body.encode(), digest_size=16).digest()


def _lock(session: Session) -> None:
    """Serialise writers: SQLite already holds BEGIN IMMEDIATE; PostgreSQL locks the id tables."""
    if session.get_bind().dialect.name == "postgresql":
        LEDGER.head(executor(session), lock=True)
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
        self.rows = _Rows(session)
        start = LEDGER.head(executor(session))
        self.chain = ChainBuilder(start)
        summary.ledger_entries = start.seq
        self.next_id = {
            m: int(session.scalar(select(func.max(m.id))) or 0) + 1
            for m in (Forecast, Estimate, Amendment)
        }
        empty = start.seq == 0 and self.next_id[Forecast] == 1
        self.empty = empty
        #: restore mode, decided by the first record (see the module docs)
        self.restore: bool | None = None
        self.refs_seen: set[str] = set()
        self.ids_seen: dict[str, set[int]] = {
            "forecast": set(),
            "estimate": set(),
            "amendment": set(),
        }
        #: the registration key of every forecast in the database (see _registration_key),
        #: loaded when the first record is read into a database that holds forecasts
        self.registrations: dict[bytes, int] | None = {} if empty else None
        #: records already in the database: where in the file, and what matched
        self.already: list[str] = []
        #: restore: events waiting for the entries before them, by seq
        self.pending: list[tuple[int, int, str, dict[str, Any], datetime, Any]] = []

    # --- reading and checking -------------------------------------------------------------------

    def run(self, records: Iterable[ForecastIn], progress: Callable[[int], None] | None) -> None:
        it = iter(records)
        done = 0
        while chunk := list(islice(it, _BATCH)):
            existing = self._existing_refs(chunk)
            for record in chunk:
                self._one(record, existing)
            done += len(chunk)
            if self.problems or self.already:
                self.rows.discard()
            else:
                self._flush()
            if progress is not None:
                progress(done)
        self._finish()

    def _existing_refs(self, chunk: list[ForecastIn]) -> set[str]:
        refs = [r.ref for r in chunk if r.ref]
        found: set[str] = set()
        if self.empty:
            return found
        for i in range(0, len(refs), 500):
            part = refs[i : i + 500]
            found.update(self.session.scalars(select(Forecast.ref).where(Forecast.ref.in_(part))))
        return found

    def _already_here(self, r: ForecastIn, existing: set[str]) -> str | None:
        """What shows the record is already in the database (its ref, its registration), or None."""
        if r.ref and r.ref in existing:
            return f"ref {r.ref!r}"
        if r.created_at >= self.now:
            return None  # a record without created_at is registered now: it is new
        if self.registrations is None:
            payloads = self.session.scalars(
                select(LedgerEntry.payload)
                .where(LedgerEntry.kind == "register")
                .execution_options(yield_per=5000)
            )
            self.registrations = {}
            for payload in map(json.loads, payloads):
                self.registrations[_registration_key(payload)] = payload["id"]
        if not self.registrations:
            return None
        fid = self.registrations.get(_registration_key(_registration(r, 0)))
        return None if fid is None else f"forecast {fid} here"

    def _one(self, r: ForecastIn, existing: set[str]) -> None:
        problems = list(r.problems)
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
        if not self.problems and not self.already:
            self._write(r, checks)

    def _restore_problems(self, r: ForecastIn) -> list[str]:
        missing = []
        if r.id is None or r.seq is None:
            missing.append("id/seq")
        if any(e.id is None or e.seq is None for e in r.estimates):
            missing.append("estimate id/seq")
        if any(a.id is None or a.seq is None for a in r.amendments):
            missing.append("amendment id/seq")
        if any(c.seq is None for c in r.corrections):
            missing.append("correction seq")
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
                spec = self.validate_check(raw, question_kind=r.kind)
            except InputError as exc:
                self.problems.append(f"{where}: {exc}")
                continue
            valid.append({**spec, "stopped": stopped})
        return valid

    # --- writing --------------------------------------------------------------------------------

    def _take_id(self, model: Any, given: int | None) -> int:
        if self.restore and given is not None:
            return given
        value = self.next_id[model]
        self.next_id[model] = value + 1
        return value

    def _write(self, r: ForecastIn, checks: list[dict[str, Any]]) -> None:
        rows, time = self.rows.rows, self.rows.time
        fid = self._take_id(Forecast, r.id)
        created = time(r.created_at)
        registered = (fid, r.title, r.criteria, time(r.due), created, r.author, r.source, r.ref)
        kind = r.kind
        if kind == "binary":
            rows[Forecast].append(registered)
        else:
            rows["registered"].append((*registered, kind, question_json(r.question)))
        rows[Tag].extend((fid, name) for name in r.tags)
        history: list[_Event] = []
        estimate = SimpleNamespace(forecast_id=fid)
        for e in r.estimates:
            eid = self._take_id(Estimate, e.id)
            made_at = time(e.at)
            if e.values is None:
                rows[Estimate].append((eid, fid, e.by, e.probability, made_at, e.note))
            else:
                blob = encode(e.values)
                rows["estimate"].append((eid, fid, e.by, made_at, e.note, blob))
            estimate.id, estimate.forecaster, estimate.probability = eid, e.by, e.probability
            estimate.made_at, estimate.note, estimate.values = e.at, e.note, e.values
            payload = estimate_payload(estimate, kind)
            history.append((e.seq, e.at, made_at, "estimate", payload))
        for a in r.amendments:
            aid = self._take_id(Amendment, a.id)
            made_at = time(a.at)
            rows[Amendment].append((aid, fid, a.field, a.old, a.new, made_at, a.by, a.note))
            view = SimpleNamespace(id=aid, forecast_id=fid, field=a.field, old_value=a.old)
            view.new_value, view.made_at, view.made_by, view.note = a.new, a.at, a.by, a.note
            history.append((a.seq, a.at, made_at, "amend", amend_payload(view)))
        for c in r.corrections:
            payload = _correction_payload(c, fid, r.kind)
            history.append((c.seq, c.at, time(c.at), c.kind, payload))
        # Estimates, amendments and corrections in the order they happened: by ledger seq when
        # the file gives every one, else by time (a stable sort keeps the file's order for ties).
        if all(event[0] is not None for event in history):
            history.sort(key=lambda event: event[0] or 0)
        else:
            history.sort(key=lambda event: event[1])
        events = [(r.seq, r.created_at, created, "register", _registration(r, fid)), *history]
        if r.status != "open":
            events.append(self._resolution(r, fid))
        if checks:
            self.rows.checks.append((fid, checks))
        s = self.summary
        s.forecasts += 1
        s.estimates += len(r.estimates)
        s.amendments += len(r.amendments)
        s.corrections += len(r.corrections)
        s.checks += len(checks)
        if not self.restore:
            for _seq, at, bound, kind, payload in events:
                self._link(kind, payload, fid, at, bound)
            return
        for seq, at, bound, kind, payload in events:
            heapq.heappush(self.pending, (seq or 0, fid, kind, payload, at, bound))
        while self.pending and self.pending[0][0] <= self.chain.seq + 1:
            seq, fid, kind, payload, at, bound = heapq.heappop(self.pending)
            if seq <= self.chain.seq:
                self.problems.append(f"ledger seq {seq} appears twice in the file")
            else:
                self._link(kind, payload, fid, at, bound)

    def _resolution(self, r: ForecastIn, fid: int) -> _Event:
        """The forecast's closing row and ledger event (:data:`_CLOSING`, the status's kind)."""
        setattr(self.summary, r.status, getattr(self.summary, r.status) + 1)
        at = r.resolved_at or r.created_at
        bound = self.rows.time(at)
        view = SimpleNamespace(id=fid, status=r.status, outcome=r.outcome, resolved_at=at)
        view.kind, view.resolution_value = r.kind, r.resolution_value
        view.resolved_by, view.resolution_note = r.resolved_by, r.resolution_note
        view.resolution_evidence = r.resolution_evidence
        outcome = self.rows.bool(r.outcome)
        closing = (
            r.status,
            outcome,
            bound,
            r.resolved_by,
            r.resolution_note,
            view.resolution_evidence,
        )
        if r.kind == "binary":
            self.rows.rows[_CLOSING].append((*closing, fid))
        else:
            self.rows.rows["closing"].append((*closing, r.resolution_value, fid))
        kind = CLOSING_KINDS[r.status]
        return (r.resolution_seq, at, bound, kind, close_payload(view))

    def _link(self, kind: str, payload: dict[str, Any], fid: int, at: datetime, bound: Any) -> None:
        body = canonical(payload)
        seq, prev, digest = self.chain.link(kind, iso(at) or "", body)
        self.rows.rows[LedgerEntry].append((seq, bound, kind, fid, body, prev, digest))

    # --- the end --------------------------------------------------------------------------------

    def _finish(self) -> None:
        meta = self.meta
        self.problems.extend(meta.problems)
        if self.restore and not self.problems:
            if self.pending:
                gap = self.chain.seq + 1
                self.problems.append(
                    f"ledger entry {gap} is missing from the file: it cannot be restored exactly"
                )
            elif meta.ledger_head is not None:
                self.summary.file_head = meta.ledger_head
                ok = meta.ledger_head == self.chain.hash and meta.ledger_entries in (
                    None,
                    self.chain.seq,
                )
                self.summary.file_head_verified = ok
                if not ok:
                    self.problems.append(
                        f"ledger head: the file states {meta.ledger_entries} entries with head "
                        f"{meta.ledger_head}, its records rebuild {self.chain.seq} entries with "
                        f"head {self.chain.hash}: the file was changed after export"
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
        self._flush()
        _move_sequences(self.session)
        self.summary.ledger_entries = self.chain.seq - self.summary.ledger_entries
        self.summary.head = self.chain.hash

    def _flush(self) -> None:
        """Write the rows so far, then the resolver checks of their forecasts (through
        :func:`~predictions.checks.add_checks`, as ``tracker add`` stores them; a check the file
        says is stopped is stopped by the import, after its registration)."""
        self.rows.flush()
        for fid, specs in self.rows.checks:
            kept = [{k: spec[k] for k in ("kind", "params", "mode")} for spec in specs]
            added = add_checks(self.session, fid, kept, now=self.now)
            for check, spec in zip(added, specs, strict=True):
                if spec["stopped"]:
                    note = f"stopped in {self.summary.source}"
                    switch_check(
                        self.session, fid, check.id, stop=True, by="import", note=note, now=self.now
                    )
        self.rows.checks.clear()


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
    importer.run(records, progress)
    return summary
