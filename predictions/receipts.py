"""The receipts chain: tamper evidence for checks, evidence, proposals and the outbox.

The forecast ledger (:mod:`predictions.ledger`) holds what an export carries and a restore
rebuilds byte for byte. The resolvers' and the mailer's records live in a second hash chain, the
``receipt`` table, built exactly like the ledger (``hash = sha256(prev | seq | at | kind |
payload)``), with one entry per append-only fact, written in the same transaction as the row:

- ``check``: a resolver spec registered (id, forecast, kind, params, mode, created_at);
- ``stop`` / ``resume``: a person stopped a check (the sweeps pass it by) or set it going again;
- ``evidence``: one receipt of a check, with the sha256 of all its columns;
- ``propose``: a proposal made by the runner; ``decide``: its decision (confirmed, disputed,
  acknowledged, superseded) with who, when and the note;
- ``queue``: a message queued (dedupe key, kind, recipients, Message-ID, sha256 of the subject
  and bodies); ``sent`` / ``failed``: its outcome.

Scheduling state (``next_check_at``, ``failures``, validators, claims, outbox attempts and retry
times) changes all the time and is not chained. :func:`verify` walks the chain and compares the
``check_spec`` (a stopped check included), ``evidence``, ``proposal`` and ``outbox`` tables with
what it implies.

Writers append a batch at once with :func:`append_many` (one ``executemany``)::

    append_many(session, [("check", check_payload(c), c.forecast_id, c.created_at)])
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, insert, select, text
from sqlalchemy.orm import Session

from predictions.chain import GENESIS, ChainHead, canonical, chain_hash, iso
from predictions.clock import now as clock_now
from predictions.models import Check, Evidence, Outbox, Proposal, Receipt

__all__ = [
    "EVIDENCE_COLUMNS",
    "Entry",
    "ReceiptProblem",
    "append_many",
    "check_payload",
    "decision_payload",
    "switch_payload",
    "delivery_payload",
    "evidence_digest",
    "evidence_json",
    "evidence_payload",
    "head",
    "proposal_json",
    "proposal_payload",
    "queue_payload",
    "verify",
]

#: One entry to append: kind, payload (a dict, or its :func:`canonical` text), forecast id (or
#: None), time.
Entry = tuple[str, "dict[str, Any] | str", "int | None", datetime]

_PG_RECEIPT_LOCK = 7_274_210_002
_RECEIPT = cast(Table, Receipt.__table__)


# --- payloads -------------------------------------------------------------------------------


def _sha(*parts: object) -> str:
    return hashlib.sha256(canonical({"v": list(parts)}).encode("utf-8")).hexdigest()


def check_payload(
    check_id: int,
    forecast_id: int,
    kind: str,
    params: dict[str, Any] | None,
    mode: str,
    created_at: datetime,
) -> dict[str, Any]:
    """Payload of a registered resolver spec: what it checks and how, fixed for its life."""
    return {
        "id": check_id,
        "forecast": forecast_id,
        "kind": kind,
        "params": dict(params or {}),
        "mode": mode,
        "created_at": iso(created_at),
    }


def switch_payload(check_id: int, by: str, note: str | None) -> dict[str, Any]:
    """Payload of a ``stop`` or ``resume`` entry: which check, who, why."""
    return {"check": check_id, "by": by, "note": note}


#: Every column of an evidence row but its id: what its receipt's digest covers, and what a
#: sweep inserts.
EVIDENCE_COLUMNS = (
    "check_id",
    "forecast_id",
    "checked_at",
    "kind",
    "resolver_version",
    "url",
    "http_status",
    "sha256",
    "bytes",
    "unchanged",
    "excerpt",
    "value",
    "verdict",
    "error",
)


def evidence_digest(row: dict[str, Any]) -> str:
    """sha256 over every column of an evidence row (``row`` maps column names to values)."""
    values = []
    for name in EVIDENCE_COLUMNS:
        value = row.get(name)
        if isinstance(value, datetime):
            value = iso(value)
        elif name == "unchanged":
            value = bool(value)
        values.append(value)
    text = _json_list(values)
    if text is None:
        return _sha(*values)
    return hashlib.sha256(f'{{"v":{text}}}'.encode()).hexdigest()


def evidence_payload(evidence_id: int, row: dict[str, Any]) -> dict[str, Any]:
    """Payload of one evidence row: its id, check, forecast, verdict and the digest of it all."""
    return {
        "id": evidence_id,
        "check": row.get("check_id"),
        "forecast": row["forecast_id"],
        "verdict": row["verdict"],
        "digest": evidence_digest(row),
    }


def evidence_json(evidence_id: int, row: dict[str, Any]) -> str:
    """``canonical(evidence_payload(evidence_id, row))``, the same bytes without the dict: a sweep
    writes one per check. :func:`append_many` takes it as an entry's payload."""
    parts = _json_parts(
        [row.get("check_id"), evidence_digest(row), row["forecast_id"], evidence_id, row["verdict"]]
    )
    if parts is None:
        return canonical(evidence_payload(evidence_id, row))
    check, digest, forecast, id_, verdict = parts  # the keys in sorted order
    return (
        f'{{"check":{check},"digest":{digest},"forecast":{forecast},"id":{id_},'
        f'"verdict":{verdict}}}'
    )


# The string encoder canonical() uses (the C one, as ensure_ascii=False picks it).
_string = json.encoder.encode_basestring


def _json_parts(values: list[Any]) -> list[str] | None:
    """The :func:`canonical` text of each value, for None, bool, int and str values (exactly its
    bytes), or None when a value has another type (the caller then uses ``canonical`` itself)."""
    parts = []
    for value in values:
        kind = type(value)
        if kind is str:
            parts.append(_string(value))
        elif value is None:
            parts.append("null")
        elif kind is bool:
            parts.append("true" if value else "false")
        elif kind is int:
            parts.append(int.__repr__(value))
        else:
            return None
    return parts


def _json_list(values: list[Any]) -> str | None:
    """``canonical`` text of a list (see :func:`_json_parts`), or None."""
    parts = _json_parts(values)
    return None if parts is None else "[" + ",".join(parts) + "]"


def proposal_payload(
    proposal_id: int,
    forecast_id: int,
    check_id: int | None,
    evidence_id: int | None,
    kind: str,
    verdict: str,
    created_at: datetime,
) -> dict[str, Any]:
    """Payload of a proposal as the runner made it (pending)."""
    return {
        "id": proposal_id,
        "forecast": forecast_id,
        "check": check_id,
        "evidence": evidence_id,
        "kind": kind,
        "verdict": verdict,
        "created_at": iso(created_at),
    }


def proposal_json(
    proposal_id: int,
    forecast_id: int,
    check_id: int | None,
    evidence_id: int | None,
    kind: str,
    verdict: str,
    created_at: datetime,
) -> str:
    """``canonical(proposal_payload(...))``, the same bytes without the dict (see
    :func:`evidence_json`)."""
    parts = _json_parts(
        [check_id, iso(created_at), evidence_id, forecast_id, proposal_id, kind, verdict]
    )
    if parts is None:
        return canonical(
            proposal_payload(
                proposal_id, forecast_id, check_id, evidence_id, kind, verdict, created_at
            )
        )
    check, created, evidence, forecast, id_, kind_, verdict_ = parts  # the keys in sorted order
    return (
        f'{{"check":{check},"created_at":{created},"evidence":{evidence},"forecast":{forecast},'
        f'"id":{id_},"kind":{kind_},"verdict":{verdict_}}}'
    )


def decision_payload(
    proposal_id: int, status: str, at: datetime, by: str | None, note: str | None
) -> dict[str, Any]:
    """Payload of a decision on a proposal (confirmed, disputed, acknowledged, superseded)."""
    return {"id": proposal_id, "status": status, "at": iso(at), "by": by, "note": note}


def queue_payload(
    outbox_id: int,
    *,
    dedupe_key: str,
    kind: str,
    recipients: str,
    message_id: str,
    created_at: datetime,
    subject: str,
    body_text: str,
    body_html: str,
) -> dict[str, Any]:
    """Payload of a queued message: who gets what (the content by its sha256)."""
    return {
        "id": outbox_id,
        "dedupe_key": dedupe_key,
        "kind": kind,
        "recipients": recipients,
        "message_id": message_id,
        "created_at": iso(created_at),
        "content": _sha(subject, body_text, body_html),
    }


def delivery_payload(outbox_id: int, at: datetime, error: str | None) -> dict[str, Any]:
    """Payload of a message's outcome (``sent``, with refusals if any, or ``failed``)."""
    return {"id": outbox_id, "at": iso(at), "error": error}


# --- writing --------------------------------------------------------------------------------


def head(session: Session, *, lock: bool = False) -> ChainHead:
    """The receipts chain's head. With ``lock`` on PostgreSQL, take its transaction lock first."""
    if lock and session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_RECEIPT_LOCK})
    row = session.execute(
        select(Receipt.seq, Receipt.hash).order_by(Receipt.seq.desc()).limit(1)
    ).first()
    if row is None:
        return ChainHead(0, GENESIS)
    return ChainHead(int(row[0]), str(row[1]))


def append_many(session: Session, entries: Iterable[Entry]) -> int:
    """Append entries to the receipts chain in the session's transaction (one executemany).

    Writers are serialised as for the ledger: SQLite transactions begin IMMEDIATE; on
    PostgreSQL an advisory transaction lock is taken before the head is read. Returns how many
    entries were appended.
    """
    entries = list(entries)
    if not entries:
        return 0
    session.flush()
    start = head(session, lock=True)
    seq, prev = start.seq, start.hash
    rows = []
    for kind, payload, fid, at in entries:
        body = payload if isinstance(payload, str) else canonical(payload)
        seq += 1
        digest = chain_hash(prev, seq, at, kind, body)
        rows.append(
            {
                "seq": seq,
                "at": at,
                "kind": kind,
                "forecast_id": fid,
                "payload": body,
                "prev_hash": prev,
                "hash": digest,
            }
        )
        prev = digest
    session.execute(insert(_RECEIPT), rows)
    return len(rows)


def append(
    session: Session,
    kind: str,
    payload: dict[str, Any],
    *,
    forecast_id: int | None = None,
    at: datetime | None = None,
) -> None:
    """Append one entry (see :func:`append_many`)."""
    append_many(session, [(kind, payload, forecast_id, at or clock_now())])


# --- verification ---------------------------------------------------------------------------


@dataclass
class ReceiptProblem:
    """The first problem :func:`verify` found: the receipt's seq (None for a table row)."""

    seq: int | None
    problem: str


@dataclass
class _State:
    checks: dict[int, tuple[Any, ...]] = field(default_factory=dict)
    stopped: set[int] = field(default_factory=set)
    evidence: dict[int, dict[str, Any]] = field(default_factory=dict)
    proposals: dict[int, dict[str, Any]] = field(default_factory=dict)
    outbox: dict[int, dict[str, Any]] = field(default_factory=dict)


def _new(table: dict[int, Any], key: int, what: str) -> None:
    if key in table:
        raise ValueError(f"{what} {key} is recorded twice")


def _r_check(state: _State, p: dict[str, Any]) -> None:
    _new(state.checks, int(p["id"]), "check")
    state.checks[int(p["id"])] = (p["forecast"], p["kind"], p["params"], p["mode"], p["created_at"])


def _switch(stop: bool) -> Callable[[_State, dict[str, Any]], None]:
    def replay(state: _State, p: dict[str, Any]) -> None:
        check = int(p["check"])
        if check not in state.checks:
            raise ValueError(
                f"check {check} is {'stopped' if stop else 'resumed'} before it exists"
            )
        if (check in state.stopped) == stop:
            raise ValueError(f"check {check} is {'stopped' if stop else 'resumed'} twice")
        if stop:
            state.stopped.add(check)
        else:
            state.stopped.discard(check)

    return replay


def _r_evidence(state: _State, p: dict[str, Any]) -> None:
    _new(state.evidence, int(p["id"]), "evidence")
    state.evidence[int(p["id"])] = p


def _r_propose(state: _State, p: dict[str, Any]) -> None:
    _new(state.proposals, int(p["id"]), "proposal")
    state.proposals[int(p["id"])] = {
        **p,
        "status": "pending",
        "decided_at": None,
        "decided_by": None,
        "note": None,
    }


def _r_decide(state: _State, p: dict[str, Any]) -> None:
    proposal = state.proposals.get(int(p["id"]))
    if proposal is None:
        raise ValueError(f"proposal {p['id']} is decided before it is made")
    if proposal["status"] != "pending":
        raise ValueError(f"proposal {p['id']} is decided twice")
    proposal.update(status=p["status"], decided_at=p["at"], decided_by=p["by"], note=p["note"])


def _r_queue(state: _State, p: dict[str, Any]) -> None:
    _new(state.outbox, int(p["id"]), "message")
    state.outbox[int(p["id"])] = {**p, "sent_at": None, "failed_at": None, "error": None}


def _outcome(name: str) -> Callable[[_State, dict[str, Any]], None]:
    def replay(state: _State, p: dict[str, Any]) -> None:
        message = state.outbox.get(int(p["id"]))
        if message is None:
            raise ValueError(f"message {p['id']} is {name} before it is queued")
        if message["sent_at"] or message["failed_at"]:
            raise ValueError(f"message {p['id']} has two outcomes")
        message[f"{name}_at"] = p["at"]
        message["error"] = p["error"]

    return replay


_REPLAYERS: dict[str, Callable[[_State, dict[str, Any]], None]] = {
    "check": _r_check,
    "stop": _switch(stop=True),
    "resume": _switch(stop=False),
    "evidence": _r_evidence,
    "propose": _r_propose,
    "decide": _r_decide,
    "queue": _r_queue,
    "sent": _outcome("sent"),
    "failed": _outcome("failed"),
}


def verify(session: Session) -> tuple[int, str, ReceiptProblem | None]:
    """Walk the receipts chain, then compare the tables; returns (entries, head, problem)."""
    state = _State()
    prev = GENESIS
    expected = 1
    last = 0
    while True:
        batch = session.execute(
            select(
                Receipt.seq,
                Receipt.at,
                Receipt.kind,
                Receipt.payload,
                Receipt.prev_hash,
                Receipt.hash,
            )
            .where(Receipt.seq > last)
            .order_by(Receipt.seq)
            .limit(5000)
        ).all()
        if not batch:
            break
        for seq, at, kind, payload, prev_hash, digest in batch:
            if seq != expected:
                what = "missing" if seq > expected else "duplicated"
                return 0, prev, ReceiptProblem(expected, f"receipt {expected} is {what}")
            if prev_hash != prev:
                return (
                    0,
                    prev,
                    ReceiptProblem(
                        seq, f"receipt {seq} ({kind}) does not link to receipt {seq - 1}"
                    ),
                )
            if chain_hash(prev, seq, at, kind, payload) != digest:
                return (
                    0,
                    prev,
                    ReceiptProblem(seq, f"receipt {seq} ({kind}): hash does not match its content"),
                )
            try:
                replayer = _REPLAYERS.get(kind)
                if replayer is None:
                    raise ValueError(f"unknown receipt kind {kind!r}")
                replayer(state, json.loads(payload))
            except (ValueError, KeyError, TypeError) as exc:
                return 0, prev, ReceiptProblem(seq, f"receipt {seq} ({kind}): {exc}")
            prev = digest
            expected += 1
        last = batch[-1][0]
    for compare in (_compare_checks, _compare_evidence, _compare_proposals, _compare_outbox):
        problem = compare(session, state)
        if problem is not None:
            return expected - 1, prev, ReceiptProblem(None, problem)
    return expected - 1, prev, None


def _short(value: object) -> str:
    text_ = repr(value)
    return text_ if len(text_) <= 60 else text_[:57] + "..."


def _diff(
    what: str,
    key: int,
    actual: dict[str, Any] | None,
    expected: dict[str, Any] | None,
) -> str | None:
    if actual is None:
        return f"{what} {key} is in the receipts chain but missing from the table"
    if expected is None:
        return f"{what} {key} is in the table but not in the receipts chain"
    for name, value in actual.items():
        if value != expected.get(name):
            return (
                f"{what} {key}: {name} is {_short(value)} in the table, "
                f"the receipts chain says {_short(expected.get(name))}"
            )
    return None


def _walk(
    what: str,
    rows: Iterable[tuple[int, dict[str, Any]]],
    expected: dict[int, dict[str, Any]],
) -> str | None:
    seen: set[int] = set()
    for key, actual in rows:
        problem = _diff(what, key, actual, expected.get(key))
        if problem is not None:
            return problem
        seen.add(key)
    missing = sorted(set(expected) - seen)
    if missing:
        return _diff(what, missing[0], None, expected[missing[0]])
    return None


def _compare_checks(session: Session, state: _State) -> str | None:
    names = ("forecast", "kind", "params", "mode", "created_at", "enabled")
    expected = {
        k: dict(zip(names, (*v, k not in state.stopped), strict=True))
        for k, v in state.checks.items()
    }
    rows = session.execute(
        select(
            Check.id,
            Check.forecast_id,
            Check.kind,
            Check.params,
            Check.mode,
            Check.created_at,
            Check.enabled,
        ).order_by(Check.id)
    )
    return _walk(
        "check",
        (
            (
                cid,
                dict(
                    zip(
                        names,
                        (
                            fid,
                            kind,
                            json.loads(canonical(dict(params or {}))),
                            mode,
                            iso(at),
                            bool(enabled),
                        ),
                        strict=True,
                    )
                ),
            )
            for cid, fid, kind, params, mode, at, enabled in rows
        ),
        expected,
    )


def _compare_evidence(session: Session, state: _State) -> str | None:
    columns = [getattr(Evidence, name) for name in EVIDENCE_COLUMNS]
    expected = {
        k: {
            "check": p["check"],
            "forecast": p["forecast"],
            "verdict": p["verdict"],
            "all": p["digest"],
        }
        for k, p in state.evidence.items()
    }

    def rows() -> Iterable[tuple[int, dict[str, Any]]]:
        for eid, *values in session.execute(
            select(Evidence.id, *columns).order_by(Evidence.id).execution_options(yield_per=5000)
        ):
            row = dict(zip(EVIDENCE_COLUMNS, values, strict=True))
            yield (
                eid,
                {
                    "check": row["check_id"],
                    "forecast": row["forecast_id"],
                    "verdict": row["verdict"],
                    "all": evidence_digest(row),
                },
            )

    problem = _walk("evidence", rows(), expected)
    if problem is not None and ": all is " in problem:
        return problem.split(": all is ")[0] + ": its content differs from its receipt"
    return problem


def _compare_proposals(session: Session, state: _State) -> str | None:
    names = (
        "forecast",
        "check",
        "evidence",
        "kind",
        "verdict",
        "created_at",
        "status",
        "decided_at",
        "decided_by",
        "note",
    )
    expected = {k: {n: p[n] for n in names} for k, p in state.proposals.items()}
    rows = session.execute(
        select(
            Proposal.id,
            Proposal.forecast_id,
            Proposal.check_id,
            Proposal.evidence_id,
            Proposal.kind,
            Proposal.verdict,
            Proposal.created_at,
            Proposal.status,
            Proposal.decided_at,
            Proposal.decided_by,
            Proposal.note,
        ).order_by(Proposal.id)
    )
    return _walk(
        "proposal",
        (
            (
                r[0],
                dict(
                    zip(
                        names,
                        (*r[1:6], iso(r[6]), r[7], iso(r[8]), r[9], r[10]),
                        strict=True,
                    )
                ),
            )
            for r in rows
        ),
        expected,
    )


def _compare_outbox(session: Session, state: _State) -> str | None:
    names = ("dedupe_key", "kind", "recipients", "message_id", "created_at", "content")
    expected: dict[int, dict[str, Any]] = {}
    for k, p in state.outbox.items():
        expected[k] = {n: p[n] for n in names}
        expected[k].update(sent_at=p["sent_at"], failed_at=p["failed_at"])
        if p["sent_at"] or p["failed_at"]:
            expected[k]["last_error"] = p["error"]

    def rows() -> Iterable[tuple[int, dict[str, Any]]]:
        for o in session.execute(select(Outbox).order_by(Outbox.id)).scalars():
            row = {
                "dedupe_key": o.dedupe_key,
                "kind": o.kind,
                "recipients": o.recipients,
                "message_id": o.message_id,
                "created_at": iso(o.created_at),
                "content": _sha(o.subject, o.body_text, o.body_html),
                "sent_at": iso(o.sent_at),
                "failed_at": iso(o.failed_at),
            }
            if o.sent_at or o.failed_at:
                row["last_error"] = o.last_error
            yield o.id, row

    problem = _walk("message", rows(), expected)
    if problem is not None and ": content is " in problem:
        return problem.split(": content is ")[0] + ": its subject or body differs from its receipt"
    return problem
