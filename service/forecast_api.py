"""The forecasts over JSON: ``/api/v1/forecasts`` and what changes one (the CLI's add, list, show,
amend, update, resolve, annul, withdraw and reopen).

Bodies take the CLI's text forms (a probability ``"70%"``, a due date ``"+90d"``, quantiles
``"10%=4,50%=8,90%=15"``, a range ``"0..34"``...) and are read by the functions the CLI calls
(:mod:`predictions.inputs`, :func:`predictions.validation.read_due`, ``resolvers.parse_check``), so
bad input gets the CLI's one-line error (422) and changes nothing. Whoever changes something is
the signed-in user: no body names a forecaster. Responses are
:func:`predictions.records.forecast_record` (the CLI's ``--json``); lists are pages
(:func:`service.api.page`).
"""

from __future__ import annotations

from typing import Any

from fastapi import Request
from pydantic import BaseModel, ConfigDict, Field

from predictions import records, store
from predictions.chain import estimate_fields
from predictions.clock import now as clock_now
from predictions.inputs import (
    read_changes,
    read_forecast,
    read_outcome,
    read_question,
    stored_forecast,
)
from predictions.questions import Question
from predictions.shown import blinded, format_outcome
from predictions.validation import parse_timezone, read_due
from resolvers import read_checks
from service.api import Limit, Offset, page
from service.auth import CurrentUser
from service.routes import route

__all__ = [
    "Amendment",
    "Body",
    "Correction",
    "NewEstimate",
    "NewForecast",
    "Resolution",
    "Spec",
]

#: A resolver check as ``--check`` takes it (``"page:url=URL,contains=TERM"`` or JSON text), or
#: the JSON object itself.
Spec = str | dict[str, Any]


class Body(BaseModel):
    """A request body: a field it does not know is refused (no body names a forecaster)."""

    model_config = ConfigDict(extra="forbid")


class _Given(Body):
    """A forecast as the CLI's ``-p``, ``--quantiles`` or ``--distribution`` give it (one)."""

    probability: str | float | None = Field(
        None, description='0.7, "70%" or "70"; on a choice question one per option: "35,30,35"'
    )
    quantiles: str | None = Field(None, description='numeric or date: "10%=4,50%=8,90%=15"')
    distribution: str | None = Field(None, description='numeric or date: "normal:8,3"')

    def read(self, question: Question | None) -> float | tuple[float, ...]:
        """The forecast, read for ``question`` as the CLI reads it."""
        p = self.probability
        return read_forecast(
            question, None if p is None else str(p), self.quantiles, self.distribution
        )


class NewForecast(_Given):
    """``POST /api/v1/forecasts``: ``tracker add``'s arguments and options."""

    title: str
    criteria: str
    due: str = Field(description='"2030-12-31", "+90d", "end of 2030"... (as --due)')
    timezone: str | None = Field(None, description="IANA zone a date-only due ends in (UTC)")
    numeric: str | None = Field(None, description='a numeric question over this range: "0..34"')
    date: str | None = Field(None, description='a date question: "2026-01-01..2035-12-31"')
    options: str | None = Field(None, description='a choice question: "DeepSeek,Qwen,Other"')
    open: str | None = Field(None, description="lower, upper or both: open range bounds")
    log: bool = False
    ordered: bool = False
    tags: list[str] = []
    source: str | None = None
    note: str | None = None
    checks: list[Spec] = []


class NewEstimate(_Given):
    """``POST /api/v1/forecasts/{id}/estimates``: ``tracker update``'s options."""

    note: str | None = None


class Amendment(Body):
    """``PATCH /api/v1/forecasts/{id}``: ``tracker amend``'s options (one at least)."""

    title: str | None = None
    criteria: str | None = None
    due: str | None = None
    timezone: str | None = None
    tags: list[str] = []
    untags: list[str] = []
    note: str | None = None


class Resolution(Body):
    """``POST /api/v1/forecasts/{id}/resolution``: yes or no, a number, a date, an option."""

    outcome: str
    note: str | None = None
    evidence: str | None = None


class Correction(Body):
    """An annulment, withdrawal or reopening: why (required, as the CLI's ``--note``)."""

    note: str


@route("POST", "/api/v1/forecasts", role="member", status_code=201, summary="Add a forecast")
def add_forecast(request: Request, body: NewForecast, user: CurrentUser) -> dict[str, Any]:
    """Register a forecast by the signed-in user (``tracker add``), with its checks if given."""
    from predictions.checks import add_checks

    question = read_question(
        body.numeric, body.date, body.options, body.open, body.log, body.ordered
    )
    given = body.read(question)
    now = clock_now()
    due = read_due(body.due, now=now, tz=parse_timezone(body.timezone))
    specs = read_checks(body.checks, question.kind if question else "binary")
    with request.app.state.store.write() as session:
        forecast = store.add_forecast(
            session,
            title=body.title,
            criteria=body.criteria,
            due=due,
            author=user.name,
            tags=body.tags,
            source=body.source,
            note=body.note,
            created_at=now,
            **stored_forecast(question, given),
        )
        add_checks(session, forecast.id, specs, now=forecast.created_at)
    record = records.forecast_record(forecast, viewer=user.name)
    if specs:
        record["checks"] = specs
    return record


@route("GET", "/api/v1/forecasts", summary="List forecasts")
def list_forecasts(
    request: Request,
    user: CurrentUser,
    status: str = "open",
    tag: str | None = None,
    by: str | None = None,
    search: str | None = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> dict[str, Any]:
    """Forecasts soonest due first (``tracker list --json``), seen by ``by`` (else by you): a
    page ``{items, total, limit, offset}``."""
    query = records.ForecastQuery(
        status=status, tag=tag, by=by, limit=limit, offset=offset, search=search
    )
    now = clock_now()
    with request.app.state.store.read() as session:
        rows = store.list_forecasts(session, query, now=now)
        total = store.count_forecasts(session, query, now=now)
    viewer = by or user.name
    items = [records.forecast_record(blinded(f, user.name), viewer=viewer) for f in rows]
    return page(items, limit, offset, total)


@route("GET", "/api/v1/forecasts/{forecast_id}", summary="Show a forecast")
def show_forecast(
    request: Request, forecast_id: int, user: CurrentUser, by: str | None = None
) -> dict[str, Any]:
    """One forecast with its amendments, checks and history (``tracker show --json``); ``by``
    says whose probability is "yours" (default: you). A blind forecast you have not forecast yet
    comes without the others' estimates (:func:`predictions.shown.blinded`), as on its page."""
    with request.app.state.store.read() as session:
        forecast = store.get_forecast(session, forecast_id)
        closings = store.closings(session, forecast.id)
        return records.shown_record(blinded(forecast, user.name), by or user.name, closings)


@route("PATCH", "/api/v1/forecasts/{forecast_id}", role="member", owner=True, summary="Amend")
def amend_forecast(
    request: Request, forecast_id: int, body: Amendment, user: CurrentUser
) -> dict[str, Any]:
    """Change the title, criteria, due date or tags, each an amendment (``tracker amend``)."""
    changes = read_changes(
        body.title,
        body.criteria,
        body.due,
        body.tags,
        body.untags,
        now=clock_now(),
        tz=parse_timezone(body.timezone),
    )
    with request.app.state.store.write() as session:
        for field, value in changes:
            store.amend(session, forecast_id, field, value, by=user.name, note=body.note)  # type: ignore[arg-type]
        forecast = store.get_forecast(session, forecast_id)
    return records.forecast_record(forecast, viewer=user.name, full=True)


@route(
    "POST",
    "/api/v1/forecasts/{forecast_id}/estimates",
    role="member",
    status_code=201,
    summary="Add your estimate",
)
def add_estimate(
    request: Request, forecast_id: int, body: NewEstimate, user: CurrentUser
) -> dict[str, Any]:
    """Record the signed-in user's new forecast on any open question (``tracker update``). The
    record adds ``estimate`` (the new one), ``previous`` (your one before, or null) and
    ``scored`` (false when made at or after the due date: kept, not scored)."""
    with request.app.state.store.write() as session:
        forecast = store.get_forecast(session, forecast_id)
        given = body.read(forecast.question)
        before = records.latest_estimate(forecast, user.name)
        estimate = store.add_estimate(session, forecast, user.name, given, note=body.note)
    record = records.forecast_record(forecast, viewer=user.name)
    record["estimate"] = estimate_fields(estimate, forecast.kind)
    record["previous"] = None if before is None else estimate_fields(before, forecast.kind)
    record["scored"] = estimate.made_at < forecast.due
    return record


@route(
    "POST",
    "/api/v1/forecasts/{forecast_id}/resolution",
    role="member",
    owner=True,
    summary="Resolve",
)
def resolve_forecast(
    request: Request, forecast_id: int, body: Resolution, user: CurrentUser
) -> dict[str, Any]:
    """Resolve: yes or no; a number, a date, an option's name or number (``tracker resolve``).
    The record adds ``resolution``, the outcome in words (``YES``, ``11``, ``Moonshot``)."""
    with request.app.state.store.write() as session:
        question = store.get_forecast(session, forecast_id).question
        outcome = read_outcome(question, body.outcome)
        forecast = store.resolve(
            session, forecast_id, outcome, by=user.name, note=body.note, evidence=body.evidence
        )
    record = records.forecast_record(forecast, viewer=user.name)
    record["resolution"] = format_outcome(forecast)
    return record


@route(
    "POST", "/api/v1/forecasts/{forecast_id}/annulment", role="member", owner=True, summary="Annul"
)
def annul_forecast(
    request: Request, forecast_id: int, body: Correction, user: CurrentUser
) -> dict[str, Any]:
    """Annul a forecast whose question became moot (``tracker annul``)."""
    with request.app.state.store.write() as session:
        forecast = store.annul(session, forecast_id, by=user.name, note=body.note)
    return records.forecast_record(forecast, viewer=user.name)


@route(
    "POST",
    "/api/v1/forecasts/{forecast_id}/withdrawal",
    role="member",
    owner=True,
    summary="Withdraw",
)
def withdraw_forecast(
    request: Request, forecast_id: int, body: Correction, user: CurrentUser
) -> dict[str, Any]:
    """Withdraw a forecast entered by mistake (``tracker withdraw``)."""
    with request.app.state.store.write() as session:
        forecast = store.withdraw(session, forecast_id, by=user.name, note=body.note)
    return records.forecast_record(forecast, viewer=user.name)


@route(
    "POST", "/api/v1/forecasts/{forecast_id}/reopening", role="member", owner=True, summary="Reopen"
)
def reopen_forecast(
    request: Request, forecast_id: int, body: Correction, user: CurrentUser
) -> dict[str, Any]:
    """Reopen a forecast resolved, annulled or withdrawn by mistake (``tracker reopen``). The
    record adds ``was`` (the status before) and ``auto_checks`` (``{id, kind}`` of its running
    automatic checks: each closes it again at its next run if its source still says so)."""
    with request.app.state.store.write() as session:
        was = store.get_forecast(session, forecast_id).status
        forecast = store.reopen(session, forecast_id, by=user.name, note=body.note)
    record = records.forecast_record(forecast, viewer=user.name)
    record["was"] = was
    record["auto_checks"] = [
        {"id": c.id, "kind": c.kind} for c in forecast.checks if c.enabled and c.mode == "auto"
    ]
    return record
