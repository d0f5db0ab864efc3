"""End to end: forecasts with ``manifold`` checks, a real sweep, a loopback Manifold, a real database.

A market resolved YES resolves an ``auto`` forecast, leaving an evidence row and the market's
probability as an estimate by ``manifold``; a cancelled market proposes annulment.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.engine import Engine

from predictions import ledger, store
from predictions.checks import add_checks, evidence_of, proposals_of
from predictions.clock import now
from predictions.db import read_session, write_session
from predictions.models import Estimate
from resolvers.http import HttpSettings
from resolvers.registry import validate_check
from resolvers.sweep import SweepSettings, sweep
from tests.resolvers.recorded_sources import RecordedSource, fixture, serve

SETTINGS = SweepSettings(http=HttpSettings(timeout=5, allow_private=True, retries=0))


@pytest.fixture
def source() -> Iterator[RecordedSource]:
    yield from serve()


def _forecast_with_check(engine: Engine, title: str, spec: dict[str, object]) -> int:
    with write_session(engine) as session:
        forecast = store.add_forecast(
            session,
            title=title,
            criteria="Resolves as the Manifold market does.",
            due=now() + timedelta(days=365),
            author="alice",
            probability=0.7,
        )
        add_checks(session, forecast, [validate_check(spec)])
        return forecast.id


def test_manifold_sweep_auto_check_resolves_yes_with_evidence_and_estimate(
    engine: Engine, source: RecordedSource
) -> None:
    body = fixture("manifold", "binary_resolved_yes.json")
    source.route("/v0/market/EvIhzcJXwhL0HavaszD7", body)
    forecast_id = _forecast_with_check(
        engine,
        "Will I write a new blog post today?",
        {"kind": "manifold", "id": "EvIhzcJXwhL0HavaszD7", "base_url": source.url, "mode": "auto"},
    )

    report = sweep(engine, settings=SETTINGS)

    assert report.checked == 1 and not report.errors
    with read_session(engine) as session:
        forecast = store.get_forecast(session, forecast_id)
        assert (forecast.status, forecast.outcome) == ("resolved", True)
        assert forecast.resolved_by == "resolver:manifold"
        [evidence] = evidence_of(session, forecast_id)
        assert (evidence.kind, evidence.verdict, evidence.value) == ("manifold", "yes", "YES")
        assert evidence.http_status == 200
        assert evidence.sha256 == hashlib.sha256(body).hexdigest()
        assert evidence.url == f"{source.url}/v0/market/EvIhzcJXwhL0HavaszD7"
        assert "resolved YES" in (evidence.excerpt or "")
        estimates = session.scalars(
            select(Estimate).where(
                Estimate.forecast_id == forecast_id, Estimate.forecaster == "manifold"
            )
        ).all()
        assert [e.probability for e in estimates] == [pytest.approx(0.8958175225896258)]
        assert ledger.verify(session).ok


def test_manifold_sweep_cancelled_market_proposes_annulment(
    engine: Engine, source: RecordedSource
) -> None:
    source.route("/v0/market/Tn5cJ1uVd8XoMe6gRa2F", fixture("manifold", "binary_cancel.json"))
    forecast_id = _forecast_with_check(
        engine,
        "Will the AI Plus action plan be published in English by June?",
        {"kind": "manifold", "id": "Tn5cJ1uVd8XoMe6gRa2F", "base_url": source.url},
    )

    report = sweep(engine, settings=SETTINGS)

    assert report.checked == 1 and not report.errors
    with read_session(engine) as session:
        forecast = store.get_forecast(session, forecast_id)
        assert forecast.status == "open"
        [evidence] = evidence_of(session, forecast_id)
        assert (evidence.verdict, evidence.value) == ("annul", "CANCEL")
        [proposal] = proposals_of(session, forecast_id)
        assert (proposal.verdict, proposal.status) == ("annul", "pending")
        assert proposal.evidence_id == evidence.id


def test_manifold_sweep_unknown_market_records_error_and_changes_nothing(
    engine: Engine, source: RecordedSource
) -> None:
    source.route("/v0/market/nosuchmarket", fixture("manifold", "not_found.json"), status=404)
    forecast_id = _forecast_with_check(
        engine,
        "Will a market that does not exist resolve?",
        {"kind": "manifold", "id": "nosuchmarket", "base_url": source.url, "mode": "auto"},
    )

    report = sweep(engine, settings=SETTINGS)

    [outcome] = report.errors
    assert outcome.temporary is False
    with read_session(engine) as session:
        assert store.get_forecast(session, forecast_id).status == "open"
        [evidence] = evidence_of(session, forecast_id)
        assert evidence.verdict == "error"
        assert evidence.http_status == 404
        assert evidence.error == "Manifold market nosuchmarket not found (404: Contract not found)"
        assert proposals_of(session, forecast_id) == []
