"""Engines and sessions for SQLite (the embedded default) and PostgreSQL (psycopg 3).

SQLite gets WAL, foreign keys, a busy timeout and ``BEGIN IMMEDIATE`` for writing transactions, so
concurrent writers queue instead of failing half-way. Read-only work can ask for a deferred
transaction with :func:`read_session`. The schema is created and upgraded only by the Alembic
migrations; :func:`ensure_schema` checks the revision cheaply on every start and upgrades a SQLite
file by itself.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import Connection, CursorResult, Engine, make_url
from sqlalchemy.exc import DBAPIError, ProgrammingError
from sqlalchemy.exc import OperationalError as SAOperationalError
from sqlalchemy.orm import Session

from predictions.chain import Executor, stored
from predictions.errors import InputError, SchemaError
from predictions.revision import SCHEMA_REVISION

__all__ = [
    "SCHEMA_REVISION",
    "ensure_schema",
    "executor",
    "is_postgres",
    "is_sqlite",
    "make_engine",
    "normalize_url",
    "read_session",
    "schema_revision",
    "upgrade_schema",
    "write_session",
]


_BUSY_TIMEOUT_S = 60


def normalize_url(url: str) -> str:
    """Accept a path or a URL; route ``postgres://``/``postgresql://`` through psycopg 3."""
    if "://" not in url:
        return "sqlite:///" + str(Path(url).expanduser().resolve())
    try:
        parsed = make_url(url)
    except Exception as exc:
        raise InputError("database URL", url, "sqlite:///PATH or postgresql://...") from exc
    driver = parsed.drivername
    if driver in ("postgres", "postgresql"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    elif driver not in ("sqlite", "sqlite+pysqlite", "postgresql+psycopg"):
        raise InputError("database URL", url, "a sqlite:/// or postgresql:// URL")
    return parsed.render_as_string(hide_password=False)


def is_sqlite(engine: Engine) -> bool:
    """True when the engine talks to SQLite."""
    return engine.dialect.name == "sqlite"


def is_postgres(engine: Engine) -> bool:
    """True when the engine talks to PostgreSQL."""
    return engine.dialect.name == "postgresql"


def make_engine(url: str, **kwargs: Any) -> Engine:
    """Create an engine for ``url`` with the tracker's connection settings.

    For SQLite the parent folder is created, and every connection gets WAL, foreign keys and a busy
    timeout; transactions begin IMMEDIATE unless the connection asks for a deferred one.
    """
    url = normalize_url(url)
    if url.startswith("sqlite"):
        db_path = make_url(url).database
        if db_path and db_path != ":memory:":
            Path(db_path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url, connect_args={"timeout": _BUSY_TIMEOUT_S, "isolation_level": None}, **kwargs
        )
        _configure_sqlite(engine)
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    return create_engine(url, **kwargs)


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={_BUSY_TIMEOUT_S * 1000}")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        mode = conn.get_execution_options().get("tracker_begin", "IMMEDIATE")
        conn.exec_driver_sql(f"BEGIN {mode}")


@contextlib.contextmanager
def write_session(engine: Engine, *, bulk: bool = False) -> Iterator[Session]:
    """A session in one writing transaction: committed on success, rolled back on any error.

    ``bulk``: a write of many rows (an import). Into an empty SQLite file that no other connection
    has open, it is written through a rollback journal and a large page cache instead of the WAL
    (see :func:`_bulk_journal`).
    """
    if bulk and is_sqlite(engine):
        with (
            engine.connect() as conn,
            _bulk_journal(conn),
            Session(conn, expire_on_commit=False) as session,
            session.begin(),
        ):
            yield session
        return
    with Session(engine, expire_on_commit=False) as session, session.begin():
        yield session


#: The page cache of a bulk write into an empty SQLite file, in KiB (SQLite's default is 2 MB).
_BULK_CACHE_KIB = 256 * 1024


@contextlib.contextmanager
def _bulk_journal(conn: Any) -> Iterator[None]:
    """A bulk write into an empty SQLite file: a rollback journal and a big page cache.

    Through the WAL every page is written twice (to the WAL, then by the checkpoint to the file)
    and synced twice. Pages added to a file need no journal, so into an empty file a rollback
    journal writes them once, and with a cache that holds them, once at commit (the 100,000
    forecast bench: about 2 s less). Crash safety is the same: SQLite's atomic commit holds in
    either mode, and an interrupted write is rolled back from the journal on the next open.

    Only when the file holds no forecast and no other connection has it open (SQLite refuses to
    leave WAL mode otherwise, and then nothing changes). Other processes that open the file
    meanwhile wait for the write to end (the busy timeout), as they would for a schema upgrade;
    with the file empty there was nothing for them to read. WAL mode is set back at the end.
    """
    raw = conn.connection.dbapi_connection  # sqlite3, in autocommit mode: PRAGMAs take effect
    switched = False
    if raw.execute("SELECT 1 FROM forecast LIMIT 1").fetchone() is None:
        try:
            mode = raw.execute("PRAGMA journal_mode=DELETE").fetchone()
        except sqlite3.OperationalError:  # "database is locked": another connection has it open
            mode = None
        switched = bool(mode) and str(mode[0]).lower() == "delete"
    if not switched:
        yield
        return
    (cache,) = raw.execute("PRAGMA cache_size").fetchone()
    raw.execute(f"PRAGMA cache_size=-{_BULK_CACHE_KIB}")
    try:
        yield
    finally:
        raw.execute(f"PRAGMA cache_size={int(cache)}")
        # Back to WAL. Should another process hold the file just now, its own connection asked
        # for WAL already (every connection of the tracker does), and the write stands either way.
        with contextlib.suppress(sqlite3.OperationalError):
            raw.execute("PRAGMA journal_mode=WAL")


@contextlib.contextmanager
def read_session(engine: Engine) -> Iterator[Session]:
    """A session in a read-only (deferred, on SQLite) transaction, always rolled back."""
    bind = engine.execution_options(tracker_begin="DEFERRED") if is_sqlite(engine) else engine
    # close() (not rollback()) ends the transaction without expiring what was loaded, so records
    # read here stay usable after the block.
    with Session(bind, expire_on_commit=False) as session:
        yield session


class _SQLAlchemyExecutor:
    """An :class:`~predictions.chain.Executor` over a SQLAlchemy connection (``text()`` takes
    the same ``:name`` parameters as :mod:`sqlite3`)."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.dialect = conn.dialect.name

    def execute(
        self, sql: str, params: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None = None
    ) -> CursorResult[Any]:
        if self.dialect == "sqlite" and params is not None:  # datetimes as SQLAlchemy stores them
            params = stored(params) if isinstance(params, Mapping) else [stored(p) for p in params]
        return self.conn.execute(text(sql), params)


def executor(bind: Session | Connection) -> Executor:
    """The plain-SQL executor of a session's (or a connection's) current transaction.

    A session is flushed first, so that the SQL sees what the session holds.
    """
    if isinstance(bind, Session):
        bind.flush()
        bind = bind.connection()
    return _SQLAlchemyExecutor(bind)


def schema_revision(engine: Engine) -> str | None:
    """The Alembic revision the database is at, or None for an empty database."""
    try:
        with engine.connect() as conn:
            return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    except (SAOperationalError, ProgrammingError) as exc:
        message = str(exc.orig) if isinstance(exc, DBAPIError) else str(exc)
        if "alembic_version" in message and (
            "no such table" in message or "does not exist" in message
        ):
            return None
        hint = ""
        if "readonly" in message or "read-only" in message:
            hint = (
                " (the database file or its folder is read-only; SQLite also writes the -wal and"
                " -shm files beside the database)"
            )
        raise SchemaError(f"cannot open the database: {_first_line(message)}{hint}") from exc


def upgrade_schema(engine: Engine, revision: str = "head") -> None:
    """Run the Alembic migrations up to ``revision`` (batch mode on SQLite)."""
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", "predictions:migrations")
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, revision)


def ensure_schema(engine: Engine, *, auto_upgrade: bool | None = None) -> None:
    """Make sure the database is at :data:`SCHEMA_REVISION`.

    A SQLite database (or any empty database when ``auto_upgrade`` is true) is migrated on the
    spot; otherwise a database behind the code raises :class:`SchemaError` telling the user to run
    ``tracker db upgrade``.
    """
    current = schema_revision(engine)
    if current == SCHEMA_REVISION:
        return
    if auto_upgrade is None:
        auto_upgrade = is_sqlite(engine)
    if auto_upgrade:
        upgrade_schema(engine)
        return
    where = engine.url.render_as_string(hide_password=True)
    if current is None:
        raise SchemaError(f"no tracker schema in {where}; run `tracker db upgrade`")
    raise SchemaError(
        f"the database {where} is at schema {current}, this tracker expects {SCHEMA_REVISION}; "
        "run `tracker db upgrade`"
    )


def _first_line(message: str) -> str:
    return message.strip().splitlines()[0] if message.strip() else message
