"""The Alembic migrations and the models describe the same schema, on both databases."""

from __future__ import annotations

from datetime import datetime

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text
from sqlalchemy.engine import Engine

from predictions.db import SCHEMA_REVISION, schema_revision
from predictions.models import Base


def test_migrations_head_is_the_revision_the_code_expects() -> None:
    config = Config()
    config.set_main_option("script_location", "predictions:migrations")
    assert ScriptDirectory.from_config(config).get_current_head() == SCHEMA_REVISION


def test_migrations_match_the_models(engine: Engine) -> None:
    assert schema_revision(engine) == SCHEMA_REVISION
    with engine.connect() as conn:
        diff = compare_metadata(
            MigrationContext.configure(conn, opts={"compare_type": False}), Base.metadata
        )
    assert diff == []


def test_migration_0002_adds_due_zone_and_keeps_the_rows_both_ways(engine: Engine) -> None:
    """Down to 0001 and up again, with a forecast in the table: the rows stay, the new column
    comes back empty (a date-only due from before is shown as before)."""
    from predictions import store
    from predictions.db import upgrade_schema, write_session
    from predictions.validation import Due

    with write_session(engine) as session:
        due = Due(datetime(2030, 12, 31, 23, 59, 59), "UTC")
        store.add_forecast(session, title="t", criteria="c", due=due, author="alice")
    with engine.connect() as conn:
        assert conn.execute(text("SELECT due_zone FROM forecast")).all() == [("UTC",)]
    config = Config()
    config.set_main_option("script_location", "predictions:migrations")
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, "0001_initial")
    assert schema_revision(engine) == "0001_initial"
    with engine.connect() as conn:
        assert "due_zone" not in {c["name"] for c in inspect(conn).get_columns("forecast")}
        assert conn.execute(text("SELECT title FROM forecast")).all() == [("t",)]
    upgrade_schema(engine)
    assert schema_revision(engine) == SCHEMA_REVISION
    with engine.connect() as conn:
        assert conn.execute(text("SELECT title, due_zone FROM forecast")).all() == [("t", None)]
