"""``tracker run``: a real daemon in a subprocess, its jobs called with a frozen clock, and two
daemons on one database sending each report once."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from freezegun import freeze_time
from sqlalchemy import select
from sqlalchemy.engine import Engine

from predictions.db import make_engine, read_session
from predictions.models import Evidence, Outbox
from tests.conftest import CliInvoke
from tests.mailserver import MailServer

CRITERIA = "Resolves YES if Alibaba publishes Qwen4 weights under an open licence."


def _add(cli: CliInvoke, by: str = "alice") -> int:
    result = cli(
        "add", "Qwen4 open weights", "-p", "70%", "--due", "+2d", "--criteria", CRITERIA, "--by", by
    )
    assert result.exit_code == 0, result.output
    return int(result.stdout.split()[2].rstrip(":"))


def _wait_for(predicate: Callable[[], bool], timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


def _sent_keys(engine: Engine) -> list[str]:
    with read_session(engine) as session:
        return sorted(
            session.scalars(select(Outbox.dedupe_key).where(Outbox.sent_at.is_not(None))).all()
        )


class _Process:
    """``tracker run`` in a subprocess, its stderr collected line by line as it comes."""

    def __init__(self, env: dict[str, str], *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tracker", "run", *args],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line.rstrip("\n"))

    def logged(self, text: str) -> bool:
        """True once a stderr line contains ``text``."""
        return any(text in line for line in list(self.lines))

    def stop(self, sig: int = signal.SIGTERM) -> tuple[int, str]:
        """Signal the daemon once it is running; wait for it to exit; (exit code, stderr)."""
        started = _wait_for(lambda: self.logged(" started: ") or self.proc.poll() is not None)
        self.proc.send_signal(sig)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            pytest.fail(f"the daemon did not stop on {signal.Signals(sig).name}: {self.lines}")
        self._reader.join(timeout=10)
        assert started, self.lines
        return self.proc.returncode, "\n".join(self.lines)


def _start(env: dict[str, str], *args: str) -> _Process:
    return _Process(env, *args)


def _stop(proc: _Process, sig: int = signal.SIGTERM) -> tuple[int, str]:
    return proc.stop(sig)


def _smtp_config(cli: CliInvoke, server: MailServer) -> None:
    for key, value in {
        "notify.time": "00:00",
        "email.to": "me@example.org",
        "smtp.host": "127.0.0.1",
        "smtp.port": str(server.port),
        "smtp.security": "none",
    }.items():
        assert cli("config", "set", key, value).exit_code == 0


def test_daemon_sends_due_reports_each_tick_and_exits_0_on_sigterm(
    cli: CliInvoke, tracker_env: dict[str, str], engine: Engine
) -> None:
    assert cli("config", "set", "notify.time", "00:00").exit_code == 0
    assert cli("config", "set", "forecasters.bob.email", "bob@example.org").exit_code == 0
    _add(cli, "alice")
    proc = _start(tracker_env, "--notify-every", "0.5")
    try:
        assert _wait_for(lambda: len(_sent_keys(engine)) == 1), "no report within 30 s"
        _add(cli, "bob")  # picked up by a later tick of the same daemon
        assert _wait_for(lambda: len(_sent_keys(engine)) == 2), "the second tick sent nothing"
    finally:
        code, err = _stop(proc)
    assert code == 0, err
    keys = _sent_keys(engine)
    assert [k.split(":")[2] for k in keys] == ["", "bob@example.org"]
    folder = Path(tracker_env["TRACKER_DATA_DIR"]) / "outbox"
    assert len(list(folder.glob("*.eml"))) == 2
    lines = err.strip().splitlines()
    notify_lines = [line for line in lines if " notify: " in line]
    assert notify_lines and all("queued" in line or "skipped" in line for line in notify_lines)
    assert any("queued 1, sent 1" in line for line in notify_lines)
    assert "received SIGTERM" in err and lines[-1].endswith("stopped")
    assert "Traceback" not in err


def test_daemon_delivers_over_smtp_and_exits_0_on_sigint(
    cli: CliInvoke, tracker_env: dict[str, str], engine: Engine
) -> None:
    _add(cli)
    with MailServer() as server:
        _smtp_config(cli, server)
        proc = _start(tracker_env, "--notify-every", "0.5")
        try:
            assert _wait_for(lambda: len(server.received) == 1), "no message within 30 s"
            time.sleep(1.2)  # two more ticks: nothing is sent twice
        finally:
            code, err = _stop(proc, signal.SIGINT)
    assert code == 0, err
    assert len(server.received) == 1
    assert server.received[0].rcpt_tos == ["me@example.org"]


def _evidence_count(engine: Engine) -> int:
    with read_session(engine) as session:
        return len(session.scalars(select(Evidence.id)).all())


def test_daemon_sweeps_due_checks_on_its_interval(
    cli: CliInvoke, tracker_env: dict[str, str], engine: Engine
) -> None:
    result = cli(
        "add",
        "Qwen4 open weights",
        "-p",
        "70%",
        "--due",
        "+30d",
        "--criteria",
        CRITERIA,
        "--check",
        "deadline",
    )
    assert result.exit_code == 0, result.output
    proc = _start(tracker_env, "--sweep-every", "0.5")
    try:
        assert _wait_for(lambda: _evidence_count(engine) >= 1), "no check ran within 30 s"
    finally:
        code, err = _stop(proc)
    assert code == 0, err
    sweep_lines = [line for line in err.splitlines() if " sweep: " in line]
    assert any("sweep: checked 1, 0 actions, 0 errors" in line for line in sweep_lines), err
    with read_session(engine) as session:
        [receipt] = session.scalars(select(Evidence)).all()
    assert (receipt.kind, receipt.verdict) == ("deadline", "none")


def _received_ids(server: MailServer) -> list[str]:
    return sorted(str(r.message["Message-ID"]) for r in server.received)


def test_daemon_two_daemons_send_one_email_per_report(
    cli: CliInvoke, tracker_env: dict[str, str], engine: Engine
) -> None:
    _add(cli, "alice")
    _add(cli, "bob")
    with MailServer() as server:
        _smtp_config(cli, server)
        assert cli("config", "set", "forecasters.bob.email", "bob@example.org").exit_code == 0
        procs = [_start(tracker_env, "--notify-every", "0.3") for _ in range(2)]
        try:
            assert _wait_for(lambda: len(server.received) >= 2), "no reports within 30 s"
            time.sleep(1.5)  # several more ticks of both daemons
        finally:
            stopped = [_stop(proc) for proc in procs]
    for code, err in stopped:
        assert code == 0 and "Traceback" not in err, err
        assert " notify: failed" not in err, err
    with read_session(engine) as session:
        rows = session.execute(select(Outbox.dedupe_key, Outbox.message_id)).all()
    assert sorted(k.split(":")[2] for k, _m in rows) == ["bob@example.org", "me@example.org"]
    assert _received_ids(server) == sorted(m for _k, m in rows)
    assert _sent_keys(engine) == sorted(k for k, _m in rows)


def _race(apps: list[Any], at: datetime) -> int:
    """Each app's notify run (queue, then deliver) in its own thread, released at one instant;
    returns how many finished."""
    from reports.notify import run_notify
    from tracker.daemon import make_transport, notify_settings

    gate = threading.Barrier(len(apps))
    finished: list[object] = []

    def notify(app: Any, worker: str) -> None:
        settings, transport = notify_settings(app), make_transport(app)
        gate.wait()
        finished.append(run_notify(app.engine, settings, transport, worker=worker, now=at))

    threads = [
        threading.Thread(target=notify, args=(app, f"daemon-{i}")) for i, app in enumerate(apps)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return len(finished)


def test_daemon_two_notifiers_racing_queue_and_send_each_report_once(
    cli: CliInvoke, db_url: str
) -> None:
    """Two daemons' notify runs released at the same instant, on three days: the second insert
    of a dedupe key creates no message (ON CONFLICT DO NOTHING, on both databases), and the
    outbox lease sends each queued message once."""
    from tracker.cli import App

    # A fixed week (no live scheduler here: each run is handed its time), with one forecast due on
    # each of the three days, so that each day's report has something to say.
    start = datetime(2026, 5, 4, 9, 0)
    with freeze_time(start):
        for day in ("2026-05-04", "2026-05-05", "2026-05-06"):
            added = cli("add", f"Due {day}", "-p", "70%", "--due", day, "--criteria", CRITERIA)
            assert added.exit_code == 0, added.output
    with MailServer() as server:
        _smtp_config(cli, server)
        apps = [App(db_url), App(db_url)]
        try:
            for day in range(3):
                assert _race(apps, start + timedelta(days=day)) == 2, "a notifier failed"
        finally:
            for app in apps:
                app.engine.dispose()
    engine = make_engine(db_url)
    try:
        with read_session(engine) as session:
            rows = session.execute(select(Outbox.dedupe_key, Outbox.message_id)).all()
    finally:
        engine.dispose()
    keys = [k for k, _m in rows]
    assert len(keys) == 3 and len(set(keys)) == 3, keys
    assert _received_ids(server) == sorted(m for _k, m in rows)


def test_daemon_notify_job_with_a_frozen_clock_logs_one_line(
    cli: CliInvoke, db_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    from tracker.cli import App
    from tracker.daemon import Daemon

    with freeze_time("2026-05-04 12:00:00"):
        _add(cli)
    assert cli("config", "set", "timezone", "America/New_York").exit_code == 0
    daemon = Daemon(App(db_url))
    try:
        caplog.set_level(logging.INFO, logger="tracker.daemon")
        with freeze_time("2026-05-05 11:59:00"):  # 07:59 in New York: not yet
            daemon.notify_job()
        with freeze_time("2026-05-05 12:00:00"):  # 08:00 EDT
            daemon.notify_job()
            daemon.notify_job()
    finally:
        daemon.close()
    messages = [r.getMessage() for r in caplog.records if r.name == "tracker.daemon"]
    assert len(messages) == 3
    assert messages[0].startswith("notify: queued 0, sent 0")
    assert messages[1].startswith("notify: queued 1, sent 1")
    assert messages[2].startswith("notify: queued 0, sent 0")
    listing = json.loads(cli("outbox", "--json").stdout)
    assert [r["dedupe_key"] for r in listing] == ["daily:to::2026-05-05"]


def test_run_help_names_the_signals() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "tracker", "run", "--help"],
        capture_output=True,
        text=True,
        env={**os.environ},
        timeout=60,
    )
    assert result.returncode == 0 and "SIGTERM" in result.stdout
