"""The ``page`` kind: fetch a web page (HTML or text); YES when its text matches.

Params:

- ``url`` (required): an http(s) URL;
- ``contains``: a term or a list of terms; ``match = "any"`` (default) or ``"all"`` of them;
- ``regex``: a regular expression (case-insensitive) that must also match;
  at least one of ``contains`` and ``regex``.

Text is taken from HTML (scripts and styles dropped), then folded: NFKC (full-width ``ＡＩ`` reads
``AI``), case-insensitive, any run of whitespace equal to one space, and a line break inside CJK
text ignored. A match gives ``yes`` (never final: a person confirms a text match, or it resolves
only with a final source); no match gives ``none``. Absence only becomes NO with
``otherwise = "no"``, at due + grace.

Worked example. The spec::

    tracker add "China issues a national standard on AI loss-of-control risk by 2027" -p 35% \\
        --due 2027-12-31 --criteria "..." \\
        --check 'page:url=https://www.sac.gov.cn/news,contains=失控,contains=loss of control'

and a page containing ``<p>关于人工智能失\\n控风险的国家标准</p>`` give::

    Verdict(verdict="yes", value="失控", excerpt="关于人工智能失 控风险的国家标准",
            url="https://www.sac.gov.cn/news")

which the runner records as evidence and turns into a pending YES proposal for ``tracker review``.

On a numeric, date or choice question the ``regex`` needs a capture group: its text at the first
match is the outcome (a number, thousands separators aside; a date such as ``2028-06-30``; an
option's name), proposed for review. ``regex='([0-9,]+) provinces'`` on a page saying "hubs in
12 provinces" proposes 12.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from predictions.questions import KINDS
from resolvers.base import ForecastInfo, ResolverError, Verdict, excerpt_around
from resolvers.http import Fetched, Fetcher
from resolvers.text import TextResolver, find_matches, html_to_text, normalize, outcome_at

__all__ = ["PageResolver", "page_text"]

_TEXT_TYPES = ("text/", "application/xhtml", "application/xml", "application/json")


def page_text(page: Fetched) -> str:
    """The folded text of a fetched page: HTML reduced to its visible text, other text as is."""
    kind = page.content_type
    if kind and not kind.startswith(_TEXT_TYPES) and not kind.endswith(("+xml", "+json")):
        raise ResolverError(f"{page.url} is {kind}, not an HTML or text page", temporary=False)
    head = page.body[:512].lstrip().lower()
    if "html" in kind or head.startswith((b"<!doctype html", b"<html")):
        return normalize(html_to_text(page.text))
    return normalize(page.text)


class PageResolver(TextResolver):
    """YES when a page's text contains the terms (any or all) and/or matches the regex."""

    name = "page"
    version = "1"
    question_kinds = frozenset(KINDS)

    def check(
        self, forecast: ForecastInfo, params: dict[str, Any], http: Fetcher, now: datetime
    ) -> Verdict:
        """Fetch the page and look for the terms."""
        page = http.get(params["url"])
        text = page_text(page)
        found = find_matches(text, params)
        if found is None:
            return Verdict("none", url=page.url)
        if forecast.question is not None:
            return outcome_at(forecast.question, text, params, kind=self.name, url=page.url)
        return Verdict(
            "yes",
            value="; ".join(dict.fromkeys(m.term for m in found)),
            excerpt=excerpt_around(text, found[0].start, found[0].end),
            url=page.url,
        )
