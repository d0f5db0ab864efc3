"""Alembic environment: runs on the connection handed in by :func:`predictions.db.upgrade_schema`."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from predictions.models import Base

config = context.config
target_metadata = Base.metadata


def _run(connection: object) -> None:
    context.configure(
        connection=connection,  # type: ignore[arg-type]
        target_metadata=target_metadata,
        render_as_batch=True,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


connection = config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:
    url = config.get_main_option("sqlalchemy.url")
    if not url:
        raise SystemExit("set sqlalchemy.url or pass a connection")
    with create_engine(url).begin() as conn:
        _run(conn)
