"""Shared fixtures: every database test runs on a real SQLite file and, where
``TRACKER_TEST_DATABASE_URL`` is set, again on a real PostgreSQL database.

- ``db_url``: a fresh, migrated database per test (a copied SQLite template, or a truncated
  PostgreSQL database private to this xdist worker).
- ``engine``: an engine on it.
- ``cli``: runs ``tracker`` through click's CliRunner against it, with a private config file.
- ``tracker_env``: the environment a subprocess needs to talk to the same database.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from hypothesis import settings
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine, make_url

from predictions.db import make_engine, normalize_url, upgrade_schema

# Property tests explore new random inputs on every local run; CI (`.ci/run` sets
# HYPOTHESIS_PROFILE=ci) runs a fixed set derived from each test, so that a landing does not hang
# on a lucky draw. What an exploring run finds is pinned as a named case.
settings.register_profile("ci", derandomize=True, database=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))

PG_ENV = "TRACKER_TEST_DATABASE_URL"
SHARED = Path(__file__).resolve().parents[1].parent / "shared"
_TABLES = (
    "receipt",
    "ledger",
    "proposal",
    "evidence",
    "check_spec",
    "amendment",
    "estimate",
    "tag",
    "forecast",
    "outbox",
    "login_attempt",
    "web_session",
    "api_token",
    "account",
)


def _backends() -> list[Any]:
    pg_reason = (
        f"PostgreSQL tests skipped: set {PG_ENV} (e.g. postgresql://postgres@127.0.0.1:5432/test)"
    )
    return [
        pytest.param("sqlite", id="sqlite"),
        pytest.param(
            "postgresql",
            id="postgresql",
            marks=[
                pytest.mark.postgresql,
                *([] if os.environ.get(PG_ENV) else [pytest.mark.skip(reason=pg_reason)]),
            ],
        ),
    ]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "postgresql: runs on the real PostgreSQL server")


@pytest.fixture(autouse=True)
def _private_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No test ever reads or writes the real user's config, data or database."""
    monkeypatch.setenv("TRACKER_CONFIG", str(tmp_path / "config" / "config.toml"))
    monkeypatch.setenv("TRACKER_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("TRACKER_FORECASTER", "alice")
    monkeypatch.delenv("TRACKER_DB", raising=False)
    monkeypatch.delenv("TRACKER_SMTP_PASSWORD", raising=False)
    monkeypatch.setenv("NO_COLOR", "1")


def _database_name() -> str:
    """Unique per test run and xdist worker, so parallel runs never share a database."""
    run = os.environ.get("PYTEST_XDIST_TESTRUNUID", "")[:8] or str(os.getpid())
    return f"tracker_test_{run}_{os.environ.get('PYTEST_XDIST_WORKER', 'main')}"


@pytest.fixture(scope="session")
def _sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "template.db"
    engine = make_engine(f"sqlite:///{path}")
    upgrade_schema(engine)
    engine.dispose()  # the last connection to close checkpoints the WAL into the main file
    assert not Path(str(path) + "-wal").exists()
    return path


@pytest.fixture(scope="session")
def _pg_database() -> Iterator[str]:
    base = os.environ.get(PG_ENV)
    if not base:
        pytest.skip(f"PostgreSQL tests skipped: {PG_ENV} is not set")
    url = make_url(normalize_url(base))
    name = _database_name()
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    test_url = url.set(database=name).render_as_string(hide_password=False)
    engine = make_engine(test_url)
    upgrade_schema(engine)
    engine.dispose()
    yield test_url
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def _truncate(url: str) -> None:
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("TRUNCATE " + ", ".join(_TABLES) + " RESTART IDENTITY CASCADE"))
    engine.dispose()


@pytest.fixture(params=_backends())
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, migrated database for this test: SQLite file, or the worker's PostgreSQL."""
    if request.param == "sqlite":
        template = request.getfixturevalue("_sqlite_template")
        path = tmp_path / "tracker.db"
        shutil.copyfile(template, path)
        return f"sqlite:///{path}"
    url = request.getfixturevalue("_pg_database")
    _truncate(url)
    return url


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    """An engine on the test database, disposed afterwards."""
    eng = make_engine(db_url)
    yield eng
    eng.dispose()


@pytest.fixture
def tracker_env(db_url: str) -> dict[str, str]:
    """Environment for running ``tracker`` in a subprocess against the test database."""
    env = dict(os.environ)
    env["TRACKER_DB"] = db_url
    return env


CliInvoke = Callable[..., Result]


@pytest.fixture
def cli(db_url: str) -> CliInvoke:
    """Run ``tracker ARGS`` in-process against the test database; returns click's Result."""
    from tracker.cli import main

    runner = CliRunner()

    def invoke(*args: str, input: str | None = None, env: dict[str, str] | None = None) -> Result:
        full_env = {"TRACKER_DB": db_url, **(env or {})}
        return runner.invoke(main, list(args), input=input, env=full_env, catch_exceptions=False)

    return invoke


def table_counts(engine: Engine) -> dict[str, int]:
    """Row counts of every table: the 'database unchanged' check of bad-input tests."""
    with engine.connect() as conn:
        return {
            t: int(conn.execute(text(f"SELECT COUNT(*) FROM {t}")).scalar() or 0) for t in _TABLES
        }


@pytest.fixture
def counts(engine: Engine) -> Callable[[], dict[str, int]]:
    """A function returning the row count of every table."""
    return lambda: table_counts(engine)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data``, or skip the test with the reason."""
    folder = SHARED / "data"
    if not folder.is_dir():
        pytest.skip(f"real data not found at {folder} (the shared/ folder beside the checkout)")
    return folder
