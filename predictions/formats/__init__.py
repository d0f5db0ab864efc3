"""Import and export formats: the tracker's own TOML, JSON and CSV, PredictionBook, ForecastBench.

:func:`open_records` opens a file and streams its forecasts as
:class:`~predictions.formats.records.ForecastIn` records for :func:`predictions.bulk.import_records`;
:func:`export` writes the database in one of the tracker's own formats. :func:`detect_format`
guesses the format from the file name and its first bytes::

    >>> detect_format_from("forecasts.toml", "")
    'toml'
    >>> detect_format_from("x.json", '[{"number": 1, "event": "..."}]')
    'predictionbook'
"""

from __future__ import annotations

import contextlib
import csv
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from sqlalchemy.orm import Session

from predictions.errors import InputError
from predictions.formats.forecastbench import (
    looks_like_forecastbench,
    looks_like_forecastbench_resolutions,
    read_forecastbench,
)
from predictions.formats.native import (
    read_csv,
    read_json,
    read_toml,
    write_csv,
    write_json,
    write_toml,
)
from predictions.formats.predictionbook import looks_like_predictionbook, read_predictionbook
from predictions.formats.records import FileMeta, ForecastIn, ReadContext

__all__ = [
    "EXPORT_FORMATS",
    "IMPORT_FORMATS",
    "FileMeta",
    "ForecastIn",
    "ReadContext",
    "detect_format",
    "detect_format_from",
    "export",
    "open_records",
]

IMPORT_FORMATS = ("toml", "json", "csv", "predictionbook", "forecastbench")
EXPORT_FORMATS = ("toml", "json", "csv")
_SNIFF = 8192


def detect_format_from(name: str, head: str) -> str:
    """The format of a file from its name and first characters; InputError if unrecognised."""
    suffix = Path(name).suffix.lower()
    if suffix == ".toml":
        return "toml"
    if suffix == ".csv":
        return "csv"
    if looks_like_forecastbench_resolutions(head) and not looks_like_forecastbench(head):
        raise InputError(
            "file",
            name,
            "a question set (a resolution set goes with it as --resolutions FILE)",
        )
    if looks_like_forecastbench(head):
        return "forecastbench"
    if looks_like_predictionbook(head):
        return "predictionbook"
    stripped = head.lstrip()
    if stripped.startswith(("{", "[")):
        return "json"
    if stripped.startswith("#") or "title" in stripped.split("\n", 1)[0]:
        return "csv"
    if stripped.startswith("[[forecast]]") or "\n[[forecast]]" in head:
        return "toml"
    raise InputError(
        "format", name, "a file in one of " + ", ".join(IMPORT_FORMATS) + " (or give --format)"
    )


def detect_format(path: Path) -> str:
    """The format of the file at ``path`` (its name, then its first bytes)."""
    with path.open("r", encoding="utf-8", errors="replace") as fh:
        head = fh.read(_SNIFF)
    return detect_format_from(path.name, head)


@contextlib.contextmanager
def open_records(
    path: Path,
    fmt: str | None,
    ctx: ReadContext,
    *,
    resolutions: Path | None = None,
) -> Iterator[tuple[FileMeta, Iterator[ForecastIn]]]:
    """Open ``path`` and stream its records; the files stay open until the block ends.

    ``meta`` fills in as the records are read (a JSON export may state its chain head at either
    end), so read it after the iterator is exhausted.
    """
    fmt = fmt or detect_format(path)
    if fmt not in IMPORT_FORMATS:
        raise InputError("format", fmt, "one of " + ", ".join(IMPORT_FORMATS))
    if resolutions is not None and fmt != "forecastbench":
        raise InputError(
            "--resolutions", str(resolutions), "only with a ForecastBench question set"
        )
    meta = FileMeta(format=fmt)
    with contextlib.ExitStack() as stack:
        records: Iterator[ForecastIn]
        if fmt == "toml":
            records = read_toml(stack.enter_context(path.open("rb")), ctx, meta)
        else:
            fh: IO[str] = stack.enter_context(
                path.open("r", encoding="utf-8-sig", newline="" if fmt == "csv" else None)
            )
            if fmt == "json":
                records = read_json(fh, ctx, meta)
            elif fmt == "csv":
                records = read_csv(fh, ctx, meta)
            elif fmt == "predictionbook":
                records = read_predictionbook(fh, ctx, meta)
            else:
                extra = (
                    stack.enter_context(resolutions.open("r", encoding="utf-8"))
                    if resolutions is not None
                    else None
                )
                records = read_forecastbench(fh, ctx, meta, extra)
        yield meta, _guarded(records, meta)


def _guarded(records: Iterator[ForecastIn], meta: FileMeta) -> Iterator[ForecastIn]:
    """Stop at bytes that are not UTF-8 or a broken CSV quote, as a problem of the file."""
    try:
        yield from records
    except UnicodeDecodeError as exc:
        meta.problems.append(f"not UTF-8 text: byte {exc.start} of a read block ({exc.reason})")
    except csv.Error as exc:
        meta.problems.append(f"not a readable CSV file: {exc}")


def export(session: Session, fmt: str, out: IO[str]) -> int:
    """Write every forecast of the database to ``out`` as ``fmt``; returns how many."""
    writers = {"toml": write_toml, "json": write_json, "csv": write_csv}
    if fmt not in writers:
        raise InputError("format", fmt, "one of " + ", ".join(EXPORT_FORMATS))
    if session.get_bind().dialect.name == "postgresql" and not session.in_transaction():
        # One snapshot for the whole file, so the chain head matches the records written.
        session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
    return writers[fmt](session, out)
