"""The runner: claims due checks, runs them concurrently, keeps receipts, applies the rules.

Every policy of the resolvers lives here and in :mod:`resolvers.rules`; a kind only looks at a
source and returns a verdict.

**Claims.** A sweep claims due checks in small batches with a lease (:mod:`predictions.leases`,
shared with the outbox) and records a batch of results in one transaction, only for the checks it
still holds, so no check is recorded twice; a worker that dies leaves its claims to expire
(``lease``, default 10 minutes) and another worker picks them up.

**Receipts.** Every check appends one ``evidence`` row, never overwritten: time, URL (the last
fetch's final URL), HTTP status, sha256 and size of the body, excerpt, value, verdict (``yes``,
``no``, ``none``, ``annul`` or ``error``), error text, kind and kind version. A 304 answer records
``unchanged`` and carries the previous verdict, value, excerpt and body hash; the verdict is final
when the kind gives it only as final (``Resolver.final_verdicts``).

**Errors** (timeouts, DNS, 4xx/5xx, invalid JSON or feed, body over the cap, redirect loops, a
kind that crashes) are data: recorded, counted, never changing a forecast. The check backs off
exponentially (``backoff_base`` doubling per consecutive failure up to ``backoff_cap``; permanent
errors wait at least ``permanent_wait``), and never sooner than a ``Retry-After`` asked.

**Re-checks.** Open forecasts are checked every ``recheck_open`` (and at the due date and at due +
grace); resolved and annulled ones every ``recheck_resolved``. What a verdict leads to (the "by
date X" rules) is :mod:`resolvers.rules`.
"""

from __future__ import annotations

import contextlib
import queue
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, func, insert, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from predictions import chain, leases, receipts, store
from predictions.chain import loaded_question
from predictions.clock import now as clock_now
from predictions.db import read_session, write_session
from predictions.errors import InputError, StateError
from predictions.models import Check, Evidence, Forecast, Proposal
from predictions.wording import duration
from resolvers.base import ForecastInfo, Resolver, ResolverError, Verdict
from resolvers.http import FetchRecord, HttpClient, HttpSettings, Unchanged
from resolvers.registry import get_kind
from resolvers.rules import Batch, apply, decide, load, missing_outcome, outcome_of, said

__all__ = [
    "CheckOutcome",
    "SweepReport",
    "SweepSettings",
    "check_forecast",
    "count_due",
    "sweep",
]

Progress = Callable[[int, int], None]

_CHECK = cast(Table, Check.__table__)
_FORECAST = cast(Table, Forecast.__table__)
#: What a sweep passes by: the checks of a forecast withdrawn as entered by mistake (it cannot
#: change such a forecast, so fetching its sources would only fill the evidence table).
_SWEPT = _FORECAST.c.status != "withdrawn"
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
        """How long to wait after the ``failures``-th consecutive failure
        (:func:`predictions.leases.backoff`; a ``Retry-After`` counts up to a week).

        >>> SweepSettings().backoff(3, temporary=True, retry_after=None)
        datetime.timedelta(seconds=1200)
        """
        at_least = timedelta(0) if temporary else min(self.permanent_wait, self.backoff_cap)
        if retry_after is not None:
            at_least = max(at_least, timedelta(seconds=min(retry_after, 7 * 86400)))
        return leases.backoff(
            failures, base=self.backoff_base, cap=self.backoff_cap, at_least=at_least
        )


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
            "temporary": self.temporary,
            "evidence": self.evidence_id,
            "next_check_at": chain.iso(self.next_check_at),
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


def _next_check(forecast: Forecast, now: datetime, s: SweepSettings) -> datetime:
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
    result = _Result(job, checked_at=clock_now())
    try:
        validators = {"etag": job.etag, "last_modified": job.last_modified} if conditional else {}
        fetcher = client.fetcher(**validators)
        try:
            cls = get_kind(job.kind)
            cls.require_question_kind(job.forecast.kind)
            resolver = _instances.get(cls) or _instances.setdefault(cls, cls())
            verdict = resolver.check(job.forecast, job.params, fetcher, result.checked_at)
            if not isinstance(verdict, Verdict):
                raise TypeError(f"check() returned {type(verdict).__name__}, not a Verdict")
            result.verdict = verdict
        finally:
            result.records = list(fetcher.records)
            result.validators = fetcher.validators
    except Unchanged:
        result.unchanged = True
    except ResolverError as exc:
        result.error = str(exc) or type(exc).__name__
        result.temporary = exc.temporary
        result.retry_after = exc.retry_after
    except InputError as exc:  # the kind is gone or broken, or does not read this question type
        result.error = str(exc)
        result.temporary = False
    except Exception as exc:  # a kind's bug is this check's error, not the sweep's
        result.error = f"the {job.kind} resolver failed: {type(exc).__name__}: {exc}"
    return result


def _job_query() -> Any:
    """A check with what its run needs of its forecast (the check's id first, for the lease)."""
    c, f = _CHECK.c, _FORECAST.c
    return select(
        c.id, c.kind, c.params, c.mode, c.etag, c.last_modified,
        f.id, f.title, f.criteria, f.due, f.created_at, f.status, f.outcome, f.kind, f.question,
    ).join_from(_CHECK, _FORECAST, f.id == c.forecast_id)  # fmt: skip


def _job(row: Sequence[Any]) -> _Job:
    fid, title, criteria, due, created_at, status, outcome, kind, spec = row[6:15]
    question = loaded_question(kind, spec)
    forecast = ForecastInfo(fid, title, criteria, due, created_at, status, outcome, kind, question)
    return _Job(row[0], row[1], dict(row[2] or {}), row[3], row[4], row[5], forecast)


def _claim(
    engine: Engine, worker: str, n: int, lease: timedelta, *, ids: Sequence[int] | None = None
) -> list[_Job]:
    """Lease up to ``n`` due checks (or exactly ``ids``, due or not) for ``worker``, soonest due
    first (:func:`predictions.leases.claim`)."""
    now, c = clock_now(), _CHECK.c
    query = _job_query().where(c.enabled.is_(True))
    if ids is None:
        query = query.where(c.next_check_at <= now, _SWEPT).order_by(c.next_check_at, c.id)
    else:
        query = query.where(c.id.in_(ids)).order_by(c.id)
    rows = leases.claim(engine, _CHECK, query, worker=worker, lease=lease, limit=n, now=now)
    return [_job(row) for row in rows]


def count_due(engine: Engine) -> int:
    """How many enabled checks are due now and not claimed by a live worker."""
    now, c = clock_now(), _CHECK.c
    due = (c.enabled.is_(True), c.next_check_at <= now, leases.free(_CHECK, now), _SWEPT)
    counted = (
        select(func.count()).select_from(_CHECK).join(_FORECAST, _FORECAST.c.id == c.forecast_id)
    )
    with read_session(engine) as session:
        return int(session.scalar(counted.where(*due)) or 0)


# --- recording results --------------------------------------------------------------------


def _kind_class(kind: str) -> type[Resolver] | None:
    """The class of ``kind``, or None if the kind is gone (or broken) since the check was stored."""
    try:
        return get_kind(kind)
    except InputError:
        return None


def _evidence_row(r: _Result, previous: dict[Any, tuple[Any, ...]]) -> dict[str, Any]:
    """The evidence row of a result: every column of ``receipts.EVIDENCE_COLUMNS``; a 304 takes
    the verdict, value, excerpt and body hash of the check's ``previous`` row."""
    job, last = r.job, r.records[-1] if r.records else None
    cls = _kind_class(job.kind)
    row: dict[str, Any] = {
        "check_id": job.check_id,
        "forecast_id": job.forecast.id,
        "checked_at": r.checked_at,
        "kind": job.kind,
        "resolver_version": str(cls.version if cls is not None else "?")[:32],
        "url": (last.url if last else None)
        or (r.verdict.url if r.verdict else None)
        or job.params.get("url"),
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
        verdict, value, excerpt, sha = previous.get(job.check_id, ("none", None, None, None))
        row.update(verdict=verdict, value=value, excerpt=excerpt, sha256=sha)
    else:
        assert r.verdict is not None
        row.update(verdict=r.verdict.verdict, value=r.verdict.value, excerpt=r.verdict.excerpt)
    return row


def _outcome(
    r: _Result, row: dict[str, Any], action: str, next_at: datetime | None = None
) -> CheckOutcome:
    return CheckOutcome(
        check_id=row["check_id"],
        forecast_id=row["forecast_id"],
        kind=row["kind"],
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
        evidence_id=row.get("id"),
        next_check_at=next_at,
    )


def _settle(
    session: Session,
    batch: Batch,
    r: _Result,
    check: Check,
    forecast: Forecast,
    evidence: dict[str, Any],
    s: SweepSettings,
    now: datetime,
) -> CheckOutcome:
    """Apply the rules to one recorded result and schedule the check's next run."""
    if r.error is not None:
        check.failures = (check.failures or 0) + 1
        delay = s.backoff(check.failures, r.temporary, r.retry_after)
        check.next_check_at = now + delay
        action = f"(backing off {duration(delay)})"
    else:
        check.failures = 0
        if not r.unchanged:
            check.etag, check.last_modified = r.validators
        if r.verdict is not None:
            final = r.verdict.final
        else:  # a 304: the source is unchanged, and so is its verdict, final as it was
            cls = _kind_class(check.kind)
            final = cls is not None and evidence["verdict"] in cls.final_verdicts
        try:
            action = apply(
                session, batch, check, forecast, evidence, r.verdict, final, s.grace, now
            )
        except Exception as exc:  # a failure to apply is this check's problem only
            action = f"(could not apply: {type(exc).__name__}: {exc})"
        check.next_check_at = _next_check(forecast, now, s)
    check.last_checked_at = now
    return _outcome(r, evidence, action, check.next_check_at)


def _insert(session: Session, table: Table, rows: list[dict[str, Any]], key: str) -> dict[Any, int]:
    """Insert ``rows`` (batched: RETURNING without an order, which SQLite would insert row by
    row); returns the new ids by ``key``, a column unique among the rows."""
    return dict(session.execute(insert(table).returning(table.c[key], table.c.id), rows).all())


def _record(
    engine: Engine, worker: str, results: Sequence[_Result], s: SweepSettings
) -> tuple[list[CheckOutcome], int]:
    """Write the evidence and apply the rules for a batch of results, in one transaction.

    Results whose claim was lost (the lease expired and another worker took the check) are
    dropped: that worker records its own check. Returns the outcomes and how many were dropped.
    """
    with write_session(engine) as session:
        held = leases.held(session, _CHECK, [r.job.check_id for r in results], worker)
        mine = [r for r in results if r.job.check_id in held]
        if not mine:
            return [], len(results)
        checks = {c.id: c for c in session.scalars(select(Check).where(Check.id.in_(held)))}
        forecast_ids = {c.forecast_id for c in checks.values()}
        forecasts = {
            f.id: f for f in session.scalars(select(Forecast).where(Forecast.id.in_(forecast_ids)))
        }
        unchanged = [r.job.check_id for r in mine if r.unchanged and r.error is None]
        batch = load(session, list(held), forecast_ids, unchanged)
        rows = [_evidence_row(r, batch.previous) for r in mine]
        ids = _insert(session, _EVIDENCE, rows, "check_id")
        now = clock_now()
        outcomes: list[CheckOutcome] = []
        entries: list[receipts.Entry] = []
        for r, row in zip(mine, rows, strict=True):
            row["id"] = evidence_id = ids[row["check_id"]]
            entries.append(
                ("evidence", receipts.evidence_payload(evidence_id, row), row["forecast_id"], now)
            )
            check = checks[r.job.check_id]
            forecast = forecasts[check.forecast_id]
            outcomes.append(_settle(session, batch, r, check, forecast, row, s, now))
        entries += batch.superseded
        if batch.proposals:  # one per evidence row at most: their ids are found by it
            made = _insert(session, _PROPOSAL, batch.proposals, "evidence_id")
            entries += [
                (
                    "propose",
                    receipts.proposal_payload(
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
                for q in batch.proposals
            ]
        leases.release(session, _CHECK, list(held), worker)
        # The receipts chain's lock last, as every writer takes it (after the ledger's and any
        # table lock), so a sweep and an import never wait for each other in a cycle.
        receipts.append_many(session, entries)
    return outcomes, len(results) - len(mine)


# --- entry points ---------------------------------------------------------------------------


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
    batch, flush_every = max(8, s.concurrency * 4), max(32, s.concurrency * 8)
    done: queue.SimpleQueue[_Result] = queue.SimpleQueue()
    in_flight, finished, exhausted, last_flush = 0, list[_Result](), False, time.monotonic()
    with ThreadPoolExecutor(s.concurrency, thread_name_prefix="check") as pool:
        try:
            while True:
                if not exhausted and in_flight < s.concurrency * 6:
                    jobs = claim(batch)
                    exhausted = not jobs
                    for job in jobs:
                        pool.submit(lambda j: done.put(_run(j, client)), job)
                    in_flight += len(jobs)
                if not in_flight and not finished:
                    break
                with contextlib.suppress(queue.Empty):
                    if in_flight:
                        finished.append(done.get(timeout=0.2))
                        in_flight -= 1
                        while in_flight:
                            finished.append(done.get_nowait())
                            in_flight -= 1
                if finished and (
                    len(finished) >= flush_every
                    or not in_flight
                    or time.monotonic() - last_flush > 1.0
                ):
                    outcomes, lost = _record(engine, worker, finished, s)
                    report.outcomes.extend(outcomes)
                    report.lost += lost
                    finished, last_flush = [], time.monotonic()
                    if progress is not None:
                        progress(report.checked + report.lost, max(total, report.checked))
        finally:
            # Jobs not started are dropped (their claims expire); running ones end within their
            # deadline.
            pool.shutdown(cancel_futures=True)


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
    worker = worker or leases.worker_name()
    report = SweepReport()
    total = count_due(engine) if limit is None else min(count_due(engine), limit)
    taken: set[int] = set()

    def claim(n: int) -> list[_Job]:
        if limit is not None:
            n = min(n, limit - len(taken))
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
        query = _job_query().where(_CHECK.c.id.in_(ids)).order_by(_CHECK.c.id)
        jobs = [_job(row) for row in session.execute(query)] if dry_run else []
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
            worker = leases.worker_name()
            jobs = _claim(engine, worker, len(ids), s.lease, ids=ids)
            if len(jobs) < len(ids):
                busy = sorted(set(ids) - {j.check_id for j in jobs})
                raise StateError(
                    f"{'check' if len(busy) == 1 else 'checks'} {', '.join(map(str, busy))} of forecast "
                    f"{forecast_id} {'is' if len(busy) == 1 else 'are'} being "
                    "run by another worker; try again when its lease ends"
                )

            def claim(n: int) -> list[_Job]:
                taken, jobs[:] = jobs[:n], jobs[n:]
                return taken

            _drive(engine, worker, s, client, claim, report, None, len(ids))
        report.wire_bytes = client.wire_bytes
    report.seconds = time.monotonic() - started
    return report


def _dry_outcome(r: _Result, s: SweepSettings) -> CheckOutcome:
    job, verdict = r.job, r.verdict
    action = ""
    if r.error is None and verdict is not None:
        f = job.forecast
        value, unread = outcome_of(f.question, verdict.verdict, verdict.value)
        decision = decide(
            verdict=verdict.verdict,
            final=verdict.final,
            mode=job.mode,
            otherwise=job.params.get("otherwise"),
            status=f.status,
            outcome=f.outcome,
            due=f.due,
            now=r.checked_at,
            grace=s.grace,
            value=value,
        )
        shown = said(f.question, decision.verdict, value)
        action = {
            "resolve": f"would resolve {shown}",
            "annul": "would annul",
            "propose": f"would propose {shown}",
            "disagree": f"would flag a disagreement ({shown})",
        }.get(decision.action, f"({decision.why})" if decision.why else "")
        missing = missing_outcome(f.question, value, decision, unread)
        if missing:
            action = f"({missing})"
    return _outcome(r, _evidence_row(r, {}), action)
