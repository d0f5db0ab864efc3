"""The fast SQLite path of add/list writes and reads exactly what the store does."""

from __future__ import annotations

import sqlite3
from datetime import datetime
from pathlib import Path

import pytest
from freezegun import freeze_time
from sqlalchemy import text

from predictions import lite, records, store
from predictions.db import make_engine, read_session, upgrade_schema, write_session
from predictions.errors import InputError
from predictions.ledger import verify

STEPS = [
    dict(
        title="Qwen4 open weights",
        criteria="Alibaba publishes Qwen4 weights.",
        due=datetime(2027, 6, 30, 23, 59, 59),
        author="alice",
        probability=0.7,
        tags=["china", "LLM"],
        source="https://example.org/a",
        note="base rate",
    ),
    dict(
        title="AI law 人工智能法",
        criteria="The NPC passes an AI law.\nSecond line.",
        due=datetime(2028, 12, 31, 23, 59, 59),
        author="bob",
        probability=0.25,
        tags=[],
        source=None,
        note=None,
    ),
    dict(
        title="No estimate yet",
        criteria="c",
        due=datetime(2029, 1, 1),
        author="carol",
        probability=None,
        tags=["x"],
        source=None,
        note=None,
    ),
]


def _db(path: Path) -> tuple[str, sqlite3.Connection]:
    url = f"sqlite:///{path}"
    engine = make_engine(url)
    upgrade_schema(engine)
    engine.dispose()
    conn = lite.connect(path)
    assert conn is not None
    return url, conn


def test_lite_add_writes_the_same_rows_and_ledger_as_the_store(tmp_path: Path) -> None:
    url_a, conn = _db(tmp_path / "lite.db")
    url_b, other = _db(tmp_path / "store.db")
    other.close()
    engine_b = make_engine(url_b)
    with freeze_time("2026-11-23 09:00:00.123456"):
        lite_records = [records.forecast_record(lite.add_forecast(conn, **step)) for step in STEPS]  # type: ignore[arg-type]
        with write_session(engine_b) as s:
            store_records = [
                records.forecast_record(store.add_forecast(s, **step)) for step in STEPS
            ]  # type: ignore[arg-type]
    conn.close()
    assert lite_records == store_records
    engine_a = make_engine(url_a)
    dump = "SELECT seq, at, kind, forecast_id, payload, prev_hash, hash FROM ledger ORDER BY seq"
    with engine_a.connect() as a, engine_b.connect() as b:
        assert a.execute(text(dump)).all() == b.execute(text(dump)).all()
        for table in ("forecast", "tag", "estimate"):
            assert (
                a.execute(text(f"SELECT * FROM {table} ORDER BY 1, 2")).all()
                == b.execute(text(f"SELECT * FROM {table} ORDER BY 1, 2")).all()
            )
    with read_session(engine_a) as s:
        report = verify(s)
    assert report.ok, report.problem
    with read_session(engine_a) as s:
        assert [
            records.forecast_record(f)
            for f in store.list_forecasts(s, records.ForecastQuery(status="all"))
        ] == [records.forecast_record(store.get_forecast(s, i)) for i in (1, 2, 3)]


@pytest.mark.parametrize("status", records.LIST_STATUSES)
@pytest.mark.parametrize(
    ("tag", "by", "limit"),
    [(None, None, 100), ("china", None, None), (None, "bob", 1), (None, None, 2)],
)
def test_lite_list_matches_the_store(
    tmp_path: Path, status: str, tag: str | None, by: str | None, limit: int | None
) -> None:
    url, conn = _db(tmp_path / "t.db")
    engine = make_engine(url)
    with freeze_time("2026-01-01 12:00:00"):
        with write_session(engine) as s:
            for i in range(6):
                f = store.add_forecast(
                    s,
                    title=f"Q{i}",
                    criteria="c",
                    due=datetime(2026, 1, 2 + i * 3),
                    author="alice",
                    probability=0.1 + i / 10,
                    tags=["china"] if i % 2 else [],
                )
                if i % 3 == 0:
                    store.add_estimate(s, f, "bob", 0.5)
        with write_session(engine) as s:
            store.resolve(s, 2, True, by="alice")
            store.annul(s, 3, by="alice", note="moot")
    query = records.ForecastQuery(status=status, tag=tag, by=by, limit=limit)
    now = datetime(2026, 1, 6)
    with read_session(engine) as s:
        expected = [records.forecast_record(f) for f in store.list_forecasts(s, query, now=now)]
        expected_count = store.count_forecasts(s, query, now=now)
    got = [records.forecast_record(f) for f in lite.list_forecasts(conn, query, now=now)]
    assert got == expected
    assert lite.count_forecasts(conn, query, now=now) == expected_count
    conn.close()


def test_lite_refuses_bad_input_like_the_store_and_writes_nothing(tmp_path: Path) -> None:
    _, conn = _db(tmp_path / "t.db")
    bad = dict(STEPS[0], title="  ")
    with pytest.raises(InputError, match="title"):
        lite.add_forecast(conn, **bad)  # type: ignore[arg-type]
    with pytest.raises(InputError, match="due"):
        lite.add_forecast(conn, **dict(STEPS[0], due=datetime(2001, 1, 1)))  # type: ignore[arg-type]
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
