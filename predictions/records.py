"""Plain views of forecasts: the list filter, the latest estimate and the JSON record (stdlib only).

Shared by the store (ORM objects) and the fast SQLite path (:mod:`predictions.lite`, plain rows
with the same attribute names), so both print exactly the same records.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from predictions.chain import iso
from predictions.errors import InputError
from predictions.validation import require_text

__all__ = [
    "DUE_SOON",
    "LIST_STATUSES",
    "ForecastQuery",
    "forecast_record",
    "latest_estimate",
]

LIST_STATUSES = ("open", "due", "overdue", "resolved", "annulled", "all")
#: ``list --status due`` shows open forecasts falling due within this window.
DUE_SOON = timedelta(days=7)


class _EstimateLike(Protocol):
    id: int
    forecaster: str
    probability: float
    made_at: datetime
    note: str | None


class _TagLike(Protocol):
    name: str


class _AmendmentLike(Protocol):
    field: str
    old_value: str
    new_value: str
    made_at: datetime
    made_by: str
    note: str | None


class _ForecastLike(Protocol):
    id: int
    title: str
    criteria: str
    due: datetime
    status: str
    outcome: bool | None
    author: str
    source: str | None
    created_at: datetime
    resolved_at: datetime | None
    resolved_by: str | None
    resolution_note: str | None
    resolution_evidence: str | None

    @property
    def estimates(self) -> Sequence[_EstimateLike]: ...

    @property
    def tags(self) -> Sequence[_TagLike]: ...

    @property
    def amendments(self) -> Sequence[_AmendmentLike]: ...


@dataclass(frozen=True)
class ForecastQuery:
    """A filter for :func:`list_forecasts`."""

    status: str = "open"
    tag: str | None = None
    by: str | None = None
    limit: int | None = 100
    offset: int = 0

    def __post_init__(self) -> None:
        if self.status not in LIST_STATUSES:
            raise InputError("status", self.status, "one of " + ", ".join(LIST_STATUSES))
        if self.limit is not None and self.limit < 0:
            raise InputError("limit", self.limit, "a whole number >= 0 (0 for no limit)")
        for name in ("tag", "by"):  # text no database could compare with is bad input
            require_text(getattr(self, name), name, optional=True, multiline=False)


def latest_estimate(forecast: _ForecastLike, forecaster: str | None = None) -> _EstimateLike | None:
    """The most recent estimate on a forecast (by ``forecaster``, if given)."""
    best: _EstimateLike | None = None
    for e in forecast.estimates:
        if forecaster is not None and e.forecaster != forecaster:
            continue
        if best is None or (e.made_at, e.id) >= (best.made_at, best.id):
            best = e
    return best


def forecast_record(forecast: _ForecastLike, *, full: bool = False) -> dict[str, Any]:
    """The JSON form of a forecast, as ``--json`` prints it and ``export`` writes it."""
    latest = latest_estimate(forecast)
    record: dict[str, Any] = {
        "id": forecast.id,
        "title": forecast.title,
        "criteria": forecast.criteria,
        "due": iso(forecast.due),
        "status": forecast.status,
        "outcome": forecast.outcome,
        "probability": latest.probability if latest else None,
        "tags": [t.name for t in forecast.tags],
        "author": forecast.author,
        "source": forecast.source,
        "created_at": iso(forecast.created_at),
        "resolved_at": iso(forecast.resolved_at),
        "resolved_by": forecast.resolved_by,
        "resolution_note": forecast.resolution_note,
        "resolution_evidence": forecast.resolution_evidence,
        "estimates": [
            {
                "probability": e.probability,
                "at": iso(e.made_at),
                "by": e.forecaster,
                "note": e.note,
            }
            for e in sorted(forecast.estimates, key=lambda e: (e.made_at, e.id))
        ],
    }
    if full:
        record["amendments"] = [
            {
                "field": a.field,
                "old": a.old_value,
                "new": a.new_value,
                "at": iso(a.made_at),
                "by": a.made_by,
                "note": a.note,
            }
            for a in forecast.amendments
        ]
    return record
