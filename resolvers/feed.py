"""The ``feed`` kind: an RSS 2.0 or Atom feed; YES when an item published after the forecast was
registered matches the terms.

Params:

- ``url`` (required): the feed's http(s) URL;
- ``contains``: a term or list of terms (``match = "any"`` by default, or ``"all"``), and/or
  ``regex``; matched, folded as in the ``page`` kind, against each item's title, summary and
  content (HTML reduced to text).

An item counts only if its date (RSS ``pubDate``; Atom ``published``, else ``updated``) is after
the forecast's ``created_at``: news from before the question was asked does not resolve it. Items
without a date are skipped. The newest matching item wins. A document that is neither RSS nor Atom
is an error (temporary: sites serve error pages in place of feeds).

Worked example. A forecast registered 2025-03-01 with
``--check 'feed:url=https://www.cac.gov.cn/rss.xml,contains=生成式人工智能,contains=备案'`` and
``match=all``, and an RSS item::

    <item><title>生成式人工智能服务备案公告</title><link>https://www.cac.gov.cn/a/1.htm</link>
      <pubDate>Tue, 08 Apr 2025 09:00:00 +0800</pubDate></item>

give ``Verdict("yes", value="生成式人工智能服务备案公告", url="https://www.cac.gov.cn/a/1.htm",
excerpt="生成式人工智能服务备案公告 …")``; the same item dated 2025-02-20 gives ``none``.
"""

from __future__ import annotations

import calendar
from datetime import UTC, datetime
from typing import Any

from resolvers.base import ForecastInfo, ResolverError, Verdict, excerpt_around
from resolvers.http import Fetcher
from resolvers.text import TermMatch, TextResolver, find_matches, html_to_text, normalize

__all__ = ["FeedResolver"]


def _item_time(entry: Any) -> datetime | None:
    for key in ("published_parsed", "updated_parsed", "created_parsed"):
        parsed = entry.get(key)
        if parsed:
            return datetime.fromtimestamp(calendar.timegm(parsed), UTC).replace(tzinfo=None)
    return None


def _item_text(entry: Any) -> str:
    pieces = [entry.get("title", "")]
    summary = entry.get("summary")
    if summary:
        pieces.append(summary)
    for content in entry.get("content", []) or []:
        value = content.get("value")
        if value and value != summary:
            pieces.append(value)
    return normalize(" ".join(html_to_text(p) for p in pieces if p))


class FeedResolver(TextResolver):
    """YES when an RSS/Atom item published after the forecast's creation matches."""

    name = "feed"
    version = "1"

    def check(
        self, forecast: ForecastInfo, params: dict[str, Any], http: Fetcher, now: datetime
    ) -> Verdict:
        """Fetch and parse the feed; look at items newer than the forecast."""
        import feedparser

        answer = http.get(
            params["url"],
            headers={"Accept": "application/rss+xml, application/atom+xml, application/xml;q=0.9"},
        )
        parsed = feedparser.parse(answer.body, response_headers=dict(answer.headers))
        if not parsed.get("version"):
            reason = parsed.get("bozo_exception")
            raise ResolverError(
                f"{answer.url} is not an RSS or Atom feed"
                + (f" ({str(reason)[:120]})" if reason else ""),
                temporary=True,
            )
        best: tuple[datetime, Any, str, TermMatch] | None = None
        for entry in parsed.entries:
            when = _item_time(entry)
            if when is None or when <= forecast.created_at:
                continue
            text = _item_text(entry)
            found = find_matches(text, params)
            if found is not None and (best is None or when > best[0]):
                best = (when, entry, text, found[0])
        if best is None:
            return Verdict("none", url=answer.url)
        when, entry, text, hit = best
        title = normalize(html_to_text(entry.get("title", ""))) or hit.term
        return Verdict(
            "yes",
            value=title[:300],
            excerpt=f"[{when.isoformat()}Z] " + excerpt_around(text, hit.start, hit.end, limit=470),
            url=entry.get("link") or answer.url,
        )
