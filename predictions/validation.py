"""Parsing and validation of user input, once, at the boundary.

Every function raises :class:`~predictions.errors.InputError` naming the field, the value and what
was expected, so the CLI and the importers report bad input the same way.

    >>> parse_probability("70%")
    0.7
    >>> parse_probability("0.62")
    0.62
"""

from __future__ import annotations

import calendar
import contextlib
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from predictions.clock import to_utc_naive
from predictions.errors import InputError
from predictions.timetext import local_time

__all__ = [
    "AMENDABLE",
    "MAX_TEXT",
    "Due",
    "Registration",
    "check_estimate",
    "check_registration",
    "end_of_day",
    "parse_due",
    "parse_outcome",
    "parse_probability",
    "parse_tag",
    "parse_timezone",
    "read_due",
    "require_text",
]

#: What ``amend`` changes: tags may change in any state but withdrawn, the rest while open.
AMENDABLE = ("title", "criteria", "due", "tags")
MAX_TEXT = {"title": 500, "criteria": 20_000, "note": 5_000, "source": 2_000, "forecaster": 200}
_PROB_EXPECTED = "a probability strictly between 0 and 1, written 0.7, 70% or 70"
_DUE_EXPECTED = (
    "a date (2030-12-31, 31 Dec 2030, Dec 2030, 2030-06, 2030, end of 2030), a date-time, "
    "+90d / in 3 months, tomorrow or next friday"
)
_UTC = ZoneInfo("UTC")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_SURROGATE = re.compile("[\ud800-\udfff]")
# Anything require_text refuses in stripped text: control characters (with a line end for a
# single line) and lone surrogates.
_BAD_TEXT = re.compile("[\x00-\x08\x0b-\x1f\x7f\ud800-\udfff]")
_BAD_LINE = re.compile("[\x00-\x08\x0a-\x1f\x7f\ud800-\udfff]")


def parse_probability(value: object, field: str = "probability") -> float:
    """Read ``0.7``, ``70%`` or ``70`` as 0.7; refuse 0, 1, 100%, 1.5, -0.1, NaN and words.

    A bare number above 1 is read as a whole percent (``70``); a fractional percent needs the sign
    (``70.5%``), so that ``1.5`` is refused rather than guessed.
    """
    if isinstance(value, bool):
        raise InputError(field, value, _PROB_EXPECTED)
    if isinstance(value, int | float):
        number, percent = float(value), False
    else:
        text = str(value).strip()
        percent = text.endswith("%")
        if percent:
            text = text[:-1].strip()
        try:
            number = float(text)
        except ValueError:
            raise InputError(field, value, _PROB_EXPECTED) from None
    if not math.isfinite(number):
        raise InputError(field, value, _PROB_EXPECTED)
    if percent:
        number /= 100.0
    elif number > 1:
        if number != int(number) or number >= 100 or number < 2:
            raise InputError(field, value, _PROB_EXPECTED)
        number /= 100.0
    if not 0.0 < number < 1.0:
        raise InputError(field, value, _PROB_EXPECTED)
    return round(number, 10)


def parse_timezone(name: str | None) -> ZoneInfo:
    """An IANA time zone by name (``Europe/Berlin``); None means UTC."""
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        raise InputError("timezone", name, "an IANA time zone name such as Europe/Berlin") from None


def end_of_day(day: date, tz: ZoneInfo) -> datetime:
    """The last second of ``day`` in ``tz``, as naive UTC: the moment a date-only due falls due."""
    local = datetime.combine(day, time(23, 59, 59), tzinfo=tz)
    return to_utc_naive(local)


_RELATIVE = re.compile(
    r"^(?:\+|in\s+)(\d{1,5})\s*(d|day|days|w|week|weeks|m|month|months|y|year|years)$",
    re.IGNORECASE,
)
_MONTHS = {
    name: number
    for number, month in enumerate(calendar.month_name[1:], 1)
    for name in (month.lower(), month[:3].lower(), "sept" if number == 9 else month.lower())
}
_WEEKDAYS = {
    name: number
    for number, day in enumerate(calendar.day_name)
    for name in (day.lower(), day[:3].lower())
}
_WORDS = re.compile(
    r"^(?:"
    r"(?P<today>today|tomorrow)"
    r"|(?:next\s+)?(?P<weekday>[a-z]{3,9})"
    r"|(?P<d1>\d{1,2})(?:st|nd|rd|th)?\s+(?P<m1>[a-z]{3,9})\.?,?\s+(?P<y1>\d{4})"
    r"|(?P<m2>[a-z]{3,9})\.?\s+(?P<d2>\d{1,2})(?:st|nd|rd|th)?,?\s+(?P<y2>\d{4})"
    r"|(?P<end>end\s+of\s+(?:the\s+)?)?(?:(?P<m3>[a-z]{3,9})\.?\s+)?(?P<y3>\d{4})"
    r"|end\s+of\s+(?:the\s+)?(?:(?P<this>this|next)\s+)?(?P<span>week|month|year)"
    r")$",
    re.IGNORECASE,
)
_SLASHED = re.compile(r"^(\d{1,2})[/.](\d{1,2})[/.](\d{4})$")


@dataclass(frozen=True)
class Due:
    """A parsed due date: the moment (naive UTC) and, for a date-only due, the IANA name of the
    time zone whose day it ends (None for a moment typed with its time)."""

    at: datetime
    zone: str | None


def _add_months(day: date, months: int) -> date:
    month_index = day.month - 1 + months
    year = day.year + month_index // 12
    month = month_index % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def _month_end(year: int, month: int) -> date:
    return date(year, month, calendar.monthrange(year, month)[1])


def _day_in_words(text: str, today: date) -> date | None:
    """The day of a due date in words (``tomorrow``, ``next friday``, ``31 Dec 2027``, ``Dec
    2027``, ``end of 2027``, ``end of month``), or None when ``text`` is none of these."""
    match = _WORDS.match(text)
    if match is None:
        return None
    g = {name: (value.lower() if value else None) for name, value in match.groupdict().items()}
    if g["today"]:
        return today if g["today"] == "today" else today + timedelta(days=1)
    if g["weekday"]:
        weekday = _WEEKDAYS.get(g["weekday"])
        if weekday is None:
            return None
        return today + timedelta(days=(weekday - today.weekday() - 1) % 7 + 1)
    if g["span"]:
        ahead = g["this"] == "next"
        if g["span"] == "week":  # a week ends on Sunday
            return today + timedelta(days=6 - today.weekday() + (7 if ahead else 0))
        if g["span"] == "month":
            first = _add_months(today.replace(day=1), 1 if ahead else 0)
            return _month_end(first.year, first.month)
        return date(today.year + ahead, 12, 31)
    year = int(g["y1"] or g["y2"] or g["y3"] or "")  # one of them matched
    name = g["m1"] or g["m2"] or g["m3"]
    month = _MONTHS.get(name) if name else None
    if name and month is None:
        return None
    day = g["d1"] or g["d2"]
    if day:
        return date(year, month, int(day))  # type: ignore[arg-type]
    if month:
        return _month_end(year, month)
    return date(year, 12, 31) if g["end"] else None


def _refuse_slashed(value: str, text: str, field: str) -> None:
    """``31/12/2027`` reads one way in Europe and another in the US: refused, with the ISO form."""
    match = _SLASHED.match(text)
    if match is None:
        return
    first, second, year = (int(part) for part in match.groups())
    readings = []
    for day, month in ((first, second), (second, first)):
        with contextlib.suppress(ValueError):  # not a real date read this way round
            readings.append(date(year, month, day).isoformat())
    hint = " or ".join(dict.fromkeys(readings)) or f"{year}-MM-DD"
    expected = "a date written year first (day/month order differs between countries)"
    raise InputError(field, value, f"{expected}: use {hint}")


def read_due(value: str, *, now: datetime, tz: ZoneInfo | None = None, field: str = "due") -> Due:
    """Parse a due date: its moment in naive UTC and, for a date-only form, ``tz``'s name.

    ``2030-12-31`` (also ``31 Dec 2030``, ``Dec 31, 2030``) is the end of that day in ``tz``;
    ``2030-06`` or ``Jun 2030`` the end of June; ``2030`` or ``end of 2030`` the end of the year;
    ``+90d``, ``+2w``, ``+3m``, ``+1y`` or ``in 3 months`` count from ``now`` (a naive-UTC
    datetime) to the end of that day, as do ``today``, ``tomorrow``, ``friday`` / ``next
    friday`` (the first Friday after today), ``end of week`` (Sunday), ``end of month`` and
    ``end of year`` (``end of next month``...); an ISO date-time is taken as is (local to ``tz``
    if it has no offset). ``31/12/2030`` is refused: day and month could be either way round.
    """
    tz = tz or _UTC
    text = " ".join(str(value).split())
    try:
        if re.fullmatch(
            r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?", text
        ):
            parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
            if parsed.tzinfo is None:
                parsed = parsed.replace(tzinfo=tz)
            return Due(to_utc_naive(parsed), None)
        day: date | None = None
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            day = date.fromisoformat(text)
        elif re.fullmatch(r"\d{4}-\d{2}", text):
            day = _month_end(int(text[:4]), int(text[5:]))
        elif re.fullmatch(r"\d{4}", text):
            day = date(int(text), 12, 31)
        else:
            today = now.replace(tzinfo=_UTC).astimezone(tz).date()
            match = _RELATIVE.match(text)
            if match:
                amount, unit = int(match.group(1)), match.group(2)[0].lower()
                if unit == "d":
                    day = today + timedelta(days=amount)
                elif unit == "w":
                    day = today + timedelta(weeks=amount)
                else:
                    day = _add_months(today, amount * (1 if unit == "m" else 12))
            else:
                _refuse_slashed(value, text, field)
                day = _day_in_words(text, today)
        if day is not None:
            return Due(end_of_day(day, tz), tz.key)
    except (ValueError, OverflowError):
        pass
    raise InputError(field, value, _DUE_EXPECTED)


def parse_due(
    value: str, *, now: datetime, tz: ZoneInfo | None = None, field: str = "due"
) -> datetime:
    """The moment of :func:`read_due`, naive UTC (for callers that keep no zone)."""
    return read_due(value, now=now, tz=tz, field=field).at


def parse_outcome(value: object, field: str = "outcome") -> bool:
    """``yes``/``no`` (also true/false, 1/0, y/n) as a bool."""
    text = str(value).strip().lower()
    if text in ("yes", "y", "true", "1"):
        return True
    if text in ("no", "n", "false", "0"):
        return False
    raise InputError(field, value, "yes or no")


def require_text(
    value: object, field: str, *, optional: bool = False, multiline: bool = True
) -> str | None:
    """Strip, refuse empty (unless ``optional``), over-long or control-character text."""
    if type(value) is str:
        # The usual case, in one search: the checks below, passed at once (a failure of any of
        # them, or an unusual value, goes the long way to name the problem).
        text = value.strip()
        if (
            text
            and len(text) <= MAX_TEXT.get(field, 20_000)
            # printable text holds neither control characters nor surrogates: no search needed
            and (text.isprintable() or not (_BAD_TEXT if multiline else _BAD_LINE).search(text))
        ):
            return text
    if value is None or (isinstance(value, str) and not value.strip()):
        if optional:
            return None
        raise InputError(field, value if value is not None else "", "non-empty text")
    if not isinstance(value, str):
        raise InputError(field, value, "text")
    text = value.strip()
    limit = MAX_TEXT.get(field, 20_000)
    if len(text) > limit:
        raise InputError(field, text, f"at most {limit} characters (got {len(text)})")
    check = text if multiline else text
    if not multiline and ("\n" in text or "\r" in text):
        raise InputError(field, text, "a single line of text")
    if _CONTROL.search(check.replace("\t", " ")):
        raise InputError(field, text, "text without control characters")
    if _SURROGATE.search(text):  # undecodable bytes (argv, files) that no database can store
        shown = text.encode("utf-8", "backslashreplace").decode("utf-8")
        raise InputError(field, shown, "valid UTF-8 text")
    return text


_TAG = re.compile(r"^[\w][\w.\-/:]{0,99}$", re.UNICODE)


def parse_tag(value: object) -> str:
    """A tag: letters, digits, ``_ - . / :``, up to 100 characters, kept in lower case."""
    text = str(value).strip().lower()
    if not _TAG.match(text):
        raise InputError(
            "tag", value, "a word of letters, digits, '-', '_', '.', '/' or ':' (no spaces)"
        )
    return text


@dataclass(frozen=True)
class Registration:
    """The cleaned fields of a new forecast, as :func:`check_registration` returns them."""

    title: str
    criteria: str
    author: str
    source: str | None
    due: datetime
    created_at: datetime
    tags: list[str]


def check_registration(
    *,
    title: object,
    criteria: object,
    author: object,
    source: object,
    due: datetime,
    created_at: datetime,
    tags: Iterable[object],
    allow_past_due: bool = False,
) -> Registration:
    """Validate a new forecast's fields in one place (the store and the fast SQLite path share it).

    A due date at or before ``created_at`` is refused unless ``allow_past_due`` (imported history).
    """
    title_ = require_text(title, "title", multiline=False)
    criteria_ = require_text(criteria, "criteria")
    author_ = require_text(author, "forecaster", multiline=False)
    source_ = require_text(source, "source", optional=True, multiline=False)
    if not allow_past_due and due <= created_at:
        raise InputError("due", local_time(due, _UTC), "a date in the future")
    assert title_ is not None and criteria_ is not None and author_ is not None
    return Registration(
        title=title_,
        criteria=criteria_,
        author=author_,
        source=source_,
        due=due,
        created_at=created_at,
        tags=sorted({parse_tag(t) for t in tags}),
    )


def check_estimate(
    forecaster: object, probability: float, note: object
) -> tuple[str, float, str | None]:
    """Validate an estimate's forecaster, probability (strictly inside 0-1) and note."""
    if not 0.0 < probability < 1.0:
        raise InputError("probability", probability, "a probability strictly between 0 and 1")
    name = require_text(forecaster, "forecaster", multiline=False)
    assert name is not None
    return name, float(probability), require_text(note, "note", optional=True)
