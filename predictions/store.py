"""Forecast operations: register, estimate, amend, resolve, annul, read.

Every function takes a :class:`~sqlalchemy.orm.Session`; the caller owns the transaction
(``with write_session(engine) as s: ...``). Each change appends its ledger entry in the same
transaction, so the table and the chain never disagree.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session, selectinload

from predictions import ledger
from predictions.chain import stored
from predictions.clock import now as clock_now
from predictions.errors import InputError, NotFoundError, StateError
from predictions.models import Amendment, Estimate, Forecast, Tag
from predictions.records import (
    LIST_STATUSES,
    ForecastQuery,
    forecast_record,
    forecast_where,
    latest_estimate,
)
from predictions.validation import check_estimate, check_registration, require_text

__all__ = [
    "LIST_STATUSES",
    "ForecastQuery",
    "add_estimate",
    "add_forecast",
    "amend",
    "annul",
    "count_forecasts",
    "forecast_record",
    "get_forecast",
    "latest_estimate",
    "list_forecasts",
    "resolve",
]

AMENDABLE = ("title", "criteria", "due")


def add_forecast(
    session: Session,
    *,
    title: str,
    criteria: str,
    due: datetime,
    author: str,
    probability: float | None = None,
    tags: Iterable[str] = (),
    source: str | None = None,
    ref: str | None = None,
    note: str | None = None,
    created_at: datetime | None = None,
    allow_past_due: bool = False,
) -> Forecast:
    """Register a forecast (and its first estimate, if a probability is given).

    A due date in the past is refused unless ``allow_past_due`` (imports of history).
    """
    fields = check_registration(
        title=title,
        criteria=criteria,
        author=author,
        source=source,
        due=due,
        created_at=created_at or clock_now(),
        tags=tags,
        allow_past_due=allow_past_due,
    )
    if ref is not None and session.scalar(select(Forecast.id).where(Forecast.ref == ref)):
        raise InputError("ref", ref, "a reference not already imported")
    forecast = Forecast(
        title=fields.title,
        criteria=fields.criteria,
        due=fields.due,
        created_at=fields.created_at,
        author=fields.author,
        source=fields.source,
        ref=ref,
        status="open",
    )
    session.add(forecast)
    session.flush()
    for name in fields.tags:
        session.add(Tag(forecast_id=forecast.id, name=name))
    ledger.append(
        session,
        "register",
        ledger.register_payload(forecast, fields.tags),
        forecast_id=forecast.id,
        at=fields.created_at,
    )
    if probability is not None:
        add_estimate(
            session, forecast, fields.author, probability, note=note, made_at=fields.created_at
        )
    return forecast


_MAX_ID = 2**31 - 1  # the largest INTEGER key on PostgreSQL


def get_forecast(session: Session, forecast_id: int | str, *, for_update: bool = False) -> Forecast:
    """The forecast with this id, or :class:`NotFoundError`."""
    try:
        fid = int(forecast_id)
    except (TypeError, ValueError):
        raise InputError("id", forecast_id, "a forecast id (a whole number)") from None
    if not 1 <= fid <= _MAX_ID:  # no such row can exist; the database would refuse the number
        raise NotFoundError("forecast", fid)
    forecast = session.get(Forecast, fid, with_for_update=for_update or None)
    if forecast is None:
        raise NotFoundError("forecast", fid)
    return forecast


def add_estimate(
    session: Session,
    forecast: Forecast | int,
    forecaster: str,
    probability: float,
    *,
    note: str | None = None,
    made_at: datetime | None = None,
) -> Estimate:
    """Append a probability to a forecast's history. Refused once it is resolved or annulled."""
    if not isinstance(forecast, Forecast):
        forecast = get_forecast(session, forecast)
    if forecast.status != "open":
        raise StateError(f"forecast {forecast.id} is {forecast.status}; its estimates are closed")
    name, p, note_ = check_estimate(forecaster, probability, note)
    estimate = Estimate(
        forecast_id=forecast.id,
        forecaster=name,
        probability=p,
        made_at=made_at or clock_now(),
        note=note_,
    )
    session.add(estimate)
    session.flush()
    ledger.append(
        session,
        "estimate",
        ledger.estimate_payload(estimate),
        forecast_id=forecast.id,
        at=estimate.made_at,
    )
    return estimate


def amend(
    session: Session,
    forecast_id: int | str,
    field: str,
    value: str | datetime,
    *,
    by: str,
    note: str | None = None,
) -> Amendment:
    """Change a forecast's title, criteria or due date, recorded as an amendment."""
    if field not in AMENDABLE:
        raise InputError("field", field, "one of " + ", ".join(AMENDABLE))
    forecast = get_forecast(session, forecast_id, for_update=True)
    if forecast.status != "open":
        raise StateError(
            f"forecast {forecast.id} is {forecast.status}; it can no longer be amended"
        )
    at = clock_now()
    if field == "due":
        if not isinstance(value, datetime):
            raise InputError("due", value, "a date")
        old, new = ledger.iso(forecast.due), ledger.iso(value)
        forecast.due = value
    else:
        text = require_text(value, field, multiline=field != "title")
        old, new = getattr(forecast, field), text
        setattr(forecast, field, text)
    if old == new:
        raise InputError(field, new, f"a {field} different from the current one")
    assert old is not None and new is not None
    amendment = Amendment(
        forecast_id=forecast.id,
        field=field,
        old_value=old,
        new_value=new,
        made_at=at,
        made_by=require_text(by, "forecaster", multiline=False) or by,
        note=require_text(note, "note", optional=True),
    )
    session.add(amendment)
    session.flush()
    ledger.append(
        session,
        "amend",
        {
            "id": amendment.id,
            "forecast": forecast.id,
            "field": field,
            "old": old,
            "new": new,
            "at": ledger.iso(at),
            "by": amendment.made_by,
            "note": amendment.note,
        },
        forecast_id=forecast.id,
        at=at,
    )
    return amendment


def resolve(
    session: Session,
    forecast_id: int | str,
    outcome: bool,
    *,
    by: str,
    note: str | None = None,
    evidence: str | None = None,
    at: datetime | None = None,
) -> Forecast:
    """Resolve a forecast YES (True) or NO (False). Resolving twice is refused."""
    forecast = get_forecast(session, forecast_id, for_update=True)
    if forecast.status != "open":
        raise StateError(f"forecast {forecast.id} is already {forecast.status}")
    at = at or clock_now()
    forecast.status = "resolved"
    forecast.outcome = bool(outcome)
    forecast.resolved_at = at
    forecast.resolved_by = require_text(by, "resolved_by", multiline=False)
    forecast.resolution_note = require_text(note, "note", optional=True)
    forecast.resolution_evidence = require_text(
        evidence, "evidence", optional=True, multiline=False
    )
    ledger.append(
        session,
        "resolve",
        {
            "forecast": forecast.id,
            "outcome": forecast.outcome,
            "at": ledger.iso(at),
            "by": forecast.resolved_by,
            "note": forecast.resolution_note,
            "evidence": forecast.resolution_evidence,
        },
        forecast_id=forecast.id,
        at=at,
    )
    return forecast


def annul(
    session: Session,
    forecast_id: int | str,
    *,
    by: str,
    note: str | None,
    at: datetime | None = None,
) -> Forecast:
    """Annul a forecast (the question became moot); it is excluded from scores."""
    forecast = get_forecast(session, forecast_id, for_update=True)
    if forecast.status != "open":
        raise StateError(f"forecast {forecast.id} is already {forecast.status}")
    at = at or clock_now()
    forecast.status = "annulled"
    forecast.outcome = None
    forecast.resolved_at = at
    forecast.resolved_by = require_text(by, "resolved_by", multiline=False)
    forecast.resolution_note = require_text(note, "note", optional=True)
    forecast.resolution_evidence = None
    ledger.append(
        session,
        "annul",
        {
            "forecast": forecast.id,
            "at": ledger.iso(at),
            "by": forecast.resolved_by,
            "note": forecast.resolution_note,
        },
        forecast_id=forecast.id,
        at=at,
    )
    return forecast


def _filtered(session: Session, query: ForecastQuery, now: datetime) -> Any:
    where, params = forecast_where(
        alias="forecast", status=query.status, tag=query.tag, by=query.by, now=now
    )
    if session.get_bind().dialect.name == "sqlite":
        params = stored(params)
    return select(Forecast).where(text(where).bindparams(**params))


def list_forecasts(
    session: Session, query: ForecastQuery, *, now: datetime | None = None
) -> Sequence[Forecast]:
    """Forecasts matching ``query``, soonest due first (resolved ones: latest resolved first)."""
    now = now or clock_now()
    stmt = _filtered(session, query, now)
    if query.status in ("resolved", "annulled"):
        stmt = stmt.order_by(Forecast.resolved_at.desc(), Forecast.id.desc())
    else:
        stmt = stmt.order_by(Forecast.due, Forecast.id)
    if query.limit:
        stmt = stmt.limit(query.limit)
    if query.offset:
        stmt = stmt.offset(query.offset)
    return session.scalars(stmt.options(selectinload(Forecast.estimates))).all()


def count_forecasts(session: Session, query: ForecastQuery, *, now: datetime | None = None) -> int:
    """How many forecasts match ``query`` (ignoring its limit)."""
    stmt = _filtered(session, query, now or clock_now()).with_only_columns(
        func.count(), maintain_column_froms=True
    )
    return int(session.scalar(stmt) or 0)
