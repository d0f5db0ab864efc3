"""The ``json`` kind: fetch a JSON API, pick a value with a path, compare it with a threshold.

Params:

- ``url`` (required): an http(s) URL answering JSON;
- ``path`` (required): where the value is: keys separated by dots, list indexes in brackets,
  keys with dots or spaces quoted in brackets; an optional leading ``$``:
  ``data.items[0].price``, ``$.result["model name"]``, ``[2].score``;
- ``op``: ``>``, ``>=``, ``<``, ``<=``, ``==``, ``!=`` (with ``threshold``) or ``exists``
  (default: ``exists`` without a threshold, ``>=`` with one);
- ``threshold``: the number (or, for ``==`` / ``!=``, text, ``true``, ``false`` or ``null``)
  the value is compared with.

The condition holding gives ``yes`` with ``final = True`` (a structured value: in ``mode = auto``
it resolves the forecast directly); not holding gives ``no`` (not final: the runner acts on it only
at due + grace); a path that is not there gives ``none`` (for ``exists``: ``no``).

On a numeric, date or choice question the value at ``path`` is the outcome (a number, or numeric
text; a date such as ``"2028-06-30"`` or ``"2028-06-30T12:00:00Z"``; an option's name), given as
``yes`` with ``final = True``; ``op`` and ``threshold`` do not apply (a check with a threshold is
refused). A missing path, ``null`` or a value that is not an outcome of the question gives ``none``.

Worked example. Spec ``json:url=https://api.example.org/stats,path=data.clusters,op=>=,threshold=2``
and the answer ``{"data": {"clusters": 3}}`` give::

    Verdict(verdict="yes", value="3", final=True, excerpt='data.clusters = 3 (>= 2)',
            url="https://api.example.org/stats")
"""

from __future__ import annotations

import json
import math
import operator
import re
from collections.abc import Callable
from datetime import datetime
from typing import Any

from predictions.errors import InputError, ResolverError
from predictions.questions import KINDS
from resolvers.base import (
    ForecastInfo,
    Resolver,
    Verdict,
    outcome_verdict,
    refuse_unknown_params,
    require_url,
)
from resolvers.http import Fetcher

__all__ = ["JsonResolver", "parse_path", "pick"]

_PARAMS = ("url", "path", "op", "threshold")
_OPS: dict[str, Callable[[Any, Any], bool]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
    "==": operator.eq,
    "!=": operator.ne,
}
_STEP = re.compile(
    r"""\.?(?P<key>[A-Za-z_$][\w\-$]*)|\[(?P<index>-?\d+)\]|\[(?P<q>["'])(?P<quoted>(?:(?!(?P=q)).)*)(?P=q)\]"""
)
_MISSING = object()


def parse_path(path: str) -> list[str | int]:
    """``data.items[0]["a b"]`` -> ``["data", "items", 0, "a b"]``; InputError if malformed.

    >>> parse_path('$.data.items[0]["a b"]')
    ['data', 'items', 0, 'a b']
    """
    if not isinstance(path, str) or not path.strip():
        raise InputError("path", path, 'a path like data.items[0].price or $["key"]')
    text = path.strip()
    if text.startswith("$"):
        text = text[1:]
    steps: list[str | int] = []
    pos = 0
    while pos < len(text):
        m = _STEP.match(text, pos)
        if m is None or m.end() == pos or (m.group("key") and pos > 0 and text[pos] != "."):
            raise InputError(
                "path", path, f"a path like data.items[0].price (problem at character {pos + 1})"
            )
        if m.group("key") is not None:
            steps.append(m.group("key"))
        elif m.group("index") is not None:
            steps.append(int(m.group("index")))
        else:
            steps.append(m.group("quoted"))
        pos = m.end()
    if not steps:
        raise InputError("path", path, "a path naming at least one key or index")
    return steps


def pick(document: Any, steps: list[str | int]) -> Any:
    """The value at ``steps`` in a parsed JSON document, or a sentinel when absent."""
    node = document
    for step in steps:
        if isinstance(step, int) and isinstance(node, list):
            if not -len(node) <= step < len(node):
                return _MISSING
            node = node[step]
        elif isinstance(step, str) and isinstance(node, dict):
            if step not in node:
                return _MISSING
            node = node[step]
        else:
            return _MISSING
    return node


def _literal(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    text = value.strip()
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered == "null":
        return None
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return text


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            n = float(value.strip())
        except ValueError:
            return None
        return n if math.isfinite(n) else None
    return None


def _show(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


class JsonResolver(Resolver):
    """YES when the value at ``path`` satisfies ``op threshold`` (or exists)."""

    name = "json"
    version = "1"
    default_mode = "propose"
    final_verdicts = frozenset({"yes"})
    question_kinds = frozenset(KINDS)

    @classmethod
    def validate(cls, params: dict[str, Any]) -> dict[str, Any]:
        """``url``, ``path``; ``op`` and ``threshold``."""
        refuse_unknown_params("json", params, _PARAMS)
        url = require_url(params, "url")
        path = params.get("path")
        parse_path(path)  # type: ignore[arg-type]
        has_threshold = "threshold" in params and params["threshold"] is not None
        op = params.get("op") or (">=" if has_threshold else "exists")
        if op != "exists" and op not in _OPS:
            raise InputError("op", op, "one of >, >=, <, <=, ==, !=, exists")
        out: dict[str, Any] = {"url": url, "path": str(path).strip(), "op": op}
        if op == "exists":
            if has_threshold:
                raise InputError("threshold", params["threshold"], "no threshold with op exists")
            return out
        if not has_threshold:
            raise InputError("threshold", None, f"a value to compare with ({op})")
        threshold = _literal(params["threshold"])
        if op not in ("==", "!=") and _number(threshold) is None:
            raise InputError("threshold", params["threshold"], f"a number to compare with {op}")
        if isinstance(threshold, float) and not math.isfinite(threshold):
            raise InputError("threshold", params["threshold"], "a finite number")
        out["threshold"] = threshold
        return out

    def check(
        self, forecast: ForecastInfo, params: dict[str, Any], http: Fetcher, now: datetime
    ) -> Verdict:
        """Fetch, pick the value, compare."""
        answer = http.get(params["url"], headers={"Accept": "application/json"})
        document = answer.json()
        path = params["path"]
        value = pick(document, parse_path(path))
        op = params["op"]
        if forecast.question is not None:
            if "threshold" in params:
                raise ResolverError(
                    f"a json check on a {forecast.kind} question takes no op or threshold: "
                    "the value at its path is the outcome",
                    temporary=False,
                )
            if value is _MISSING or value is None or isinstance(value, bool | dict | list):
                said = "is not in the answer" if value is _MISSING else f"= {_show(value)}"
                return Verdict("none", excerpt=f"{path} {said}: no outcome", url=answer.url)
            return outcome_verdict(
                forecast.question,
                _show(value),
                excerpt=f"{path} = {_show(value)}",
                url=answer.url,
                final=True,
            )
        if value is _MISSING:
            excerpt = f"{path} is not in the answer"
            return Verdict("no" if op == "exists" else "none", excerpt=excerpt, url=answer.url)
        shown = _show(value)
        if op == "exists":
            holds = value is not None
            excerpt = f"{path} = {shown}"
        else:
            threshold = params["threshold"]
            left: Any = value
            right: Any = threshold
            if op in ("==", "!=") and (_number(value) is None or _number(threshold) is None):
                pass  # compare as given (text, booleans, null)
            else:
                left, right = _number(value), _number(threshold)
                if left is None or right is None:
                    return Verdict(
                        "none",
                        value=shown,
                        excerpt=f"{path} = {shown}: not a number",
                        url=answer.url,
                    )
            holds = _OPS[op](left, right)
            excerpt = f"{path} = {shown} ({'' if holds else 'not '}{op} {_show(threshold)})"
        return Verdict(
            "yes" if holds else "no",
            value=shown,
            excerpt=excerpt,
            url=answer.url,
            final=holds,
        )
