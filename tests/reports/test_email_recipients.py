"""Reports go to people, not names: one message per address a day covering the forecasters it
stands for (``forecasters.NAME.email``, else ``email.to``), none for markets; and "you" only when a
report is about one forecaster. On real SQLite files (and PostgreSQL), through the CLI with .eml
files and a real SMTP server (aiosmtpd)."""

from __future__ import annotations

import json
import os
from dataclasses import replace
from datetime import datetime, time
from email import message_from_bytes
from email.policy import default
from pathlib import Path
from zoneinfo import ZoneInfo

from freezegun import freeze_time
from sqlalchemy import select
from sqlalchemy.engine import Engine

from predictions import store
from predictions.clock import now as clock_now
from predictions.db import read_session, write_session
from predictions.models import Outbox
from predictions.validation import parse_due
from reports.mail import Rendered
from reports.notify import NotifySettings, plan_reports, queue_reports
from reports.outbox import queue
from tests.conftest import CliInvoke
from tests.mailserver import MailServer
from tests.reports.test_report_build import Ledger, _day, _report

UTC = ZoneInfo("UTC")
SETTINGS = NotifySettings(
    recipients=("team@example.org",),
    sender="tracker@example.org",
    tz=UTC,
    send_at=time(8, 0),
)


def _add(engine: Engine, by: str, due: str = "2026-05-05", p: float = 0.7) -> int:
    at = datetime(2026, 1, 1, 12)
    with write_session(engine) as session:
        return store.add_forecast(
            session,
            title=f"{by}'s question",
            criteria="Resolves YES if it happens.",
            due=parse_due(due, now=at, tz=UTC),
            author=by,
            probability=p,
            created_at=at,
        ).id


def _queue(engine: Engine, settings: NotifySettings) -> list[tuple[str, tuple[str, ...]]]:
    with write_session(engine) as session:
        return [
            (r.dedupe_key, r.forecasters) for r in queue_reports(session, settings, clock_now())
        ]


def test_each_address_gets_one_report_a_day_covering_its_forecasters(engine: Engine) -> None:
    for name in ("alice", "bob", "carol", "dave"):
        fid = _add(engine, name)
    with write_session(engine) as session:  # a market's price, recorded as its estimate
        store.add_estimate(session, fid, "polymarket", 0.4, made_at=datetime(2026, 2, 1))
    settings = replace(
        SETTINGS, addresses={"alice": "alice@example.org", "bob": "alice@example.org"}
    )
    with freeze_time("2026-05-05 09:00:00"):
        assert _queue(engine, settings) == [
            ("daily:to:alice@example.org:2026-05-05", ("alice", "bob")),
            ("daily:to:team@example.org:2026-05-05", ("carol", "dave")),
        ]
        assert _queue(engine, settings) == []
    with freeze_time("2026-05-05 20:00:00"):
        _add(engine, "erin")  # a new forecaster later that day: no second mail to team@
        assert _queue(engine, settings) == []
    with read_session(engine) as session:
        rows = session.scalars(select(Outbox).order_by(Outbox.id)).all()
    assert [r.recipients for r in rows] == ["alice@example.org", "team@example.org"]
    shared = rows[0].body_text
    assert "alice said:  70%" in shared and "bob said:    70%" in shared
    assert "you said" not in shared
    assert rows[0].subject == "[tracker] alice and bob: 2 due today"
    assert "polymarket" not in rows[1].body_text


def test_a_report_queued_under_the_old_per_forecaster_key_is_not_sent_again(
    engine: Engine,
) -> None:
    """Upgrading in the middle of a day: alice's report of the day, queued by the earlier
    version under ``daily:alice:<day>``, counts as her address's report of that day."""
    _add(engine, "alice")
    _add(engine, "alice", due="2026-05-06")
    with write_session(engine) as session:
        queue(
            session,
            dedupe_key="daily:alice:2026-05-05",
            kind="daily",
            recipients=("team@example.org",),
            sender="tracker@example.org",
            message=Rendered("[tracker] alice: 1 due today", "t", "<p>h</p>"),
            now=datetime(2026, 5, 5, 8, 0),
        )
    with freeze_time("2026-05-05 09:00:00"):
        assert _queue(engine, SETTINGS) == []
    with freeze_time("2026-05-06 09:00:00"):
        assert _queue(engine, SETTINGS) == [("daily:to:team@example.org:2026-05-06", ("alice",))]


def test_markets_get_no_report_even_without_a_check_on_the_forecast(engine: Engine) -> None:
    fid = _add(engine, "alice")
    with write_session(engine) as session:
        store.add_estimate(session, fid, "manifold", 0.55, made_at=datetime(2026, 2, 1))
    settings = replace(SETTINGS, addresses={"manifold": "market@example.org"})
    with freeze_time("2026-05-05 09:00:00"), read_session(engine) as session:
        [report] = plan_reports(session, settings, clock_now())
    assert report.forecasters == ("alice",) and report.recipients == ("team@example.org",)
    [item] = report.context["due_today"]
    assert [s["who"] for s in item["said"]] == ["alice"]


def _configure(cli: CliInvoke, **values: str) -> None:
    for key, value in values.items():
        result = cli("config", "set", key, value)
        assert result.exit_code == 0, result.output


def _cli_add(cli: CliInvoke, by: str) -> None:
    result = cli(
        "add", f"{by}'s question", "-p", "60%", "--due", "2026-05-05", "--criteria", "c",
        "--by", by,
    )  # fmt: skip
    assert result.exit_code == 0, result.output


def test_notify_one_inbox_gets_one_mail_a_day_over_smtp(cli: CliInvoke) -> None:
    """Issue 13: one inbox got four mails a day (three people and a market)."""
    with freeze_time("2026-05-01 09:00:00"):
        for name in ("alice", "bob", "carol"):
            _cli_add(cli, name)
        fid = json.loads(cli("list", "--json").stdout)[0]["id"]
        assert cli("update", str(fid), "-p", "20%", "--by", "metaculus").exit_code == 0
    with MailServer() as server:
        _configure(
            cli,
            **{
                "notify.time": "08:00",
                "email.to": "me@example.org",
                "smtp.host": "127.0.0.1",
                "smtp.port": str(server.port),
                "smtp.security": "none",
            },
        )
        with freeze_time("2026-05-05 09:00:00"):
            first = cli("notify")
            again = cli("notify")
    assert first.exit_code == 0, first.output
    assert "me@example.org: alice, bob, carol (2026-05-05)" in first.stdout
    assert again.exit_code == 0 and "Nothing new to report today." in again.stdout
    [got] = server.received
    assert got.rcpt_tos == ["me@example.org"]
    assert got.message["Subject"] == "[tracker] alice, bob and carol: 3 due today"


def test_notify_writes_one_eml_per_address_with_its_to_header(cli: CliInvoke) -> None:
    with freeze_time("2026-05-01 09:00:00"):
        for name in ("alice", "bob"):
            _cli_add(cli, name)
    _configure(cli, **{"email.to": "me@example.org", "forecasters.bob.email": "bob@example.org"})
    with freeze_time("2026-05-05 09:00:00"):
        result = cli("notify")
    assert result.exit_code == 0, result.output
    folder = Path(os.environ["TRACKER_DATA_DIR"]) / "outbox"
    messages = [message_from_bytes(p.read_bytes(), policy=default) for p in folder.glob("*.eml")]
    by_to = {m["To"]: m for m in messages}
    assert sorted(by_to) == ["bob@example.org", "me@example.org"]
    assert by_to["bob@example.org"]["Subject"] == "[tracker] bob: 1 due today - bob's question"
    body = by_to["bob@example.org"].get_body(("plain",)).get_content()
    assert "you said:    60%" in body and "alice" not in body


def test_report_findings_say_you_only_about_one_forecaster(engine: Engine) -> None:
    led = Ledger(engine)
    for i in range(31):  # 31 forecasts at 90%, 23 came true: overconfident at the top end
        led.add([("alice" if i % 2 else "bob", 0.9, _day(0))], due=_day(10 + i), outcome=i < 23)
    led.save()
    both = _report(engine)["findings"]
    assert both[0].startswith("The 90%-100% forecasts (mean 90%) came true 74% of the time")
    assert both[0].endswith("the forecasters are overconfident at the top end.")
    assert not any("you" in f.lower().split() or "your" in f.lower().split() for f in both)
    assert any(f.startswith("The Brier score") for f in both)
    alone = _report(engine, by="alice")["findings"]
    assert any(
        f.startswith("Only 15 scored forecasts: too few to say how calibrated you are")
        for f in alone
    ), alone
