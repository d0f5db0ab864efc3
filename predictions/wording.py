"""Counts and durations as people read them, one way everywhere (stdlib only: the everyday commands
load it; ``resolvers`` and ``reports`` use it too, which is why it lives here).

    >>> plural(1, "forecast"), plural(3, "check"), plural(2, "entry", "entries")
    ('1 forecast', '3 checks', '2 entries')
    >>> duration(timedelta(hours=4 / 3)), duration(timedelta(days=9, hours=5)), duration(timedelta(0))
    ('1 h 20 min', '1 week 2 days', '0 s')
"""

from __future__ import annotations

from datetime import timedelta

__all__ = ["duration", "format_probability", "plural"]

# Days and longer in words (``3 days``), shorter in symbols (``1 h 20 min``, ``45 s``).
_UNITS = (
    ("year", 365 * 86400),
    ("month", 30 * 86400),
    ("week", 7 * 86400),
    ("day", 86400),
    ("h", 3600),
    ("min", 60),
    ("s", 1),
)
_SYMBOLS = ("h", "min", "s")


def plural(count: int, noun: str, many: str | None = None) -> str:
    """``count`` and ``noun``, the noun in the plural unless the count is one (``many``, or
    ``noun + "s"``)."""
    return f"{count} {noun if count == 1 else (many or noun + 's')}"


def duration(delta: timedelta) -> str:
    """A span of time in its two largest units, rounded down: ``1 h 20 min``, ``2 days 3 h``,
    ``3 weeks``; the sign is ignored (the caller says ``in`` or ``ago``)."""
    seconds = int(abs(delta.total_seconds()))
    parts: list[str] = []
    for unit, size in _UNITS:
        if seconds >= size or (parts and len(parts) < 2):
            n, seconds = divmod(seconds, size)
            if n:
                parts.append(f"{n} {unit}" if unit in _SYMBOLS else plural(n, unit))
            if parts and (len(parts) == 2 or not n):
                break
    return " ".join(parts) or "0 s"


def format_probability(p: float | None) -> str:
    """``0.7`` as ``70%``; small and large values keep a decimal (``0.5%``, ``99.5%``)."""
    if p is None:
        return "-"
    pct = p * 100
    return f"{pct:.0f}%" if abs(pct - round(pct)) < 1e-9 else f"{pct:.1f}%"
