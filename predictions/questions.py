"""Question types: binary, numeric, date and multiple choice (stdlib only, for the CLI's fast path).

A binary question is answered with one probability (:class:`~predictions.records.EstimateRow`'s
``probability``). The others carry a :class:`Question` (their spec, stored as JSON in the forecast's
``question`` column) and each estimate carries ``values``:

- **numeric** and **date**: the forecast's cumulative distribution on a fixed grid of
  :data:`GRID` points (as Metaculus stores it) spanning the range in the *scaled* coordinate
  ``u`` (0 at the lower bound, 1 at the upper; linear, or logarithmic with ``log``). ``values[k]``
  is P(outcome <= the point at u = k / (GRID - 1)). Between grid points the CDF is linear in ``u``;
  ``values[0]`` is the mass at or below the lower bound (0 for a closed bound) and
  ``1 - values[-1]`` the mass above the upper bound (0 for a closed bound). A date question is a
  numeric question over POSIX seconds (UTC).
- **choice**: one probability per option, in the options' order, summing to 1.

Values are rounded to :data:`DIGITS` decimals when an estimate is made, so the stored column
(:func:`encode`), the ledger's JSON and every export hold the very same numbers.

A resolution is a number (``resolution_value``): the outcome for numeric questions, POSIX seconds
for date questions, the option's index for choice questions.
"""

from __future__ import annotations

import math
import sys
from array import array
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from predictions.errors import InputError

__all__ = [
    "DIGITS",
    "GRID",
    "KINDS",
    "Question",
    "decode",
    "encode",
    "rounded",
]

#: The question types. ``binary`` questions have no :class:`Question`.
KINDS = ("binary", "numeric", "date", "choice")
#: Points of a numeric or date forecast's CDF (Metaculus stores 201).
GRID = 201
#: Decimals kept of every stored CDF value and option probability.
DIGITS = 6


@dataclass(frozen=True)
class Question:
    """The spec of a numeric, date or multiple-choice question.

    Numeric and date: the range ``lower``..``upper`` (date: POSIX seconds), whether an outcome may
    fall beyond each bound (``open_lower``, ``open_upper``) and whether the grid is logarithmic
    (``log``, numeric only, ``lower > 0``). Choice: the ``options`` (2 to 30 names) and whether they
    are ``ordered`` (for the ranked probability score).
    """

    kind: str
    lower: float = 0.0
    upper: float = 0.0
    open_lower: bool = False
    open_upper: bool = False
    log: bool = False
    options: tuple[str, ...] = ()
    ordered: bool = False

    @property
    def continuous(self) -> bool:
        """Numeric or date: a distribution over a range, stored as a CDF on the grid."""
        return self.kind in ("numeric", "date")

    def spec(self) -> dict[str, Any]:
        """The spec as the database, the ledger and the exports write it (JSON; dates as ISO)."""
        if self.kind == "choice":
            return {"options": list(self.options), "ordered": self.ordered}
        lower: Any = self.lower
        upper: Any = self.upper
        if self.kind == "date":
            lower, upper = _iso_seconds(self.lower), _iso_seconds(self.upper)
        spec = {"lower": lower, "upper": upper, "open_lower": self.open_lower}
        spec.update(open_upper=self.open_upper)
        if self.kind == "numeric":
            spec["log"] = self.log
        return spec

    @classmethod
    def from_spec(cls, kind: str, spec: Mapping[str, Any]) -> Question:
        """The question a :meth:`spec` describes (as read back from the database or a file)."""
        if kind == "choice":
            return cls(kind, options=tuple(spec["options"]), ordered=bool(spec.get("ordered")))
        if kind not in ("numeric", "date"):
            raise InputError("kind", kind, "one of " + ", ".join(KINDS))
        lower, upper = spec["lower"], spec["upper"]
        if kind == "date":
            lower, upper = _seconds(lower), _seconds(upper)
        return cls(
            kind,
            lower=float(lower),
            upper=float(upper),
            open_lower=bool(spec.get("open_lower")),
            open_upper=bool(spec.get("open_upper")),
            log=bool(spec.get("log")),
        )

    def scaled(self, x: float) -> float:
        """The grid coordinate ``u`` of ``x`` (0 at the lower bound, 1 at the upper; beyond the
        range below 0 or above 1)."""
        if self.log:
            return math.log(x / self.lower) / math.log(self.upper / self.lower)
        return (x - self.lower) / (self.upper - self.lower)

    def unscaled(self, u: float) -> float:
        """The value at grid coordinate ``u`` (the inverse of :meth:`scaled`)."""
        if self.log:
            return self.lower * (self.upper / self.lower) ** u
        return self.lower + u * (self.upper - self.lower)


def _iso_seconds(seconds: float) -> str:
    at = datetime.fromtimestamp(seconds, UTC).replace(tzinfo=None)
    return at.isoformat(timespec="seconds") + "Z"


def _seconds(value: str | float) -> float:
    if isinstance(value, int | float):
        return float(value)
    at = datetime.fromisoformat(value.removesuffix("Z"))
    return at.replace(tzinfo=at.tzinfo or UTC).timestamp()


def rounded(values: Iterable[float]) -> tuple[float, ...]:
    """``values`` as stored: each rounded to :data:`DIGITS` decimals (``0.0`` for ``-0.0``)."""
    return tuple(round(float(v), DIGITS) + 0.0 for v in values)


def encode(values: Iterable[float]) -> bytes:
    """The stored column of an estimate's values: little-endian float64s."""
    packed = array("d", values)
    if sys.byteorder == "big":
        packed.byteswap()
    return packed.tobytes()


def decode(blob: bytes | bytearray | memoryview) -> tuple[float, ...]:
    """The values an :func:`encode`\\ d column holds (SQLite gives bytes, PostgreSQL a
    memoryview)."""
    packed = array("d")
    packed.frombytes(bytes(blob))
    if sys.byteorder == "big":
        packed.byteswap()
    return tuple(packed)
