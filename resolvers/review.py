"""Proposals waiting for a person: list them, confirm one, dispute one.

A proposal is made by the runner (:mod:`resolvers.sweep`): ``kind = "resolve"`` (resolve YES or
NO, or annul) or ``kind = "disagreement"`` (a resolved forecast whose source now says otherwise).

- :func:`confirm` applies a resolve proposal through :func:`predictions.store.resolve` / ``annul``
  (resolved by the person confirming, with the evidence URL; a numeric, date or choice question to
  the outcome its evidence carries, :func:`resolvers.rules.outcome_of`), and marks the forecast's other
  pending resolve proposals ``superseded``. Confirming a disagreement *acknowledges* it: the
  resolution stays as it is (the tracker never flips one; amend or annotate by hand).
- :func:`dispute` marks a proposal ``disputed`` with a note; the runner does not propose the same
  verdict again from the same body.

Like the store, each function takes a Session; the caller owns the transaction.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from predictions import chain, receipts, store
from predictions.chain import loaded_question
from predictions.checks import evidence_record, proposal_record, supersede
from predictions.clock import now as clock_now
from predictions.errors import InputError, StateError
from predictions.models import Evidence, Forecast, Proposal
from predictions.questions import format_value
from predictions.shown import format_outcome
from predictions.validation import require_text
from resolvers.rules import outcome_of, said

__all__ = ["confirm", "decision_record", "dispute", "review"]


def review(session: Session, forecast_id: int | None = None) -> list[dict[str, Any]]:
    """Pending proposals, oldest first, each with its forecast and evidence (JSON-ready); not those
    of a forecast withdrawn as entered by mistake (with ``forecast_id``, that forecast's only). ``said`` is what the proposal says as people
    read it: ``YES``, ``NO``, ``ANNUL``, or the outcome of a numeric, date or choice question; a
    resolved numeric, date or choice forecast's ``resolution`` is its outcome, read the same way."""
    query = (
        select(Proposal, Forecast, Evidence)
        .join(Forecast, Forecast.id == Proposal.forecast_id)
        .outerjoin(Evidence, Evidence.id == Proposal.evidence_id)
        .where(Proposal.status == "pending", Forecast.status != "withdrawn")
    )
    if forecast_id is not None:
        query = query.where(Proposal.forecast_id == forecast_id)
    rows = session.execute(query.order_by(Proposal.id)).all()
    return [
        {
            "proposal": p.id,
            "kind": p.kind,
            "verdict": p.verdict,
            "said": _said(f, p.verdict, e),
            "created_at": chain.iso(p.created_at),
            "forecast": {
                "id": f.id,
                "title": f.title,
                "due": chain.iso(f.due),
                "status": f.status,
                "outcome": f.outcome,
                "kind": f.kind,
                "resolution": _resolution(f),
            },
            "evidence": evidence_record(e) if e is not None else None,
        }
        for p, f, e in rows
    ]


def _said(forecast: Forecast, verdict: str, evidence: Evidence | None) -> str:
    question = loaded_question(forecast.kind, forecast.question)
    value, _ = outcome_of(question, verdict, evidence.value if evidence else None)
    return said(question, verdict, value)


def _resolution(forecast: Forecast) -> str | None:
    question = loaded_question(forecast.kind, forecast.question)
    value = forecast.resolution_value
    return None if question is None or value is None else format_value(question, value)


def _pick(session: Session, forecast_id: int | str, proposal_id: int | None) -> Proposal:
    forecast = store.get_forecast(session, forecast_id)
    pending = session.scalars(
        select(Proposal)
        .where(Proposal.forecast_id == forecast.id, Proposal.status == "pending")
        .order_by(Proposal.id)
    ).all()
    if proposal_id is not None:
        for p in pending:
            if p.id == proposal_id:
                return p
        raise InputError(
            "proposal", proposal_id, f"the id of a pending proposal on forecast {forecast.id}"
        )
    if not pending:
        raise StateError(f"forecast {forecast.id} has no pending proposal")
    verdicts = {(p.kind, p.verdict) for p in pending}
    if len(verdicts) > 1:
        listed = ", ".join(f"{p.id} ({p.kind} {p.verdict})" for p in pending)
        raise StateError(
            f"forecast {forecast.id} has several pending proposals ({listed}); "
            "name one with --proposal"
        )
    return pending[-1]


def confirm(
    session: Session,
    forecast_id: int | str,
    *,
    by: str,
    note: str | None = None,
    proposal_id: int | None = None,
) -> Proposal:
    """Confirm the forecast's pending proposal (or ``proposal_id``); see the module docstring."""
    proposal = _pick(session, forecast_id, proposal_id)
    by = require_text(by, "by", multiline=False) or by
    note = require_text(note, "note", optional=True)
    now = clock_now()
    evidence = session.get(Evidence, proposal.evidence_id) if proposal.evidence_id else None
    if proposal.kind == "resolve":
        source = f"resolver:{evidence.kind}" if evidence else "a resolver"
        text = note or f"confirmed proposal {proposal.id} from {source}"
        if proposal.verdict == "annul":
            store.annul(session, proposal.forecast_id, by=by, note=text, at=now)
        else:
            store.resolve(
                session,
                proposal.forecast_id,
                _outcome(session, proposal, evidence),
                by=by,
                note=text,
                evidence=evidence.url if evidence else None,
                at=now,
            )
        moot = supersede(session, proposal.forecast_id, by=by, at=now, keep=proposal.id)
        proposal.status = "confirmed"
    else:
        moot = []
        proposal.status = "acknowledged"
    proposal.decided_at = now
    proposal.decided_by = by
    proposal.note = note
    decision = receipts.decision_payload(proposal.id, proposal.status, now, by, note)
    receipts.append_many(session, [*moot, ("decide", decision, proposal.forecast_id, now)])
    return proposal


def decision_record(session: Session, proposal: Proposal) -> dict[str, Any]:
    """A proposal just confirmed or disputed, as ``tracker confirm --json`` and the API give it:
    its record, with ``resolution``, what the forecast now resolves to (``YES``, a number, a
    date, an option), once resolved."""
    record = proposal_record(proposal)
    forecast = store.get_forecast(session, proposal.forecast_id)
    if forecast.status == "resolved":
        record["resolution"] = format_outcome(forecast)
    return record


def _outcome(session: Session, proposal: Proposal, evidence: Evidence | None) -> bool | float:
    """What confirming a YES / NO proposal resolves to: YES or NO, or the outcome of a numeric,
    date or choice question that its evidence carries."""
    forecast = session.get(Forecast, proposal.forecast_id)
    question = None if forecast is None else loaded_question(forecast.kind, forecast.question)
    if question is None:
        return proposal.verdict == "yes"
    value, why = outcome_of(question, proposal.verdict, evidence.value if evidence else None)
    if value is None:
        raise StateError(
            f"proposal {proposal.id} gives no outcome this {question.kind} question can take "
            f"({why or 'its evidence is gone'}); resolve it with tracker resolve"
        )
    return value


def dispute(
    session: Session,
    forecast_id: int | str,
    *,
    by: str,
    note: str,
    proposal_id: int | None = None,
) -> Proposal:
    """Dispute the forecast's pending proposal (or ``proposal_id``): it is set aside with a note."""
    text = require_text(note, "note")
    if not text:
        raise InputError("note", note, "a note saying why the proposal is wrong")
    proposal = _pick(session, forecast_id, proposal_id)
    proposal.status = "disputed"
    proposal.decided_at = clock_now()
    proposal.decided_by = require_text(by, "by", multiline=False) or by
    proposal.note = text
    session.flush()
    receipts.append(
        session,
        "decide",
        receipts.decision_payload(
            proposal.id, "disputed", proposal.decided_at, proposal.decided_by, text
        ),
        forecast_id=proposal.forecast_id,
        at=proposal.decided_at,
    )
    return proposal
