"""Terminal output: tables (rich on a terminal, plain text when piped), JSON, the picture of a
forecast of every question type (its words: :mod:`predictions.shown`; times:
:mod:`predictions.timetext`); and files written for the user (:func:`output_file`)."""

from __future__ import annotations

import contextlib
import json
import os
import sys
import unicodedata
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, TextIO

import click

from predictions.errors import InputError, OperationalError
from predictions.questions import Question, format_value, sparkline
from predictions.shown import beyond_bounds, quantile_points
from predictions.wording import format_probability

__all__ = [
    "emit",
    "emit_json",
    "fancy",
    "forecast_picture",
    "output_file",
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
    shown = "  ".join(f"{p}: {x}" for p, x in quantile_points(question, values))
    low, high = (format_value(question, x) for x in (question.lower, question.upper))
    beyond = beyond_bounds(question, values)
    line = f"{low} {sparkline(values)} {high}" + (f"  ({', '.join(beyond)})" if beyond else "")
    return [shown, line]
