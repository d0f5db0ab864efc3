"""The resolver contract: what a kind receives, what it returns, and how it says it failed.

A resolver kind is a small class. It validates its params once, when a forecast is registered,
and later *checks*: it fetches what it needs through the ``http`` object it is handed and says
what it saw. It never retries, sleeps, writes to the database or decides what happens to the
forecast; the runner (:mod:`resolvers.sweep`) owns retries, backoff, leases, the "by date X" rules
and the evidence rows.

A complete kind (registered under the entry-point group ``tracker.resolvers``)::

    from resolvers.base import Resolver, Verdict, excerpt_around, require_url

    class StatusResolver(Resolver):
        '''YES when a status page says "launched".'''

        name = "status"
        version = "1"

        @classmethod
        def validate(cls, params):
            return {"url": require_url(params, "url")}

        def check(self, forecast, params, http, now):
            page = http.get(params["url"])
            at = page.text.lower().find("launched")
            if at < 0:
                return Verdict("none", url=page.url)
            return Verdict("yes", value="launched", url=page.url,
                           excerpt=excerpt_around(page.text, at, at + 8))

``check(forecast, params, http, now)`` receives:

- ``forecast``: a :class:`ForecastInfo` (a frozen snapshot; id, title, criteria, due, created_at,
  status, outcome, and the question's ``kind`` and spec), never a database object;
- ``params``: the dict :meth:`Resolver.validate` returned at registration (plus ``otherwise`` if
  the spec set it), as stored in the ``check_spec`` row;
- ``http``: a :class:`resolvers.http.Fetcher` (see its docstring): ``http.get(url, *, params=None,
  headers=None, allow_status=()) -> Fetched``. It enforces the deadline, size cap, SSRF guard,
  redirects and retries, records every fetch for the evidence row, raises :class:`ResolverError`
  for transport failures and HTTP errors, and raises :class:`resolvers.http.Unchanged` on a 304
  (the runner handles both: do not catch them);
- ``now``: the naive-UTC time of the check (from :func:`predictions.clock.now`).

It returns a :class:`Verdict` or raises :class:`ResolverError` (``temporary`` says whether trying
again later may help; ``retry_after`` is a hint in seconds).

**Numeric, date and choice questions.** A kind declares the question types it reads in
``question_kinds`` (binary only by default); the runner refuses a check on any other type. On such
a question ``yes`` says the source gives the outcome and ``no`` (the ``deadline`` kind) that the
range end passed without it; either carries the outcome in ``value`` as ``tracker resolve`` reads
it (:func:`outcome_text`), and the runner resolves or proposes that value.
"""

from __future__ import annotations

import ipaddress
import json
import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar
from urllib.parse import quote, urlsplit

from predictions.errors import InputError, ResolverError
from predictions.questions import GRID, KINDS, Question, parse_outcome_value
from resolvers.http import Fetched, Fetcher

__all__ = [
    "EXCERPT_LIMIT",
    "MODES",
    "SPEC_OPTIONS",
    "VERDICTS",
    "ForecastInfo",
    "MarketResolver",
    "Resolver",
    "ResolverError",
    "Verdict",
    "beyond",
    "excerpt_around",
    "fold",
    "json_object",
    "match_options",
    "outcome_text",
    "outcome_verdict",
    "refuse_unknown_params",
    "require_url",
]

#: What a check can conclude. ``none``: nothing decisive seen; ``annul``: the question became moot
#: (a market cancelled). ``error`` is not a verdict: it is what the runner records for a failure.
VERDICTS = ("yes", "no", "none", "annul")
#: ``propose``: a person confirms in ``tracker review``; ``auto``: a final verdict resolves directly.
MODES = ("propose", "auto")
#: The longest excerpt kept in an evidence row.
EXCERPT_LIMIT = 500


@dataclass(frozen=True)
class Verdict:
    """What one check concluded.

    - ``verdict``: ``"yes"``, ``"no"``, ``"none"`` (nothing decisive) or ``"annul"``;
    - ``value``: the value extracted (a matched term, a JSON value, a market's resolution), as text;
    - ``excerpt``: up to 500 characters around the match (longer text is cut, not refused);
    - ``url``: the page a person should open to see the evidence (may differ from the API URL);
    - ``final``: True only when the source's own resolution is authoritative (a market resolved,
      a structured value the spec trusts). Text matches are never final. The runner lets a final
      verdict resolve directly in ``mode = auto`` and lets a final NO count before due + grace;
    - ``probability``: a market's current probability, recorded by the runner as an estimate by a
      forecaster named after the kind (``"manifold"``), or None;
    - ``values``: the same for a numeric, date or choice question: the market's CDF on the
      question's grid, or one probability per option in the question's order.
    """

    verdict: str
    value: str | None = None
    excerpt: str | None = None
    url: str | None = None
    final: bool = False
    probability: float | None = None
    values: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        if self.verdict not in VERDICTS:
            raise ValueError(f"verdict must be one of {', '.join(VERDICTS)}, not {self.verdict!r}")
        if self.excerpt is not None and len(self.excerpt) > EXCERPT_LIMIT:
            object.__setattr__(self, "excerpt", self.excerpt[: EXCERPT_LIMIT - 1] + "…")
        if self.value is not None and not isinstance(self.value, str):
            object.__setattr__(self, "value", str(self.value))
        if self.probability is not None:
            p = float(self.probability)
            if not 0.0 <= p <= 1.0:
                raise ValueError(f"probability must lie in [0, 1], not {p}")
            object.__setattr__(self, "probability", p)
        if self.values is not None:
            object.__setattr__(self, "values", tuple(float(v) for v in self.values))


@dataclass(frozen=True)
class ForecastInfo:
    """The forecast a check is about, as a read-only snapshot (times naive UTC); ``question`` is
    the spec of a numeric, date or choice question (None for binary)."""

    id: int
    title: str
    criteria: str
    due: datetime
    created_at: datetime
    status: str = "open"
    outcome: bool | None = None
    kind: str = "binary"
    question: Question | None = None


class Resolver:
    """Base class of resolver kinds. Subclass it, set ``name``, override ``validate`` and ``check``.

    Class attributes:

    - ``name``: the kind, as written in specs (``page``, ``manifold``);
    - ``version``: bumped when the kind's reading of a source changes; stored with each evidence row;
    - ``default_mode``: the mode a spec gets when it names none (``propose`` for text matches;
      structured sources may choose ``auto``, though ``propose`` is the safe default);
    - ``final_verdicts``: the verdicts the kind gives as final whenever it gives them (a
      market's ``yes``, ``no`` and ``annul``; the json kind's ``yes``). A source that answers
      304 is unchanged, so the runner carries its earlier verdict over, final when it is one of
      these. Empty (the default): a carried-over verdict is never final;
    - ``question_kinds``: the question types the kind reads (:data:`predictions.questions.KINDS`);
      binary only unless the kind says more.
    """

    name: ClassVar[str] = ""
    version: ClassVar[str] = "1"
    default_mode: ClassVar[str] = "propose"
    final_verdicts: ClassVar[frozenset[str]] = frozenset()
    question_kinds: ClassVar[frozenset[str]] = frozenset({"binary"})

    @classmethod
    def require_question_kind(cls, kind: str) -> None:
        """An :class:`InputError` unless the kind reads questions of type ``kind``."""
        if kind not in cls.question_kinds:
            reads = " or ".join(k for k in KINDS if k in cls.question_kinds)
            raise InputError(f"{cls.name} check", f"a {kind} question", f"a {reads} question")

    @classmethod
    def validate(cls, params: dict[str, Any]) -> dict[str, Any]:
        """Check ``params`` and return the normalised dict that will be stored.

        Raise :class:`~predictions.errors.InputError` naming the param (``field`` like ``"url"``)
        for anything wrong: a missing URL, a bad regex, an unknown param. The base version accepts
        no params of its own.
        """
        refuse_unknown_params(cls.name, params, ())
        return {}

    def check(
        self, forecast: ForecastInfo, params: dict[str, Any], http: Fetcher, now: datetime
    ) -> Verdict:
        """Look at the source and return a :class:`Verdict`; raise :class:`ResolverError` if unable."""
        raise NotImplementedError(f"resolver kind {self.name!r} does not implement check()")


# --- helpers for kinds ------------------------------------------------------------------------


def fold(text: str) -> str:
    """Case- and whitespace-folded text for matching: ``casefold`` plus runs of space -> one space.

    Works for CJK text too (no word splitting is assumed).

        >>> fold("  Loss  of\\nCONTROL ")
        'loss of control'
    """
    return " ".join(text.casefold().split())  # split() cuts where the regex \s matches


def excerpt_around(text: str, start: int, end: int, limit: int = EXCERPT_LIMIT) -> str:
    """Up to ``limit`` characters of ``text`` centred on ``text[start:end]``, whitespace collapsed,
    with ``…`` where it was cut (counted in the limit).

        >>> excerpt_around("a" * 10 + "MATCH" + "b" * 10, 10, 15, limit=11)
        '…aaMATCHbb…'
    """
    limit = max(1, limit - 2)
    start = max(0, min(start, len(text)))
    end = max(start, min(end, len(text)))
    room = max(0, limit - (end - start))
    lo = max(0, start - room // 2)
    hi = min(len(text), end + (room - (start - lo)))
    lo = max(0, min(lo, hi - limit))
    piece = " ".join(text[lo:hi].split())
    if len(piece) > limit:
        piece = piece[:limit]
    return ("…" if lo > 0 else "") + piece + ("…" if hi < len(text) else "")


def outcome_text(question: Question, x: float) -> str:
    """An outcome as :func:`predictions.questions.parse_outcome_value` reads it back exactly: the
    option's name, a date-time in UTC (``2031-03-14T00:00:00Z``), or the number.

        >>> outcome_text(Question("numeric", 0, 34), 11.0)
        '11'
    """
    if question.kind == "choice":
        return question.options[int(x)]
    if question.kind == "date":
        at = datetime.fromtimestamp(x, UTC)
        return at.strftime("%Y-%m-%dT%H:%M:%S" + (".%f" if at.microsecond else "") + "Z")
    return str(int(x)) if x.is_integer() and abs(x) < 1e15 else repr(x)


#: A thousands separator between digits (``1,234``, ``1 234``, ``1'234``), dropped from a number.
_SEPARATOR = re.compile(r"(?<=\d)[,_'\s\u00a0\u202f](?=\d{3}(?!\d))")


def outcome_verdict(
    question: Question, said: str, *, excerpt: str, url: str | None, final: bool = False
) -> Verdict:
    """``yes`` with the outcome a source ``said`` (read as ``tracker resolve`` reads one: a number,
    thousands separators aside; a date such as ``2028-06-30``; an option's name), or ``none``
    saying why it is not an outcome of the question (not a number, beyond a closed bound...).

        >>> outcome_verdict(Question("numeric", 0, 5000), "1,234", excerpt="x", url=None).value
        '1234'
    """
    text = _SEPARATOR.sub("", said.strip()) if question.kind == "numeric" else said.strip()
    try:
        x = parse_outcome_value(question, text)
    except InputError as exc:
        why = (
            f"{excerpt}: {said.strip()[:100]!r} is not an outcome of this question ({exc.expected})"
        )
        return Verdict("none", value=said.strip()[:200], excerpt=why, url=url)
    return Verdict("yes", value=outcome_text(question, x), excerpt=excerpt, url=url, final=final)


def beyond(question: Question, bound: str) -> float:
    """The outcome a source gives as only "above the upper bound" (``bound = "upper"``) or "below
    the lower bound": a thousandth of a grid step past it, on the question's scale (whole
    seconds for a date). Every score reads such an outcome in the tail beyond the bound; the exact
    place shifts a CRPS by the same amount for every forecaster.

        >>> beyond(Question("numeric", 0, 200, open_upper=True), "upper")
        200.001
    """
    step = 0.001 / (GRID - 1)
    x = question.unscaled(1 + step if bound == "upper" else -step)
    if question.kind == "date":
        return float(math.ceil(x) if bound == "upper" else math.floor(x))
    return x


def match_options(question: Question, names: list[tuple[int, str]], label: str) -> list[int]:
    """For each option of a choice question, the index (as given) of the source's option of the
    same name (case and spacing aside: :func:`fold`); a :class:`ResolverError` naming what does not
    match unless the two lists name the same options."""
    theirs = {fold(name): index for index, name in names}
    found = [theirs.get(fold(option)) for option in question.options]
    ours = {fold(option) for option in question.options}
    missing = [o for o, i in zip(question.options, found, strict=True) if i is None]
    extra = [name for _, name in names if fold(name) not in ours]
    if missing or extra or len(theirs) != len(names):
        said = "; ".join(
            part
            for part in (
                f"not at the source: {', '.join(missing)}" if missing else "",
                f"only at the source: {', '.join(extra)}" if extra else "",
            )
            if part
        )
        raise ResolverError(
            f"{label}: its options are not this question's ({said or 'a name repeats'}); "
            "the options must be the same, in any order",
            temporary=False,
        )
    return [i for i in found if i is not None]


def require_url(params: dict[str, Any], key: str = "url", *, optional: bool = False) -> str:
    """The http(s) URL in ``params[key]``, or an :class:`InputError` naming ``key``.

    Refuses a missing value, other schemes (``file:``, ``ftp:``, ``javascript:``), a missing host,
    credentials in the URL, and spaces.
    """
    value = params.get(key)
    if value is None or (isinstance(value, str) and not value.strip()):
        if optional:
            return ""
        raise InputError(key, value, "an http:// or https:// URL")
    if not isinstance(value, str):
        raise InputError(key, value, "an http:// or https:// URL")
    url = value.strip()
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise InputError(key, value, "an http:// or https:// URL") from None
    if parts.scheme.lower() not in ("http", "https"):
        raise InputError(key, value, "an http:// or https:// URL (no other scheme)")
    if not parts.hostname or any(c.isspace() for c in url):
        raise InputError(key, value, "an http:// or https:// URL with a host and no spaces")
    if parts.username or parts.password:
        raise InputError(key, value, "a URL without user:password@")
    if port == 0:
        raise InputError(key, value, "a URL with a valid port")
    host = parts.hostname
    try:
        ipaddress.ip_address(host)
    except ValueError:
        if not re.fullmatch(r"[A-Za-z0-9._~\-\u0080-\uffff]+", host):
            raise InputError(key, value, "a URL with a valid host name") from None
    return url


#: What every check takes besides its kind's params (read by :func:`resolvers.registry.validate_check`).
SPEC_OPTIONS = ("mode", "otherwise")


def refuse_unknown_params(kind: str, params: dict[str, Any], allowed: tuple[str, ...]) -> None:
    """An :class:`InputError` naming the first param of ``params`` that ``kind`` does not know,
    and listing every one it does, :data:`SPEC_OPTIONS` included."""
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        every = ", ".join((*allowed, *SPEC_OPTIONS))
        raise InputError(f"{kind} check", unknown[0], f"one of the params {every}")


def json_object(page: Fetched, label: str) -> dict[str, Any]:
    """The body of an API answer as a JSON object, or an error saying what came instead.

    A body that is not JSON (a maintenance page, an answer cut short) is the temporary error of
    :meth:`Fetched.json`: it passes, and a lasting one backs off as any failure does. JSON of
    another shape than an object is permanent: the API answers something else than expected.
    """
    data = page.json()
    if not isinstance(data, dict):
        raise ResolverError(
            f"{label}: the API answered a JSON {type(data).__name__}, expected an object",
            temporary=False,
        )
    return data


def _said(page: Fetched) -> str:
    """``": <detail>"`` from a JSON error body like ``{"detail": "Post not found"}`` or
    ``{"message": "Contract not found"}``, else ``""``."""
    try:
        data = json.loads(page.body)
        said = data.get("detail") or data.get("message")
    except (ValueError, UnicodeDecodeError, AttributeError):
        return ""
    return f": {str(said)[:200]}" if said else ""


class MarketResolver(Resolver):
    """Base of the kinds that read one market or question from a forecasting site's JSON API
    (``manifold``, ``metaculus``, ``polymarket``); what they share is here, once.

    - ``final_verdicts``: the site's own resolution is authoritative (yes, no, annul);
    - params: exactly one of ``market_params`` names the market (:meth:`market` checks its value
      and gives what is stored), and ``base_url`` may name another server with the same API (a
      mirror, a test server);
    - :meth:`fetch`: ``GET base_url + api_paths[key]`` (the value quoted in), a 404 a permanent
      "not found", a 401/403 a permanent refusal (with the kind's hint), the body a JSON object.
    """

    final_verdicts: ClassVar[frozenset[str]] = frozenset({"yes", "no", "annul"})
    base_url: ClassVar[str] = ""
    #: The params that may name the market, in the order messages list them.
    market_params: ClassVar[tuple[str, ...]] = ()
    #: ``{stored param: API path with {} for its value}``.
    api_paths: ClassVar[dict[str, str]] = {}
    #: What the market is called in messages (``"Manifold market"``).
    label: ClassVar[str] = ""

    @classmethod
    def validate(cls, params: dict[str, Any]) -> dict[str, Any]:
        """Exactly one of the market params, checked by :meth:`market`; optional ``base_url``."""
        keys = cls.market_params
        refuse_unknown_params(cls.name, params, (*keys, "base_url"))
        given = [key for key in keys if params.get(key) not in (None, "")]
        if len(keys) > 1 and len(given) != 1:
            names = ", ".join(keys[:-1]) + " or " + keys[-1]
            raise InputError(
                f"{cls.name} check",
                ", ".join(given) or "no market",
                f"exactly one of {names} naming the market",
            )
        key = given[0] if given else keys[0]
        out = cls.market(key, params.get(key))
        url = require_url(params, "base_url", optional=True)
        if url:
            out["base_url"] = url.rstrip("/")
        return out

    @classmethod
    def market(cls, key: str, value: Any) -> dict[str, Any]:
        """The stored params for the market named by ``key`` = ``value``, or an
        :class:`~predictions.errors.InputError` naming ``key``."""
        raise NotImplementedError

    def fetch(
        self,
        http: Fetcher,
        params: dict[str, Any],
        headers: dict[str, str] | None = None,
        hint: str = "",
    ) -> tuple[dict[str, Any], str, str]:
        """The market's API answer as a JSON object, with the API URL and the market's label."""
        key = next(k for k in self.api_paths if k in params)
        value = str(params[key])
        base = params.get("base_url") or self.base_url
        api = base + self.api_paths[key].format(quote(value, safe=""))
        label = f"{self.label} {value!r}" if key == "slug" else f"{self.label} {value}"
        page = http.get(api, headers=headers, allow_status=(401, 403, 404))
        if page.status == 404:
            raise ResolverError(f"{label} not found (404{_said(page)})", temporary=False)
        if page.status in (401, 403):
            raise ResolverError(
                f"{label}: the API refused the request ({page.status}{_said(page)})"
                + (f"; {hint}" if hint else ""),
                temporary=False,
            )
        return json_object(page, label), api, label
