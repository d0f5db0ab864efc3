"""The report, the export and the import over HTTP (the CLI's report, export and import).

- ``GET /api/v1/report``: :func:`reports.build.build_report` with ``tracker report``'s filters,
  rendered by :func:`reports.render.render` in the format asked (JSON by default): the same text
  the command prints.
- ``GET /api/v1/export``: the export file, byte for byte what ``tracker export`` writes.
- ``POST /api/v1/import`` (admin): a multipart form with the ``file`` (its name as the CLI was
  given it: the name tells the format, and the problems are reported against it) and the
  command's options; all or nothing, every problem listed (422 with ``problems``).
"""

from __future__ import annotations

import json
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

from fastapi import File, Form, Request, UploadFile
from fastapi.responses import JSONResponse, Response, StreamingResponse

from predictions.clock import now as clock_now
from predictions.errors import ImportProblems, InputError
from predictions.validation import parse_timezone, require_text
from reports.team import MIN_COUNT
from service.app import problem
from service.auth import CurrentUser
from service.routes import route

__all__ = ["MEDIA_TYPES"]

#: The media type of each format the report and the export are served in.
MEDIA_TYPES = {
    "json": "application/json",
    "text": "text/plain; charset=utf-8",
    "md": "text/markdown; charset=utf-8",
    "html": "text/html; charset=utf-8",
    "toml": "application/toml",
    "csv": "text/csv; charset=utf-8",
}

#: An export is kept in memory up to this size, then in a temporary file.
_SPOOL = 16 * 1024 * 1024


@route("GET", "/api/v1/report", summary="The calibration report")
def report(
    request: Request,
    format: str = "json",
    by: str | None = None,
    tag: str | None = None,
    since: str | None = None,
    until: str | None = None,
    group_by: str = "quarter",
    min_count: int = MIN_COUNT,
    title: str = "Calibration report",
    timezone: str | None = None,
) -> Response:
    """``tracker report``: ``format`` json (default), text, md or html; ``since`` and ``until``
    as the command takes them, read in ``timezone`` (UTC)."""
    from reports.build import ReportQuery, build_report, parse_since, parse_until
    from reports.render import FORMATS, render

    if format not in FORMATS:
        raise InputError("format", format, "one of " + ", ".join(FORMATS))
    tz = parse_timezone(timezone)
    query = ReportQuery(
        by=by,
        tag=tag,
        since=parse_since(since, tz) if since else None,
        until=parse_until(until, tz) if until else None,
        group_by=group_by,
        min_count=min_count,
    )
    with request.app.state.store.read() as session:
        data = build_report(session, query)
    text = render(data, format, title=title, tz=tz, typed={"since": since, "until": until})
    return Response(text, media_type=MEDIA_TYPES[format])


@route("GET", "/api/v1/export", role="admin", summary="Export every forecast")
def export(request: Request, format: str = "json") -> Response:
    """``tracker export``: every forecast with its history, checks and the ledger chain head,
    as json (default), toml or csv; the header ``X-Tracker-Count`` says how many forecasts.
    Admins only: a backup holds every estimate, a blind question's too."""
    from predictions.formats import export as write_export

    # Written first (the read transaction ends before the response starts), into memory while
    # small and a temporary file beyond, then streamed; closed by chunks() (or on an error).
    out = tempfile.SpooledTemporaryFile(_SPOOL, mode="w+", encoding="utf-8", newline="")  # noqa: SIM115
    try:
        with request.app.state.store.read() as session:
            count = write_export(session, format, out)
    except BaseException:
        out.close()
        raise
    out.seek(0)

    def chunks() -> Iterator[str]:
        with out:
            while chunk := out.read(1 << 16):
                yield chunk

    headers = {
        "content-disposition": f'attachment; filename="tracker-export.{format}"',
        "x-tracker-count": str(count),  # how many forecasts (the CLI says so)
    }
    return StreamingResponse(chunks(), media_type=MEDIA_TYPES[format], headers=headers)


class _DryRun(Exception):
    """Raised inside the write transaction to roll a dry run back."""


@route("POST", "/api/v1/import", role="admin", summary="Import forecasts")
def import_file(
    request: Request,
    user: CurrentUser,
    file: Annotated[UploadFile, File()],
    resolutions: Annotated[UploadFile | None, File()] = None,
    format: Annotated[str | None, Form()] = None,
    dry_run: Annotated[bool, Form()] = False,
    skip_existing: Annotated[bool, Form()] = False,
    by: Annotated[str | None, Form()] = None,
    timezone: Annotated[str | None, Form()] = None,
) -> Any:
    """``tracker import``: the summary (``--json``'s). Hand-written records that name no author
    are ``by``'s (default: you); their dates are days in ``timezone`` (UTC)."""
    from predictions.bulk import import_records
    from predictions.formats import ReadContext, open_records
    from resolvers import validate_check

    source = require_text(file.filename or "upload", "file", multiline=False) or "upload"
    ctx = ReadContext(now=clock_now(), author=by or user.name, tz=parse_timezone(timezone))
    summary = None
    with tempfile.TemporaryDirectory(prefix="tracker-import-") as folder:
        path = _saved(file, Path(folder), source)
        given = _saved(resolutions, Path(folder), "resolutions.json") if resolutions else None
        try:
            with (
                open_records(path, format, ctx, resolutions=given) as (meta, records),
                request.app.state.store.write() as session,
            ):
                summary = import_records(
                    session,
                    records,
                    source=source,
                    meta=meta,
                    validate_check=validate_check,
                    skip_existing=skip_existing,
                    now=ctx.now,
                )
                if dry_run:
                    summary.dry_run = True
                    raise _DryRun
        except _DryRun:
            pass
        except ImportProblems as exc:  # the problem, with every line of it
            body = json.loads(bytes(problem(422, exc.headline).body))
            return JSONResponse(
                {**body, "problems": exc.problems},
                status_code=422,
                media_type="application/problem+json",
            )
    assert summary is not None
    return summary.as_dict()


def _saved(upload: UploadFile, folder: Path, name: str) -> Path:
    """The upload written into ``folder`` under the last part of ``name`` (the format is told
    by it), made safe as a file name."""
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", name.replace("\\", "/").rsplit("/", 1)[-1])
    path = folder / ("upload" + safe if not safe or safe.startswith(".") else safe)
    with path.open("wb") as out:
        while chunk := upload.file.read(1 << 20):
            out.write(chunk)
    return path
