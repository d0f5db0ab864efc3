"""``polymarket``: a Polymarket market's own resolution, and its price as a reference estimate.

Reads the Gamma API, ``GET https://gamma-api.polymarket.com/markets/{id}`` or
``/markets/slug/{slug}`` (public, no auth). The fields used:

- ``outcomes`` and ``outcomePrices``: **JSON-encoded strings** (``"[\\"Yes\\", \\"No\\"]"``,
  ``"[\\"0.285\\", \\"0.715\\"]"``); the price at the index of ``"Yes"`` is P(yes). A market
  without a ``Yes`` outcome (``Over``/``Under``, team names) cannot answer a yes/no forecast;
- ``umaResolutionStatus``: ``"resolved"`` once the UMA oracle settled the market. ``closed: true``
  alone is *not* a resolution (trading stopped; the outcome may still be proposed or disputed);
- ``slug``: for the receipt's URL.

What a check concludes (the reading ForecastBench uses: a resolved market's Yes price is 1 or 0):

=====================================  ============================================  ======
market                                 verdict                                       final
=====================================  ============================================  ======
not ``resolved`` (open or closed)      ``none`` (value ``open`` / ``closed``)         no
resolved, Yes at 1                     ``yes``                                       yes
resolved, Yes at 0                     ``no``                                        yes
resolved at 0.5 / 0.5                  ``annul`` (a void market pays 50-50)          yes
resolved at any other split            ``none`` (value records the split)            no
=====================================  ============================================  ======

The Yes price, while strictly between 0 and 1, comes with every verdict and is recorded by the
runner as an estimate by the forecaster ``polymarket``. A 404 is a permanent error.

Worked example::

    [[forecast.check]]
    kind = "polymarket"
    slug = "will-china-publish-a-national-ai-safety-standard-by-december-31"

The check fetches ``/markets/slug/will-china-publish-...``; while the market is open it answers
``"outcomePrices": "[\\"0.285\\", \\"0.715\\"]"`` and the check returns ``Verdict("none",
value="open", probability=0.285)``. Once ``umaResolutionStatus`` is ``"resolved"`` with prices
``["1", "0"]`` it returns ``Verdict("yes", value="Yes", final=True)``. Params: exactly one of
``id`` (the numeric Gamma market id) or ``slug``, and optionally ``base_url`` (another API root,
e.g. a test server).
"""

from __future__ import annotations

import json
import math
import re
from datetime import datetime
from typing import Any, ClassVar

from predictions.errors import InputError
from resolvers.base import ForecastInfo, MarketResolver, ResolverError, Verdict
from resolvers.http import Fetcher

__all__ = ["PolymarketResolver"]

_SLUG = re.compile(r"[a-z0-9][a-z0-9\-]{0,299}")
_SITE = "https://polymarket.com/market/"


class PolymarketResolver(MarketResolver):
    """A Polymarket Yes/No market's resolution (Yes/No final; a 50-50 void annuls)."""

    name: ClassVar[str] = "polymarket"
    version: ClassVar[str] = "1"
    base_url: ClassVar[str] = "https://gamma-api.polymarket.com"
    market_params: ClassVar[tuple[str, ...]] = ("id", "slug")
    api_paths: ClassVar[dict[str, str]] = {"id": "/markets/{}", "slug": "/markets/slug/{}"}
    label: ClassVar[str] = "Polymarket market"

    @classmethod
    def market(cls, key: str, value: Any) -> dict[str, Any]:
        """An ``id`` (the numeric Gamma market id) or a ``slug``."""
        if key == "id":
            text = str(value).strip() if isinstance(value, int | str) else ""
            if isinstance(value, bool) or not text.isdigit() or int(text) == 0:
                raise InputError("id", value, "a Polymarket (Gamma) market id: digits, e.g. 512345")
            return {"id": str(int(text))}
        if not isinstance(value, str) or not _SLUG.fullmatch(value.strip()):
            raise InputError(
                "slug", value, "a Polymarket market slug (lower-case letters, digits, dashes)"
            )
        return {"slug": value.strip()}

    def check(
        self, forecast: ForecastInfo, params: dict[str, Any], http: Fetcher, now: datetime
    ) -> Verdict:
        """Fetch the market and read its resolution (see the module docstring)."""
        market, api, label = self.fetch(http, params)
        outcomes = _string_list(market.get("outcomes"), "outcomes", label)
        prices_text = _string_list(market.get("outcomePrices"), "outcomePrices", label)
        if len(outcomes) != len(prices_text) or not outcomes:
            raise ResolverError(
                f"{label}: {len(outcomes)} outcomes but {len(prices_text)} prices", temporary=False
            )
        yes = next((i for i, name in enumerate(outcomes) if name.strip().lower() == "yes"), None)
        if yes is None:
            raise ResolverError(
                f"{label} is not a Yes/No market (outcomes: {', '.join(outcomes)}); "
                "a polymarket check needs one with a Yes outcome",
                temporary=False,
            )
        prices = [_price(text, label) for text in prices_text]
        p_yes = prices[yes]
        probability = p_yes if 0.0 < p_yes < 1.0 else None
        slug = market.get("slug") if isinstance(market.get("slug"), str) else params.get("slug")
        url = f"{_SITE}{slug}" if slug else api
        question = str(market.get("question") or "")
        split = " / ".join(
            f"{name} {text}" for name, text in zip(outcomes, prices_text, strict=True)
        )

        def verdict(
            kind: str, value: str, state: str, when: Any, word: str = "on", *, final: bool = False
        ) -> Verdict:
            excerpt = _excerpt(question, state, split, when, word)
            return Verdict(
                kind, value=value, excerpt=excerpt, url=url, final=final, probability=probability
            )

        if market.get("umaResolutionStatus") != "resolved":
            state = "closed" if market.get("closed") is True else "open"
            note = "closed, awaiting resolution" if state == "closed" else "open"
            return verdict("none", state, note, market.get("endDate"), "ends")
        when = market.get("closedTime") or market.get("umaEndDate")
        if p_yes == 1.0 and all(p == 0.0 for i, p in enumerate(prices) if i != yes):
            kind, value = "yes", outcomes[yes]
        elif p_yes == 0.0:
            others = (name for i, name in enumerate(outcomes) if i != yes and prices[i] == 1.0)
            kind, value = "no", next(others, "No")
        elif len(prices) == 2 and all(p == 0.5 for p in prices):
            kind, value = "annul", "void (50-50)"
        else:
            return verdict("none", f"resolved at {split}", "resolved at a split, not a side", when)
        return verdict(kind, value, f"resolved {value}", when, final=True)


def _string_list(value: Any, field: str, label: str) -> list[str]:
    """Gamma's JSON-encoded string lists (``"[\\"Yes\\", \\"No\\"]"``); a real list is accepted too."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise ResolverError(
                f"{label}: {field} is not a JSON-encoded list ({value[:60]!r})", temporary=False
            ) from None
    if not isinstance(value, list) or not all(isinstance(v, str | int | float) for v in value):
        raise ResolverError(f"{label}: {field} missing or not a list of values", temporary=False)
    return [str(v) for v in value]


def _price(text: str, label: str) -> float:
    try:
        price = float(text)
    except ValueError:
        raise ResolverError(f"{label}: price {text!r} is not a number", temporary=False) from None
    if not math.isfinite(price) or not 0.0 <= price <= 1.0:
        raise ResolverError(f"{label}: price {text!r} is outside [0, 1]", temporary=False)
    return price


def _excerpt(question: str, state: str, split: str, when: Any, word: str) -> str:
    parts = [f"{question!r}: {state}" if question else state, f"prices {split}"]
    if isinstance(when, str) and when:
        parts.append(f"{word} {when}")
    return "; ".join(parts)
