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

**Numeric, date and choice questions.** A numeric forecast reads a ``numeric`` (or ``discrete``)
question, a date forecast a ``date`` one, a choice forecast a ``multiple_choice`` one; any other
pairing is a permanent error. The community forecast (``recency_weighted.latest.forecast_values``)
becomes the estimate of the forecaster ``metaculus``:

- continuous: Metaculus's CDF gives heights at ``inbound_outcome_count + 1`` (201 by default)
  evenly spaced points of its scaled range, as our grid does, so it is our CDF when the question's
  range, bounds and scale are Metaculus's (``scaling.range_min``..``range_max`` in the question's
  units, epoch seconds for dates; the open bounds; a log scale is ``zero_point`` 0). A discrete
  question's fewer points are interpolated linearly. Any other range is refused, the error saying
  the range to give the question;
- multiple choice: ``forecast_values`` holds one probability per option of ``all_options_ever``
  (null for a deleted one); they are matched to the question's options by name (case and spacing
  aside), and the current options must be the question's.

The resolution is the option's name, a number as text (``"473.9"``) or a date-time
(``"2031-03-14 00:00:00+00:00"``), each a final ``yes`` with the outcome as its value;
``above_upper_bound`` / ``below_lower_bound`` (published without the value) resolve just beyond
the bound (:func:`resolvers.base.beyond`); ``annulled`` / ``ambiguous`` annul.

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

import math
import os
import re
from dataclasses import replace
from datetime import datetime
from typing import Any, ClassVar
from urllib.parse import urlsplit

from predictions.errors import InputError
from predictions.questions import GRID, KINDS, Question, summary
from resolvers.base import (
    ForecastInfo,
    MarketResolver,
    ResolverError,
    Verdict,
    beyond,
    fold,
    match_options,
    outcome_text,
    outcome_verdict,
)
from resolvers.http import Fetcher

__all__ = ["TOKEN_ENV", "TOKEN_HOSTS_ENV", "MetaculusResolver"]

#: The environment variable holding a Metaculus API token (sent as ``Authorization: Token ...``).
TOKEN_ENV = "TRACKER_METACULUS_TOKEN"
#: Other hosts (comma-separated names) that may receive the token besides Metaculus's own.
TOKEN_HOSTS_ENV = "TRACKER_METACULUS_TOKEN_HOSTS"

_HOSTS = ("metaculus.com", "www.metaculus.com")
_OUTCOMES = {"yes": "yes", "no": "no", "annulled": "annul", "ambiguous": "annul"}
_BOUNDS = {"above_upper_bound": "upper", "below_lower_bound": "lower"}
#: The Metaculus question types each type of forecast reads.
_TYPES = {
    "binary": ("binary",),
    "numeric": ("numeric", "discrete"),
    "date": ("date",),
    "choice": ("multiple_choice",),
}


class MetaculusResolver(MarketResolver):
    """A Metaculus question's resolution (final; annulled/ambiguous annul) and community forecast."""

    name: ClassVar[str] = "metaculus"
    version: ClassVar[str] = "1"
    question_kinds: ClassVar[frozenset[str]] = frozenset(KINDS)
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
        if question.get("type") not in _TYPES[forecast.kind]:
            raise ResolverError(
                f"{label} is a {question.get('type') or 'untyped'} question; a metaculus check "
                f"on a {forecast.kind} question needs a {' or '.join(_TYPES[forecast.kind])} one",
                temporary=False,
            )
        url = f"{base}/questions/{post_id}/"
        if forecast.question is not None:
            return _typed(forecast.question, question, post, label, url)
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


def _typed(
    ours: Question, question: dict[str, Any], post: dict[str, Any], label: str, url: str
) -> Verdict:
    """The verdict on a numeric, date or choice question (see the module docstring)."""
    if ours.continuous:
        values = _cdf(ours, question, label)
    else:
        values = _probabilities(ours, question, label)
    title = str(question.get("title") or post.get("title") or "")
    status = str(question.get("status") or post.get("status") or "unknown")
    resolution = question.get("resolution")
    if resolution is None or resolution == "":
        state = f"{status}, not resolved"
        if values is not None:
            state += f"; community forecast {summary(ours, values)}"
        return Verdict("none", value=status, excerpt=_excerpt(title, state, None, question),
                       url=url, values=values)  # fmt: skip
    text = str(resolution)
    excerpt = _excerpt(title, f"resolved {text}", None, question)
    if text.lower() in ("annulled", "ambiguous"):
        return Verdict("annul", value=text, excerpt=excerpt, url=url, final=True, values=values)
    if ours.kind == "choice":
        named = [i for i, option in enumerate(ours.options) if fold(option) == fold(text)]
        if not named:
            raise ResolverError(
                f"{label} resolved to {text!r}, not one of this question's options", temporary=False
            )
        text = ours.options[named[0]]
    elif text in _BOUNDS:  # published without the value
        text = outcome_text(ours, beyond(ours, _BOUNDS[text]))
    verdict = outcome_verdict(ours, text, excerpt=excerpt, url=url, final=True)
    return replace(verdict, values=values)


def _cdf(ours: Question, question: dict[str, Any], label: str) -> tuple[float, ...] | None:
    """The community CDF on the question's grid, or None when Metaculus shows none; a
    :class:`ResolverError` when the question's range, bounds or scale are not Metaculus's."""
    scaling = question.get("scaling") or {}
    lower, upper, zero = (
        scaling.get("range_min"),
        scaling.get("range_max"),
        scaling.get("zero_point"),
    )
    open_lower = bool(scaling.get("open_lower_bound", question.get("open_lower_bound")))
    open_upper = bool(scaling.get("open_upper_bound", question.get("open_upper_bound")))
    if not isinstance(lower, int | float) or not isinstance(upper, int | float):
        raise ResolverError(f"{label}: the question has no range (scaling)", temporary=False)
    theirs = Question(ours.kind, float(lower), float(upper), open_lower, open_upper,
                      log=zero is not None)  # fmt: skip
    same = (
        math.isclose(ours.lower, theirs.lower, rel_tol=1e-9, abs_tol=1e-9)
        and math.isclose(ours.upper, theirs.upper, rel_tol=1e-9, abs_tol=1e-9)
        and (ours.open_lower, ours.open_upper, ours.log) == (open_lower, open_upper, theirs.log)
    )
    if zero not in (None, 0, 0.0) or not same:
        scale = f", a log scale with zero point {zero:g}" if zero not in (None, 0, 0.0) else ""
        raise ResolverError(
            f"{label}: its range is {_range(theirs)}{scale}, this question's {_range(ours)}; "
            "the community forecast fits this question's grid only with the same range, bounds "
            "and scale",
            temporary=False,
        )
    cdf = _latest(question)
    if cdf is None or len(cdf) < 2 or not all(isinstance(v, int | float) for v in cdf):
        return None
    n = len(cdf) - 1
    points = []
    for k in range(GRID):  # Metaculus's N + 1 heights, linear between them, at our 201 points
        at = k * n / (GRID - 1)
        i = min(int(at), n - 1)
        points.append(cdf[i] + (at - i) * (cdf[i + 1] - cdf[i]))
    return tuple(points)


def _range(q: Question) -> str:
    """A range as ``tracker add`` takes it (``0..34``, dates as date-times), with its bounds."""
    bounds = [
        side for side, is_open in (("lower", q.open_lower), ("upper", q.open_upper)) if is_open
    ]
    shown = f"{outcome_text(q, q.lower)}..{outcome_text(q, q.upper)}"
    return (
        shown
        + (f" (open {' and '.join(bounds)})" if bounds else " (closed)")
        + (", log scale" if q.log else "")
    )


def _probabilities(
    ours: Question, question: dict[str, Any], label: str
) -> tuple[float, ...] | None:
    """The community's probability of each of the question's options (matched by name), or None
    when Metaculus shows none; a :class:`ResolverError` when the options differ."""
    current = question.get("options") or []
    every = question.get("all_options_ever") or current
    names = [(i, str(name)) for i, name in enumerate(every) if name in current]
    order = match_options(ours, names, label)
    values = _latest(question)
    if values is None or len(values) != len(every):
        return None
    chosen = [values[i] for i in order]
    if not all(isinstance(v, int | float) and v > 0 for v in chosen):
        return None
    total = math.fsum(chosen)
    return tuple(v / total for v in chosen)


def _latest(question: dict[str, Any]) -> list[Any] | None:
    """``aggregations.recency_weighted.latest.forecast_values``, when shown."""
    try:
        values = question["aggregations"]["recency_weighted"]["latest"]["forecast_values"]
    except (KeyError, TypeError):
        return None
    return values if isinstance(values, list) else None


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
