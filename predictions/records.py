"""Plain views of forecasts: the rows the store reads, the forecast filter, whose probability is
whose (:func:`standing`) and the JSON record (stdlib only, so the CLI's fast path uses them without
SQLAlchemy)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from predictions.chain import VALUES_KEY, amendment_fields, estimate_fields, iso
from predictions.errors import InputError
from predictions.questions import Question
from predictions.validation import require_text

__all__ = [
    "DUE_SOON",
    "LIST_STATUSES",
    "MARKET_FORECASTERS",
    "AmendmentRow",
    "CheckRow",
    "EstimateRow",
    "ForecastQuery",
    "ForecastRow",
    "Standing",
    "TagRow",
    "forecast_record",
    "forecast_row",
    "shown_record",
    "forecast_where",
    "is_market",
    "latest_estimate",
    "standing",
]

LIST_STATUSES = ("open", "due", "overdue", "resolved", "annulled", "withdrawn", "all")
#: ``list --status due`` shows open forecasts falling due within this window.
DUE_SOON = timedelta(days=7)

#: The pseudo-forecasters: a market check (the resolver kinds of these names) records the market's
#: probability as an estimate by a forecaster named after its kind. They are shown as the market,
#: never as a person's forecast, and get no email.
MARKET_FORECASTERS = frozenset({"manifold", "metaculus", "polymarket"})


def is_market(forecaster: str) -> bool:
    """Whether ``forecaster`` is a market (:data:`MARKET_FORECASTERS`), not a person."""
    return forecaster in MARKET_FORECASTERS


@dataclass
class EstimateRow:
    """One forecast given by one forecaster at one time: a ``probability`` on a binary question,
    else ``values`` (a CDF on :data:`predictions.questions.GRID` points for numeric and date
    questions, one probability per option for choice questions) and no probability."""

    id: int
    forecast_id: int
    forecaster: str
    probability: float | None
    made_at: datetime
    note: str | None
    values: tuple[float, ...] | None = None


@dataclass
class TagRow:
    """A tag of a forecast."""

    name: str


@dataclass
class AmendmentRow:
    """A recorded change of a forecast's title, criteria or due date."""

    id: int
    forecast_id: int
    field: str
    old_value: str
    new_value: str
    made_at: datetime
    made_by: str
    note: str | None


@dataclass
class CheckRow:
    """A resolver check of a forecast, as ``show`` lists it."""

    id: int
    kind: str
    mode: str
    params: dict[str, Any]
    enabled: bool
    last_checked_at: datetime | None
    next_check_at: datetime


@dataclass
class ForecastRow:
    """A forecast with its estimates and tags; :func:`get_forecast` also loads its amendments
    and checks (a list leaves those empty)."""

    id: int
    title: str
    criteria: str
    due: datetime
    created_at: datetime
    author: str
    source: str | None
    ref: str | None
    status: str
    outcome: bool | None
    resolved_at: datetime | None
    resolved_by: str | None
    resolution_note: str | None
    resolution_evidence: str | None
    #: the IANA zone whose day a date-only due ends (None: a due typed with its time)
    due_zone: str | None = None
    #: the question type (:data:`predictions.questions.KINDS`); ``question`` is its spec (None for
    #: binary) and ``resolution_value`` a non-binary question's resolution (``outcome`` is None)
    kind: str = "binary"
    question: Question | None = None
    resolution_value: float | None = None
    estimates: list[EstimateRow] = field(default_factory=list)
    tags: list[TagRow] = field(default_factory=list)
    amendments: list[AmendmentRow] = field(default_factory=list)
    checks: list[CheckRow] = field(default_factory=list)


@dataclass(frozen=True)
class ForecastQuery:
    """A filter for :func:`list_forecasts`."""

    status: str = "open"
    tag: str | None = None
    by: str | None = None
    limit: int | None = 100
    offset: int = 0
    search: str | None = None

    def __post_init__(self) -> None:
        if self.status not in LIST_STATUSES:
            raise InputError("status", self.status, "one of " + ", ".join(LIST_STATUSES))
        if self.limit is not None and self.limit < 0:
            raise InputError("limit", self.limit, "a whole number >= 0 (0 for no limit)")
        for name in ("tag", "by", "search"):  # text no database could compare with is bad input
            require_text(getattr(self, name), name, optional=True, multiline=False)


def forecast_where(
    *,
    alias: str = "f",
    status: str = "all",
    tag: str | None = None,
    by: str | None = None,
    by_estimate: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    when: str | None = None,
    now: datetime | None = None,
    search: str | None = None,
) -> tuple[str, dict[str, Any]]:
    """The one forecast filter, as plain SQL: ``(conditions, params)`` for ``WHERE conditions``.

    The conditions read the ``forecast`` table under ``alias`` (``FROM forecast AS f``) and use
    ``:name`` placeholders, filled by ``params`` (names used: ``status``, ``now``, ``soon``,
    ``tag``, ``by``, ``since``, ``until``, ``search``; a caller adding its own must pick others). They are
    ``1 = 1`` when nothing filters, so ``WHERE {conditions} AND ...`` always reads.

    - ``status``: one of :data:`LIST_STATUSES`; ``due`` is open and falling due within
      :data:`DUE_SOON` of ``now``, ``overdue`` open and past due (both need ``now``), ``all``
      any but ``withdrawn`` (forecasts entered by mistake: only that status shows them).
    - ``tag``: forecasts carrying this tag (tags are stored lower-case; the name is lowered).
    - ``by``: forecasts this person registered or estimated; with ``by_estimate``, the alias of
      an ``estimate`` row joined to the forecast, that estimate's forecaster instead (a report
      scores each person's own estimates).
    - ``search``: forecasts whose title, criteria or a tag holds this text, ignoring case
      (``%`` and ``_`` are plain characters; SQLite folds the case of ASCII letters only).
    - ``since`` / ``until``: the SQL expression ``when`` (default ``{alias}.resolved_at``) at
      or after / at or before these times.

    Datetime params are naive-UTC ``datetime`` objects: run the SQL through an
    :class:`~predictions.chain.Executor` (or convert them with :func:`predictions.chain.stored`
    on SQLite), which stores them as the tables hold them.

    For example, ``forecast_where(status="open", tag="China")`` gives
    ``"f.status = :status AND f.id IN (SELECT forecast_id FROM tag WHERE name = :tag)"`` with
    ``{"status": "open", "tag": "china"}``.
    """
    f = alias
    conds: list[str] = []
    params: dict[str, Any] = {}
    if status in ("open", "resolved", "annulled", "withdrawn"):
        conds.append(f"{f}.status = :status")
        params["status"] = status
    elif status == "all":
        conds.append(f"{f}.status <> 'withdrawn'")
    elif status in ("due", "overdue"):
        if now is None:
            raise ValueError(f"status {status!r} needs now")
        params["now"] = now
        if status == "overdue":
            conds.append(f"{f}.status = 'open' AND {f}.due <= :now")
        else:
            conds.append(f"{f}.status = 'open' AND {f}.due > :now AND {f}.due <= :soon")
            params["soon"] = now + DUE_SOON
    else:
        raise InputError("status", status, "one of " + ", ".join(LIST_STATUSES))
    if tag:
        conds.append(f"{f}.id IN (SELECT forecast_id FROM tag WHERE name = :tag)")
        params["tag"] = tag.lower()
    if by:
        conds.append(
            f"{by_estimate}.forecaster = :by"
            if by_estimate
            else f"({f}.author = :by OR {f}.id IN "
            "(SELECT forecast_id FROM estimate WHERE forecaster = :by))"
        )
        params["by"] = by
    if search:
        like = "LIKE :search ESCAPE '\\'"
        conds.append(
            f"(lower({f}.title) {like} OR lower({f}.criteria) {like} OR "
            f"{f}.id IN (SELECT forecast_id FROM tag WHERE name {like}))"
        )
        escaped = search.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        params["search"] = f"%{escaped}%"
    when = when or f"{f}.resolved_at"
    if since is not None:
        conds.append(f"{when} >= :since")
        params["since"] = since
    if until is not None:
        conds.append(f"{when} <= :until")
        params["until"] = until
    return " AND ".join(conds) or "1 = 1", params


def _latest_each(estimates: list[EstimateRow]) -> dict[str, EstimateRow]:
    """Each forecaster's most recent estimate (the later made; of two made at once, the later
    recorded), by name."""
    best: dict[str, EstimateRow] = {}
    for e in estimates:
        held = best.get(e.forecaster)
        if held is None or (e.made_at, e.id) >= (held.made_at, held.id):
            best[e.forecaster] = e
    return best


def latest_estimate(forecast: ForecastRow, forecaster: str) -> EstimateRow | None:
    """The most recent estimate by ``forecaster`` on a forecast, or None."""
    return _latest_each(forecast.estimates).get(forecaster)


@dataclass(frozen=True)
class Standing:
    """Whose probability is whose on one forecast, as ``viewer`` sees it: ``mine`` (the viewer's
    latest estimate, or None), ``others`` (the latest of each other person) and ``markets`` (the
    latest of each market), each by name."""

    viewer: str
    mine: EstimateRow | None
    others: tuple[EstimateRow, ...]
    markets: tuple[EstimateRow, ...]

    @property
    def median(self) -> float | None:
        """The median of the other people's latest probabilities (None if there are none, as on
        a non-binary question)."""
        ps = sorted(e.probability for e in self.others if e.probability is not None)
        if not ps:
            return None
        mid = len(ps) // 2
        return ps[mid] if len(ps) % 2 else (ps[mid - 1] + ps[mid]) / 2


def standing(forecast: ForecastRow, viewer: str) -> Standing:
    """The viewer's own latest estimate on ``forecast``, beside the others' and the markets'."""
    latest = _latest_each(forecast.estimates)
    mine = latest.pop(viewer, None)
    named = sorted(latest.values(), key=lambda e: e.forecaster)
    return Standing(
        viewer,
        mine,
        tuple(e for e in named if not is_market(e.forecaster)),
        tuple(e for e in named if is_market(e.forecaster)),
    )


def forecast_record(
    forecast: ForecastRow, *, viewer: str | None = None, full: bool = False
) -> dict[str, Any]:
    """The JSON form of a forecast, as ``--json`` prints it, seen by ``viewer`` (default: its
    author): ``probability`` is the viewer's own latest (None if they have not forecast it),
    ``others`` the other people's latest (``{"median": p, "latest": {name: p}}``) and ``market``
    the markets' (``{name: p}``).

    Every record says its ``kind``; a non-binary one adds its ``question`` (the spec) and
    ``resolution_value``, and its estimates carry ``cdf`` or ``probabilities`` (the probabilities
    above are None)."""
    view = standing(forecast, viewer or forecast.author)
    record: dict[str, Any] = {
        "id": forecast.id,
        "kind": forecast.kind,
        "title": forecast.title,
        "criteria": forecast.criteria,
        "due": iso(forecast.due),
        "due_zone": forecast.due_zone,
        "status": forecast.status,
        "outcome": forecast.outcome,
        "forecaster": view.viewer,
        "probability": view.mine.probability if view.mine else None,
        "others": {
            "median": view.median,
            "latest": {e.forecaster: e.probability for e in view.others},
        },
        "market": {e.forecaster: e.probability for e in view.markets},
        "tags": [t.name for t in forecast.tags],
        "author": forecast.author,
        "source": forecast.source,
        "created_at": iso(forecast.created_at),
        "resolved_at": iso(forecast.resolved_at),
        "resolved_by": forecast.resolved_by,
        "resolution_note": forecast.resolution_note,
        "resolution_evidence": forecast.resolution_evidence,
        "estimates": [
            estimate_fields(e, forecast.kind)
            for e in sorted(forecast.estimates, key=lambda e: (e.made_at, e.id))
        ],
    }
    if forecast.question is not None:
        record.update(question=forecast.question.spec(), resolution_value=forecast.resolution_value)
    if full:
        record["amendments"] = [amendment_fields(a) for a in forecast.amendments]
    return record


def _moment(text: str | None) -> datetime | None:
    """A time as :func:`~predictions.chain.iso` wrote it, back to naive UTC."""
    return None if text is None else datetime.fromisoformat(text.removesuffix("Z"))


def forecast_row(record: dict[str, Any]) -> ForecastRow:
    """The row a :func:`forecast_record` was made from (the inverse: the CLI rebuilds the rows the
    service's API answers with, and prints them as it prints its own database's).

    Estimates and amendments are numbered in the record's order (their ids are not in it); a
    ``checks`` list as ``show --json`` gives it becomes the row's checks; ``ref`` is not carried.
    """
    fid = int(record["id"])
    kind = record.get("kind", "binary")
    spec = record.get("question")
    question = None if spec is None else Question.from_spec(kind, spec)
    key = VALUES_KEY.get(kind)
    estimates = [
        EstimateRow(
            n, fid, e["by"], e.get("probability"), _moment(e["at"]), e.get("note"),  # type: ignore[arg-type]
            None if key is None else tuple(e[key]),
        )
        for n, e in enumerate(record.get("estimates", ()), 1)
    ]  # fmt: skip
    amendments = [
        AmendmentRow(n, fid, a["field"], a["old"], a["new"], _moment(a["at"]), a["by"], a["note"])  # type: ignore[arg-type]
        for n, a in enumerate(record.get("amendments", ()), 1)
    ]
    checks = [
        CheckRow(
            c["id"], c["kind"], c["mode"], dict(c.get("params") or {}), bool(c["running"]),
            _moment(c.get("last_checked_at")), _moment(c.get("next_check_at")),  # type: ignore[arg-type]
        )
        for c in record.get("checks", ())
    ]  # fmt: skip
    return ForecastRow(
        id=fid, title=record["title"], criteria=record["criteria"], due=_moment(record["due"]),  # type: ignore[arg-type]
        created_at=_moment(record["created_at"]), author=record["author"],  # type: ignore[arg-type]
        source=record.get("source"), ref=None, status=record["status"],
        outcome=record.get("outcome"), resolved_at=_moment(record.get("resolved_at")),
        resolved_by=record.get("resolved_by"), resolution_note=record.get("resolution_note"),
        resolution_evidence=record.get("resolution_evidence"), due_zone=record.get("due_zone"),
        kind=kind, question=question, resolution_value=record.get("resolution_value"),
        estimates=estimates, tags=[TagRow(name) for name in record.get("tags", ())],
        amendments=amendments, checks=checks,
    )  # fmt: skip


def shown_record(
    forecast: ForecastRow, viewer: str, closings: list[dict[str, Any]]
) -> dict[str, Any]:
    """The forecast as ``show --json`` (and ``GET /api/v1/forecasts/{id}``) gives it:
    :func:`forecast_record` (full, seen by ``viewer``) with its ``checks`` and ``history``, its
    ``closings`` (:func:`predictions.store.closings`)."""
    record = forecast_record(forecast, viewer=viewer, full=True)
    record["checks"] = [
        {
            "id": c.id,
            "kind": c.kind,
            "mode": c.mode,
            "params": dict(c.params or {}),
            "running": c.enabled,
            "last_checked_at": iso(c.last_checked_at),
            "next_check_at": iso(c.next_check_at) if c.enabled else None,
        }
        for c in forecast.checks
    ]
    record["history"] = [{k: v for k, v in h.items() if k != "forecast"} for h in closings]
    return record
