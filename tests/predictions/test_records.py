"""The one forecast filter, run as plain SQL on each database."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from freezegun import freeze_time
from sqlalchemy.engine import Engine

from predictions import store
from predictions.db import executor, read_session, write_session
from predictions.records import forecast_where


def _ids(engine: Engine, join: str = "", **filters: Any) -> list[int]:
    where, params = forecast_where(**filters)
    with read_session(engine) as s:
        sql = f"SELECT DISTINCT f.id FROM forecast AS f {join} WHERE {where} ORDER BY f.id"
        return [r[0] for r in executor(s).execute(sql, params)]


def test_forecast_where_filters_by_status_tag_person_and_time(engine: Engine) -> None:
    with freeze_time("2026-01-01 12:00:00"), write_session(engine) as s:
        for i in range(4):
            f = store.add_forecast(
                s, title=f"Q{i}", criteria="c", due=datetime(2026, 1, 3) + timedelta(days=10 * i),
                author="alice", probability=0.5, tags=["china"] if i % 2 else [],
            )  # fmt: skip
            if i >= 2:
                store.add_estimate(s, f, "bob", 0.4)
    with freeze_time("2026-02-01 00:00:00"), write_session(engine) as s:
        store.resolve(s, 1, True, by="alice")
        store.resolve(s, 4, False, by="alice", at=datetime(2026, 3, 1))
    now = datetime(2026, 1, 20)
    assert _ids(engine) == [1, 2, 3, 4]
    assert _ids(engine, status="open") == [2, 3]
    assert _ids(engine, status="due", now=now) == [3]  # due 2026-01-23, within 7 days
    assert _ids(engine, status="overdue", now=now) == [2]
    assert _ids(engine, status="resolved", tag="CHINA") == [4]
    assert _ids(engine, by="bob") == [3, 4]
    assert _ids(engine, by="alice") == [1, 2, 3, 4]  # she registered them all
    join = "JOIN estimate AS e ON e.forecast_id = f.id"
    assert _ids(engine, join, by="alice", by_estimate="e") == [1, 2, 3, 4]
    assert _ids(engine, join, by="bob", by_estimate="e", status="open") == [3]
    assert _ids(engine, since=datetime(2026, 2, 1)) == [1, 4]
    assert _ids(engine, since=datetime(2026, 2, 2), until=datetime(2026, 3, 1)) == [4]
    later = "COALESCE(f.resolved_at, f.due)"
    assert _ids(engine, since=datetime(2026, 1, 20), when=later) == [1, 3, 4]
    with pytest.raises(ValueError, match="now"):
        forecast_where(status="due")
