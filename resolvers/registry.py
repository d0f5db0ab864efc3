"""Resolver kinds, found through the entry-point group ``tracker.resolvers``, and spec validation.

The built-in kinds are registered in the project's ``pyproject.toml`` exactly as a third-party
package registers its own::

    [project.entry-points."tracker.resolvers"]
    page = "resolvers.page:PageResolver"

A kind whose module fails to import is reported by :func:`load_errors` (and refused when a spec
names it); it never stops the other kinds from loading.

A spec is validated once, when a forecast is registered or imported, by :func:`validate_check`::

    >>> validate_check({"kind": "deadline"})
    {'kind': 'deadline', 'params': {}, 'mode': 'propose'}

and the command line's short form is read by :func:`parse_check`::

    >>> parse_check("page:url=https://example.org/a,contains=AI,contains=人工智能")
    {'kind': 'page', 'url': 'https://example.org/a', 'contains': ['AI', '人工智能']}
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterable, Mapping
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from predictions.errors import InputError
from resolvers.base import MODES, Resolver

__all__ = [
    "ENTRY_POINT_GROUP",
    "OTHERWISE",
    "get_kind",
    "kinds",
    "load_errors",
    "parse_check",
    "read_checks",
    "reload",
    "validate_check",
]

ENTRY_POINT_GROUP = "tracker.resolvers"
#: What a spec does at due + grace when its source never gave a verdict: ``no`` proposes NO.
OTHERWISE = ("none", "no")
_SPEC_EXPECTED = "a check spec: kind:key=value,key=value or a JSON object with a kind"
_KIND_NAME = re.compile(r"[a-z][a-z0-9_\-]{0,63}")

_lock = threading.Lock()
_loaded: dict[str, type[Resolver]] = {}
_errors: dict[str, str] = {}
_all_loaded = False


def _entry_points() -> dict[str, EntryPoint]:
    found: dict[str, EntryPoint] = {}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        found.setdefault(ep.name, ep)  # the first distribution on the path wins a name
    return found


def _load(name: str, ep: EntryPoint) -> None:
    try:
        obj = ep.load()
    except Exception as exc:  # a broken plugin must not break the others
        _errors[name] = f"cannot import {ep.value}: {type(exc).__name__}: {exc}"
        return
    if not (isinstance(obj, type) and issubclass(obj, Resolver)):
        _errors[name] = f"{ep.value} is not a resolvers.base.Resolver subclass"
        return
    if obj.name != name:
        _errors[name] = f"{ep.value} calls itself {obj.name!r}, registered as {name!r}"
        return
    _loaded[name] = obj


def kinds() -> dict[str, type[Resolver]]:
    """Every kind that loads, by name (sorted). Import failures go to :func:`load_errors`."""
    global _all_loaded
    with _lock:
        if not _all_loaded:
            for name, ep in _entry_points().items():
                if name not in _loaded and name not in _errors:
                    _load(name, ep)
            _all_loaded = True
        return dict(sorted(_loaded.items()))


def load_errors() -> dict[str, str]:
    """Kinds registered but not loadable, with the reason."""
    kinds()
    with _lock:
        return dict(sorted(_errors.items()))


def get_kind(name: str) -> type[Resolver]:
    """The class of kind ``name``; :class:`InputError` for an unknown or broken kind.

    Only that kind's module is imported.
    """
    found = _loaded.get(name)  # the fast path, without the lock: a sweep asks for every check
    if found is not None:
        return found
    with _lock:
        found = _loaded.get(name)
        if found is None and name not in _errors:
            ep = _entry_points().get(name)
            if ep is not None:
                _load(name, ep)
                found = _loaded.get(name)
        error = _errors.get(name)
    if found is not None:
        return found
    if error is not None:
        raise InputError("check kind", name, f"a kind that loads ({error})")
    raise InputError("check kind", name, "one of " + ", ".join(sorted(_entry_points())))


def reload() -> None:
    """Forget what was loaded, so kinds installed since (a plugin, in tests) are found."""
    global _all_loaded
    with _lock:
        _loaded.clear()
        _errors.clear()
        _all_loaded = False


def validate_check(raw: dict[str, Any], *, question_kind: str | None = None) -> dict[str, Any]:
    """Validate one spec and return ``{"kind", "params", "mode"}``, ready to store.

    Given the forecast's ``question_kind`` (binary, numeric, date or choice), a kind that does not
    read that type of question is refused (``Resolver.question_kinds``). ``raw`` holds ``kind``, optionally ``mode`` (``propose`` | ``auto``; default: the kind's
    ``default_mode``) and ``otherwise`` (``none`` | ``no``: at due + grace with no verdict, propose
    NO), and the kind's params either inline (as in a TOML ``[[forecast.check]]`` table) or under
    ``params``. Raises :class:`InputError` naming the field: unknown kind, missing URL, bad regex,
    bad path, non-http(s) scheme, bad mode.
    """
    if not isinstance(raw, dict):
        raise InputError("check", raw, _SPEC_EXPECTED)
    rest = dict(raw)
    kind = rest.pop("kind", None)
    if not isinstance(kind, str) or not kind.strip():
        raise InputError("check kind", kind, "the name of a resolver kind (e.g. page, json, feed)")
    kind = kind.strip()
    cls = get_kind(kind)
    if question_kind is not None:
        cls.require_question_kind(question_kind)
    mode = rest.pop("mode", None)
    if mode is None:
        mode = cls.default_mode
    if mode not in MODES:
        raise InputError(f"{kind} check mode", mode, "propose or auto")
    otherwise = rest.pop("otherwise", None)
    if otherwise is not None and otherwise not in OTHERWISE:
        raise InputError(f"{kind} check otherwise", otherwise, "no or none")
    if set(rest) == {"params"} and isinstance(rest["params"], dict):
        rest = dict(rest["params"])
    try:
        params = cls.validate(rest)
    except InputError as exc:
        if exc.field.startswith(kind):
            raise
        raise InputError(f"{kind} check {exc.field}".rstrip(), exc.value, exc.expected) from None
    except Exception as exc:  # a plugin's validate raising something else is still bad input
        raise InputError(f"{kind} check", rest, f"valid params ({exc})") from None
    if not isinstance(params, dict):
        raise InputError(f"{kind} check", rest, "params the kind accepts")
    params = dict(params)
    if otherwise is not None:
        params["otherwise"] = otherwise
    try:
        json.dumps(params, allow_nan=False)
    except (TypeError, ValueError):
        raise InputError(f"{kind} check", params, "params that can be stored as JSON") from None
    return {"kind": kind, "params": params, "mode": mode}


_SPLIT = re.compile(r",(?=\s*[A-Za-z_][A-Za-z0-9_]*\s*=)")


def parse_check(text: str) -> dict[str, Any]:
    """Read the command line's spec form into a raw dict for :func:`validate_check`.

    ``KIND:key=value,key=value`` (a comma starts a new pair only where ``name=`` follows it, so
    URLs may hold commas; a repeated key makes a list), or a JSON object. Values stay text; each
    kind converts its own.
    """
    if not isinstance(text, str) or not text.strip():
        raise InputError("check", text, _SPEC_EXPECTED)
    body = text.strip()
    if body.startswith("{"):
        try:
            raw = json.loads(body)
        except ValueError as exc:
            raise InputError("check", text, f"a valid JSON object ({exc})") from None
        if not isinstance(raw, dict):
            raise InputError("check", text, "a JSON object")
        return raw
    kind, colon, rest = body.partition(":")
    kind = kind.strip()
    if not _KIND_NAME.fullmatch(kind):
        raise InputError("check", text, _SPEC_EXPECTED)
    raw_spec: dict[str, Any] = {"kind": kind}
    if not colon or not rest.strip():
        return raw_spec
    for piece in _SPLIT.split(rest):
        key, eq, value = piece.partition("=")
        key = key.strip()
        if not eq or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
            raise InputError("check", piece, "key=value pairs after 'kind:'")
        value = value.strip()
        if key in raw_spec and key != "kind":
            existing = raw_spec[key]
            raw_spec[key] = [*existing, value] if isinstance(existing, list) else [existing, value]
        elif key == "kind":
            raise InputError("check", piece, "the kind only once, before the colon")
        else:
            raw_spec[key] = value
    return raw_spec


def read_checks(
    specs: Iterable[str | Mapping[str, Any]], question_kind: str
) -> list[dict[str, Any]]:
    """Checks as a person gives them (the command line's text form, :func:`parse_check`, or an
    object already read), each validated for a question of ``question_kind`` (binary, numeric,
    date, choice): what ``add --check``, ``check --add``, the API and the pages store."""
    return [
        validate_check(
            parse_check(s) if isinstance(s, str) else dict(s), question_kind=question_kind
        )
        for s in specs
    ]
