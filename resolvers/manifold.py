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

import re
from datetime import UTC, datetime
from typing import Any, ClassVar
from urllib.parse import urlsplit

from predictions.errors import InputError
from resolvers.base import ForecastInfo, MarketResolver, ResolverError, Verdict
from resolvers.http import Fetcher

__all__ = ["ManifoldResolver"]

_ID = re.compile(r"[A-Za-z0-9]{6,40}")
_SLUG = re.compile(r"[A-Za-z0-9][A-Za-z0-9\-]{0,199}")
_HOSTS = ("manifold.markets", "www.manifold.markets")


class ManifoldResolver(MarketResolver):
    """A Manifold BINARY market's resolution (YES/NO final, CANCEL annuls, MKT no verdict)."""

    name: ClassVar[str] = "manifold"
    version: ClassVar[str] = "1"
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
        if kind != "BINARY":
            raise ResolverError(
                f"{label} is a {kind or 'market of unknown type'} market; a manifold check needs "
                "a BINARY (yes/no) market",
                temporary=False,
            )
        url = market.get("url") if isinstance(market.get("url"), str) else api
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
