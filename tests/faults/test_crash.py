"""Crashes: ``tracker sweep`` (against a slow loopback source) and ``tracker notify`` (to .eml
files) killed with SIGKILL at 30 seeded random points each, on SQLite and PostgreSQL.

A kill that lands after the run has ended does not count: rounds go on (at most 90) until 30
kills have landed. After each kill both chains verify against every table (no evidence row or
message outcome is half-written). A killed worker's claims expire after the 1 s lease and the next run takes them:
at the end every check is done exactly once and every message is written exactly once.
"""

from __future__ import annotations

import random
import signal
import time
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import Engine

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

KILLS = 30
MAX_ROUNDS = 3 * KILLS  # bounded: a run that always finishes first fails the test
LEASE = 1


def _receipts(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text("SELECT COUNT(*) FROM receipt")).scalar() or 0)


def _held(engine: Engine, table: str) -> int:
    """Rows claimed by a worker (a killed one leaves its claims to expire)."""
    with engine.connect() as conn:
        sql = f"SELECT COUNT(*) FROM {table} WHERE claimed_by IS NOT NULL"
        return int(conn.execute(text(sql)).scalar() or 0)


def _kill_at(proc_delay: float, command: str, db_url: str, config: Path) -> int:
    """Start ``tracker COMMAND``, SIGKILL it after ``proc_delay`` s (if still running)."""
    proc = start(command, db_url, config)
    try:
        proc.wait(timeout=proc_delay)
    except Exception:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    return proc.returncode


def _startup(command: str, db_url: str, config: Path) -> float:
    """Seconds one run takes with nothing to do: the kill points fall after it, into the work."""
    began = time.monotonic()
    proc = start(command, db_url, config)
    _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err.decode()
    return time.monotonic() - began


def _finish(command: str, db_url: str, config: Path) -> str:
    time.sleep(LEASE + 0.2)  # every claim of a killed run has expired
    proc = start(command, db_url, config)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err.decode()
    assert b"Traceback" not in err
    return out.decode()


def _kill_rounds(
    command: str,
    db_url: str,
    config: Path,
    engine: Engine,
    rng: random.Random,
    prepare: Callable[[int], None],
    claims: str,
) -> tuple[int, int]:
    """Kill ``tracker COMMAND`` at KILLS seeded points; returns (kills, kills in mid-work).

    Each round queues work with ``prepare(round)`` and kills the run at a seeded point of a window
    that starts near the end of start-up. The window follows the machine's speed: when a run ends
    before its kill point, the window moves earlier; when a kill lands before any work, later. So
    every test run makes KILLS kills, however loaded the machine is.
    """
    ready = _startup(command, db_url, config)
    low, high = 0.8 * ready, ready + 0.5
    killed = mid_work = round_ = 0
    while killed < KILLS and round_ < MAX_ROUNDS:
        prepare(round_)
        round_ += 1
        before = _receipts(engine)
        code = _kill_at(rng.uniform(low, high), command, db_url, config)
        if code == -signal.SIGKILL:
            killed += 1
            working = _receipts(engine) > before or _held(engine, claims) > 0
            mid_work += working
            if not working:
                low, high = low * 1.1, high * 1.1
        else:
            low, high = low * 0.85, high * 0.85
        assert_verifies(engine)
    return killed, mid_work


def test_crash_sweep_killed_at_30_points_does_each_check_once(
    db_url: str, engine: Engine, tmp_path: Path
) -> None:
    config = write_config(tmp_path, LEASE)
    checks: list[int] = []
    with Loopback() as web:
        web.route("/slow", PAGE, delay=0.3)

        def prepare(round_: int) -> None:
            checks.extend(add_checked_forecasts(engine, web.url + "/slow", 6, start_at=6 * round_))

        killed, mid_work = _kill_rounds(
            "sweep", db_url, config, engine, random.Random(7), prepare, "check_spec"
        )
        _finish("sweep", db_url, config)
    assert killed == KILLS
    assert mid_work >= 5  # killed holding claims or after recording, not only at start-up
    assert_each_check_done_once(engine, checks)
    assert_verifies(engine)


def test_crash_notify_killed_at_30_points_writes_each_message_once(
    db_url: str, engine: Engine, tmp_path: Path
) -> None:
    config = write_config(tmp_path, LEASE)

    def prepare(round_: int) -> None:
        queue_messages(engine, 8, start_at=8 * round_)

    killed, mid_work = _kill_rounds(
        "notify", db_url, config, engine, random.Random(11), prepare, "outbox"
    )
    _finish("notify", db_url, config)
    assert killed == KILLS
    assert mid_work >= 5  # killed holding claims or after sending, not only at start-up
    assert_each_message_written_once(engine, tmp_path / "mail")
    assert_verifies(engine)
