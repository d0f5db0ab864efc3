"""The built-in page, json, feed and deadline kinds against a real loopback server, and spec
validation through the registry."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest

from predictions.errors import InputError
from resolvers import parse_check, validate_check
from resolvers.base import ForecastInfo, ResolverError, Verdict
from resolvers.deadline import DeadlineResolver
from resolvers.feed import FeedResolver
from resolvers.http import HttpClient, HttpSettings
from resolvers.json_api import JsonResolver
from resolvers.page import PageResolver
from tests.resolvers.loopback import Loopback

FORECAST = ForecastInfo(
    id=1,
    title="China issues a national standard on AI loss-of-control risk by 2027",
    criteria="Resolves YES if ...",
    due=datetime(2027, 12, 31, 23, 59, 59),
    created_at=datetime(2025, 3, 1, 12, 0),
)
NOW = datetime(2025, 6, 1)

HTML = """<!DOCTYPE html>
<html lang="zh"><head><meta charset="utf-8"><title>国家标准公告</title>
<style>p { color: red } /* 失控 in a style does not count */</style>
<script>var hidden = "loss of control";</script></head>
<body><h1>全国信息安全标准化技术委员会</h1>
<p>关于发布《人工智能安全治理框架》配套标准的公告：人工智能失
控风险评估要求（征求意见稿）。</p>
<p>The committee published   Requirements for
AI Risk &amp; Safety.</p></body></html>"""

RSS = """<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0"><channel>
  <title>国家网信办</title><link>https://www.cac.gov.cn/</link>
  <description>新闻发布</description>
  <item>
    <title>生成式人工智能服务备案公告（2025年第一批）</title>
    <link>https://www.cac.gov.cn/2025-04/08/c_1.htm</link>
    <guid isPermaLink="true">https://www.cac.gov.cn/2025-04/08/c_1.htm</guid>
    <pubDate>Tue, 08 Apr 2025 09:00:00 +0800</pubDate>
    <description><![CDATA[<p>截至目前，共有<b>346款</b>生成式人工智能服务完成备案。</p>]]></description>
  </item>
  <item>
    <title>生成式人工智能服务备案公告（2024年）</title>
    <link>https://www.cac.gov.cn/2025-01/08/c_0.htm</link>
    <pubDate>Wed, 08 Jan 2025 09:00:00 +0800</pubDate>
    <description>生成式人工智能服务备案</description>
  </item>
</channel></rss>"""

ATOM = """<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom">
  <title>AI policy tracker</title>
  <id>urn:uuid:60a76c80-d399-11d9-b93C-0003939e0af6</id>
  <updated>2025-05-02T10:00:00Z</updated>
  <entry>
    <title>Older: a draft on loss of control</title>
    <id>urn:uuid:1</id>
    <link href="https://example.org/old"/>
    <published>2025-02-01T08:00:00Z</published>
    <updated>2025-02-01T08:00:00Z</updated>
    <summary>Draft mentions loss of control.</summary>
  </entry>
  <entry>
    <title>TC260 publishes AI loss-of-control standard</title>
    <id>urn:uuid:2</id>
    <link rel="alternate" href="https://example.org/tc260"/>
    <updated>2025-05-02T10:00:00.25+01:00</updated>
    <content type="html">&lt;p&gt;The standard covers &lt;em&gt;loss of control&lt;/em&gt; risk.&lt;/p&gt;</content>
  </entry>
</feed>"""


@pytest.fixture
def web() -> Iterator[Loopback]:
    with Loopback() as server:
        yield server


@pytest.fixture
def client() -> Iterator[HttpClient]:
    with HttpClient(HttpSettings(timeout=5, allowed_networks=("127.0.0.0/8",))) as c:
        yield c


def _run(kind: Any, client: HttpClient, **params: Any) -> Verdict:
    spec = validate_check({"kind": kind.name, **params})
    verdict = kind().check(FORECAST, spec["params"], client.fetcher(), NOW)
    # what a 304 carries over (the sweep) holds for every answer the kind reads
    assert verdict.final == (verdict.verdict in kind.final_verdicts)
    return verdict


# --- page ---------------------------------------------------------------------------------------


def test_page_matches_cjk_across_a_line_break(web: Loopback, client: HttpClient) -> None:
    web.route("/n", HTML)
    verdict = _run(PageResolver, client, url=web.url + "/n", contains=["失控", "loss of control"])
    assert (verdict.verdict, verdict.value, verdict.final) == ("yes", "失控", False)
    assert verdict.excerpt is not None and "人工智能失 控风险评估要求" in verdict.excerpt
    assert verdict.url == web.url + "/n"


def test_page_ignores_scripts_and_styles(web: Loopback, client: HttpClient) -> None:
    web.route("/n", HTML.replace("失\n控", "安全"))
    assert _run(PageResolver, client, url=web.url + "/n", contains="loss of control").verdict == (
        "none"
    )


def test_page_folds_case_whitespace_and_entities(web: Loopback, client: HttpClient) -> None:
    web.route("/n", HTML)
    verdict = _run(
        PageResolver, client, url=web.url + "/n", contains="requirements for ai risk & safety"
    )
    assert verdict.verdict == "yes"


def test_page_match_all_needs_every_term(web: Loopback, client: HttpClient) -> None:
    web.route("/n", HTML)
    url = web.url + "/n"
    assert _run(
        PageResolver, client, url=url, contains=["失控", "nowhere"], match="all"
    ).verdict == ("none")
    both = _run(PageResolver, client, url=url, contains=["失控", "committee"], match="all")
    assert both.verdict == "yes" and both.value == "失控; committee"


def test_page_regex(web: Loopback, client: HttpClient) -> None:
    web.route("/n", HTML)
    verdict = _run(PageResolver, client, url=web.url + "/n", regex=r"征求意见稿|正式稿")
    assert (verdict.verdict, verdict.value) == ("yes", "征求意见稿")


def test_page_full_width_letters_match_ascii(web: Loopback, client: HttpClient) -> None:
    web.route("/t", "国家ＡＩ标准发布", content_type="text/plain; charset=utf-8")
    assert _run(PageResolver, client, url=web.url + "/t", contains="AI标准").verdict == "yes"


def test_page_excerpt_is_at_most_500_characters(web: Loopback, client: HttpClient) -> None:
    web.route("/long", "<p>" + "前言 " * 2000 + "失控" + " 后记" * 2000 + "</p>")
    verdict = _run(PageResolver, client, url=web.url + "/long", contains="失控")
    assert verdict.excerpt is not None and len(verdict.excerpt) <= 500 and "失控" in verdict.excerpt


def test_page_refuses_binary_content(web: Loopback, client: HttpClient) -> None:
    web.route("/pdf", b"%PDF-1.7", content_type="application/pdf")
    with pytest.raises(ResolverError, match="not an HTML or text page"):
        _run(PageResolver, client, url=web.url + "/pdf", contains="x")


# --- json ---------------------------------------------------------------------------------------

API = '{"data": {"clusters": 3, "name": "AI Plus", "ready": true, "items": [{"price": 9.5}], "odd key": null}}'


@pytest.mark.parametrize(
    ("path", "op", "threshold", "verdict"),
    [
        ("data.clusters", ">=", "2", "yes"),
        ("data.clusters", ">", 3, "no"),
        ("$.data.items[0].price", "<", "10", "yes"),
        ("data.items[-1].price", "<=", 9, "no"),
        ("data.name", "==", "AI Plus", "yes"),
        ("data.ready", "==", "true", "yes"),
        ("data.name", "!=", "AI Plus", "no"),
        ("data.clusters", "exists", None, "yes"),
        ('data["odd key"]', "exists", None, "no"),
        ("data.missing", "exists", None, "no"),
        ("data.missing", ">", 1, "none"),
    ],
)
def test_json_compares_the_value_at_the_path(
    web: Loopback, client: HttpClient, path: str, op: str, threshold: Any, verdict: str
) -> None:
    web.route("/api", API, content_type="application/json")
    params: dict[str, Any] = {"url": web.url + "/api", "path": path, "op": op}
    if threshold is not None:
        params["threshold"] = threshold
    result = _run(JsonResolver, client, **params)
    assert result.verdict == verdict
    assert result.final is (verdict == "yes")


def test_json_value_and_excerpt(web: Loopback, client: HttpClient) -> None:
    web.route("/api", API, content_type="application/json")
    result = _run(JsonResolver, client, url=web.url + "/api", path="data.clusters", threshold=2)
    assert (result.value, result.excerpt) == ("3", "data.clusters = 3 (>= 2)")


def test_json_invalid_answer_is_an_error(web: Loopback, client: HttpClient) -> None:
    web.route("/api", "<html>down for maintenance</html>", content_type="text/html")
    with pytest.raises(ResolverError, match="invalid JSON") as caught:
        _run(JsonResolver, client, url=web.url + "/api", path="a", op="exists")
    assert caught.value.temporary


# --- feed ---------------------------------------------------------------------------------------


def test_feed_rss_item_after_creation_matches(web: Loopback, client: HttpClient) -> None:
    web.route("/rss.xml", RSS, content_type="application/rss+xml; charset=utf-8")
    verdict = _run(
        FeedResolver,
        client,
        url=web.url + "/rss.xml",
        contains=["生成式人工智能", "备案"],
        match="all",
    )
    assert verdict.verdict == "yes"
    assert verdict.value == "生成式人工智能服务备案公告(2025年第一批)"
    assert verdict.url == "https://www.cac.gov.cn/2025-04/08/c_1.htm"
    assert verdict.excerpt is not None and verdict.excerpt.startswith("[2025-04-08T01:00:00Z]")


def test_feed_items_before_the_forecast_do_not_count(web: Loopback, client: HttpClient) -> None:
    web.route("/rss.xml", RSS, content_type="application/rss+xml")
    assert _run(FeedResolver, client, url=web.url + "/rss.xml", contains="2024年").verdict == "none"


def test_feed_atom_uses_updated_when_no_published(web: Loopback, client: HttpClient) -> None:
    web.route("/atom.xml", ATOM, content_type="application/atom+xml")
    verdict = _run(FeedResolver, client, url=web.url + "/atom.xml", contains="loss of control")
    assert verdict.verdict == "yes" and verdict.url == "https://example.org/tc260"
    assert verdict.excerpt is not None and "[2025-05-02T09:00:00Z]" in verdict.excerpt


def test_feed_not_a_feed_is_an_error(web: Loopback, client: HttpClient) -> None:
    web.route("/rss.xml", "<html><body>Not found</body></html>", content_type="text/html")
    with pytest.raises(ResolverError, match="not an RSS or Atom feed"):
        _run(FeedResolver, client, url=web.url + "/rss.xml", contains="x")


# --- deadline -----------------------------------------------------------------------------------


def test_deadline_none_before_due_no_after(client: HttpClient) -> None:
    resolver = DeadlineResolver()
    assert resolver.check(FORECAST, {}, client.fetcher(), NOW).verdict == "none"
    after = resolver.check(FORECAST, {}, client.fetcher(), datetime(2028, 1, 2))
    assert (after.verdict, after.final) == ("no", False)


# --- validation ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ({"kind": "nope", "url": "https://x.org"}, "check kind"),
        ({"url": "https://x.org"}, "check kind"),
        ({"kind": "page", "contains": "x"}, "page check url"),
        ({"kind": "page", "url": "ftp://x.org/a", "contains": "x"}, "page check url"),
        ({"kind": "page", "url": "javascript:alert(1)", "contains": "x"}, "page check url"),
        ({"kind": "page", "url": "https://user:pw@x.org/", "contains": "x"}, "page check url"),
        ({"kind": "page", "url": "https://x.org"}, "page check contains"),
        ({"kind": "page", "url": "https://x.org", "regex": "(("}, "page check regex"),
        ({"kind": "page", "url": "https://x.org", "regex": "a*"}, "page check regex"),
        (
            {"kind": "page", "url": "https://x.org", "contains": "x", "match": "most"},
            "page check match",
        ),
        (
            {"kind": "page", "url": "https://x.org", "contains": "x", "colour": 1},
            "page check",
        ),
        (
            {"kind": "page", "url": "https://x.org", "contains": "x", "mode": "yolo"},
            "page check mode",
        ),
        (
            {"kind": "page", "url": "https://x.org", "contains": "x", "otherwise": "yes"},
            "page check otherwise",
        ),
        ({"kind": "json", "url": "https://x.org", "path": "a..b"}, "json check path"),
        ({"kind": "json", "url": "https://x.org", "path": "a[x]"}, "json check path"),
        ({"kind": "json", "url": "https://x.org"}, "json check path"),
        ({"kind": "json", "url": "https://x.org", "path": "a", "op": "~"}, "json check op"),
        ({"kind": "json", "url": "https://x.org", "path": "a", "op": ">"}, "json check threshold"),
        (
            {"kind": "json", "url": "https://x.org", "path": "a", "op": ">", "threshold": "lots"},
            "json check threshold",
        ),
        ({"kind": "feed", "url": "file:///etc/passwd", "contains": "x"}, "feed check url"),
        (
            {"kind": "feed", "url": "https://x.org", "regex": "ai", "match": "all"},
            "feed check match",
        ),
        (
            {"kind": "page", "url": "https://x.org", "regex": "ai", "match": "all"},
            "page check match",
        ),
        (
            {"kind": "feed", "url": "https://x.org", "colour": 1, "contains": "x"},
            "feed check",
        ),
        ({"kind": "deadline", "url": "https://x.org"}, "deadline check"),
    ],
)
def test_validate_check_refuses_bad_specs(raw: dict[str, Any], field: str) -> None:
    with pytest.raises(InputError) as caught:
        validate_check(raw)
    assert caught.value.field == field


def test_validate_check_normalises_and_keeps_mode_and_otherwise() -> None:
    spec = validate_check(
        parse_check(
            "page:url=https://x.org/a?b=1,2,contains=AI,contains=人工智能,mode=auto,otherwise=no"
        )
    )
    assert spec == {
        "kind": "page",
        "params": {
            "url": "https://x.org/a?b=1,2",
            "contains": ["AI", "人工智能"],
            "match": "any",
            "otherwise": "no",
        },
        "mode": "auto",
    }
    assert validate_check({"kind": "json", "params": {"url": "https://x.org", "path": "a.b"}}) == {
        "kind": "json",
        "params": {"url": "https://x.org", "path": "a.b", "op": "exists"},
        "mode": "propose",
    }


@pytest.mark.parametrize("text", ["", "page", "{not json", "[1, 2]", "page:url", "Page Kind:x=1"])
def test_parse_check_refuses_malformed_text(text: str) -> None:
    if text == "page":
        assert parse_check(text) == {"kind": "page"}
        return
    with pytest.raises(InputError):
        parse_check(text)


@pytest.mark.parametrize(
    "raw",
    [
        {"kind": "page", "url": "https://x.org", "contains": "x"},
        {"kind": "feed", "url": "https://x.org", "contains": "x"},
        {"kind": "json", "url": "https://x.org", "path": "a"},
        {"kind": "wikipedia", "title": "Kyiv", "contains": "x"},
        {"kind": "manifold", "id": "abc"},
        {"kind": "metaculus", "id": 1},
        {"kind": "polymarket", "slug": "x"},
    ],
    ids=lambda raw: raw["kind"],
)
def test_validate_check_words_an_unknown_param_alike_in_every_kind(raw: dict[str, Any]) -> None:
    """``kind check: got 'colour', expected one of the params ...``: the unknown name is the value,
    whichever kind it was given to."""
    with pytest.raises(InputError) as caught:
        validate_check({**raw, "colour": "red"})
    kind = raw["kind"]
    assert caught.value.field == f"{kind} check"
    assert caught.value.value == "colour"
    assert caught.value.expected.startswith("one of the params ")
    assert str(caught.value).startswith(f"{kind} check: got 'colour', expected one of the params")
