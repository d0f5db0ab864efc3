"""The daily report: what falls due, what is overdue, what resolved, what awaits review.

One message per forecaster per local day, queued once the configured local time has passed
(``notify.time`` in ``timezone``), with the dedupe key ``daily:<forecaster>:<YYYY-MM-DD>``. A
forecaster is everyone who registered or estimated a forecast. A report is queued only when it has
something to say:

- **due today / this week**: open forecasts whose due instant falls on today's local date, or on
  one of the seven days after it (a date-only due is the end of that day in the user's zone);
- **overdue**: open forecasts past due, at most once per ``notify.overdue_interval_days``: the
  days since a forecast fell due are cut into windows of that length, and a forecast is listed in
  the first report of each window (no report of this forecaster earlier in the window);
- **resolved** since the forecaster's previous report (or the last week, for a first report), with
  who or which resolver resolved it and the evidence, plus a calibration snapshot;
- **proposals** from resolvers awaiting review (a new one triggers a report; all are listed).

Reading the database (:func:`load_facts`, :func:`last_reports`) is kept apart from deciding
(:func:`daily_context`, pure), so the decision can be tested with plain values.

Worked example: ``notify.time = 08:00``, ``timezone = Europe/Berlin``. At 06:59 UTC on 2026-03-28
(07:59 CET) nothing is queued; at 07:00 UTC (08:00 CET) the report for 2026-03-28 is; after the
switch to summer time it goes out at 06:00 UTC (08:00 CEST).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from predictions.clock import now as clock_now
from predictions.db import write_session
from predictions.models import Check, Estimate, Evidence, Forecast, Outbox, Proposal
from predictions.wording import duration
from reports import outbox
from reports.mail import Rendered, make_message
from reports.scored import executor, read_scored

__all__ = [
    "DUE_WINDOW_DAYS",
    "EstimateFacts",
    "EvidenceFacts",
    "ForecastFacts",
    "LastReport",
    "NotifyResult",
    "NotifySettings",
    "PlannedReport",
    "ProposalFacts",
    "brier",
    "daily_context",
    "last_reports",
    "load_facts",
    "plan_reports",
    "queue_reports",
    "report_day",
    "run_notify",
]

KIND = "daily"
#: "This week": forecasts due within this many days after today.
DUE_WINDOW_DAYS = 7
#: A first report lists what resolved in this many days before it.
FIRST_REPORT_LOOKBACK = timedelta(days=7)
CALIBRATION_WINDOW = timedelta(days=90)
_UTC = ZoneInfo("UTC")


@dataclass(frozen=True)
class NotifySettings:
    """Who gets reports, from whom, and when (local time ``send_at`` in ``tz``)."""

    recipients: tuple[str, ...]
    sender: str
    tz: ZoneInfo
    send_at: time = time(8, 0)
    overdue_interval_days: int = 7
    #: how long a notifier's claim on a message lasts (None: long enough for a whole batch)
    lease: timedelta | None = None


@dataclass(frozen=True)
class EstimateFacts:
    """One estimate: who, what probability, when."""

    forecaster: str
    probability: float
    made_at: datetime


@dataclass(frozen=True)
class EvidenceFacts:
    """The receipt of one resolver check."""

    checked_at: datetime
    kind: str
    url: str | None
    http_status: int | None
    verdict: str
    value: str | None
    excerpt: str | None
    error: str | None


@dataclass(frozen=True)
class ProposalFacts:
    """A resolution a resolver proposes, waiting for a person."""

    id: int
    kind: str
    verdict: str
    created_at: datetime
    note: str | None
    evidence: EvidenceFacts | None


@dataclass(frozen=True)
class ForecastFacts:
    """What the report needs to know about one forecast."""

    id: int
    title: str
    criteria: str
    due: datetime
    status: str
    outcome: bool | None
    author: str
    resolved_at: datetime | None
    resolved_by: str | None
    resolution_note: str | None
    resolution_evidence: str | None
    estimates: tuple[EstimateFacts, ...] = ()
    evidence: EvidenceFacts | None = None
    proposals: tuple[ProposalFacts, ...] = ()
    check_kinds: frozenset[str] = frozenset()
    #: each forecaster's scored estimate, by the one rule of :mod:`reports.scored`
    scored: tuple[EstimateFacts, ...] = ()

    @property
    def forecasters(self) -> set[str]:
        """The author and everyone who estimated it, except the resolvers checking it (a market
        resolver records the market's probability as an estimate under its kind's name)."""
        people = {e.forecaster for e in self.estimates} - self.check_kinds
        return {self.author, *people}

    def latest(self, forecaster: str) -> EstimateFacts | None:
        """The forecaster's latest estimate (of two made at once, the later-recorded one)."""
        best = None
        for e in self.estimates:  # in the order they were recorded
            if e.forecaster == forecaster and (best is None or e.made_at >= best.made_at):
                best = e
        return best


@dataclass(frozen=True)
class LastReport:
    """A forecaster's most recent daily report: its local day and when it was queued."""

    day: date
    at: datetime


@dataclass(frozen=True)
class PlannedReport:
    """A report decided on: its dedupe key, context and rendered message; ``id`` once queued."""

    forecaster: str
    day: date
    dedupe_key: str
    context: dict[str, Any]
    message: Rendered
    id: int | None = None


@dataclass(frozen=True)
class NotifyResult:
    """What a notify run did: the reports queued now, and the delivery of everything ready."""

    queued: list[PlannedReport]
    delivery: outbox.DeliveryReport


def _evidence(row: Evidence | None) -> EvidenceFacts | None:
    if row is None:
        return None
    return EvidenceFacts(
        checked_at=row.checked_at,
        kind=row.kind,
        url=row.url,
        http_status=row.http_status,
        verdict=row.verdict,
        value=row.value,
        excerpt=row.excerpt,
        error=row.error,
    )


def load_facts(session: Session) -> list[ForecastFacts]:
    """Every forecast with its estimates, check kinds, latest evidence and pending proposals.

    Plain column queries, not ORM objects: a daily run reads every forecast.
    """
    estimates: dict[int, list[EstimateFacts]] = {}
    for fid, forecaster, probability, made_at in session.execute(
        select(
            Estimate.forecast_id, Estimate.forecaster, Estimate.probability, Estimate.made_at
        ).order_by(Estimate.id)
    ):
        estimates.setdefault(fid, []).append(EstimateFacts(forecaster, probability, made_at))
    found = read_scored(executor(session))
    scored: dict[int, list[EstimateFacts]] = {}
    for fid, who, probability, made_at in zip(
        found.forecast_id.tolist(),
        found.who.tolist(),
        found.probability.tolist(),
        found.made_at.tolist(),
        strict=True,
    ):
        scored.setdefault(fid, []).append(EstimateFacts(found.names[who], probability, made_at))
    kinds: dict[int, set[str]] = {}
    for fid, kind in session.execute(select(Check.forecast_id, Check.kind).distinct()):
        kinds.setdefault(fid, set()).add(kind)
    latest_ids = select(func.max(Evidence.id)).group_by(Evidence.forecast_id)
    evidence = {
        e.forecast_id: e
        for e in session.scalars(select(Evidence).where(Evidence.id.in_(latest_ids)))
    }
    pending = session.scalars(
        select(Proposal).where(Proposal.status == "pending").order_by(Proposal.id)
    ).all()
    proposal_evidence_ids = {p.evidence_id for p in pending if p.evidence_id is not None}
    proposal_evidence = {
        e.id: e
        for e in (
            session.scalars(select(Evidence).where(Evidence.id.in_(proposal_evidence_ids)))
            if proposal_evidence_ids
            else []
        )
    }
    proposals: dict[int, list[ProposalFacts]] = {}
    for p in pending:
        proposals.setdefault(p.forecast_id, []).append(
            ProposalFacts(
                id=p.id,
                kind=p.kind,
                verdict=p.verdict,
                created_at=p.created_at,
                note=p.note,
                evidence=_evidence(proposal_evidence.get(p.evidence_id or -1)),
            )
        )
    columns = (
        Forecast.id,
        Forecast.title,
        Forecast.criteria,
        Forecast.due,
        Forecast.status,
        Forecast.outcome,
        Forecast.author,
        Forecast.resolved_at,
        Forecast.resolved_by,
        Forecast.resolution_note,
        Forecast.resolution_evidence,
    )
    return [
        ForecastFacts(
            *row,
            estimates=tuple(estimates.get(row[0], ())),
            evidence=_evidence(evidence.get(row[0])),
            proposals=tuple(proposals.get(row[0], ())),
            check_kinds=frozenset(kinds.get(row[0], ())),
            scored=tuple(scored.get(row[0], ())),
        )
        for row in session.execute(
            select(*columns).where(Forecast.status != "withdrawn").order_by(Forecast.id)
        )
    ]


def _dedupe_key(forecaster: str, day: date) -> str:
    return f"{KIND}:{forecaster}:{day.isoformat()}"


def last_reports(session: Session) -> dict[str, LastReport]:
    """Each forecaster's latest daily report, from the outbox (queued counts: it will be sent)."""
    found: dict[str, LastReport] = {}
    for key, at in session.execute(
        select(Outbox.dedupe_key, Outbox.created_at).where(Outbox.kind == KIND)
    ):
        head, _, day_text = key.rpartition(":")
        forecaster = head.removeprefix(f"{KIND}:")
        try:
            day = date.fromisoformat(day_text)
        except ValueError:
            continue
        current = found.get(forecaster)
        if current is None or (day, at) > (current.day, current.at):
            found[forecaster] = LastReport(day=day, at=at)
    return found


def _local(moment: datetime, tz: ZoneInfo) -> datetime:
    return moment.replace(tzinfo=_UTC).astimezone(tz)


def report_day(now: datetime, settings: NotifySettings) -> date | None:
    """Today's local date once the local send time has passed, else None."""
    local = _local(now, settings.tz)
    return local.date() if local.time().replace(tzinfo=None) >= settings.send_at else None


def brier(pairs: Sequence[tuple[float, bool]]) -> float | None:
    """The Brier score mean((p - y)^2) of (probability, outcome) pairs, by
    :func:`reports.scoring.brier_score`; None for no pairs. 0 is perfect; always saying 50% earns
    0.25."""
    if not pairs:
        return None
    from reports.scoring import brier_score

    return brier_score([p for p, _ in pairs], [1.0 if y else 0.0 for _, y in pairs])


def _format_due(due: datetime, tz: ZoneInfo) -> str:
    local = _local(due, tz)
    if (local.hour, local.minute, local.second) == (23, 59, 59):
        return local.date().isoformat()
    return local.strftime("%Y-%m-%d %H:%M %Z")


def _format_time(moment: datetime, tz: ZoneInfo) -> str:
    return _local(moment, tz).strftime("%Y-%m-%d %H:%M %Z")


def _percent(p: float | None) -> str:
    if p is None:
        return "-"
    pct = p * 100
    return f"{pct:.0f}%" if abs(pct - round(pct)) < 1e-9 else f"{pct:.1f}%"


def _is_web(url: str | None) -> bool:
    return bool(url) and str(url).lower().startswith(("http://", "https://"))


def _evidence_view(e: EvidenceFacts | None, tz: ZoneInfo) -> dict[str, Any] | None:
    if e is None:
        return None
    return {
        "when": _format_time(e.checked_at, tz),
        "kind": e.kind,
        "verdict": e.verdict,
        "url": e.url or "",
        "link": _is_web(e.url),
        "status": e.http_status,
        "value": e.value or "",
        "excerpt": (e.excerpt or "")[:500],
        "error": e.error or "",
    }


def _proposal_view(f: ForecastFacts, p: ProposalFacts, tz: ZoneInfo) -> dict[str, Any]:
    return {
        "id": p.id,
        "forecast_id": f.id,
        "title": f.title,
        "kind": p.kind,
        "verdict": p.verdict,
        "when": _format_time(p.created_at, tz),
        "note": p.note or "",
        "evidence": _evidence_view(p.evidence, tz),
        "command": f"tracker confirm {f.id} --proposal {p.id}",
        "dispute": f"tracker dispute {f.id} --proposal {p.id} --note WHY",
    }


def _open_view(f: ForecastFacts, forecaster: str, now: datetime, tz: ZoneInfo) -> dict[str, Any]:
    mine = f.latest(forecaster)
    delta = f.due - now
    return {
        "id": f.id,
        "title": f.title,
        "criteria": f.criteria,
        "due": _format_due(f.due, tz),
        "when": f"due in {duration(delta)}"
        if delta.total_seconds() > 0
        else f"overdue by {duration(delta)}",
        "probability": _percent(mine.probability if mine else None),
        "estimated_at": _format_time(mine.made_at, tz) if mine else "",
        "evidence": _evidence_view(f.evidence, tz),
        "proposals": [_proposal_view(f, p, tz) for p in f.proposals],
        "commands": [f"tracker resolve {f.id} yes", f"tracker resolve {f.id} no"],
    }


def _scored(f: ForecastFacts, forecaster: str) -> tuple[float, bool] | None:
    """The (probability, outcome) pair a resolved forecast scores for ``forecaster``."""
    mine = [e for e in f.scored if e.forecaster == forecaster]
    return (mine[0].probability, f.outcome) if mine and f.outcome is not None else None


def _resolved_view(f: ForecastFacts, forecaster: str, tz: ZoneInfo) -> dict[str, Any]:
    pair = _scored(f, forecaster)
    assert f.resolved_at is not None
    outcome = "annulled" if f.status == "annulled" else ("YES" if f.outcome else "NO")
    return {
        "id": f.id,
        "title": f.title,
        "outcome": outcome,
        "resolved_at": _format_time(f.resolved_at, tz),
        "resolved_by": f.resolved_by or "",
        "by_resolver": (f.resolved_by or "").startswith("resolver:"),
        "note": f.resolution_note or "",
        "cited": f.resolution_evidence or "",
        "cited_link": _is_web(f.resolution_evidence),
        "evidence": _evidence_view(f.evidence, tz),
        "probability": _percent(pair[0]) if pair else "-",
        "brier": f"{(pair[0] - (1.0 if pair[1] else 0.0)) ** 2:.3f}" if pair else "",
    }


def _calibration(facts: Iterable[ForecastFacts], forecaster: str, now: datetime) -> dict[str, Any]:
    recent: list[tuple[float, bool]] = []
    overall: list[tuple[float, bool]] = []
    for f in facts:
        pair = _scored(f, forecaster)
        if pair is None or f.resolved_at is None or f.resolved_at > now:
            continue
        overall.append(pair)
        if f.resolved_at >= now - CALIBRATION_WINDOW:
            recent.append(pair)

    def show(pairs: list[tuple[float, bool]]) -> dict[str, Any]:
        score = brier(pairs)
        return {"brier": "-" if score is None else f"{score:.3f}", "count": len(pairs)}

    return {
        "recent": show(recent),
        "all_time": show(overall),
        "window_days": CALIBRATION_WINDOW.days,
    }


def _overdue_owed(
    f: ForecastFacts, today: date, tz: ZoneInfo, last: LastReport | None, every: int
) -> bool:
    """Whether this report is the first of the forecaster's in the forecast's current window."""
    first_day = _local(f.due + timedelta(seconds=1), tz).date()
    if first_day > today:
        first_day = today
    window = max(1, every)
    start = first_day + timedelta(days=((today - first_day).days // window) * window)
    return last is None or last.day < start


def daily_context(
    forecaster: str,
    facts: Sequence[ForecastFacts],
    *,
    now: datetime,
    today: date,
    tz: ZoneInfo,
    last: LastReport | None,
    overdue_interval_days: int,
) -> dict[str, Any] | None:
    """The context of ``forecaster``'s report for local day ``today``, or None when there is
    nothing to report. Pure: everything it needs comes in as arguments."""
    mine = [f for f in facts if forecaster in f.forecasters]
    due_today: list[dict[str, Any]] = []
    due_week: list[dict[str, Any]] = []
    overdue: list[dict[str, Any]] = []
    resolved: list[dict[str, Any]] = []
    proposals: list[dict[str, Any]] = []
    since = last.at if last else now - FIRST_REPORT_LOOKBACK
    new_proposals = 0
    horizon = today + timedelta(days=DUE_WINDOW_DAYS)
    for f in sorted(mine, key=lambda f: (f.due, f.id)):
        if f.status == "open":
            if f.due > now:
                day = _local(f.due, tz).date()
                if day <= today:
                    due_today.append(_open_view(f, forecaster, now, tz))
                elif day <= horizon:
                    due_week.append(_open_view(f, forecaster, now, tz))
            elif _overdue_owed(f, today, tz, last, overdue_interval_days):
                overdue.append(_open_view(f, forecaster, now, tz))
        elif f.resolved_at is not None and since < f.resolved_at <= now:
            resolved.append(_resolved_view(f, forecaster, tz))
        for p in f.proposals:  # resolutions to confirm, and disagreements with resolved ones
            proposals.append(_proposal_view(f, p, tz))
            new_proposals += p.created_at > since
    if not (due_today or due_week or overdue or resolved or new_proposals):
        return None
    resolved.sort(key=lambda r: (r["resolved_at"], r["id"]))
    counts = [
        (len(due_today), "due today"),
        (len(due_week), "due this week"),
        (len(overdue), "overdue"),
        (len(resolved), "resolved"),
        (len(proposals), "proposal" + ("s" if len(proposals) != 1 else "") + " to review"),
    ]
    summary = ", ".join(f"{n} {label}" for n, label in counts if n)
    return {
        "forecaster": forecaster,
        "today": today.isoformat(),
        "today_long": today.strftime("%A %d %B %Y"),
        "timezone": str(tz.key),
        "summary": summary,
        "due_today": due_today,
        "due_week": due_week,
        "overdue": overdue,
        "overdue_interval_days": max(1, overdue_interval_days),
        "resolved": resolved,
        "calibration": _calibration(mine, forecaster, now) if resolved else None,
        "proposals": proposals,
    }


def plan_reports(session: Session, settings: NotifySettings, now: datetime) -> list[PlannedReport]:
    """The reports due at ``now`` that were not queued before (reads only)."""
    today = report_day(now, settings)
    if today is None:
        return []
    facts = load_facts(session)
    previous = last_reports(session)
    by_forecaster: dict[str, list[ForecastFacts]] = {}
    for f in facts:
        for name in f.forecasters:
            by_forecaster.setdefault(name, []).append(f)
    planned: list[PlannedReport] = []
    for forecaster in sorted(by_forecaster):
        last = previous.get(forecaster)
        if last is not None and last.day >= today:
            continue
        context = daily_context(
            forecaster,
            by_forecaster[forecaster],
            now=now,
            today=today,
            tz=settings.tz,
            last=last,
            overdue_interval_days=settings.overdue_interval_days,
        )
        if context is None:
            continue
        planned.append(
            PlannedReport(
                forecaster=forecaster,
                day=today,
                dedupe_key=_dedupe_key(forecaster, today),
                context=context,
                message=make_message(KIND, context),
            )
        )
    return planned


def queue_reports(session: Session, settings: NotifySettings, now: datetime) -> list[PlannedReport]:
    """Decide and queue in the caller's transaction; returns the reports this call queued."""
    queued: list[PlannedReport] = []
    for report in plan_reports(session, settings, now):
        row_id = outbox.queue(
            session,
            dedupe_key=report.dedupe_key,
            kind=KIND,
            recipients=settings.recipients,
            sender=settings.sender,
            message=report.message,
            now=now,
        )
        if row_id is not None:
            queued.append(
                PlannedReport(
                    report.forecaster,
                    report.day,
                    report.dedupe_key,
                    report.context,
                    report.message,
                    row_id,
                )
            )
    return queued


def run_notify(
    engine: Engine,
    settings: NotifySettings,
    transport: outbox.Transport,
    *,
    worker: str,
    now: datetime | None = None,
) -> NotifyResult:
    """Queue what is due (one transaction), then deliver every ready message."""
    at = now or clock_now()
    with write_session(engine) as session:
        queued = queue_reports(session, settings, at)
    delivery = outbox.deliver(
        engine, transport, sender=settings.sender, worker=worker, now=now, lease=settings.lease
    )
    return NotifyResult(queued=queued, delivery=delivery)
