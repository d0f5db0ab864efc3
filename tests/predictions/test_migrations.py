"""The Alembic migrations and the models describe the same schema, on both databases."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
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
