"""What the commands do to forecasts, once for a database and once for a server.

:attr:`App.ops <tracker.cli.App.ops>` gives :class:`Local` (the store over the database this CLI
opens, one transaction per operation) or :class:`Remote` (the service's API, as the signed-in
user). Both take what the user typed, in the API's field names and text forms (a probability
``"70%"``, a due date ``"+90d"``, quantiles ``"10%=4,50%=8,90%=15"``), read locally by
:mod:`predictions.inputs` and remotely by the same functions on the server; both return the
store's rows (:class:`~predictions.records.ForecastRow`: the API's records are turned back into
rows by :func:`~predictions.records.forecast_row`), so a command prints the same either way.

``by`` is who the change is recorded under locally; a server records the signed-in user (the
CLI refuses a ``--by`` naming anyone else before it asks: :meth:`tracker.cli.App.writer`).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TextIO

from predictions import records, store
from predictions.clock import now as clock_now
from predictions.inputs import (
    read_changes,
    read_forecast,
    read_outcome,
    read_question,
    stored_forecast,
)
from predictions.records import EstimateRow, ForecastQuery, ForecastRow, forecast_row
from predictions.validation import read_due

if TYPE_CHECKING:
    from contextlib import AbstractContextManager
    from sqlite3 import Connection
    from zoneinfo import ZoneInfo

    from sqlalchemy.engine import Engine
    from sqlalchemy.orm import Session

    from predictions.bulk import ImportSummary
    from resolvers.sweep import SweepSettings
    from tracker.client import Client


__all__ = ["CHANGED", "Database", "Local", "Operations", "Remote"]


class Database(Protocol):
    """What :class:`Local` needs of the app (:class:`tracker.cli.App`): the timezone dates are
    read in, who "you" are, the database's transactions and its engine."""

    @property
    def tz(self) -> ZoneInfo: ...

    @property
    def forecaster(self) -> str: ...

    @property
    def engine(self) -> Engine: ...

    def forecasts(self, *, write: bool = False) -> AbstractContextManager[Session | Connection]: ...

    def write(self, *, bulk: bool = False) -> AbstractContextManager[Session]: ...

    def read(self) -> AbstractContextManager[Session]: ...

    def lite(self) -> AbstractContextManager[Connection | None]: ...


#: What an amendment form may change, in the order ``amend`` reports it (tags: ``tags`` and
#: ``untags``), as :func:`~predictions.inputs.read_changes` reads them.
CHANGED = ("title", "criteria", "due", "tags")

#: The API's largest page (``GET /api/v1/forecasts?limit=``).
_PAGE = 1000


def _changed(form: dict[str, Any]) -> list[str]:
    """The fields an amendment form changes, in :data:`CHANGED` order."""
    given = {**form, "tags": form.get("tags") or form.get("untags")}
    return [name for name in CHANGED if given.get(name)]


class Local:
    """The operations on this CLI's database (the fast path where it applies)."""

    def __init__(self, app: Database) -> None:
        self.app = app

    def add_forecast(
        self, form: dict[str, Any], by: str
    ) -> tuple[ForecastRow, list[dict[str, Any]]]:
        """Register a forecast (``POST /api/v1/forecasts``); returns it and its checks."""
        question = read_question(
            form.get("numeric"), form.get("date"), form.get("options"),
            form.get("open"), bool(form.get("log")), bool(form.get("ordered")),
        )  # fmt: skip
        given = read_forecast(
            question, form.get("probability"), form.get("quantiles"), form.get("distribution")
        )
        now = clock_now()
        due = read_due(form["due"], now=now, tz=self.app.tz)
        specs: list[dict[str, Any]] = []
        if form.get("checks"):
            from resolvers import read_checks

            specs = read_checks(form["checks"], question.kind if question is not None else "binary")
        fields: dict[str, Any] = {k: form.get(k) for k in ("title", "criteria", "source", "note")}
        # Checks are stored through SQLAlchemy: with them, a Session rather than the fast path.
        with self.app.write() if specs else self.app.forecasts(write=True) as db:
            forecast = store.add_forecast(
                db, **fields, due=due, author=by, tags=form.get("tags") or (), created_at=now,
                **stored_forecast(question, given),
            )  # fmt: skip
            if specs:
                from predictions.checks import add_checks

                add_checks(db, forecast.id, specs, now=forecast.created_at)  # type: ignore[arg-type]
        return forecast, specs

    def add_estimate(
        self, forecast_id: str, form: dict[str, Any], by: str
    ) -> tuple[ForecastRow, EstimateRow]:
        """Record ``by``'s new forecast (``POST .../estimates``); the forecast and the estimate."""
        with self.app.forecasts(write=True) as db:
            forecast = store.get_forecast(db, forecast_id)
            given = read_forecast(
                forecast.question,
                form.get("probability"),
                form.get("quantiles"),
                form.get("distribution"),
            )
            estimate = store.add_estimate(db, forecast, by, given, note=form.get("note"))
        return forecast, estimate

    def list_forecasts(
        self, query: ForecastQuery, *, now: datetime, latest_only: bool
    ) -> tuple[list[ForecastRow], int | None]:
        """The forecasts ``query`` matches and, when the page is full, how many match in all."""
        with self.app.forecasts() as db:
            rows = store.list_forecasts(db, query, now=now, latest_only=latest_only)
            full = query.limit is not None and len(rows) == query.limit
            return rows, store.count_forecasts(db, query, now=now) if full else None

    def show(self, forecast_id: str, by: str | None) -> tuple[ForecastRow, dict[str, Any]]:
        """The forecast and ``show --json``'s record of it (checks, history), seen by ``by``
        (default: you)."""
        with self.app.forecasts() as db:
            forecast = store.get_forecast(db, forecast_id)
            closings = store.closings(db, forecast.id)
            return forecast, records.shown_record(forecast, by or self.app.forecaster, closings)

    def amend(
        self, forecast_id: str, form: dict[str, Any], by: str
    ) -> tuple[ForecastRow, list[str]]:
        """Amend (``PATCH``): each change one amendment; the forecast (full) and what changed."""
        changes = read_changes(
            form.get("title"), form.get("criteria"), form.get("due"),
            form.get("tags") or (), form.get("untags") or (), now=clock_now(), tz=self.app.tz,
        )  # fmt: skip
        with self.app.forecasts(write=True) as db:
            for field, value in changes:
                store.amend(db, forecast_id, field, value, by=by, note=form.get("note"))  # type: ignore[arg-type]
            return store.get_forecast(db, forecast_id), [field for field, _ in changes]

    def resolve(self, forecast_id: str, form: dict[str, Any], by: str) -> ForecastRow:
        """Resolve to the ``outcome`` typed (``POST .../resolution``)."""
        with self.app.forecasts(write=True) as db:
            outcome = read_outcome(store.get_forecast(db, forecast_id).question, form["outcome"])
            return store.resolve(
                db, forecast_id, outcome, by=by, note=form.get("note"),
                evidence=form.get("evidence"),
            )  # fmt: skip

    def close(self, kind: str, forecast_id: str, note: str, by: str) -> ForecastRow:
        """Annul or withdraw (``kind``: ``annul``, ``withdraw``)."""
        with self.app.forecasts(write=True) as db:
            closed: ForecastRow = getattr(store, kind)(db, forecast_id, by=by, note=note)
            return closed

    def reopen(self, forecast_id: str, note: str, by: str) -> tuple[str, ForecastRow]:
        """Reopen; the status it had, and the forecast (with its checks)."""
        with self.app.forecasts(write=True) as db:
            was = store.get_forecast(db, forecast_id).status
            return was, store.reopen(db, forecast_id, by=by, note=note)

    # --- checks, evidence, proposals -------------------------------------------------------------

    def attach_checks(self, forecast_id: str, specs: list[str]) -> dict[str, Any]:
        """Validate every spec against the question, then attach them all (none if any is bad):
        ``{forecast, added: [check id], checks: [spec]}``."""
        from predictions.checks import add_checks
        from resolvers import read_checks

        with self.app.write() as session:
            forecast = store.get_forecast(session, forecast_id)
            valid = read_checks(specs, forecast.kind)
            ids = [c.id for c in add_checks(session, forecast.id, valid)]  # (flushed: ids known)
        return {"forecast": forecast.id, "added": ids, "checks": valid}

    def switch_check(
        self, forecast_id: str, check_id: int, *, stop: bool, note: str | None, by: str
    ) -> dict[str, Any]:
        """Stop or resume one check of the forecast (a receipt records it)."""
        from predictions.checks import switch_check, switch_record

        with self.app.write() as session:
            forecast = store.get_forecast(session, forecast_id)
            switched = switch_check(session, forecast.id, check_id, stop=stop, by=by, note=note)
            return switch_record(switched)

    def run_checks(
        self, forecast_id: str, *, dry_run: bool, settings: SweepSettings | None
    ) -> dict[str, Any]:
        """Run the forecast's running checks now (with the runner's ``settings``): the sweep
        report's record."""
        from resolvers.sweep import check_forecast

        engine = self.app.engine
        return check_forecast(engine, forecast_id, dry_run=dry_run, settings=settings).record()

    def review(self) -> list[dict[str, Any]]:
        """The pending proposals (``tracker review --json``)."""
        from resolvers.review import review

        with self.app.read() as session:
            return review(session)

    def decide(
        self, verdict: str, forecast_id: str, proposal_id: int | None, note: str | None, by: str
    ) -> dict[str, Any]:
        """Confirm or dispute (``verdict``) a pending proposal: its record, with what the
        forecast now resolves to."""
        from resolvers.review import confirm, decision_record, dispute

        decide: Callable[..., Any] = confirm if verdict == "confirm" else dispute
        with self.app.write() as session:
            proposal = decide(session, forecast_id, by=by, note=note, proposal_id=proposal_id)
            return decision_record(session, proposal)

    def evidence(self, forecast_id: str) -> list[dict[str, Any]]:
        """Every check made on the forecast, oldest first (``tracker evidence --json``)."""
        from predictions.checks import evidence_of, evidence_record

        with self.app.read() as session:
            forecast = store.get_forecast(session, forecast_id)
            return [evidence_record(e) for e in evidence_of(session, forecast.id)]

    # --- report, export, import ------------------------------------------------------------------

    def report(self, fmt: str, title: str, filters: dict[str, Any]) -> str:
        """The report rendered in ``fmt``; ``filters``: by, tag, since, until (as typed),
        group_by, min_count."""
        from reports.build import ReportQuery, build_report, parse_since, parse_until
        from reports.render import render

        since, until, tz = filters.get("since"), filters.get("until"), self.app.tz
        query = ReportQuery(
            by=filters.get("by"),
            tag=filters.get("tag"),
            since=parse_since(since, tz) if since else None,
            until=parse_until(until, tz) if until else None,
            group_by=filters["group_by"],
            min_count=filters["min_count"],
        )
        # On an existing SQLite file, the standard library's sqlite3 (no SQLAlchemy import).
        with self.app.lite() as conn:
            data = build_report(conn, query) if conn is not None else None
        if data is None:
            with self.app.read() as session:
                data = build_report(session, query)
        typed = {"since": since, "until": until}
        return render(data, fmt, title=title, tz=tz, typed=typed)

    def export(self, fmt: str, out: TextIO) -> int:
        """Write the export to ``out``; how many forecasts."""
        from predictions.formats import export as write_export

        with self.app.read() as session:
            return write_export(session, fmt, out)

    def import_file(self, file: Path, options: dict[str, Any], by: str | None) -> ImportSummary:
        """Import ``file`` whole or not at all; ``options``: format, resolutions, dry_run,
        skip_existing, progress."""
        from predictions.bulk import import_records
        from predictions.formats import ReadContext, open_records

        ctx = ReadContext(now=clock_now(), author=by or "", tz=self.app.tz)
        summary = None
        try:
            with (
                open_records(file, options.get("format"), ctx,
                             resolutions=options.get("resolutions")) as (meta, rows),
                self.app.write(bulk=True) as session,
            ):  # fmt: skip
                summary = import_records(
                    session, rows, source=str(file), meta=meta,
                    validate_check=_check_validator(), skip_existing=options["skip_existing"],
                    progress=options.get("progress"), now=ctx.now,
                )  # fmt: skip
                if options["dry_run"]:
                    summary.dry_run = True
                    raise _DryRun
        except _DryRun:
            pass
        assert summary is not None
        return summary


class _DryRun(Exception):
    """Raised inside the write transaction to roll a dry run back."""


def _check_validator() -> Any:
    """``resolvers.validate_check`` when the resolvers package is installed, imported when a
    record first carries a check (most files carry none, and the import is not cheap)."""
    import importlib.util

    if importlib.util.find_spec("resolvers") is None:
        return None

    def validate(raw: dict[str, Any], *, question_kind: str | None = None) -> dict[str, Any]:
        from resolvers import validate_check

        return validate_check(raw, question_kind=question_kind)

    return validate


class Remote:
    """The same operations through the service's API, as the signed-in user."""

    def __init__(self, client: Client, tz: ZoneInfo) -> None:
        self.client = client
        self.tz = tz

    def _id(self, forecast_id: str) -> int:
        """A forecast's id as typed; one that is not a whole number is refused as locally."""
        try:
            return int(forecast_id)
        except (TypeError, ValueError):
            from predictions.errors import InputError

            raise InputError("id", forecast_id, "a forecast id (a whole number)") from None

    def _forecast(self, forecast_id: str) -> str:
        """The path of a forecast."""
        return f"/api/v1/forecasts/{self._id(forecast_id)}"

    def _change(self, method: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """A forecast changed: its record, seen by the signed-in user (who it tells the client)."""
        return self.client.learn(self.client.call(method, path, json=body))

    def _form(self, form: dict[str, Any], *dated: str) -> dict[str, Any]:
        """A request body: the fields given, with the timezone dates typed as days are read in."""
        body = {k: list(v) if isinstance(v, tuple) else v for k, v in form.items()}
        body = {k: v for k, v in body.items() if not (v is None or v is False or v == [])}
        if any(name in body for name in dated):
            body["timezone"] = self.tz.key
        return body

    def add_forecast(
        self, form: dict[str, Any], by: str
    ) -> tuple[ForecastRow, list[dict[str, Any]]]:
        record = self._change("POST", "/api/v1/forecasts", self._form(form, "due"))
        specs = record.pop("checks", None) or []  # the specs attached, not show's check rows
        return forecast_row(record), list(specs)

    def add_estimate(
        self, forecast_id: str, form: dict[str, Any], by: str
    ) -> tuple[ForecastRow, EstimateRow]:
        path = self._forecast(forecast_id) + "/estimates"
        record = self._change("POST", path, self._form(form))
        forecast = forecast_row(record)
        estimate = records.latest_estimate(forecast, record["estimate"]["by"])
        assert estimate is not None
        return forecast, estimate

    def list_forecasts(
        self, query: ForecastQuery, *, now: datetime, latest_only: bool
    ) -> tuple[list[ForecastRow], int | None]:
        params: dict[str, Any] = {
            "status": query.status, "tag": query.tag, "by": query.by, "search": query.search,
        }  # fmt: skip
        rows: list[ForecastRow] = []
        offset, total = query.offset, None
        while query.limit is None or len(rows) < query.limit:
            want = _PAGE if query.limit is None else min(_PAGE, query.limit - len(rows))
            got = self.client.call(
                "GET", "/api/v1/forecasts", params={**params, "limit": want, "offset": offset}
            )
            if query.by is None and got["items"]:  # seen by the signed-in user
                self.client.learn(got["items"][0])
            rows += [forecast_row(r) for r in got["items"]]
            total, offset = int(got["total"]), offset + len(got["items"])
            if not got["items"] or offset >= total:
                break
        return rows, total

    def show(self, forecast_id: str, by: str | None) -> tuple[ForecastRow, dict[str, Any]]:
        record = self.client.call("GET", self._forecast(forecast_id), params={"by": by})
        if by is None:  # seen by the signed-in user
            self.client.learn(record)
        return forecast_row(record), record

    def amend(
        self, forecast_id: str, form: dict[str, Any], by: str
    ) -> tuple[ForecastRow, list[str]]:
        record = self._change("PATCH", self._forecast(forecast_id), self._form(form, "due"))
        return forecast_row(record), _changed(form)

    def resolve(self, forecast_id: str, form: dict[str, Any], by: str) -> ForecastRow:
        path = self._forecast(forecast_id) + "/resolution"
        return forecast_row(self._change("POST", path, self._form(form)))

    def close(self, kind: str, forecast_id: str, note: str, by: str) -> ForecastRow:
        path = (
            self._forecast(forecast_id) + {"annul": "/annulment", "withdraw": "/withdrawal"}[kind]
        )
        return forecast_row(self._change("POST", path, {"note": note}))

    def reopen(self, forecast_id: str, note: str, by: str) -> tuple[str, ForecastRow]:
        path = self._forecast(forecast_id) + "/reopening"
        record = self._change("POST", path, {"note": note})
        forecast = forecast_row(record)
        forecast.checks = [
            records.CheckRow(c["id"], c["kind"], "auto", {}, True, None, None)  # type: ignore[arg-type]
            for c in record.get("auto_checks", ())
        ]
        return str(record["was"]), forecast

    def _all(self, path: str, params: dict[str, Any] | None = None) -> list[Any]:
        """Every item of a paged list."""
        items: list[Any] = []
        while True:
            got = self.client.call(
                "GET", path, params={**(params or {}), "limit": _PAGE, "offset": len(items)}
            )
            items += got["items"]
            if not got["items"] or len(items) >= int(got["total"]):
                return items

    def attach_checks(self, forecast_id: str, specs: list[str]) -> dict[str, Any]:
        path = self._forecast(forecast_id) + "/checks"
        return self.client.call("POST", path, json={"checks": list(specs)})

    def switch_check(
        self, forecast_id: str, check_id: int, *, stop: bool, note: str | None, by: str
    ) -> dict[str, Any]:
        body = self._form({"note": note, "forecast": self._id(forecast_id)})
        path = f"/api/v1/checks/{check_id}/{'stop' if stop else 'resume'}"
        return self.client.call("POST", path, json=body)

    def run_checks(
        self, forecast_id: str, *, dry_run: bool, settings: SweepSettings | None
    ) -> dict[str, Any]:
        path = self._forecast(forecast_id) + "/check"  # the server runs them with its settings
        return self.client.call("POST", path, json={"dry_run": dry_run})

    def review(self) -> list[dict[str, Any]]:
        return self._all("/api/v1/proposals")

    def decide(
        self, verdict: str, forecast_id: str, proposal_id: int | None, note: str | None, by: str
    ) -> dict[str, Any]:
        path = self._forecast(forecast_id) + ("/confirm" if verdict == "confirm" else "/dispute")
        body = self._form({"proposal": proposal_id, "note": note})
        return self.client.call("POST", path, json=body)

    def evidence(self, forecast_id: str) -> list[dict[str, Any]]:
        return self._all(self._forecast(forecast_id) + "/evidence")

    def report(self, fmt: str, title: str, filters: dict[str, Any]) -> str:
        params = {**filters, "format": fmt, "title": title, "timezone": self.tz.key}
        return self.client.text("GET", "/api/v1/report", params=params)

    def export(self, fmt: str, out: TextIO) -> int:
        headers = self.client.download("/api/v1/export", out, {"format": fmt})
        return int(headers.get("x-tracker-count", -1))

    def import_file(self, file: Path, options: dict[str, Any], by: str | None) -> ImportSummary:
        from predictions.bulk import ImportSummary
        from predictions.errors import ImportProblems, InputError

        form = {
            "format": options.get("format"),
            "dry_run": "true" if options["dry_run"] else None,
            "skip_existing": "true" if options["skip_existing"] else None,
            "by": options.get("by"),
            "timezone": self.tz.key,
        }
        files = {"file": (str(file), file.read_bytes())}
        if options.get("resolutions") is not None:
            given = Path(options["resolutions"])
            files["resolutions"] = (str(given), given.read_bytes())
        try:
            summary = self.client.call("POST", "/api/v1/import", data=self._form(form), files=files)
        except InputError as exc:
            problems = (getattr(exc, "problem", None) or {}).get("problems")
            if problems:
                raise ImportProblems(str(file), list(problems)) from None
            raise
        return ImportSummary(**summary)


#: Either implementation: what :attr:`App.ops <tracker.cli.App.ops>` gives.
Operations = Local | Remote
