"""The tracker's own file formats: TOML, JSON and CSV, read (streamed) and written.

All three carry the same records; an export from the tracker also carries every id and ledger
``seq``, and the chain head, so a file restored into an empty database rebuilds the same chain
(and the same export, byte for byte).

**TOML** (for hand-written forecast files)::

    [[forecast]]
    ref = "example:qwen4-open-weights"
    title = "Alibaba releases Qwen4 as open weights"
    criteria = "Resolves YES if ..."
    due = 2027-06-30
    probability = "70%"
    tags = ["china", "open-weights"]
    source = "https://..."

    [[forecast.check]]
    kind = "page"
    mode = "propose"
    url = "https://..."
    contains = "Qwen4"

An export adds ``created_at``, ``author``, ``status``, ``outcome``, ``resolved_*``, ``id``, ``seq``,
``[[forecast.estimate]]`` and ``[[forecast.amendment]]`` tables, ``[[forecast.correction]]`` tables
(closings a ``reopen`` withdrew, and the reopenings: ``kind``, ``seq``, ``at``, ``by``, ``note``, a
resolution's ``outcome`` and ``evidence``, the status a reopening undid as ``was``), ``stopped =
true`` on a check a person stopped (an import keeps it stopped), and a top-level ``[ledger]`` table
with ``entries`` and ``head``.

A numeric, date or choice question (in any format, exported or written by hand) gives its ``kind``
and its ``question`` (the spec, as :meth:`predictions.questions.Question.spec` writes it:
``question = { lower = 0.0, upper = 34.0, open_upper = true }``, ``{ options = [...] }``), its
estimates ``cdf`` (the 201 values of the grid) or ``probabilities`` (one per option) in place of
``probability``, and once resolved its ``resolution_value`` in place of ``outcome`` (a resolution
that a reopening withdrew, its ``value``). A binary record is written as before (but for the
new, empty columns of a CSV file).

**JSON**: ``{"format": "forecast-tracker", "version": 1, "ledger": {...}, "forecasts": [...]}``,
one forecast object per line (a bare list of forecast objects is read too). The file is read as a
stream, so its size is not bounded by memory.

**CSV**: one row per estimate. A row with a ``title`` starts a forecast; the rows after it with an
empty ``title`` add estimates to it. ``checks``, ``amendments`` and ``corrections`` cells hold JSON
lists, as do an estimate's ``cdf`` and ``probabilities`` cells; a ``question`` cell holds the spec as
a JSON object. An export
starts with a comment line ``# forecast-tracker 1 ledger entries=N head=HASH``.
"""

from __future__ import annotations

import csv
import io
import json
import re
import tomllib
from collections.abc import Iterator, Mapping
from itertools import chain
from operator import itemgetter
from types import SimpleNamespace
from typing import IO, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from predictions.chain import (
    CLOSING_HISTORY,
    LEDGER,
    amendment_fields,
    estimate_fields,
    iso,
    registered_fields,
)
from predictions.db import executor
from predictions.formats.records import (
    ESTIMATE_CELLS,
    FORECAST_CELLS,
    FORECAST_FIELDS,
    FileMeta,
    ForecastIn,
    ReadContext,
    forecast_from_cells,
    forecast_from_mapping,
)
from predictions.models import Amendment, Check, Estimate, Forecast, LedgerEntry, Tag
from predictions.questions import decode

__all__ = [
    "CSV_COLUMNS",
    "FORMAT_NAME",
    "export_records",
    "read_csv",
    "read_json",
    "read_toml",
    "write_csv",
    "write_json",
    "write_toml",
]

FORMAT_NAME = "forecast-tracker"
FORMAT_VERSION = 1
_ESTIMATE_COLUMNS = {
    "estimate_id": "id",
    "estimate_seq": "seq",
    "probability": "probability",
    "estimated_at": "at",
    "forecaster": "by",
    "note": "note",
    "cdf": "cdf",
    "probabilities": "probabilities",
}
CSV_COLUMNS = (*FORECAST_FIELDS, "checks", "amendments", "corrections", *_ESTIMATE_COLUMNS)
_CSV_HEAD = re.compile(
    r"^#\s*forecast-tracker\s+(\d+)\s+ledger\s+entries=(\d+)\s+head=([0-9a-f]{64})"
)


def _check_header(meta: FileMeta, data: Mapping[str, Any]) -> None:
    fmt = data.get("format")
    if fmt is not None and fmt != FORMAT_NAME:
        meta.problems.append(f"format: got {fmt!r}, expected {FORMAT_NAME!r}")
    version = data.get("version")
    if version is not None and version != FORMAT_VERSION:
        meta.problems.append(f"version: got {version!r}, this tracker reads version 1")
    head = data.get("ledger")
    if head is not None:
        if (
            not isinstance(head, Mapping)
            or not isinstance(head.get("entries"), int)
            or not isinstance(head.get("head"), str)
        ):
            meta.problems.append("ledger: expected a table with entries (a number) and head")
        else:
            meta.ledger_entries = int(head["entries"])
            meta.ledger_head = str(head["head"])


# --- TOML ---------------------------------------------------------------------------------------


def read_toml(fh: IO[bytes], ctx: ReadContext, meta: FileMeta) -> Iterator[ForecastIn]:
    """Read a TOML forecast file (loaded whole: TOML files are written by hand, not by the 100k)."""
    raw = fh.read()
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        meta.problems.append(f"not a readable TOML file: {exc}")
        return
    _check_header(meta, data)
    unknown = sorted(set(data) - {"format", "version", "ledger", "forecast"})
    for key in unknown:
        meta.problems.append(f"unknown top-level key {key!r} (forecasts go in [[forecast]] tables)")
    forecasts = data.get("forecast", [])
    if not isinstance(forecasts, list):
        meta.problems.append("forecast: expected [[forecast]] tables")
        return
    lines = [
        i + 1
        for i, line in enumerate(raw.decode("utf-8").splitlines())
        if re.match(r"^\s*\[\[\s*forecast\s*\]\]", line)
    ]
    for i, item in enumerate(forecasts):
        line = f" (line {lines[i]})" if i < len(lines) else ""
        yield forecast_from_mapping(item, f"forecast {i + 1}{line}", ctx)


def _toml_key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else json.dumps(key, ensure_ascii=False)


def _toml_value(value: Any) -> str:
    import tomli_w

    if isinstance(value, Mapping):
        inner = ", ".join(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in value.items())
        return "{ " + inner + " }" if inner else "{}"
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return tomli_w.dumps({"v": value})[4:].rstrip("\n")


def _toml_table(header: str | None, data: Mapping[str, Any]) -> str:
    lines = [header] if header else []
    lines += [f"{_toml_key(k)} = {_toml_value(v)}" for k, v in data.items() if v is not None]
    return "\n".join(lines) + "\n"


def write_toml(session: Session, out: IO[str]) -> int:
    """Write every forecast as TOML; returns how many."""
    head = LEDGER.head(executor(session))
    out.write(f'format = "{FORMAT_NAME}"\nversion = {FORMAT_VERSION}\n\n')
    out.write(_toml_table("[ledger]", {"entries": head.seq, "head": head.hash}))
    count = 0
    for record in export_records(session):
        out.write("\n")
        subs = {k: record.pop(k) for k in ("estimates", "amendments", "corrections", "checks")}
        out.write(_toml_table("[[forecast]]", record))
        for key, items in subs.items():  # [[forecast.estimate]] ... [[forecast.check]]
            for item in items:
                out.write(_toml_table(f"[[forecast.{key[:-1]}]]", item))
        count += 1
    return count


# --- JSON ---------------------------------------------------------------------------------------


class _JsonStream:
    """Reads a JSON document piece by piece, so the forecasts array is never held whole."""

    def __init__(self, fh: IO[str], chunk: int = 1 << 16) -> None:
        self.fh = fh
        self.chunk = chunk
        self.buf = ""
        self.pos = 0
        self.line = 1
        self.eof = False
        self.decoder = json.JSONDecoder()

    def _more(self) -> bool:
        if self.eof:
            return False
        data = self.fh.read(self.chunk)
        if not data:
            self.eof = True
            return False
        self.buf = self.buf[self.pos :] + data
        self.pos = 0
        return True

    def _advance(self, to: int) -> None:
        self.line += self.buf.count("\n", self.pos, to)
        self.pos = to

    def peek(self) -> str:
        """The next non-space character ('' at the end), without consuming it."""
        while True:
            m = re.compile(r"\s*").match(self.buf, self.pos)
            assert m is not None
            self._advance(m.end())
            if self.pos < len(self.buf):
                return self.buf[self.pos]
            if not self._more():
                return ""

    def expect(self, chars: str) -> str:
        c = self.peek()
        if not c or c not in chars:
            raise ValueError(
                f"line {self.line}: expected one of {chars!r}, found {c or 'the end'!r}"
            )
        self._advance(self.pos + 1)
        return c

    def value(self) -> tuple[int, Any]:
        """The next JSON value and the line it starts on."""
        self.peek()
        start_line = self.line
        while True:
            try:
                value, end = self.decoder.raw_decode(self.buf, self.pos)
            except json.JSONDecodeError as exc:
                if self._more():
                    continue
                line = self.line - self.buf.count("\n", 0, self.pos) + exc.lineno - 1
                raise ValueError(f"line {line}: {exc.msg}") from None
            # A number at the very end of the buffer may continue in the next chunk.
            if end == len(self.buf) and not self.eof and self._more():
                continue
            self._advance(end)
            return start_line, value


def read_json(fh: IO[str], ctx: ReadContext, meta: FileMeta) -> Iterator[ForecastIn]:
    """Stream the forecasts of a tracker JSON file (or a bare JSON list of forecast objects)."""
    stream = _JsonStream(fh)
    index = 0

    def items() -> Iterator[ForecastIn]:
        nonlocal index
        if stream.peek() == "]":
            stream.expect("]")
            return
        while True:
            line, item = stream.value()
            index += 1
            where = f"forecast {index} (line {line})"
            if isinstance(item, Mapping):
                yield forecast_from_mapping(item, where, ctx)
            else:
                yield ForecastIn(where=where, problems=[f"{where}: expected a JSON object"])
            if stream.expect(",]") == "]":
                return

    try:
        first = stream.expect("[{")
        if first == "[":
            yield from items()
        else:
            header: dict[str, Any] = {}
            if stream.peek() == "}":
                stream.expect("}")
            else:
                while True:
                    _line, key = stream.value()
                    stream.expect(":")
                    if key == "forecasts":
                        stream.expect("[")
                        yield from items()
                    elif key in ("format", "version", "ledger"):
                        header[key] = stream.value()[1]
                    else:
                        meta.problems.append(f"line {stream.line}: unknown top-level key {key!r}")
                        stream.value()
                    if stream.expect(",}") == "}":
                        break
            _check_header(meta, header)
        if stream.peek():
            raise ValueError(f"line {stream.line}: unexpected text after the document")
    except ValueError as exc:
        meta.problems.append(f"not a readable JSON file: {exc}")


def _json_line(data: Any) -> str:
    return json.dumps(data, ensure_ascii=False, allow_nan=False, separators=(", ", ": "))


def write_json(session: Session, out: IO[str]) -> int:
    """Write every forecast as JSON, one forecast per line; returns how many."""
    head = LEDGER.head(executor(session))
    out.write("{\n")
    out.write(f'  "format": "{FORMAT_NAME}",\n  "version": {FORMAT_VERSION},\n')
    out.write(f'  "ledger": {_json_line({"entries": head.seq, "head": head.hash})},\n')
    out.write('  "forecasts": [')
    count = 0
    for record in export_records(session):
        out.write(("\n" if count == 0 else ",\n") + "    " + _json_line(record))
        count += 1
    out.write("\n  ]\n}\n" if count else "]\n}\n")
    return count


# --- CSV ----------------------------------------------------------------------------------------


def _csv_json(value: str, field: str, where: str, problems: list[str]) -> Any:
    if not value:
        return None
    try:
        return json.loads(value)
    except json.JSONDecodeError:
        problems.append(f"{where}: {field}: expected a JSON list")
        return None


#: The CSV columns of an estimate's :data:`ESTIMATE_CELLS`, in their order.
_FAST_ESTIMATE = tuple({v: k for k, v in _ESTIMATE_COLUMNS.items()}[c] for c in ESTIMATE_CELLS)


def read_csv(fh: IO[str], ctx: ReadContext, meta: FileMeta) -> Iterator[ForecastIn]:
    """Stream a tracker CSV file: a titled row starts a forecast, untitled rows add estimates.

    The rows of one forecast are gathered, then read by :func:`forecast_from_cells` (the fast
    path: an open forecast, no checks or amendments, nothing out of place) or, when that declines,
    turned into a mapping for :func:`forecast_from_mapping`, which names every problem.
    """
    skipped = 0
    first = fh.readline()
    while first.startswith("#"):
        m = _CSV_HEAD.match(first)
        if m:
            meta.ledger_entries, meta.ledger_head = int(m.group(2)), m.group(3)
            if int(m.group(1)) != FORMAT_VERSION:
                meta.problems.append(f"line {skipped + 1}: this tracker reads version 1")
        skipped += 1
        first = fh.readline()
    reader = csv.reader(chain([first], fh))
    header = next(reader, None)
    if header is None:
        return
    header = [h.strip() for h in header]
    unknown = [h for h in header if h not in CSV_COLUMNS]
    if unknown:
        shown = ", ".join(repr(h) if len(h) <= 60 else repr(h[:57]) + "..." for h in unknown)
        meta.problems.append(f"line {skipped + 1}: unknown column(s) {shown}")
        return
    if "title" not in header:
        meta.problems.append(f"line {skipped + 1}: a title column is required")
        return
    width = len(header)
    title_at = header.index("title")
    estimate_at = [
        (i, _ESTIMATE_COLUMNS[h]) for i, h in enumerate(header) if h in _ESTIMATE_COLUMNS
    ]
    other_at = [i for i, h in enumerate(header) if h not in _ESTIMATE_COLUMNS]
    # Fast path cells, taken by itemgetters; an absent column reads as the empty cell at index
    # ``width`` that the loop below adds to every row.
    column = {h: i for i, h in enumerate(header)}
    forecast_cells = itemgetter(*[column.get(h, width) for h in FORECAST_CELLS])
    estimate_cells = itemgetter(*[column.get(h, width) for h in _FAST_ESTIMATE])
    status_at = column.get("status", width)
    rest_at = [
        i
        for i, h in enumerate(header)
        if h not in FORECAST_CELLS and h not in _FAST_ESTIMATE and i != status_at
    ]
    rest_cells = itemgetter(*rest_at) if rest_at else lambda row: ()
    # the cells an estimate row may fill besides the fast path's (a non-binary estimate's values)
    valued_at = [
        i for i, h in enumerate(header) if h in _ESTIMATE_COLUMNS and h not in _FAST_ESTIMATE
    ]
    other_cells = itemgetter(*other_at, *valued_at)  # the title at least

    def slow(where: str, group: list[tuple[int, list[str]] | str]) -> ForecastIn:
        """The record read the careful way, from the mapping of the group's cells."""
        extra: list[str] = []
        current: dict[str, Any] = {}
        for n, item in enumerate(group):
            if isinstance(item, str):  # a row of the wrong width
                extra.append(item)
                continue
            line, row = item
            if n == 0:  # the titled row
                current = {header[i]: row[i] for i in other_at if row[i] != ""}
                for key in ("checks", "amendments", "corrections"):
                    if key in current:
                        parsed = _csv_json(current.pop(key), key, where, extra)
                        if parsed is not None:
                            current[key] = parsed
                current["estimates"] = []
            else:
                others = [header[i] for i in other_at if row[i].strip()]
                if others:
                    extra.append(f"line {line}: {', '.join(others)} given on an estimate row")
            estimate = {name: row[i] for i, name in estimate_at if row[i] != ""}
            if estimate:
                current["estimates"].append(estimate)
        record = forecast_from_mapping(current, where, ctx)
        record.problems[:0] = extra
        return record

    def fast(where: str, group: list[tuple[int, list[str]] | str]) -> ForecastIn | None:
        rows = [item[1] for item in group if not isinstance(item, str)]
        if len(rows) < len(group):  # a row of the wrong width: a problem to name
            return None
        head = rows[0]
        if any(rest_cells(head)) or head[status_at] not in ("", "open"):
            return None
        for row in rows[1:]:
            if any(other_cells(row)):
                return None
        estimates = [cells for cells in map(estimate_cells, rows) if any(cells)]
        return forecast_from_cells(where, ctx, forecast_cells(head), estimates)

    def done(where: str, group: list[tuple[int, list[str]] | str]) -> ForecastIn:
        return fast(where, group) or slow(where, group)

    where = ""
    group: list[tuple[int, list[str]] | str] | None = None
    for row in reader:
        if not any(row):
            continue
        line = reader.line_num + skipped
        if len(row) != width:
            problem = f"line {line}: {len(row)} cells, the header has {width}"
            if group is not None:
                group.append(problem)
            else:
                meta.problems.append(problem)
            continue
        row.append("")  # the cell at index ``width``: an absent column, for the fast path
        if row[title_at].strip():
            if group is not None:
                yield done(where, group)
            where = f"line {line}"
            group = [(line, row)]
        elif group is None:
            meta.problems.append(f"line {line}: an estimate row before any titled forecast row")
        else:
            group.append((line, row))
    if group is not None:
        yield done(where, group)


def _csv_cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, list | dict):  # a question's spec, an estimate's values
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def write_csv(session: Session, out: IO[str]) -> int:
    """Write every forecast as CSV, one row per estimate; returns how many forecasts."""
    head = LEDGER.head(executor(session))
    out.write(f"# {FORMAT_NAME} {FORMAT_VERSION} ledger entries={head.seq} head={head.hash}\n")
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    count = 0
    for record in export_records(session):
        base = {
            **record,
            "tags": ",".join(record["tags"]),
            **{
                key: json.dumps(record[key], ensure_ascii=False) if record[key] else None
                for key in ("checks", "amendments", "corrections")
            },
        }
        estimates = record["estimates"] or [{}]
        for i, e in enumerate(estimates):
            row = dict.fromkeys(CSV_COLUMNS) if i else {c: base.get(c) for c in CSV_COLUMNS}
            for col, name in _ESTIMATE_COLUMNS.items():
                row[col] = e.get(name)
            writer.writerow([_csv_cell(row[c]) for c in CSV_COLUMNS])
        count += 1
        out.write(buffer.getvalue())
        buffer.seek(0)
        buffer.truncate()
    out.write(buffer.getvalue())
    return count


# --- export records -----------------------------------------------------------------------------

_EXPORT_CHUNK = 1000


def export_records(session: Session) -> Iterator[dict[str, Any]]:
    """Every forecast in id order as an export record, with ids and ledger seqs, read in chunks."""
    f_t, t_t, e_t = Forecast.__table__, Tag.__table__, Estimate.__table__
    a_t, c_t, l_t = Amendment.__table__, Check.__table__, LedgerEntry.__table__
    last = 0
    while True:
        forecasts = session.execute(
            select(f_t).where(f_t.c.id > last).order_by(f_t.c.id).limit(_EXPORT_CHUNK)
        ).all()
        if not forecasts:
            return
        lo, hi = forecasts[0].id, forecasts[-1].id
        last = hi

        def window(table: Any, lo: int = lo, hi: int = hi) -> Any:
            return table.c.forecast_id.between(lo, hi)

        tags: dict[int, list[str]] = {}
        for fid, name in session.execute(
            select(t_t.c.forecast_id, t_t.c.name).where(window(t_t)).order_by(t_t.c.name)
        ):
            tags.setdefault(fid, []).append(name)
        seqs: dict[tuple[str, int], int] = {}
        closings: dict[int, list[dict[str, Any]]] = {}
        for seq, kind, fid, payload in session.execute(
            select(l_t.c.seq, l_t.c.kind, l_t.c.forecast_id, l_t.c.payload)
            .where(window(l_t))
            .order_by(l_t.c.seq)
        ):
            if kind in ("estimate", "amend"):
                seqs[(kind, int(json.loads(payload)["id"]))] = int(seq)
            elif kind == "register":
                seqs[("register", fid)] = int(seq)
            elif kind in CLOSING_HISTORY:
                event = {"kind": kind, "seq": int(seq), **json.loads(payload)}
                del event["forecast"]
                closings.setdefault(fid, []).append(event)
        kinds = {f.id: f.kind for f in forecasts}
        estimates: dict[int, list[dict[str, Any]]] = {}
        for row in session.execute(select(e_t).where(window(e_t)).order_by(e_t.c.id)):
            kind = kinds[row.forecast_id]
            e: Any = row  # a binary estimate's row as it is (an export may hold millions)
            if row.distribution is not None:
                e = SimpleNamespace(**row._asdict(), values=decode(row.distribution))
            estimates.setdefault(e.forecast_id, []).append(
                {"id": e.id, "seq": seqs.get(("estimate", e.id)), **estimate_fields(e, kind)}
            )
        amendments: dict[int, list[dict[str, Any]]] = {}
        for a in session.execute(select(a_t).where(window(a_t)).order_by(a_t.c.id)):
            amendments.setdefault(a.forecast_id, []).append(
                {"id": a.id, "seq": seqs.get(("amend", a.id)), **amendment_fields(a)}
            )
        checks: dict[int, list[dict[str, Any]]] = {}
        for c in session.execute(
            select(c_t.c.forecast_id, c_t.c.kind, c_t.c.mode, c_t.c.params, c_t.c.enabled)
            .where(window(c_t))
            .order_by(c_t.c.id)
        ):
            params = c.params if isinstance(c.params, dict) else {}
            spec = {"kind": c.kind, "mode": c.mode, **dict(sorted(params.items()))}
            if not c.enabled:
                spec["stopped"] = True
            checks.setdefault(c.forecast_id, []).append(spec)
        for f in forecasts:
            # The current closing is the forecast's own fields; the closings before it (and the
            # reopenings that withdrew them) are its corrections.
            corrections = closings.get(f.id, [])
            current = corrections.pop() if f.status != "open" and corrections else None
            typed: dict[
                str, Any
            ] = {}  # a numeric, date or choice question's (a binary record is as it was)
            if f.kind != "binary":
                spec = json.loads(f.question)
                typed = {"kind": f.kind, "question": spec, "resolution_value": f.resolution_value}
            yield {
                "id": f.id,
                "ref": f.ref,
                **registered_fields(f),
                "tags": tags.get(f.id, []),
                "status": f.status,
                "outcome": f.outcome,
                "resolved_at": iso(f.resolved_at),
                "resolved_by": f.resolved_by,
                "resolution_note": f.resolution_note,
                "resolution_evidence": f.resolution_evidence,
                "seq": seqs.get(("register", f.id)),
                "resolution_seq": current["seq"] if current else None,
                **typed,
                "estimates": estimates.get(f.id, []),
                "amendments": amendments.get(f.id, []),
                "corrections": corrections,
                "checks": checks.get(f.id, []),
            }
