"""``metaculus``: a Metaculus question's own resolution, and its community prediction.

Reads ``GET https://www.metaculus.com/api/posts/{post_id}/`` (the number in the question's URL),
sending ``Authorization: Token <token>`` when the environment variable
``TRACKER_METACULUS_TOKEN`` is set (Metaculus's API page asks every client to authenticate; the
token never goes into the database). The fields used (Metaculus ``docs/openapi.yml`` and
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

import json
import os
import re
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import urlsplit

from predictions.errors import InputError
from resolvers.base import (
    ForecastInfo,
    Resolver,
    ResolverError,
    Verdict,
    base_url_param,
    json_object,
    refuse_unknown_params,
)

if TYPE_CHECKING:
    from resolvers.http import Fetched, Fetcher

__all__ = ["TOKEN_ENV", "MetaculusResolver"]

#: The environment variable holding a Metaculus API token (sent as ``Authorization: Token ...``).
TOKEN_ENV = "TRACKER_METACULUS_TOKEN"

_PARAMS = ("post", "base_url")
_HOSTS = ("metaculus.com", "www.metaculus.com")
_OUTCOMES = {"yes": "yes", "no": "no", "annulled": "annul", "ambiguous": "annul"}


class MetaculusResolver(Resolver):
    """A Metaculus binary question's resolution (yes/no final; annulled/ambiguous annul)."""

    name: ClassVar[str] = "metaculus"
    version: ClassVar[str] = "1"
    final_verdicts: ClassVar[frozenset[str]] = frozenset({"yes", "no", "annul"})
    base_url: ClassVar[str] = "https://www.metaculus.com"

    @classmethod
    def validate(cls, params: dict[str, Any]) -> dict[str, Any]:
        """``post``: a post id (``35180``) or a question URL; optional ``base_url``."""
        refuse_unknown_params("metaculus", params, _PARAMS)
        out: dict[str, Any] = {"post": _post_id(params.get("post"))}
        out.update(base_url_param(params))
        return out

    def check(
        self, forecast: ForecastInfo, params: dict[str, Any], http: Fetcher, now: datetime
    ) -> Verdict:
        """Fetch the post and read its question's resolution (see the module docstring)."""
        base = params.get("base_url") or self.base_url
        post_id = int(params["post"])
        label = f"Metaculus post {post_id}"
        headers = {"Accept": "application/json"}
        token = os.environ.get(TOKEN_ENV, "").strip()
        if token:
            headers["Authorization"] = f"Token {token}"
        page = http.get(
            f"{base}/api/posts/{post_id}/", headers=headers, allow_status=(401, 403, 404)
        )
        if page.status == 404:
            raise ResolverError(f"{label} not found (404{_said(page)})", temporary=False)
        if page.status in (401, 403):
            hint = "the token was refused" if token else f"set {TOKEN_ENV} to a Metaculus API token"
            raise ResolverError(
                f"{label}: Metaculus refused the request ({page.status}{_said(page)}); {hint}",
                temporary=False,
            )
        post = json_object(page, label)
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


def _said(page: Fetched) -> str:
    """``": <detail>"`` from an error body like ``{"detail": "Post not found"}``, else ``""``."""
    try:
        detail = json.loads(page.body).get("detail")
    except (ValueError, UnicodeDecodeError, AttributeError):
        return ""
    return f": {str(detail)[:200]}" if detail else ""


def _excerpt(title: str, state: str, probability: float | None, question: dict[str, Any]) -> str:
    parts = [f"{title!r}: {state}" if title else state]
    if probability is not None:
        parts.append(f"community prediction {probability:.1%}")
    when = question.get("actual_resolve_time") or question.get("scheduled_resolve_time")
    if isinstance(when, str) and when:
        word = "resolved" if question.get("actual_resolve_time") else "scheduled to resolve"
        parts.append(f"{word} {when}")
    return "; ".join(parts)
