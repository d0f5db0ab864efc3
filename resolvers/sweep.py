"""The runner: claims due checks, runs them concurrently, keeps receipts, applies the rules.

Every policy of the resolvers lives here; a kind only looks at a source and returns a verdict.

**Claims.** A sweep claims due checks in small batches with a lease: ``claimed_by`` / ``claimed_until``
are set in one writing transaction (SQLite: ``BEGIN IMMEDIATE`` serialises claimers; PostgreSQL:
``SELECT ... FOR UPDATE SKIP LOCKED``), only on rows whose lease is free or expired. A result is
recorded only while its claim is still held, so no check is recorded twice; a worker that dies
leaves its claims to expire (``lease``, default 10 minutes) and another worker picks them up.

**Receipts.** Every check appends one ``evidence`` row, never overwritten: time, URL (the last
fetch's final URL), HTTP status, sha256 and size of the body, excerpt, value, verdict (``yes``,
``no``, ``none``, ``annul`` or ``error``), error text, kind and kind version. A 304 answer records
``unchanged`` and carries the previous verdict, value, excerpt and body hash; the verdict is final
when the kind gives it only as final (``Resolver.final_verdicts``).

**Errors** (timeouts, DNS, 4xx/5xx, invalid JSON or feed, body over the cap, redirect loops, a
kind that crashes) are data: recorded, counted, never changing a forecast. The check backs off
exponentially (``backoff_base`` doubling per consecutive failure up to ``backoff_cap``; permanent
errors wait at least ``permanent_wait``), and never sooner than a ``Retry-After`` asked.

**"By date X" rules**, for an open forecast:

- ``yes``: a proposal at once; in ``mode = auto`` a *final* YES resolves directly;
- ``no``: counts only from due + grace (``grace``, default 7 days) unless final; then a proposal,
  or a direct resolution in ``mode = auto`` when final;
- ``none``: nothing, except with ``otherwise = "no"``: a NO proposal from due + grace;
- ``annul``: a proposal to annul; in ``mode = auto`` a final one annuls directly.

Direct resolutions go through :func:`predictions.store.resolve` / ``annul`` with ``resolved_by =
"resolver:<kind>"`` and the evidence URL. A pending proposal with the same verdict is not repeated,
nor one a person disputed on the same body (same sha256). A market's ``probability`` is recorded as
an estimate by a forecaster named after the kind, when it changed.

**Re-checks.** Open forecasts are checked every ``recheck_open`` (and at the due date and at due +
grace); resolved and annulled ones every ``recheck_resolved``. A source that now disagrees with the
resolution creates a ``disagreement`` proposal, shown in ``tracker review``; nothing is flipped.
"""

from __future__ import annotations

import contextlib
import functools
import os
import queue
import re
import socket
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, func, or_, select, update
from sqlalchemy.engine import Connection, Dialect, Engine
from sqlalchemy.orm import Session

from predictions import ledger, receipts, store
from predictions.clock import now as clock_now
from predictions.db import is_postgres, read_session, write_session
from predictions.errors import InputError, StateError
from predictions.models import Check, Estimate, Evidence, Forecast, Proposal
from resolvers.base import ForecastInfo, Resolver, ResolverError, Verdict
from resolvers.http import FetchRecord, HttpClient, HttpSettings, Unchanged
from resolvers.registry import get_kind

__all__ = [
    "CheckOutcome",
    "SweepReport",
    "SweepSettings",
    "check_forecast",
    "count_due",
    "decide",
    "sweep",
]

Progress = Callable[[int, int], None]

# The tables, for Core statements: the hot paths of a sweep skip the ORM layer.
_CHECK = cast(Table, Check.__table__)
_FORECAST = cast(Table, Forecast.__table__)
_EVIDENCE = cast(Table, Evidence.__table__)
_PROPOSAL = cast(Table, Proposal.__table__)


@dataclass(frozen=True)
class SweepSettings:
    """The runner's knobs. The CLI fills them from the ``resolvers.*`` configuration keys."""

    concurrency: int = 16
    grace: timedelta = timedelta(days=7)
    lease: timedelta = timedelta(minutes=10)
    recheck_open: timedelta = timedelta(days=1)
    recheck_resolved: timedelta = timedelta(days=30)
    backoff_base: timedelta = timedelta(minutes=5)
    backoff_cap: timedelta = timedelta(days=1)
    permanent_wait: timedelta = timedelta(hours=6)
    http: HttpSettings = field(default_factory=HttpSettings)

    def __post_init__(self) -> None:
        if self.concurrency < 1:
            raise InputError("resolvers.concurrency", self.concurrency, "a whole number >= 1")

    def backoff(self, failures: int, temporary: bool, retry_after: float | None) -> timedelta:
        """How long to wait after the ``failures``-th consecutive failure."""
        steps = min(max(failures - 1, 0), 30)
        delay = min(self.backoff_cap, self.backoff_base * (2**steps))
        if not temporary:
            delay = max(delay, min(self.permanent_wait, self.backoff_cap))
        if retry_after is not None:
            delay = max(delay, timedelta(seconds=min(retry_after, 7 * 86400)))
        return delay


@dataclass(frozen=True)
class CheckOutcome:
    """What happened to one check: its verdict (or error), receipt and the action taken."""

    check_id: int
    forecast_id: int
    kind: str
    verdict: str
    action: str = ""
    value: str | None = None
    excerpt: str | None = None
    url: str | None = None
    http_status: int | None = None
    sha256: str | None = None
    unchanged: bool = False
    error: str | None = None
    temporary: bool | None = None
    evidence_id: int | None = None
    next_check_at: datetime | None = None

    def record(self) -> dict[str, Any]:
        """The JSON form (``tracker check --json``, ``tracker sweep --json``)."""
        return {
            "check": self.check_id,
            "forecast": self.forecast_id,
            "kind": self.kind,
            "verdict": self.verdict,
            "action": self.action or None,
            "value": self.value,
            "excerpt": self.excerpt,
            "url": self.url,
            "http_status": self.http_status,
            "sha256": self.sha256,
            "unchanged": self.unchanged,
            "error": self.error,
            "evidence": self.evidence_id,
            "next_check_at": ledger.iso(self.next_check_at),
        }


@dataclass
class SweepReport:
    """The result of a sweep: every outcome, with counts. ``errors`` lists failed checks."""

    outcomes: list[CheckOutcome] = field(default_factory=list)
    lost: int = 0
    wire_bytes: int = 0
    seconds: float = 0.0

    @property
    def checked(self) -> int:
        """Checks recorded."""
        return len(self.outcomes)

    @property
    def errors(self) -> list[CheckOutcome]:
        """The checks that failed."""
        return [o for o in self.outcomes if o.verdict == "error"]

    @property
    def actions(self) -> list[CheckOutcome]:
        """The checks that proposed, resolved, annulled or flagged something."""
        return [o for o in self.outcomes if o.action and not o.action.startswith("(")]

    def record(self) -> dict[str, Any]:
        """The JSON form of the report."""
        return {
            "checked": self.checked,
            "errors": len(self.errors),
            "actions": len(self.actions),
            "lost_leases": self.lost,
            "wire_bytes": self.wire_bytes,
            "seconds": round(self.seconds, 3),
            "outcomes": [o.record() for o in self.outcomes],
        }


# --- the policy (pure) ------------------------------------------------------------------------


@dataclass(frozen=True)
class Decision:
    """What the rules make of a verdict: ``action`` is ``resolve``, ``annul``, ``propose``,
    ``disagree`` or ``""`` (nothing); ``verdict`` is the one acted on (``none`` may become ``no``
    through ``otherwise``); ``why`` says why nothing happened, when it matters."""

    action: str
    verdict: str
    why: str = ""


def decide(
    *,
    verdict: str,
    final: bool,
    mode: str,
    otherwise: str | None,
    status: str,
    outcome: bool | None,
    due: datetime,
    now: datetime,
    grace: timedelta,
) -> Decision:
    """Apply the "by date X" rules (see the module docstring) to one verdict.

    >>> from datetime import datetime as d, timedelta as t
    >>> decide(verdict="no", final=False, mode="auto", otherwise=None, status="open",
    ...        outcome=None, due=d(2030, 1, 1), now=d(2030, 1, 3), grace=t(days=7)).why
    'NO counts from due + grace (2030-01-08)'
    """
    past_grace = now >= due + grace
    if status == "open":
        if verdict == "none" and otherwise == "no" and past_grace:
            return Decision("propose", "no", "nothing found by due + grace")
        if verdict == "yes":
            return Decision("resolve" if mode == "auto" and final else "propose", "yes")
        if verdict == "no":
            if not (final or past_grace):
                return Decision("", "no", f"NO counts from due + grace ({(due + grace).date()})")
            return Decision("resolve" if mode == "auto" and final else "propose", "no")
        if verdict == "annul":
            return Decision("annul" if mode == "auto" and final else "propose", "annul")
        return Decision("", verdict)
    # Resolved or annulled: flag a source that now disagrees; absence of evidence never does.
    if status == "resolved":
        if outcome and verdict == "no" and (final or past_grace):
            return Decision("disagree", "no")
        if outcome is False and verdict == "yes":
            return Decision("disagree", "yes")
        if verdict == "annul" and final:
            return Decision("disagree", "annul")
    elif status == "annulled" and (verdict == "yes" or (verdict == "no" and final)):
        return Decision("disagree", verdict)
    return Decision("", verdict)


def _next_check(forecast: _ForecastRow, now: datetime, s: SweepSettings) -> datetime:
    if forecast.status != "open":
        return now + s.recheck_resolved
    nxt = now + s.recheck_open
    for boundary in (forecast.due, forecast.due + s.grace):
        if now < boundary < nxt:
            return boundary
    return nxt


# --- running checks -------------------------------------------------------------------------


@dataclass(frozen=True)
class _Job:
    check_id: int
    kind: str
    params: dict[str, Any]
    mode: str
    etag: str | None
    last_modified: str | None
    forecast: ForecastInfo


@dataclass
class _Result:
    job: _Job
    checked_at: datetime
    verdict: Verdict | None = None
    unchanged: bool = False
    error: str | None = None
    temporary: bool = True
    retry_after: float | None = None
    records: list[FetchRecord] = field(default_factory=list)
    validators: tuple[str | None, str | None] = (None, None)


_instances: dict[type[Resolver], Resolver] = {}


def _run(job: _Job, client: HttpClient, conditional: bool = True) -> _Result:
    """Run one check in a worker thread. Never raises: a failure is a result."""
    now = clock_now()
    fetcher = (
        client.fetcher(etag=job.etag, last_modified=job.last_modified)
        if conditional
        else client.fetcher()
    )
    result = _Result(job, checked_at=now)
    try:
        cls = get_kind(job.kind)
        resolver = _instances.get(cls)
        if resolver is None:
            resolver = _instances.setdefault(cls, cls())
        verdict = resolver.check(job.forecast, job.params, fetcher, now)
        if not isinstance(verdict, Verdict):
            raise TypeError(f"check() returned {type(verdict).__name__}, not a Verdict")
        result.verdict = verdict
    except Unchanged:
        result.unchanged = True
    except ResolverError as exc:
        result.error = str(exc) or type(exc).__name__
        result.temporary = exc.temporary
        result.retry_after = exc.retry_after
    except InputError as exc:  # the kind is gone or broken since the spec was stored
        result.error = str(exc)
        result.temporary = False
    except Exception as exc:  # a kind's bug is this check's error, not the sweep's
        result.error = f"the {job.kind} resolver failed: {type(exc).__name__}: {exc}"
        result.temporary = True
    result.records = list(fetcher.records)
    result.validators = fetcher.validators
    return result


def _job_query() -> Any:
    """The columns of a check and its forecast that a run needs, as a Core select (no ORM
    layer: a sweep claims thousands)."""
    c, f = _CHECK.c, _FORECAST.c
    return select(
        c.id,
        c.kind,
        c.params,
        c.mode,
        c.etag,
        c.last_modified,
        f.id,
        f.title,
        f.criteria,
        f.due,
        f.created_at,
        f.status,
        f.outcome,
    ).join_from(_CHECK, _FORECAST, f.id == c.forecast_id)


def _job(row: Sequence[Any]) -> _Job:
    return _Job(
        check_id=row[0],
        kind=row[1],
        params=dict(row[2] or {}),
        mode=row[3],
        etag=row[4],
        last_modified=row[5],
        forecast=ForecastInfo(*row[6:13]),
    )


def _jobs(session: Session, ids: Sequence[int]) -> list[_Job]:
    query = _job_query().where(_CHECK.c.id.in_(ids)).order_by(_CHECK.c.next_check_at, _CHECK.c.id)
    return [_job(row) for row in session.connection().execute(query)]


def _free(now: datetime) -> Any:
    return or_(_CHECK.c.claimed_until.is_(None), _CHECK.c.claimed_until < now)


def _claim(
    engine: Engine,
    worker: str,
    n: int,
    lease: timedelta,
    *,
    ids: Sequence[int] | None = None,
) -> list[_Job]:
    """Claim up to ``n`` due checks (or exactly ``ids``, due or not) for ``worker``.

    One select of the free rows with what their runs need (on PostgreSQL locking the checks'
    rows, skipping those another worker holds), one update setting the lease, in one writing
    transaction.
    """
    now = clock_now()
    c = _CHECK.c
    with write_session(engine) as session:
        conn = session.connection()
        query = _job_query().where(c.enabled.is_(True), _free(now))
        if ids is None:
            query = query.where(c.next_check_at <= now).order_by(c.next_check_at, c.id)
        else:
            query = query.where(c.id.in_(ids)).order_by(c.id)
        query = query.limit(n)
        if is_postgres(engine):
            query = query.with_for_update(skip_locked=True, of=_CHECK)
        rows = conn.execute(query).all()
        if not rows:
            return []
        chosen = [row[0] for row in rows]
        claimed = conn.execute(
            update(_CHECK)
            .where(c.id.in_(chosen), _free(now))
            .values(claimed_by=worker, claimed_until=now + lease)
        )
        if claimed.rowcount != len(chosen):
            # The rows were chosen in this very transaction (SQLite: the one writer; PostgreSQL:
            # their locks held), so every one is claimed; were a database to disagree, only the
            # rows marked with this worker's name are taken.
            mine = set(conn.scalars(select(c.id).where(c.id.in_(chosen), c.claimed_by == worker)))
            rows = [row for row in rows if row[0] in mine]
        return [_job(row) for row in rows]


def count_due(engine: Engine) -> int:
    """How many enabled checks are due now and not claimed by a live worker."""
    now = clock_now()
    with read_session(engine) as session:
        return int(
            session.scalar(
                select(func.count())
                .select_from(Check)
                .where(Check.enabled.is_(True), Check.next_check_at <= now, _free(now))
            )
            or 0
        )


# --- recording results --------------------------------------------------------------------


@dataclass
class _Known:
    """What one recording transaction loads in bulk, so no check costs a query of its own:
    pending proposals by (forecast, kind, verdict), disputed ones by (check, verdict, body sha256),
    and for 304 answers the previous verdict of each check."""

    pending: dict[tuple[int, str, str], int | None]
    disputed: dict[tuple[int, str, str], int]
    previous: dict[int, tuple[str, str | None, str | None, str | None]]
    #: proposals superseded in this transaction: (id, at, by), for their ``decide`` receipts
    superseded: list[tuple[int, datetime, str]] = field(default_factory=list)


@dataclass
class _CheckRow:
    """The columns of a check the recorder needs (no ORM object: a sweep records thousands)."""

    id: int
    forecast_id: int
    kind: str
    params: dict[str, Any]
    mode: str
    etag: str | None
    last_modified: str | None
    failures: int


@dataclass
class _ForecastRow:
    """The columns of a forecast the rules need; updated in place when a check resolves it."""

    id: int
    status: str
    outcome: bool | None
    due: datetime


def _known(
    conn: Connection, check_ids: Sequence[int], forecast_ids: set[int], unchanged: list[int]
) -> _Known:
    p, e = _PROPOSAL.c, _EVIDENCE.c
    pending: dict[tuple[int, str, str], int | None] = {
        (fid, kind, verdict): pid
        for pid, fid, kind, verdict in conn.execute(
            select(p.id, p.forecast_id, p.kind, p.verdict).where(
                p.forecast_id.in_(forecast_ids), p.status == "pending"
            )
        )
    }
    disputed = {
        (int(cid), verdict, sha): pid
        for pid, cid, verdict, sha in conn.execute(
            select(p.id, p.check_id, p.verdict, e.sha256)
            .join_from(_PROPOSAL, _EVIDENCE, e.id == p.evidence_id)
            .where(p.check_id.in_(check_ids), p.status == "disputed")
        )
        if sha is not None and cid is not None
    }
    previous: dict[int, tuple[str, str | None, str | None, str | None]] = {}
    if unchanged:
        latest = (
            select(func.max(e.id))
            .where(e.check_id.in_(unchanged), e.verdict != "error")
            .group_by(e.check_id)
        )
        for cid, verdict, value, excerpt, sha in conn.execute(
            select(e.check_id, e.verdict, e.value, e.excerpt, e.sha256).where(e.id.in_(latest))
        ):
            if cid is not None:
                previous[int(cid)] = (verdict, value, excerpt, sha)
    return _Known(pending, disputed, previous)


def _propose(
    known: _Known,
    queued: list[dict[str, Any]],
    check: _CheckRow,
    forecast: _ForecastRow,
    evidence: dict[str, Any],
    kind: str,
    verdict: str,
    now: datetime,
) -> str:
    """Queue a pending proposal unless one like it is pending, or a person disputed the same
    verdict on this same body."""
    key = (forecast.id, kind, verdict)
    if key in known.pending:
        pid = known.pending[key]
        return f"(already proposed: proposal {pid})" if pid else "(already proposed)"
    sha = evidence["sha256"]
    if sha is not None and (check.id, verdict, sha) in known.disputed:
        return f"(disputed before: proposal {known.disputed[(check.id, verdict, sha)]})"
    queued.append(
        {
            "forecast_id": forecast.id,
            "check_id": check.id,
            "evidence_id": evidence["id"],
            "kind": kind,
            "verdict": verdict,
            "created_at": now,
            "status": "pending",
        }
    )
    known.pending[key] = None
    if kind == "disagreement":
        was = (
            ("YES" if forecast.outcome else "NO")
            if forecast.status == "resolved"
            else forecast.status
        )
        return f"disagreement: resolved {was}, source says {verdict.upper()}"
    return f"proposed {verdict.upper()}"


def _supersede(
    session: Session,
    known: _Known,
    queued: list[dict[str, Any]],
    forecast_id: int,
    now: datetime,
    by: str,
) -> None:
    """A forecast just resolved: its pending resolve proposals (stored or queued) are moot."""
    moot = (
        Proposal.forecast_id == forecast_id,
        Proposal.status == "pending",
        Proposal.kind == "resolve",
    )
    ids = list(session.scalars(select(Proposal.id).where(*moot).order_by(Proposal.id)))
    if ids:
        session.execute(
            update(Proposal)
            .where(Proposal.id.in_(ids))
            .values(status="superseded", decided_at=now, decided_by=by)
            .execution_options(synchronize_session=False)
        )
        known.superseded.extend((pid, now, by) for pid in ids)
    queued[:] = [
        p for p in queued if not (p["forecast_id"] == forecast_id and p["kind"] == "resolve")
    ]
    for key in [k for k in known.pending if k[0] == forecast_id and k[1] == "resolve"]:
        del known.pending[key]


def _record_estimate(
    session: Session, forecast: _ForecastRow, kind: str, p: float, url: str | None, now: datetime
) -> bool:
    if forecast.status != "open" or not 0.0 < p < 1.0:
        return False
    last = session.scalar(
        select(Estimate.probability)
        .where(Estimate.forecast_id == forecast.id, Estimate.forecaster == kind)
        .order_by(Estimate.made_at.desc(), Estimate.id.desc())
        .limit(1)
    )
    if last is not None and abs(last - p) < 1e-9:
        return False
    store.add_estimate(
        session,
        forecast.id,
        kind,
        p,
        note=f"market probability from {url}" if url else "market probability",
        made_at=now,
    )
    return True


_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def _apply(
    session: Session,
    known: _Known,
    queued: list[dict[str, Any]],
    check: _CheckRow,
    forecast: _ForecastRow,
    evidence: dict[str, Any],
    verdict: Verdict | None,
    s: SweepSettings,
    now: datetime,
) -> str:
    """Apply the rules to a recorded verdict; returns the action taken, for the report.

    Proposals are queued (inserted in bulk by the caller); resolutions, annulments and
    estimates go through the store at once, each in a savepoint, so one that fails is that
    check's problem only.
    """
    actions: list[str] = []
    if verdict is not None:
        final = verdict.final
    else:  # a 304: the source is unchanged, and so is its verdict, final as it was
        final = evidence["unchanged"] and evidence["verdict"] in _final_verdicts(check.kind)
    url = (verdict.url if verdict else None) or evidence["url"]
    p = verdict.probability if verdict is not None else None
    if p is not None:
        with session.begin_nested():
            if _record_estimate(session, forecast, check.kind, p, url, now):
                actions.append(f"estimate {p:.3f} by {check.kind}")
    decision = decide(
        verdict=evidence["verdict"],
        final=final,
        mode=check.mode,
        otherwise=(check.params or {}).get("otherwise"),
        status=forecast.status,
        outcome=forecast.outcome,
        due=forecast.due,
        now=now,
        grace=s.grace,
    )
    by = f"resolver:{check.kind}"
    summary = (evidence["value"] or evidence["excerpt"] or "")[:200]
    note = _CONTROL.sub(" ", f"{check.kind} check {check.id}: {summary}").strip()
    if decision.action in ("resolve", "annul"):
        with session.begin_nested():
            if decision.action == "resolve":
                store.resolve(
                    session,
                    forecast.id,
                    decision.verdict == "yes",
                    by=by,
                    note=note,
                    evidence=url,
                    at=now,
                )
                actions.append(f"resolved {decision.verdict.upper()}")
                forecast.status, forecast.outcome = "resolved", decision.verdict == "yes"
            else:
                store.annul(session, forecast.id, by=by, note=note, at=now)
                actions.append("annulled")
                forecast.status, forecast.outcome = "annulled", None
            _supersede(session, known, queued, forecast.id, now, by)
    elif decision.action in ("propose", "disagree"):
        kind = "resolve" if decision.action == "propose" else "disagreement"
        actions.append(
            _propose(known, queued, check, forecast, evidence, kind, decision.verdict, now)
        )
    elif decision.why:
        actions.append(f"({decision.why})")
    return "; ".join(actions)


def _kind_class(kind: str) -> type[Resolver] | None:
    """The class of ``kind``, or None if the kind is gone (or broken) since the check was stored."""
    try:
        return get_kind(kind)
    except InputError:
        return None


def _final_verdicts(kind: str) -> frozenset[str]:
    """The verdicts ``kind`` gives as final (none if the kind is gone since)."""
    cls = _kind_class(kind)
    return cls.final_verdicts if cls is not None else frozenset()


def _evidence_row(r: _Result, check: _CheckRow, known: _Known) -> dict[str, Any]:
    last: FetchRecord | None = r.records[-1] if r.records else None
    cls = _kind_class(check.kind)
    version = cls.version if cls is not None else "?"
    row: dict[str, Any] = {
        "check_id": check.id,
        "forecast_id": check.forecast_id,
        "checked_at": r.checked_at,
        "kind": check.kind,
        "resolver_version": str(version)[:32],
        "url": (last.url if last else None)
        or (r.verdict.url if r.verdict else None)
        or (check.params or {}).get("url"),
        "http_status": last.status if last else None,
        "sha256": last.sha256 if last else None,
        "bytes": last.bytes if last else None,
        "unchanged": r.unchanged,
        "excerpt": None,
        "value": None,
        "verdict": "error",
        "error": None,
    }
    if r.error is not None:
        row["error"] = r.error[:5000]
    elif r.unchanged:
        verdict, value, excerpt, sha = known.previous.get(check.id, ("none", None, None, None))
        row.update(verdict=verdict, value=value, excerpt=excerpt, sha256=sha)
    else:
        assert r.verdict is not None
        row.update(verdict=r.verdict.verdict, value=r.verdict.value, excerpt=r.verdict.excerpt)
    return row


_PROPOSAL_INSERT = (
    "forecast_id",
    "check_id",
    "evidence_id",
    "kind",
    "verdict",
    "created_at",
    "status",
)
_CHECK_UPDATE = (
    "failures",
    "next_check_at",
    "last_checked_at",
    "etag",
    "last_modified",
    "claimed_by",
    "claimed_until",
)


# --- bulk statements ------------------------------------------------------------------------


@functools.lru_cache(maxsize=64)
def _bulk_sql(
    dialect: Dialect, table: Table, columns: tuple[str, ...], key: str | None
) -> tuple[str, tuple[Callable[[Any], Any] | None, ...]]:
    """An INSERT of ``columns`` (or, with ``key``, an UPDATE of them where ``key`` matches) in
    the driver's own parameter style, and each parameter's bind processor: the columns' types,
    as SQLAlchemy itself would bind them."""
    quote = dialect.identifier_preparer.quote
    mark = "?" if dialect.paramstyle == "qmark" else "%s"
    names = [quote(name) for name in columns]
    if key is None:
        sql = (
            f"INSERT INTO {quote(table.name)} ({', '.join(names)}) "
            f"VALUES ({', '.join([mark] * len(names))})"
        )
        bound = columns
    else:
        sets = ", ".join(f"{name} = {mark}" for name in names)
        sql = f"UPDATE {quote(table.name)} SET {sets} WHERE {quote(key)} = {mark}"
        bound = (*columns, key)
    processors = tuple(
        table.c[name].type.dialect_impl(dialect).bind_processor(dialect) for name in bound
    )
    return sql, processors


def _bulk(
    conn: Connection,
    table: Table,
    columns: tuple[str, ...],
    rows: Sequence[dict[str, Any]],
    *,
    key: str | None = None,
) -> None:
    """One executemany of ``rows`` (dicts holding at least ``columns`` and ``key``) straight to
    the driver, each value bound by its column's type.

    A Core ``executemany`` does the same but builds and processes a parameter dict per row,
    which in a sweep costs more than the database's own work.
    """
    if not rows:
        return
    sql, processors = _bulk_sql(conn.dialect, table, columns, key)
    names = (*columns, key) if key is not None else columns
    plan = list(zip(names, processors, strict=True))
    conn.exec_driver_sql(
        sql,
        [tuple(row[n] if p is None else p(row[n]) for n, p in plan) for row in rows],
    )


def _record(
    engine: Engine, worker: str, results: Sequence[_Result], s: SweepSettings
) -> tuple[list[CheckOutcome], int]:
    """Write the evidence and apply the rules for a batch of results, in one transaction.

    Results whose claim was lost (the lease expired and another worker took the check) are
    dropped: that worker records its own check. Returns the outcomes and how many were dropped.
    Evidence, proposals and check updates are written in bulk; only resolutions, annulments and
    estimates (rare) go row by row through the store and its ledger.
    """
    outcomes: list[CheckOutcome] = []
    c, f, e = _CHECK.c, _FORECAST.c, _EVIDENCE.c
    with write_session(engine) as session:
        conn = session.connection()
        jobs = {r.job.check_id: r.job for r in results}
        # Each check with its forecast as they are now (a person may have resolved it since the
        # claim); a check no longer claimed by this worker is not returned.
        query = (
            select(c.id, c.forecast_id, c.etag, c.last_modified, c.failures)
            .add_columns(f.status, f.outcome, f.due)
            .join_from(_CHECK, _FORECAST, f.id == c.forecast_id)
            .where(c.id.in_(list(jobs)), c.claimed_by == worker)
        )
        if is_postgres(engine):
            query = query.with_for_update(of=_CHECK)
        checks: dict[int, _CheckRow] = {}
        forecasts: dict[int, _ForecastRow] = {}
        for cid, fid, etag, last_modified, failures, status, outcome, due in conn.execute(query):
            job = jobs[cid]
            checks[cid] = _CheckRow(
                cid, fid, job.kind, job.params, job.mode, etag, last_modified, failures or 0
            )
            forecasts[fid] = _ForecastRow(fid, status, outcome, due)
        mine = [r for r in results if r.job.check_id in checks]
        lost = len(results) - len(mine)
        if not mine:
            return outcomes, lost
        known = _known(
            conn,
            list(checks),
            set(forecasts),
            [r.job.check_id for r in mine if r.unchanged and r.error is None],
        )
        rows = [_evidence_row(r, checks[r.job.check_id], known) for r in mine]
        # Core statements on the tables, one executemany each (not ORM bulk operations, and not
        # INSERT ... RETURNING, which SQLite runs row by row): a batch is hundreds of rows. The
        # new ids are read back: rows of these checks above the previous maximum id are ours,
        # since this transaction holds the checks' claims (and on PostgreSQL their row locks).
        before = conn.scalar(select(func.max(e.id))) or 0
        _bulk(conn, _EVIDENCE, receipts.EVIDENCE_COLUMNS, rows)
        new_ids = {
            check_id: evidence_id
            for check_id, evidence_id in conn.execute(
                select(e.check_id, e.id).where(e.id > before, e.check_id.in_(list(checks)))
            )
        }
        evidence_ids = [new_ids[row["check_id"]] for row in rows]
        now = clock_now()
        queued: list[dict[str, Any]] = []
        updates: list[dict[str, Any]] = []
        for r, row, evidence_id in zip(mine, rows, evidence_ids, strict=True):
            row["id"] = evidence_id
            check = checks[r.job.check_id]
            forecast = forecasts[check.forecast_id]
            etag, last_modified = check.etag, check.last_modified
            if r.error is not None:
                failures = check.failures + 1
                delay = s.backoff(failures, r.temporary, r.retry_after)
                next_at = now + delay
                action = f"(backing off {_span(delay)})"
            else:
                failures = 0
                if not r.unchanged:
                    etag, last_modified = r.validators
                try:
                    action = _apply(session, known, queued, check, forecast, row, r.verdict, s, now)
                except Exception as exc:  # a failure to apply is this check's problem only
                    action = f"(could not apply: {type(exc).__name__}: {exc})"
                next_at = _next_check(forecast, now, s)
            updates.append(
                {
                    "id": check.id,
                    "failures": failures,
                    "next_check_at": next_at,
                    "last_checked_at": now,
                    "etag": etag,
                    "last_modified": last_modified,
                    "claimed_by": None,
                    "claimed_until": None,
                }
            )
            outcomes.append(
                CheckOutcome(
                    check_id=check.id,
                    forecast_id=forecast.id,
                    kind=check.kind,
                    verdict=row["verdict"],
                    action=action,
                    value=row["value"],
                    excerpt=row["excerpt"],
                    url=row["url"],
                    http_status=row["http_status"],
                    sha256=row["sha256"],
                    unchanged=r.unchanged,
                    error=row["error"],
                    temporary=r.temporary if r.error is not None else None,
                    evidence_id=evidence_id,
                    next_check_at=next_at,
                )
            )
        entries: list[receipts.Entry] = [
            ("evidence", receipts.evidence_json(row["id"], row), row["forecast_id"], now)
            for row in rows
        ]
        entries.extend(
            ("decide", receipts.decision_payload(pid, "superseded", at, by, None), None, at)
            for pid, at, by in known.superseded
        )
        if queued:
            p = _PROPOSAL.c
            before = conn.scalar(select(func.max(p.id))) or 0
            _bulk(conn, _PROPOSAL, _PROPOSAL_INSERT, queued)
            # One proposal per evidence row at most: the new ids are found by their evidence.
            made = dict(
                conn.execute(
                    select(p.evidence_id, p.id).where(
                        p.id > before, p.evidence_id.in_([q["evidence_id"] for q in queued])
                    )
                ).all()
            )
            entries.extend(
                (
                    "propose",
                    receipts.proposal_json(
                        made[q["evidence_id"]],
                        q["forecast_id"],
                        q["check_id"],
                        q["evidence_id"],
                        q["kind"],
                        q["verdict"],
                        q["created_at"],
                    ),
                    q["forecast_id"],
                    now,
                )
                for q in queued
            )
        _bulk(conn, _CHECK, _CHECK_UPDATE, updates, key="id")
        # The receipts chain's lock last, as every writer takes it (after the ledger's and any
        # table lock), so a sweep and an import never wait for each other in a cycle.
        receipts.append_many(session, entries)
    return outcomes, lost


def _span(delay: timedelta) -> str:
    seconds = int(delay.total_seconds())
    if seconds >= 3600:
        return f"{seconds / 3600:g} h"
    if seconds >= 60:
        return f"{seconds / 60:g} min"
    return f"{seconds} s"


# --- entry points ---------------------------------------------------------------------------


def _worker_name() -> str:
    return f"{socket.gethostname()[:100]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _drive(
    engine: Engine,
    worker: str,
    s: SweepSettings,
    client: HttpClient,
    claim: Callable[[int], list[_Job]],
    report: SweepReport,
    progress: Progress | None,
    total: int,
) -> None:
    """Keep every worker thread busy, claiming ahead as the queue runs low, and record results
    in batches (one transaction per batch) while the threads go on fetching."""
    batch = max(8, s.concurrency * 4)
    flush_every = max(32, s.concurrency * 8)
    todo: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
    done: queue.SimpleQueue[_Result] = queue.SimpleQueue()
    in_flight = 0
    finished: list[_Result] = []
    exhausted = False
    last_flush = time.monotonic()

    def work() -> None:
        # Plain threads on two queues: a sweep hands out thousands of jobs, and an executor's
        # futures cost more than the hand-over itself.
        while (job := todo.get()) is not None:
            try:
                result = _run(job, client)
            except Exception as exc:  # _run turns failures into results; this is a last resort
                result = _Result(job, checked_at=clock_now(), error=f"{type(exc).__name__}: {exc}")
            done.put(result)

    threads = [
        threading.Thread(target=work, name=f"check-{i}", daemon=True) for i in range(s.concurrency)
    ]
    for thread in threads:
        thread.start()
    try:
        while True:
            if not exhausted and in_flight < s.concurrency * 6:
                jobs = claim(batch)
                exhausted = not jobs
                for job in jobs:
                    todo.put(job)
                in_flight += len(jobs)
            if not in_flight and not finished:
                break
            if in_flight:
                try:
                    finished.append(done.get(timeout=0.2))
                    in_flight -= 1
                    while True:
                        finished.append(done.get_nowait())
                        in_flight -= 1
                except queue.Empty:
                    pass
            if finished and (
                len(finished) >= flush_every or not in_flight or time.monotonic() - last_flush > 1.0
            ):
                outcomes, lost = _record(engine, worker, finished, s)
                report.outcomes.extend(outcomes)
                report.lost += lost
                finished = []
                last_flush = time.monotonic()
                if progress is not None:
                    progress(report.checked + report.lost, max(total, report.checked))
    finally:
        # Jobs not started are dropped (their claims expire); running ones end within their
        # deadline.
        with contextlib.suppress(queue.Empty):
            while True:
                todo.get_nowait()
        for _ in threads:
            todo.put(None)
        for thread in threads:
            thread.join()


def sweep(
    engine: Engine,
    *,
    limit: int | None = None,
    settings: SweepSettings | None = None,
    progress: Progress | None = None,
    worker: str | None = None,
) -> SweepReport:
    """Run every due check (at most ``limit``), concurrently; see the module docstring.

    ``progress(done, total)`` is called after each batch is recorded. Any number of sweeps may run
    at once on one database; each check is recorded by exactly one of them.
    """
    s = settings or SweepSettings()
    if limit is not None and limit < 0:
        raise InputError("limit", limit, "a whole number >= 0")
    worker = worker or _worker_name()
    report = SweepReport()
    total = count_due(engine)
    if limit is not None:
        total = min(total, limit)
    claimed = 0
    taken: set[int] = set()

    def claim(n: int) -> list[_Job]:
        nonlocal claimed
        if limit is not None:
            n = min(n, limit - claimed)
            if n <= 0:
                return []
        while True:
            jobs = _claim(engine, worker, n, s.lease)
            # A check this sweep claimed before, whose lease ran out while it waited in the
            # queue, comes back here: it is still in flight, so it must not run twice.
            fresh = [job for job in jobs if job.check_id not in taken]
            if fresh or not jobs:
                break
        taken.update(job.check_id for job in fresh)
        claimed += len(fresh)
        return fresh

    started = time.monotonic()
    with HttpClient(s.http) as client:
        _drive(engine, worker, s, client, claim, report, progress, total)
        report.wire_bytes = client.wire_bytes
    report.seconds = time.monotonic() - started
    return report


def check_forecast(
    engine: Engine,
    forecast_id: int | str,
    *,
    dry_run: bool = False,
    settings: SweepSettings | None = None,
) -> SweepReport:
    """Run one forecast's checks now, due or not (``tracker check``).

    With ``dry_run`` nothing is written and requests are unconditional; each outcome's ``action``
    says what a real check would do (before de-duplication against pending proposals).
    """
    s = settings or SweepSettings()
    with read_session(engine) as session:
        forecast = store.get_forecast(session, forecast_id)
        ids = [c.id for c in forecast.checks if c.enabled]
        jobs = _jobs(session, ids) if dry_run else []
    report = SweepReport()
    if not ids:
        return report
    started = time.monotonic()
    with HttpClient(s.http) as client:
        if dry_run:
            with ThreadPoolExecutor(max_workers=min(s.concurrency, len(jobs))) as pool:
                results = list(pool.map(lambda j: _run(j, client, conditional=False), jobs))
            report.outcomes = [_dry_outcome(r, s) for r in results]
        else:
            worker = _worker_name()
            jobs = _claim(engine, worker, len(ids), s.lease, ids=ids)
            if len(jobs) < len(ids):
                busy = sorted(set(ids) - {j.check_id for j in jobs})
                raise StateError(
                    f"check(s) {', '.join(map(str, busy))} of forecast {forecast_id} are being "
                    "run by another worker; try again when its lease ends"
                )
            queue = list(jobs)

            def claim(n: int) -> list[_Job]:
                taken, queue[:] = queue[:n], queue[n:]
                return taken

            _drive(engine, worker, s, client, claim, report, None, len(jobs))
        report.wire_bytes = client.wire_bytes
    report.seconds = time.monotonic() - started
    return report


def _dry_outcome(r: _Result, s: SweepSettings) -> CheckOutcome:
    job = r.job
    last = r.records[-1] if r.records else None
    verdict = r.verdict
    action = ""
    if r.error is None and verdict is not None:
        decision = decide(
            verdict=verdict.verdict,
            final=verdict.final,
            mode=job.mode,
            otherwise=job.params.get("otherwise"),
            status=job.forecast.status,
            outcome=job.forecast.outcome,
            due=job.forecast.due,
            now=r.checked_at,
            grace=s.grace,
        )
        action = {
            "resolve": f"would resolve {decision.verdict.upper()}",
            "annul": "would annul",
            "propose": f"would propose {decision.verdict.upper()}",
            "disagree": f"would flag a disagreement ({decision.verdict.upper()})",
        }.get(decision.action, f"({decision.why})" if decision.why else "")
    return CheckOutcome(
        check_id=job.check_id,
        forecast_id=job.forecast.id,
        kind=job.kind,
        verdict="error" if r.error is not None else (verdict.verdict if verdict else "none"),
        action=action,
        value=verdict.value if verdict else None,
        excerpt=verdict.excerpt if verdict else None,
        url=(last.url if last else None) or (verdict.url if verdict else None),
        http_status=last.status if last else None,
        sha256=last.sha256 if last else None,
        unchanged=r.unchanged,
        error=r.error,
        temporary=r.temporary if r.error is not None else None,
    )
