"""The CLI's fast path: the store over a bare sqlite3 connection, without importing SQLAlchemy."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from freezegun import freeze_time

from predictions import lite, records, store
from predictions.db import make_engine, read_session, upgrade_schema, write_session
from predictions.errors import InputError
from predictions.ledger import verify


@pytest.fixture
def path(tmp_path: Path) -> Path:
    """A migrated SQLite file."""
    file = tmp_path / "t.db"
    engine = make_engine(f"sqlite:///{file}")
    upgrade_schema(engine)
    engine.dispose()
    return file


@pytest.fixture
def conn(path: Path) -> Iterator[sqlite3.Connection]:
    c = lite.connect(path)
    assert c is not None
    yield c
    c.close()


_EVERYDAY = """
import json, sys
from click.testing import CliRunner
from tracker.cli import main
out = []
for args in json.loads(sys.argv[1]):
    result = CliRunner().invoke(main, args, catch_exceptions=False)
    assert result.exit_code == 0, (args, result.output)
    out.append(result.stdout)
print(json.dumps({"sqlalchemy": "sqlalchemy" in sys.modules, "numpy": "numpy" in sys.modules,
                  "out": out}))
"""


def run_in_fresh_process(path: Path, commands: list[list[str]]) -> dict[str, Any]:
    """Run CLI commands on the SQLite file ``path`` in a new interpreter; their outputs, and
    whether SQLAlchemy and numpy were imported on the way."""
    done = subprocess.run(
        [sys.executable, "-c", _EVERYDAY, json.dumps(commands)],
        env=dict(os.environ, TRACKER_DB=f"sqlite:///{path}"),
        capture_output=True,
        text=True,
        check=True,
    )
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def test_lite_everyday_commands_run_without_importing_sqlalchemy(path: Path) -> None:
    commands = [
        ["add", "Qwen4 open weights", "-p", "70%", "--due", "2030-06-30", "--criteria", "c",
         "--tag", "china"],
        ["update", "1", "-p", "0.6", "--by", "bob", "--note", "slower"],
        ["list", "--tag", "china"],
        ["show", "1"],
        ["resolve", "1", "yes", "--note", "released"],
        ["list", "--status", "resolved", "--json"],
    ]  # fmt: skip
    result = run_in_fresh_process(path, commands)
    assert result["sqlalchemy"] is False
    assert "Added forecast 1" in result["out"][0]
    assert "bob 60%" in result["out"][1]
    assert "Qwen4" in result["out"][2] and "60%" in result["out"][3]
    [listed] = json.loads(result["out"][5])
    assert (listed["status"], listed["outcome"], listed["probability"]) == ("resolved", True, 0.7)
    assert listed["others"]["latest"] == {"bob": 0.6}
    engine = make_engine(f"sqlite:///{path}")
    with read_session(engine) as s:
        report = verify(s)
        assert report.ok and report.entries == 4, report.problem
        assert records.forecast_record(store.get_forecast(s, 1)) == listed


def test_lite_writes_the_rows_a_session_reads_back(conn: sqlite3.Connection, path: Path) -> None:
    with freeze_time("2026-11-23 09:00:00.123456"), lite.transaction(conn, write=True):
        f = store.add_forecast(
            conn, title="AI law 人工智能法", criteria="The NPC passes.\nSecond line.",
            due=datetime(2028, 12, 31, 23, 59, 59), author="alice", probability=0.25,
            tags=["china", "LLM"], source="https://example.org/a", note="base rate",
        )  # fmt: skip
        store.add_estimate(conn, f.id, "bob", 0.4)
        store.amend(conn, f.id, "due", datetime(2029, 1, 1), by="alice", note="later")
        store.annul(conn, f.id, by="alice", note="moot")
    with lite.transaction(conn, write=False):
        fast = records.forecast_record(store.get_forecast(conn, f.id), full=True)
    engine = make_engine(f"sqlite:///{path}")
    with read_session(engine) as s:
        assert records.forecast_record(store.get_forecast(s, f.id), full=True) == fast
        assert verify(s).ok
    assert fast["due"] == "2029-01-01T00:00:00.000000Z" and fast["tags"] == ["china", "llm"]
    # Times are stored as SQLAlchemy stores them on SQLite.
    assert conn.execute("SELECT made_at FROM estimate WHERE id = 1").fetchone() == (
        "2026-11-23 09:00:00.123456",
    )


@pytest.mark.parametrize("status", records.LIST_STATUSES)
@pytest.mark.parametrize(
    ("tag", "by", "limit"),
    [(None, None, 100), ("CHINA", None, None), (None, "bob", 1), (None, None, 2)],
)
def test_lite_list_filters_as_through_a_session(
    conn: sqlite3.Connection, path: Path, status: str, tag: str | None, by: str | None, limit: int
) -> None:
    with freeze_time("2026-01-01 12:00:00"), lite.transaction(conn, write=True):
        for i in range(6):
            f = store.add_forecast(
                conn, title=f"Q{i}", criteria="c", due=datetime(2026, 1, 2 + i * 3),
                author="alice", probability=0.1 + i / 10, tags=["china"] if i % 2 else [],
            )  # fmt: skip
            if i % 3 == 0:
                store.add_estimate(conn, f, "bob", 0.5)
        store.resolve(conn, 2, True, by="alice")
        store.annul(conn, 3, by="alice", note="moot")
        store.withdraw(conn, 6, by="alice", note="a test entry")
    query = records.ForecastQuery(status=status, tag=tag, by=by, limit=limit)
    now = datetime(2026, 1, 6)
    got = [records.forecast_record(f) for f in store.list_forecasts(conn, query, now=now)]
    with read_session(make_engine(f"sqlite:///{path}")) as s:
        assert got == [records.forecast_record(f) for f in store.list_forecasts(s, query, now=now)]
        assert store.count_forecasts(conn, query, now=now) == store.count_forecasts(
            s, query, now=now
        )
    expected = {
        "open": {1, 4, 5}, "due": {4}, "overdue": {1}, "resolved": {2}, "annulled": {3},
        "withdrawn": {6}, "all": {1, 2, 3, 4, 5},
    }[status]  # fmt: skip
    if tag:
        expected &= {2, 4, 6}
    if by:
        expected &= {1, 4}  # the ones bob estimated
    ids = {r["id"] for r in got}
    assert ids == expected if limit is None or len(expected) <= limit else len(ids) == limit


def test_lite_refuses_bad_input_and_writes_nothing(conn: sqlite3.Connection) -> None:
    good = dict(title="Q", criteria="c", due=datetime(2030, 1, 1), author="a", probability=0.5)
    for bad, field in ((dict(good, title="  "), "title"), (dict(good, probability=1.5), "prob")):
        with pytest.raises(InputError, match=field), lite.transaction(conn, write=True):
            store.add_forecast(conn, **bad)  # type: ignore[arg-type]
    with pytest.raises(InputError, match="due"), lite.transaction(conn, write=True):
        store.add_forecast(conn, **dict(good, due=datetime(2001, 1, 1)))  # type: ignore[arg-type]
    assert conn.execute("SELECT COUNT(*) FROM forecast").fetchone()[0] == 0
    assert conn.execute("SELECT COUNT(*) FROM ledger").fetchone()[0] == 0


def test_lite_connect_declines_files_it_should_not_handle(tmp_path: Path) -> None:
    assert lite.connect(tmp_path / "missing.db") is None
    empty = tmp_path / "empty.db"
    sqlite3.connect(empty).close()
    assert lite.connect(empty) is None
    assert lite.sqlite_file("postgresql://x@h/db") is None
    assert lite.sqlite_file("sqlite:///:memory:") is None
    assert lite.sqlite_file("sqlite:////tmp/a.db") == Path("/tmp/a.db")


def test_list_all_passes_sqlites_standard_variable_limit(
    conn: sqlite3.Connection, path: Path
) -> None:
    """Bug 4: ``tracker list --limit 0`` read the page's estimates with one parameter per id."""
    n = 33_000
    conn.executemany(
        "INSERT INTO forecast (id, title, criteria, due, created_at, author, status) "
        "VALUES (?, 'Q', 'c', '2030-01-01 00:00:00.000000', '2026-01-01 00:00:00.000000', 'a', "
        "'open')",
        [(i,) for i in range(1, n + 1)],
    )
    conn.executemany(
        "INSERT INTO estimate (forecast_id, forecaster, probability, made_at) "
        "VALUES (?, 'a', 0.5, '2026-01-01 00:00:00.000000')",
        [(i,) for i in range(1, n + 1)],
    )
    conn.execute("INSERT INTO tag (forecast_id, name) VALUES (?, 'x')", (n,))
    query = records.ForecastQuery(status="all", limit=None)
    conn.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 32_766)
    listed = store.list_forecasts(conn, query)
    assert len(listed) == n and all(len(f.estimates) == 1 for f in listed)
    assert [t.name for t in listed[-1].tags] == ["x"]
    with write_session(make_engine(f"sqlite:///{path}")) as s:
        raw = s.connection().connection.dbapi_connection
        assert raw is not None
        raw.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 32_766)  # type: ignore[attr-defined]
        assert len(store.list_forecasts(s, query)) == n
