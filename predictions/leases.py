"""Claims with a lease, and the backoff schedule: the one definition the sweep (checks) and the
outbox (messages) share.

**Claims.** A leased table has ``claimed_by`` and ``claimed_until`` columns. :func:`claim` takes up
to ``limit`` rows for a worker in one writing transaction: the rows are chosen among those whose
lease is free or expired and marked with the worker's name and ``now + lease``. Claimers are
serialised: on SQLite the writing transaction begins IMMEDIATE (one writer at a time); on
PostgreSQL the chosen rows are locked with ``SELECT ... FOR UPDATE SKIP LOCKED``, so concurrent
claimers take disjoint rows without waiting for each other. A worker records its result only while
:func:`held` still names it (the row locked on PostgreSQL until the recording commits), then
:func:`release` frees the row; a worker that dies leaves its claims to expire, and another worker
takes them over. So however many workers share a database, no row is done twice.

**Backoff.** After the n-th consecutive failure a row waits ``base * 2**(n - 1)``, at most
``cap``, and never less than ``at_least`` (a permanent error's longer wait, a server's
``Retry-After``). The sweep uses 5 minutes doubling to a day; the outbox 1 minute doubling to an
hour.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Row, Select, Table, or_, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from predictions.db import is_postgres, write_session

__all__ = ["backoff", "claim", "free", "held", "release", "worker_name"]


def worker_name() -> str:
    """``host:pid:random``: who holds a lease, unique per call."""
    return f"{socket.gethostname()[:100]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def free(table: Table, now: datetime) -> ColumnElement[bool]:
    """The rows of ``table`` nobody holds at ``now``: never claimed, released, or expired."""
    return or_(table.c.claimed_until.is_(None), table.c.claimed_until < now)


def claim(
    engine: Engine,
    table: Table,
    query: Select[Any],
    *,
    worker: str,
    lease: timedelta,
    limit: int,
    now: datetime,
) -> list[Row[Any]]:
    """Claim up to ``limit`` rows of ``table`` for ``worker`` until ``now + lease``.

    ``query`` selects the candidates, in the order to take them, its first column being the
    table's ``id`` (it may join other tables and select what the worker needs); only free rows
    are taken. Returns the claimed rows of ``query``. See the module docstring.
    """
    query = query.where(free(table, now)).limit(limit)
    if is_postgres(engine):
        query = query.with_for_update(skip_locked=True, of=table)
    with write_session(engine) as session:
        conn = session.connection()
        rows = list(conn.execute(query))
        if not rows:
            return []
        chosen = [row[0] for row in rows]
        done = conn.execute(
            update(table)
            .where(table.c.id.in_(chosen), free(table, now))
            .values(claimed_by=worker, claimed_until=now + lease)
        )
        if done.rowcount != len(chosen):
            # The rows were chosen in this very transaction (SQLite: the one writer; PostgreSQL:
            # their locks held), so all are claimed; were a database to disagree, only the rows
            # marked with this worker's name are taken.
            mine = set(
                conn.scalars(
                    select(table.c.id).where(table.c.id.in_(chosen), table.c.claimed_by == worker)
                )
            )
            rows = [row for row in rows if row[0] in mine]
        return rows


def held(session: Session, table: Table, ids: Iterable[int], worker: str) -> set[int]:
    """Which of ``ids`` ``worker`` still holds (an expired lease nobody took over still counts).

    On PostgreSQL those rows stay locked until the session's transaction ends, so the worker
    records its results before anyone can take the rows over.
    """
    query = select(table.c.id).where(table.c.id.in_(list(ids)), table.c.claimed_by == worker)
    if is_postgres(session.get_bind()):  # type: ignore[arg-type]
        query = query.with_for_update()
    return set(session.scalars(query))


def release(session: Session, table: Table, ids: Sequence[int], worker: str) -> None:
    """Free the rows of ``ids`` that ``worker`` holds (its work on them is recorded)."""
    if ids:
        session.execute(
            update(table)
            .where(table.c.id.in_(list(ids)), table.c.claimed_by == worker)
            .values(claimed_by=None, claimed_until=None)
            .execution_options(synchronize_session=False)
        )


def backoff(
    failures: int, *, base: timedelta, cap: timedelta, at_least: timedelta = timedelta(0)
) -> timedelta:
    """The wait after the ``failures``-th consecutive failure: ``base`` doubled per failure after
    the first, at most ``cap``, at least ``at_least``.

    >>> [backoff(n, base=timedelta(minutes=1), cap=timedelta(hours=1)).seconds for n in (1, 2, 7)]
    [60, 120, 3600]
    """
    steps = min(max(failures - 1, 0), 30)
    return max(min(cap, base * 2**steps), at_least)
