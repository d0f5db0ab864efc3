"""The daily report: what falls due, what is overdue, what resolved, what awaits review.

Reports go to people, not names: each address gets one message per local day (or per week with
``notify.frequency = weekly``: a Monday digest) covering every forecaster it stands for. A
forecaster's address is ``forecasters.NAME.email``, else ``email.to`` (every forecaster without
an address of their own shares one message to all of its addresses). Markets
(:func:`predictions.records.is_market`) get none. The dedupe key is
``daily:to:<address[,address...]>:<YYYY-MM-DD>`` (the day, or the Monday of the week), so an
address never gets two reports for one day, whichever process queues them; a report
queued under the key of earlier versions (``daily:<forecaster>:<day>``) counts as that
forecaster's address's report of that day. A forecaster is everyone who registered or estimated a
forecast. A report is queued once the configured local time has passed (``notify.time`` in
``timezone``), and only when it has something to say:

- **due today**: open forecasts whose due instant falls on today's local date;
- **due this week**: open forecasts due in the seven days after today, listed in the first report
  of the (Monday to Sunday) week only, and then again on their due day;
- **overdue**: open forecasts past due, at most once per ``notify.overdue_interval_days``: the
  days since a forecast fell due are cut into windows of that length, and a forecast is listed in
  the first report of each window (no report to this address earlier in the window);
- **resolved** and **annulled** since the address's previous report (or the last week, for a
  first report), with who or which resolver decided and the evidence it was decided on (not a
  later check's), plus a calibration snapshot;
- **proposals** from resolvers awaiting review (a new one triggers a report; all are listed).

A report about one forecaster says "you"; one covering several names each.

Reading the database (:func:`reports.facts.load_facts`, :func:`last_reports`) is kept apart from deciding
(:func:`daily_context`, pure), so the decision can be tested with plain values.

Worked example: ``notify.time = 08:00``, ``timezone = Europe/Berlin``. At 06:59 UTC on 2026-03-28
(07:59 CET) nothing is queued; at 07:00 UTC (08:00 CET) the report for 2026-03-28 is; after the
switch to summer time it goes out at 06:00 UTC (08:00 CEST).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta
from statistics import fmean
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from predictions.chain import loaded_question
from predictions.clock import now as clock_now
from predictions.db import write_session
from predictions.models import Outbox
from predictions.questions import decode, format_value, summary
from predictions.records import is_market
from predictions.timetext import local_due, local_time
from predictions.wording import duration, format_probability
from reports import outbox
from reports.facts import EstimateFacts, EvidenceFacts, ForecastFacts, ProposalFacts, load_facts
from reports.mail import Rendered, make_message
from reports.question_scores import HEADLINES
from reports.scoring import brier_score

__all__ = [
    "DUE_WINDOW_DAYS",
    "LastReport",
    "NotifyResult",
    "NotifySettings",
    "PlannedReport",
    "daily_context",
    "last_reports",
    "mailboxes",
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
    """Who gets reports, from whom, and when (local time ``send_at`` in ``tz``).

    ``recipients`` (``email.to``) get the report of every forecaster without an address in
    ``addresses`` (``forecasters.NAME.email``); ``frequency`` is ``daily`` or ``weekly``."""

    recipients: tuple[str, ...]
    sender: str
    tz: ZoneInfo
    send_at: time = time(8, 0)
    overdue_interval_days: int = 7
    #: how long a notifier's claim on a message lasts (None: long enough for a whole batch)
    lease: timedelta | None = None
    addresses: Mapping[str, str] = field(default_factory=dict)
    frequency: str = "daily"
    #: the service's public URL (``server.base_url``): each forecast links to its page
    base_url: str | None = None


@dataclass(frozen=True)
class LastReport:
    """An address's most recent report: its local day and when it was queued."""

    day: date
    at: datetime


@dataclass(frozen=True)
class PlannedReport:
    """A report decided on: the forecasters it covers, its recipients (one address, or none when
    ``email.to`` is unset and messages go to files), dedupe key, context and rendered message;
    ``id`` once queued."""

    forecasters: tuple[str, ...]
    recipients: tuple[str, ...]
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


def _mailbox_key(mailbox: tuple[str, ...]) -> str:
    """Who a report is for, as its dedupe key and :func:`last_reports` name it."""
    return f"to:{','.join(mailbox)}"


def _dedupe_key(mailbox: tuple[str, ...], day: date) -> str:
    return f"{KIND}:{_mailbox_key(mailbox)}:{day.isoformat()}"


def last_reports(session: Session) -> dict[str, LastReport]:
    """The latest report of each address (``to:<address>``) and, from keys queued by earlier
    versions, of each forecaster (by name); from the outbox (queued counts: it will be sent)."""
    found: dict[str, LastReport] = {}
    for key, at in session.execute(
        select(Outbox.dedupe_key, Outbox.created_at).where(Outbox.kind == KIND)
    ):
        head, _, day_text = key.rpartition(":")
        who = head.removeprefix(f"{KIND}:")
        try:
            day = date.fromisoformat(day_text)
        except ValueError:
            continue
        current = found.get(who)
        if current is None or (day, at) > (current.day, current.at):
            found[who] = LastReport(day=day, at=at)
    return found


def mailboxes(
    forecasters: Iterable[str], settings: NotifySettings
) -> dict[tuple[str, ...], list[str]]:
    """Each mailbox (the addresses one message goes to) and the forecasters it gets reports for: a
    forecaster's own address, else the ``email.to`` addresses together, in one message (none: the
    message goes to a file unaddressed)."""
    found: dict[tuple[str, ...], list[str]] = {}
    for name in sorted(set(forecasters)):
        if is_market(name):
            continue
        own = settings.addresses.get(name)
        found.setdefault((own,) if own else tuple(settings.recipients), []).append(name)
    return found


def _local(moment: datetime, tz: ZoneInfo) -> datetime:
    return moment.replace(tzinfo=_UTC).astimezone(tz)


def report_day(now: datetime, settings: NotifySettings) -> date | None:
    """The day a report is due for at ``now``, else None: today's local date once the local send
    time has passed; weekly, the week's Monday from that time on Monday until Sunday."""
    local = _local(now, settings.tz)
    today, passed = local.date(), local.time().replace(tzinfo=None) >= settings.send_at
    if settings.frequency == "weekly":
        monday = today - timedelta(days=today.weekday())
        return monday if today > monday or passed else None
    return today if passed else None


def _is_web(url: str | None) -> bool:
    return bool(url) and str(url).lower().startswith(("http://", "https://"))


def _evidence_view(e: EvidenceFacts | None, tz: ZoneInfo) -> dict[str, Any] | None:
    if e is None:
        return None
    return {
        "when": local_time(e.checked_at, tz),
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
        "when": local_time(p.created_at, tz),
        "note": p.note or "",
        "evidence": _evidence_view(p.evidence, tz),
        "command": f"tracker confirm {f.id} --proposal {p.id}",
        "dispute": f"tracker dispute {f.id} --proposal {p.id} --note WHY",
    }


def _estimate_text(f: ForecastFacts, e: EstimateFacts | None) -> str:
    """An estimate as the CLI's ``list`` shows it: ``70%``, ``median 8``, ``DeepSeek 35%``."""
    question = loaded_question(f.kind, f.question)
    if e is None or e.values is None or question is None:
        return format_probability(e.probability if e else None)
    return summary(question, decode(e.values))


def _said(f: ForecastFacts, names: Sequence[str], tz: ZoneInfo) -> list[dict[str, Any]]:
    """Each of ``names``' latest estimate of an open forecast (theirs only: never the market's)."""
    rows = []
    for name in names:
        mine = f.latest(name)
        rows.append(
            {
                "who": name,
                "probability": _estimate_text(f, mine),
                "made_at": local_time(mine.made_at, tz) if mine else "",
            }
        )
    return rows


def _open_view(
    f: ForecastFacts, names: Sequence[str], now: datetime, tz: ZoneInfo
) -> dict[str, Any]:
    delta = f.due - now
    return {
        "id": f.id,
        "title": f.title,
        "criteria": f.criteria,
        "due": local_due(f.due, tz, f.due_zone),
        "when": f"due in {duration(delta)}"
        if delta.total_seconds() > 0
        else f"overdue by {duration(delta)}",
        "said": _said(f, [n for n in names if n in f.forecasters], tz),
        "evidence": _evidence_view(f.evidence, tz),
        "proposals": [_proposal_view(f, p, tz) for p in f.proposals],
        "commands": [f"tracker resolve {f.id} yes", f"tracker resolve {f.id} no"],
    }


def _scored(f: ForecastFacts, forecaster: str) -> tuple[float, bool] | None:
    """The (probability, outcome) pair a resolved binary forecast scores for ``forecaster``."""
    mine = [e.probability for e in f.scored if e.forecaster == forecaster]
    if not mine or mine[0] is None or f.outcome is None:
        return None
    return mine[0], f.outcome


def _resolved_view(f: ForecastFacts, names: Sequence[str], tz: ZoneInfo) -> dict[str, Any]:
    """A resolution with the evidence it was decided on: what the person cited, or the check the
    resolver decided on (a later check's error or "not due until" is not shown)."""
    assert f.resolved_at is not None
    said: list[dict[str, Any]] = []
    question = loaded_question(f.kind, f.question)
    for name in (n for n in names if n in f.forecasters):
        if question is not None:  # what they said (summary), its score (the type's own)
            got = f.typed.get(name)
            shown = (summary(question, got[0]), f"{got[1]:.3f}") if got else ("-", "")
            kind = {"score_name": HEADLINES[f.kind]}
            said.append({"who": name, "probability": shown[0], "brier": shown[1]} | kind)
            continue
        pair = _scored(f, name)
        said.append(
            {
                "who": name,
                "probability": format_probability(pair[0]) if pair else "-",
                "brier": f"{(pair[0] - (1.0 if pair[1] else 0.0)) ** 2:.3f}" if pair else "",
            }
        )
    outcome = "YES" if f.outcome else "NO"
    if question is not None and f.resolution_value is not None:
        outcome = format_value(question, f.resolution_value)
    return {
        "id": f.id,
        "title": f.title,
        "outcome": "annulled" if f.status == "annulled" else outcome,
        "resolved_at": local_time(f.resolved_at, tz),
        "resolved_by": f.resolved_by or "",
        "by_resolver": (f.resolved_by or "").startswith("resolver:"),
        "note": f.resolution_note or "",
        "cited": f.resolution_evidence or "",
        "cited_link": _is_web(f.resolution_evidence),
        "evidence": _evidence_view(f.receipt, tz),
        "said": said,
    }


def _calibration(facts: Iterable[ForecastFacts], forecaster: str, now: datetime) -> dict[str, Any]:
    """``forecaster``'s Brier score over the last :data:`CALIBRATION_WINDOW` and all time; and
    per numeric, date or choice type, its mean :data:`~reports.question_scores.HEADLINES` score
    (each type its own, never averaged with another)."""
    recent: list[tuple[float, bool]] = []
    overall: list[tuple[float, bool]] = []
    typed: dict[str, list[tuple[float, bool]]] = {}  # (score, within the window) per type
    for f in facts:
        if f.resolved_at is None or f.resolved_at > now:
            continue
        lately = f.resolved_at >= now - CALIBRATION_WINDOW
        if (got := f.typed.get(forecaster)) is not None:
            typed.setdefault(f.kind, []).append((got[1], lately))
        if (pair := _scored(f, forecaster)) is not None:
            overall.append(pair)
            recent.extend([pair] if lately else [])

    def mean(scores: list[float]) -> dict[str, Any]:
        return {"value": f"{fmean(scores):.3f}" if scores else "-", "count": len(scores)}

    def show(pairs: list[tuple[float, bool]]) -> dict[str, Any]:
        if not pairs:
            return {"brier": "-", "count": 0}
        p, y = zip(*pairs, strict=True)
        return {"brier": f"{brier_score(p, y):.3f}", "count": len(pairs)}

    return {
        "who": forecaster,
        "recent": show(recent),
        "all_time": show(overall),
        "window_days": CALIBRATION_WINDOW.days,
        "types": [
            {"kind": k, "score": HEADLINES[k], "all_time": mean([s for s, _ in rows])}
            | {"recent": mean([s for s, lately in rows if lately])}
            for k, rows in sorted(typed.items())
        ],
    }


def _overdue_owed(
    f: ForecastFacts, today: date, tz: ZoneInfo, last: LastReport | None, every: int
) -> bool:
    """Whether this report is the first to its address in the forecast's current window."""
    first_day = _local(f.due + timedelta(seconds=1), tz).date()
    if first_day > today:
        first_day = today
    window = max(1, every)
    start = first_day + timedelta(days=((today - first_day).days // window) * window)
    return last is None or last.day < start


def _names(names: Sequence[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def daily_context(
    forecasters: Sequence[str],
    facts: Sequence[ForecastFacts],
    *,
    now: datetime,
    today: date,
    tz: ZoneInfo,
    last: LastReport | None,
    overdue_interval_days: int,
    base_url: str | None = None,
) -> dict[str, Any] | None:
    """The context of the report covering ``forecasters`` for local day ``today`` (``last``: the
    address's previous report), or None when there is nothing to report. Pure: everything it
    needs comes in as arguments."""
    names = sorted(forecasters)
    mine = [f for f in facts if f.status != "withdrawn" and f.forecasters.intersection(names)]
    due_today: list[dict[str, Any]] = []
    due_week: list[dict[str, Any]] = []
    overdue: list[dict[str, Any]] = []
    resolved: list[dict[str, Any]] = []
    proposals: list[dict[str, Any]] = []
    since = last.at if last else now - FIRST_REPORT_LOOKBACK
    first_of_week = last is None or last.day < today - timedelta(days=today.weekday())
    new_proposals = 0
    horizon = today + timedelta(days=DUE_WINDOW_DAYS)
    for f in sorted(mine, key=lambda f: (f.due, f.id)):
        if f.status == "open":
            if f.due > now:
                day = _local(f.due, tz).date()
                if day <= today:
                    due_today.append(_open_view(f, names, now, tz))
                elif day <= horizon and first_of_week:
                    due_week.append(_open_view(f, names, now, tz))
            elif _overdue_owed(f, today, tz, last, overdue_interval_days):
                overdue.append(_open_view(f, names, now, tz))
        elif f.resolved_at is not None and since < f.resolved_at <= now:
            resolved.append(_resolved_view(f, names, tz))
        for p in f.proposals:  # resolutions to confirm, and disagreements with resolved ones
            proposals.append(_proposal_view(f, p, tz))
            new_proposals += p.created_at > since
    if not (due_today or due_week or overdue or resolved or new_proposals):
        return None
    resolved.sort(key=lambda r: (r["resolved_at"], r["id"]))
    annulled = sum(r["outcome"] == "annulled" for r in resolved)
    counts = [
        (len(due_today), "due today"),
        (len(due_week), "due this week"),
        (len(overdue), "overdue"),
        (len(resolved) - annulled, "resolved"),
        (annulled, "annulled"),
        (len(proposals), "proposal" + ("s" if len(proposals) != 1 else "") + " to review"),
    ]
    scored = {s["who"] for r in resolved for s in r["said"] if s["brier"]}
    return {
        "forecaster": _names(names),
        "forecasters": names,
        "you": len(names) == 1,
        "today": today.isoformat(),
        "today_long": today.strftime("%A %d %B %Y"),
        "timezone": str(tz.key),
        "summary": ", ".join(f"{n} {label}" for n, label in counts if n),
        "due_today": due_today,
        "due_week": due_week,
        "overdue": overdue,
        "overdue_interval_days": max(1, overdue_interval_days),
        "resolved": resolved,
        "calibration": [_calibration(mine, n, now) for n in names if n in scored],
        "proposals": proposals,
        "pages": base_url.rstrip("/") + "/forecasts/" if base_url else None,
    }


def plan_reports(session: Session, settings: NotifySettings, now: datetime) -> list[PlannedReport]:
    """The reports due at ``now`` that were not queued before, one per address (reads only)."""
    day = report_day(now, settings)
    if day is None:
        return []
    today = _local(now, settings.tz).date()
    facts = load_facts(session)
    previous = last_reports(session)
    by_name: dict[str, list[ForecastFacts]] = {}
    for f in facts:
        for name in f.forecasters:
            by_name.setdefault(name, []).append(f)
    planned: list[PlannedReport] = []
    for recipients, names in mailboxes(by_name, settings).items():
        # Keys of earlier versions (one per forecaster) count as the mailbox's reports.
        earlier = [previous.get(_mailbox_key(recipients)), *(previous.get(n) for n in names)]
        last = max((r for r in earlier if r), key=lambda r: (r.day, r.at), default=None)
        if last is not None and last.day >= day:
            continue
        theirs = {f.id: f for name in names for f in by_name[name]}
        context = daily_context(
            names,
            list(theirs.values()),
            now=now,
            today=today,
            tz=settings.tz,
            last=last,
            overdue_interval_days=settings.overdue_interval_days,
            base_url=settings.base_url,
        )
        if context is None:
            continue
        planned.append(
            PlannedReport(
                forecasters=tuple(names),
                recipients=recipients,
                day=day,
                dedupe_key=_dedupe_key(recipients, day),
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
            recipients=report.recipients,
            sender=settings.sender,
            message=report.message,
            now=now,
        )
        if row_id is not None:
            queued.append(replace(report, id=row_id))
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
