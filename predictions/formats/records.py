"""The in-memory shape of one imported forecast, and the field readers every format shares.

Each reader (TOML, JSON, CSV, PredictionBook, ForecastBench) turns its records into
:class:`ForecastIn` objects; :func:`predictions.bulk.import_records` writes them. A record that
cannot be read carries its problems in ``problems`` (each naming the record or line, the field and
what was expected), so an import can list every problem of a file before refusing it whole.

    >>> parse_time("2030-12-31T23:59:59Z")
    datetime.datetime(2030, 12, 31, 23, 59, 59)
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Container, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, TypeGuard, TypeVar
from zoneinfo import ZoneInfo

from predictions.chain import CLOSING_HISTORY, VALUES_KEY
from predictions.clock import to_utc_naive
from predictions.errors import InputError
from predictions.formats.typed import question_in, resolution_value_in, values_in, values_typed
from predictions.questions import Question
from predictions.timetext import local_time
from predictions.validation import (
    AMENDABLE,
    MAX_TEXT,
    end_of_day,
    parse_due,
    parse_outcome,
    parse_probability,
    parse_tag,
    require_text,
)

__all__ = [
    "AmendmentIn",
    "CorrectionIn",
    "EstimateIn",
    "FileMeta",
    "ForecastIn",
    "ReadContext",
    "clean_text",
    "ESTIMATE_CELLS",
    "FORECAST_CELLS",
    "FORECAST_FIELDS",
    "forecast_from_cells",
    "forecast_from_mapping",
    "one_line_title",
    "parse_time",
]

T = TypeVar("T")
D = TypeVar("D")

STATUSES = ("open", "resolved", "annulled", "withdrawn")


@dataclass(slots=True)
class EstimateIn:
    """One forecast at one time by one forecaster: a probability (binary question) or ``values``
    (a CDF on the grid, or one probability per option). ``id``/``seq`` come from exports."""

    probability: float | None
    by: str
    at: datetime
    note: str | None = None
    id: int | None = None
    seq: int | None = None
    values: tuple[float, ...] | None = None


@dataclass(slots=True)
class AmendmentIn:
    """A recorded change of title, criteria or due (old and new as the ledger writes them)."""

    field: str
    old: str
    new: str
    at: datetime
    by: str
    note: str | None = None
    id: int | None = None
    seq: int | None = None


@dataclass(slots=True)
class CorrectionIn:
    """A closing that a later ``reopen`` withdrew, or that reopening (``kind``, one of
    :data:`~predictions.chain.CLOSING_HISTORY`): the history before a forecast's current state.
    ``outcome`` (``value`` on a non-binary question) and ``evidence`` are a resolution's, ``was``
    the status a reopening undid."""

    kind: str
    at: datetime
    by: str
    note: str | None = None
    outcome: bool | None = None
    evidence: str | None = None
    was: str | None = None
    seq: int | None = None
    value: float | None = None


@dataclass(slots=True)
class ForecastIn:
    """One forecast read from a file: its current state, history and resolver checks.

    ``title``, ``criteria`` and ``due`` are the current values; the registration recorded in the
    ledger carries the values before the first amendment of each field. ``question`` is a
    numeric, date or choice question's spec (None: binary), ``resolution_value`` its resolution.
    """

    where: str
    title: str = ""
    criteria: str = ""
    due: datetime = datetime(1970, 1, 1)
    created_at: datetime = datetime(1970, 1, 1)
    author: str = ""
    source: str | None = None
    ref: str | None = None
    tags: list[str] = field(default_factory=list)
    estimates: list[EstimateIn] = field(default_factory=list)
    amendments: list[AmendmentIn] = field(default_factory=list)
    corrections: list[CorrectionIn] = field(default_factory=list)
    checks: list[dict[str, Any]] = field(default_factory=list)
    status: str = "open"
    outcome: bool | None = None
    resolved_at: datetime | None = None
    resolved_by: str | None = None
    resolution_note: str | None = None
    resolution_evidence: str | None = None
    id: int | None = None
    seq: int | None = None
    resolution_seq: int | None = None
    question: Question | None = None
    resolution_value: float | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def kind(self) -> str:
        """The question type: ``binary``, or the question's kind."""
        return "binary" if self.question is None else self.question.kind


@dataclass(slots=True)
class FileMeta:
    """What a file says about itself besides its forecasts: the exported chain head, if any."""

    format: str
    ledger_entries: int | None = None
    ledger_head: str | None = None
    problems: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class ReadContext:
    """Defaults for hand-written records: import time, the importing forecaster, the time zone."""

    now: datetime
    author: str
    tz: ZoneInfo = ZoneInfo("UTC")


def parse_time(value: object, field: str = "time") -> datetime:
    """An ISO date-time (``Z`` or an offset; naive means UTC) or a date (its start) as naive UTC."""
    if isinstance(value, str):  # first: files hold text
        try:
            if value.endswith("Z"):  # the common case, and what exports write: UTC already
                parsed = datetime.fromisoformat(value[:-1])
                if parsed.tzinfo is None:  # (an offset before the Z is refused below)
                    return parsed
            return to_utc_naive(datetime.fromisoformat(value.strip()))
        except ValueError:
            pass
    elif isinstance(value, datetime):
        return to_utc_naive(value)
    elif isinstance(value, date):
        return datetime(value.year, value.month, value.day)
    raise InputError(field, value, "an ISO date-time such as 2025-03-01T12:00:00Z")


@functools.lru_cache(maxsize=4096)
def _name(value: str) -> str:
    """A forecaster name, checked once per distinct name (bulk files repeat a few names)."""
    return require_text(value, "forecaster", multiline=False) or ""


_tag = functools.lru_cache(maxsize=4096)(parse_tag)


_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def clean_text(text: str) -> str:
    """Third-party text made storable: Windows line ends to ``\n``, control characters dropped."""
    return _CONTROL.sub("", text.replace("\r\n", "\n").replace("\r", "\n"))


def one_line_title(text: str, limit: int = MAX_TEXT["title"]) -> str:
    """Collapse whitespace to single spaces and shorten to ``limit`` characters with an ellipsis."""
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1].rstrip() + "…"


class _Reader:
    """Reads fields of one record, collecting problems instead of stopping at the first."""

    def __init__(self, where: str, problems: list[str]) -> None:
        self.where = where
        self.problems = problems

    def call(self, default: D, func: Callable[..., T], *args: Any, **kwargs: Any) -> T | D:
        """``func(*args, **kwargs)``, or ``default`` with the problem noted."""
        try:
            return func(*args, **kwargs)
        except InputError as exc:
            self.problems.append(f"{self.where}: {exc}")
            return default

    def one_of(self, value: object, field: str, options: Sequence[str]) -> TypeGuard[str]:
        """Whether ``value`` (of ``field``) is one of ``options``; if not, the problem is noted."""
        if value in options:
            return True
        choices = ", ".join(options)
        self.problems.append(f"{self.where}: {field}: got {value!r}, expected one of {choices}")
        return False

    def only(self, data: Mapping[str, Any], known: Container[str]) -> None:
        """Note each field of ``data`` that is not ``known``."""
        self.problems.extend(f"{self.where}: unknown field {k!r}" for k in data if k not in known)


def _int_or_none(value: object, field: str) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise InputError(field, value, "a whole number")
    try:
        number = int(str(value).strip()) if not isinstance(value, int) else value
    except ValueError:
        raise InputError(field, value, "a whole number") from None
    if number < 1:
        raise InputError(field, value, "a whole number >= 1")
    return number


def _history_probability(value: object, field: str) -> float:
    """A probability of imported history: 0 and 1 are kept (scoring clamps them later)."""
    if isinstance(value, int | float) and not isinstance(value, bool) and 0 <= value <= 1:
        return float(value)
    if isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            number = -1.0
        if 0 <= number <= 1:
            return number
    return parse_probability(value, field)


def _due(value: object, ctx: ReadContext, field: str = "due") -> datetime:
    if not isinstance(value, str):
        if isinstance(value, datetime):
            if value.tzinfo:
                return to_utc_naive(value)
            return to_utc_naive(value.replace(tzinfo=ctx.tz))
        if isinstance(value, date):
            return end_of_day(value, ctx.tz)
        raise InputError(field, value, "a date such as 2030-12-31")
    text = value.strip()
    if text.endswith("Z") and "T" in text:
        return parse_time(text, field)
    if len(text) == 10 and _DAY.fullmatch(text):
        return _end_of_day(text, ctx.tz)
    return parse_due(text, now=ctx.now, tz=ctx.tz, field=field)


_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


@functools.lru_cache(maxsize=4096)
def _end_of_day(text: str, tz: ZoneInfo) -> datetime:
    """``parse_due`` of a plain date, once per distinct date (bulk files repeat their dates)."""
    return parse_due(text, now=datetime(2000, 1, 1), tz=tz)


def _tags(value: object) -> list[str]:
    if value is None or value == "":
        return []
    if isinstance(value, str):
        return list(_tag_text(value))
    if isinstance(value, list):
        items: list[object] = list(value)
    else:
        raise InputError("tags", value, "a list of tags or a comma-separated string")
    return sorted({_tag(t) for t in items})


@functools.lru_cache(maxsize=4096)
def _tag_text(value: str) -> tuple[str, ...]:
    """Tags written as one comma- or space-separated string, read once per distinct string."""
    return tuple(sorted({_tag(t) for t in re.split(r"[,\s]+", value) if t}))


def _list_of_tables(value: object, field: str) -> list[Mapping[str, Any]]:
    if value is None or value == "":
        return []
    if not isinstance(value, list) or not all(isinstance(v, Mapping) for v in value):
        raise InputError(field, value, "a list of tables")
    return value


#: A forecast's own fields in a record of the tracker's formats, in the order an export writes them
#: (then come its ``estimates``, ``amendments``, ``corrections`` and ``checks``).
FORECAST_FIELDS = (
    "id", "ref", "title", "criteria", "due", "created_at", "author", "source", "tags", "status",
    "outcome", "resolved_at", "resolved_by", "resolution_note", "resolution_evidence", "seq",
    "resolution_seq", "kind", "question", "resolution_value",
)  # fmt: skip
_KNOWN = frozenset(FORECAST_FIELDS).union(
    ("by", "probability", "forecast", "note", "estimates", "amendments", "corrections", "checks",
     "estimate", "amendment", "correction", "check")
)  # fmt: skip


def forecast_from_mapping(
    data: Mapping[str, Any], where: str, ctx: ReadContext, *, history: bool = False
) -> ForecastIn:
    """Read one forecast of the project's own formats (TOML table, JSON object, CSV row group).

    A record that carries ``created_at`` is history (an export, or a file of past forecasts):
    its due date may lie in the past and its estimates may be 0 or 1. A hand-written record
    without it is registered now, must fall due in the future, and needs probabilities strictly
    between 0 and 1. ``history`` forces the first reading.
    """
    problems: list[str] = []
    r = _Reader(where, problems)
    if not _KNOWN.issuperset(data):
        r.only(data, _KNOWN)
    get = data.get
    title = r.call("", require_text, get("title"), "title", multiline=False)
    criteria = r.call("", require_text, get("criteria"), "criteria")
    created_raw = get("created_at")
    is_history = history or created_raw not in (None, "")
    created_at = r.call(ctx.now, parse_time, created_raw, "created_at") if is_history else ctx.now
    due = r.call(None, _due, get("due"), ctx)
    if due is not None and not is_history and due <= ctx.now:
        problems.append(
            f"{where}: due: got {local_time(due, ctx.tz)}, expected a date in the future "
            "(or give created_at for a forecast of the past)"
        )
    author = r.call("", _name, get("author") or get("by") or ctx.author)
    record = ForecastIn(
        where=where,
        title=title or "",
        criteria=criteria or "",
        due=due or ctx.now,
        created_at=created_at,
        author=author or "",
        problems=problems,
    )
    # Absent optional fields are common in bulk files: skip their readers.
    if get("source") is not None:
        record.source = r.call(None, require_text, get("source"), "source", optional=True)
    if get("ref") is not None:
        record.ref = r.call(None, require_text, get("ref"), "ref", optional=True, multiline=False)
        if record.ref is not None and len(record.ref) > 300:
            problems.append(f"{where}: ref: at most 300 characters")
    if get("tags") is not None:
        record.tags = r.call([], _tags, get("tags"))
    for name in ("id", "seq", "resolution_seq"):
        if get(name) is not None:
            setattr(record, name, r.call(None, _int_or_none, get(name), name))
    if get("kind") not in (None, "", "binary") or get("question") not in (None, ""):
        record.question = r.call(None, question_in, get("kind"), get("question"))
    _read_estimates(data, record, r, ctx, is_history)
    if get("amendments") is not None or get("amendment") is not None:
        _read_amendments(data, record, r)
    if get("corrections") is not None or get("correction") is not None:
        _read_corrections(data, record, r)
    _read_resolution(data, record, r, is_history)
    checks = get("checks", get("check"))
    if checks is not None:
        tables: list[Mapping[str, Any]] = r.call([], _list_of_tables, checks, "check")
        record.checks = [dict(c) for c in tables]
    return record


def _read_estimates(
    data: Mapping[str, Any], record: ForecastIn, r: _Reader, ctx: ReadContext, history: bool
) -> None:
    raw = data.get("estimates", data.get("estimate"))
    single = data.get("probability")
    if raw not in (None, "", []) and single not in (None, ""):
        record.problems.append(
            f"{record.where}: probability: give either probability or estimates, not both"
        )
        return
    if single not in (None, "") and record.question is not None:
        record.problems.append(
            f"{record.where}: probability: a {record.kind} question's forecast is given as "
            f"forecast (quantiles, a distribution or option probabilities, as typed) or its "
            f"estimates' {VALUES_KEY[record.kind]}"
        )
        return
    typed = data.get("forecast")
    if typed not in (None, ""):
        if record.question is None or raw not in (None, "", []):
            problem = "a numeric, date or choice question's forecast as typed, without estimates"
            record.problems.append(f"{record.where}: forecast: {problem}")
            return
        values = r.call(None, values_typed, record.question, typed)
        note = r.call(None, require_text, data.get("note"), "note", optional=True)
        if values is not None:
            at = record.created_at
            record.estimates.append(EstimateIn(None, record.author, at, note, values=values))
        return
    if single not in (None, ""):
        given = r.call(None, parse_probability, single)
        note = r.call(None, require_text, data.get("note"), "note", optional=True)
        if given is not None:
            record.estimates.append(EstimateIn(given, record.author, record.created_at, note))
        return
    items: list[Mapping[str, Any]] = r.call([], _list_of_tables, raw, "estimates")
    default_by = record.author or ctx.author
    for i, item in enumerate(items):
        fast = _fast_estimate(item, record.created_at, default_by, history)
        if fast is not None and record.question is None:
            record.estimates.append(fast)
            continue
        sub = _Reader(f"{record.where}, estimate {i + 1}", record.problems)
        p: float | None = None
        values = None
        if record.question is None:
            reader = _history_probability if history else parse_probability
            p = sub.call(0.5, reader, item.get("probability"), "probability")
        else:
            key = VALUES_KEY[record.kind]
            values = sub.call(None, values_in, record.question, item.get(key))
            if item.get("probability") not in (None, ""):
                record.problems.append(
                    f"{sub.where}: probability: a {record.kind} question's estimate gives {key}"
                )
        for wrong in sorted((_VALUES_KEYS - {VALUES_KEY.get(record.kind)}) & item.keys()):
            record.problems.append(f"{sub.where}: {wrong}: not for a {record.kind} question")
        at_raw = item.get("at")
        at = (
            sub.call(record.created_at, parse_time, at_raw, "at")
            if at_raw not in (None, "")
            else record.created_at
        )
        by = sub.call(
            "",
            require_text,
            item.get("by") or record.author or ctx.author,
            "forecaster",
            multiline=False,
        )
        note = sub.call(None, require_text, item.get("note"), "note", optional=True)
        eid = sub.call(None, _int_or_none, item.get("id"), "id")
        seq = sub.call(None, _int_or_none, item.get("seq"), "seq")
        sub.only(item, _ESTIMATE_KEYS | _VALUES_KEYS)
        record.estimates.append(EstimateIn(p, by or "", at, note, eid, seq, values))


_ESTIMATE_KEYS = frozenset(("probability", "at", "by", "note", "id", "seq"))
_VALUES_KEYS = frozenset(VALUES_KEY.values())


def _fast_estimate(
    item: Mapping[str, Any], created_at: datetime, default_by: str, history: bool
) -> EstimateIn | None:
    """The estimate, read without collecting problems; None sends it to the careful path.

    Bulk files hold hundreds of thousands of estimates, so the common case (a plain number, a
    ``Z`` time, a known name) is read directly; anything unusual or wrong is read again field by
    field to name every problem.
    """
    try:
        if not _ESTIMATE_KEYS.issuperset(item):
            return None
        value = item.get("probability")
        if not history:
            p = parse_probability(value)
        elif isinstance(value, bool) or not isinstance(value, int | float | str):
            return None
        else:
            p = float(value)
            if not 0.0 <= p <= 1.0:
                return None
        at_raw = item.get("at")
        at = created_at if at_raw in (None, "") else parse_time(at_raw, "at")
        by = _name(item.get("by") or default_by)
        note = item.get("note")
        note = None if note in (None, "") else require_text(note, "note", optional=True)
        eid = item.get("id")
        if eid is not None:
            eid = _int_or_none(eid, "id")
        seq = item.get("seq")
        if seq is not None:
            seq = _int_or_none(seq, "seq")
    except (InputError, ValueError, TypeError):
        return None
    return EstimateIn(p, by, at, note, eid, seq)


#: The cells :func:`forecast_from_cells` reads, in order (an estimate's: :data:`ESTIMATE_CELLS`).
FORECAST_CELLS = ("title", "criteria", "due", "created_at", "author", "source", "ref", "tags", "id",
                  "seq")  # fmt: skip
ESTIMATE_CELLS = ("probability", "at", "by", "note", "id", "seq")


def forecast_from_cells(
    where: str,
    ctx: ReadContext,
    cells: Sequence[str | None],
    estimates: Iterable[Sequence[str | None]],
) -> ForecastIn | None:
    """:func:`forecast_from_mapping` of an open forecast given as text cells, or None.

    ``cells`` holds the fields of :data:`FORECAST_CELLS` and each estimate those of
    :data:`ESTIMATE_CELLS`, in that order, ``""`` or ``None`` for an empty cell. The fast path of
    a CSV import (100,000s of rows): the same record that :func:`forecast_from_mapping` reads from
    ``{"title": ..., "estimates": [{"probability": ...}, ...]}`` (with the cells that are not
    empty), read without building the mapping and without collecting problems. Anything wrong or
    unusual returns None, and the caller reads the record the careful way, which names every
    problem.
    """
    title, criteria, due, created_at, author, source, ref, tags, id, seq = cells
    try:
        created = parse_time(created_at, "created_at") if created_at else ctx.now
        due_ = _due(due, ctx)
        if not created_at and due_ <= ctx.now:
            return None
        author_ = _name(author or ctx.author)
        record = ForecastIn(
            where,
            require_text(title, "title", multiline=False) or "",
            require_text(criteria, "criteria") or "",
            due_,
            created,
            author_,
        )
        if source:
            record.source = require_text(source, "source", optional=True)
        if ref:
            record.ref = require_text(ref, "ref", optional=True, multiline=False)
            if record.ref is not None and len(record.ref) > 300:
                return None
        if tags:
            record.tags = _tags(tags)
        if id:
            record.id = _int_or_none(id, "id")
        if seq:
            record.seq = _int_or_none(seq, "seq")
        default_by = author_ or ctx.author
        add = record.estimates.append
        for p_raw, at_raw, by, note, eid, eseq in estimates:
            if not p_raw:
                return None
            if created_at:  # history: 0 and 1 are kept
                p = float(p_raw)
                if not 0.0 <= p <= 1.0:
                    return None
            else:
                p = parse_probability(p_raw)
            at = created if not at_raw or at_raw == created_at else parse_time(at_raw, "at")
            add(
                EstimateIn(
                    p,
                    _name(by or default_by),
                    at,
                    require_text(note, "note", optional=True) if note else None,
                    _int_or_none(eid, "id") if eid else None,
                    _int_or_none(eseq, "seq") if eseq else None,
                )
            )
    except (InputError, ValueError, TypeError, OverflowError):
        return None
    return record


def _tables(
    data: Mapping[str, Any], record: ForecastIn, r: _Reader, name: str
) -> Iterator[tuple[_Reader, Mapping[str, Any]]]:
    """The tables of the record's list ``<name>s`` (or ``<name>``), each with a reader naming it
    ("line 3, amendment 2")."""
    raw = data.get(f"{name}s", data.get(name))
    for i, item in enumerate(r.call([], _list_of_tables, raw, f"{name}s")):
        yield _Reader(f"{record.where}, {name} {i + 1}", record.problems), item


def _read_amendments(data: Mapping[str, Any], record: ForecastIn, r: _Reader) -> None:
    for sub, item in _tables(data, record, r, "amendment"):
        name = item.get("field")
        if not sub.one_of(name, "field", AMENDABLE):
            continue
        old = item.get("old")
        new = item.get("new")
        if not isinstance(old, str) or not isinstance(new, str) or old == new:
            record.problems.append(f"{sub.where}: old/new: expected two different texts")
            continue
        at = sub.call(record.created_at, parse_time, item.get("at"), "at")
        by = sub.call("", require_text, item.get("by"), "forecaster", multiline=False)
        note = sub.call(None, require_text, item.get("note"), "note", optional=True)
        aid = sub.call(None, _int_or_none, item.get("id"), "id")
        seq = sub.call(None, _int_or_none, item.get("seq"), "seq")
        record.amendments.append(AmendmentIn(name, old, new, at, by or "", note, aid, seq))


def _read_corrections(data: Mapping[str, Any], record: ForecastIn, r: _Reader) -> None:
    for sub, item in _tables(data, record, r, "correction"):
        kind = item.get("kind")
        if not sub.one_of(kind, "kind", CLOSING_HISTORY):
            continue
        sub.only(item, ("kind", "at", "by", "note", "outcome", "evidence", "was", "seq", "value"))
        c = CorrectionIn(
            kind,
            sub.call(record.created_at, parse_time, item.get("at"), "at"),
            sub.call("", require_text, item.get("by"), "by", multiline=False) or "",
            sub.call(None, require_text, item.get("note"), "note", optional=True),
            seq=sub.call(None, _int_or_none, item.get("seq"), "seq"),
        )
        if kind == "resolve" and record.question is not None:
            c.value = sub.call(None, resolution_value_in, record.question, item.get("value"))
        elif kind == "resolve":
            c.outcome = sub.call(None, parse_outcome, item.get("outcome"))
        if kind == "resolve":
            evidence = item.get("evidence")
            c.evidence = sub.call(
                None, require_text, evidence, "evidence", optional=True, multiline=False
            )
        elif kind == "reopen":
            c.was = item.get("was")
            sub.one_of(c.was, "was", STATUSES[1:])
        record.corrections.append(c)


def _read_resolution(
    data: Mapping[str, Any], record: ForecastIn, r: _Reader, history: bool
) -> None:
    given = [k for k in ("outcome", "resolution_value") if data.get(k) not in (None, "")]
    status = data.get("status") or ("resolved" if given else "open")
    if not r.one_of(status, "status", STATUSES):
        return
    record.status = status
    if status == "open":
        for key in ("outcome", "resolution_value", "resolved_at", "resolved_by"):
            if data.get(key) not in (None, ""):
                record.problems.append(f"{record.where}: {key}: given for an open forecast")
        return
    # A binary question resolves to an outcome (yes/no), the others to a resolution value.
    key = "outcome" if record.question is None else "resolution_value"
    for wrong in given:
        if status != "resolved":
            record.problems.append(f"{record.where}: {wrong}: only a resolved forecast has one")
        elif wrong != key:
            record.problems.append(f"{record.where}: {wrong}: not for a {record.kind} question")
    if status == "resolved" and record.question is None:
        record.outcome = r.call(None, parse_outcome, data.get("outcome"))
    elif status == "resolved" and record.question is not None:
        value = data.get("resolution_value")
        record.resolution_value = r.call(None, resolution_value_in, record.question, value)
    at_raw = data.get("resolved_at")
    if at_raw not in (None, ""):
        record.resolved_at = r.call(None, parse_time, at_raw, "resolved_at")
    elif history:
        record.problems.append(f"{record.where}: resolved_at: missing for a {status} forecast")
    else:
        record.resolved_at = record.created_at
    by = data.get("resolved_by") or record.author
    record.resolved_by = r.call(None, require_text, by, "resolved_by", multiline=False)
    note = data.get("resolution_note")
    record.resolution_note = r.call(None, require_text, note, "note", optional=True)
    if status == "resolved":
        evidence = data.get("resolution_evidence")
        record.resolution_evidence = r.call(
            None, require_text, evidence, "evidence", optional=True, multiline=False
        )
