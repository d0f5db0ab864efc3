"""``metaculus``: a Metaculus question's own resolution, and its community prediction.

Reads ``GET https://www.metaculus.com/api/posts/{post_id}/`` (the number in the question's URL),
sending ``Authorization: Token <token>`` when the environment variable
``TRACKER_METACULUS_TOKEN`` is set (Metaculus's API page asks every client to authenticate; the
token never goes into the database). The token goes only to Metaculus's own hosts
(``www.metaculus.com``, ``metaculus.com``) and to the hosts named in
``TRACKER_METACULUS_TOKEN_HOSTS`` (comma-separated host names, e.g. ``metaculus.example.org``
for a mirror a check's ``base_url`` names): a check whose ``base_url`` names any other host is
sent no token, and a redirect to another origin drops it (see :mod:`resolvers.http`). The
fields used (Metaculus ``docs/openapi.yml`` and
``questions/serializers/common.py``):

- ``question.type``: only ``binary`` questions can answer a yes/no forecast; a post holding a
  ``group_of_questions`` or a ``conditional`` instead of one ``question`` is refused;
- ``question.resolution``: ``"yes"``, ``"no"``, ``"annulled"``, ``"ambiguous"`` or null
  (unresolved, or hidden from this account);
- ``question.status``: ``upcoming``, ``open``, ``closed`` or ``resolved`` (for the receipt);
- ``question.aggregations.recency_weighted.latest.centers[0]``: the community prediction,
  P(yes). It is absent when the aggregate is hidden or nobody forecast.

What a check concludes:

=================================  ============================================  ======
question                           verdict                                       final
=================================  ============================================  ======
``resolution`` null                ``none`` (value: the status, e.g. ``open``)   no
``"yes"`` / ``"no"``               ``yes`` / ``no``                              yes
``"annulled"`` / ``"ambiguous"``   ``annul`` (Metaculus voided the question)      yes
=================================  ============================================  ======

The community prediction, when shown, comes with every verdict and is recorded by the runner as
an estimate by the forecaster ``metaculus``. A 404 (``{"detail": "Post not found"}``) is a
permanent error; so are 401/403 (no or a bad token: set ``TRACKER_METACULUS_TOKEN``).

Worked example::

    [[forecast.check]]
    kind = "metaculus"
    post = "https://www.metaculus.com/questions/35180/ai-plus-action-plan/"
    mode = "auto"

stores ``{"post": 35180}``. The check fetches ``/api/posts/35180/``; the answer holds
``"question": {"type": "binary", "status": "resolved", "resolution": "yes", ...}`` and a
community prediction of 0.91, so it returns ``Verdict("yes", value="yes", final=True,
probability=0.91, url="https://www.metaculus.com/questions/35180/")``. Params: ``post`` (the id,
or a question URL) and optionally ``base_url`` (another site root, e.g. a test server).
"""

from __future__ import annotations

import os
import re
from datetime import datetime
from typing import Any, ClassVar
from urllib.parse import urlsplit

from predictions.errors import InputError
from resolvers.base import ForecastInfo, MarketResolver, ResolverError, Verdict
from resolvers.http import Fetcher

__all__ = ["TOKEN_ENV", "TOKEN_HOSTS_ENV", "MetaculusResolver"]

#: The environment variable holding a Metaculus API token (sent as ``Authorization: Token ...``).
TOKEN_ENV = "TRACKER_METACULUS_TOKEN"
#: Other hosts (comma-separated names) that may receive the token besides Metaculus's own.
TOKEN_HOSTS_ENV = "TRACKER_METACULUS_TOKEN_HOSTS"

_HOSTS = ("metaculus.com", "www.metaculus.com")
_OUTCOMES = {"yes": "yes", "no": "no", "annulled": "annul", "ambiguous": "annul"}


class MetaculusResolver(MarketResolver):
    """A Metaculus binary question's resolution (yes/no final; annulled/ambiguous annul)."""

    name: ClassVar[str] = "metaculus"
    version: ClassVar[str] = "1"
    base_url: ClassVar[str] = "https://www.metaculus.com"
    market_params: ClassVar[tuple[str, ...]] = ("post",)
    api_paths: ClassVar[dict[str, str]] = {"post": "/api/posts/{}/"}
    label: ClassVar[str] = "Metaculus post"

    @classmethod
    def market(cls, key: str, value: Any) -> dict[str, Any]:
        """``post``: a post id (``35180``) or a question URL."""
        return {"post": _post_id(value)}

    def check(
        self, forecast: ForecastInfo, params: dict[str, Any], http: Fetcher, now: datetime
    ) -> Verdict:
        """Fetch the post and read its question's resolution (see the module docstring)."""
        base = params.get("base_url") or self.base_url
        post_id = int(params["post"])
        token = _token_for(base)
        if token:
            hint = "the token was refused"
        elif os.environ.get(TOKEN_ENV, "").strip():
            hint = f"the token goes only to {', '.join(_HOSTS)} and the hosts in {TOKEN_HOSTS_ENV}"
        else:
            hint = f"set {TOKEN_ENV} to a Metaculus API token"
        headers = {"Accept": "application/json"}
        if token:
            headers["Authorization"] = f"Token {token}"
        post, _api, label = self.fetch(http, params, headers, hint)
        question = post.get("question")
        if not isinstance(question, dict):
            shape = next(
                (k for k in ("group_of_questions", "conditional") if post.get(k)), "no question"
            )
            raise ResolverError(
                f"{label} holds {shape.replace('_', ' ')}, not a single question; "
                "a metaculus check needs a binary question's post",
                temporary=False,
            )
        if question.get("type") != "binary":
            raise ResolverError(
                f"{label} is a {question.get('type') or 'untyped'} question; a metaculus check "
                "needs a binary (yes/no) question",
                temporary=False,
            )
        url = f"{base}/questions/{post_id}/"
        probability = _community_prediction(question)
        title = str(question.get("title") or post.get("title") or "")
        status = str(question.get("status") or post.get("status") or "unknown")
        resolution = question.get("resolution")
        if resolution is None or resolution == "":
            return Verdict(
                "none",
                value=status,
                excerpt=_excerpt(title, f"{status}, not resolved", probability, question),
                url=url,
                probability=probability,
            )
        verdict = _OUTCOMES.get(str(resolution).lower()) if isinstance(resolution, str) else None
        if verdict is None:
            raise ResolverError(
                f"{label}: unrecognised resolution {resolution!r} for a binary question "
                "(expected yes, no, annulled or ambiguous)",
                temporary=False,
            )
        return Verdict(
            verdict,
            value=str(resolution),
            excerpt=_excerpt(title, f"resolved {resolution}", probability, question),
            url=url,
            final=True,
            probability=probability,
        )


def _post_id(value: Any) -> int:
    """A post id from ``35180``, ``"35180"`` or a metaculus.com question URL."""
    expected = "a Metaculus post id or a URL like https://www.metaculus.com/questions/35180/"
    if isinstance(value, bool):
        raise InputError("post", value, expected)
    if isinstance(value, int):
        if value > 0:
            return value
        raise InputError("post", value, expected)
    if not isinstance(value, str) or not value.strip():
        raise InputError("post", value, expected)
    text = value.strip()
    if text.isdigit():
        return _post_id(int(text))
    try:
        parts = urlsplit(text)
    except ValueError:
        raise InputError("post", value, expected) from None
    if parts.scheme not in ("http", "https") or (parts.hostname or "").lower() not in _HOSTS:
        raise InputError("post", value, expected)
    # /questions/35180/slug/ and /c/<community>/35180/slug/ both carry the post id.
    match = re.match(r"^/(?:questions|c/[^/]+)/(\d+)(?:/|$)", parts.path)
    if not match or int(match.group(1)) == 0:
        raise InputError("post", value, expected)
    return int(match.group(1))


def _community_prediction(question: dict[str, Any]) -> float | None:
    """``aggregations.recency_weighted.latest.centers[0]`` when present and in (0, 1)."""
    try:
        center = question["aggregations"]["recency_weighted"]["latest"]["centers"][0]
    except (KeyError, IndexError, TypeError):
        return None
    if isinstance(center, bool) or not isinstance(center, int | float):
        return None
    return float(center) if 0.0 < center < 1.0 else None


def _token_for(base_url: str) -> str:
    """The token from :data:`TOKEN_ENV` when ``base_url``'s host may receive it (Metaculus's own
    hosts, or one listed in :data:`TOKEN_HOSTS_ENV`), else ``""``."""
    token = os.environ.get(TOKEN_ENV, "").strip()
    allowed = {*_HOSTS, *os.environ.get(TOKEN_HOSTS_ENV, "").lower().replace(" ", "").split(",")}
    host = (urlsplit(base_url).hostname or "").lower()
    return token if token and host in allowed else ""


def _excerpt(title: str, state: str, probability: float | None, question: dict[str, Any]) -> str:
    parts = [f"{title!r}: {state}" if title else state]
    if probability is not None:
        parts.append(f"community prediction {probability:.1%}")
    when = question.get("actual_resolve_time") or question.get("scheduled_resolve_time")
    if isinstance(when, str) and when:
        word = "resolved" if question.get("actual_resolve_time") else "scheduled to resolve"
        parts.append(f"{word} {when}")
    return "; ".join(parts)
