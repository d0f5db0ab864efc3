"""The CLI's fast path: the store over a bare :mod:`sqlite3` connection, without SQLAlchemy.

Importing SQLAlchemy alone costs more than the 300 ms an everyday command (``add``, ``update``,
``list``, ``show``, ``resolve``) may take, so on an existing SQLite file at the current schema the
CLI hands the store (:mod:`predictions.store`, where every write and read is defined once) this
connection instead of a Session. Nothing here decides anything: a database that is not such a file
(PostgreSQL, a file to create or migrate) gets ``None``, and the caller uses a Session.

Connections get the engine's settings (:func:`predictions.db.make_engine`): WAL, foreign keys, a
busy timeout, and a writing transaction that begins IMMEDIATE.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path

from predictions.revision import SCHEMA_REVISION

__all__ = ["close", "connect", "sqlite_file", "transaction"]

_BUSY_TIMEOUT_S = 60


def sqlite_file(url: str) -> Path | None:
    """The file behind a plain ``sqlite:///PATH`` URL (or a bare path), else None."""
    if "://" not in url:
        return Path(url).expanduser().resolve()
    for prefix in ("sqlite:///", "sqlite+pysqlite:///"):
        if url.startswith(prefix):
            rest = url[len(prefix) :]
            if not rest or "?" in rest or rest == ":memory:":
                return None
            return Path(rest)
    return None


def connect(path: Path) -> sqlite3.Connection | None:
    """A connection to an existing SQLite file at the current schema, or None (use a Session).

    In autocommit mode: :func:`transaction` begins and ends the transactions itself.
    """
    if not path.is_file():
        return None
    conn = sqlite3.connect(path, timeout=_BUSY_TIMEOUT_S, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute(f"PRAGMA busy_timeout={_BUSY_TIMEOUT_S * 1000}")
        conn.execute("PRAGMA synchronous=NORMAL")
        row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
    except sqlite3.DatabaseError:
        conn.close()
        return None
    if row is None or row[0] != SCHEMA_REVISION:
        conn.close()
        return None
    return conn


def close(conn: sqlite3.Connection) -> None:
    """Close ``conn``, first letting SQLite gather the table statistics it lacks (``PRAGMA
    optimize``, as SQLite advises before closing: at most once per 25-fold growth of a table).
    Without them it reads ``list``'s first page by sorting every open forecast."""
    with contextlib.suppress(sqlite3.Error):  # e.g. a read-only file: the statistics can wait
        conn.execute("PRAGMA optimize")
    conn.close()


@contextlib.contextmanager
def transaction(conn: sqlite3.Connection, *, write: bool) -> Iterator[sqlite3.Connection]:
    """One transaction on ``conn`` (IMMEDIATE to write), committed at the end of the block and
    rolled back on any error (a read is always rolled back)."""
    conn.execute("BEGIN IMMEDIATE" if write else "BEGIN DEFERRED")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT" if write else "ROLLBACK")
