"""What a person types for a question, a forecast and an outcome, read once for every front end:
the CLI's options (``add``, ``update``, ``resolve``), the pages' form fields and the API's JSON
fields pass the same texts here and get the same one-line errors (stdlib only: the CLI's fast
path imports it)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from predictions import questions
from predictions.errors import InputError
from predictions.questions import Question
from predictions.validation import parse_outcome, parse_probability, read_due, require_text

__all__ = ["read_changes", "read_forecast", "read_outcome", "read_question", "stored_forecast"]


def read_question(
    numeric: str | None,
    date: str | None,
    options: str | None,
    open_bounds: str | None = None,
    log: bool = False,
    ordered: bool = False,
) -> Question | None:
    """The question a forecast registers: binary (None) unless ``numeric`` (a range ``0..34``),
    ``date`` (``2026-01-01..2035-12-31``) or ``options`` (``"A,B,C"``) says otherwise (one of
    them); ``open_bounds`` and ``log`` go with a range, ``ordered`` with options."""
    given = {"--numeric": numeric, "--date": date, "--options": options}
    named = [name for name, value in given.items() if value is not None]
    if len(named) > 1:
        raise InputError("question", " and ".join(named), "one of --numeric, --date, --options")
    if (open_bounds or log) and not (numeric or date):
        option = "--open" if open_bounds else "--log"
        raise InputError(option[2:], option, "a range given with --numeric or --date")
    if ordered and not options:
        raise InputError("ordered", "--ordered", "options given with --options")
    if options is not None:
        return questions.parse_options(options, ordered=ordered)
    if numeric is not None:
        return questions.parse_range("numeric", numeric, open_bounds=open_bounds, log=log)
    if date is not None:
        return questions.parse_range("date", date, open_bounds=open_bounds, log=log)
    return None


def read_forecast(
    question: Question | None,
    probability: str | None,
    quantiles: str | None = None,
    distribution: str | None = None,
) -> float | tuple[float, ...]:
    """The forecast typed for ``question`` (None: binary), parsed: a probability for a binary
    question, option probabilities (``probability``, the CLI's ``-p``) for a choice question, a
    CDF from ``quantiles`` or ``distribution`` for a numeric or date one. Exactly the form the
    question takes, given once."""
    kind = "binary" if question is None else question.kind
    continuous = question is not None and question.continuous
    given = {"-p": probability, "--quantiles": quantiles, "--distribution": distribution}
    named = [name for name, value in given.items() if value is not None]
    wanted = ["--quantiles", "--distribution"] if continuous else ["-p"]
    if len(named) != 1 or named[0] not in wanted:
        field = {"-p": "probability", "--quantiles": "quantiles", "--distribution": "distribution"}
        shown = " and ".join(named) if named else None
        raise InputError(
            field[named[0]] if len(named) == 1 else field[wanted[0]],
            shown,
            " or ".join(wanted)
            + (" (one of them)" if continuous else "")
            + f" for a {kind} question",
        )
    if question is None:
        return parse_probability(probability)
    if distribution is not None:
        return questions.parse_distribution(question, distribution)
    return questions.parse_forecast(question, (quantiles or probability) or "")


def stored_forecast(question: Question | None, given: float | tuple[float, ...]) -> dict[str, Any]:
    """The keywords :func:`predictions.store.add_forecast` takes for a forecast
    :func:`read_forecast` read: ``probability`` for a binary question (``question`` None), else
    ``question`` and ``values``."""
    if question is None:
        return {"probability": given}
    return {"question": question, "values": given}


def read_outcome(question: Question | None, text: str) -> bool | float:
    """What a question resolved to, as typed: yes or no (binary), a number, a date, or an option's
    name or number (:func:`~predictions.questions.parse_outcome_value`)."""
    if question is None:
        return parse_outcome(text)
    return questions.parse_outcome_value(question, text)


def read_changes(
    title: str | None,
    criteria: str | None,
    due: str | None,
    tags: Iterable[str] = (),
    untags: Iterable[str] = (),
    *,
    now: datetime,
    tz: ZoneInfo | None = None,
) -> list[tuple[str, object]]:
    """An amendment's changes, checked, as ``(field, value)`` pairs for
    :func:`predictions.store.amend` (tags as ``(added, taken off)``): a new due date must lie in
    the future, and something must change."""
    tags, untags = tuple(tags), tuple(untags)
    changes: list[tuple[str, object]] = []
    if title is not None:
        changes.append(("title", require_text(title, "title", multiline=False)))
    if criteria is not None:
        changes.append(("criteria", require_text(criteria, "criteria")))
    if due is not None:
        due_at = read_due(due, now=now, tz=tz)
        if due_at.at <= now:
            raise InputError("due", due, "a date in the future")
        changes.append(("due", due_at))
    if tags or untags:
        changes.append(("tags", (tags, untags)))  # tags also change once the forecast is closed
    if not changes:
        raise InputError(
            "amend", "nothing", "at least one of --title, --criteria, --due, --tag, --untag"
        )
    return changes
