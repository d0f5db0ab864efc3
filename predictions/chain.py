"""The hash chains: canonical JSON, entry hashes, and :class:`Chain` over plain SQL (stdlib only).

Two chains are built alike: the ``ledger`` (every event that touches a score, what an export
carries) and the ``receipt`` chain (the resolvers' and the mailer's records, see
:mod:`predictions.receipts`). Each entry stores

    hash = sha256(prev_hash | seq | at | kind | canonical JSON payload)

:class:`Chain` reads the head, appends entries and walks the chain for ``verify``, through an
:class:`Executor`: plain SQL with ``:name`` parameters, which a :mod:`sqlite3` connection
(:class:`SQLiteExecutor`) and a SQLAlchemy connection (:func:`predictions.db.executor`) both run.
It stays free of SQLAlchemy so that the fast SQLite path of the CLI writes through it too.

    >>> canonical({"b": 1, "a": "é"})
    '{"a":"é","b":1}'
"""

from __future__ import annotations

import functools
import hashlib
import json
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from predictions.clock import to_utc_naive
from predictions.errors import ChainError
from predictions.questions import Question

__all__ = [
    "GENESIS",
    "LEDGER",
    "RECEIPTS",
    "Chain",
    "ChainBroken",
    "ChainBuilder",
    "ChainHead",
    "Cursor",
    "Entry",
    "Executor",
    "SQLiteExecutor",
    "amend_payload",
    "amendment_fields",
    "canonical",
    "chain_hash",
    "CLOSING_HISTORY",
    "CLOSING_KINDS",
    "VALUES_KEY",
    "close_payload",
    "estimate_fields",
    "estimate_payload",
    "first_difference",
    "iso",
    "loaded",
    "loaded_question",
    "question_json",
    "register_payload",
    "registered_fields",
    "reopen_payload",
    "stored",
    "take_over_payload",
]

GENESIS = "0" * 64


@functools.lru_cache(maxsize=4096)
def iso(value: datetime | None) -> str | None:
    """Canonical text of a naive-UTC datetime, to the microsecond, with a ``Z``.

    Cached: an entry's time appears in its payload and again in its hash.
    """
    if value is None:
        return None
    if value.tzinfo is not None:
        value = value.replace(tzinfo=None)
    return value.isoformat(timespec="microseconds") + "Z"


# One encoder for every entry: json.dumps with these options would build a new one per call.
_CANONICAL = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
)
# Speed: the C encoder that _CANONICAL.encode builds anew on every call, built once (the same
# bytes; a payload is never circular, so no markers). About a third of an entry's cost on import.
_C_ENCODE = (
    json.encoder.c_make_encoder(  # type: ignore[attr-defined]
        None, _CANONICAL.default, json.encoder.encode_basestring, None, ":", ",", True, False, False
    )
    if json.encoder.c_make_encoder  # type: ignore[attr-defined]
    else None
)


def canonical(payload: Any) -> str:
    """Canonical JSON: sorted keys, compact separators, UTF-8 kept as is, no NaN."""
    if _C_ENCODE is None:
        return _CANONICAL.encode(payload)
    return "".join(_C_ENCODE(payload, 0))


def _digest(prev_hash: str, seq: int, at: str, kind: str, payload: str) -> str:
    return hashlib.sha256(f"{prev_hash}|{seq}|{at}|{kind}|{payload}".encode()).hexdigest()


def chain_hash(prev_hash: str, seq: int, at: datetime, kind: str, payload: str) -> str:
    """The hash of one entry, covering the previous hash and everything the entry says."""
    return _digest(prev_hash, seq, iso(at) or "", kind, payload)


# --- plain SQL ------------------------------------------------------------------------------


class Cursor(Protocol):
    """What :meth:`Executor.execute` returns: rows as tuples."""

    def fetchone(self) -> Any: ...

    def fetchall(self) -> Sequence[Any]: ...

    def fetchmany(self, size: int) -> Sequence[Any]: ...

    def __iter__(self) -> Iterator[Any]: ...


class Executor(Protocol):
    """A database connection as the chain and the store use it.

    ``execute(sql, params)`` runs plain SQL with ``:name`` parameters (a mapping), or once per
    mapping when ``params`` is a list of them; datetimes go in as naive UTC and come back through
    :func:`loaded`. ``dialect`` is ``"sqlite"`` or ``"postgresql"``.
    """

    dialect: str

    def execute(
        self, sql: str, params: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None = None
    ) -> Cursor: ...


def stored(params: Mapping[str, Any]) -> dict[str, Any]:
    """``params`` with each datetime as SQLite holds it (SQLAlchemy's form on SQLite):
    ``YYYY-MM-DD HH:MM:SS.ffffff`` text, naive UTC."""
    return {
        k: to_utc_naive(v).strftime("%Y-%m-%d %H:%M:%S.%f") if isinstance(v, datetime) else v
        for k, v in params.items()
    }


def loaded(value: str | datetime | None) -> datetime | None:
    """A datetime column as read back: SQLite gives text, PostgreSQL a datetime."""
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(value)


class SQLiteExecutor:
    """An :class:`Executor` over a plain :mod:`sqlite3` connection."""

    dialect = "sqlite"

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def execute(
        self, sql: str, params: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None = None
    ) -> sqlite3.Cursor:
        if params is None:
            return self.conn.execute(sql)
        if isinstance(params, Mapping):
            return self.conn.execute(sql, stored(params))
        return self.conn.executemany(sql, [stored(p) for p in params])


# --- the chain ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ChainHead:
    """The last entry of the chain: how many entries and the hash of the last one."""

    seq: int
    hash: str


#: One entry to append: kind, payload (a dict, or its :func:`canonical` text), forecast id (or
#: None), time.
Entry = tuple[str, "dict[str, Any] | str", "int | None", datetime]


class ChainBuilder:
    """Links entries in memory, continuing from a given head (what every append goes through)."""

    def __init__(self, start: ChainHead) -> None:
        self.seq = start.seq
        self.hash = start.hash

    def row(
        self, kind: str, payload: dict[str, Any] | str, forecast_id: int | None, at: datetime
    ) -> dict[str, Any]:
        """The next entry as a row (``seq, at, kind, forecast_id, payload, prev_hash, hash``)."""
        body = payload if isinstance(payload, str) else canonical(payload)
        prev = self.hash
        seq, _, digest = self.link(kind, iso(at) or "", body)
        return {
            "seq": seq,
            "at": at,
            "kind": kind,
            "forecast_id": forecast_id,
            "payload": body,
            "prev_hash": prev,
            "hash": digest,
        }

    def link(self, kind: str, at: str, body: str) -> tuple[int, str, str]:
        """Chain the next entry given its :func:`iso` time text and canonical JSON ``body``;
        returns ``(seq, prev_hash, hash)``."""
        prev = self.hash
        self.seq += 1
        self.hash = _digest(prev, self.seq, at, kind, body)
        return self.seq, prev, self.hash


class ChainBroken(ChainError):
    """The first entry where a chain does not hold: ``seq``, and ``problem`` (the message)."""

    def __init__(self, seq: int, problem: str) -> None:
        super().__init__(seq, problem)
        self.problem = problem


@dataclass(frozen=True)
class Chain:
    """One hash chain kept in a table with columns ``seq, at, kind, forecast_id, payload,
    prev_hash, hash``.

    Writers are serialised: SQLite write transactions begin IMMEDIATE, and on PostgreSQL an
    advisory transaction lock (``lock_key``) is taken before the head is read, so two workers
    never fork the chain. ``noun`` and ``link_noun`` word the problems :meth:`walk` reports.
    """

    table: str
    lock_key: int
    noun: str
    link_noun: str

    def head(self, db: Executor, *, lock: bool = False) -> ChainHead:
        """The chain's head. With ``lock`` on PostgreSQL, take its transaction lock first."""
        if lock and db.dialect == "postgresql":
            db.execute("SELECT pg_advisory_xact_lock(:k)", {"k": self.lock_key})
        row = db.execute(f"SELECT seq, hash FROM {self.table} ORDER BY seq DESC LIMIT 1").fetchone()
        return ChainHead(0, GENESIS) if row is None else ChainHead(int(row[0]), str(row[1]))

    def append_many(self, db: Executor, entries: Iterable[Entry]) -> list[dict[str, Any]]:
        """Append entries in the connection's transaction (one executemany); returns the rows."""
        entries = list(entries)
        if not entries:
            return []
        builder = ChainBuilder(self.head(db, lock=True))
        rows = [builder.row(kind, payload, fid, at) for kind, payload, fid, at in entries]
        self.insert(db, rows)
        return rows

    def append(
        self,
        db: Executor,
        kind: str,
        payload: dict[str, Any] | str,
        *,
        forecast_id: int | None,
        at: datetime,
    ) -> dict[str, Any]:
        """Append one entry (see :meth:`append_many`) and return its row."""
        return self.append_many(db, [(kind, payload, forecast_id, at)])[0]

    def insert(self, db: Executor, rows: Sequence[Mapping[str, Any]]) -> None:
        """Insert rows already linked by a :class:`ChainBuilder` (a bulk import's batches)."""
        db.execute(
            f"INSERT INTO {self.table} (seq, at, kind, forecast_id, payload, prev_hash, hash) "
            "VALUES (:seq, :at, :kind, :forecast_id, :payload, :prev_hash, :hash)",
            rows,
        )

    def walk(self, db: Executor, batch: int = 5000) -> Iterator[tuple[int, str, str, str]]:
        """Every entry in ``seq`` order as ``(seq, kind, payload, hash)``, its hash recomputed.

        Raises :class:`ChainBroken` at the first entry that is missing, duplicated, does not link
        to the one before or does not match its hash: an edited, deleted, inserted or reordered
        row breaks the chain there.
        """
        prev, expected, last = GENESIS, 1, 0
        while True:
            rows = db.execute(
                f"SELECT seq, at, kind, payload, prev_hash, hash FROM {self.table} "
                "WHERE seq > :last ORDER BY seq LIMIT :n",
                {"last": last, "n": batch},
            ).fetchall()
            if not rows:
                return
            for seq, at, kind, payload, prev_hash, digest in rows:
                if seq != expected:
                    what = "missing" if seq > expected else "duplicated"
                    raise ChainBroken(expected, f"{self.noun} {expected} is {what}")
                if prev_hash != prev:
                    raise ChainBroken(
                        seq,
                        f"{self.noun} {seq} ({kind}) does not link to {self.link_noun} {seq - 1}",
                    )
                if chain_hash(prev, seq, loaded(at), kind, payload) != digest:  # type: ignore[arg-type]
                    raise ChainBroken(
                        seq, f"{self.noun} {seq} ({kind}): hash does not match its content"
                    )
                yield seq, kind, payload, digest
                prev = digest
                expected += 1
            last = rows[-1][0]

    def replay(
        self, db: Executor, replayers: Mapping[str, Callable[[dict[str, Any]], None]]
    ) -> ChainHead:
        """:meth:`walk` the chain, handing each entry's payload to the replayer of its kind;
        returns the head. :class:`ChainBroken` names the first entry that does not hold or does
        not replay (an unknown kind, a replayer's ``ValueError``, ``KeyError`` or ``TypeError``).
        """
        head = ChainHead(0, GENESIS)
        for seq, kind, body, digest in self.walk(db):
            try:
                replayer = replayers.get(kind)
                if replayer is None:
                    raise ValueError(f"unknown {self.link_noun} kind {kind!r}")
                replayer(json.loads(body))
            except (ValueError, KeyError, TypeError) as exc:
                raise ChainBroken(seq, f"{self.noun} {seq} ({kind}): {exc}") from None
            head = ChainHead(seq, digest)
        return head


def first_difference(
    chain: str,
    rows: Iterable[tuple[int, dict[str, Any]]],
    expected: Mapping[int, dict[str, Any]],
    label: Callable[[int, dict[str, Any]], str],
) -> str | None:
    """The first way a table differs from what a chain's replay implies, worded for ``verify``.

    ``rows`` are the table's rows as ``(key, {column: value})``; ``expected`` the replayed rows
    by key; ``label(key, row)`` names a row (``"estimate 2 (forecast 1)"``). None when they agree.
    """
    seen: set[int] = set()
    for key, actual in rows:
        want = expected.get(key)
        if want is None:
            return f"{label(key, actual)} is in the table but not in the {chain}"
        for name, value in actual.items():
            if value != want.get(name):
                return (
                    f"{label(key, actual)}: {name} is {_short(value)} in the table, "
                    f"the {chain} says {_short(want.get(name))}"
                )
        seen.add(key)
    missing = min(set(expected) - seen, default=None)
    if missing is not None:
        return f"{label(missing, expected[missing])} is in the {chain} but missing from the table"
    return None


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


#: The forecast ledger (:mod:`predictions.ledger`).
LEDGER = Chain("ledger", 7_274_210_001, "ledger entry", "entry")
#: The receipts chain (:mod:`predictions.receipts`).
RECEIPTS = Chain("receipt", 7_274_210_002, "receipt", "receipt")


# --- payloads of the ledger's events --------------------------------------------------------


#: The key of a non-binary estimate's values in its ledger payload, ``--json`` and the export,
#: by question kind: a CDF on the grid, or one probability per option. (A binary estimate's
#: ``p`` / ``probability`` is unchanged, so the hashes of old ledgers hold.)
VALUES_KEY = {"numeric": "cdf", "date": "cdf", "choice": "probabilities"}


def question_json(question: Question | None) -> str | None:
    """A forecast's ``question`` column: the canonical JSON of its spec (None for binary)."""
    return None if question is None else canonical(question.spec())


def loaded_question(kind: str, text: str | None) -> Question | None:
    """The :class:`Question` a ``question`` column holds (None for binary)."""
    return None if text is None else Question.from_spec(kind, json.loads(text))


class _ForecastLike(Protocol):
    id: int
    title: str
    criteria: str
    due: datetime
    created_at: datetime
    author: str
    source: str | None
    ref: str | None
    question: Question | None


class _EstimateLike(Protocol):
    id: int
    forecast_id: int
    forecaster: str
    probability: float | None
    made_at: datetime
    note: str | None
    values: tuple[float, ...] | None


def registered_fields(f: _ForecastLike) -> dict[str, Any]:
    """A forecast's fields fixed at its registration (but its id and ref), as the ledger and the
    export write them."""
    return {
        "title": f.title,
        "criteria": f.criteria,
        "due": iso(f.due),
        "created_at": iso(f.created_at),
        "author": f.author,
        "source": f.source,
    }


def register_payload(f: _ForecastLike, tags: Iterable[str]) -> dict[str, Any]:
    """Payload of a registration: everything that is fixed about a forecast; a non-binary
    question adds its ``kind`` and ``question`` (the spec)."""
    payload = {"id": f.id, **registered_fields(f), "ref": f.ref, "tags": sorted(tags)}
    if f.question is not None:
        payload.update(kind=f.question.kind, question=f.question.spec())
    return payload


def _values(e: _EstimateLike, kind: str, key: str) -> tuple[str, Any]:
    """The estimate's forecast as ``(name, value)``: ``(key, p)`` on a binary question, else
    the values under :data:`VALUES_KEY` as a list."""
    if kind == "binary":
        return key, e.probability
    assert e.values is not None, "a non-binary estimate carries values"
    return VALUES_KEY[kind], list(e.values)


def estimate_payload(e: _EstimateLike, kind: str = "binary") -> dict[str, Any]:
    """Payload of an estimate on a question of this ``kind``: ``p`` (binary), ``cdf`` or
    ``probabilities`` (:data:`VALUES_KEY`)."""
    name, value = _values(e, kind, "p")
    return {
        "id": e.id,
        "forecast": e.forecast_id,
        "by": e.forecaster,
        name: value,
        "at": iso(e.made_at),
        "note": e.note,
    }


def estimate_fields(e: _EstimateLike, kind: str = "binary") -> dict[str, Any]:
    """An estimate as ``--json`` and the export write it (but its ids): ``probability``
    (binary), ``cdf`` or ``probabilities`` (:data:`VALUES_KEY`)."""
    name, value = _values(e, kind, "probability")
    return {name: value, "at": iso(e.made_at), "by": e.forecaster, "note": e.note}


class _AmendmentLike(Protocol):
    id: int
    forecast_id: int
    field: str
    old_value: str
    new_value: str
    made_at: datetime
    made_by: str
    note: str | None


class _ClosedLike(Protocol):
    id: int
    kind: str
    status: str
    outcome: bool | None
    resolution_value: float | None
    resolved_at: datetime | None
    resolved_by: str | None
    resolution_note: str | None
    resolution_evidence: str | None


def amendment_fields(a: _AmendmentLike) -> dict[str, Any]:
    """An amendment as the ledger, ``--json`` and the export write it (but its ids): the field,
    its old and new text (a due date as :func:`iso`), when, by whom and why."""
    return {
        "field": a.field,
        "old": a.old_value,
        "new": a.new_value,
        "at": iso(a.made_at),
        "by": a.made_by,
        "note": a.note,
    }


def amend_payload(a: _AmendmentLike) -> dict[str, Any]:
    """Payload of an amendment: its id, its forecast's and :func:`amendment_fields`."""
    return {"id": a.id, "forecast": a.forecast_id, **amendment_fields(a)}


#: The entry kind of each closed status: a resolution, an annulment (the question became moot),
#: a withdrawal (a forecast entered by mistake: kept in the ledger, out of lists, scores and mail).
CLOSING_KINDS = {"resolved": "resolve", "annulled": "annul", "withdrawn": "withdraw"}
#: The entry kinds of a forecast's closings and the reopenings that withdrew them: its history
#: of corrections (``show``, the export).
CLOSING_HISTORY = (*CLOSING_KINDS.values(), "reopen")


def close_payload(f: _ClosedLike) -> dict[str, Any]:
    """Payload of a forecast's closing: a ``resolve`` (with outcome and evidence; a non-binary
    question's with ``value``, its resolution value, and a null outcome), ``annul`` or
    ``withdraw`` entry, by its status (:data:`CLOSING_KINDS`)."""
    payload: dict[str, Any] = {"forecast": f.id, "at": iso(f.resolved_at), "by": f.resolved_by}
    payload["note"] = f.resolution_note
    if f.status == "resolved":
        payload.update(outcome=f.outcome, evidence=f.resolution_evidence)
        if f.kind != "binary":
            payload["value"] = f.resolution_value
    return payload


def reopen_payload(
    forecast_id: int, was: str, at: datetime, by: str, note: str | None
) -> dict[str, Any]:
    """Payload of a ``reopen`` entry: it withdraws the forecast's closing (``was`` names the status
    it had: resolved, annulled or withdrawn) and the forecast is open again. The closing entry
    stays in the ledger; nothing is edited."""
    return {"forecast": forecast_id, "was": was, "at": iso(at), "by": by, "note": note}


def take_over_payload(
    old: str, new: str, at: datetime, forecasts: Sequence[int], estimates: Sequence[int]
) -> dict[str, Any]:
    """Payload of a ``take_over`` entry (``tracker config set forecaster NEW --take-over``): the
    forecasts registered (``forecasts``, by id) and the estimates made (``estimates``) under the
    name ``old`` are ``new``'s from here on. The entries that recorded them stay as they were."""
    return {
        "from": old,
        "to": new,
        "at": iso(at),
        "forecasts": list(forecasts),
        "estimates": list(estimates),
    }
