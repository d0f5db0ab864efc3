"""Benchmark: deciding and queuing the daily reports, and delivering them over SMTP.

Builds a SQLite file with ``--forecasts`` forecasts (half open with due dates spread over the next
and the last year, half resolved) among ``--forecasters`` forecasters, one estimate each, then
times, as medians of ``--runs`` runs:

- ``plan``: :func:`reports.notify.plan_reports` (read everything, decide, render every report);
- ``deliver``: :func:`reports.outbox.deliver` of the queued reports to aiosmtpd (``Sink``
  handler) running in its own process on loopback.

    python bench/notify_bench.py [--forecasts 20000] [--forecasters 50] [--runs 5]

Targets: plan under 5 s for 20,000 forecasts; delivery at least 17 messages/s on loopback (the
daily reports of 1,000 forecasters in under a minute).
"""

from __future__ import annotations

import argparse
import contextlib
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import delete, insert, select

from predictions.db import make_engine, read_session, upgrade_schema, write_session
from predictions.models import Estimate, Forecast, Outbox
from reports.notify import NotifySettings, plan_reports, queue_reports
from reports.outbox import SmtpTransport, deliver

NOW = datetime(2026, 5, 5, 9, 0)
PLAN_TARGET_S = 5.0
#: 1,000 forecasters' daily reports in under a minute.
DELIVER_TARGET_PER_S = 17.0


def build(url: str, forecasts: int, forecasters: int) -> None:
    """Fill the database straight through the tables (the ledger plays no part in notify)."""
    engine = make_engine(url)
    upgrade_schema(engine)
    rows, estimates = [], []
    for i in range(1, forecasts + 1):
        resolved = i % 2 == 0
        due = NOW + timedelta(hours=(i * 7919) % (365 * 24) - (180 * 24 if resolved else 90 * 24))
        author = f"forecaster{i % forecasters}"
        rows.append(
            {
                "id": i,
                "title": f"Question {i}: will provincial AI cluster {i} be announced?",
                "criteria": "Resolves YES if the provincial government announces it.",
                "due": due,
                "created_at": NOW - timedelta(days=400),
                "author": author,
                "status": "resolved" if resolved else "open",
                "outcome": (i % 3 == 0) if resolved else None,
                "resolved_at": min(due, NOW - timedelta(hours=1)) if resolved else None,
                "resolved_by": author if resolved else None,
            }
        )
        estimates.append(
            {
                "forecast_id": i,
                "forecaster": author,
                "probability": 0.05 + (i % 90) / 100,
                "made_at": NOW - timedelta(days=399),
            }
        )
    with write_session(engine) as session:
        session.execute(insert(Forecast), rows)
        session.execute(insert(Estimate), estimates)
    engine.dispose()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_listening(port: int) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
            return
        time.sleep(0.1)
    raise SystemExit("the aiosmtpd server did not start")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--forecasts", type=int, default=20_000)
    parser.add_argument("--forecasters", type=int, default=50)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()

    settings = NotifySettings(
        recipients=("me@example.org",),
        sender="tracker@example.org",
        tz=ZoneInfo("Europe/Berlin"),
        # each forecaster reads their own inbox: one report per forecaster
        addresses={f"forecaster{i}": f"forecaster{i}@example.org" for i in range(args.forecasters)},
    )
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        build(url, args.forecasts, args.forecasters)
        engine = make_engine(url)
        plan_times, deliver_rates, queued, sizes = [], [], 0, [0]
        port = _free_port()
        server = subprocess.Popen(  # its own process: the server must not share our GIL
            [
                sys.executable,
                "-m",
                "aiosmtpd",
                "-n",
                "-l",
                f"127.0.0.1:{port}",
                "-c",
                "aiosmtpd.handlers.Sink",
            ],
        )
        try:
            _wait_listening(port)
            for _ in range(args.runs):
                with write_session(engine) as session:
                    session.execute(delete(Outbox))
                started = time.perf_counter()
                with read_session(engine) as session:
                    plan_reports(session, settings, NOW)
                plan_times.append(time.perf_counter() - started)
                with write_session(engine) as session:
                    queued = len(queue_reports(session, settings, NOW))
                transport = SmtpTransport("127.0.0.1", port, security="none", timeout=10)
                started = time.perf_counter()
                report = deliver(engine, transport, sender=settings.sender, worker="bench", now=NOW)
                elapsed = time.perf_counter() - started
                assert len(report.sent) == queued, report.errors
                with read_session(engine) as session:
                    sizes = [len(b) for b in session.scalars(select(Outbox.body_text))]
                deliver_rates.append(queued / elapsed)
        finally:
            server.terminate()
            server.wait()
        engine.dispose()
    plan = statistics.median(plan_times)
    rate = statistics.median(deliver_rates)
    print(
        f"{args.forecasts} forecasts, {args.forecasters} forecasters, {queued} reports, "
        f"median of {args.runs} runs; plain-text bodies {min(sizes)}-{max(sizes)} bytes"
    )
    print(
        f"plan:    {plan:.2f} s (target < {PLAN_TARGET_S:.0f} s) {'OK' if plan < PLAN_TARGET_S else 'SLOW'}"
    )
    print(
        f"deliver: {rate:.0f} messages/s over SMTP on loopback "
        f"(target >= {DELIVER_TARGET_PER_S:.0f}) {'OK' if rate >= DELIVER_TARGET_PER_S else 'SLOW'}"
    )


if __name__ == "__main__":
    main()
