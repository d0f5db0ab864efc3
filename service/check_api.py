"""Resolver checks, their evidence and proposals over JSON (the CLI's check, evidence, review,
confirm and dispute).

Checks are added to a forecast (``POST /api/v1/forecasts/{id}/checks``, specs as ``--check``
takes them, validated against the question's type), stopped and resumed by id, and run now
(``POST /api/v1/forecasts/{id}/check``: what ``tracker check`` does, the fetches made by this
server with the runner's default settings). A proposal is confirmed or disputed by its id, or by
its forecast's (the one pending, as ``tracker confirm ID`` picks it). Whoever decides is the
signed-in user.
"""

from __future__ import annotations

from typing import Any

from fastapi import Request
from pydantic import Field

from predictions import store
from predictions.checks import (
    add_checks,
    evidence_of,
    evidence_record,
    switch_check,
    switch_record,
)
from predictions.errors import NotFoundError
from predictions.models import Check, Proposal
from predictions.validation import require_text
from resolvers import read_checks
from service.api import Limit, Offset, page
from service.auth import CurrentUser
from service.forecast_api import Body, Spec
from service.routes import route

__all__ = ["Decision", "Dispute", "NewChecks", "Run", "Switch"]


class NewChecks(Body):
    """Checks to attach: each as ``--check`` takes it, or a JSON object."""

    checks: list[Spec] = Field(min_length=1)


class Switch(Body):
    """Why a check is stopped or resumed (kept in the receipt); ``forecast``: the forecast it
    must be a check of (``tracker check ID --stop CHECK``: else refused as the CLI refuses it)."""

    note: str | None = None
    forecast: int | None = None


class Run(Body):
    """``dry_run``: fetch and judge, record nothing."""

    dry_run: bool = False


class Decision(Body):
    """A confirmation: ``proposal`` (by the forecast's route: default the one pending), a note."""

    proposal: int | None = None
    note: str | None = None


class Dispute(Body):
    """A dispute: why the proposal is wrong (required)."""

    proposal: int | None = None
    note: str


@route(
    "POST",
    "/api/v1/forecasts/{forecast_id}/checks",
    role="member",
    owner=True,
    status_code=201,
    summary="Attach checks",
)
def attach_checks(
    request: Request, forecast_id: int, body: NewChecks, user: CurrentUser
) -> dict[str, Any]:
    """Validate every spec, then attach them all (``tracker check --add``): none if any is bad.
    ``{forecast, added: [check id], checks: [validated spec]}``."""
    with request.app.state.store.write() as session:
        forecast = store.get_forecast(session, forecast_id)
        valid = read_checks(body.checks, forecast.kind)
        ids = [c.id for c in add_checks(session, forecast.id, valid)]
    return {"forecast": forecast_id, "added": ids, "checks": valid}


def _switch(request: Request, check_id: int, stop: bool, body: Switch | None, by: str) -> Any:
    note = require_text(body.note if body else None, "note", optional=True)
    with request.app.state.store.write() as session:
        check = session.get(Check, check_id)
        if check is None:
            raise NotFoundError("check", check_id)
        forecast = check.forecast_id
        if body is not None and body.forecast is not None:
            forecast = store.get_forecast(session, body.forecast).id
        return switch_record(switch_check(session, forecast, check_id, stop=stop, by=by, note=note))


@route("POST", "/api/v1/checks/{check_id}/stop", role="member", owner=True, summary="Stop")
def stop_check(
    request: Request, check_id: int, user: CurrentUser, body: Switch | None = None
) -> dict[str, Any]:
    """Stop a check: sweeps and runs pass it by (``tracker check ID --stop CHECK``)."""
    return _switch(request, check_id, True, body, user.name)


@route("POST", "/api/v1/checks/{check_id}/resume", role="member", owner=True, summary="Resume")
def resume_check(
    request: Request, check_id: int, user: CurrentUser, body: Switch | None = None
) -> dict[str, Any]:
    """Set a stopped check going again, due now (``tracker check ID --resume CHECK``)."""
    return _switch(request, check_id, False, body, user.name)


@route(
    "POST", "/api/v1/forecasts/{forecast_id}/check", role="member", owner=True, summary="Run checks"
)
def run_checks(
    request: Request, forecast_id: int, user: CurrentUser, body: Run | None = None
) -> dict[str, Any]:
    """Run the forecast's running checks now (``tracker check ID --json``): each verdict with
    its receipt; a failed fetch is in the record (``errors``), not an error status."""
    from resolvers.sweep import check_forecast

    with request.app.state.store.read() as session:
        store.get_forecast(session, forecast_id)  # 404 before anything is fetched
    dry_run = body.dry_run if body else False
    engine, settings = request.app.state.store.engine, request.app.state.settings.sweep
    return check_forecast(engine, forecast_id, dry_run=dry_run, settings=settings).record()


@route("GET", "/api/v1/forecasts/{forecast_id}/evidence", summary="Evidence")
def evidence(
    request: Request, forecast_id: int, limit: Limit = 100, offset: Offset = 0
) -> dict[str, Any]:
    """Every check ever made on the forecast, oldest first (``tracker evidence --json``)."""
    with request.app.state.store.read() as session:
        forecast = store.get_forecast(session, forecast_id)
        rows = [evidence_record(e) for e in evidence_of(session, forecast.id)]
    return page(rows, limit, offset)


@route("GET", "/api/v1/proposals", summary="Proposals to review")
def proposals(
    request: Request, forecast: int | None = None, limit: Limit = 100, offset: Offset = 0
) -> dict[str, Any]:
    """Pending proposals, oldest first, each with its forecast and evidence (``tracker review
    --json``); ``forecast``: only that forecast's."""
    from resolvers.review import review

    with request.app.state.store.read() as session:
        items = review(session)
    if forecast is not None:
        items = [item for item in items if item["forecast"]["id"] == forecast]
    return page(items, limit, offset)


def _decide(
    request: Request,
    forecast_id: int,
    proposal_id: int | None,
    note: str | None,
    by: str,
    *,
    disputed: bool = False,
) -> dict[str, Any]:
    """Confirm (or, ``disputed``, dispute) a pending proposal of the forecast, recorded as ``by``."""
    from resolvers.review import confirm, decision_record, dispute

    with request.app.state.store.write() as session:
        if disputed:
            proposal = dispute(
                session, forecast_id, by=by, note=note or "", proposal_id=proposal_id
            )
        else:
            proposal = confirm(session, forecast_id, by=by, note=note, proposal_id=proposal_id)
        return decision_record(session, proposal)


def _forecast_of(request: Request, proposal_id: int) -> int:
    with request.app.state.store.read() as session:
        proposal = session.get(Proposal, proposal_id)
        if proposal is None:
            raise NotFoundError("proposal", proposal_id)
        return int(proposal.forecast_id)


@route(
    "POST",
    "/api/v1/proposals/{proposal_id}/confirm",
    role="member",
    owner=True,
    summary="Confirm a proposal",
)
def confirm_proposal(
    request: Request, proposal_id: int, user: CurrentUser, body: Decision | None = None
) -> dict[str, Any]:
    """Resolve (or annul) the forecast as proposed; a disagreement is acknowledged (``tracker
    confirm --json``: the proposal, with ``resolution``)."""
    note = body.note if body else None
    return _decide(request, _forecast_of(request, proposal_id), proposal_id, note, user.name)


@route(
    "POST",
    "/api/v1/proposals/{proposal_id}/dispute",
    role="member",
    owner=True,
    summary="Dispute a proposal",
)
def dispute_proposal(
    request: Request, proposal_id: int, body: Dispute, user: CurrentUser
) -> dict[str, Any]:
    """Set the proposal aside with a note; the forecast is unchanged (``tracker dispute``)."""
    forecast_id = _forecast_of(request, proposal_id)
    return _decide(request, forecast_id, proposal_id, body.note, user.name, disputed=True)


@route(
    "POST",
    "/api/v1/forecasts/{forecast_id}/confirm",
    role="member",
    owner=True,
    summary="Confirm the forecast's proposal",
)
def confirm_forecast(
    request: Request, forecast_id: int, user: CurrentUser, body: Decision | None = None
) -> dict[str, Any]:
    """``tracker confirm ID [--proposal P]``: the one pending proposal unless ``proposal``."""
    proposal, note = (body.proposal, body.note) if body else (None, None)
    return _decide(request, forecast_id, proposal, note, user.name)


@route(
    "POST",
    "/api/v1/forecasts/{forecast_id}/dispute",
    role="member",
    owner=True,
    summary="Dispute the forecast's proposal",
)
def dispute_forecast(
    request: Request, forecast_id: int, body: Dispute, user: CurrentUser
) -> dict[str, Any]:
    """``tracker dispute ID --note TEXT [--proposal P]``."""
    return _decide(request, forecast_id, body.proposal, body.note, user.name, disputed=True)
