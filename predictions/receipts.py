"""The receipts chain: tamper evidence for checks, evidence, proposals and the outbox.

The forecast ledger (:mod:`predictions.ledger`) holds what an export carries and a restore
rebuilds byte for byte. The resolvers' and the mailer's records live in a second hash chain, the
``receipt`` table (:data:`predictions.chain.RECEIPTS`, the same :class:`~predictions.chain.Chain`
as the ledger), with one entry per append-only fact, written in the same transaction as the row:

- ``check``: a resolver spec registered (id, forecast, kind, params, mode, created_at);
- ``stop`` / ``resume``: a person stopped a check (the sweeps pass it by) or set it going again;
- ``evidence``: one receipt of a check, with the sha256 of all its columns;
- ``propose``: a proposal made by the runner; ``decide``: its decision (confirmed, disputed,
  acknowledged, superseded) with who, when and the note;
- ``queue``: a message queued (dedupe key, kind, recipients, Message-ID, sha256 of the subject
  and bodies); ``sent`` / ``failed``: its outcome;
- ``account``, ``token``, ``revoke``: the service's users and API tokens
  (:class:`predictions.account_chain.AccountsReplay`).

Scheduling state (``next_check_at``, ``failures``, validators, claims, outbox attempts and retry
times) changes all the time and is not chained. :func:`verify` walks the chain and compares the
``check_spec`` (a stopped check included), ``evidence``, ``proposal`` and ``outbox`` tables with
what it implies.

Writers append a batch at once with :func:`append_many` (one ``executemany``)::

    append_many(session, [("check", check_payload(...), forecast_id, created_at)])
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import Any

from sqlalchemy.orm import Session

from predictions.account_chain import AccountsReplay
from predictions.chain import (
    GENESIS,
    RECEIPTS,
    ChainBroken,
    Entry,
    Executor,
    canonical,
    first_difference,
    iso,
    loaded,
)
from predictions.clock import now as clock_now
from predictions.db import executor

__all__ = [
    "EVIDENCE_COLUMNS",
    "Entry",
    "ReceiptProblem",
    "append",
    "append_many",
    "check_payload",
    "decision_payload",
    "delivery_payload",
    "evidence_digest",
    "evidence_payload",
    "proposal_payload",
    "queue_payload",
    "switch_payload",
    "verify",
]


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
        if name == "checked_at":
            value = iso(loaded(value))
        elif name == "unchanged":
            value = bool(value)
        values.append(value)
    return _sha(*values)


def evidence_payload(evidence_id: int, row: dict[str, Any]) -> dict[str, Any]:
    """Payload of one evidence row: its id, check, forecast, verdict and the digest of it all."""
    return {
        "id": evidence_id,
        "check": row.get("check_id"),
        "forecast": row["forecast_id"],
        "verdict": row["verdict"],
        "digest": evidence_digest(row),
    }


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


def append_many(session: Session, entries: Iterable[Entry]) -> int:
    """Append entries in the session's transaction (:meth:`predictions.chain.Chain.append_many`,
    one executemany); returns how many."""
    return len(RECEIPTS.append_many(executor(session), entries))


def append(
    session: Session,
    kind: str,
    payload: dict[str, Any],
    *,
    forecast_id: int | None = None,
    at: datetime | None = None,
) -> None:
    """Append one entry (see :func:`append_many`)."""
    RECEIPTS.append(executor(session), kind, payload, forecast_id=forecast_id, at=at or clock_now())


# --- verification ---------------------------------------------------------------------------


@dataclass
class ReceiptProblem:
    """The first problem :func:`verify` found: the receipt's seq (None for a table row)."""

    seq: int | None
    problem: str


@dataclass
class _State:
    checks: dict[int, dict[str, Any]] = field(default_factory=dict)
    evidence: dict[int, dict[str, Any]] = field(default_factory=dict)
    proposals: dict[int, dict[str, Any]] = field(default_factory=dict)
    outbox: dict[int, dict[str, Any]] = field(default_factory=dict)


def _new(table: dict[int, Any], key: int, what: str, row: dict[str, Any]) -> None:
    if key in table:
        raise ValueError(f"{what} {key} is recorded twice")
    table[key] = row


def _r_check(state: _State, p: dict[str, Any]) -> None:
    row = {name: p[name] for name in ("forecast", "kind", "params", "mode", "created_at")}
    _new(state.checks, int(p["id"]), "check", {**row, "enabled": True})


def _switch(stop: bool) -> Callable[[_State, dict[str, Any]], None]:
    def replay(state: _State, p: dict[str, Any]) -> None:
        check = state.checks.get(int(p["check"]))
        verb = "stopped" if stop else "resumed"
        if check is None:
            raise ValueError(f"check {p['check']} is {verb} before it exists")
        if check["enabled"] != stop:
            raise ValueError(f"check {p['check']} is {verb} twice")
        check["enabled"] = not stop

    return replay


def _r_evidence(state: _State, p: dict[str, Any]) -> None:
    row = {"check": p["check"], "forecast": p["forecast"], "verdict": p["verdict"]}
    _new(state.evidence, int(p["id"]), "evidence", {**row, "all": p["digest"]})


def _r_propose(state: _State, p: dict[str, Any]) -> None:
    row = {name: p[name] for name in _PROPOSAL[:6]}
    row.update(status="pending", decided_at=None, decided_by=None, note=None)
    _new(state.proposals, int(p["id"]), "proposal", row)


def _r_decide(state: _State, p: dict[str, Any]) -> None:
    proposal = state.proposals.get(int(p["id"]))
    if proposal is None:
        raise ValueError(f"proposal {p['id']} is decided before it is made")
    if proposal["status"] != "pending":
        raise ValueError(f"proposal {p['id']} is decided twice")
    proposal.update(status=p["status"], decided_at=p["at"], decided_by=p["by"], note=p["note"])


def _r_queue(state: _State, p: dict[str, Any]) -> None:
    row = {name: p[name] for name in _MESSAGE[:6]}
    _new(state.outbox, int(p["id"]), "message", {**row, "sent_at": None, "failed_at": None})


def _outcome(name: str) -> Callable[[_State, dict[str, Any]], None]:
    def replay(state: _State, p: dict[str, Any]) -> None:
        message = state.outbox.get(int(p["id"]))
        if message is None:
            raise ValueError(f"message {p['id']} is {name} before it is queued")
        if message["sent_at"] or message["failed_at"]:
            raise ValueError(f"message {p['id']} has two outcomes")
        message[f"{name}_at"] = p["at"]
        message["last_error"] = p["error"]

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

_PROPOSAL = (
    "forecast", "check", "evidence", "kind", "verdict", "created_at", "status", "decided_at",
    "decided_by", "note",
)  # fmt: skip
_MESSAGE = ("dedupe_key", "kind", "recipients", "message_id", "created_at", "content")


def verify(session: Session) -> tuple[int, str, ReceiptProblem | None]:
    """Walk the receipts chain, then compare the tables; returns (entries, head, problem)."""
    x = executor(session)
    state, accounts = _State(), AccountsReplay()
    replayers = {kind: partial(f, state) for kind, f in _REPLAYERS.items()}
    try:
        top = RECEIPTS.replay(x, {**replayers, **accounts.replayers()})
    except ChainBroken as broken:
        return 0, GENESIS, ReceiptProblem(broken.seq, broken.problem)
    problem = (
        first_difference("receipts chain", _checks(x), state.checks, _label("check"))
        or _worded(
            first_difference("receipts chain", _evidence(x), state.evidence, _label("evidence")),
            ": all is ",
            ": its content differs from its receipt",
        )
        or first_difference("receipts chain", _proposals(x), state.proposals, _label("proposal"))
        or _worded(
            first_difference("receipts chain", _messages(x), state.outbox, _label("message")),
            ": content is ",
            ": its subject or body differs from its receipt",
        )
        or accounts.problem(x)
    )
    if problem is not None:
        return top.seq, top.hash, ReceiptProblem(None, problem)
    return top.seq, top.hash, None


def _label(what: str) -> Callable[[int, dict[str, Any]], str]:
    return lambda key, _row: f"{what} {key}"


def _worded(problem: str | None, digest: str, says: str) -> str | None:
    """A digest that differs, said as what it covers (its two hashes mean nothing to a reader)."""
    if problem is not None and digest in problem:
        return problem.split(digest)[0] + says
    return problem


def _checks(x: Executor) -> Iterator[tuple[int, dict[str, Any]]]:
    rows = x.execute(
        "SELECT id, forecast_id, kind, params, mode, created_at, enabled FROM check_spec ORDER BY id"
    )
    for cid, fid, kind, params, mode, at, enabled in rows:
        params = json.loads(params) if isinstance(params, str) else params
        yield (
            cid,
            {
                "forecast": fid,
                "kind": kind,
                "params": json.loads(canonical(dict(params or {}))),
                "mode": mode,
                "created_at": iso(loaded(at)),
                "enabled": bool(enabled),
            },
        )


def _evidence(x: Executor) -> Iterator[tuple[int, dict[str, Any]]]:
    sql = f"SELECT id, {', '.join(EVIDENCE_COLUMNS)} FROM evidence ORDER BY id"
    for eid, *values in x.execute(sql):
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


def _proposals(x: Executor) -> Iterator[tuple[int, dict[str, Any]]]:
    rows = x.execute(
        "SELECT id, forecast_id, check_id, evidence_id, kind, verdict, created_at, status, "
        "decided_at, decided_by, note FROM proposal ORDER BY id"
    )
    for pid, *values in rows:
        row = dict(zip(_PROPOSAL, values, strict=True))
        row["created_at"], row["decided_at"] = iso(loaded(values[5])), iso(loaded(values[7]))
        yield pid, row


def _messages(x: Executor) -> Iterator[tuple[int, dict[str, Any]]]:
    rows = x.execute(
        "SELECT id, dedupe_key, kind, recipients, message_id, created_at, subject, body_text, "
        "body_html, sent_at, failed_at, last_error FROM outbox ORDER BY id"
    )
    for oid, key, kind, to, mid, at, subject, text, html, sent, failed, error in rows:
        row = dict(zip(_MESSAGE[:5], (key, kind, to, mid, iso(loaded(at))), strict=True))
        row.update(content=_sha(subject, text, html), sent_at=iso(loaded(sent)))
        row["failed_at"] = iso(loaded(failed))
        if sent or failed:
            row["last_error"] = error
        yield oid, row
