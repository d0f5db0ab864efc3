"""What the due-date report reads from the database, in plain frozen values: every forecast with
its estimates, latest evidence, pending proposals and scored estimates (:func:`load_facts`).

Kept apart from :mod:`reports.notify`, which decides what to send from these values alone.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import datetime
from functools import cached_property

from sqlalchemy import and_, func, literal, select
from sqlalchemy.orm import Session

from predictions.models import Estimate, Evidence, Forecast, Proposal
from predictions.records import is_market
from reports.question_scores import headlines
from reports.scored import executor, read_scored, read_scored_types

__all__ = ["EstimateFacts", "EvidenceFacts", "ForecastFacts", "ProposalFacts", "load_facts"]


@dataclass(frozen=True)
class EstimateFacts:
    """One estimate: who, what probability (None on a numeric, date or choice question), when;
    a numeric, date or choice estimate's stored values (:func:`predictions.questions.encode`)."""

    forecaster: str
    probability: float | None
    made_at: datetime
    values: bytes | None = None


@dataclass(frozen=True)
class EvidenceFacts:
    """The receipt of one resolver check."""

    checked_at: datetime
    kind: str
    url: str | None
    http_status: int | None
    verdict: str
    value: str | None
    excerpt: str | None
    error: str | None


@dataclass(frozen=True)
class ProposalFacts:
    """A resolution a resolver proposes, waiting for a person."""

    id: int
    kind: str
    verdict: str
    created_at: datetime
    note: str | None
    evidence: EvidenceFacts | None


@dataclass(frozen=True)
class ForecastFacts:
    """What the report needs to know about one forecast."""

    id: int
    title: str
    criteria: str
    due: datetime
    status: str
    outcome: bool | None
    author: str
    resolved_at: datetime | None
    resolved_by: str | None
    resolution_note: str | None
    resolution_evidence: str | None
    due_zone: str | None = None
    kind: str = "binary"
    #: a numeric, date or choice question's spec (JSON) and resolution value (None for binary)
    question: str | None = None
    resolution_value: float | None = None
    estimates: tuple[EstimateFacts, ...] = ()
    evidence: EvidenceFacts | None = None
    proposals: tuple[ProposalFacts, ...] = ()
    #: the check a resolver resolved or annulled it on (None when a person did)
    receipt: EvidenceFacts | None = None
    #: each forecaster's scored estimate, by the one rule of :mod:`reports.scored`
    scored: tuple[EstimateFacts, ...] = ()
    #: per forecaster, a numeric, date or choice scored estimate's values and headline score
    typed: Mapping[str, tuple[tuple[float, ...], float]] = field(default_factory=dict)

    @cached_property
    def forecasters(self) -> set[str]:
        """The author and everyone who estimated it, except markets (a market check records the
        market's probability as an estimate under the market's name)."""
        return {
            n for n in (self.author, *(e.forecaster for e in self.estimates)) if not is_market(n)
        }

    def latest(self, forecaster: str) -> EstimateFacts | None:
        """The forecaster's latest estimate (of two made at once, the later-recorded one)."""
        best = None
        for e in self.estimates:  # in the order they were recorded
            if e.forecaster == forecaster and (best is None or e.made_at >= best.made_at):
                best = e
        return best


def _evidence(row: Evidence | None) -> EvidenceFacts | None:
    if row is None:
        return None
    return EvidenceFacts(*(getattr(row, f.name) for f in fields(EvidenceFacts)))


def load_facts(session: Session) -> list[ForecastFacts]:
    """Every forecast with its estimates, check kinds, latest evidence and pending proposals.

    Plain column queries, not ORM objects: a daily run reads every forecast.
    """
    estimates: dict[int, list[EstimateFacts]] = {}
    for fid, forecaster, probability, made_at, values in session.execute(
        select(
            Estimate.forecast_id,
            Estimate.forecaster,
            Estimate.probability,
            Estimate.made_at,
            Estimate.distribution,
        ).order_by(Estimate.id)
    ):
        facts = EstimateFacts(forecaster, probability, made_at, values)
        estimates.setdefault(fid, []).append(facts)
    found = read_scored(executor(session))
    scored: dict[int, list[EstimateFacts]] = {}
    for fid, who, probability, made_at in zip(
        found.forecast_id.tolist(),
        found.who.tolist(),
        found.probability.tolist(),
        found.made_at.tolist(),
        strict=True,
    ):
        scored.setdefault(fid, []).append(EstimateFacts(found.names[who], probability, made_at))
    typed = headlines(read_scored_types(executor(session)))
    latest_ids = select(func.max(Evidence.id)).group_by(Evidence.forecast_id)
    evidence = {
        e.forecast_id: e
        for e in session.scalars(select(Evidence).where(Evidence.id.in_(latest_ids)))
    }
    # The receipt a resolver decided on: its kind's latest decisive check up to the resolution.
    decided = and_(
        Forecast.id == Evidence.forecast_id,
        Forecast.resolved_by == literal("resolver:") + Evidence.kind,
        Evidence.checked_at <= Forecast.resolved_at,
        Evidence.error.is_(None),
        Evidence.verdict != "none",
    )
    receipt_ids = select(func.max(Evidence.id)).join(Forecast, decided).group_by(Forecast.id)
    receipts = {
        e.forecast_id: e
        for e in session.scalars(select(Evidence).where(Evidence.id.in_(receipt_ids)))
    }
    pending = session.scalars(
        select(Proposal).where(Proposal.status == "pending").order_by(Proposal.id)
    ).all()
    proposal_evidence_ids = {p.evidence_id for p in pending if p.evidence_id is not None}
    proposal_evidence = {
        e.id: e
        for e in session.scalars(select(Evidence).where(Evidence.id.in_(proposal_evidence_ids)))
    }
    proposals: dict[int, list[ProposalFacts]] = {}
    for p in pending:
        proposals.setdefault(p.forecast_id, []).append(
            ProposalFacts(
                id=p.id,
                kind=p.kind,
                verdict=p.verdict,
                created_at=p.created_at,
                note=p.note,
                evidence=_evidence(proposal_evidence.get(p.evidence_id or -1)),
            )
        )
    columns = (
        Forecast.id,
        Forecast.title,
        Forecast.criteria,
        Forecast.due,
        Forecast.status,
        Forecast.outcome,
        Forecast.author,
        Forecast.resolved_at,
        Forecast.resolved_by,
        Forecast.resolution_note,
        Forecast.resolution_evidence,
        Forecast.due_zone,
        Forecast.kind,
        Forecast.question,
        Forecast.resolution_value,
    )
    return [
        ForecastFacts(
            *row,
            typed=typed.get(row[0], {}),
            estimates=tuple(estimates.get(row[0], ())),
            evidence=_evidence(evidence.get(row[0])),
            proposals=tuple(proposals.get(row[0], ())),
            receipt=_evidence(receipts.get(row[0])),
            scored=tuple(scored.get(row[0], ())),
        )
        for row in session.execute(
            select(*columns).where(Forecast.status != "withdrawn").order_by(Forecast.id)
        )
    ]
