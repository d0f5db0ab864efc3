"""The daily report: what is due when, in which time zone, how often overdue reminders come, what
resolved, and proposals; on a real database with a frozen clock (no live scheduler here)."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import jinja2
import pytest
from freezegun import freeze_time
from sqlalchemy import select
from sqlalchemy.engine import Engine

from predictions import store
from predictions.clock import now as clock_now
from predictions.db import read_session, write_session
from predictions.models import Check, Evidence, Outbox, Proposal
from predictions.validation import parse_due
from reports.facts import EstimateFacts, EvidenceFacts, ForecastFacts
from reports.mail import make_message
from reports.notify import (
    NotifySettings,
    daily_context,
    plan_reports,
    queue_reports,
    report_day,
)
from reports.scoring import brier_score

BERLIN = ZoneInfo("Europe/Berlin")
KIRITIMATI = ZoneInfo("Pacific/Kiritimati")  # UTC+14
PAGO_PAGO = ZoneInfo("Pacific/Pago_Pago")  # UTC-11
UTC = ZoneInfo("UTC")


def _settings(tz: ZoneInfo = UTC, at: time = time(8, 0), every: int = 7) -> NotifySettings:
    return NotifySettings(
        recipients=("me@example.org",),
        sender="tracker@example.org",
        tz=tz,
        send_at=at,
        overdue_interval_days=every,
    )


def _add(
    engine: Engine,
    due: str,
    *,
    tz: ZoneInfo = UTC,
    title: str = "Qwen4 released as open weights",
    by: str = "alice",
    p: float = 0.7,
    created: datetime = datetime(2026, 1, 1, 12, 0),
) -> int:
    with write_session(engine) as session:
        f = store.add_forecast(
            session,
            title=title,
            criteria="Resolves YES if Alibaba publishes the weights under an open licence.",
            due=parse_due(due, now=created, tz=tz),
            author=by,
            probability=p,
            created_at=created,
            allow_past_due=True,
        )
        return f.id


def _queue(engine: Engine, settings: NotifySettings) -> list[str]:
    with write_session(engine) as session:
        return [r.dedupe_key for r in queue_reports(session, settings, clock_now())]


def _plan(engine: Engine, settings: NotifySettings) -> list[dict]:
    with read_session(engine) as session:
        return [r.context for r in plan_reports(session, settings, clock_now())]


def test_report_day_is_the_local_day_after_the_local_send_time_across_dst() -> None:
    s = _settings(BERLIN)
    # Winter (CET, UTC+1): 08:00 local is 07:00 UTC.
    assert report_day(datetime(2026, 3, 28, 6, 59), s) is None
    assert report_day(datetime(2026, 3, 28, 7, 0), s) == date(2026, 3, 28)
    # The clocks go forward on 2026-03-29 (CEST, UTC+2): 08:00 local is 06:00 UTC.
    assert report_day(datetime(2026, 3, 29, 5, 59), s) is None
    assert report_day(datetime(2026, 3, 29, 6, 0), s) == date(2026, 3, 29)


def test_notify_waits_for_local_time_and_due_today_follows_the_dst_change(engine: Engine) -> None:
    fid = _add(engine, "2026-03-29", tz=BERLIN)
    s = _settings(BERLIN)
    with freeze_time("2026-03-28 06:59:00"):
        assert _queue(engine, s) == []
    with freeze_time("2026-03-28 07:00:00"):
        [ctx] = _plan(engine, s)
        assert [f["id"] for f in ctx["due_week"]] == [fid] and ctx["due_today"] == []
        assert _queue(engine, s) == ["daily:to:me@example.org:2026-03-28"]
    with freeze_time("2026-03-29 05:59:00"):  # 07:59 CEST
        assert _queue(engine, s) == []
    with freeze_time("2026-03-29 06:00:00"):  # 08:00 CEST
        [ctx] = _plan(engine, s)
        [item] = ctx["due_today"]
        assert item["id"] == fid and item["due"] == "2026-03-29"
        assert item["when"] == "due in 15 h 59 min"  # 23:59:59 CEST is 21:59:59 UTC
        assert _queue(engine, s) == ["daily:to:me@example.org:2026-03-29"]


def test_notify_for_a_user_fourteen_hours_ahead_of_utc(engine: Engine) -> None:
    fid = _add(engine, "2026-06-10", tz=KIRITIMATI)
    s = _settings(KIRITIMATI)
    # 2026-06-09 18:00 UTC is 2026-06-10 08:00 in Kiritimati: the forecast is due *today* there,
    # though it is still the 9th in UTC.
    with freeze_time("2026-06-09 17:59:00"):
        assert _queue(engine, s) == []
    with freeze_time("2026-06-09 18:00:00"):
        [ctx] = _plan(engine, s)
        assert [f["id"] for f in ctx["due_today"]] == [fid]
        assert ctx["today"] == "2026-06-10"
        assert _queue(engine, s) == ["daily:to:me@example.org:2026-06-10"]


def test_notify_for_a_user_eleven_hours_behind_utc(engine: Engine) -> None:
    fid = _add(engine, "2026-06-10", tz=PAGO_PAGO)
    s = _settings(PAGO_PAGO)
    # 2026-06-10 19:00 UTC is 08:00 on the 10th in Pago Pago; the due is 2026-06-11 10:59:59 UTC.
    with freeze_time("2026-06-10 18:59:00"):
        assert _queue(engine, s) == []
    with freeze_time("2026-06-10 19:00:00"):
        [ctx] = _plan(engine, s)
        assert [f["id"] for f in ctx["due_today"]] == [fid]
        assert ctx["today"] == "2026-06-10"


def test_notify_twice_queues_each_report_once(engine: Engine) -> None:
    _add(engine, "2026-05-05")
    s = _settings()
    with freeze_time("2026-05-05 09:00:00"):
        assert _queue(engine, s) == ["daily:to:me@example.org:2026-05-05"]
        assert _queue(engine, s) == []
    with freeze_time("2026-05-05 15:00:00"):
        assert _queue(engine, s) == []
    with read_session(engine) as session:
        assert session.scalars(select(Outbox.dedupe_key)).all() == [
            "daily:to:me@example.org:2026-05-05"
        ]


def _days(start: date, end: date) -> list[date]:
    return [start + timedelta(days=i) for i in range((end - start).days + 1)]


def test_overdue_reminder_at_most_once_per_interval(engine: Engine) -> None:
    fid = _add(engine, "2026-03-01")
    s = _settings(every=7)
    sent_on = []
    for day in _days(date(2026, 3, 2), date(2026, 3, 22)):
        with freeze_time(datetime.combine(day, time(9, 0))):
            if _queue(engine, s):
                sent_on.append(day.isoformat())
    assert sent_on == ["2026-03-02", "2026-03-09", "2026-03-16"]
    with read_session(engine) as session:
        row = session.scalars(select(Outbox).order_by(Outbox.id.desc())).first()
        assert row is not None and f"#{fid}" in row.body_text and "OVERDUE" in row.body_text


def test_overdue_reminder_missed_days_catch_up_once(engine: Engine) -> None:
    _add(engine, "2026-03-01")
    s = _settings(every=7)
    sent_on = []
    for day in _days(date(2026, 3, 2), date(2026, 3, 16)):
        if day in (date(2026, 3, 9), date(2026, 3, 10)):
            continue  # the daemon was down
        with freeze_time(datetime.combine(day, time(9, 0))):
            if _queue(engine, s):
                sent_on.append(day.isoformat())
    assert sent_on == ["2026-03-02", "2026-03-11", "2026-03-16"]


def test_overdue_reminders_stop_once_resolved_and_the_resolution_is_reported(
    engine: Engine,
) -> None:
    fid = _add(engine, "2026-03-01", p=0.8)
    s = _settings(every=1)
    with freeze_time("2026-03-02 09:00:00"):
        assert _queue(engine, s)
    with freeze_time("2026-03-02 12:00:00"), write_session(engine) as session:
        store.resolve(session, fid, True, by="alice", evidence="https://example.org/qwen4")
    with freeze_time("2026-03-03 09:00:00"):
        [ctx] = _plan(engine, s)
        assert ctx["overdue"] == []
        [r] = ctx["resolved"]
        assert (r["id"], r["outcome"], r["resolved_by"]) == (fid, "YES", "alice")
        assert r["said"] == [{"who": "alice", "probability": "80%", "brier": "0.040"}]
        assert ctx["calibration"][0]["all_time"] == {"brier": "0.040", "count": 1}
        assert _queue(engine, s)
    with freeze_time("2026-03-04 09:00:00"):
        assert _queue(engine, s) == []


def _evidence(engine: Engine, fid: int, **kw: object) -> int:
    with write_session(engine) as session:
        check = Check(
            forecast_id=fid,
            kind="manifold",
            params={"market": "qwen4"},
            created_at=datetime(2026, 1, 2),
            next_check_at=datetime(2026, 1, 3),
        )
        session.add(check)
        session.flush()
        row = Evidence(
            check_id=check.id,
            forecast_id=fid,
            checked_at=kw.pop("checked_at", datetime(2026, 3, 1, 10)),
            kind="manifold",
            resolver_version="1",
            url=kw.pop("url", "https://manifold.markets/x/qwen4"),
            http_status=200,
            excerpt=kw.pop("excerpt", "Market resolved YES"),
            value="YES",
            verdict=kw.pop("verdict", "yes"),
        )
        session.add(row)
        session.flush()
        return row.id


def test_resolved_by_a_resolver_reports_the_evidence_and_calibration(engine: Engine) -> None:
    recent = _add(engine, "2026-03-01", p=0.8, title="Recent")
    other = _add(engine, "2026-03-01", p=0.3, title="Other")
    old = _add(engine, "2025-10-01", p=0.9, title="Old", created=datetime(2025, 6, 1))
    _evidence(engine, recent)
    with write_session(engine) as session:
        store.resolve(session, old, False, by="alice", at=datetime(2025, 10, 2))
        store.resolve(session, recent, True, by="resolver:manifold", at=datetime(2026, 3, 2, 9))
        store.resolve(session, other, True, by="bob", at=datetime(2026, 3, 2, 10))
    with freeze_time("2026-03-03 09:00:00"):
        [ctx] = _plan(engine, _settings())
    by_id = {r["id"]: r for r in ctx["resolved"]}
    assert set(by_id) == {recent, other}  # the October one resolved before the lookback
    assert by_id[recent]["by_resolver"] and by_id[recent]["evidence"]["verdict"] == "yes"
    assert by_id[recent]["evidence"]["url"] == "https://manifold.markets/x/qwen4"
    recent_brier = brier_score([0.8, 0.3], [1, 1])
    all_brier = brier_score([0.8, 0.3, 0.9], [1, 1, 0])
    assert recent_brier == pytest.approx((0.04 + 0.49) / 2)
    assert ctx["calibration"][0]["recent"] == {"brier": f"{recent_brier:.3f}", "count": 2}
    assert ctx["calibration"][0]["all_time"] == {"brier": f"{all_brier:.3f}", "count": 3}
    message = make_message("daily", ctx)
    assert "by resolver manifold" in message.text
    assert "Brier 0.265 over the last 90 days (2 forecasts)" in message.text


def test_email_snapshot_and_report_score_the_same_estimate(engine: Engine) -> None:
    """An estimate made at the very instant of the resolution does not count: the email's Brier
    snapshot scores the 30% said before, as ``tracker report`` does (one rule,
    ``reports.scored``)."""
    from reports.build import build_report

    fid = _add(engine, "2026-03-10", p=0.3)
    at = datetime(2026, 3, 2, 9)
    with write_session(engine) as session:
        store.add_estimate(session, fid, "alice", 0.9, made_at=at)
        store.resolve(session, fid, True, by="alice", at=at)
    with freeze_time("2026-03-03 09:00:00"):
        [ctx] = _plan(engine, _settings())
    with read_session(engine) as session:
        report = build_report(session, now=datetime(2026, 3, 3, 9))
    assert report["overall"]["count"] == 1
    assert report["overall"]["brier"] == pytest.approx(0.49)
    assert ctx["calibration"][0]["all_time"] == {"brier": "0.490", "count": 1}
    [resolved] = ctx["resolved"]
    assert resolved["said"] == [{"who": "alice", "probability": "30%", "brier": "0.490"}]


def _propose(engine: Engine, fid: int, evidence_id: int, kind: str = "resolve") -> int:
    with write_session(engine) as session:
        proposal = Proposal(
            forecast_id=fid,
            evidence_id=evidence_id,
            kind=kind,
            verdict="yes" if kind == "resolve" else "no",
            created_at=datetime(2026, 4, 1, 10),
        )
        session.add(proposal)
        session.flush()
        return proposal.id


def test_pending_proposal_is_listed_with_evidence_and_the_command(engine: Engine) -> None:
    fid = _add(engine, "2026-09-01")
    pid = _propose(engine, fid, _evidence(engine, fid, checked_at=datetime(2026, 4, 1, 10)))
    s = _settings()
    with freeze_time("2026-04-02 09:00:00"):
        [ctx] = _plan(engine, s)
        [p] = ctx["proposals"]
        assert p["verdict"] == "yes" and p["evidence"]["excerpt"] == "Market resolved YES"
        assert p["command"] == f"tracker confirm {fid} --proposal {pid}"
        assert p["dispute"] == f"tracker dispute {fid} --proposal {pid} --note WHY"
        assert ctx["summary"] == "1 proposal to review"
        assert _queue(engine, s)
    with freeze_time("2026-04-03 09:00:00"):  # still pending, but not new: no daily nagging
        assert _queue(engine, s) == []


def test_disagreement_with_a_resolved_forecast_is_reported(engine: Engine) -> None:
    fid = _add(engine, "2026-03-01")
    with write_session(engine) as session:
        store.resolve(session, fid, True, by="alice", at=datetime(2026, 3, 2))
    evidence_id = _evidence(engine, fid, verdict="no", excerpt="Market re-resolved NO")
    pid = _propose(engine, fid, evidence_id, kind="disagreement")
    with freeze_time("2026-04-02 09:00:00"):
        [ctx] = _plan(engine, _settings())
    [p] = ctx["proposals"]
    assert (p["id"], p["kind"], p["verdict"]) == (pid, "disagreement", "no")
    text = make_message("daily", ctx).text
    assert "a resolver now disagrees with the resolution: its source says NO" in text


def test_market_probability_recorded_by_a_resolver_gets_no_report(engine: Engine) -> None:
    fid = _add(engine, "2026-05-05")
    _evidence(engine, fid)  # adds a manifold check on the forecast
    with write_session(engine) as session:
        store.add_estimate(session, fid, "manifold", 0.55, made_at=datetime(2026, 2, 1))
    with freeze_time("2026-05-05 09:00:00"):
        assert [c["forecaster"] for c in _plan(engine, _settings())] == ["alice"]


def test_due_report_per_forecaster_shows_each_ones_latest_probability(engine: Engine) -> None:
    fid = _add(engine, "2026-05-05", p=0.7)
    with write_session(engine) as session:
        store.add_estimate(session, fid, "bob", 0.2, made_at=datetime(2026, 2, 1))
        store.add_estimate(session, fid, "alice", 0.65, made_at=datetime(2026, 2, 2))
    s = replace(_settings(), addresses={"bob": "bob@example.org"})
    with freeze_time("2026-05-05 09:00:00"):
        contexts = {c["forecaster"]: c for c in _plan(engine, s)}
    assert [e["probability"] for e in contexts["alice"]["due_today"][0]["said"]] == ["65%"]
    assert [e["probability"] for e in contexts["bob"]["due_today"][0]["said"]] == ["20%"]
    assert contexts["bob"]["due_today"][0]["commands"] == [
        f"tracker resolve {fid} yes",
        f"tracker resolve {fid} no",
    ]


def test_nothing_to_report_queues_nothing(engine: Engine) -> None:
    _add(engine, "2027-01-01")
    with freeze_time("2026-05-05 09:00:00"):
        assert _queue(engine, _settings()) == []


def _facts(title: str, url: str = "https://example.org") -> ForecastFacts:
    return ForecastFacts(
        id=7,
        title=title,
        criteria="Tom & Jerry <b>both</b> agree",
        due=datetime(2026, 5, 5, 23, 59, 59),
        status="open",
        outcome=None,
        author="alice",
        resolved_at=None,
        resolved_by=None,
        resolution_note=None,
        resolution_evidence=None,
        estimates=(EstimateFacts("alice", 0.7, datetime(2026, 1, 1)),),
        evidence=EvidenceFacts(
            checked_at=datetime(2026, 5, 1),
            kind="page",
            url=url,
            http_status=200,
            verdict="none",
            value=None,
            excerpt="<img src=x onerror=alert(1)>",
            error=None,
        ),
    )


def _context(f: ForecastFacts) -> dict:
    ctx = daily_context(
        ["alice"],
        [f],
        now=datetime(2026, 5, 5, 9),
        today=date(2026, 5, 5),
        tz=UTC,
        last=None,
        overdue_interval_days=7,
    )
    assert ctx is not None
    return ctx


def test_make_message_html_escapes_every_user_string() -> None:
    ctx = _context(_facts("<script>alert('x')</script>", url="javascript:alert(1)"))
    message = make_message("daily", ctx)
    assert "<script>" not in message.html and "&lt;script&gt;" in message.html
    assert "<img src=x" not in message.html and "&lt;img src=x" in message.html
    assert "Tom &amp; Jerry &lt;b&gt;both&lt;/b&gt;" in message.html
    assert 'href="javascript:' not in message.html
    assert "<script>alert('x')</script>" in message.text  # plain text is not HTML


def test_make_message_subject_is_one_line_whatever_the_title() -> None:
    ctx = _context(_facts("Qwen4\r\nBcc: victim@example.org"))
    message = make_message("daily", ctx)
    assert "\n" not in message.subject and "\r" not in message.subject
    assert message.subject == ("[tracker] alice: 1 due today - Qwen4 Bcc: victim@example.org")


def test_make_message_missing_context_key_is_an_error() -> None:
    ctx = _context(_facts("Qwen4"))
    del ctx["summary"]
    with pytest.raises(jinja2.UndefinedError):
        make_message("daily", ctx)


def test_daily_context_nothing_due_is_none() -> None:
    f = _facts("Later")
    assert (
        daily_context(
            ["alice"],
            [f],
            now=datetime(2026, 4, 1, 9),
            today=date(2026, 4, 1),
            tz=UTC,
            last=None,
            overdue_interval_days=7,
        )
        is None
    )
    assert (
        daily_context(
            ["bob"],
            [f],
            now=datetime(2026, 5, 5, 9),
            today=date(2026, 5, 5),
            tz=UTC,
            last=None,
            overdue_interval_days=7,
        )
        is None
    )


def test_run_notify_two_workers_at_once_queue_and_send_each_report_once(
    engine: Engine, tmp_path: Path
) -> None:
    import threading

    from reports.notify import run_notify
    from reports.outbox import EmlTransport

    for i in range(5):
        _add(engine, "2026-05-05", by=f"user{i}")
    s = replace(_settings(), addresses={f"user{i}": f"user{i}@example.org" for i in range(5)})
    at = datetime(2026, 5, 5, 9, 0)
    results = []
    barrier = threading.Barrier(2)

    def work(name: str) -> None:
        barrier.wait()
        transport = EmlTransport(tmp_path / name)
        results.append(run_notify(engine, s, transport, worker=name, now=at))

    threads = [threading.Thread(target=work, args=(f"w{i}",)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    queued = sorted(q.dedupe_key for r in results for q in r.queued)
    assert queued == [f"daily:to:user{i}@example.org:2026-05-05" for i in range(5)]
    sent = sorted(i for r in results for i in r.delivery.sent)
    assert len(sent) == 5 and len(set(sent)) == 5
    assert len(list(tmp_path.glob("w*/*.eml"))) == 5


# --- issue 13, section 4: emails people act on ------------------------------------------------


def test_subject_counts_annulled_apart_from_resolved(engine: Engine) -> None:
    resolved, annulled = _add(engine, "2026-03-01"), _add(engine, "2026-03-01", title="Moot")
    _add(engine, "2026-03-06", title="Later")
    with write_session(engine) as session:
        store.resolve(session, resolved, True, by="alice", at=datetime(2026, 3, 2, 9))
        store.annul(
            session, annulled, by="alice", note="question withdrawn", at=datetime(2026, 3, 2, 10)
        )
    with freeze_time("2026-03-02 12:00:00"):
        [ctx] = _plan(engine, _settings())
    message = make_message("daily", ctx)
    assert message.subject == "[tracker] alice: 1 due this week, 1 resolved, 1 annulled"
    assert [r["outcome"] for r in ctx["resolved"]] == ["YES", "annulled"]


def test_resolved_item_carries_the_evidence_it_was_decided_on_not_later_checks(
    engine: Engine,
) -> None:
    fid = _add(engine, "2026-03-10", p=0.8)
    decided = _evidence(engine, fid, checked_at=datetime(2026, 3, 2, 8), excerpt="Resolved YES")
    with write_session(engine) as session:
        store.resolve(
            session, fid, True, by="resolver:manifold", evidence="https://manifold.markets/x/q",
            at=datetime(2026, 3, 2, 8, 0, 1),
        )  # fmt: skip
        for kind, verdict, error, excerpt in (
            ("manifold", "error", "HTTP 503 from manifold.markets", None),
            ("deadline", "none", None, "not due until 2026-03-10T23:59:59Z"),
        ):
            check = session.scalars(select(Check).where(Check.forecast_id == fid)).first()
            assert check is not None
            session.add(
                Evidence(
                    check_id=check.id, forecast_id=fid, checked_at=datetime(2026, 3, 2, 9),
                    kind=kind, resolver_version="1", verdict=verdict, error=error,
                    excerpt=excerpt,
                )
            )  # fmt: skip
    with freeze_time("2026-03-03 09:00:00"):
        [ctx] = _plan(engine, _settings())
    [item] = ctx["resolved"]
    assert item["evidence"]["excerpt"] == "Resolved YES" and item["evidence"]["error"] == ""
    text = make_message("daily", ctx).text
    assert "decided on:  yes from manifold" in text and '"Resolved YES"' in text
    assert "HTTP 503" not in text and "not due until" not in text
    assert "evidence:    https://manifold.markets/x/q" in text
    with read_session(engine) as session:
        assert session.get(Evidence, decided) is not None


def test_due_this_week_is_listed_in_the_first_report_of_the_week_and_on_its_due_day(
    engine: Engine,
) -> None:
    friday = _add(engine, "2026-05-08", title="Due Friday")  # 2026-05-04 is a Monday
    other = _add(engine, "2026-05-01", title="Other")
    with write_session(engine) as session:
        store.resolve(session, other, False, by="alice", at=datetime(2026, 5, 5, 12))
    seen = {}
    for day in _days(date(2026, 5, 4), date(2026, 5, 11)):
        with freeze_time(datetime.combine(day, time(9, 0))):
            contexts = _plan(engine, _settings())
            _queue(engine, _settings())
        seen[day.isoformat()] = [
            (section, f["id"])
            for ctx in contexts
            for section in ("due_today", "due_week", "resolved")
            for f in ctx[section]
        ]
    assert seen == {
        "2026-05-04": [("due_week", friday)],
        "2026-05-05": [],
        "2026-05-06": [("resolved", other)],  # a report this week, without the week's list
        "2026-05-07": [],
        "2026-05-08": [("due_today", friday)],
        "2026-05-09": [],
        "2026-05-10": [],
        "2026-05-11": [],
    }


def test_weekly_frequency_sends_a_monday_digest_and_catches_up_a_missed_monday(
    engine: Engine,
) -> None:
    _add(engine, "2026-05-06", title="Wednesday")  # 2026-05-04 is a Monday
    _add(engine, "2026-05-13", title="Next Wednesday")
    _add(engine, "2026-05-01", title="Overdue")
    s = replace(_settings(), frequency="weekly")
    keys = []
    with freeze_time("2026-05-04 07:59:00"):
        assert _queue(engine, s) == []
    for day in _days(date(2026, 5, 4), date(2026, 5, 17)):
        if day == date(2026, 5, 11):
            continue  # the daemon was down on the second Monday
        with freeze_time(datetime.combine(day, time(9, 0))):
            keys += _queue(engine, s)
    assert keys == ["daily:to:me@example.org:2026-05-04", "daily:to:me@example.org:2026-05-11"]
    with read_session(engine) as session:
        first, second = session.scalars(select(Outbox).order_by(Outbox.id)).all()
    assert first.subject == "[tracker] alice: 1 due this week, 1 overdue"
    assert second.created_at == datetime(2026, 5, 12, 9)  # Tuesday: the Monday digest, late
    assert "Next Wednesday" in second.body_text


def test_withdrawn_forecasts_leave_the_emails(engine: Engine) -> None:
    fid = _add(engine, "2026-05-05")
    with write_session(engine) as session:
        store.withdraw(session, fid, by="alice", note="a test entry", at=datetime(2026, 5, 1))
    with freeze_time("2026-05-05 09:00:00"):
        assert _plan(engine, _settings()) == []


def test_make_message_links_each_forecast_to_its_page_when_server_base_url_is_set() -> None:
    """``server.base_url`` set: each forecast in the email links to its page on the service
    (text and HTML); unset: no link."""
    f = _facts("Qwen4 ships")
    linked = daily_context(
        ["alice"], [f], now=datetime(2026, 5, 5, 9), today=date(2026, 5, 5), tz=UTC, last=None,
        overdue_interval_days=7, base_url="https://forecasts.example.org/",
    )  # fmt: skip
    assert linked is not None
    message = make_message("daily", linked)
    assert "  page:        https://forecasts.example.org/forecasts/7\n" in message.text
    assert '<a href="https://forecasts.example.org/forecasts/7">Qwen4 ships</a>' in message.html
    plain = make_message("daily", _context(f))
    assert "/forecasts/7" not in plain.text and "/forecasts/7" not in plain.html
