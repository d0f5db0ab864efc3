"""The forecast pages: home, a forecast (with its forms), a new forecast, search and filters.

Every page is server-rendered (:func:`service.render.render`), works without JavaScript and
draws its charts as inline SVG (:mod:`service.page_views`). Every form posts with the session's
CSRF token, is redirected (303) to a page after it succeeds, and on bad input is shown again with
the CLI's one-line error (``Error: ...``) and its values, nothing changed: the texts typed are read
by the functions the CLI calls (:mod:`predictions.inputs`, :func:`predictions.validation.read_due`,
``resolvers.parse_check`` / ``validate_check``). The forecaster, author and resolver is always
the signed-in user.

A forecast tagged ``blind`` (:data:`predictions.shown.BLIND_TAG`) hides the others' estimates
from a person until they have forecast it themselves (:func:`predictions.shown.hidden_from`).
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import Form, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import text
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

import resolvers.review as reviews
from predictions import records, store
from predictions.accounts import UserRow
from predictions.checks import add_checks
from predictions.clock import now as clock_now
from predictions.errors import InputError, StateError
from predictions.inputs import read_forecast, read_outcome, read_question, stored_forecast
from predictions.models import Proposal
from predictions.questions import Question
from predictions.records import ForecastQuery, ForecastRow
from predictions.shown import BLIND_TAG
from predictions.validation import parse_timezone, read_due
from resolvers import read_checks
from service.auth import CurrentUser
from service.page_views import Row, forecast_context, row_of, rows_of
from service.render import render
from service.routes import route

__all__ = ["PAGE_SIZE"]

#: Forecasts per page of the search page; each home section shows at most ``HOME_ROWS``.
PAGE_SIZE = 25
HOME_ROWS = 10

Text = Annotated[str, Form()]


def _error_line(exc: Exception) -> str:
    """The CLI's line for an error: ``Error: `` and the message's first line."""
    return "Error: " + (str(exc).splitlines() or [type(exc).__name__])[0]


def _status(exc: Exception) -> int:
    return 409 if isinstance(exc, StateError) else 422


def _see(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


# --- home ----------------------------------------------------------------------------------------


@route("GET", "/")
def home(request: Request, user: CurrentUser) -> Response:
    """Due soon, overdue, proposals awaiting review, recently resolved, my latest forecasts."""
    now = clock_now()
    with request.app.state.store.read() as session:

        def rows(status: str) -> list[Row]:
            return rows_of(session, ForecastQuery(status=status, limit=HOME_ROWS), user.name, now)

        sections = {name: rows(name) for name in ("due", "overdue", "resolved")}
        pending = reviews.review(session)
        mine = [row_of(f, user.name, now) for f in _latest_of(session, user.name)]
    return render(
        request,
        "home.html",
        due=sections["due"],
        overdue=sections["overdue"],
        resolved=sections["resolved"],
        proposals=pending[:HOME_ROWS],
        more_proposals=max(0, len(pending) - HOME_ROWS),
        mine=mine,
    )


def _latest_of(session: Session, name: str) -> list[ForecastRow]:
    """The forecasts ``name`` forecast most recently (their latest recorded estimates: the
    forecaster index read backwards), not withdrawn, latest first."""
    ids: list[int] = []
    recent = session.execute(
        text(
            "SELECT forecast_id FROM estimate WHERE forecaster = :name ORDER BY id DESC LIMIT :limit"
        ),
        {"name": name, "limit": HOME_ROWS * 5},
    )
    for (fid,) in recent:
        if fid not in ids:
            ids.append(fid)
    found = [store.get_forecast(session, fid) for fid in ids[:HOME_ROWS]]
    return [f for f in found if f.status != "withdrawn"]


# --- search --------------------------------------------------------------------------------------


@route("GET", "/forecasts")
def search(
    request: Request,
    user: CurrentUser,
    q: str = "",
    tag: str = "",
    status: str = "open",
    by: str = "",
    page: int = 1,
) -> Response:
    """Forecasts by text, tag, status and forecaster (``predictions.records.forecast_where``),
    soonest due first, :data:`PAGE_SIZE` a page."""
    now = clock_now()
    filters = {"q": q, "tag": tag, "status": status, "by": by}
    page = max(1, page)
    rows: list[Row] = []
    total, error = 0, None
    try:
        query = ForecastQuery(
            status=status,
            tag=tag.strip() or None,
            by=by.strip() or None,
            search=q.strip() or None,
            limit=PAGE_SIZE,
            offset=(page - 1) * PAGE_SIZE,
        )
        with request.app.state.store.read() as session:
            rows = rows_of(session, query, user.name, now)
            total = store.count_forecasts(session, query, now=now)
    except InputError as exc:
        error = _error_line(exc)
    pages = max(1, -(-total // PAGE_SIZE))

    def link(n: int) -> str:
        kept = {k: v for k, v in filters.items() if v}
        return "/forecasts?" + urlencode({**kept, "page": n})

    return render(
        request,
        "forecasts.html",
        status_code=422 if error else 200,
        rows=rows,
        total=total,
        page=page,
        pages=pages,
        previous=link(page - 1) if page > 1 else None,
        next=link(page + 1) if page < pages else None,
        filters=filters,
        statuses=records.LIST_STATUSES,
        error=error,
    )


# --- a forecast ----------------------------------------------------------------------------------


def _forecast_page(
    request: Request,
    user: UserRow,
    forecast_id: int,
    *,
    form: str | None = None,
    error: str | None = None,
    values: dict[str, Any] | None = None,
    status_code: int = 200,
) -> Response:
    """The forecast page; after a refused form, that ``form`` with its ``error`` and ``values``."""
    with request.app.state.store.read() as session:
        context = forecast_context(session, forecast_id, user, clock_now())
    context.update(form=form, error=error, values=values or {})
    context["banner"] = error if form is not None and form not in _forms(context) else None
    return render(request, "forecast.html", status_code=status_code, **context)


def _forms(context: dict[str, Any]) -> set[str]:
    """The forms the forecast page shows (an error of another is shown at the top)."""
    f = context["f"]
    shown = {"estimate"} if context["can_forecast"] else set()
    if context["can_close"]:
        shown |= {"resolve", "annul"} if f.status == "open" else {"reopen"}
        shown |= {"withdraw"} if f.status != "withdrawn" else set()
        shown |= {f"proposal{p['proposal']}" for p in context["pending"]}
    return shown


@route("GET", "/forecasts/{forecast_id}")
def forecast_page(request: Request, user: CurrentUser, forecast_id: int) -> Response:
    """One forecast: criteria, due, my estimate and its form, the others', the history chart,
    checks and evidence, proposals, and its owner's forms."""
    return _forecast_page(request, user, forecast_id)


def _typed(question: Question | None, text: str) -> float | tuple[float, ...]:
    """A forecast typed in a form's one field, read as the CLI reads it: as ``--quantiles`` on a
    numeric or date question (a named distribution is read there too), else as ``-p`` (a
    probability; a choice question's option probabilities, comma-separated)."""
    typed = text.strip() or None
    if question is not None and question.continuous:
        return read_forecast(question, None, quantiles=typed)
    return read_forecast(question, typed)


@route("POST", "/forecasts/{forecast_id}/estimate", role="member")
async def update_estimate(request: Request, user: CurrentUser, forecast_id: int) -> Response:
    """Record my new forecast on it (any member, on any forecast)."""
    form = await request.form()
    forecast = str(form.get("forecast", ""))
    options = [str(form.get(f"option{i}", "")) for i in range(30) if f"option{i}" in form]
    typed = ",".join(o.strip() for o in options) if options else forecast  # a choice: per option
    note = str(form.get("note", "")).strip() or None
    return await _run(
        request,
        user,
        forecast_id,
        "estimate",
        {
            "forecast": forecast,
            "note": note or "",
            **{f"option{i}": o for i, o in enumerate(options)},
        },
        lambda s, f: store.add_estimate(s, f, user.name, _typed(f.question, typed), note=note),
    )


async def _run(
    request: Request,
    user: UserRow,
    forecast_id: int,
    form: str,
    values: dict[str, Any],
    change: Any,
) -> Response:
    """Make a form's change in one transaction and go back to the forecast page; on bad input,
    that page again with the form's error and values (nothing written)."""

    def apply() -> None:
        with request.app.state.store.write() as session:
            change(session, store.get_forecast(session, forecast_id, for_update=True))

    try:
        await run_in_threadpool(apply)
    except InputError as exc:
        line, status = _error_line(exc), _status(exc)
        return await run_in_threadpool(
            lambda: _forecast_page(
                request, user, forecast_id, form=form, error=line, values=values, status_code=status
            )
        )
    return _see(f"/forecasts/{forecast_id}#{form}")


@route("POST", "/forecasts/{forecast_id}/resolve", role="member", owner=True)
async def resolve(
    request: Request,
    user: CurrentUser,
    forecast_id: int,
    outcome: Text = "",
    note: Text = "",
    evidence: Text = "",
) -> Response:
    """Resolve it: yes or no; a number; a date; an option (read as ``tracker resolve`` reads it)."""
    return await _run(
        request,
        user,
        forecast_id,
        "resolve",
        {"outcome": outcome, "note": note, "evidence": evidence},
        lambda s, f: store.resolve(
            s,
            f.id,
            read_outcome(f.question, outcome),
            by=user.name,
            note=note.strip() or None,
            evidence=evidence.strip() or None,
        ),
    )


def _why(note: str) -> str:
    """The note an annulment, a withdrawal or a reopening must give (the CLI's ``--note``)."""
    if not note.strip():
        raise InputError("note", None, "a note saying why")
    return note.strip()


def _closing(name: str, close: Any) -> Any:
    async def endpoint(
        request: Request, user: CurrentUser, forecast_id: int, note: Text = ""
    ) -> Response:
        return await _run(
            request,
            user,
            forecast_id,
            name,
            {"note": note},
            lambda s, f: close(s, f.id, by=user.name, note=_why(note)),
        )

    endpoint.__name__ = name
    endpoint.__doc__ = (
        f"{name.capitalize()} it, with a note saying why (the CLI's `tracker {name}`)."
    )
    return endpoint


annul_page = route("POST", "/forecasts/{forecast_id}/annul", role="member", owner=True)(
    _closing("annul", store.annul)
)
withdraw_page = route("POST", "/forecasts/{forecast_id}/withdraw", role="member", owner=True)(
    _closing("withdraw", store.withdraw)
)
reopen_page = route("POST", "/forecasts/{forecast_id}/reopen", role="member", owner=True)(
    _closing("reopen", store.reopen)
)


async def _decide(
    request: Request, user: UserRow, proposal_id: int, note: str | None, decide: Any
) -> Response:
    """Confirm or dispute (``decide``, :mod:`resolvers.review`'s) a pending proposal by the
    signed-in user, as the CLI's ``confirm`` / ``dispute --proposal`` do."""

    def forecast_of() -> int:
        with request.app.state.store.read() as session:
            proposal = session.get(Proposal, proposal_id)
            assert proposal is not None  # the route's guard found its owner
            return int(proposal.forecast_id)

    return await _run(
        request,
        user,
        await run_in_threadpool(forecast_of),
        f"proposal{proposal_id}",
        {"note": note or ""},
        lambda s, f: decide(s, f.id, by=user.name, note=note, proposal_id=proposal_id),
    )


@route("POST", "/proposals/{proposal_id}/confirm", role="member", owner=True)
async def confirm(
    request: Request, user: CurrentUser, proposal_id: int, note: Text = ""
) -> Response:
    """Confirm a pending proposal: the forecast is resolved (or annulled) as proposed."""
    return await _decide(request, user, proposal_id, note.strip() or None, reviews.confirm)


@route("POST", "/proposals/{proposal_id}/dispute", role="member", owner=True)
async def dispute(
    request: Request, user: CurrentUser, proposal_id: int, note: Text = ""
) -> Response:
    """Dispute a pending proposal, with a note saying why it is wrong."""
    return await _decide(request, user, proposal_id, note, reviews.dispute)


# --- a new forecast ------------------------------------------------------------------------------

_NEW_FIELDS = ("title", "forecast", "due", "kind", "range", "options", "open", "criteria", "tags",
               "source", "note", "checks", "timezone")  # fmt: skip
_KINDS = ("binary", "numeric", "date", "choice")


@route("GET", "/forecasts/new", role="member")
def new_page(request: Request, user: CurrentUser) -> Response:
    """The new-forecast form: title, forecast and due on one line; the rest below."""
    values: dict[str, Any] = dict.fromkeys(_NEW_FIELDS, "") | {"kind": "binary", "timezone": "UTC"}
    values.update(log=False, ordered=False, blind=False)
    return render(request, "new_forecast.html", values=values, error=None, kinds=_KINDS)


@route("POST", "/forecasts/new", role="member")
async def add(request: Request, user: CurrentUser) -> Response:
    """Register the forecast (and its checks) as ``tracker add`` does, by the signed-in user."""
    form = await request.form()
    values: dict[str, Any] = {name: str(form.get(name, "")) for name in _NEW_FIELDS}
    for flag in ("log", "ordered", "blind"):
        values[flag] = form.get(flag) is not None
    try:
        forecast = await run_in_threadpool(_register, request, user, values)
    except InputError as exc:
        return render(
            request,
            "new_forecast.html",
            status_code=_status(exc),
            values=values,
            error=_error_line(exc),
            kinds=_KINDS,
        )
    return _see(f"/forecasts/{forecast.id}")


def _register(request: Request, user: UserRow, v: dict[str, Any]) -> ForecastRow:
    """Read the form as ``tracker add`` reads its options (same order, same functions), then
    register the forecast and its checks in one transaction."""
    kind = v["kind"] if v["kind"] in _KINDS else "binary"
    ranged = kind in ("numeric", "date")
    question = read_question(
        v["range"] if kind == "numeric" else None,
        v["range"] if kind == "date" else None,
        v["options"] if kind == "choice" else None,
        (v["open"] or None) if ranged else None,
        bool(v["log"]) and ranged,
        bool(v["ordered"]) and kind == "choice",
    )
    given = _typed(question, v["forecast"])
    now = clock_now()
    due = read_due(v["due"], now=now, tz=parse_timezone(v["timezone"].strip() or None))
    lines = [line.strip() for line in v["checks"].splitlines() if line.strip()]
    specs = read_checks(lines, kind)
    tags = [t.strip() for t in v["tags"].split(",") if t.strip()]
    if v["blind"] and BLIND_TAG not in tags:
        tags.append(BLIND_TAG)
    fields: dict[str, Any] = dict(
        title=v["title"],
        criteria=v["criteria"],
        due=due,
        author=user.name,
        tags=tags,
        source=v["source"].strip() or None,
        note=v["note"].strip() or None,
        created_at=now,
        **stored_forecast(question, given),
    )
    with request.app.state.store.write() as session:
        forecast = store.add_forecast(session, **fields)
        if specs:
            add_checks(session, forecast.id, specs, now=forecast.created_at)
    return forecast
