"""The ``wikipedia`` kind against a loopback server answering with recorded MediaWiki payloads."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest

from predictions.errors import InputError
from resolvers.base import ForecastInfo, ResolverError, Verdict
from resolvers.wikipedia import WikipediaResolver
from tests.resolvers.recorded_sources import RecordedSource, fixture, serve

NOW = datetime(2025, 11, 23, 12, 0)
API = "/w/api.php"
FORECAST = ForecastInfo(
    id=1,
    title="China releases an 'AI Plus' action plan by 2026",
    criteria="Resolves YES if the Wikipedia article on the 15th Five-Year Plan reports it.",
    due=datetime(2025, 12, 31, 23, 59),
    created_at=datetime(2025, 3, 5),
)


@pytest.fixture
def source() -> Iterator[RecordedSource]:
    yield from serve()


def _check(source: RecordedSource, **params: Any) -> Verdict:
    spec = WikipediaResolver.validate({**params, "api": source.url + API})
    verdict = WikipediaResolver().check(FORECAST, spec, source.client().fetcher(), NOW)
    # what a 304 carries over (the sweep) holds for every answer the kind reads
    assert verdict.final == (verdict.verdict in WikipediaResolver.final_verdicts)
    return verdict


def test_wikipedia_validate_normalises_terms_and_site() -> None:
    assert WikipediaResolver.validate({"title": "15th Five-Year Plan", "contains": "AI Plus"}) == {
        "title": "15th Five-Year Plan",
        "contains": ["AI Plus"],
        "match": "any",
        "api": "https://en.wikipedia.org/w/api.php",
    }
    spec = WikipediaResolver.validate(
        {"title": "第十五个五年规划", "regex": r"人工智能\+", "lang": "zh", "match": "all"}
    )
    assert spec == {
        "title": "第十五个五年规划",
        "regex": r"人工智能\+",
        "match": "all",
        "api": "https://zh.wikipedia.org/w/api.php",
    }


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"contains": "x"}, "title"),
        ({"title": "A|B", "contains": "x"}, "title"),
        ({"title": "Earth"}, "wikipedia check"),
        ({"title": "Earth", "contains": []}, "contains"),
        ({"title": "Earth", "contains": ["ok", "  "]}, "contains"),
        ({"title": "Earth", "regex": "(unclosed"}, "regex"),
        ({"title": "Earth", "contains": "x", "match": "most"}, "match"),
        ({"title": "Earth", "contains": "x", "lang": "English"}, "lang"),
        ({"title": "Earth", "contains": "x", "api": "ftp://en.wikipedia.org/w/api.php"}, "api"),
        (
            {"title": "Earth", "contains": "x", "lang": "en", "api": "https://w.example/api.php"},
            "wikipedia check",
        ),
        ({"title": "Earth", "contains": "x", "url": "https://en.wikipedia.org"}, "wikipedia check"),
    ],
)
def test_wikipedia_validate_refuses_bad_params(params: dict[str, Any], field: str) -> None:
    with pytest.raises(InputError) as caught:
        WikipediaResolver.validate(params)
    assert caught.value.field == field


def test_wikipedia_asks_for_the_current_revision_in_formatversion_2(source: RecordedSource) -> None:
    source.route(API, fixture("wikipedia", "page_current.json"))
    _check(source, title="15th Five-Year Plan", contains="AI Plus")
    query = source.requests[-1].query
    assert query["action"] == ["query"]
    assert query["prop"] == ["revisions"]
    assert query["titles"] == ["15th Five-Year Plan"]
    assert query["rvprop"] == ["content|ids|timestamp"]
    assert query["rvslots"] == ["main"]
    assert query["formatversion"] == ["2"]


def test_wikipedia_terms_found_propose_yes_with_revision_receipt(source: RecordedSource) -> None:
    source.route(API, fixture("wikipedia", "page_current.json"))
    verdict = _check(
        source, title="15th Five-Year Plan", contains=["ai plus", "人工智能+"], match="all"
    )
    assert verdict.verdict == "yes"
    assert not verdict.final
    assert verdict.value == "rev 1268540127 (2025-11-20T09:14:52Z) matched: ai plus, 人工智能+"
    excerpt = verdict.excerpt or ""
    assert excerpt.startswith("[rev 1268540127, 2025-11-20T09:14:52Z] ")
    # markup reduced to text: '''AI Plus''' and [[...|State Council]]
    assert "State Council released the AI Plus action plan (人工智能+)" in excerpt
    assert len(excerpt) <= 500
    assert verdict.url == (f"{source.url}/w/index.php?title=15th_Five-Year_Plan&oldid=1268540127")
    assert verdict.probability is None


def test_wikipedia_match_all_needs_every_term(source: RecordedSource) -> None:
    source.route(API, fixture("wikipedia", "page_current.json"))
    verdict = _check(
        source, title="15th Five-Year Plan", contains=["AI Plus", "loss of control"], match="all"
    )
    assert verdict.verdict == "none"
    assert verdict.value == "rev 1268540127 (2025-11-20T09:14:52Z) not found: loss of control"
    assert (verdict.excerpt or "").startswith("[rev 1268540127, 2025-11-20T09:14:52Z] ")


def test_wikipedia_match_any_needs_one_term(source: RecordedSource) -> None:
    source.route(API, fixture("wikipedia", "page_current.json"))
    verdict = _check(source, title="15th Five-Year Plan", contains=["AI Plus", "loss of control"])
    assert verdict.verdict == "yes"
    assert verdict.value == "rev 1268540127 (2025-11-20T09:14:52Z) matched: AI Plus"


def test_wikipedia_regex_matches_case_insensitively(source: RecordedSource) -> None:
    source.route(API, fixture("wikipedia", "page_current.json"))
    verdict = _check(source, title="15th Five-Year Plan", regex=r"released the ai \w+ action plan")
    assert verdict.verdict == "yes"
    assert verdict.value == (
        "rev 1268540127 (2025-11-20T09:14:52Z) matched: released the AI Plus action plan"
    )
    missed = _check(source, title="15th Five-Year Plan", regex=r"national standard")
    assert missed.verdict == "none"
    assert "regex 'national standard' not found" in (missed.value or "")


def test_wikipedia_full_width_and_spaced_terms_match(source: RecordedSource) -> None:
    source.route(API, fixture("wikipedia", "page_current.json"))
    verdict = _check(source, title="15th Five-Year Plan", contains="ＡＩ  plus\n action")
    assert verdict.verdict == "yes"


def test_wikipedia_text_in_comments_does_not_match(source: RecordedSource) -> None:
    source.route(API, fixture("wikipedia", "page_current.json"))
    verdict = _check(source, title="15th Five-Year Plan", contains="targets table")
    assert verdict.verdict == "none"


def test_wikipedia_normalised_title_reads_the_canonical_page(source: RecordedSource) -> None:
    source.route(API, fixture("wikipedia", "page_normalized.json"))
    verdict = _check(source, title="15th five-year plan", contains="AI Plus")
    assert verdict.verdict == "yes"
    assert "title=15th_Five-Year_Plan" in (verdict.url or "")


def test_wikipedia_missing_page_gives_no_verdict(source: RecordedSource) -> None:
    source.route(API, fixture("wikipedia", "page_missing.json"))
    verdict = _check(source, title="16th Five-Year Plan", contains="AI")
    assert (verdict.verdict, verdict.value, verdict.final) == ("none", "missing", False)
    assert (
        verdict.excerpt
        == "No page titled '16th Five-Year Plan' on " + source.url.split("//")[1] + " (yet)."
    )


def test_wikipedia_ratelimited_error_is_temporary(source: RecordedSource) -> None:
    source.route(
        API,
        fixture("wikipedia", "error_ratelimited.json"),
        headers={"MediaWiki-API-Error": "ratelimited", "Retry-After": "90"},
    )
    with pytest.raises(ResolverError) as caught:
        _check(source, title="15th Five-Year Plan", contains="AI Plus")
    assert caught.value.temporary
    assert caught.value.retry_after == 90
    assert str(caught.value).startswith(
        "Wikipedia page '15th Five-Year Plan': MediaWiki API error ratelimited: As an anti-abuse"
    )


def test_wikipedia_other_api_error_is_permanent(source: RecordedSource) -> None:
    source.route(
        API,
        fixture("wikipedia", "error_badvalue.json"),
        headers={"MediaWiki-API-Error": "badvalue"},
    )
    with pytest.raises(ResolverError) as caught:
        _check(source, title="15th Five-Year Plan", contains="AI Plus")
    assert not caught.value.temporary
    assert "MediaWiki API error badvalue" in str(caught.value)


def test_wikipedia_server_error_is_temporary(source: RecordedSource) -> None:
    source.route(API, b"upstream connect error", status=503, content_type="text/plain")
    with pytest.raises(ResolverError) as caught:
        _check(source, title="15th Five-Year Plan", contains="AI Plus")
    assert caught.value.temporary


def test_wikipedia_not_found_api_endpoint_is_permanent(source: RecordedSource) -> None:
    with pytest.raises(ResolverError) as caught:
        _check(source, title="15th Five-Year Plan", contains="AI Plus")
    assert not caught.value.temporary


def test_wikipedia_malformed_json_is_a_temporary_error(source: RecordedSource) -> None:
    source.route(API, b"<!DOCTYPE html><title>Wikimedia Error</title>", content_type="text/html")
    with pytest.raises(ResolverError) as caught:
        _check(source, title="15th Five-Year Plan", contains="AI Plus")
    assert caught.value.temporary  # a maintenance page, a cut answer: they pass
    assert "invalid JSON" in str(caught.value)


def test_wikipedia_legacy_format_answer_is_a_permanent_error(source: RecordedSource) -> None:
    source.route(API, b'{"batchcomplete": "", "query": {"pages": {"9228": {"pageid": 9228}}}}')
    with pytest.raises(ResolverError) as caught:
        _check(source, title="Earth", contains="planet")
    assert not caught.value.temporary
    assert "no query.pages list" in str(caught.value)
