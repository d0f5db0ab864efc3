"""Claims with a lease (``predictions.leases``), on SQLite and PostgreSQL: racing claimers take
disjoint rows, an expired lease is taken over and its first holder loses it, and the backoff
schedule."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, insert, select
from sqlalchemy.engine import Engine

from predictions import leases
from predictions.db import make_engine, read_session, write_session
from predictions.models import Outbox

OUTBOX = cast(Table, Outbox.__table__)
T0 = datetime(2026, 3, 1, 12, 0)


def _rows(engine: Engine, n: int) -> None:
    with write_session(engine) as session:
        session.execute(
            insert(OUTBOX),
            [
                {"dedupe_key": f"k{i}", "kind": "daily", "recipients": "a@example.org",
                 "subject": "s", "body_text": "t", "body_html": "h", "message_id": f"<{i}@x>",
                 "created_at": T0, "attempts": 0, "next_attempt_at": T0}
                for i in range(n)
            ],
        )  # fmt: skip


def _claim(engine: Engine, worker: str, at: datetime, limit: int = 7) -> list[int]:
    query = select(OUTBOX.c.id).order_by(OUTBOX.c.id)
    rows = leases.claim(
        engine, OUTBOX, query, worker=worker, lease=timedelta(minutes=1), limit=limit, now=at
    )
    return [row[0] for row in rows]


def test_leases_racing_claimers_take_disjoint_rows(db_url: str, engine: Engine) -> None:
    _rows(engine, 60)
    engines = [make_engine(db_url) for _ in range(3)]
    gate = threading.Barrier(len(engines))
    taken: dict[str, list[int]] = {}

    def work(i: int, own: Engine) -> None:
        mine: list[int] = []
        gate.wait()
        while got := _claim(own, f"w{i}", T0):
            mine += got
        taken[f"w{i}"] = mine

    threads = [threading.Thread(target=work, args=(i, e)) for i, e in enumerate(engines)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
    finally:
        for own in engines:
            own.dispose()
    every = [row_id for ids in taken.values() for row_id in ids]
    assert len(taken) == 3 and sorted(every) == list(range(1, 61))
    with read_session(engine) as session:
        owners = dict(session.execute(select(OUTBOX.c.id, OUTBOX.c.claimed_by)).all())
    assert all(owners[row_id] == worker for worker, ids in taken.items() for row_id in ids)


def test_leases_expired_claim_is_taken_over_and_its_first_holder_loses_it(
    engine: Engine,
) -> None:
    _rows(engine, 1)
    assert _claim(engine, "first", T0) == [1]
    assert _claim(engine, "second", T0 + timedelta(seconds=59)) == []  # the lease is live
    with read_session(engine) as session:
        assert leases.held(session, OUTBOX, [1], "first") == {1}  # expired, nobody took it yet
    assert _claim(engine, "second", T0 + timedelta(minutes=2)) == [1]
    with write_session(engine) as session:
        assert leases.held(session, OUTBOX, [1], "first") == set()
        leases.release(session, OUTBOX, [1], "first")  # not its row any more: nothing happens
    with write_session(engine) as session:
        assert leases.held(session, OUTBOX, [1], "second") == {1}
        leases.release(session, OUTBOX, [1], "second")
    with read_session(engine) as session:
        row: Any = session.execute(select(OUTBOX.c.claimed_by, OUTBOX.c.claimed_until)).one()
    assert tuple(row) == (None, None)
    assert _claim(engine, "third", T0 + timedelta(minutes=2)) == [1]


def test_leases_backoff_doubles_up_to_its_cap_and_waits_at_least_what_is_asked() -> None:
    minute, hour = timedelta(minutes=1), timedelta(hours=1)
    waits = [leases.backoff(n, base=minute, cap=hour) for n in (0, 1, 2, 3, 6, 7, 100)]
    assert waits == [minute, minute, 2 * minute, 4 * minute, 32 * minute, hour, hour]
    assert leases.backoff(1, base=minute, cap=hour, at_least=3 * hour) == 3 * hour
