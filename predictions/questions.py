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

import bisect
import itertools
import math
import re
import sys
from array import array
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from predictions.errors import InputError
from predictions.validation import parse_probability
from predictions.wording import format_probability

__all__ = [
    "DIGITS",
    "DISTRIBUTIONS",
    "GRID",
    "KINDS",
    "MIN_BIN_MASS",
    "MIN_OPTION",
    "MIN_TAIL_MASS",
    "Question",
    "cdf_from_quantiles",
    "check_cdf",
    "check_outcome_value",
    "check_probabilities",
    "decode",
    "encode",
    "format_read",
    "format_value",
    "leading",
    "median",
    "parse_date",
    "parse_distribution",
    "parse_forecast",
    "parse_options",
    "parse_outcome_value",
    "parse_range",
    "quantile",
    "rounded",
    "sparkline",
    "summary",
]

#: The question types. ``binary`` questions have no :class:`Question`.
KINDS = ("binary", "numeric", "date", "choice")
#: Points of a numeric or date forecast's CDF (Metaculus stores 201).
GRID = 201
#: Decimals kept of every stored CDF value and option probability.
DIGITS = 6
#: Least mass each of the grid's 200 bins holds (Metaculus's rule: 1% spread evenly), so that the
#: log score of any outcome inside the range is finite.
MIN_BIN_MASS = 0.01 / (GRID - 1)
#: Least mass beyond an open bound (Metaculus's rule), so an outcome there scores finitely too.
MIN_TAIL_MASS = 0.001
#: Least probability of each option of a multiple-choice question (Metaculus's rule: 0.1%).
MIN_OPTION = 0.001
#: Most options of a multiple-choice question (and least: 2).
MAX_OPTIONS = 30
# Stored values are rounded to DIGITS decimals: a bin or a tail may fall short of its minimum by
# that rounding, and a choice's probabilities sum to 1 within it per option.
_SLACK = 10.0**-DIGITS


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


# -- Reading a question's spec from the command line -----------------------------------------------

_RANGE_EXPECTED = {
    "numeric": "a range LOWER..UPPER of two numbers, lower first (0..34, 0.5..1e6)",
    "date": "a range FIRST..LAST of two dates, earlier first (2026-01-01..2035-12-31, 2026..2036)",
}
_OPEN = {None: (False, False), "none": (False, False), "lower": (True, False)}
_OPEN.update(upper=(False, True), both=(True, True))
_DATE = re.compile(r"^(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?$")
_DATE_EXPECTED = "a date: 2028, 2028-06, 2028-06-30 or an ISO date-time such as 2028-06-30T12:00Z"


def parse_date(text: str, field: str) -> float:
    """A date as POSIX seconds (UTC): ``2028``, ``2028-06`` and ``2028-06-30`` stand for their
    first moment (UTC midnight of 1 January, of 1 June, of that day); an ISO date-time is taken as
    is (UTC unless it carries an offset)."""
    value = text.strip()
    try:
        match = _DATE.match(value)
        if match:
            year, month, day = (int(part or 1) for part in match.groups())
            return datetime(year, month, day, tzinfo=UTC).timestamp()
        if re.match(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}", value):
            return _seconds(value.replace("Z", "+00:00"))
    except ValueError:
        pass
    raise InputError(field, text, _DATE_EXPECTED)


def _number(text: str, field: str, expected: str) -> float:
    try:
        number = float(text)
    except ValueError:
        raise InputError(field, text, expected) from None
    if not math.isfinite(number):
        raise InputError(field, text, expected)
    return number


def _value(question: Question, text: str, field: str, expected: str) -> float:
    """A number of a numeric question, a date (as POSIX seconds) of a date question."""
    if question.kind == "date":
        return parse_date(text, field)
    return _number(text.strip(), field, expected)


def parse_range(
    kind: str, text: str, *, open_bounds: str | None = None, log: bool = False
) -> Question:
    """A numeric or date question from its range ``LOWER..UPPER`` (``0..34``;
    ``2026-01-01..2035-12-31``, dates as :func:`parse_date` reads them), which bounds are open
    (``lower``, ``upper``, ``both`` or None: an outcome beyond an open bound is possible) and
    whether the grid is logarithmic (numeric only, with a positive lower bound)."""
    if kind not in _RANGE_EXPECTED:
        raise InputError("kind", kind, "numeric or date")
    expected = _RANGE_EXPECTED[kind]
    parts = str(text).split("..")
    if len(parts) != 2:
        raise InputError("range", text, expected)
    if kind == "date":
        lower, upper = (parse_date(part, "range") for part in parts)
    else:
        lower, upper = (_number(part.strip(), "range", expected) for part in parts)
    if not lower < upper:
        raise InputError("range", text, expected)
    key = open_bounds.strip().lower() if open_bounds else None
    if key not in _OPEN:
        raise InputError("open", open_bounds, "lower, upper or both")
    open_lower, open_upper = _OPEN[key]
    if log and (kind != "numeric" or lower <= 0):
        raise InputError("log", text, "a numeric range with a positive lower bound (log scale)")
    return Question(kind, lower, upper, open_lower, open_upper, log)


def parse_options(text: str, *, ordered: bool = False) -> Question:
    """A multiple-choice question from its options, comma-separated (``"DeepSeek,Alibaba Qwen,
    Other"``): 2 to :data:`MAX_OPTIONS` distinct names (case aside), ``ordered`` when they form a
    scale (for the ranked probability score)."""
    expected = f"2 to {MAX_OPTIONS} distinct names, comma-separated"
    names = [name.strip() for name in str(text).split(",")]
    if not 2 <= len(names) <= MAX_OPTIONS or len({n.casefold() for n in names}) < len(names):
        raise InputError("options", text, expected)
    for name in names:
        if not name or len(name) > 200 or not name.isprintable():
            raise InputError("options", text, expected + " (each a line of at most 200 characters)")
    return Question("choice", options=tuple(names), ordered=ordered)


# -- A forecast: quantiles, a named distribution or option probabilities ---------------------------

_QUANTILES_EXPECTED = (
    "at least three quantiles P=VALUE, comma-separated, increasing in both (10%=4,50%=8,90%=15), "
    "or normal:MEAN,SD, lognormal:MU,SIGMA (of ln x) or uniform"
)
_DATE_QUANTILES_EXPECTED = (
    "at least three quantiles P=DATE, comma-separated, increasing in both "
    "(25%=2027-06,50%=2028-06-30,75%=2030), or normal:DATE,SD_DAYS or uniform"
)


#: The named distributions a numeric or date forecast may be given as.
DISTRIBUTIONS = ("normal", "lognormal", "uniform")
_DISTRIBUTION_EXPECTED = {
    "numeric": "normal:MEAN,SD, lognormal:MU,SIGMA (the mean and SD of ln x) or uniform",
    "date": "normal:DATE,SD_DAYS (normal:2028-06,365) or uniform",
}


def parse_forecast(question: Question, text: str) -> tuple[float, ...]:
    """A forecast as typed, ready to store (:func:`rounded`, checked).

    Numeric and date questions: quantiles ``10%=4,50%=8,90%=15`` (dates as values for a date
    question, read by :func:`parse_date`; the probability as ``10%``, ``10`` or ``0.1``) made into
    a CDF by :func:`cdf_from_quantiles`, or a named distribution: ``normal:MEAN,SD``,
    ``lognormal:MU,SIGMA`` (the mean and standard deviation of ln x; numeric only) or ``uniform``
    (even over the range's grid); for a date question ``normal:2028-06,365`` (a date and days).
    Multiple choice: one probability per option, in order (``35,30,35``, ``35%,30%,35%`` or
    ``0.35,0.3,0.35``), summing to 100% within half a point, then normalised.
    """
    if question.kind == "choice":
        return _parse_probabilities(question, text)
    if not question.continuous:
        raise InputError("kind", question.kind, "a numeric, date or choice question")
    expected = _DATE_QUANTILES_EXPECTED if question.kind == "date" else _QUANTILES_EXPECTED
    if str(text).partition(":")[0].strip().lower() in DISTRIBUTIONS:
        return parse_distribution(question, text)
    points = []
    for term in str(text).split(","):
        p_text, equals, v_text = term.partition("=")
        if not equals:
            raise InputError("quantiles", text, expected)
        try:
            p = parse_probability(p_text, "quantiles")
        except InputError:
            raise InputError("quantiles", term.strip(), expected) from None
        points.append((p, _value(question, v_text, "quantiles", expected)))
    return cdf_from_quantiles(question, points)


def _parse_probabilities(question: Question, text: str) -> tuple[float, ...]:
    n = len(question.options)
    expected = (
        f"{n} probabilities, one per option in order ({', '.join(question.options)}), as percents "
        "(35,30,35 or 35%,30%,35%) or fractions (0.35,0.3,0.35) summing to 100% within 0.5 points"
    )
    terms = [term.strip() for term in str(text).split(",")]
    percents = {term.endswith("%") for term in terms}
    if len(terms) != n or len(percents) > 1:
        raise InputError("probabilities", text, expected)
    numbers = [_number(term.removesuffix("%"), "probabilities", expected) for term in terms]
    total = sum(numbers)
    if percents == {False} and abs(total - 1) <= 0.005:
        numbers = [x * 100 for x in numbers]
        total *= 100
    if abs(total - 100) > 0.5 or min(numbers) < 0:
        raise InputError("probabilities", text, expected + f" (these sum to {total:g})")
    values = rounded(x / total for x in numbers)
    check_probabilities(question, values)
    return values


def parse_distribution(question: Question, text: str) -> tuple[float, ...]:
    """A numeric or date forecast given as a named distribution (:data:`DISTRIBUTIONS`), as
    :func:`parse_forecast` describes, made into the stored CDF: its CDF at the grid points (on a
    closed bound conditioned on the range: the mass beyond it is spread over the range), then
    standardised like any other (:func:`_standardised`)."""
    shown = str(text).strip()
    name, _, params = shown.partition(":")
    name = name.strip().lower()
    expected = _DISTRIBUTION_EXPECTED.get(question.kind, "a numeric or date question")
    if name not in DISTRIBUTIONS or not question.continuous:
        raise InputError("distribution", text, expected)
    args = [arg.strip() for arg in params.split(",")] if params.strip() else []
    if name == "uniform":
        if args:
            raise InputError("distribution", shown, "uniform, without parameters")
        return _standardised(question, [k / (GRID - 1) for k in range(GRID)])
    if len(args) != 2 or (name == "lognormal" and question.kind == "date"):
        raise InputError("distribution", shown, expected)
    if question.kind == "date":
        centre = parse_date(args[0], "distribution")
        spread = _number(args[1].removesuffix("d"), "distribution", expected) * 86400
    else:
        centre, spread = (_number(arg, "distribution", expected) for arg in args)
    if spread <= 0:
        raise InputError("distribution", shown, "a positive spread (SD or SIGMA)")
    xs = [question.unscaled(k / (GRID - 1)) for k in range(GRID)]
    if name == "lognormal":
        xs = [math.log(x) if x > 0 else -math.inf for x in xs]
    cdf = [0.5 * math.erfc((centre - x) / (spread * math.sqrt(2))) for x in xs]
    low = 0.0 if question.open_lower else cdf[0]
    high = 1.0 if question.open_upper else cdf[-1]
    if high - low < 1e-9:
        raise InputError("distribution", shown, "a distribution with some mass inside the range")
    return _standardised(question, [(c - low) / (high - low) for c in cdf])


def cdf_from_quantiles(
    question: Question, points: Iterable[tuple[float, float]]
) -> tuple[float, ...]:
    """The stored CDF through quantiles ``(p, x)``: P(X <= x) = p.

    At least three points, strictly increasing in both p (strictly between 0 and 1) and x, each
    inside the range, or beyond it where that bound is open (on a closed bound the CDF is 0 at the
    lower and 1 at the upper bound, so no quantile may sit on it). The CDF is linear in the scaled
    coordinate between the points. Beyond the first and last point it runs to the bounds: to 0 at a
    closed lower bound (to 1 at a closed upper), and past an open bound with the slope of the
    nearest pair of points, the mass it leaves beyond the range being the point mass at that bound.
    Then :func:`_standardised` raises it where it is thinner than the minimums of
    :func:`check_cdf`; the given quantiles are kept where they allow it (to the grid's precision:
    the quantile lies within one grid step of the given value).
    """
    pts = sorted(points)
    if len(pts) < 3:
        raise InputError("quantiles", _show_points(pts), "at least three quantiles")
    for (p0, x0), (p1, x1) in itertools.pairwise(pts):
        if not (p0 < p1 and x0 < x1):
            raise InputError(
                "quantiles",
                _show_points(pts),
                "values strictly increasing with the probabilities (no ties)",
            )
    us = []
    for p, x in pts:
        if not 0 < p < 1:
            raise InputError(
                "quantiles", _show_points(pts), "probabilities strictly between 0 and 1"
            )
        below = x <= question.lower if not question.open_lower else False
        above = x >= question.upper if not question.open_upper else False
        if below or above or (question.log and x <= 0):
            raise InputError(
                "quantiles",
                f"{_percent(p)}={format_value(question, x)}",
                f"a value strictly inside the range {_range_text(question)} (a closed bound holds "
                "no mass)" + (" and positive (log scale)" if question.log else ""),
            )
        us.append(question.scaled(x))
    ps = [p for p, _ in pts]
    return _standardised(
        question, [_through(us, ps, question, k / (GRID - 1)) for k in range(GRID)]
    )


def _through(us: list[float], ps: list[float], question: Question, u: float) -> float:
    """The piecewise-linear CDF through ``(us[i], ps[i])`` at ``u``, with the tails of
    :func:`cdf_from_quantiles`."""
    if u <= us[0]:
        if not question.open_lower:
            return ps[0] * u / us[0]
        slope = (ps[1] - ps[0]) / (us[1] - us[0])
        return max(0.0, ps[0] - slope * (us[0] - u))
    if u >= us[-1]:
        if not question.open_upper:
            return ps[-1] + (1 - ps[-1]) * (u - us[-1]) / (1 - us[-1])
        slope = (ps[-1] - ps[-2]) / (us[-1] - us[-2])
        return min(1.0, ps[-1] + slope * (u - us[-1]))
    i = bisect.bisect_right(us, u)
    return ps[i - 1] + (ps[i] - ps[i - 1]) * (u - us[i - 1]) / (us[i] - us[i - 1])


def _standardised(question: Question, cdf: list[float]) -> tuple[float, ...]:
    """A CDF on the grid made to pass :func:`check_cdf`, as Metaculus standardises one.

    Metaculus mixes 1% of even mass over the range into every forecast (and 0.1% beyond each open
    bound): ``G = b*F + 0.01*u + a`` with ``a`` = 0.001 for an open lower bound (else 0) and ``b``
    what makes the total 1. We solve that for F at each grid point (``F = (G - a - 0.01*u) / b``)
    and keep F a CDF (clipped to 0..1, never decreasing): where the given CDF is thick enough, it
    is returned unchanged; where it is thinner than the minimums, it is raised to them.
    """
    a = MIN_TAIL_MASS if question.open_lower else 0.0
    b = 1.0 - 0.01 - a - (MIN_TAIL_MASS if question.open_upper else 0.0)
    top = 0.0
    values = []
    for k, g in enumerate(cdf):
        u = k / (GRID - 1)
        top = max(top, min(1.0, (g - a - 0.01 * u) / b))
        values.append(b * top + 0.01 * u + a)
    if not question.open_upper:
        values[-1] = 1.0  # b + 0.01 + a, exactly
    stored = rounded(values)
    check_cdf(question, stored)
    return stored


def _percent(p: float) -> str:
    return f"{p * 100:g}%"


def _show_points(points: list[tuple[float, float]]) -> str:
    return ",".join(f"{_percent(p)}={x:g}" for p, x in points)


def _range_text(question: Question) -> str:
    return f"{format_value(question, question.lower)}..{format_value(question, question.upper)}"


# -- The rules a stored forecast and a resolution obey ----------------------------------------------


def check_cdf(question: Question, values: Sequence[float]) -> None:
    """Refuse a CDF a numeric or date forecast may not store.

    :data:`GRID` values between 0 and 1, never decreasing, every one of the 200 bins holding at
    least :data:`MIN_BIN_MASS`; a closed bound holds no mass (the CDF is exactly 0 at a closed
    lower bound, exactly 1 at a closed upper one); an open bound at least :data:`MIN_TAIL_MASS`
    beyond it. The minimums are Metaculus's, and make the log score of any possible outcome finite;
    they allow for the rounding of stored values (:data:`DIGITS`).
    """
    if len(values) != GRID:
        raise InputError("cdf", f"{len(values)} values", f"{GRID} values (the CDF on the grid)")
    if not all(0.0 <= v <= 1.0 for v in values):  # NaN fails this too
        raise InputError("cdf", _first(v for v in values if not 0 <= v <= 1), "values in 0..1")
    lower, upper = values[0], 1.0 - values[-1]
    if question.open_lower and lower < MIN_TAIL_MASS - _SLACK:
        raise InputError(
            "cdf", f"{lower:g} below the lower bound", f"at least {MIN_TAIL_MASS:g} (open bound)"
        )
    if not question.open_lower and lower != 0.0:
        raise InputError("cdf", f"{lower:g} at the lower bound", "0 (a closed bound holds no mass)")
    if question.open_upper and upper < MIN_TAIL_MASS - _SLACK:
        raise InputError(
            "cdf", f"{upper:g} above the upper bound", f"at least {MIN_TAIL_MASS:g} (open bound)"
        )
    if not question.open_upper and values[-1] != 1.0:
        raise InputError(
            "cdf", f"{values[-1]:g} at the upper bound", "1 (a closed bound holds no mass)"
        )
    for k in range(GRID - 1):
        mass = values[k + 1] - values[k]
        if mass < MIN_BIN_MASS - _SLACK:
            expected = (
                "a nondecreasing CDF"
                if mass < 0
                else f"every one of the {GRID - 1} bins to hold at least {MIN_BIN_MASS:g}"
            )
            raise InputError("cdf", f"{values[k]:g} then {values[k + 1]:g} at point {k}", expected)


def _first(values: Iterable[float]) -> float:
    return next(iter(values))


def check_probabilities(question: Question, values: Sequence[float]) -> None:
    """Refuse option probabilities a choice forecast may not store: one per option, each at least
    :data:`MIN_OPTION` (Metaculus's floor: the log score stays finite), summing to 1 (within the
    rounding of stored values)."""
    n = len(question.options)
    if len(values) != n:
        raise InputError("probabilities", f"{len(values)} values", f"{n}, one per option")
    if not all(MIN_OPTION - _SLACK / 2 <= v <= 1.0 for v in values):
        raise InputError(
            "probabilities",
            ",".join(f"{v:g}" for v in values),
            f"each option at least {MIN_OPTION * 100:g}%",
        )
    if abs(math.fsum(values) - 1.0) > n * _SLACK:
        raise InputError(
            "probabilities", f"sum {math.fsum(values):g}", "probabilities summing to 1"
        )


def check_outcome_value(question: Question, value: float) -> None:
    """Refuse a resolution value the question cannot have: a number inside the range, or beyond an
    open bound (stored as given); for a choice question, an option's index (0-based)."""
    if question.kind == "choice":
        if not (float(value).is_integer() and 0 <= value < len(question.options)):
            raise InputError("value", value, f"an option's index, 0 to {len(question.options) - 1}")
        return
    if not math.isfinite(value):
        raise InputError("value", value, "a finite number")
    below = value < question.lower and not question.open_lower
    if below or (value > question.upper and not question.open_upper):
        raise InputError(
            "value",
            format_value(question, value),
            f"a {'date' if question.kind == 'date' else 'value'} within {_range_text(question)}"
            " (the bound beyond it is closed)",
        )


def parse_outcome_value(question: Question, text: str) -> float:
    """What a question resolved to, as typed: a number, a date (:func:`parse_date`), or an option
    (its name, case aside, or its number from 1), as the stored ``resolution_value``."""
    if question.kind == "choice":
        wanted = str(text).strip().casefold()
        for index, name in enumerate(question.options):
            if name.casefold() == wanted:
                return float(index)
        if wanted.isdigit() and 1 <= int(wanted) <= len(question.options):
            return float(int(wanted) - 1)
        expected = (
            f"one of {', '.join(question.options)} (or its number, 1 to {len(question.options)})"
        )
        raise InputError("value", text, expected)
    value = _value(question, str(text), "value", "a number")
    check_outcome_value(question, value)
    return value


# -- Reading a forecast back ------------------------------------------------------------------------


def format_value(question: Question, x: float) -> str:
    """A value as people read it: a number compactly (``8``, ``12.35``, ``1.5e+09``), a date as an
    ISO date (``2028-06-14``), an option by its name."""
    if question.kind == "choice":
        return question.options[int(x)]
    if question.kind == "date":
        return datetime.fromtimestamp(x, UTC).date().isoformat()
    if x == 0 or not math.isfinite(x):
        return f"{x:g}"
    if abs(x) >= 1e15 or abs(x) < 1e-4:
        return f"{x:.4g}"
    decimals = max(0, 3 - math.floor(math.log10(abs(x))))
    text = f"{x:.{decimals}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def format_read(question: Question, x: float) -> str:
    """A value read off a forecast's CDF (a median, a quantile), to the grid's resolution: the
    grid holds a forecast to one step (a 200th of the range; on a log scale, of its logarithm),
    so ``8`` typed as a median is shown ``8``, not ``8.007``. Dates as :func:`format_value`."""
    if question.kind != "numeric" or not math.isfinite(x):
        return format_value(question, x)
    span = (
        math.log(question.upper / question.lower)
        if question.log
        else question.upper - question.lower
    )
    step = (abs(x) if question.log else 1.0) * span / (GRID - 1)
    if step <= 0 or not math.isfinite(step):
        return format_value(question, x)
    decimals = max(0, -math.floor(math.log10(step)))
    if decimals > 12 or abs(x) >= 1e15:
        return format_value(question, x)
    text = f"{x:.{decimals}f}"
    text = text.rstrip("0").rstrip(".") if "." in text else text
    return "0" if text in ("-0", "") else text


def quantile(question: Question, cdf: Sequence[float], p: float) -> float:
    """The value below which the forecast puts probability ``p`` (the inverse of the grid CDF,
    linear between grid points); a bound when ``p`` falls in the mass beyond it."""
    if p <= cdf[0]:
        return question.lower
    k = bisect.bisect_left(cdf, p)
    if k >= GRID:
        return question.upper
    lo, hi = cdf[k - 1], cdf[k]
    u = (k - 1 + (p - lo) / (hi - lo)) / (GRID - 1)
    return question.unscaled(u)


def median(question: Question, cdf: Sequence[float]) -> float:
    """The forecast's median (:func:`quantile` at one half)."""
    return quantile(question, cdf, 0.5)


def leading(probabilities: Sequence[float]) -> int:
    """The index of the most probable option (the first of equals)."""
    return max(range(len(probabilities)), key=probabilities.__getitem__)


def summary(question: Question, values: Sequence[float]) -> str:
    """The forecast in a few characters, as ``list`` shows it: ``median 8.2`` (``median < 0`` when
    half the mass lies beyond the lower bound), or the leading option with its probability
    (``DeepSeek 35%``)."""
    if question.kind == "choice":
        best = leading(values)
        return f"{question.options[best]} {format_probability(values[best])}"
    if values[0] >= 0.5:
        return f"median < {format_value(question, question.lower)}"
    if values[-1] < 0.5:
        return f"median > {format_value(question, question.upper)}"
    return f"median {format_read(question, median(question, values))}"


_BLOCKS = "▁▂▃▄▅▆▇█"


def sparkline(values: Sequence[float], width: int = 40) -> str:
    """A one-line picture of a forecast: for a CDF on the grid, its density over the range in
    ``width`` columns (each the mass of its share of the bins, the tallest a full block); for a
    choice forecast, one block per option, as tall as its probability beside the likeliest."""
    if len(values) == GRID:
        step = (GRID - 1) / width
        masses = [values[round((i + 1) * step)] - values[round(i * step)] for i in range(width)]
    else:
        masses = list(values)
    top = max(masses) or 1.0
    levels = len(_BLOCKS)
    return "".join(
        _BLOCKS[min(levels - 1, max(0, math.ceil(m / top * levels) - 1))] for m in masses
    )
