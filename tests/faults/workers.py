"""Helpers for the crash and concurrency tests: ``tracker`` in a subprocess with a config file
(short leases, loopback allowed, .eml outbox), forecasts with page checks, queued messages, and
the checks every test makes afterwards."""

from __future__ import annotations

import email
import os
import subprocess
import sys
from datetime import datetime
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from predictions import ledger, store
from predictions.checks import add_checks
from predictions.db import read_session, write_session
from predictions.models import Check, Evidence, Outbox
from reports.mail import Rendered
from reports.outbox import queue
from resolvers import validate_check

__all__ = [
    "add_checked_forecasts",
    "assert_each_check_done_once",
    "assert_each_message_written_once",
    "assert_verifies",
    "queue_messages",
    "start",
    "write_config",
]

TRACKER = [sys.executable, "-m", "tracker"]
PAGE = "<html><body><p>国务院发布人工智能失控风险国家标准</p></body></html>"


def write_config(folder: Path, lease: int = 1) -> Path:
    """A config file: loopback sources allowed, short leases, mail as .eml files in folder/mail."""
    path = folder / "config.toml"
    path.write_text(
        f"""
[resolvers]
allowed_networks = "127.0.0.0/8"
lease_seconds = {lease}
concurrency = 4
timeout = 10.0

[email]
to = "alice@example.org"
from = "tracker@example.org"
outbox_dir = "{folder / "mail"}"
lease_seconds = {lease}
""",
        encoding="utf-8",
    )
    return path


def start(command: str, db_url: str, config: Path) -> subprocess.Popen[bytes]:
    """``tracker COMMAND --json`` in a new process."""
    env = {**os.environ, "TRACKER_DB": db_url, "TRACKER_CONFIG": str(config)}
    env.pop("TRACKER_DEBUG", None)
    return subprocess.Popen(
        [*TRACKER, command, "--json"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def add_checked_forecasts(engine: Engine, url: str, n: int, start_at: int = 0) -> list[int]:
    """``n`` forecasts, each with a page check on ``url``; returns the check ids."""
    ids = []
    with write_session(engine) as s:
        for i in range(start_at, start_at + n):
            f = store.add_forecast(
                s,
                title=f"Standard {i}",
                criteria="Resolves YES if the page says so.",
                due=datetime(2030, 1, 1),
                author="alice",
                probability=0.5,
            )
            [check] = add_checks(
                s, f, [validate_check({"kind": "page", "url": url, "contains": "失控"})]
            )
            ids.append(check.id)
    return ids


def queue_messages(engine: Engine, n: int, start_at: int = 0) -> None:
    """``n`` messages in the outbox, each with its own dedupe key."""
    with write_session(engine) as s:
        for i in range(start_at, start_at + n):
            queue(
                s,
                dedupe_key=f"fault:{i}",
                kind="daily",
                recipients=["alice@example.org"],
                sender="tracker@example.org",
                message=Rendered(subject=f"report {i}", text=f"text {i}\n", html=f"<p>{i}</p>"),
            )


def assert_verifies(engine: Engine) -> None:
    """The ledger and the receipts chain verify against every table."""
    with read_session(engine) as s:
        report = ledger.verify(s)
    assert report.ok, report.problem


def assert_each_check_done_once(engine: Engine, check_ids: list[int]) -> None:
    """Every check has exactly one evidence row, a verdict, and no claim left."""
    with read_session(engine) as s:
        done = dict(
            s.execute(select(Evidence.check_id, func.count()).group_by(Evidence.check_id)).all()
        )
        verdicts = set(s.scalars(select(Evidence.verdict)))
        claimed = s.scalar(select(func.count()).where(Check.claimed_by.is_not(None)))
    wrong = {c: done.get(c, 0) for c in check_ids if done.get(c, 0) != 1}
    assert wrong == {}, f"checks done other than once (check: times): {wrong}"
    assert verdicts == {"yes"}
    assert claimed == 0


def assert_each_message_written_once(engine: Engine, folder: Path) -> None:
    """Every outbox row is marked sent and has exactly one .eml file; no partial file is left."""
    with read_session(engine) as s:
        rows = s.execute(select(Outbox.message_id, Outbox.sent_at, Outbox.failed_at)).all()
    assert rows and all(sent is not None and failed is None for _m, sent, failed in rows)
    files = sorted(folder.glob("*.eml"))
    ids = [email.message_from_bytes(f.read_bytes())["Message-ID"] for f in files]
    assert sorted(ids) == sorted(m for m, _s, _f in rows)
    assert not list(folder.glob("*.tmp"))
