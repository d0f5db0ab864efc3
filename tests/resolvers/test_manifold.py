"""The ``manifold`` kind against a loopback server answering with recorded Manifold payloads."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest

from predictions.errors import InputError
from resolvers.base import ForecastInfo, ResolverError, Verdict
from resolvers.manifold import ManifoldResolver
from tests.resolvers.recorded_sources import RecordedSource, fixture, serve

NOW = datetime(2025, 11, 23, 12, 0)
FORECAST = ForecastInfo(
    id=1,
    title="Will I write a new blog post today?",
    criteria="Resolves as the Manifold market does.",
    due=datetime(2030, 12, 31, 23, 59),
    created_at=datetime(2025, 1, 1),
)


@pytest.fixture
def source() -> Iterator[RecordedSource]:
    yield from serve()


def _check(source: RecordedSource, **params: Any) -> Verdict:
    spec = ManifoldResolver.validate({**params, "base_url": source.url})
    verdict = ManifoldResolver().check(FORECAST, spec, source.client().fetcher(), NOW)
    # what a 304 carries over (the sweep) holds for every answer the kind reads
    assert verdict.final == (verdict.verdict in ManifoldResolver.final_verdicts)
    return verdict


def test_manifold_validate_accepts_id_slug_and_question_url() -> None:
    assert ManifoldResolver.validate({"id": "EvIhzcJXwhL0HavaszD7"}) == {
        "id": "EvIhzcJXwhL0HavaszD7"
    }
    assert ManifoldResolver.validate({"slug": "will-i-write"}) == {"slug": "will-i-write"}
    url = "https://manifold.markets/Austin/will-i-write-a-new-blog-post-today?r=QXVzdGlu"
    assert ManifoldResolver.validate({"url": url}) == {"slug": "will-i-write-a-new-blog-post-today"}
    assert ManifoldResolver.validate({"id": "abc123", "base_url": "http://127.0.0.1:9/"}) == {
        "id": "abc123",
        "base_url": "http://127.0.0.1:9",
    }


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({}, "manifold check"),
        ({"id": "abc123", "slug": "x"}, "manifold check"),
        ({"id": "no spaces here"}, "id"),
        ({"slug": "bad/slug"}, "slug"),
        ({"url": "https://example.org/Austin/some-question"}, "url"),
        ({"url": "https://manifold.markets/Austin"}, "url"),
        ({"id": "abc123", "contains": "x"}, "manifold check"),
        ({"id": "abc123", "base_url": "file:///etc/passwd"}, "base_url"),
    ],
)
def test_manifold_validate_refuses_bad_params(params: dict[str, Any], field: str) -> None:
    with pytest.raises(InputError) as caught:
        ManifoldResolver.validate(params)
    assert caught.value.field == field


def test_manifold_open_market_gives_no_verdict_and_its_probability(source: RecordedSource) -> None:
    source.route("/v0/market/Qx7r2LmN8pTaVc3kYw1Z", fixture("manifold", "binary_open.json"))
    verdict = _check(source, id="Qx7r2LmN8pTaVc3kYw1Z")
    assert verdict.verdict == "none"
    assert verdict.value == "open"
    assert not verdict.final
    assert verdict.probability == pytest.approx(0.6173)
    assert verdict.url == "https://manifold.markets/Undox/will-china-establish-multiple-provinc"
    assert "market probability 61.7%" in (verdict.excerpt or "")
    assert "closes 2030-12-31 23:59 UTC" in (verdict.excerpt or "")


def test_manifold_resolved_yes_is_final_yes(source: RecordedSource) -> None:
    source.route("/v0/market/EvIhzcJXwhL0HavaszD7", fixture("manifold", "binary_resolved_yes.json"))
    verdict = _check(source, id="EvIhzcJXwhL0HavaszD7")
    assert (verdict.verdict, verdict.value, verdict.final) == ("yes", "YES", True)
    assert verdict.probability == pytest.approx(0.8958175225896258)
    assert "resolved YES" in (verdict.excerpt or "")
    assert "on 2022-05-30 15:21 UTC" in (verdict.excerpt or "")


def test_manifold_resolved_no_by_slug_is_final_no(source: RecordedSource) -> None:
    source.route(
        "/v0/slug/will-alibaba-release-qwen4-as-open-w",
        fixture("manifold", "binary_resolved_no.json"),
    )
    verdict = _check(
        source, url="https://manifold.markets/Undox/will-alibaba-release-qwen4-as-open-w"
    )
    assert (verdict.verdict, verdict.value, verdict.final) == ("no", "NO", True)
    assert source.requests[-1].path == "/v0/slug/will-alibaba-release-qwen4-as-open-w"


def test_manifold_cancelled_market_annuls(source: RecordedSource) -> None:
    source.route("/v0/market/Tn5cJ1uVd8XoMe6gRa2F", fixture("manifold", "binary_cancel.json"))
    verdict = _check(source, id="Tn5cJ1uVd8XoMe6gRa2F")
    assert (verdict.verdict, verdict.value, verdict.final) == ("annul", "CANCEL", True)


def test_manifold_mkt_resolution_records_the_value_without_a_verdict(
    source: RecordedSource,
) -> None:
    source.route("/v0/market/Pk3dF7gHs0LwQe9bXy4U", fixture("manifold", "binary_mkt.json"))
    verdict = _check(source, id="Pk3dF7gHs0LwQe9bXy4U")
    assert (verdict.verdict, verdict.value, verdict.final) == ("none", "MKT 0.37", False)
    assert verdict.probability == pytest.approx(0.41)


def test_manifold_non_binary_market_is_a_permanent_error(source: RecordedSource) -> None:
    source.route("/v0/market/lEoqtnDgJzft6apSKzYK", fixture("manifold", "free_response_mkt.json"))
    with pytest.raises(ResolverError) as caught:
        _check(source, id="lEoqtnDgJzft6apSKzYK")
    assert not caught.value.temporary
    assert "FREE_RESPONSE" in str(caught.value) and "BINARY" in str(caught.value)


def test_manifold_unknown_market_is_a_permanent_error(source: RecordedSource) -> None:
    source.route("/v0/market/nosuchmarket", fixture("manifold", "not_found.json"), status=404)
    with pytest.raises(ResolverError) as caught:
        _check(source, id="nosuchmarket")
    assert not caught.value.temporary
    assert str(caught.value) == "Manifold market nosuchmarket not found (404: Contract not found)"


def test_manifold_server_error_is_temporary(source: RecordedSource) -> None:
    source.route("/v0/market/abc123", b'{"message": "Internal server error"}', status=502)
    with pytest.raises(ResolverError) as caught:
        _check(source, id="abc123")
    assert caught.value.temporary


def test_manifold_rate_limit_is_temporary_with_retry_after(source: RecordedSource) -> None:
    source.route("/v0/market/abc123", b"{}", status=429, headers={"Retry-After": "120"})
    with pytest.raises(ResolverError) as caught:
        _check(source, id="abc123")
    assert caught.value.temporary
    assert caught.value.retry_after == 120


def test_manifold_malformed_json_is_a_temporary_error(source: RecordedSource) -> None:
    source.route(
        "/v0/market/abc123", b"<html>maintenance</html>", content_type="text/html; charset=utf-8"
    )
    with pytest.raises(ResolverError) as caught:
        _check(source, id="abc123")
    assert caught.value.temporary  # a maintenance page, a cut answer: they pass
    assert "invalid JSON" in str(caught.value)


def test_manifold_unknown_resolution_is_a_permanent_error(source: RecordedSource) -> None:
    body = fixture("manifold", "binary_resolved_no.json").replace(b'"NO"', b'"MAYBE"')
    source.route("/v0/market/abc123", body)
    with pytest.raises(ResolverError) as caught:
        _check(source, id="abc123")
    assert not caught.value.temporary
    assert "'MAYBE'" in str(caught.value)


def test_manifold_request_carries_the_tracker_user_agent(source: RecordedSource) -> None:
    source.route("/v0/market/Qx7r2LmN8pTaVc3kYw1Z", fixture("manifold", "binary_open.json"))
    _check(source, id="Qx7r2LmN8pTaVc3kYw1Z")
    assert source.requests[-1].headers["User-Agent"].startswith("forecast-tracker/")
