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

from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from predictions import records, store
from predictions.clock import now as clock_now
from predictions.inputs import read_changes, read_forecast, read_outcome, read_question
from predictions.records import EstimateRow, ForecastQuery, ForecastRow, forecast_row
from predictions.validation import read_due

if TYPE_CHECKING:
    from contextlib import AbstractContextManager
    from sqlite3 import Connection
    from zoneinfo import ZoneInfo

    from sqlalchemy.orm import Session

    from tracker.client import Client


class Database(Protocol):
    """What :class:`Local` needs of the app (:class:`tracker.cli.App`): the timezone dates are
    read in and the database's transactions."""

    @property
    def tz(self) -> ZoneInfo: ...

    def forecasts(self, *, write: bool = False) -> AbstractContextManager[Session | Connection]: ...

    def write(self, *, bulk: bool = False) -> AbstractContextManager[Session]: ...


__all__ = ["CHANGED", "Database", "Local", "Operations", "Remote"]

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
            from resolvers import parse_check, validate_check

            kind = question.kind if question is not None else "binary"
            specs = [validate_check(parse_check(s), question_kind=kind) for s in form["checks"]]
        typed: dict[str, Any] = (
            {"probability": given} if question is None else {"question": question, "values": given}
        )
        fields: dict[str, Any] = {k: form.get(k) for k in ("title", "criteria", "source", "note")}
        # Checks are stored through SQLAlchemy: with them, a Session rather than the fast path.
        with self.app.write() if specs else self.app.forecasts(write=True) as db:
            forecast = store.add_forecast(
                db, **fields, due=due, author=by, tags=form.get("tags") or (), created_at=now,
                **typed,
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

    def show(self, forecast_id: str, viewer: str) -> tuple[ForecastRow, dict[str, Any]]:
        """The forecast and ``show --json``'s record of it (checks, history), seen by ``viewer``."""
        with self.app.forecasts() as db:
            forecast = store.get_forecast(db, forecast_id)
            closings = store.closings(db, forecast.id)
            return forecast, records.shown_record(forecast, viewer, closings)

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


class Remote:
    """The same operations through the service's API, as the signed-in user."""

    def __init__(self, client: Client, tz: ZoneInfo) -> None:
        self.client = client
        self.tz = tz

    def _forecast(self, forecast_id: str) -> str:
        """The path of a forecast; an id that is not a whole number is refused as locally."""
        try:
            number = int(forecast_id)
        except (TypeError, ValueError):
            from predictions.errors import InputError

            raise InputError("id", forecast_id, "a forecast id (a whole number)") from None
        return f"/api/v1/forecasts/{number}"

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
        record = self.client.call("POST", "/api/v1/forecasts", json=self._form(form, "due"))
        return forecast_row(record), list(record.get("checks") or [])

    def add_estimate(
        self, forecast_id: str, form: dict[str, Any], by: str
    ) -> tuple[ForecastRow, EstimateRow]:
        path = self._forecast(forecast_id) + "/estimates"
        record = self.client.call("POST", path, json=self._form(form))
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
            rows += [forecast_row(r) for r in got["items"]]
            total, offset = int(got["total"]), offset + len(got["items"])
            if not got["items"] or offset >= total:
                break
        return rows, total

    def show(self, forecast_id: str, viewer: str) -> tuple[ForecastRow, dict[str, Any]]:
        record = self.client.call("GET", self._forecast(forecast_id), params={"by": viewer})
        return forecast_row(record), record

    def amend(
        self, forecast_id: str, form: dict[str, Any], by: str
    ) -> tuple[ForecastRow, list[str]]:
        record = self.client.call(
            "PATCH", self._forecast(forecast_id), json=self._form(form, "due")
        )
        return forecast_row(record), _changed(form)

    def resolve(self, forecast_id: str, form: dict[str, Any], by: str) -> ForecastRow:
        path = self._forecast(forecast_id) + "/resolution"
        return forecast_row(self.client.call("POST", path, json=self._form(form)))

    def close(self, kind: str, forecast_id: str, note: str, by: str) -> ForecastRow:
        path = (
            self._forecast(forecast_id) + {"annul": "/annulment", "withdraw": "/withdrawal"}[kind]
        )
        return forecast_row(self.client.call("POST", path, json={"note": note}))

    def reopen(self, forecast_id: str, note: str, by: str) -> tuple[str, ForecastRow]:
        path = self._forecast(forecast_id) + "/reopening"
        record = self.client.call("POST", path, json={"note": note})
        forecast = forecast_row(record)
        forecast.checks = [
            records.CheckRow(c["id"], c["kind"], "auto", {}, True, None, None)  # type: ignore[arg-type]
            for c in record.get("auto_checks", ())
        ]
        return str(record["was"]), forecast


#: Either implementation: what :attr:`App.ops <tracker.cli.App.ops>` gives.
Operations = Local | Remote
