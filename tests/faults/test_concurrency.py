"""Concurrency: four ``tracker sweep`` and two ``tracker notify`` processes at once on one database
(SQLite file and PostgreSQL): every due check is done exactly once, every message is written
exactly once, and no "database is locked" reaches a user. Also a sweep whose lease runs out while
its own checks wait in its queue."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from sqlalchemy.engine import Engine

from resolvers.http import HttpSettings
from resolvers.sweep import SweepSettings, sweep
from tests.faults.workers import (
    PAGE,
    add_checked_forecasts,
    assert_each_check_done_once,
    assert_each_message_written_once,
    assert_verifies,
    queue_messages,
    start,
    write_config,
)
from tests.resolvers.loopback import Loopback


def test_concurrency_sweep_outliving_its_lease_runs_each_check_once(engine: Engine) -> None:
    with Loopback() as web:
        web.route("/slow", PAGE, delay=0.15)
        checks = add_checked_forecasts(engine, web.url + "/slow", 12)
        settings = SweepSettings(
            http=HttpSettings(timeout=5, allowed_networks=("127.0.0.0/8",), retries=0),
            concurrency=1,
            lease=timedelta(milliseconds=200),
        )
        report = sweep(engine, settings=settings)
    assert report.checked == 12 and not report.errors
    assert_each_check_done_once(engine, checks)
    assert_verifies(engine)


def test_concurrency_four_sweeps_and_two_notifiers_at_once(
    db_url: str, engine: Engine, tmp_path: Path
) -> None:
    config = write_config(tmp_path, lease=30)
    queue_messages(engine, 60)
    with Loopback() as web:
        web.route("/slow", PAGE, delay=0.02)
        checks = add_checked_forecasts(engine, web.url + "/slow", 120)
        procs = [start("sweep", db_url, config) for _ in range(4)]
        procs += [start("notify", db_url, config) for _ in range(2)]
        results = [(p.args, *p.communicate(timeout=120), p.returncode) for p in procs]
    for args, _out, err, code in results:
        assert code == 0, (args, err.decode())
        assert b"locked" not in err.lower() and b"Traceback" not in err, err.decode()
    assert_each_check_done_once(engine, checks)
    assert_each_message_written_once(engine, tmp_path / "mail")
    assert_verifies(engine)
