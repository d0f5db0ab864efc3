"""The ``metaculus`` kind against a loopback server answering with recorded Metaculus payloads."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest

from predictions.errors import InputError
from resolvers.base import ForecastInfo, ResolverError, Verdict
from resolvers.metaculus import TOKEN_ENV, TOKEN_HOSTS_ENV, MetaculusResolver
from tests.resolvers.loopback import Loopback
from tests.resolvers.recorded_sources import RecordedSource, fixture, serve

NOW = datetime(2025, 11, 23, 12, 0)
FORECAST = ForecastInfo(
    id=1,
    title="Will China publish a national AI safety standard before 2026?",
    criteria="Resolves as the Metaculus question does.",
    due=datetime(2025, 12, 31, 23, 59),
    created_at=datetime(2025, 3, 5),
)


@pytest.fixture
def source(monkeypatch: pytest.MonkeyPatch) -> Iterator[RecordedSource]:
    monkeypatch.delenv(TOKEN_ENV, raising=False)
    monkeypatch.delenv(TOKEN_HOSTS_ENV, raising=False)
    yield from serve()


def _check(source: RecordedSource, post: Any) -> Verdict:
    spec = MetaculusResolver.validate({"post": post, "base_url": source.url})
    verdict = MetaculusResolver().check(FORECAST, spec, source.client().fetcher(), NOW)
    # what a 304 carries over (the sweep) holds for every answer the kind reads
    assert verdict.final == (verdict.verdict in MetaculusResolver.final_verdicts)
    return verdict


@pytest.mark.parametrize(
    ("post", "expected"),
    [
        (35180, 35180),
        ("35180", 35180),
        ("https://www.metaculus.com/questions/35180/", 35180),
        ("https://www.metaculus.com/questions/35180/ai-plus-action-plan/?sub-question=1", 35180),
        ("https://metaculus.com/c/risk/35180/some-slug/", 35180),
    ],
)
def test_metaculus_validate_reads_post_id_or_url(post: Any, expected: int) -> None:
    assert MetaculusResolver.validate({"post": post}) == {"post": expected}


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({}, "post"),
        ({"post": 0}, "post"),
        ({"post": True}, "post"),
        ({"post": "abc"}, "post"),
        ({"post": "https://example.org/questions/35180/"}, "post"),
        ({"post": "https://www.metaculus.com/notebooks/35180/"}, "post"),
        ({"post": 1, "token": "secret"}, "metaculus check"),
    ],
)
def test_metaculus_validate_refuses_bad_params(params: dict[str, Any], field: str) -> None:
    with pytest.raises(InputError) as caught:
        MetaculusResolver.validate(params)
    assert caught.value.field == field


def test_metaculus_open_question_gives_no_verdict_and_the_community_prediction(
    source: RecordedSource,
) -> None:
    source.route("/api/posts/35172/", fixture("metaculus", "post_open.json"))
    verdict = _check(source, 35172)
    assert (verdict.verdict, verdict.value, verdict.final) == ("none", "open", False)
    assert verdict.probability == pytest.approx(0.42)
    assert verdict.url == f"{source.url}/questions/35172/"
    assert "community prediction 42.0%" in (verdict.excerpt or "")


def test_metaculus_resolved_yes_is_final_yes(source: RecordedSource) -> None:
    source.route("/api/posts/35180/", fixture("metaculus", "post_resolved_yes.json"))
    verdict = _check(source, "https://www.metaculus.com/questions/35180/ai-plus/")
    assert (verdict.verdict, verdict.value, verdict.final) == ("yes", "yes", True)
    assert verdict.probability == pytest.approx(0.91)
    assert "resolved 2025-08-27T09:30:00Z" in (verdict.excerpt or "")


def test_metaculus_resolved_no_without_aggregations_has_no_probability(
    source: RecordedSource,
) -> None:
    source.route("/api/posts/35181/", fixture("metaculus", "post_resolved_no.json"))
    verdict = _check(source, 35181)
    assert (verdict.verdict, verdict.value, verdict.final) == ("no", "no", True)
    assert verdict.probability is None


@pytest.mark.parametrize(
    ("name", "post", "value"),
    [("post_annulled.json", 35182, "annulled"), ("post_ambiguous.json", 35183, "ambiguous")],
)
def test_metaculus_annulled_or_ambiguous_annuls(
    source: RecordedSource, name: str, post: int, value: str
) -> None:
    source.route(f"/api/posts/{post}/", fixture("metaculus", name))
    verdict = _check(source, post)
    assert (verdict.verdict, verdict.value, verdict.final) == ("annul", value, True)


def test_metaculus_hidden_resolution_and_aggregate_give_no_verdict(source: RecordedSource) -> None:
    source.route("/api/posts/35184/", fixture("metaculus", "post_closed_hidden.json"))
    verdict = _check(source, 35184)
    assert (verdict.verdict, verdict.value, verdict.probability) == ("none", "closed", None)


def test_metaculus_group_post_is_a_permanent_error(source: RecordedSource) -> None:
    source.route("/api/posts/35190/", fixture("metaculus", "post_group.json"))
    with pytest.raises(ResolverError) as caught:
        _check(source, 35190)
    assert not caught.value.temporary
    assert "group of questions" in str(caught.value)


def test_metaculus_missing_post_is_a_permanent_error(source: RecordedSource) -> None:
    source.route("/api/posts/99999999/", fixture("metaculus", "not_found.json"), status=404)
    with pytest.raises(ResolverError) as caught:
        _check(source, 99999999)
    assert not caught.value.temporary
    assert str(caught.value) == "Metaculus post 99999999 not found (404: Post not found)"


def test_metaculus_refusal_without_token_says_to_set_one(source: RecordedSource) -> None:
    source.route("/api/posts/35172/", fixture("metaculus", "unauthorized.json"), status=403)
    with pytest.raises(ResolverError) as caught:
        _check(source, 35172)
    assert not caught.value.temporary
    assert TOKEN_ENV in str(caught.value)
    assert "Authentication credentials were not provided." in str(caught.value)


def test_metaculus_token_from_environment_is_sent_to_a_host_configured_for_it(
    source: RecordedSource, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(TOKEN_ENV, "9944b09199c62bcf9418ad846dd0e4bbdfc6ee4b")
    monkeypatch.setenv(TOKEN_HOSTS_ENV, "metaculus.example.org, 127.0.0.1")
    source.route("/api/posts/35172/", fixture("metaculus", "post_open.json"))
    _check(source, 35172)
    sent = source.requests[-1].headers
    assert sent["Authorization"] == "Token 9944b09199c62bcf9418ad846dd0e4bbdfc6ee4b"


def test_metaculus_token_is_not_sent_to_a_base_url_on_another_host(
    source: RecordedSource, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(TOKEN_ENV, "9944b09199c62bcf9418ad846dd0e4bbdfc6ee4b")
    source.route("/api/posts/35172/", fixture("metaculus", "unauthorized.json"), status=403)
    with pytest.raises(ResolverError) as caught:
        _check(source, 35172)
    assert "Authorization" not in source.requests[-1].headers
    assert TOKEN_HOSTS_ENV in str(caught.value)


def test_metaculus_token_is_not_sent_on_a_redirect_to_another_origin(
    source: RecordedSource, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(TOKEN_ENV, "9944b09199c62bcf9418ad846dd0e4bbdfc6ee4b")
    monkeypatch.setenv(TOKEN_HOSTS_ENV, "127.0.0.1")
    with Loopback("127.0.0.2") as elsewhere:
        elsewhere.route("/api/posts/35172/", fixture("metaculus", "post_open.json"))
        source.route(
            "/api/posts/35172/",
            b"",
            status=302,
            headers={"Location": elsewhere.url + "/api/posts/35172/"},
        )
        assert _check(source, 35172).verdict == "none"
        assert "Authorization" in source.requests[-1].headers
        assert "Authorization" not in elsewhere.seen[-1].headers


def test_metaculus_without_token_sends_no_authorization(source: RecordedSource) -> None:
    source.route("/api/posts/35172/", fixture("metaculus", "post_open.json"))
    _check(source, 35172)
    assert "Authorization" not in source.requests[-1].headers


def test_metaculus_server_error_is_temporary(source: RecordedSource) -> None:
    source.route("/api/posts/35172/", b"<h1>Server Error (500)</h1>", status=500)
    with pytest.raises(ResolverError) as caught:
        _check(source, 35172)
    assert caught.value.temporary


def test_metaculus_rate_limit_is_temporary_with_retry_after(source: RecordedSource) -> None:
    body = b'{"detail": "Request was throttled. Expected available in 60 seconds."}'
    source.route("/api/posts/35172/", body, status=429, headers={"Retry-After": "60"})
    with pytest.raises(ResolverError) as caught:
        _check(source, 35172)
    assert caught.value.temporary
    assert caught.value.retry_after == 60


def test_metaculus_malformed_json_is_a_temporary_error(source: RecordedSource) -> None:
    source.route("/api/posts/35172/", b'{"id": 35172, "question": ', status=200)
    with pytest.raises(ResolverError) as caught:
        _check(source, 35172)
    assert caught.value.temporary  # a maintenance page, a cut answer: they pass
    assert "invalid JSON" in str(caught.value)


def test_metaculus_unknown_resolution_is_a_permanent_error(source: RecordedSource) -> None:
    body = fixture("metaculus", "post_resolved_no.json").replace(
        b'"resolution": "no"', b'"resolution": "42.5"'
    )
    source.route("/api/posts/35181/", body)
    with pytest.raises(ResolverError) as caught:
        _check(source, 35181)
    assert not caught.value.temporary
    assert "'42.5'" in str(caught.value)
