"""End to end through a real sweep: metaculus, polymarket and wikipedia checks against a loopback
server, on a real database. What the runner makes of each kind's verdict: a market's final
resolution applies in ``auto`` mode (a final NO even before the due date), an open market leaves
only an estimate, a void market proposes annulment, and a Wikipedia text match only proposes.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.engine import Engine

from predictions import store
from predictions.checks import add_checks, evidence_of, proposals_of
from predictions.clock import now
from predictions.db import read_session, write_session
from predictions.models import Estimate
from resolvers.http import HttpSettings
from resolvers.metaculus import TOKEN_ENV
from resolvers.registry import validate_check
from resolvers.sweep import SweepSettings, sweep
from tests.resolvers.recorded_sources import RecordedSource, fixture, serve

SETTINGS = SweepSettings(http=HttpSettings(timeout=5, allow_private=True, retries=0))
SLUG = "will-china-publish-a-national-ai-safety-standard-by-december-31"


@pytest.fixture
def source(monkeypatch: pytest.MonkeyPatch) -> Iterator[RecordedSource]:
    monkeypatch.delenv(TOKEN_ENV, raising=False)
    yield from serve()


def _forecast_with_check(engine: Engine, title: str, spec: dict[str, object]) -> int:
    with write_session(engine) as session:
        forecast = store.add_forecast(
            session,
            title=title,
            criteria="Resolves as the source says.",
            due=now() + timedelta(days=365),
            author="alice",
            probability=0.5,
        )
        add_checks(session, forecast, [validate_check(spec)])
        return forecast.id


def _estimates(engine: Engine, forecast_id: int, forecaster: str) -> list[float]:
    with read_session(engine) as session:
        return list(
            session.scalars(
                select(Estimate.probability).where(
                    Estimate.forecast_id == forecast_id, Estimate.forecaster == forecaster
                )
            )
        )


def test_market_sweep_metaculus_final_no_resolves_before_due_in_auto_mode(
    engine: Engine, source: RecordedSource
) -> None:
    source.route("/api/posts/35181/", fixture("metaculus", "post_resolved_no.json"))
    fid = _forecast_with_check(
        engine,
        "Will DeepSeek release R2 before July 2025?",
        {"kind": "metaculus", "post": "35181", "base_url": source.url, "mode": "auto"},
    )

    report = sweep(engine, settings=SETTINGS)

    assert not report.errors
    with read_session(engine) as session:
        forecast = store.get_forecast(session, fid)
        assert (forecast.status, forecast.outcome) == ("resolved", False)
        assert forecast.resolved_by == "resolver:metaculus"
    assert _estimates(engine, fid, "metaculus") == []  # this post shows no community prediction


def test_market_sweep_open_markets_record_only_their_probability(
    engine: Engine, source: RecordedSource
) -> None:
    source.route(f"/markets/slug/{SLUG}", fixture("polymarket", "market_open.json"))
    source.route("/api/posts/35172/", fixture("metaculus", "post_open.json"))
    poly = _forecast_with_check(
        engine, "Polymarket, open", {"kind": "polymarket", "slug": SLUG, "base_url": source.url}
    )
    meta = _forecast_with_check(
        engine, "Metaculus, open", {"kind": "metaculus", "post": 35172, "base_url": source.url}
    )

    report = sweep(engine, settings=SETTINGS)

    assert report.checked == 2 and not report.errors
    assert _estimates(engine, poly, "polymarket") == [pytest.approx(0.285)]
    assert _estimates(engine, meta, "metaculus") == [pytest.approx(0.42)]
    with read_session(engine) as session:
        for fid in (poly, meta):
            assert store.get_forecast(session, fid).status == "open"
            assert proposals_of(session, fid) == []
            [evidence] = evidence_of(session, fid)
            assert evidence.verdict == "none"


def test_market_sweep_polymarket_void_proposes_annulment(
    engine: Engine, source: RecordedSource
) -> None:
    source.route("/markets/512345", fixture("polymarket", "market_void.json"))
    fid = _forecast_with_check(
        engine, "Polymarket, void", {"kind": "polymarket", "id": 512345, "base_url": source.url}
    )

    sweep(engine, settings=SETTINGS)

    with read_session(engine) as session:
        assert store.get_forecast(session, fid).status == "open"
        [proposal] = proposals_of(session, fid)
        assert (proposal.verdict, proposal.status) == ("annul", "pending")


def test_market_sweep_wikipedia_match_only_proposes_even_in_auto_mode(
    engine: Engine, source: RecordedSource
) -> None:
    source.route("/w/api.php", fixture("wikipedia", "page_current.json"))
    fid = _forecast_with_check(
        engine,
        "Wikipedia reports an 'AI Plus' action plan",
        {
            "kind": "wikipedia",
            "title": "15th Five-Year Plan",
            "contains": "AI Plus",
            "api": f"{source.url}/w/api.php",
            "mode": "auto",
        },
    )

    sweep(engine, settings=SETTINGS)

    with read_session(engine) as session:
        assert store.get_forecast(session, fid).status == "open"
        [evidence] = evidence_of(session, fid)
        assert evidence.verdict == "yes"
        assert (evidence.value or "").startswith("rev 1268540127 (2025-11-20T09:14:52Z) matched")
        [proposal] = proposals_of(session, fid)
        assert (proposal.verdict, proposal.status) == ("yes", "pending")
