"""``manifold``: a Manifold market's own resolution, and its probability as a reference estimate.

Reads ``GET https://api.manifold.markets/v0/market/{id}`` (or ``/v0/slug/{slug}``), public and
without auth (Manifold's ``docs/docs/api.md``). The fields used:

- ``outcomeType``: only ``BINARY`` markets can answer a yes/no forecast;
- ``isResolved`` and ``resolution``: ``"YES"``, ``"NO"``, ``"MKT"`` or ``"CANCEL"``;
- ``resolutionProbability``: the percentage a ``MKT`` resolution paid out (0-1);
- ``probability``: the market's current probability (0-1);
- ``url``, ``question``: for the receipt. An unknown id answers 404 ``{"message": "Contract not found"}``.

What a check concludes:

========================  ==========================================================  ======
market                    verdict                                                     final
========================  ==========================================================  ======
open                      ``none`` (value ``open``)                                   no
resolved ``YES`` / ``NO``  ``yes`` / ``no``                                            yes
resolved ``CANCEL``       ``annul`` (the market was called off: the question is moot)  yes
resolved ``MKT``          ``none``, value ``MKT 0.37``                                 no
========================  ==========================================================  ======

``MKT`` pays out at a percentage instead of choosing a side. A yes/no forecast cannot be scored
against "37%", and guessing a side from it would put words in the market's mouth, so the check
records the value and leaves the decision to a person (``tracker resolve`` or ``annul``).

Every verdict carries the market's current probability (when strictly between 0 and 1), which
the runner records as an estimate by the forecaster ``manifold``: a reference to score yourself
against.

**Choice and numeric questions.** A choice question reads a ``MULTIPLE_CHOICE`` market whose
answers sum to one (``shouldAnswersSumToOne``); its ``answers[]`` are matched to the question's
options by ``text`` (case and spacing aside; the two must name the same options), and their
``probability`` (normalised) is recorded as the estimate of ``manifold`` while the market is open.
Resolved: ``resolution`` is the winning answer's ``id`` (final ``yes`` with that option),
``CANCEL`` annuls, and ``CHOOSE_MULTIPLE`` (a split between answers) is no verdict, left to a
person. A numeric question reads a ``PSEUDO_NUMERIC`` market (``min``, ``max``, ``isLogScale``):
it trades one number, not a distribution, so no estimate is recorded; resolved ``MKT``, its
outcome is ``resolutionValue`` when the API gives it, else the value ``resolutionProbability``
maps to (linear ``min + (max - min) * p``, log ``10 ** (p * log10(max - min + 1)) + min - 1``, as
Manifold's ``getMappedValue``), to 10 significant digits. Independent-answer multiple choice and
the bucketed ``MULTI_NUMERIC`` and ``DATE`` markets are refused (their buckets' edges are only
text), as is a date question.

Worked example. A forecast file with::

    [[forecast.check]]
    kind = "manifold"
    url = "https://manifold.markets/Austin/will-i-write-a-new-blog-post-today"
    mode = "auto"

stores ``{"slug": "will-i-write-a-new-blog-post-today"}``. The check fetches
``/v0/slug/will-i-write-a-new-blog-post-today``, which answers ``"isResolved": true,
"resolution": "YES", "probability": 0.8958...``, and returns ``Verdict("yes", value="YES",
final=True, probability=0.8958..., url="https://manifold.markets/Austin/will-i-...")``; in
``auto`` mode the sweep resolves the forecast YES, in ``propose`` mode it waits in ``tracker
review``. Params: exactly one of ``id`` (the market id), ``slug`` or ``url`` (a
``manifold.markets`` question URL), and optionally ``base_url`` (another API root, e.g. a test
server).
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime
from typing import Any, ClassVar
from urllib.parse import urlsplit

from predictions.errors import InputError
from predictions.questions import Question
from resolvers.base import (
    ForecastInfo,
    MarketResolver,
    ResolverError,
    Verdict,
    match_options,
    outcome_text,
    outcome_verdict,
)
from resolvers.http import Fetcher

__all__ = ["ManifoldResolver"]

_ID = re.compile(r"[A-Za-z0-9]{6,40}")
_SLUG = re.compile(r"[A-Za-z0-9][A-Za-z0-9\-]{0,199}")
_HOSTS = ("manifold.markets", "www.manifold.markets")
#: The market type each type of forecast reads.
_TYPES = {"binary": "BINARY", "numeric": "PSEUDO_NUMERIC", "choice": "MULTIPLE_CHOICE"}


class ManifoldResolver(MarketResolver):
    """A Manifold market's resolution (final; CANCEL annuls; MKT on a BINARY market, a split
    multiple choice: no verdict) and its probability or answers' probabilities as an estimate."""

    name: ClassVar[str] = "manifold"
    version: ClassVar[str] = "1"
    question_kinds: ClassVar[frozenset[str]] = frozenset(_TYPES)
    base_url: ClassVar[str] = "https://api.manifold.markets"
    market_params: ClassVar[tuple[str, ...]] = ("id", "slug", "url")
    api_paths: ClassVar[dict[str, str]] = {"id": "/v0/market/{}", "slug": "/v0/slug/{}"}
    label: ClassVar[str] = "Manifold market"

    @classmethod
    def market(cls, key: str, value: Any) -> dict[str, Any]:
        """An ``id``, a ``slug``, or a question ``url`` (turned into its slug)."""
        if not isinstance(value, str):
            raise InputError(key, value, "text")
        value = value.strip()
        if key == "id":
            if not _ID.fullmatch(value):
                raise InputError("id", value, "a Manifold market id (letters and digits)")
            return {"id": value}
        if key == "slug":
            if not _SLUG.fullmatch(value):
                raise InputError("slug", value, "a Manifold slug (letters, digits and dashes)")
            return {"slug": value}
        return {"slug": _slug_from_url(value)}

    def check(
        self, forecast: ForecastInfo, params: dict[str, Any], http: Fetcher, now: datetime
    ) -> Verdict:
        """Fetch the market and read its resolution (see the module docstring)."""
        market, api, label = self.fetch(http, params)
        kind = market.get("outcomeType")
        if kind != _TYPES[forecast.kind]:
            raise ResolverError(
                f"{label} is a {kind or 'market of unknown type'} market; a manifold check on a "
                f"{forecast.kind} question needs a {_TYPES[forecast.kind]} market",
                temporary=False,
            )
        url = market.get("url") if isinstance(market.get("url"), str) else api
        if forecast.question is not None:
            return _typed(forecast.question, market, label, str(url))
        probability = _probability(market.get("probability"))
        question = str(market.get("question") or "")

        def verdict(
            kind: str,
            value: str,
            state: str,
            ms: Any,
            word: str = "on",
            *,
            final: bool = False,
            quote: bool = True,  # the market's probability in the excerpt
        ) -> Verdict:
            excerpt = _excerpt(question, state, probability if quote else None, ms, word)
            return Verdict(
                kind, value=value, excerpt=excerpt, url=url, final=final, probability=probability
            )

        if not market.get("isResolved"):
            return verdict("none", "open", "open", market.get("closeTime"), "closes")
        resolution = market.get("resolution")
        when = market.get("resolutionTime")
        if resolution in ("YES", "NO"):
            return verdict(
                resolution.lower(), resolution, f"resolved {resolution}", when, final=True
            )
        if resolution == "CANCEL":
            return verdict("annul", "CANCEL", "cancelled (N/A)", when, final=True)
        if resolution == "MKT":
            paid = _probability(market.get("resolutionProbability"), inclusive=True)
            value = "MKT" if paid is None else f"MKT {paid:g}"
            state = f"resolved {value} (a percentage, not a side)"
            return verdict("none", value, state, when, quote=False)
        raise ResolverError(
            f"{label} is resolved with an unrecognised resolution {resolution!r} "
            "(expected YES, NO, MKT or CANCEL)",
            temporary=False,
        )


def _typed(ours: Question, market: dict[str, Any], label: str, url: str) -> Verdict:
    """The verdict on a choice (MULTIPLE_CHOICE) or numeric (PSEUDO_NUMERIC) question."""
    question = str(market.get("question") or "")
    resolved, resolution = bool(market.get("isResolved")), market.get("resolution")
    ms = market.get("resolutionTime") if resolved else market.get("closeTime")
    word = "on" if resolved else "closes"
    values: tuple[float, ...] | None = None
    if ours.kind == "choice":
        if market.get("shouldAnswersSumToOne") is not True:
            raise ResolverError(
                f"{label}: its answers resolve independently (shouldAnswersSumToOne false), "
                "not to one option",
                temporary=False,
            )
        answers = [a for a in market.get("answers") or [] if isinstance(a, dict)]
        order = match_options(ours, [(i, str(a.get("text"))) for i, a in enumerate(answers)], label)
        given = [_probability(answers[i].get("probability")) for i in order]
        if not resolved and all(p is not None for p in given):
            total = math.fsum(p for p in given if p is not None)
            values = tuple(p / total for p in given if p is not None)
        shown = ", ".join(f"{ours.options[k]} {p:.0%}" for k, p in enumerate(values or ()))
        chosen = next((k for k, i in enumerate(order) if answers[i].get("id") == resolution), None)
        if resolved and chosen is not None:
            text = outcome_text(ours, chosen)
            excerpt = _excerpt(question, f"resolved {text}", None, ms, word)
            return outcome_verdict(ours, text, excerpt=excerpt, url=url, final=True)
    else:
        value, lo, hi = (market.get(k) for k in ("value", "min", "max"))
        shown = f"market value {value:.6g} ({lo:g}..{hi:g})" if _numbers(value, lo, hi) else ""
        if resolved and resolution == "MKT":
            x = _pseudo_value(market)
            if x is None:
                raise ResolverError(
                    f"{label} is resolved MKT without a resolutionProbability", temporary=False
                )
            text = outcome_text(ours, x)
            excerpt = _excerpt(question, f"resolved {text}", None, ms, word)
            return outcome_verdict(ours, text, excerpt=excerpt, url=url, final=True)
    if not resolved:
        excerpt = _excerpt(question, f"open; {shown}" if shown else "open", None, ms, word)
        return Verdict("none", value="open", excerpt=excerpt, url=url, values=values)
    if resolution == "CANCEL":
        excerpt = _excerpt(question, "cancelled (N/A)", None, ms, word)
        return Verdict("annul", value="CANCEL", excerpt=excerpt, url=url, final=True)
    if resolution in ("CHOOSE_MULTIPLE", "MKT"):
        split = f"resolved {resolution} (split between answers, not one option)"
        excerpt = _excerpt(question, split, None, ms, word)
        return Verdict("none", value=str(resolution), excerpt=excerpt, url=url)
    raise ResolverError(
        f"{label} is resolved with an unrecognised resolution {resolution!r}", temporary=False
    )


def _pseudo_value(market: dict[str, Any]) -> float | None:
    """A resolved PSEUDO_NUMERIC market's value: ``resolutionValue``, else ``resolutionProbability``
    mapped back with ``min``, ``max`` and ``isLogScale`` (to 10 significant digits)."""
    value: Any = market.get("resolutionValue")
    if _numbers(value):
        return float(value)
    p, lo, hi = (market.get(k) for k in ("resolutionProbability", "min", "max"))
    if not _numbers(p, lo, hi):
        return None
    p, lo, hi = float(p), float(lo), float(hi)  # type: ignore[arg-type]
    if market.get("isLogScale"):
        x = 10 ** (p * math.log10(hi - lo + 1)) + lo - 1
    else:
        x = lo + (hi - lo) * p
    return float(f"{x:.10g}")


def _numbers(*values: Any) -> bool:
    return all(isinstance(x, int | float) and not isinstance(x, bool) for x in values)


def _slug_from_url(value: str) -> str:
    """``https://manifold.markets/<user>/<slug>`` -> ``<slug>``."""
    expected = "a Manifold question URL like https://manifold.markets/<user>/<question-slug>"
    try:
        parts = urlsplit(value)
    except ValueError:
        raise InputError("url", value, expected) from None
    segments = [s for s in parts.path.split("/") if s]
    if (
        parts.scheme not in ("http", "https")
        or (parts.hostname or "").lower() not in _HOSTS
        or len(segments) != 2
        or not _SLUG.fullmatch(segments[1])
    ):
        raise InputError("url", value, expected)
    return segments[1]


def _probability(value: Any, *, inclusive: bool = False) -> float | None:
    """A number in (0, 1) (or [0, 1] when ``inclusive``), else None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    p = float(value)
    if inclusive:
        return p if 0.0 <= p <= 1.0 else None
    return p if 0.0 < p < 1.0 else None


def _excerpt(question: str, state: str, probability: float | None, ms: Any, word: str) -> str:
    parts = [f"{question!r}: {state}" if question else state]
    if probability is not None:
        parts.append(f"market probability {probability:.1%}")
    if isinstance(ms, int | float) and not isinstance(ms, bool):
        when = datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M UTC")
        parts.append(f"{word} {when}")
    return "; ".join(parts)
