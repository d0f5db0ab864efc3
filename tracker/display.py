"""Terminal output: tables (rich on a terminal, plain text when piped), JSON, forecasts of every
question type (times: :mod:`predictions.timetext`); and files written for the user
(:func:`output_file`)."""

from __future__ import annotations

import contextlib
import json
import os
import sys
import unicodedata
from collections.abc import Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import click

from predictions.errors import InputError, OperationalError
from predictions.questions import (
    Question,
    format_read,
    format_value,
    quantile,
    sparkline,
    summary,
)
from predictions.wording import duration, format_probability

if TYPE_CHECKING:
    from predictions.records import EstimateRow, ForecastRow, Standing

__all__ = [
    "emit",
    "emit_json",
    "fancy",
    "format_estimate",
    "format_others",
    "format_outcome",
    "forecast_picture",
    "output_file",
    "question_line",
    "relative",
    "table",
]


def fancy() -> bool:
    """Colour and box tables only on a terminal, and never with ``NO_COLOR`` set."""
    return (
        sys.stdout.isatty() and not os.environ.get("NO_COLOR") and os.environ.get("TERM") != "dumb"
    )


def emit_json(data: Any) -> None:
    """Print JSON (UTF-8, indented) to stdout."""
    click.echo(json.dumps(data, indent=2, ensure_ascii=False, default=str))


def emit(record: Any, as_json: bool, text: str) -> None:
    """A command's result: ``record`` as JSON with ``--json``, else the line ``text``."""
    if as_json:
        emit_json(record)
    else:
        click.echo(text)


@contextlib.contextmanager
def output_file(path: Path, option: str = "--output") -> Iterator[TextIO]:
    """A text file written whole or not at all: a temporary file beside ``path``, renamed over it
    when the block ends without an error, created with the mode the user's umask gives (0644
    under umask 022). A folder that does not exist is bad input, named in the message."""
    folder = path.parent
    if not folder.is_dir():
        raise InputError(option, str(path), f"a file in an existing folder (no folder {folder})")
    tmp = folder / f".{path.name}.{os.urandom(4).hex()}.partial"
    try:
        try:
            with open(tmp, "x", encoding="utf-8", newline="") as fh:  # mode 0666 minus the umask
                yield fh
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
    except OSError as exc:
        raise OperationalError(f"cannot write {path}: {exc.strerror or exc}") from None


def table(
    headers: Sequence[str], rows: Sequence[Sequence[Any]], *, title: str | None = None
) -> None:
    """Print rows as a table: rich on a terminal, tab-aligned plain text when piped."""
    if fancy():
        from rich.console import Console
        from rich.table import Table

        t = Table(title=title, header_style="bold")
        for h in headers:
            t.add_column(h, overflow="fold")
        for row in rows:
            t.add_row(*("" if c is None else str(c) for c in row))
        Console().print(t)
        return
    if title:
        click.echo(title)
    cells = [[("" if c is None else str(c)).replace("\n", " ") for c in row] for row in rows]
    widths = [_columns(h) for h in headers]
    for row in cells:
        for i, c in enumerate(row[:-1]):
            widths[i] = min(max(widths[i], _columns(c)), 60)

    def fmt(row: list[str]) -> str:
        last = len(row) - 1
        return "  ".join(c if i == last else _pad(c, widths[i]) for i, c in enumerate(row)).rstrip()

    click.echo(fmt(list(headers)))
    for row in cells:
        click.echo(fmt(row))


def _columns(text: str) -> int:
    """Terminal columns ``text`` takes: wide and full-width characters (CJK) two, combining
    marks none."""
    return sum(
        0 if unicodedata.combining(c) else 2 if unicodedata.east_asian_width(c) in "WF" else 1
        for c in text
    )


def _pad(text: str, width: int) -> str:
    """``text`` cut to ``width`` columns (never halving a wide character) and padded to it."""
    used = 0
    for i, c in enumerate(text):
        step = _columns(c)
        if used + step > width:
            text = text[:i]
            break
        used += step
    return text + " " * (width - used)


def format_estimate(question: Question | None, estimate: EstimateRow | None) -> str:
    """An estimate in a few characters: its probability (``70%``) on a binary question, else its
    :func:`~predictions.questions.summary` (``median 8``, ``DeepSeek 35%``); ``-`` for none."""
    if estimate is None:
        return "-"
    if question is None or estimate.values is None:
        return format_probability(estimate.probability)
    return summary(question, estimate.values)


def format_others(view: Standing, question: Question | None = None) -> str:
    """The others' latest beside yours, compactly: one other person by name (``bob 40%``,
    ``bob median 9``), several by their median and count (``med 55% (3)``; ``3 others`` on a
    non-binary question), then the markets (``mkt 18%``)."""
    parts = []
    if len(view.others) == 1:
        parts.append(f"{view.others[0].forecaster} {format_estimate(question, view.others[0])}")
    elif view.others and question is not None:
        parts.append(f"{len(view.others)} others")
    elif view.others:
        parts.append(f"med {format_probability(view.median)} ({len(view.others)})")
    if view.markets:
        parts.append("mkt " + "/".join(format_estimate(question, e) for e in view.markets))
    return ", ".join(parts)


def format_outcome(forecast: ForecastRow) -> str:
    """What a resolved forecast resolved to: ``YES``/``NO``, a number, a date or an option."""
    if forecast.question is None or forecast.resolution_value is None:
        return "YES" if forecast.outcome else "NO"
    return format_value(forecast.question, forecast.resolution_value)


def question_line(question: Question) -> str:
    """A question's spec in words: ``numeric 0..34 (open upper, log scale)``, ``date
    2026-01-01..2035-12-31``, ``choice of DeepSeek, Other (ordered)``."""
    if question.kind == "choice":
        return (
            "choice of " + ", ".join(question.options) + (" (ordered)" if question.ordered else "")
        )
    bounds = {(True, True): "both", (True, False): "lower", (False, True): "upper"}
    notes = []
    if question.open_lower or question.open_upper:
        notes.append(f"open {bounds[question.open_lower, question.open_upper]}")
    if question.log:
        notes.append("log scale")
    low, high = (format_value(question, x) for x in (question.lower, question.upper))
    return f"{question.kind} {low}..{high}" + (f" ({', '.join(notes)})" if notes else "")


#: The quantiles ``show`` lists of a numeric or date forecast.
SHOWN_QUANTILES = (0.1, 0.25, 0.5, 0.75, 0.9)
_BAR = 40  # columns of a probability of 1 in an option bar


def forecast_picture(
    question: Question, values: Sequence[float], resolved: float | None = None
) -> list[str]:
    """``show``'s drawing of a forecast: the quantiles and a sparkline of the density between
    the bounds (with the mass beyond an open bound), or one bar per option (the option a choice
    question resolved to marked)."""
    if question.kind == "choice":
        width = max(_columns(name) for name in question.options)
        return [
            f"{_pad(name, width)}  {format_probability(p):>6}  {'█' * round(p * _BAR)}"
            + ("  <- resolved" if resolved == i else "")
            for i, (name, p) in enumerate(zip(question.options, values, strict=True))
        ]
    shown = "  ".join(
        f"{p * 100:g}%: {format_read(question, quantile(question, values, p))}"
        for p in SHOWN_QUANTILES
    )
    low, high = (format_value(question, x) for x in (question.lower, question.upper))
    beyond = []
    if question.open_lower:
        beyond.append(f"below {low}: {format_probability(values[0])}")
    if question.open_upper:
        beyond.append(f"above {high}: {format_probability(1 - values[-1])}")
    line = f"{low} {sparkline(values)} {high}" + (f"  ({', '.join(beyond)})" if beyond else "")
    return [shown, line]


def relative(due: datetime, now: datetime, status: str = "open") -> str:
    """``due in 3 days`` or ``overdue by 2 weeks`` for open forecasts; blank otherwise."""
    if status != "open":
        return ""
    delta = due - now
    if delta.total_seconds() >= 0:
        return f"due in {duration(delta)}"
    return f"overdue by {duration(delta)}"
