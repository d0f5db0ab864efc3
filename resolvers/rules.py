"""The "by date X" rules: what a check's verdict leads to, for the runner (:mod:`resolvers.sweep`).

For an open forecast:

- ``yes``: a proposal at once; in ``mode = auto`` a *final* YES resolves directly;
- ``no``: counts only from due + grace (``grace``, default 7 days) unless final; then a proposal,
  or a direct resolution in ``mode = auto`` when final;
- ``none``: nothing, except with ``otherwise = "no"``: a NO proposal from due + grace;
- ``annul``: a proposal to annul; in ``mode = auto`` a final one annuls directly.

Direct resolutions go through :func:`predictions.store.resolve` / ``annul`` with ``resolved_by =
"resolver:<kind>"`` and the evidence URL; the forecast's pending proposals are then superseded
(:func:`predictions.checks.supersede`, as when a person confirms one). A pending proposal with the same verdict is not repeated,
nor one a person disputed on the same body (same sha256). A market's ``probability`` is recorded as
an estimate by a forecaster named after the kind, when it changed.

A resolved or annulled forecast whose source now disagrees gets a ``disagreement`` proposal,
shown in ``tracker review``; nothing is flipped.

:func:`decide` is the rules as a pure function; :func:`apply` carries a decision out in the
sweep's recording transaction, whose reads and pending writes a :class:`Batch` holds.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from predictions import receipts, store
from predictions.checks import supersede
from predictions.models import Check, Estimate, Evidence, Forecast, Proposal
from resolvers.base import Verdict

__all__ = ["Batch", "Decision", "apply", "decide", "load"]


@dataclass(frozen=True)
class Decision:
    """What the rules make of a verdict: ``action`` is ``resolve``, ``annul``, ``propose``,
    ``disagree`` or ``""`` (nothing); ``verdict`` is the one acted on (``none`` may become ``no``
    through ``otherwise``); ``why`` says why nothing happened, when it matters."""

    action: str
    verdict: str
    why: str = ""


def decide(
    *,
    verdict: str,
    final: bool,
    mode: str,
    otherwise: str | None,
    status: str,
    outcome: bool | None,
    due: datetime,
    now: datetime,
    grace: timedelta,
) -> Decision:
    """Apply the "by date X" rules (see the module docstring) to one verdict.

    >>> from datetime import datetime as d, timedelta as t
    >>> decide(verdict="no", final=False, mode="auto", otherwise=None, status="open",
    ...        outcome=None, due=d(2030, 1, 1), now=d(2030, 1, 3), grace=t(days=7)).why
    'NO counts from due + grace (2030-01-08)'
    """
    past_grace = now >= due + grace
    if status == "open":
        if verdict == "none" and otherwise == "no" and past_grace:
            return Decision("propose", "no", "nothing found by due + grace")
        if verdict == "yes":
            return Decision("resolve" if mode == "auto" and final else "propose", "yes")
        if verdict == "no":
            if not (final or past_grace):
                return Decision("", "no", f"NO counts from due + grace ({(due + grace).date()})")
            return Decision("resolve" if mode == "auto" and final else "propose", "no")
        if verdict == "annul":
            return Decision("annul" if mode == "auto" and final else "propose", "annul")
        return Decision("", verdict)
    # Resolved or annulled: flag a source that now disagrees; absence of evidence never does.
    if status == "resolved":
        if outcome and verdict == "no" and (final or past_grace):
            return Decision("disagree", "no")
        if outcome is False and verdict == "yes":
            return Decision("disagree", "yes")
        if verdict == "annul" and final:
            return Decision("disagree", "annul")
    elif status == "annulled" and (verdict == "yes" or (verdict == "no" and final)):
        return Decision("disagree", verdict)
    return Decision("", verdict)


@dataclass
class Batch:
    """One recording transaction. What it reads at once, so no check costs queries of its own:
    pending proposals by (forecast, kind, verdict), disputed ones by (check, verdict, body sha256),
    the previous verdict of each check a 304 answered; and what it writes at the end: new
    proposals and the receipts of superseded ones."""

    pending: dict[tuple[int, str, str], int | None]
    disputed: dict[tuple[int | None, str, str | None], int]
    previous: dict[int | None, tuple[str, str | None, str | None, str | None]]
    proposals: list[dict[str, Any]] = field(default_factory=list)
    superseded: list[receipts.Entry] = field(default_factory=list)


def load(
    session: Session, check_ids: list[int], forecast_ids: set[int], unchanged: list[int]
) -> Batch:
    """What a batch of checks (``check_ids``, on ``forecast_ids``) needs of the stored proposals,
    and of the evidence of those a 304 answered (``unchanged``)."""
    p, e = Proposal, Evidence
    pending = session.execute(
        select(p.forecast_id, p.kind, p.verdict, p.id).where(
            p.forecast_id.in_(forecast_ids), p.status == "pending"
        )
    )
    disputed = session.execute(
        select(p.check_id, p.verdict, e.sha256, p.id)
        .join(e, e.id == p.evidence_id)
        .where(p.check_id.in_(check_ids), p.status == "disputed", e.sha256.is_not(None))
    )
    latest = (
        select(func.max(e.id))
        .where(e.check_id.in_(unchanged), e.verdict != "error")
        .group_by(e.check_id)
    )
    previous = select(e.check_id, e.verdict, e.value, e.excerpt, e.sha256).where(e.id.in_(latest))
    return Batch(
        {(f, k, v): i for f, k, v, i in pending},
        {(c, v, sha): i for c, v, sha, i in disputed},
        {c: (v, val, x, sha) for c, v, val, x, sha in session.execute(previous)}
        if unchanged
        else {},
    )


def _propose(
    batch: Batch,
    check: Check,
    forecast: Forecast,
    evidence: dict[str, Any],
    kind: str,
    verdict: str,
    now: datetime,
) -> str:
    """Add a pending proposal unless one like it is pending, or a person disputed the same
    verdict on this same body."""
    key = (forecast.id, kind, verdict)
    if key in batch.pending:
        pid = batch.pending[key]
        return f"(already proposed: proposal {pid})" if pid else "(already proposed)"
    disputed = batch.disputed.get((check.id, verdict, evidence["sha256"]))
    if disputed is not None:
        return f"(disputed before: proposal {disputed})"
    batch.proposals.append(
        {
            "forecast_id": forecast.id,
            "check_id": check.id,
            "evidence_id": evidence["id"],
            "kind": kind,
            "verdict": verdict,
            "created_at": now,
            "status": "pending",
        }
    )
    batch.pending[key] = None
    if kind == "disagreement":
        was = "YES" if forecast.outcome else "NO" if forecast.status == "resolved" else "annulled"
        return f"disagreement: resolved {was}, source says {verdict.upper()}"
    return f"proposed {verdict.upper()}"


def _record_estimate(
    session: Session, forecast: Forecast, kind: str, p: float, url: str | None, now: datetime
) -> bool:
    if forecast.status != "open" or not 0.0 < p < 1.0:
        return False
    last = session.scalar(
        select(Estimate.probability)
        .where(Estimate.forecast_id == forecast.id, Estimate.forecaster == kind)
        .order_by(Estimate.made_at.desc(), Estimate.id.desc())
        .limit(1)
    )
    if last is not None and abs(last - p) < 1e-9:
        return False
    note = f"market probability from {url}" if url else "market probability"
    store.add_estimate(session, forecast.id, kind, p, note=note, made_at=now)
    return True


_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def apply(
    session: Session,
    batch: Batch,
    check: Check,
    forecast: Forecast,
    evidence: dict[str, Any],
    verdict: Verdict | None,
    final: bool,
    grace: timedelta,
    now: datetime,
) -> str:
    """Apply the rules to a recorded verdict; returns the action taken, for the report.

    Proposals are added at the end of the batch; resolutions, annulments and estimates go
    through the store at once, each in a savepoint, so one that fails is that check's problem
    only.
    """
    actions: list[str] = []
    url = (verdict.url if verdict else None) or evidence["url"]
    p = verdict.probability if verdict is not None else None
    if p is not None:
        with session.begin_nested():
            if _record_estimate(session, forecast, check.kind, p, url, now):
                actions.append(f"estimate {p:.3f} by {check.kind}")
    decision = decide(
        verdict=evidence["verdict"],
        final=final,
        mode=check.mode,
        otherwise=(check.params or {}).get("otherwise"),
        status=forecast.status,
        outcome=forecast.outcome,
        due=forecast.due,
        now=now,
        grace=grace,
    )
    by = f"resolver:{check.kind}"
    summary = (evidence["value"] or evidence["excerpt"] or "")[:200]
    note = _CONTROL.sub(" ", f"{check.kind} check {check.id}: {summary}").strip()
    if decision.action in ("resolve", "annul"):
        with session.begin_nested():
            if decision.action == "resolve":
                yes = decision.verdict == "yes"
                store.resolve(session, forecast.id, yes, by=by, note=note, evidence=url, at=now)
                actions.append(f"resolved {decision.verdict.upper()}")
            else:
                store.annul(session, forecast.id, by=by, note=note, at=now)
                actions.append("annulled")
            batch.superseded += supersede(session, forecast.id, by=by, at=now)
            session.expire(forecast)  # the store wrote its new status
        # The proposals of this batch are moot too (they are not written yet).
        batch.proposals = [
            q
            for q in batch.proposals
            if not (q["forecast_id"] == forecast.id and q["kind"] == "resolve")
        ]
        for key in [k for k in batch.pending if k[0] == forecast.id and k[1] == "resolve"]:
            del batch.pending[key]
    elif decision.action in ("propose", "disagree"):
        kind = "resolve" if decision.action == "propose" else "disagreement"
        actions.append(_propose(batch, check, forecast, evidence, kind, decision.verdict, now))
    elif decision.why:
        actions.append(f"({decision.why})")
    return "; ".join(actions)
