"""The ``polymarket`` kind against a loopback server answering with recorded Gamma payloads."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest

from predictions.errors import InputError
from resolvers.base import ForecastInfo, ResolverError, Verdict
from resolvers.polymarket import PolymarketResolver
from tests.resolvers.recorded_sources import RecordedSource, fixture, serve

NOW = datetime(2025, 11, 23, 12, 0)
SLUG = "will-china-publish-a-national-ai-safety-standard-by-december-31"
FORECAST = ForecastInfo(
    id=1,
    title="Will China publish a national AI safety standard by December 31?",
    criteria="Resolves as the Polymarket market does.",
    due=datetime(2025, 12, 31, 23, 59),
    created_at=datetime(2025, 3, 10),
)


@pytest.fixture
def source() -> Iterator[RecordedSource]:
    yield from serve()


def _check(source: RecordedSource, **params: Any) -> Verdict:
    spec = PolymarketResolver.validate({**params, "base_url": source.url})
    verdict = PolymarketResolver().check(FORECAST, spec, source.client().fetcher(), NOW)
    # what a 304 carries over (the sweep) holds for every answer the kind reads
    assert verdict.final == (verdict.verdict in PolymarketResolver.final_verdicts)
    return verdict


def test_polymarket_validate_accepts_id_or_slug() -> None:
    assert PolymarketResolver.validate({"id": 512345}) == {"id": "512345"}
    assert PolymarketResolver.validate({"id": "512345"}) == {"id": "512345"}
    assert PolymarketResolver.validate({"slug": SLUG}) == {"slug": SLUG}


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({}, "polymarket check"),
        ({"id": 1, "slug": "x"}, "polymarket check"),
        ({"id": "0x1f5c"}, "id"),
        ({"id": True}, "id"),
        ({"slug": "Has Spaces"}, "slug"),
        ({"slug": "x", "url": "https://polymarket.com/event/x"}, "polymarket check"),
    ],
)
def test_polymarket_validate_refuses_bad_params(params: dict[str, Any], field: str) -> None:
    with pytest.raises(InputError) as caught:
        PolymarketResolver.validate(params)
    assert caught.value.field == field


def test_polymarket_open_market_gives_no_verdict_and_the_yes_price(source: RecordedSource) -> None:
    source.route(f"/markets/slug/{SLUG}", fixture("polymarket", "market_open.json"))
    verdict = _check(source, slug=SLUG)
    assert (verdict.verdict, verdict.value, verdict.final) == ("none", "open", False)
    assert verdict.probability == pytest.approx(0.285)
    assert verdict.url == f"https://polymarket.com/market/{SLUG}"
    assert "prices Yes 0.285 / No 0.715" in (verdict.excerpt or "")


def test_polymarket_resolved_yes_is_final_yes(source: RecordedSource) -> None:
    source.route("/markets/512345", fixture("polymarket", "market_resolved_yes.json"))
    verdict = _check(source, id=512345)
    assert (verdict.verdict, verdict.value, verdict.final) == ("yes", "Yes", True)
    assert verdict.probability is None
    assert "on 2026-01-01 04:34:20+00" in (verdict.excerpt or "")


def test_polymarket_resolved_no_is_final_no(source: RecordedSource) -> None:
    source.route("/markets/512345", fixture("polymarket", "market_resolved_no.json"))
    verdict = _check(source, id="512345")
    assert (verdict.verdict, verdict.value, verdict.final) == ("no", "No", True)


def test_polymarket_void_fifty_fifty_annuls(source: RecordedSource) -> None:
    source.route("/markets/512345", fixture("polymarket", "market_void.json"))
    verdict = _check(source, id=512345)
    assert (verdict.verdict, verdict.value, verdict.final) == ("annul", "void (50-50)", True)
    assert verdict.probability == pytest.approx(0.5)


def test_polymarket_closed_but_unresolved_is_not_a_resolution(source: RecordedSource) -> None:
    source.route("/markets/512345", fixture("polymarket", "market_closed_pending.json"))
    verdict = _check(source, id=512345)
    assert (verdict.verdict, verdict.value, verdict.final) == ("none", "closed", False)
    assert verdict.probability == pytest.approx(0.9995)
    assert "awaiting resolution" in (verdict.excerpt or "")


def test_polymarket_resolved_at_another_split_gives_no_verdict(source: RecordedSource) -> None:
    body = fixture("polymarket", "market_resolved_yes.json").replace(
        b'[\\"1\\", \\"0\\"]', b'[\\"0.7\\", \\"0.3\\"]'
    )
    source.route("/markets/512345", body)
    verdict = _check(source, id=512345)
    assert (verdict.verdict, verdict.value, verdict.final) == (
        "none",
        "resolved at Yes 0.7 / No 0.3",
        False,
    )


def test_polymarket_market_without_yes_outcome_is_a_permanent_error(
    source: RecordedSource,
) -> None:
    source.route("/markets/531492", fixture("polymarket", "market_over_under.json"))
    with pytest.raises(ResolverError) as caught:
        _check(source, id=531492)
    assert not caught.value.temporary
    assert "outcomes: Over, Under" in str(caught.value)


def test_polymarket_unknown_market_is_a_permanent_error(source: RecordedSource) -> None:
    source.route("/markets/999999999", fixture("polymarket", "server_error.json"), status=404)
    with pytest.raises(ResolverError) as caught:
        _check(source, id=999999999)
    assert not caught.value.temporary
    assert str(caught.value) == "Polymarket market 999999999 not found (404)"


def test_polymarket_server_error_is_temporary(source: RecordedSource) -> None:
    source.route("/markets/512345", fixture("polymarket", "server_error.json"), status=500)
    with pytest.raises(ResolverError) as caught:
        _check(source, id=512345)
    assert caught.value.temporary


def test_polymarket_rate_limit_is_temporary_with_retry_after(source: RecordedSource) -> None:
    source.route("/markets/512345", b"{}", status=429, headers={"Retry-After": "30"})
    with pytest.raises(ResolverError) as caught:
        _check(source, id=512345)
    assert caught.value.temporary
    assert caught.value.retry_after == 30


def test_polymarket_malformed_json_is_a_temporary_error(source: RecordedSource) -> None:
    source.route("/markets/512345", b"error code: 1015", content_type="text/plain")
    with pytest.raises(ResolverError) as caught:
        _check(source, id=512345)
    assert caught.value.temporary  # a maintenance page, a cut answer: they pass
    assert "invalid JSON" in str(caught.value)


def test_polymarket_undecodable_outcome_prices_are_a_permanent_error(
    source: RecordedSource,
) -> None:
    body = fixture("polymarket", "market_open.json").replace(
        b'"[\\"0.285\\", \\"0.715\\"]"', b'"0.285,0.715"'
    )
    source.route("/markets/512345", body)
    with pytest.raises(ResolverError) as caught:
        _check(source, id=512345)
    assert not caught.value.temporary
    assert "outcomePrices is not a JSON-encoded list" in str(caught.value)
