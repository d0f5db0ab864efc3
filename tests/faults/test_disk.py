"""Disk full and read-only databases: a clear ``Error:`` line, exit 1, no traceback, and nothing
written (the file's bytes are unchanged, or every table's row count is).

Read-only cases run ``tracker`` in a subprocess as an unprivileged user (``setpriv`` when the tests
run as root, who ignores file modes): a read-only SQLite file, and a writable file in a read-only
folder. A full disk is SQLite's own ``database or disk is full``: every connection of the test
process gets ``PRAGMA max_page_count`` just above the file's size.
"""

from __future__ import annotations

import functools
import hashlib
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.engine import Engine

from predictions.db import make_engine, upgrade_schema
from tests.conftest import CliInvoke, table_counts
from tests.faults.workers import (
    PAGE,
    add_checked_forecasts,
    assert_verifies,
    queue_messages,
    write_config,
)
from tests.resolvers.loopback import Loopback

BIG_IMPORT = "".join(
    f"""
[[forecast]]
ref = "disk:{i}"
title = "Forecast number {i} about a long subject {"x" * 200}"
criteria = "Resolves YES if it happens. {"y" * 400}"
due = 2031-01-01
probability = "40%"
tags = ["disk", "full"]
"""
    for i in range(400)
)

WRITES: list[tuple[str, list[str]]] = [
    (
        "add",
        [
            "add",
            "Read-only test",
            "--criteria",
            "Resolves YES.",
            "--due",
            "2030-01-01",
            "-p",
            "0.5",
        ],
    ),
    ("import", ["import", "{folder}/big.toml"]),
    ("sweep", ["sweep"]),
    ("notify", ["notify"]),
    ("resolve", ["resolve", "1", "yes", "--note", "seen"]),
]


def _limit(dbapi_conn: Any, _record: Any) -> None:
    """Every new SQLite connection may grow the file by three pages only: a full disk."""
    if isinstance(dbapi_conn, sqlite3.Connection):
        pages = dbapi_conn.execute("PRAGMA page_count").fetchone()[0]
        dbapi_conn.execute(f"PRAGMA max_page_count = {pages + 3}")


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


_SETPRIV = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]


def _unprivileged() -> list[str]:
    if os.geteuid() != 0:
        return []
    if shutil.which("setpriv") is None:
        pytest.skip("running as root without setpriv: file modes cannot be tested")
    if not _unprivileged_can_run():
        pytest.skip(
            f"user 65534 cannot run {sys.executable} -m tracker: a folder above the checkout "
            "or the venv is not readable by others (e.g. a clone inside `mktemp -d`)"
        )
    return _SETPRIV


@functools.cache
def _unprivileged_can_run() -> bool:
    probe = subprocess.run(
        [*_SETPRIV, sys.executable, "-c", "import tracker.cli"], capture_output=True, timeout=60
    )
    return probe.returncode == 0


@pytest.fixture
def ro_folder() -> Iterator[Path]:
    """A SQLite database with checks and a queued message, in a folder anyone may enter."""
    folder = Path(tempfile.mkdtemp(prefix="tracker-ro-"))
    folder.chmod(0o777)
    yield folder
    folder.chmod(0o700)
    shutil.rmtree(folder, ignore_errors=True)


def _prepare(folder: Path, web: Loopback) -> Path:
    path = folder / "tracker.db"
    engine = make_engine(f"sqlite:///{path}")
    upgrade_schema(engine)
    add_checked_forecasts(engine, web.url + "/page", 3)
    queue_messages(engine, 2)
    engine.dispose()
    (folder / "big.toml").write_text(BIG_IMPORT, encoding="utf-8")
    mail = folder / "mail"
    mail.mkdir()
    mail.chmod(0o777)
    config = write_config(folder)
    config.chmod(0o644)
    (folder / "big.toml").chmod(0o644)
    return path


def _run(args: list[str], path: Path, folder: Path) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "TRACKER_DB": f"sqlite:///{path}",
        "TRACKER_CONFIG": str(folder / "config.toml"),
        "HOME": str(folder),
    }
    env.pop("TRACKER_DEBUG", None)
    argv = [a.format(folder=folder) for a in args]
    return subprocess.run(
        [*_unprivileged(), sys.executable, "-m", "tracker", *argv],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def _assert_refused(result: subprocess.CompletedProcess[str], hint: str) -> None:
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith("Error: "), result.stderr
    assert hint in lines[-1], lines[-1]


@pytest.mark.parametrize(("name", "args"), WRITES, ids=[w[0] for w in WRITES])
def test_disk_read_only_file_refuses_every_write(
    ro_folder: Path, name: str, args: list[str]
) -> None:
    with Loopback() as web:
        web.route("/page", PAGE)
        path = _prepare(ro_folder, web)
        path.chmod(0o444)
        before = _sha(path)
        result = _run(args, path, ro_folder)
    _assert_refused(result, "read-only")
    assert _sha(path) == before
    assert not list((ro_folder / "mail").glob("*.eml")) or name == "notify"


@pytest.mark.parametrize(("name", "args"), WRITES, ids=[w[0] for w in WRITES])
def test_disk_read_only_folder_refuses_every_write(
    ro_folder: Path, name: str, args: list[str]
) -> None:
    with Loopback() as web:
        web.route("/page", PAGE)
        path = _prepare(ro_folder, web)
        path.chmod(0o666)
        ro_folder.chmod(0o555)
        before = _sha(path)
        try:
            result = _run(args, path, ro_folder)
        finally:
            ro_folder.chmod(0o777)
    _assert_refused(result, "read-only")
    assert _sha(path) == before


@pytest.mark.parametrize("name", ["import", "sweep"])
def test_disk_full_refuses_the_write_whole(
    engine: Engine, cli: CliInvoke, tmp_path: Path, name: str
) -> None:
    if engine.dialect.name != "sqlite":
        pytest.skip("a full disk is simulated with SQLite's max_page_count")
    with Loopback() as web:
        web.route("/page", PAGE * 200)
        add_checked_forecasts(engine, web.url + "/page", 60)
        (tmp_path / "big.toml").write_text(BIG_IMPORT, encoding="utf-8")
        config = write_config(tmp_path)
        engine.dispose()
        before = table_counts(engine)
        engine.dispose()
        request = {"import": ["import", str(tmp_path / "big.toml")], "sweep": ["sweep"]}[name]
        event.listen(Engine, "connect", _limit)
        try:
            result = cli(*request, env={"TRACKER_CONFIG": str(config)})
        finally:
            event.remove(Engine, "connect", _limit)
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    assert "Error: database: database or disk is full" in result.output, result.output
    after = table_counts(engine)
    if name == "import":
        assert after == before
    else:  # batches recorded before the disk filled stay; nothing is half-written
        assert after["evidence"] == after["receipt"] - before["receipt"]
    assert_verifies(engine)
