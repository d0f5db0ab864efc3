"""The track-record pages: the numbers of ``tracker report`` (:func:`reports.build.build_report`,
rendered by the HTML report's own pieces, :func:`reports.render.html_part`), never recomputed.

- ``/record``: mine (``tracker report --by ME``); ``/record/forecasters/{name}`` (``--by NAME``);
  ``/record/tags/{tag}`` (``--tag TAG``); ``/record/team`` (everyone). Each takes
  ``?group_by=&since=&until=&min_count=`` as the command takes its options (dates in UTC);
  ``group_by=forecaster`` adds the team view.
- ``/team``: the team view (``tracker report --group-by forecaster --min-count N``): each
  person's Brier and relative Brier with counts, ranked from ``?min_count=``, the team's
  aggregates and the markets beside them, and each question type's scores by forecaster.
- ``/static/report.css``: the HTML report's stylesheet (:data:`reports.render.STYLESHEET`).

Speed: a report over 100,000 forecasts takes about a second to read, so the scored parts are kept
in :class:`FileCache` (files, shared by every process of the host) under a key naming the ledger's
last entry that can change a score (:func:`reports.build.build_report`: a new question or estimate
keeps it, a resolution makes a new one; nothing is ever stale): a page then costs the counts of
questions by state and the rendering.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.responses import Response
from markupsafe import Markup

from predictions import accounts
from predictions.errors import NotFoundError
from reports.build import GROUP_BY, ReportQuery, build_report, parse_since, parse_until
from reports.render import STYLESHEET, html_part
from reports.team import MIN_COUNT
from service.auth import CurrentUser
from service.render import render
from service.routes import route

__all__ = ["FileCache", "Filtered", "Filters", "cache_folder"]

#: Links from a page's names to their track records.
_LINKS = {"forecaster": "/record/forecasters/"}
#: Cache entries kept per database (the oldest go first).
_KEEP = 64


def cache_folder() -> Path:
    """Where the pages keep reports: ``$TRACKER_CACHE_DIR``, else the user's cache folder."""
    folder = os.environ.get("TRACKER_CACHE_DIR")
    if not folder:
        import platformdirs

        folder = platformdirs.user_cache_dir("tracker")
    return Path(folder) / "reports"


class FileCache:
    """A :class:`reports.build.ReportCache` in a folder private to the user (0700): one JSON file
    per key, written whole (a temporary file renamed over it), so that concurrent processes read
    an entry whole or not at all. A file that cannot be read is a miss."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def _path(self, key: str) -> Path:
        return self.folder / (hashlib.sha256(key.encode()).hexdigest() + ".json")

    def get(self, key: str) -> dict[str, Any] | None:
        """The report parts kept under ``key``, or None."""
        try:
            kept = json.loads(self._path(key).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return kept["value"] if isinstance(kept, dict) and kept.get("key") == key else None

    def put(self, key: str, value: dict[str, Any]) -> None:
        """Keep ``value`` under ``key`` (and drop the oldest entries beyond :data:`_KEEP`); a
        folder that cannot be written leaves the page uncached, not failed."""
        try:
            self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
            text = json.dumps({"key": key, "value": value}, allow_nan=False)
            fd, temporary = tempfile.mkstemp(dir=self.folder, suffix=".tmp")
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(text)
            os.replace(temporary, self._path(key))
            entries = sorted(self.folder.glob("*.json"), key=lambda p: p.stat().st_mtime)
            for old in entries[:-_KEEP]:
                old.unlink(missing_ok=True)
        except OSError:
            return


def _cache(request: Request) -> FileCache:
    """The cache of this app's database (a folder per database URL)."""
    url = request.app.state.settings.db_url
    return FileCache(cache_folder() / hashlib.sha256(url.encode()).hexdigest()[:16])


@dataclass(frozen=True)
class Filters:
    """A page's ``?group_by=&since=&until=&min_count=``, read as ``tracker report`` reads its
    options (dates in UTC)."""

    group_by: str = "quarter"
    since: str | None = None
    until: str | None = None
    min_count: int = MIN_COUNT

    def query(self, *, by: str | None = None, tag: str | None = None) -> ReportQuery:
        """The report's query (bad input raises the command's error)."""
        return ReportQuery(
            by=by,
            tag=tag,
            since=parse_since(self.since) if self.since else None,
            until=parse_until(self.until) if self.until else None,
            group_by=self.group_by,
            min_count=self.min_count,
        )

    @property
    def typed(self) -> dict[str, str | None]:
        """The dates as typed (the report shows them so)."""
        return {"since": self.since, "until": self.until}


#: An endpoint's parameter for the filters of its query string.
Filtered = Annotated[Filters, Depends()]


def _report(request: Request, query: ReportQuery) -> dict[str, Any]:
    with request.app.state.store.read() as session:
        return build_report(session, query, cache=_cache(request))


def _page(request: Request, heading: str, filters: Filters, query: ReportQuery) -> Response:
    """A track-record page: the report of ``query`` under ``heading``. A forecaster (``by``)
    with no question and no account is not found."""
    report = _report(request, query)
    if query.by is not None and not report["counts"]["questions"]:
        with request.app.state.store.read() as session:
            try:
                accounts.get_user(session, query.by)
            except NotFoundError:
                raise NotFoundError("forecaster", query.by) from None
    body = html_part(report, "body", typed=filters.typed, links=_LINKS)
    return render(
        request,
        "record.html",
        heading=heading,
        report=report,
        body=Markup(body),  # noqa: S704 (the report's template escapes)
        group_by=GROUP_BY,
        typed=filters.typed,
    )


@route("GET", "/record", role="viewer")
def my_record(request: Request, user: CurrentUser, filters: Filtered) -> Response:
    """My track record: ``tracker report --by ME``."""
    return _page(request, "My track record", filters, filters.query(by=user.name))


@route("GET", "/record/forecasters/{name}", role="viewer")
def forecaster_record(request: Request, name: str, filters: Filtered) -> Response:
    """A forecaster's (or a market's) track record: ``tracker report --by NAME``."""
    return _page(request, f"Track record of {name}", filters, filters.query(by=name))


@route("GET", "/record/tags/{tag}", role="viewer")
def tag_record(request: Request, tag: str, filters: Filtered) -> Response:
    """The track record on a tag's questions: ``tracker report --tag TAG``."""
    query = filters.query(tag=tag)
    return _page(request, f"Track record on {query.tag}", filters, query)


@route("GET", "/record/team", role="viewer")
def team_record(request: Request, filters: Filtered) -> Response:
    """The team's track record: ``tracker report`` (every forecaster)."""
    return _page(request, "The team's track record", filters, filters.query())


@route("GET", "/team", role="viewer")
def team_page(request: Request, filters: Filtered) -> Response:
    """The team view: the team section of ``tracker report --group-by forecaster``."""
    filters = replace(filters, group_by="forecaster")
    report = _report(request, filters.query())
    table = html_part(report, "team", typed=filters.typed, links=_LINKS)
    return render(
        request,
        "team.html",
        report=report,
        table=Markup(table),  # noqa: S704 (the report's template escapes)
        typed=filters.typed,
        min_count=filters.min_count,
    )


@route("GET", "/static/report.css", role=None, include_in_schema=False)
def report_stylesheet() -> Response:
    """The HTML report's stylesheet, for the track-record pages."""
    css = STYLESHEET.read_bytes()
    return Response(css, media_type="text/css", headers={"cache-control": "public, max-age=3600"})
