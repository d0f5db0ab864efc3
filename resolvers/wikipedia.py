"""``wikipedia``: YES when a Wikipedia page's current text matches the terms (a text match).

Reads the current revision through the MediaWiki Action API::

    GET https://<lang>.wikipedia.org/w/api.php?action=query&prop=revisions&titles=<title>
        &rvprop=content|ids|timestamp&rvslots=main&redirects=1&format=json&formatversion=2

and reads ``query.pages[0].revisions[0]``: ``revid``, ``timestamp`` and ``slots.main.content``
(wikitext). Before matching, link and emphasis markup is reduced to its text (``[[State
Council of the People's Republic of China|State Council]]`` -> ``State Council``, ``'''AI
Plus'''`` -> ``AI Plus``) and comments are dropped; templates and references stay as written.
Terms match as in the ``page`` kind (:mod:`resolvers.text`): NFKC-normalised, case- and
whitespace-folded, so CJK and full-width terms work; ``regex`` is searched case-insensitively in
the same text.

Verdicts (never final: a page saying something is evidence for a person to confirm):

- any term of ``contains`` found (every term, with ``match = "all"``) and ``regex`` found when
  given -> ``yes``; the value names the revision and the matched terms, the excerpt shows the
  text around the first match, prefixed with the revision id and time;
- otherwise ``none`` (the runner may propose NO at due + grace when the spec says
  ``otherwise = "no"``); a page that does not exist (yet) is ``none`` with value ``missing``;
- an API error payload (HTTP 200 with ``{"error": {"code", "info"}}``) is a temporary error for
  ``ratelimited``, ``maxlag``, ``readonly`` and internal errors, permanent for anything else.

On a numeric, date or choice question the ``regex`` needs a capture group: when the terms match,
the group's text is the outcome (as for ``page``: :func:`resolvers.text.outcome_at`), the value of
the ``yes`` verdict; the revision stays in the excerpt's prefix.

The receipt's URL is the permanent link to the revision read (``index.php?title=...&oldid=...``).

Worked example::

    [[forecast.check]]
    kind = "wikipedia"
    title = "15th Five-Year Plan"
    contains = ["AI Plus", "人工智能+"]

fetches the page; revision 1268540127 of 2025-11-20T09:14:52Z reads "...released the '''AI Plus'''
action plan (人工智能+) in August 2025...", so the check returns ``Verdict("yes", value="rev
1268540127 (2025-11-20T09:14:52Z) matched: AI Plus, 人工智能+", excerpt="[rev 1268540127,
2025-11-20T09:14:52Z] …released the AI Plus action plan (人工智能+)…", url=".../w/index.php?
title=15th_Five-Year_Plan&oldid=1268540127")``, which waits in ``tracker review``. Params:
``title``; ``contains`` (a term or a list) and/or ``regex``; ``match`` (``any``, the default as
for ``page``, or ``all``); ``lang`` (default ``en``) or ``api`` (the full ``api.php`` URL of any MediaWiki site).
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import urlencode, urlsplit

from predictions.errors import InputError
from predictions.questions import KINDS
from resolvers.base import (
    EXCERPT_LIMIT,
    ForecastInfo,
    Resolver,
    ResolverError,
    Verdict,
    excerpt_around,
    json_object,
    refuse_unknown_params,
    require_url,
)
from resolvers.text import (
    find_matches,
    match_terms,
    normalize,
    outcome_at,
    parse_how,
    parse_regex,
    parse_terms,
    regex_match,
)

if TYPE_CHECKING:
    from resolvers.http import Fetched, Fetcher

__all__ = ["WikipediaResolver"]

_PARAMS = ("title", "contains", "regex", "match", "lang", "api")
_LANG = re.compile(r"[a-z][a-z0-9\-]{1,15}")
# Error codes after which asking again later may succeed (mediawiki.org "API:Etiquette",
# "API:Errors and warnings"); internal_api_error_<Exception> covers server faults.
_TEMPORARY_CODES = frozenset({"ratelimited", "maxlag", "readonly", "internal_api_error"})
_COMMENT = re.compile(r"<!--.*?(?:-->|$)", re.S)
_PIPED_LINK = re.compile(r"\[\[(?:[^\[\]|]*)\|([^\[\]]*)\]\]")
_LINK = re.compile(r"\[\[([^\[\]|]*)\]\]")
_EMPHASIS = re.compile(r"'{2,}")


class WikipediaResolver(Resolver):
    """YES when the current revision of a Wikipedia (MediaWiki) page matches the terms."""

    name: ClassVar[str] = "wikipedia"
    version: ClassVar[str] = "1"
    question_kinds: ClassVar[frozenset[str]] = frozenset(KINDS)

    @classmethod
    def validate(cls, params: dict[str, Any]) -> dict[str, Any]:
        """``title``; ``contains`` and/or ``regex``; ``match``; ``lang`` or ``api``."""
        refuse_unknown_params("wikipedia", params, _PARAMS)
        title = params.get("title")
        if not isinstance(title, str) or not title.strip() or len(title) > 255:
            raise InputError("title", title, "the title of a page (1 to 255 characters)")
        if any(c in title for c in "#<>[]{}|"):
            raise InputError("title", title, "a page title without # < > [ ] { } |")
        out: dict[str, Any] = {"title": title.strip()}
        if params.get("contains") is not None:
            out["contains"] = parse_terms(params["contains"])
        if params.get("regex") is not None:
            out["regex"] = parse_regex(params["regex"])
        if "contains" not in out and "regex" not in out:
            raise InputError("wikipedia check", "no terms", "contains and/or regex")
        out["match"] = parse_how(params.get("match"))
        lang = params.get("lang")
        api = require_url(params, "api", optional=True)
        if lang is not None and api:
            raise InputError("wikipedia check", "lang and api", "one of lang or api, not both")
        if api:
            out["api"] = api
        else:
            if lang is None:
                lang = "en"
            if not isinstance(lang, str) or not _LANG.fullmatch(lang):
                raise InputError("lang", lang, "a Wikipedia language code such as en, zh, de")
            out["api"] = f"https://{lang}.wikipedia.org/w/api.php"
        return out

    def check(
        self, forecast: ForecastInfo, params: dict[str, Any], http: Fetcher, now: datetime
    ) -> Verdict:
        """Fetch the current revision and match the terms (see the module docstring)."""
        api = params["api"]
        title = params["title"]
        label = f"Wikipedia page {title!r}"
        page = http.get(
            api,
            params={
                "action": "query",
                "prop": "revisions",
                "titles": title,
                "rvprop": "content|ids|timestamp",
                "rvslots": "main",
                "redirects": "1",
                "format": "json",
                "formatversion": "2",
            },
        )
        data = json_object(page, label)
        error = data.get("error")
        if isinstance(error, dict) or page.headers.get("mediawiki-api-error"):
            _raise_api_error(label, error if isinstance(error, dict) else {}, page)
        query = data.get("query")
        pages = query.get("pages") if isinstance(query, dict) else None
        if not isinstance(pages, list) or not pages or not isinstance(pages[0], dict):
            raise ResolverError(
                f"{label}: the API answer has no query.pages list (is formatversion=2 supported?)",
                temporary=False,
            )
        found = pages[0]
        shown_title = str(found.get("title") or title)
        if found.get("missing"):
            return Verdict(
                "none",
                value="missing",
                excerpt=f"No page titled {shown_title!r} on {_site(api)} (yet).",
                url=_index_url(api, shown_title, None),
            )
        if found.get("invalid"):
            reason = found.get("invalidreason") or "invalid title"
            raise ResolverError(f"{label}: {reason}", temporary=False)
        try:
            revision = found["revisions"][0]
            content = revision["slots"]["main"]["content"]
            revid = int(revision["revid"])
        except (KeyError, IndexError, TypeError, ValueError):
            raise ResolverError(
                f"{label}: the API answer has no revision content "
                "(expected revisions[0].slots.main.content)",
                temporary=False,
            ) from None
        if not isinstance(content, str):
            raise ResolverError(f"{label}: revision {revid} content is not text", temporary=False)
        stamp = str(revision.get("timestamp") or "")
        receipt = f"rev {revid}" + (f" ({stamp})" if stamp else "")
        prefix = f"[rev {revid}" + (f", {stamp}" if stamp else "") + "] "
        url = _index_url(api, shown_title, revid)
        text = normalize(_plain(content))
        matches = find_matches(text, params)
        room = EXCERPT_LIMIT - len(prefix)
        if matches is not None and forecast.question is not None:
            return outcome_at(
                forecast.question, text, params, kind=self.name, url=url, prefix=prefix
            )
        if matches is not None:
            return Verdict(
                "yes",
                value=f"{receipt} matched: {', '.join(m.term for m in matches)}",
                excerpt=prefix + excerpt_around(text, matches[0].start, matches[0].end, room),
                url=url,
            )
        why = []
        terms = params.get("contains") or []
        if terms and match_terms(text, terms, params.get("match", "any")) is None:
            seen = {m.term for m in match_terms(text, terms, "any") or []}
            why.append("not found: " + ", ".join(t for t in terms if t not in seen))
        if params.get("regex") and regex_match(text, params["regex"]) is None:
            why.append(f"regex {params['regex']!r} not found")
        return Verdict(
            "none",
            value=f"{receipt} " + "; ".join(why),
            excerpt=prefix + excerpt_around(text, 0, 0, limit=min(room, 300)),
            url=url,
        )


def _plain(wikitext: str) -> str:
    """Wikitext with comments dropped and links and emphasis reduced to their text."""
    text = _COMMENT.sub(" ", wikitext)
    text = _PIPED_LINK.sub(r"\1", text)
    text = _LINK.sub(r"\1", text)
    return _EMPHASIS.sub("", text)


def _raise_api_error(label: str, error: dict[str, Any], page: Fetched) -> None:
    code = str(error.get("code") or page.headers.get("mediawiki-api-error") or "unknown")
    info = str(error.get("info") or "")[:200]
    temporary = code in _TEMPORARY_CODES or code.startswith("internal_api_error")
    retry = page.headers.get("retry-after", "").strip()
    raise ResolverError(
        f"{label}: MediaWiki API error {code}" + (f": {info}" if info else ""),
        temporary=temporary,
        retry_after=float(retry) if temporary and retry.isdigit() else None,
    )


def _site(api: str) -> str:
    return urlsplit(api).netloc


def _index_url(api: str, title: str, revid: int | None) -> str:
    """The page's URL beside ``api.php`` (``index.php?title=...&oldid=...``)."""
    base = api.rsplit("/", 1)[0] if api.endswith("api.php") else api.rstrip("/")
    query: dict[str, Any] = {"title": title.replace(" ", "_")}
    if revid is not None:
        query["oldid"] = revid
    return f"{base}/index.php?{urlencode(query)}"
