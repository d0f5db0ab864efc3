"""Evidence checking: the resolver contract, the kinds registry, the guarded HTTP client, the sweep.

- :mod:`resolvers.base`: :class:`Verdict`, :class:`ResolverError`, :class:`Resolver`,
  :class:`ForecastInfo`, the market kinds' :class:`~resolvers.base.MarketResolver` and helpers;
- :mod:`resolvers.registry`: kinds found through the ``tracker.resolvers`` entry points,
  :func:`validate_check`, :func:`parse_check` and :func:`read_checks` (both, for a question);
- :mod:`resolvers.http`: the one HTTP client factory on httpx (:class:`HttpClient`,
  :class:`Fetcher`) with the SSRF guard, the deadline and the size cap;
- one module per built-in kind (``page``, ``json_api``, ``feed``, ``deadline``, ``manifold``,
  ``metaculus``, ``polymarket``, ``wikipedia``);
- :mod:`resolvers.sweep`: the runner (claims through :mod:`predictions.leases`, backoff, receipts);
- :mod:`resolvers.rules`: the "by date X" rules, what a verdict leads to.
"""

from __future__ import annotations

from resolvers.base import ForecastInfo, Resolver, ResolverError, Verdict
from resolvers.http import Fetched, Fetcher, HttpClient, HttpSettings, Unchanged
from resolvers.registry import (
    ENTRY_POINT_GROUP,
    get_kind,
    kinds,
    load_errors,
    parse_check,
    read_checks,
    validate_check,
)

__all__ = [
    "ENTRY_POINT_GROUP",
    "Fetched",
    "Fetcher",
    "ForecastInfo",
    "HttpClient",
    "HttpSettings",
    "Resolver",
    "ResolverError",
    "Unchanged",
    "Verdict",
    "get_kind",
    "kinds",
    "load_errors",
    "parse_check",
    "read_checks",
    "validate_check",
]
