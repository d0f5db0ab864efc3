"""Several workers on one database, as separate processes: every due check is recorded exactly
once, and a worker killed mid-sweep leaves claims that expire and are picked up by another."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from predictions import store
from predictions.checks import add_checks
from predictions.clock import now
from predictions.db import read_session, write_session
from predictions.models import Check, Evidence
from resolvers import validate_check
from resolvers.http import HttpSettings
from resolvers.sweep import SweepSettings, sweep
from tests.resolvers.loopback import Loopback

ROOT = Path(__file__).resolve().parents[2]
PAGE = "<p>人工智能失控风险国家标准</p>"


@pytest.fixture
def web() -> Iterator[Loopback]:
    with Loopback() as server:
        yield server


def _forecasts(engine: Engine, url: str, n: int) -> None:
    with write_session(engine) as session:
        for i in range(n):
            f = store.add_forecast(
                session,
                title=f"Forecast {i}",
                criteria="Resolves YES if the page says so.",
                due=now() + timedelta(days=365),
                author="alice",
            )
            add_checks(
                session, f, [validate_check({"kind": "page", "url": url, "contains": "失控"})]
            )


def _evidence_per_check(engine: Engine) -> dict[int, int]:
    with read_session(engine) as session:
        rows = session.execute(
            select(Evidence.check_id, func.count()).group_by(Evidence.check_id)
        ).all()
    return {int(c): int(n) for c, n in rows}


def _env(tracker_env: dict[str, str], tmp_path: Path) -> dict[str, str]:
    config = tmp_path / "workers.toml"
    config.write_text("[resolvers]\nallow_private = true\nconcurrency = 4\n", encoding="utf-8")
    env = dict(tracker_env)
    env["TRACKER_CONFIG"] = str(config)
    env["PYTHONPATH"] = str(ROOT)
    return env


def test_sweep_two_processes_check_every_due_spec_exactly_once(
    engine: Engine, web: Loopback, tracker_env: dict[str, str], tmp_path: Path
) -> None:
    web.route("/n", PAGE, delay=0.1)
    n = 120
    _forecasts(engine, web.url + "/n", n)
    env = _env(tracker_env, tmp_path)
    workers = [
        subprocess.Popen(
            [sys.executable, "-m", "tracker", "sweep", "--json"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    reports = []
    for worker in workers:
        out, err = worker.communicate(timeout=120)
        assert worker.returncode == 0, err
        reports.append(json.loads(out))
    done = [{o["check"] for o in r["outcomes"]} for r in reports]
    assert not done[0] & done[1]
    assert len(done[0] | done[1]) == n
    assert all(r["checked"] > 0 for r in reports), [r["checked"] for r in reports]
    assert _evidence_per_check(engine) == {cid: 1 for cid in done[0] | done[1]}
    assert web.hits["/n"] == n


_KILLABLE = textwrap.dedent(
    """
    import sys
    from datetime import timedelta
    from predictions.db import make_engine
    from resolvers.http import HttpSettings
    from resolvers.sweep import SweepSettings, sweep

    settings = SweepSettings(
        concurrency=4,
        lease=timedelta(seconds=3),
        http=HttpSettings(timeout=60, allowed_networks=("127.0.0.0/8",)),
    )
    sweep(make_engine(sys.argv[1]), settings=settings)
    """
)


def test_sweep_killed_worker_leaves_claims_to_expire(
    engine: Engine, db_url: str, web: Loopback, tracker_env: dict[str, str], tmp_path: Path
) -> None:
    web.route("/n", PAGE, delay=30)  # the first worker hangs on every request
    _forecasts(engine, web.url + "/n", 40)
    worker = subprocess.Popen(
        [sys.executable, "-c", _KILLABLE, db_url],
        env=_env(tracker_env, tmp_path),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 30
        claimed = 0
        while claimed < 32 and time.monotonic() < deadline:
            time.sleep(0.1)
            with read_session(engine) as session:
                claimed = int(
                    session.scalar(select(func.count()).where(Check.claimed_by.is_not(None))) or 0
                )
        assert claimed == 32, "the worker claims ahead: two batches of 4 x concurrency"
    finally:
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait(timeout=10)
    web.route("/n", PAGE)  # the source recovers
    settings = SweepSettings(http=HttpSettings(timeout=5, allowed_networks=("127.0.0.0/8",)))
    first = sweep(engine, settings=settings)
    assert first.checked == 8  # the other 32 are still leased to the dead worker
    time.sleep(3.2)
    second = sweep(engine, settings=settings)
    assert second.checked == 32
    counts = _evidence_per_check(engine)
    assert len(counts) == 40 and set(counts.values()) == {1}


def test_sweep_progress_bar_only_on_a_terminal(
    engine: Engine, web: Loopback, tracker_env: dict[str, str], tmp_path: Path
) -> None:
    import pty

    web.route("/n", PAGE)
    _forecasts(engine, web.url + "/n", 40)
    env = _env(tracker_env, tmp_path)
    env.pop("NO_COLOR", None)
    master, slave = pty.openpty()
    try:
        done = subprocess.run(
            [sys.executable, "-m", "tracker", "sweep"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=slave,
            timeout=60,
        )
        os.close(slave)
        shown = b""
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:
                break
            if not chunk:
                break
            shown += chunk
    finally:
        os.close(master)
    assert done.returncode == 0, shown.decode(errors="replace")
    assert b"Checking" in shown and b"100%" in shown
    assert done.stdout.decode().startswith("Checked 40 in ")
    piped = subprocess.run(
        [sys.executable, "-m", "tracker", "sweep"], env=env, capture_output=True, timeout=60
    )
    assert piped.returncode == 0 and piped.stderr == b""
