"""The track-record pages: the numbers of ``tracker report`` (:func:`reports.build.build_report`,
rendered by the HTML report's own pieces, :func:`reports.render.html_part`), never recomputed.

- ``/record``: mine (``tracker report --by ME``); ``/record/forecasters/{name}`` (``--by NAME``);
  ``/record/tags/{tag}`` (``--tag TAG``); ``/record/team`` (everyone, ``--group-by forecaster``).
  Each takes ``?group_by=&since=&until=`` as the command takes them (dates in UTC).
- ``/team``: the team view (``tracker report --group-by forecaster --min-count N``): each
  person's Brier and relative Brier with counts, ranked from ``?min_count=``, the team's
  aggregates and the markets beside them, and each question type's scores by forecaster.
- ``/static/report.css``: the HTML report's stylesheet (:data:`reports.render.STYLESHEET`).

Speed: a report over 100,000 forecasts takes about a second to read, so the scored parts are kept
in :class:`FileCache` (files, shared by every process of the host; keyed by the database's state,
so a write makes a new entry and nothing is ever stale): a page then costs the counts of questions
by state and the rendering.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import Response
from markupsafe import Markup

from predictions.errors import NotFoundError
from reports.build import GROUP_BY, ReportQuery, build_report, parse_since, parse_until
from reports.render import STYLESHEET, html_part
from reports.team import MIN_COUNT
from service.auth import CurrentUser
from service.render import render
from service.routes import route

__all__ = ["FileCache", "cache_folder"]

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


def _query(
    group_by: str,
    since: str | None,
    until: str | None,
    *,
    by: str | None = None,
    tag: str | None = None,
    min_count: int = MIN_COUNT,
) -> ReportQuery:
    """The report's query from the page's parameters, read as ``tracker report`` reads them."""
    return ReportQuery(
        by=by,
        tag=tag,
        since=parse_since(since) if since else None,
        until=parse_until(until) if until else None,
        group_by=group_by,
        min_count=min_count,
    )


def _report(request: Request, query: ReportQuery) -> dict[str, Any]:
    with request.app.state.store.read() as session:
        return build_report(session, query, cache=_cache(request))


def _page(
    request: Request,
    heading: str,
    query: ReportQuery,
    typed: dict[str, str | None],
    *,
    find: str | None = None,
) -> Response:
    """A track-record page: the report of ``query`` under ``heading``; ``find`` names the
    forecaster that must exist (a name with no question and no account is not found)."""
    report = _report(request, query)
    if find is not None and not report["counts"]["questions"]:
        with request.app.state.store.read() as session:
            from predictions import accounts

            try:
                accounts.get_user(session, find)
            except NotFoundError:
                raise NotFoundError("forecaster", find) from None
    body = Markup(html_part(report, "body", typed=typed, links=_LINKS))  # noqa: S704 (escaped)
    return render(
        request,
        "record.html",
        heading=heading,
        report=report,
        body=body,
        group_by=GROUP_BY,
        typed=typed,
    )


@route("GET", "/record", role="viewer")
def my_record(
    request: Request,
    user: CurrentUser,
    group_by: str = "quarter",
    since: str | None = None,
    until: str | None = None,
) -> Response:
    """My track record: ``tracker report --by ME``."""
    query = _query(group_by, since, until, by=user.name)
    return _page(request, "My track record", query, {"since": since, "until": until})


@route("GET", "/record/forecasters/{name}", role="viewer")
def forecaster_record(
    request: Request,
    name: str,
    group_by: str = "quarter",
    since: str | None = None,
    until: str | None = None,
) -> Response:
    """A forecaster's (or a market's) track record: ``tracker report --by NAME``."""
    query = _query(group_by, since, until, by=name)
    typed = {"since": since, "until": until}
    return _page(request, f"Track record of {name}", query, typed, find=name)


@route("GET", "/record/tags/{tag}", role="viewer")
def tag_record(
    request: Request,
    tag: str,
    group_by: str = "quarter",
    since: str | None = None,
    until: str | None = None,
) -> Response:
    """The track record on a tag's questions: ``tracker report --tag TAG``."""
    query = _query(group_by, since, until, tag=tag)
    typed = {"since": since, "until": until}
    return _page(request, f"Track record on {query.tag}", query, typed)


@route("GET", "/record/team", role="viewer")
def team_record(
    request: Request,
    group_by: str = "forecaster",
    since: str | None = None,
    until: str | None = None,
    min_count: int = MIN_COUNT,
) -> Response:
    """The team's track record: ``tracker report --group-by forecaster`` (every forecaster)."""
    query = _query(group_by, since, until, min_count=min_count)
    return _page(request, "The team's track record", query, {"since": since, "until": until})


@route("GET", "/team", role="viewer")
def team_page(
    request: Request,
    min_count: int = MIN_COUNT,
    since: str | None = None,
    until: str | None = None,
) -> Response:
    """The team view: ``tracker report --group-by forecaster --min-count N``'s team section."""
    report = _report(request, _query("forecaster", since, until, min_count=min_count))
    typed = {"since": since, "until": until}
    table = Markup(html_part(report, "team", typed=typed, links=_LINKS))  # noqa: S704 (escaped)
    return render(
        request, "team.html", report=report, table=table, typed=typed, min_count=min_count
    )


@route("GET", "/static/report.css", role=None, include_in_schema=False)
def report_stylesheet() -> Response:
    """The HTML report's stylesheet, for the track-record pages."""
    css = STYLESHEET.read_bytes()
    return Response(css, media_type="text/css", headers={"cache-control": "public, max-age=3600"})
