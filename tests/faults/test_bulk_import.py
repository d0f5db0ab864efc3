"""An import into an empty SQLite file is written through a rollback journal instead of the WAL
(``predictions.db.write_session(bulk=True)``): the journal mode it uses, that WAL mode is back
after success and failure, a full disk, and ``tracker import`` killed at seeded points (each time
the file holds all of the import or none of it, verifies, and is in WAL mode again)."""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, text
from sqlalchemy.engine import Engine

from predictions.db import make_engine, upgrade_schema, write_session
from tests.conftest import CliInvoke, table_counts
from tests.faults.workers import TRACKER, assert_verifies

pytestmark = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


def _mode(path: str) -> str:
    conn = sqlite3.connect(path)
    try:
        return str(conn.execute("PRAGMA journal_mode").fetchone()[0])
    finally:
        conn.close()


def _path(engine: Engine) -> str:
    assert engine.url.database
    return engine.url.database


def _csv(path: Path, n: int) -> None:
    rows = ["ref,title,criteria,due,probability,tags"]
    rows += [
        f"bulk:{i},Bulk question {i},Resolves YES if number {i} comes up.,2031-01-01,{1 + i % 98}%,"
        "bulk"
        for i in range(n)
    ]
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")


def _modes_inside(engine: Engine) -> tuple[str, int]:
    with write_session(engine, bulk=True) as session:
        mode = session.execute(text("PRAGMA journal_mode")).scalar()
        cache = session.execute(text("PRAGMA cache_size")).scalar()
    return str(mode), int(cache or 0)


def test_bulk_write_into_an_empty_file_uses_a_rollback_journal(engine: Engine) -> None:
    engine.dispose()  # no other connection open
    mode, cache = _modes_inside(engine)
    assert (mode, cache) == ("delete", -256 * 1024)
    assert _mode(_path(engine)) == "wal"
    # and WAL mode is back after a failed write too
    with pytest.raises(RuntimeError), write_session(engine, bulk=True) as session:
        session.execute(
            text(
                "INSERT INTO forecast (id, title, criteria, due, created_at, author, status)"
                " VALUES (1, 't', 'c', '2031-01-01', '2026-01-01', 'a', 'open')"
            )
        )
        raise RuntimeError("the import found a problem")
    assert _mode(_path(engine)) == "wal"
    assert table_counts(engine)["forecast"] == 0


def test_bulk_write_keeps_the_wal_when_another_connection_is_open(engine: Engine) -> None:
    other = sqlite3.connect(_path(engine))
    other.execute("SELECT COUNT(*) FROM forecast").fetchone()  # opens the WAL
    try:
        engine.dispose()
        assert _modes_inside(engine)[0] == "wal"
    finally:
        other.close()


def test_bulk_write_keeps_the_wal_when_the_file_holds_forecasts(
    engine: Engine, cli: CliInvoke
) -> None:
    result = cli("add", "One", "--criteria", "Resolves YES.", "--due", "2031-01-01", "-p", "40%")
    assert result.exit_code == 0, result.output
    engine.dispose()
    assert _modes_inside(engine)[0] == "wal"


def test_bulk_import_on_a_full_disk_writes_nothing(
    engine: Engine, cli: CliInvoke, tmp_path: Path
) -> None:
    _csv(tmp_path / "big.csv", 2000)

    def limit(dbapi_conn: Any, _record: Any) -> None:
        if isinstance(dbapi_conn, sqlite3.Connection):
            pages = dbapi_conn.execute("PRAGMA page_count").fetchone()[0]
            dbapi_conn.execute(f"PRAGMA max_page_count = {pages + 20}")

    engine.dispose()
    before = table_counts(engine)
    engine.dispose()
    event.listen(Engine, "connect", limit)
    try:
        result = cli("import", str(tmp_path / "big.csv"))
    finally:
        event.remove(Engine, "connect", limit)
    assert result.exit_code == 1, result.output
    assert "Error: database: database or disk is full" in result.output, result.output
    assert "Traceback" not in result.output
    assert table_counts(engine) == before
    assert _mode(_path(engine)) == "wal"
    assert_verifies(engine)


KILLS = 6


def test_bulk_import_killed_at_seeded_points_is_all_or_nothing(db_url: str, tmp_path: Path) -> None:
    """SIGKILL during the import (reading, writing, committing): the next open rolls a hot
    journal back; the file then holds every forecast or none, verifies, and is in WAL mode."""
    n = 4000
    data = tmp_path / "big.csv"
    _csv(data, n)
    template = tmp_path / "empty.db"
    engine = make_engine(f"sqlite:///{template}")
    upgrade_schema(engine)
    engine.dispose()
    env = {**os.environ, "TRACKER_CONFIG": str(tmp_path / "config.toml")}
    env.pop("TRACKER_DEBUG", None)

    def run(path: Path) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [*TRACKER, "--db", f"sqlite:///{path}", "import", str(data)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )

    # one whole run sets the window: the kills fall from start-up to just past the end
    whole = tmp_path / "whole.db"
    whole.write_bytes(template.read_bytes())
    began = time.monotonic()
    proc = run(whole)
    _out, err = proc.communicate(timeout=120)
    took = time.monotonic() - began
    assert proc.returncode == 0, err.decode()
    rng = random.Random(11)
    outcomes = []
    for k in range(KILLS):
        path = tmp_path / f"kill{k}.db"
        path.write_bytes(template.read_bytes())
        proc = run(path)
        try:
            proc.wait(timeout=rng.uniform(0.3 * took, 1.05 * took))
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=10)
        if proc.stdout:
            proc.stdout.close()
        if proc.stderr:
            proc.stderr.close()
        check = make_engine(f"sqlite:///{path}")  # its first connection rolls a hot journal back
        try:
            forecasts = table_counts(check)["forecast"]
            assert forecasts in (0, n), (k, forecasts)
            assert_verifies(check)
        finally:
            check.dispose()
        assert _mode(str(path)) == "wal"
        assert not Path(str(path) + "-journal").exists()
        outcomes.append((proc.returncode, forecasts))
    # the seeded points landed both before and after the commit
    assert any(code == -signal.SIGKILL for code, _ in outcomes), outcomes
