"""Stored resolver specs, their evidence and proposals: the data side of the resolvers.

The specs reaching :func:`add_checks` are already validated (``resolvers.validate_check`` returns
``{"kind", "params", "mode"}``); this module only stores and reads. Like the store, every function
takes a Session and the caller owns the transaction, so a forecast and its checks are registered
together or not at all::

    with write_session(engine) as s:
        f = store.add_forecast(s, title=..., criteria=..., due=..., author="alice")
        add_checks(s, f, [validate_check({"kind": "deadline"})])
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from predictions import chain, receipts
from predictions.clock import now as clock_now
from predictions.errors import InputError, NotFoundError, StateError
from predictions.models import Check, Evidence, Proposal

__all__ = [
    "add_checks",
    "switch_check",
    "checks_of",
    "evidence_of",
    "evidence_record",
    "proposal_record",
    "proposals_of",
    "supersede",
    "switch_record",
]


def add_checks(
    session: Session,
    forecast: Any,
    specs: Iterable[dict[str, Any]],
    *,
    now: datetime | None = None,
) -> list[Check]:
    """Store validated specs (``{"kind", "params", "mode"}``) on a forecast (its id, or a row
    with an ``id``), due at once; each gets a ``check`` entry in the receipts chain."""
    forecast_id = int(forecast) if isinstance(forecast, int | str) else int(forecast.id)
    at = now or clock_now()
    added = []
    for spec in specs:
        if set(spec) != {"kind", "params", "mode"}:
            raise InputError("check", spec, "a validated spec with kind, params and mode")
        check = Check(
            forecast_id=forecast_id,
            kind=spec["kind"],
            params=dict(spec["params"]),
            mode=spec["mode"],
            enabled=True,
            created_at=at,
            next_check_at=at,
            failures=0,
        )
        session.add(check)
        added.append(check)
    session.flush()
    receipts.append_many(
        session,
        [
            (
                "check",
                receipts.check_payload(c.id, c.forecast_id, c.kind, c.params, c.mode, at),
                c.forecast_id,
                at,
            )
            for c in added
        ],
    )
    return added


def switch_check(
    session: Session,
    forecast_id: int,
    check_id: int,
    *,
    stop: bool,
    by: str,
    note: str | None = None,
    now: datetime | None = None,
) -> Check:
    """Stop a check of the forecast (sweeps and ``tracker check`` pass it by) or set it going
    again (due at once), with a ``stop`` / ``resume`` entry in the receipts chain.

    :class:`NotFoundError` if the forecast has no such check; :class:`StateError` if it is
    stopped (or running) already.
    """
    check = session.get(Check, check_id)
    if check is None or check.forecast_id != forecast_id:
        raise NotFoundError(f"check of forecast {forecast_id}", check_id)
    if check.enabled != stop:
        state = "stopped" if stop else "running"
        raise StateError(f"check {check_id} of forecast {forecast_id} is {state} already")
    at = now or clock_now()
    check.enabled = not stop
    if not stop:
        check.next_check_at = at
        check.failures = 0
    session.flush()
    receipts.append_many(
        session,
        [
            (
                "stop" if stop else "resume",
                receipts.switch_payload(check_id, by, note),
                forecast_id,
                at,
            )
        ],
    )
    return check


def switch_record(check: Check) -> dict[str, Any]:
    """A check just stopped or resumed, as ``tracker check --stop/--resume --json`` and the API
    give it."""
    return {
        "forecast": check.forecast_id,
        "check": check.id,
        "kind": check.kind,
        "running": check.enabled,
    }


def supersede(
    session: Session, forecast_id: int, *, by: str, at: datetime, keep: int | None = None
) -> list[receipts.Entry]:
    """Mark the forecast's pending resolve proposals (but ``keep``) ``superseded``: it has just
    been resolved or annulled, so they are moot.

    Returns their ``decide`` receipts for the caller to append with its own, as the receipts
    chain's lock is taken last.
    """
    query = select(Proposal.id).where(
        Proposal.forecast_id == forecast_id,
        Proposal.status == "pending",
        Proposal.kind == "resolve",
    )
    if keep is not None:
        query = query.where(Proposal.id != keep)
    ids = list(session.scalars(query.order_by(Proposal.id)))
    if ids:
        session.execute(
            update(Proposal)
            .where(Proposal.id.in_(ids))
            .values(status="superseded", decided_at=at, decided_by=by)
        )
    return [
        ("decide", receipts.decision_payload(i, "superseded", at, by, None), None, at) for i in ids
    ]


def checks_of(session: Session, forecast_id: int) -> Sequence[Check]:
    """The specs of one forecast, oldest first."""
    return session.scalars(
        select(Check).where(Check.forecast_id == forecast_id).order_by(Check.id)
    ).all()


def evidence_of(session: Session, forecast_id: int) -> Sequence[Evidence]:
    """Every check ever made on one forecast, oldest first."""
    return session.scalars(
        select(Evidence).where(Evidence.forecast_id == forecast_id).order_by(Evidence.id)
    ).all()


def proposals_of(session: Session, forecast_id: int) -> Sequence[Proposal]:
    """Every proposal made on one forecast, oldest first."""
    return session.scalars(
        select(Proposal).where(Proposal.forecast_id == forecast_id).order_by(Proposal.id)
    ).all()


def evidence_record(e: Evidence) -> dict[str, Any]:
    """The JSON form of an evidence row (``tracker evidence --json``)."""
    return {
        "id": e.id,
        "forecast": e.forecast_id,
        "check": e.check_id,
        "checked_at": chain.iso(e.checked_at),
        "kind": e.kind,
        "resolver_version": e.resolver_version,
        "url": e.url,
        "http_status": e.http_status,
        "sha256": e.sha256,
        "bytes": e.bytes,
        "unchanged": e.unchanged,
        "verdict": e.verdict,
        "value": e.value,
        "excerpt": e.excerpt,
        "error": e.error,
    }


def proposal_record(p: Proposal, evidence: Evidence | None = None) -> dict[str, Any]:
    """The JSON form of a proposal, with its evidence when given."""
    return {
        "id": p.id,
        "forecast": p.forecast_id,
        "check": p.check_id,
        "kind": p.kind,
        "verdict": p.verdict,
        "status": p.status,
        "created_at": chain.iso(p.created_at),
        "decided_at": chain.iso(p.decided_at),
        "decided_by": p.decided_by,
        "note": p.note,
        "evidence": evidence_record(evidence) if evidence is not None else None,
    }
