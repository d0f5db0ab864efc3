"""Text helpers shared by the text-matching kinds (``page``, ``feed``, ``wikipedia``): HTML to
text, term matching folded for case, width and whitespace, so CJK text matches too, and the
outcome of a numeric, date or choice question read from the ``regex``'s capture group
(:func:`outcome_at`).

    >>> text = normalize(html_to_text("<p>国家标准：人工智能<br>失\\n控风险</p><script>x()</script>"))
    >>> text
    '国家标准:人工智能 失 控风险'
    >>> [m.term for m in match_terms(text, ["失控", "LOSS of control"], how="any")]
    ['失控']
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from html import unescape
from typing import Any

from predictions.errors import InputError, ResolverError
from predictions.questions import Question
from resolvers.base import (
    EXCERPT_LIMIT,
    Resolver,
    Verdict,
    excerpt_around,
    outcome_verdict,
    refuse_unknown_params,
    require_url,
)

__all__ = [
    "TermMatch",
    "TextResolver",
    "capture",
    "find_matches",
    "parse_text_params",
    "html_to_text",
    "match_terms",
    "normalize",
    "outcome_at",
    "parse_how",
    "parse_regex",
    "parse_terms",
    "regex_match",
]

_HIDDEN = ("script", "style", "noscript", "template", "svg")
# Tag names are ASCII (re.ASCII: "ſ" is not an "s" here, as in a browser).
_HIDDEN_OPEN = re.compile(r"<(?:!--|(" + "|".join(_HIDDEN) + r")\b)", re.IGNORECASE | re.ASCII)
_HIDDEN_CLOSE = {name: re.compile("</" + name, re.IGNORECASE | re.ASCII) for name in _HIDDEN}
_BLOCK_TAG = re.compile(
    r"</?(?:p|div|br|li|ul|ol|tr|td|th|table|section|article|header|footer|h[1-6]|title"
    r"|blockquote|pre|hr|dd|dt|main|nav|aside)\b[^>]*>",
    re.IGNORECASE,
)
_TAG = re.compile(r"<[^>]*>")


def _drop_hidden(html: str) -> str:
    """Remove comments and script/style/noscript/template/svg elements, in one linear pass
    (an unclosed one hides the rest of the document, as a browser would)."""
    out: list[str] = []
    pos = 0
    while True:
        m = _HIDDEN_OPEN.search(html, pos)
        if m is None:
            if not out:
                return html
            out.append(html[pos:])
            break
        out.append(html[pos : m.start()])
        out.append(" ")
        if m.group(1) is None:  # a comment
            end = html.find("-->", m.end())
            pos = len(html) if end < 0 else end + 3
        else:
            close = _HIDDEN_CLOSE[m.group(1).lower()].search(html, m.end())
            gt = -1 if close is None else html.find(">", close.end())
            pos = len(html) if gt < 0 else gt + 1
        if pos >= len(html):
            break
    return "".join(out)


def html_to_text(html: str) -> str:
    """The visible text of an HTML document: comments, scripts and styles dropped, block
    elements spaced, inline tags removed, entities decoded.

    Regular expressions rather than a parser: a sweep reads thousands of pages, and this only has
    to find words, not build a tree.
    """
    text = _BLOCK_TAG.sub(" ", _drop_hidden(html))
    return unescape(_TAG.sub("", text))


def normalize(text: str) -> str:
    """NFKC (full-width letters and digits become ASCII) and runs of whitespace -> one space."""
    # str.split() cuts at exactly the characters the regex \s matches, several times faster.
    return " ".join(unicodedata.normalize("NFKC", text).split())


@dataclass(frozen=True)
class TermMatch:
    """Where a term (or the regex) matched in the normalised text."""

    term: str
    start: int
    end: int


def _is_wide(ch: str) -> bool:
    return unicodedata.east_asian_width(ch) in ("W", "F")


def _term_pattern(term: str) -> re.Pattern[str]:
    """Case-insensitive; any whitespace run matches a space; between wide (CJK) characters an
    optional space is allowed, since HTML often breaks lines inside CJK text."""
    term = normalize(term)
    out: list[str] = []
    for i, ch in enumerate(term):
        if ch == " ":
            out.append(r"\s+")
            continue
        if i > 0 and term[i - 1] != " " and (_is_wide(ch) or _is_wide(term[i - 1])):
            out.append(r"\s?")
        out.append(re.escape(ch))
    return re.compile("".join(out), re.IGNORECASE)


def match_terms(text: str, terms: list[str], how: str = "any") -> list[TermMatch] | None:
    """The first match of each term found in ``text`` (already :func:`normalize` d), or None when
    the condition (``any`` term / ``all`` terms) does not hold."""
    found: list[TermMatch] = []
    for term in terms:
        m = _term_pattern(term).search(text)
        if m is not None:
            found.append(TermMatch(term, m.start(), m.end()))
        elif how == "all":
            return None
    if not found:
        return None
    return sorted(found, key=lambda t: t.start)


def regex_match(text: str, pattern: str) -> TermMatch | None:
    """The first match of ``pattern`` (case-insensitive) in ``text``, or None."""
    m = re.compile(pattern, re.IGNORECASE | re.DOTALL).search(text)
    if m is None:
        return None
    return TermMatch(m.group(0), m.start(), m.end())


def find_matches(text: str, params: dict[str, Any]) -> list[TermMatch] | None:
    """What a text kind (``page``, ``feed``, ``wikipedia``) looks for: the matches of the
    ``contains`` terms (``match`` any|all) and of the ``regex``, sorted by position, when every
    condition the params set holds; None when one does not."""
    found: list[TermMatch] = []
    if params.get("contains"):
        terms = match_terms(text, params["contains"], params.get("match", "any"))
        if terms is None:
            return None
        found.extend(terms)
    if params.get("regex"):
        hit = regex_match(text, params["regex"])
        if hit is None:
            return None
        found.append(hit)
    return sorted(found, key=lambda m: m.start) if found else None


def capture(text: str, params: dict[str, Any], kind: str) -> TermMatch | None:
    """Where the ``regex`` first matches ``text``: the text of its group named ``value``, else of
    its first group (None if that group took no part). A :class:`ResolverError` (permanent) unless
    the params hold a regex with a group: a numeric, date or choice question needs one."""
    pattern = params.get("regex")
    compiled = re.compile(pattern, re.IGNORECASE | re.DOTALL) if pattern else None
    if compiled is None or not compiled.groups:
        raise ResolverError(
            f"a {kind} check on a numeric, date or choice question needs a regex whose capture "
            "group holds the outcome, e.g. regex='([0-9,]+) provinces'",
            temporary=False,
        )
    m = compiled.search(text)
    group = "value" if "value" in compiled.groupindex else 1
    if m is None or m.group(group) is None:
        return None
    return TermMatch(m.group(group), m.start(group), m.end(group))


def outcome_at(
    question: Question,
    text: str,
    params: dict[str, Any],
    *,
    kind: str,
    url: str | None,
    prefix: str = "",
) -> Verdict:
    """A text kind's verdict on a numeric, date or choice question whose terms matched: ``yes``
    with the outcome the regex's group holds (:func:`resolvers.base.outcome_verdict`: a number, a
    date, an option's name), or ``none``. Never final: a person confirms a text match."""
    hit = capture(text, params, kind)
    if hit is None:
        return Verdict("none", excerpt=prefix + "the regex matched no outcome", url=url)
    around = excerpt_around(text, hit.start, hit.end, EXCERPT_LIMIT - len(prefix))
    return outcome_verdict(question, hit.term, excerpt=prefix + around, url=url)


def parse_terms(value: Any, field: str = "contains") -> list[str]:
    """A term or a list of terms (non-empty text) -> list of terms."""
    items = value if isinstance(value, list) else [value]
    terms = []
    for item in items:
        if not isinstance(item, str | int | float) or isinstance(item, bool):
            raise InputError(field, value, "text, or a list of texts")
        term = normalize(str(item))
        if not term:
            raise InputError(field, value, "non-empty text")
        if len(term) > 500:
            raise InputError(field, term, "a term of at most 500 characters")
        terms.append(str(item).strip())
    if not terms:
        raise InputError(field, value, "at least one term")
    return terms


def parse_regex(value: Any, field: str = "regex") -> str:
    """A regular expression that compiles (and does not match the empty string)."""
    if not isinstance(value, str) or not value:
        raise InputError(field, value, "a regular expression")
    try:
        compiled = re.compile(value, re.IGNORECASE | re.DOTALL)
    except re.error as exc:
        raise InputError(field, value, f"a valid regular expression ({exc})") from None
    if compiled.fullmatch(""):
        raise InputError(field, value, "a regular expression that cannot match empty text")
    return value


def parse_how(value: Any, field: str = "match") -> str:
    """``any`` (default) or ``all``."""
    if value is None:
        return "any"
    if value not in ("any", "all"):
        raise InputError(field, value, "any or all")
    return str(value)


def parse_text_params(
    kind: str,
    params: dict[str, Any],
    allowed: tuple[str, ...] = ("url", "contains", "match", "regex"),
) -> dict[str, Any]:
    """Validate ``url`` with ``contains`` (and ``match`` any|all) and/or ``regex``.

    Shared by the kinds that fetch a URL and look for terms in its text (``page``, ``feed``): unknown
    params, no terms at all, and ``match`` without ``contains`` are refused by name.
    """
    refuse_unknown_params(kind, params, allowed)
    out: dict[str, Any] = {"url": require_url(params, "url")}
    if params.get("contains") is None and params.get("regex") is None:
        raise InputError("contains", None, "terms to look for (contains=...) or a regex")
    if params.get("contains") is not None:
        out["contains"] = parse_terms(params["contains"])
        out["match"] = parse_how(params.get("match"))
    elif params.get("match") is not None:
        raise InputError("match", params["match"], "match only together with contains")
    if params.get("regex") is not None:
        out["regex"] = parse_regex(params["regex"])
    return out


class TextResolver(Resolver):
    """Base of the kinds that fetch ``url`` and look in its text for the ``contains`` terms
    (``match`` any|all) and/or the ``regex`` (``page``, ``feed``); they share the params."""

    @classmethod
    def validate(cls, params: dict[str, Any]) -> dict[str, Any]:
        """``url``; ``contains`` and/or ``regex``; ``match`` any|all."""
        return parse_text_params(cls.name, params)
