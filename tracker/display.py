"""Terminal output: tables (rich on a terminal, plain text when piped), JSON, probabilities (times:
:mod:`predictions.timetext`)."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from predictions.records import Standing

__all__ = [
    "emit_json",
    "fancy",
    "format_others",
    "format_probability",
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
    widths = [len(h) for h in headers]
    for row in cells:
        for i, c in enumerate(row[:-1]):
            widths[i] = min(max(widths[i], len(c)), 60)

    def fmt(row: list[str]) -> str:
        last = len(row) - 1
        return "  ".join(
            c if i == last else c[:60].ljust(widths[i]) for i, c in enumerate(row)
        ).rstrip()

    click.echo(fmt(list(headers)))
    for row in cells:
        click.echo(fmt(row))


def format_probability(p: float | None) -> str:
    """``0.7`` as ``70%``; small and large values keep a decimal (``0.5%``, ``99.5%``)."""
    if p is None:
        return "-"
    pct = p * 100
    return f"{pct:.0f}%" if abs(pct - round(pct)) < 1e-9 else f"{pct:.1f}%"


def format_others(view: Standing) -> str:
    """The others' latest beside yours, compactly: one other person by name (``bob 40%``),
    several by their median and count (``med 55% (3)``), then the markets (``mkt 18%``)."""
    parts = []
    if len(view.others) == 1:
        parts.append(
            f"{view.others[0].forecaster} {format_probability(view.others[0].probability)}"
        )
    elif view.others:
        parts.append(f"med {format_probability(view.median)} ({len(view.others)})")
    if view.markets:
        parts.append("mkt " + "/".join(format_probability(e.probability) for e in view.markets))
    return ", ".join(parts)


def _span(delta: timedelta) -> str:
    seconds = abs(delta.total_seconds())
    for unit, size in (
        ("year", 365 * 86400),
        ("month", 30 * 86400),
        ("week", 7 * 86400),
        ("day", 86400),
        ("hour", 3600),
        ("minute", 60),
    ):
        if seconds >= size:
            n = int(seconds // size)
            return f"{n} {unit}{'s' if n != 1 else ''}"
    return "moments"


def relative(due: datetime, now: datetime, status: str = "open") -> str:
    """``due in 3 days`` or ``overdue by 2 weeks`` for open forecasts; blank otherwise."""
    if status != "open":
        return ""
    delta = due - now
    if delta.total_seconds() >= 0:
        return f"due in {_span(delta)}"
    return f"overdue by {_span(delta)}"
