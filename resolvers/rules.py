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

A numeric, date or choice question follows the same rules; its ``yes`` / ``no`` carry the outcome
(the evidence's ``value``, read by :func:`predictions.questions.parse_outcome_value` as ``tracker
resolve`` reads it), which a resolution stores and a confirmed proposal applies. A verdict without a
readable outcome does nothing; a resolved question disagrees with a source giving another outcome
(when final, or found: never from a deadline's absence of evidence). A market's ``values`` (its
CDF or option probabilities) are recorded as its estimate, as a binary market's probability is.

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
from predictions.chain import loaded_question
from predictions.checks import supersede
from predictions.errors import InputError
from predictions.models import Check, Estimate, Evidence, Forecast, Proposal
from predictions.questions import Question, decode, format_value, parse_outcome_value, rounded
from predictions.questions import summary as forecast_summary
from resolvers.base import Verdict

__all__ = ["Batch", "Decision", "apply", "decide", "load", "missing_outcome", "outcome_of", "said"]


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
    value: float | None = None,
    resolved_value: float | None = None,
) -> Decision:
    """Apply the "by date X" rules (see the module docstring) to one verdict; ``value`` is the
    outcome it carries and ``resolved_value`` the stored one (numeric, date and choice questions).

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
        if resolved_value is not None:  # a numeric, date or choice question: another outcome
            found = final or verdict == "yes"
            if verdict in ("yes", "no") and value not in (None, resolved_value) and found:
                return Decision("disagree", verdict)
        elif outcome and verdict == "no" and (final or past_grace):
            return Decision("disagree", "no")
        elif outcome is False and verdict == "yes":
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


def outcome_of(
    question: Question | None, verdict: str, text: str | None
) -> tuple[float | None, str]:
    """The outcome a ``yes`` / ``no`` on a numeric, date or choice question carries (its evidence
    ``value``, read as ``tracker resolve`` reads it), or None and why not; None for binary."""
    if question is None or verdict not in ("yes", "no"):
        return None, ""
    if text is None:
        return None, f"no outcome given for a {question.kind} question"
    try:
        return parse_outcome_value(question, text), ""
    except InputError as exc:
        return None, f"the outcome {text!r} does not fit the question: {exc}"


def missing_outcome(
    question: Question | None, value: float | None, decision: Decision, unread: str
) -> str:
    """Why a decision on a numeric, date or choice question cannot be carried out: it resolves,
    proposes or disagrees only with an outcome (``unread`` from :func:`outcome_of`); ``""`` when
    it can."""
    if question is None or value is not None or not decision.action or decision.verdict == "annul":
        return ""
    return unread or f"no outcome given for a {question.kind} question"


def said(question: Question | None, verdict: str, value: float | None) -> str:
    """A verdict as messages show it: ``YES``, ``NO``, ``ANNUL``, or the outcome it carries."""
    if question is None or value is None or verdict not in ("yes", "no"):
        return verdict.upper()
    return format_value(question, value)


def _propose(
    batch: Batch,
    check: Check,
    forecast: Forecast,
    evidence: dict[str, Any],
    kind: str,
    verdict: str,
    now: datetime,
    shown: str,
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
        question = loaded_question(forecast.kind, forecast.question)
        was = said(question, "yes", forecast.resolution_value) if question else None
        if was is None or forecast.status != "resolved":
            was = (
                "YES" if forecast.outcome else "NO" if forecast.status == "resolved" else "annulled"
            )
        return f"disagreement: resolved {was}, source says {shown}"
    return f"proposed {shown}"


def _record_estimate(
    session: Session,
    forecast: Forecast,
    kind: str,
    given: float | tuple[float, ...],
    url: str | None,
    now: datetime,
) -> bool:
    """Record a market's probability (or, on a numeric, date or choice question, its values) as
    the estimate of the forecaster ``kind``, unless the forecast is closed or it did not change."""
    if forecast.status != "open" or (isinstance(given, float) and not 0.0 < given < 1.0):
        return False

    def last(column: Any) -> Any:
        latest = (Estimate.made_at.desc(), Estimate.id.desc())
        mine = (Estimate.forecast_id == forecast.id, Estimate.forecaster == kind)
        return session.scalar(select(column).where(*mine).order_by(*latest).limit(1))

    if isinstance(given, float):
        p = last(Estimate.probability)
        if p is not None and abs(p - given) < 1e-9:
            return False
    else:
        blob = last(Estimate.distribution)
        if blob is not None and decode(blob) == rounded(given):
            return False
    what = "probability" if isinstance(given, float) else "forecast"
    note = f"market {what} from {url}" if url else None
    store.add_estimate(
        session, forecast.id, kind, given, note=note or f"market {what}", made_at=now
    )
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
    question = loaded_question(forecast.kind, forecast.question)
    given: float | tuple[float, ...] | None = None
    if verdict is not None:
        given = verdict.probability if question is None else verdict.values
    if given is not None:
        try:
            with session.begin_nested():
                if _record_estimate(session, forecast, check.kind, given, url, now):
                    shown = (
                        forecast_summary(question, given)
                        if question is not None and isinstance(given, tuple)
                        else f"{given:.3f}"
                    )
                    actions.append(f"estimate {shown} by {check.kind}")
        except InputError as exc:  # a market's forecast the question cannot hold
            actions.append(f"(estimate not recorded: {exc})")
    value, unread = outcome_of(question, evidence["verdict"], evidence["value"])
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
        value=value,
        resolved_value=forecast.resolution_value,
    )
    missing = missing_outcome(question, value, decision, unread)
    if missing:
        actions.append(f"({missing})")
        return "; ".join(actions)
    shown = said(question, decision.verdict, value)
    by = f"resolver:{check.kind}"
    summary = (evidence["value"] or evidence["excerpt"] or "")[:200]
    note = _CONTROL.sub(" ", f"{check.kind} check {check.id}: {summary}").strip()
    if decision.action in ("resolve", "annul"):
        with session.begin_nested():
            if decision.action == "resolve":
                outcome: bool | float = decision.verdict == "yes"
                if value is not None:  # a numeric, date or choice question's outcome
                    outcome = value
                store.resolve(session, forecast.id, outcome, by=by, note=note, evidence=url, at=now)
                actions.append(f"resolved {shown}")
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
        actions.append(
            _propose(batch, check, forecast, evidence, kind, decision.verdict, now, shown)
        )
    elif decision.why:
        actions.append(f"({decision.why})")
    return "; ".join(actions)
