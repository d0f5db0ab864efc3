"""The fields of a numeric, date or multiple-choice question in the tracker's file formats, read
and checked: its ``kind`` and ``question`` (the spec), an estimate's values, a resolution value.

Each reader raises :class:`~predictions.errors.InputError` naming the field; the questions' own
rules (:mod:`predictions.questions`) decide what is valid, as for a question typed on the command
line. A CSV cell holds a spec or values as JSON text, a resolution value as a number's text.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Mapping
from datetime import date, datetime
from typing import Any

from predictions.errors import InputError
from predictions.questions import KINDS, Question, parse_forecast, parse_options, parse_range
from predictions.store import checked_resolution, checked_values

__all__ = ["question_in", "resolution_value_in", "values_in", "values_typed"]

_OPEN_BOUNDS = {(False, False): None, (True, False): "lower", (False, True): "upper"}
_OPEN_BOUNDS[True, True] = "both"
_SPEC_KEYS = {
    "numeric": frozenset(("lower", "upper", "open_lower", "open_upper", "log")),
    "date": frozenset(("lower", "upper", "open_lower", "open_upper")),
    "choice": frozenset(("options", "ordered")),
}


def _json_text(value: object) -> object:
    """A value a CSV cell holds as JSON text, read (any other value as it is)."""
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except json.JSONDecodeError:
        return value  # refused below, as the value it is


def question_in(kind: object, spec: object) -> Question:
    """A non-binary question as a file gives it (its ``kind`` and its ``question``, the spec as
    :meth:`~predictions.questions.Question.spec` writes it), checked by the rules that read a
    question typed on the command line (:func:`~predictions.questions.parse_range`,
    :func:`~predictions.questions.parse_options`)."""
    if kind not in KINDS[1:]:
        raise InputError("kind", kind, "numeric, date or choice (with its question)")
    spec = _json_text(spec)
    known = _SPEC_KEYS[kind]
    if not isinstance(spec, Mapping) or not known.issuperset(spec):
        raise InputError("question", spec, f"a {kind} question's spec: " + ", ".join(sorted(known)))
    flags = [spec.get(name, False) for name in ("open_lower", "open_upper", "log", "ordered")]
    if not all(isinstance(flag, bool) for flag in flags):
        raise InputError("question", spec, "true or false for open_lower, open_upper, log, ordered")
    if kind == "choice":
        options = spec.get("options")
        if not isinstance(options, list) or not all(isinstance(o, str) for o in options):
            raise InputError("options", options, "a list of option names")
        question = parse_options(",".join(options), ordered=flags[3])
        if list(question.options) != options:  # a name with a comma, or spaces around it
            raise InputError("options", options, "names without commas or surrounding spaces")
        return question
    bounds: list[Any] = [spec.get("lower"), spec.get("upper")]
    if kind == "numeric" and not all(
        isinstance(b, int | float) and not isinstance(b, bool) for b in bounds
    ):
        raise InputError("range", bounds, "two numbers, lower and upper")
    if kind == "date":  # a TOML date (2030-12-31 unquoted) as its ISO text
        bounds = [b.isoformat() if isinstance(b, date | datetime) else b for b in bounds]
    if kind == "date" and not all(isinstance(b, str) for b in bounds):
        raise InputError("range", bounds, "two ISO dates, lower and upper")
    text = "..".join(repr(float(b)) if kind == "numeric" else str(b) for b in bounds)
    opened = _OPEN_BOUNDS[bool(flags[0]), bool(flags[1])]
    return parse_range(kind, text, open_bounds=opened, log=flags[2])


def values_typed(question: Question, text: object) -> tuple[float, ...]:
    """A hand-written file's ``forecast``: quantiles, a named distribution or the options'
    probabilities as the command line takes them (:func:`~predictions.questions.parse_forecast`)."""
    if not isinstance(text, str):
        raise InputError("forecast", text, "text as typed: 10%=4,50%=8,90%=15, normal:8,3 or 35,65")
    return parse_forecast(question, text)


def values_in(question: Question, value: object) -> tuple[float, ...]:
    """An estimate's values (a list, or its JSON text in a CSV cell), as the store takes them
    (:func:`~predictions.store.checked_values`)."""
    return checked_values(question, _json_text(value))


def resolution_value_in(question: Question, value: object) -> float:
    """A resolution value (a number, or its text in a CSV cell), as the store takes it
    (:func:`~predictions.store.checked_resolution`)."""
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            value = float(value)
    return checked_resolution(question, value, "resolution_value")
