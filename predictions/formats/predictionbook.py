"""PredictionBook JSON: resolved questions with every user's credences over time.

The file is a list of questions as scraped from predictionbook.com::

    {"number": 194113, "event": "[Politics] Centre Party to remain in government ...",
     "outcome": "right", "user": "Cato",
     "time_created": "2019-01-09 05:35:49+00:00", "time_known": "2019-03-04 12:00:00+00:00",
     "responses": [{"user": "Cato", "time": "...", "actions": {"credence": 65}},
                   {"user": "Cato", "time": "...", "actions": {"outcome": "right"}}, ...]}

becomes forecast ``predictionbook:194113`` by ``Cato``, created at ``time_created``, due and
resolved at ``time_known`` (``right`` = YES, ``wrong`` = NO), resolved by the user who last set
that outcome (``predictionbook`` when the scrape does not say), tagged ``predictionbook`` and,
from a leading ``[Politics]``, ``politics``. Every credence becomes an estimate by its user at its
time, a comment in the same response its note. Credences of 0 and 100 are kept as 0.0 and 1.0:
this is history, and scoring clamps them by its stated policy.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Iterator, Mapping
from typing import IO, Any

from predictions.errors import InputError
from predictions.formats.records import (
    EstimateIn,
    FileMeta,
    ForecastIn,
    ReadContext,
    clean_text,
    one_line_title,
    parse_time,
)
from predictions.validation import parse_tag, require_text

__all__ = ["looks_like_predictionbook", "read_predictionbook"]

_OUTCOMES = {"right": True, "wrong": False}
_CATEGORY = re.compile(r"^\s*\[([^\]]{1,40})\]")


def looks_like_predictionbook(head: str) -> bool:
    """True when the first bytes of a file look like a PredictionBook question list."""
    return head.lstrip().startswith("[") and '"event"' in head and '"number"' in head


def read_predictionbook(fh: IO[str], ctx: ReadContext, meta: FileMeta) -> Iterator[ForecastIn]:
    """Read the questions of a PredictionBook JSON file (a few MB: loaded whole)."""
    try:
        data = json.load(fh)
    except json.JSONDecodeError as exc:
        meta.problems.append(f"not a readable JSON file: line {exc.lineno}: {exc.msg}")
        return
    if not isinstance(data, list):
        meta.problems.append("expected a JSON list of PredictionBook questions")
        return
    for i, item in enumerate(data):
        where = f"question {i + 1}"
        if isinstance(item, Mapping) and isinstance(item.get("number"), int):
            where += f" (number {item['number']})"
        record = ForecastIn(where=where)
        try:
            _fill(record, item)
        except InputError as exc:
            record.problems.append(f"{where}: {exc}")
        except KeyError as exc:
            record.problems.append(f"{where}: {exc.args[0]}: missing")
        except (TypeError, ValueError) as exc:
            record.problems.append(f"{where}: not a PredictionBook question ({exc!r})")
        yield record


def _fill(r: ForecastIn, q: Mapping[str, Any]) -> None:
    number = q["number"]
    if not isinstance(number, int):
        raise InputError("number", number, "a whole number")
    event = require_text(clean_text(str(q["event"])), "criteria")
    assert event is not None
    outcome = q["outcome"]
    if outcome not in _OUTCOMES:
        raise InputError(
            "outcome", outcome, "right or wrong (only resolved questions can be imported)"
        )
    url = f"https://predictionbook.com/predictions/{number}"
    r.ref = f"predictionbook:{number}"
    r.title = require_text(one_line_title(event), "title", multiline=False) or ""
    r.criteria = (
        f"{event}\n\nResolves as judged on PredictionBook ({url}): right = YES, wrong = NO."
    )
    r.source = url
    r.author = require_text(q["user"], "forecaster", multiline=False) or ""
    r.created_at = parse_time(q["time_created"], "time_created")
    r.due = parse_time(q["time_known"], "time_known")
    tags = {"predictionbook"}
    category = _CATEGORY.match(event)
    if category:
        with contextlib.suppress(InputError):
            tags.add(parse_tag(category.group(1).strip().replace(" ", "-")))
    r.tags = sorted(tags)
    judge = None
    for i, response in enumerate(q.get("responses") or []):
        actions = response["actions"]
        user = require_text(response["user"], "forecaster", multiline=False) or ""
        at = parse_time(response["time"], f"response {i + 1} time")
        if "credence" in actions:
            credence = actions["credence"]
            if isinstance(credence, bool) or not isinstance(credence, int | float):
                raise InputError(f"response {i + 1} credence", credence, "a number from 0 to 100")
            if not 0 <= credence <= 100:
                raise InputError(f"response {i + 1} credence", credence, "a number from 0 to 100")
            comment = actions.get("comment")
            note = require_text(
                clean_text(comment) if isinstance(comment, str) else comment, "note", optional=True
            )
            r.estimates.append(EstimateIn(credence / 100.0, user, at, note))
        if actions.get("outcome") == outcome:
            judge = user
    r.status = "resolved"
    r.outcome = _OUTCOMES[outcome]
    r.resolved_at = r.due
    r.resolved_by = judge or "predictionbook"
    r.resolution_note = f"PredictionBook: {outcome}"
