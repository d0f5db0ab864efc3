"""The tamper-evident ledger: an append-only hash chain over every event that touches a score.

Each entry stores ``hash = sha256(prev_hash | seq | at | kind | payload)`` where ``payload`` is the
event's canonical JSON (sorted keys, no spaces, UTF-8). Registration, estimate, amendment (of
title, criteria, due date or tags), resolution, annulment, withdrawal and reopening each append one
entry in the same transaction as the change itself; a correction is a new entry, never an edit. So
is a take-over (``tracker config set forecaster NAME --take-over``): the login name's forecasts and
estimates become NAME's by one ``take_over`` entry listing them.

:func:`verify` does three things:

1. walks the chain in ``seq`` order (:meth:`predictions.chain.Chain.walk`), recomputing every
   hash (an edited, deleted, inserted or reordered ledger row breaks it at that row);
2. replays the events into the state they imply and compares it with the ``forecast``, ``tag``,
   ``estimate`` and ``amendment`` tables, so a row changed behind the tracker's back is named too;
3. does the same for the receipts chain (:mod:`predictions.receipts`), which covers the
   ``check_spec``, ``evidence``, ``proposal`` and ``outbox`` tables.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from sqlalchemy.orm import Session

from predictions import receipts
from predictions.chain import (
    CLOSING_KINDS,
    GENESIS,
    LEDGER,
    VALUES_KEY,
    ChainBroken,
    Executor,
    canonical,
    first_difference,
    iso,
    loaded,
)
from predictions.db import executor
from predictions.questions import KINDS, decode

__all__ = ["VerifyReport", "verify"]


# --- verification -----------------------------------------------------------------------------


@dataclass
class VerifyReport:
    """What :func:`verify` found: entry count, head hash, and the first problem (if any)."""

    entries: int = 0
    head: str = GENESIS
    ok: bool = True
    seq: int | None = None
    problem: str | None = None
    checked: dict[str, int] = field(default_factory=dict)
    receipts: int = 0
    receipts_head: str = GENESIS
    receipt_seq: int | None = None

    def fail(self, seq: int | None, problem: str) -> VerifyReport:
        self.ok = False
        self.seq = seq
        self.problem = problem
        return self


@dataclass
class _State:
    """What the ledger's events imply, in the tables' column names, by id."""

    forecasts: dict[int, dict[str, Any]] = field(default_factory=dict)
    estimates: dict[int, dict[str, Any]] = field(default_factory=dict)
    amendments: dict[int, dict[str, Any]] = field(default_factory=dict)


def _replay_register(state: _State, p: dict[str, Any]) -> None:
    fid = int(p["id"])
    if fid in state.forecasts:
        raise ValueError(f"forecast {fid} registered twice")
    kind = p.get("kind", "binary")
    if kind not in KINDS or (kind == "binary") != ("question" not in p):
        raise ValueError(f"forecast {fid} registers a {kind!r} question")
    state.forecasts[fid] = {
        "kind": kind,
        "question": canonical(p["question"]) if "question" in p else None,
        "title": p["title"],
        "criteria": p["criteria"],
        "due": p["due"],
        "created_at": p["created_at"],
        "author": p["author"],
        "source": p["source"],
        "ref": p.get("ref"),
        "status": "open",
        "outcome": None,
        "resolved_at": None,
        "resolved_by": None,
        "resolution_note": None,
        "resolution_evidence": None,
        "resolution_value": None,
        "tags": sorted(p["tags"]),
    }


def _need(state: _State, fid: int) -> dict[str, Any]:
    if fid not in state.forecasts:
        raise ValueError(f"forecast {fid} is not registered before this entry")
    return state.forecasts[fid]


def _replay_estimate(state: _State, p: dict[str, Any]) -> None:
    kind = _need(state, int(p["forecast"]))["kind"]
    if kind == "binary":
        forecast, values = p["p"], None
    else:  # a CDF or the options' probabilities, and no probability
        forecast, values = None, tuple(p[VALUES_KEY[kind]])
    row = (p["forecast"], p["by"], forecast, p["at"], p["note"], values)
    state.estimates[int(p["id"])] = dict(zip(_ESTIMATE, row, strict=True))


def _replay_amend(state: _State, p: dict[str, Any]) -> None:
    f = _need(state, int(p["forecast"]))
    f[p["field"]] = [t for t in p["new"].split(",") if t] if p["field"] == "tags" else p["new"]
    values = (p["forecast"], p["field"], p["old"], p["new"], p["at"], p["by"], p["note"])
    state.amendments[int(p["id"])] = dict(zip(_AMENDMENT, values, strict=True))


def _replay_close(state: _State, p: dict[str, Any], status: str) -> None:
    f = _need(state, int(p["forecast"]))
    if f["status"] != "open" and (status != "withdrawn" or f["status"] == status):
        raise ValueError(f"forecast {p['forecast']} is already {f['status']}")
    f.update(
        status=status,
        outcome=p["outcome"] if status == "resolved" else None,
        resolution_value=p.get("value") if status == "resolved" else None,
        resolved_at=p["at"],
        resolved_by=p["by"],
        resolution_note=p["note"],
        resolution_evidence=p.get("evidence"),
    )


def _replay_reopen(state: _State, p: dict[str, Any]) -> None:
    f = _need(state, int(p["forecast"]))
    if f["status"] == "open" or f["status"] != p["was"]:
        raise ValueError(f"forecast {p['forecast']} is {f['status']}, not {p['was']}")
    f.update(dict.fromkeys(_CLOSING, None), status="open")


def _replay_take_over(state: _State, p: dict[str, Any]) -> None:
    held = [(_need(state, int(fid)), "author") for fid in p["forecasts"]]
    for eid in p["estimates"]:
        if int(eid) not in state.estimates:
            raise ValueError(f"estimate {eid} is not recorded before this entry")
        held.append((state.estimates[int(eid)], "forecaster"))
    for row, name in held:
        if row[name] != p["from"]:
            raise ValueError(f"it takes from {p['from']!r} a record of {row[name]!r}")
        row[name] = p["to"]


_REPLAYERS: dict[str, Callable[[_State, dict[str, Any]], None]] = {
    "register": _replay_register,
    "estimate": _replay_estimate,
    "amend": _replay_amend,
    **{kind: partial(_replay_close, status=status) for status, kind in CLOSING_KINDS.items()},
    "reopen": _replay_reopen,
    "take_over": _replay_take_over,
}

_FORECAST = (
    "title", "criteria", "due", "created_at", "author", "source", "ref", "status", "outcome",
    "resolved_at", "resolved_by", "resolution_note", "resolution_evidence", "kind", "question",
    "resolution_value",
)  # fmt: skip
_CLOSING = ("outcome", "resolved_at", "resolved_by", "resolution_note", "resolution_evidence",
            "resolution_value")  # fmt: skip
_ESTIMATE = ("forecast", "forecaster", "probability", "made_at", "note", "values")
_AMENDMENT = ("forecast", "field", "old_value", "new_value", "made_at", "made_by", "note")
_TIMES = {"due", "created_at", "resolved_at", "made_at"}


def _rows(x: Executor, sql: str, names: tuple[str, ...]) -> Iterator[tuple[int, dict[str, Any]]]:
    """``(id, {name: value})`` for each row of ``sql`` (id first), times as :func:`iso` text."""
    for key, *values in x.execute(sql):
        row = dict(zip(names, values, strict=True))
        for name in _TIMES & row.keys():
            row[name] = iso(loaded(row[name]))
        yield key, row


def _forecast_rows(x: Executor) -> Iterator[tuple[int, dict[str, Any]]]:
    tags: dict[int, list[str]] = {}
    for fid, name in x.execute("SELECT forecast_id, name FROM tag ORDER BY forecast_id, name"):
        tags.setdefault(fid, []).append(name)
    sql = f"SELECT id, {', '.join(_FORECAST)} FROM forecast ORDER BY id"
    for fid, row in _rows(x, sql, _FORECAST):
        row["outcome"] = None if row["outcome"] is None else bool(row["outcome"])
        row["tags"] = tags.get(fid, [])
        yield fid, row


def _estimate_rows(x: Executor, sql: str) -> Iterator[tuple[int, dict[str, Any]]]:
    for eid, row in _rows(x, sql, _ESTIMATE):
        if row["values"] is not None:
            row["values"] = decode(row["values"])
        yield eid, row


def verify(session: Session) -> VerifyReport:
    """Recompute the chain and compare the tables with what it implies; see the module docs."""
    report = VerifyReport()
    state = _State()
    x = executor(session)
    try:
        top = LEDGER.replay(x, {kind: partial(f, state) for kind, f in _REPLAYERS.items()})
    except ChainBroken as broken:
        return report.fail(broken.seq, broken.problem)
    report.entries, report.head = top.seq, top.hash
    estimates = (
        "SELECT id, forecast_id, forecaster, probability, made_at, note, distribution FROM estimate"
    )
    amendments = (
        "SELECT id, forecast_id, field, old_value, new_value, made_at, made_by, note FROM amendment"
    )
    problem = (
        first_difference("ledger", _forecast_rows(x), state.forecasts, lambda k, _: f"forecast {k}")
        or first_difference(
            "ledger",
            _estimate_rows(x, estimates + " ORDER BY id"),
            state.estimates,
            lambda k, row: f"estimate {k} (forecast {row['forecast']})",
        )
        or first_difference(
            "ledger",
            _rows(x, amendments + " ORDER BY id", _AMENDMENT),
            state.amendments,
            lambda k, _: f"amendment {k}",
        )
    )
    if problem is not None:
        return report.fail(None, problem)
    count, receipts_head, trouble = receipts.verify(session)
    if trouble is not None:
        report.receipt_seq = trouble.seq
        return report.fail(None, trouble.problem)
    report.receipts, report.receipts_head = count, receipts_head
    report.checked = {
        "forecasts": len(state.forecasts),
        "estimates": len(state.estimates),
        "amendments": len(state.amendments),
    }
    return report
