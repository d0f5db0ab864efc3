"""ForecastBench: a question set, and optionally its resolution set.

A question set (``{"forecast_due_date", "question_set", "questions": [...]}``) holds two kinds of
question:

- **market questions** (sources ``manifold``, ``metaculus``, ``polymarket``, ``infer``;
  ``resolution_dates`` is ``"N/A"``): one forecast ``forecastbench:<id>``, due when the market
  closes. The market's value at ``freeze_datetime`` becomes an estimate by the market's name
  (forecaster ``manifold``, ``metaculus``, ...) at that time.
- **dataset questions** (``acled``, ``fred``, ``yfinance``, ``dbnomics``, ``wikipedia``): one
  forecast per resolution date, ``forecastbench:<id>:<date>``, due at the end of that day, with
  ``{resolution_date}`` and ``{forecast_due_date}`` filled in. The freeze value (a data value, not
  a probability) goes into the criteria.

A resolution set (``{"resolutions": [{"id", "source", "resolution_date", "resolved_to",
"resolved"}, ...]}``) resolves the questions it settles: only rows with ``resolved: true`` and
``resolved_to`` 0 or 1 are final (YES for 1), resolved by ``forecastbench`` at the end of the
resolution date. Other rows leave the forecast open. Example::

    tracker import forecastbench-2025-10-26-questions.json \\
        --resolutions forecastbench-2025-10-26-resolutions.json

License of the data: CC BY-SA 4.0 (ForecastBench, forecastingresearch.org).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from datetime import date, datetime
from typing import IO, Any
from zoneinfo import ZoneInfo

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
from predictions.validation import end_of_day, parse_tag, require_text

__all__ = [
    "looks_like_forecastbench",
    "looks_like_forecastbench_resolutions",
    "read_forecastbench",
]

_UTC = ZoneInfo("UTC")
_AUTHOR = "forecastbench"


def looks_like_forecastbench(head: str) -> bool:
    """True when the first bytes of a file look like a ForecastBench question set."""
    return '"question_set"' in head and '"questions"' in head


def looks_like_forecastbench_resolutions(head: str) -> bool:
    """True when the first bytes of a file look like a ForecastBench resolution set."""
    return '"question_set"' in head and '"resolutions"' in head


def _load(fh: IO[str], key: str, meta: FileMeta, name: str) -> tuple[str, list[Any] | None]:
    """The set's forecast due date and its list under ``key`` (None, with a problem, if absent)."""
    try:
        data = json.load(fh)
    except json.JSONDecodeError as exc:
        meta.problems.append(f"{name}: not a readable JSON file: line {exc.lineno}: {exc.msg}")
        return "", None
    items = data.get(key) if isinstance(data, Mapping) else None
    if not isinstance(items, list):
        meta.problems.append(f"{name}: expected an object with a {key!r} list")
        return "", None
    return str(data.get("forecast_due_date") or ""), items


def _day(value: object, field: str) -> date:
    try:
        return date.fromisoformat(str(value)[:10])
    except ValueError:
        raise InputError(field, value, "a date such as 2025-11-02") from None


def _final(
    resolutions: list[Any], meta: FileMeta
) -> tuple[dict[tuple[str, str], tuple[bool, int]], set[str]]:
    """Final outcomes by (question id, resolution date), and every id the set mentions."""
    final: dict[tuple[str, str], tuple[bool, int]] = {}
    seen: dict[tuple[str, str], int] = {}
    for i, row in enumerate(resolutions):
        where = f"resolutions record {i + 1}"
        if not isinstance(row, Mapping) or not isinstance(row.get("id"), str):
            meta.problems.append(f"{where}: expected an object with a text id")
            continue
        try:
            day = _day(row.get("resolution_date"), "resolution_date").isoformat()
        except InputError as exc:
            meta.problems.append(f"{where}: {exc}")
            continue
        key = (row["id"], day)
        if key in seen:
            meta.problems.append(
                f"{where}: question {row['id']} on {day} is resolved twice "
                f"(also record {seen[key]})"
            )
            continue
        seen[key] = i + 1
        value = row.get("resolved_to")
        if row.get("resolved") is True and value in (0, 1) and not isinstance(value, bool):
            final[key] = (value == 1, i + 1)
    return final, {k[0] for k in seen}


def read_forecastbench(
    fh: IO[str],
    ctx: ReadContext,
    meta: FileMeta,
    resolutions: IO[str] | None = None,
) -> Iterator[ForecastIn]:
    """Read a ForecastBench question set, resolving what the resolution set settles."""
    due_day, questions = _load(fh, "questions", meta, "questions")
    final: dict[tuple[str, str], tuple[bool, int]] = {}
    mentioned: set[str] = set()
    if resolutions is not None:
        _day_, rows = _load(resolutions, "resolutions", meta, "resolutions")
        if rows is not None:
            final, mentioned = _final(rows, meta)
    if questions is None:
        return
    used: set[tuple[str, str]] = set()
    ids: set[str] = set()
    for i, q in enumerate(questions):
        where = f"question {i + 1}"
        if not isinstance(q, Mapping) or not isinstance(q.get("id"), str):
            yield ForecastIn(where=where, problems=[f"{where}: expected an object with a text id"])
            continue
        ident = q["id"][:20]
        where += f" ({ident if ident.isprintable() else ascii(ident)})"  # no raw control bytes
        ids.add(q["id"])
        dates = q.get("resolution_dates")
        try:
            if isinstance(dates, list):
                for day in dates:
                    day_ = _day(day, "resolution_dates")
                    yield _dataset(q, where, day_, due_day, final, used)
            else:
                yield _market(q, where, final, used)
        except (InputError, KeyError, TypeError, ValueError) as exc:
            if isinstance(exc, InputError):
                text = str(exc)
            elif isinstance(exc, KeyError):
                text = f"{exc.args[0]}: missing"
            else:
                text = f"not a question ({exc!r})"
            yield ForecastIn(where=where, problems=[f"{where}: {text}"])
    unknown = sorted(mentioned - ids)
    for qid in unknown[:20]:
        meta.problems.append(f"resolutions: question {qid} is not in the question set")
    for key in sorted(set(final) - used):
        if key[0] in ids:
            meta.problems.append(
                f"resolutions record {final[key][1]}: question {key[0]} has no resolution "
                f"date {key[1]}"
            )


def _common(q: Mapping[str, Any], where: str, ref: str, text: str) -> ForecastIn:
    created = parse_time(q["freeze_datetime"], "freeze_datetime")
    source = str(q["source"])
    # The ref is stored as is: refuse what the database could not hold (control bytes, which
    # PostgreSQL refuses in text, or more than the column's 300 characters).
    ref = require_text(ref, "id", multiline=False) or ""
    if len(ref) > 300:
        raise InputError("id", q["id"], "an id short enough for a ref of at most 300 characters")
    r = ForecastIn(where=where, ref=ref, created_at=created, author=_AUTHOR)
    r.title = require_text(one_line_title(text.split("\n")[0]), "title", multiline=False) or ""
    r.tags = sorted({"forecastbench", parse_tag(source)})
    url = q.get("url")
    r.source = require_text(url, "source", optional=True, multiline=False) if url else None
    return r


def _resolve(
    r: ForecastIn,
    key: tuple[str, str],
    final: dict[tuple[str, str], tuple[bool, int]],
    used: set[tuple[str, str]],
) -> None:
    if key not in final:
        return
    used.add(key)
    outcome, _record = final[key]
    r.status = "resolved"
    r.outcome = outcome
    r.resolved_at = end_of_day(date.fromisoformat(key[1]), _UTC)
    r.resolved_by = _AUTHOR
    r.resolution_note = f"ForecastBench resolution set: resolved_to {1 if outcome else 0}"


def _market(
    q: Mapping[str, Any],
    where: str,
    final: dict[tuple[str, str], tuple[bool, int]],
    used: set[tuple[str, str]],
) -> ForecastIn:
    text = require_text(clean_text(str(q["question"])), "question") or ""
    r = _common(q, where, f"forecastbench:{q['id']}", text)
    parts = [text, str(q.get("resolution_criteria") or "").strip()]
    market = str(q.get("market_info_resolution_criteria") or "").strip()
    if market and market != "N/A":
        parts.append(market)
    r.criteria = require_text(clean_text("\n\n".join(p for p in parts if p)), "criteria") or ""
    matches = [k for k in final if k[0] == q["id"]]
    close = q.get("market_info_close_datetime")
    if close and close != "N/A":
        r.due = _instant(close, "market_info_close_datetime")
    elif matches:
        r.due = end_of_day(date.fromisoformat(matches[0][1]), _UTC)
    else:
        raise InputError("market_info_close_datetime", close, "the date the market closes")
    value = q.get("freeze_datetime_value")
    try:
        p = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise InputError("freeze_datetime_value", value, "a probability from 0 to 1") from None
    if not 0.0 <= p <= 1.0:
        raise InputError("freeze_datetime_value", value, "a probability from 0 to 1")
    explanation = str(q.get("freeze_datetime_value_explanation") or "").strip() or None
    r.estimates.append(EstimateIn(p, parse_tag(str(q["source"])), r.created_at, explanation))
    for key in matches:
        _resolve(r, key, final, used)
    return r


def _instant(value: object, field: str) -> datetime:
    text = str(value)
    if len(text) == 10:
        return end_of_day(_day(text, field), _UTC)
    return parse_time(text, field)


def _dataset(
    q: Mapping[str, Any],
    where: str,
    day: date,
    due_day: str,
    final: dict[tuple[str, str], tuple[bool, int]],
    used: set[tuple[str, str]],
) -> ForecastIn:
    due_day = (due_day or str(q["freeze_datetime"]))[:10]
    text = (
        str(q["question"])
        .replace("{resolution_date}", day.isoformat())
        .replace("{forecast_due_date}", due_day)
    )
    text = require_text(clean_text(text), "question") or ""
    r = _common(q, f"{where} on {day.isoformat()}", f"forecastbench:{q['id']}:{day}", text)
    parts = [text, str(q.get("resolution_criteria") or "").strip()]
    value = q.get("freeze_datetime_value")
    if value not in (None, "", "N/A"):
        explanation = str(q.get("freeze_datetime_value_explanation") or "the value").strip()
        parts.append(
            f"At the freeze ({q['freeze_datetime']}): {explanation.rstrip('.')} = {value}."
        )
    r.criteria = require_text(clean_text("\n\n".join(p for p in parts if p)), "criteria") or ""
    r.due = end_of_day(day, _UTC)
    _resolve(r, (str(q["id"]), day.isoformat()), final, used)
    return r
