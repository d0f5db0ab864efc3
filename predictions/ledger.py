"""The tamper-evident ledger: an append-only hash chain over every event that touches a score.

Each entry stores ``hash = sha256(prev_hash | seq | at | kind | payload)`` where ``payload`` is the
event's canonical JSON (sorted keys, no spaces, UTF-8). Registration, estimate, amendment,
resolution and annulment each append one entry in the same transaction as the change itself.

:func:`verify` does three things:

1. walks the chain in ``seq`` order (:meth:`predictions.chain.Chain.walk`), recomputing every
   hash (an edited, deleted, inserted or reordered ledger row breaks it at that row);
2. replays the events into the state they imply and compares it with the ``forecast``, ``tag``,
   ``estimate`` and ``amendment`` tables, so a row changed behind the tracker's back is named too;
3. does the same for the receipts chain (:mod:`predictions.receipts`), which covers the
   ``check_spec``, ``evidence``, ``proposal`` and ``outbox`` tables.

Example::

    >>> canonical({"b": 1, "a": "é"})
    '{"a":"é","b":1}'
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from predictions import receipts
from predictions.chain import (
    GENESIS,
    LEDGER,
    ChainBroken,
    ChainBuilder,
    ChainHead,
    canonical,
    chain_hash,
    estimate_payload,
    iso,
    register_payload,
)
from predictions.clock import now as clock_now
from predictions.db import executor
from predictions.models import Amendment, Estimate, Forecast, Tag

__all__ = [
    "GENESIS",
    "ChainBuilder",
    "estimate_payload",
    "register_payload",
    "ChainHead",
    "VerifyReport",
    "append",
    "canonical",
    "chain_hash",
    "head",
    "iso",
    "verify",
]


def head(session: Session, *, lock: bool = False) -> ChainHead:
    """The ledger's head (:meth:`predictions.chain.Chain.head`)."""
    return LEDGER.head(executor(session), lock=lock)


def append(
    session: Session,
    kind: str,
    payload: dict[str, Any],
    *,
    forecast_id: int | None = None,
    at: datetime | None = None,
) -> dict[str, Any]:
    """Append one entry in the session's transaction (:meth:`predictions.chain.Chain.append`)."""
    return LEDGER.append(
        executor(session), kind, payload, forecast_id=forecast_id, at=at or clock_now()
    )


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
    forecasts: dict[int, dict[str, Any]] = field(default_factory=dict)
    tags: dict[int, list[str]] = field(default_factory=dict)
    estimates: dict[int, tuple[Any, ...]] = field(default_factory=dict)
    amendments: dict[int, tuple[Any, ...]] = field(default_factory=dict)
    extra: dict[str, dict[int, tuple[Any, ...]]] = field(default_factory=dict)


Replayer = Callable[[_State, dict[str, Any]], None]
#: Extra event kinds (e.g. from the resolvers) register a replay function and a table comparison.
REPLAYERS: dict[str, Replayer] = {}
TABLE_CHECKS: list[Callable[[Session, _State], tuple[str, str] | None]] = []


def _replay_register(state: _State, p: dict[str, Any]) -> None:
    fid = int(p["id"])
    if fid in state.forecasts:
        raise ValueError(f"forecast {fid} registered twice")
    state.forecasts[fid] = {
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
    }
    state.tags[fid] = sorted(p["tags"])


def _need(state: _State, fid: int) -> dict[str, Any]:
    if fid not in state.forecasts:
        raise ValueError(f"forecast {fid} is not registered before this entry")
    return state.forecasts[fid]


def _replay_estimate(state: _State, p: dict[str, Any]) -> None:
    _need(state, int(p["forecast"]))
    state.estimates[int(p["id"])] = (p["forecast"], p["by"], p["p"], p["at"], p["note"])


def _replay_amend(state: _State, p: dict[str, Any]) -> None:
    f = _need(state, int(p["forecast"]))
    f[p["field"]] = p["new"]
    state.amendments[int(p["id"])] = (
        p["forecast"],
        p["field"],
        p["old"],
        p["new"],
        p["at"],
        p["by"],
        p["note"],
    )


def _replay_resolve(state: _State, p: dict[str, Any]) -> None:
    f = _need(state, int(p["forecast"]))
    f.update(
        status="resolved",
        outcome=p["outcome"],
        resolved_at=p["at"],
        resolved_by=p["by"],
        resolution_note=p["note"],
        resolution_evidence=p.get("evidence"),
    )


def _replay_annul(state: _State, p: dict[str, Any]) -> None:
    f = _need(state, int(p["forecast"]))
    f.update(
        status="annulled",
        outcome=None,
        resolved_at=p["at"],
        resolved_by=p["by"],
        resolution_note=p["note"],
        resolution_evidence=None,
    )


REPLAYERS.update(
    register=_replay_register,
    estimate=_replay_estimate,
    amend=_replay_amend,
    resolve=_replay_resolve,
    annul=_replay_annul,
)


def verify(session: Session) -> VerifyReport:
    """Recompute the chain and compare the tables with what it implies; see the module docs."""
    report = VerifyReport()
    state = _State()
    entries, last = 0, GENESIS
    try:
        for seq, kind, body, digest in LEDGER.walk(executor(session)):
            try:
                replayer = REPLAYERS.get(kind)
                if replayer is None:
                    raise ValueError(f"unknown entry kind {kind!r}")
                replayer(state, json.loads(body))
            except (ValueError, KeyError, TypeError) as exc:
                return report.fail(seq, f"ledger entry {seq} ({kind}): {exc}")
            entries, last = seq, digest
    except ChainBroken as broken:
        return report.fail(broken.seq, broken.problem)
    report.entries, report.head = entries, last
    for check in (
        _check_forecasts,
        _check_tags,
        _check_estimates,
        _check_amendments,
        *TABLE_CHECKS,
    ):
        found = check(session, state)
        if found is not None:
            _table, problem = found
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


_FORECAST_FIELDS = (
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
)


def _forecast_row(f: Forecast) -> dict[str, Any]:
    return {
        "title": f.title,
        "criteria": f.criteria,
        "due": iso(f.due),
        "created_at": iso(f.created_at),
        "author": f.author,
        "source": f.source,
        "ref": f.ref,
        "status": f.status,
        "outcome": f.outcome,
        "resolved_at": iso(f.resolved_at),
        "resolved_by": f.resolved_by,
        "resolution_note": f.resolution_note,
        "resolution_evidence": f.resolution_evidence,
    }


def _check_forecasts(session: Session, state: _State) -> tuple[str, str] | None:
    seen: set[int] = set()
    for f in session.execute(
        select(Forecast).order_by(Forecast.id).execution_options(yield_per=2000)
    ).scalars():
        expected = state.forecasts.get(f.id)
        if expected is None:
            return (
                "forecast",
                f"forecast {f.id} is in the table but was never registered in the ledger",
            )
        actual = _forecast_row(f)
        for name in _FORECAST_FIELDS:
            if actual[name] != expected[name]:
                return "forecast", (
                    f"forecast {f.id}: {name} is {_short(actual[name])} in the table, "
                    f"the ledger says {_short(expected[name])}"
                )
        seen.add(f.id)
    missing = sorted(set(state.forecasts) - seen)
    if missing:
        return "forecast", f"forecast {missing[0]} is in the ledger but missing from the table"
    return None


def _check_tags(session: Session, state: _State) -> tuple[str, str] | None:
    actual: dict[int, list[str]] = {}
    for fid, name in session.execute(
        select(Tag.forecast_id, Tag.name).order_by(Tag.forecast_id, Tag.name)
    ):
        actual.setdefault(fid, []).append(name)
    for fid in sorted(set(actual) | set(state.tags)):
        if actual.get(fid, []) != state.tags.get(fid, []):
            return "tag", (
                f"forecast {fid}: tags are {actual.get(fid, [])} in the table, "
                f"the ledger says {state.tags.get(fid, [])}"
            )
    return None


def _check_estimates(session: Session, state: _State) -> tuple[str, str] | None:
    seen = 0
    rows = session.execute(
        select(
            Estimate.id,
            Estimate.forecast_id,
            Estimate.forecaster,
            Estimate.probability,
            Estimate.made_at,
            Estimate.note,
        )
        .order_by(Estimate.id)
        .execution_options(yield_per=5000)
    )
    for eid, fid, by, p, at, note in rows:
        expected = state.estimates.get(eid)
        actual = (fid, by, p, iso(at), note)
        if expected is None:
            return (
                "estimate",
                f"estimate {eid} (forecast {fid}) is in the table but not in the ledger",
            )
        if actual != expected:
            names = ("forecast", "forecaster", "probability", "made_at", "note")
            diff = next(i for i in range(5) if actual[i] != expected[i])
            return "estimate", (
                f"estimate {eid} (forecast {fid}): {names[diff]} is {_short(actual[diff])} in the "
                f"table, the ledger says {_short(expected[diff])}"
            )
        seen += 1
    if seen != len(state.estimates):
        present = {r[0] for r in session.execute(select(Estimate.id))}
        gone = min(set(state.estimates) - present)
        return (
            "estimate",
            f"estimate {gone} (forecast {state.estimates[gone][0]}) is in the ledger but missing from the table",
        )
    return None


def _check_amendments(session: Session, state: _State) -> tuple[str, str] | None:
    actual = {
        a.id: (a.forecast_id, a.field, a.old_value, a.new_value, iso(a.made_at), a.made_by, a.note)
        for a in session.scalars(select(Amendment))
    }
    for aid in sorted(set(actual) | set(state.amendments)):
        if actual.get(aid) != state.amendments.get(aid):
            return "amendment", f"amendment {aid} in the table does not match the ledger"
    return None


def _short(value: object) -> str:
    text_ = repr(value)
    return text_ if len(text_) <= 60 else text_[:57] + "..."
