"""Numeric, date and multiple-choice questions in the store: register, estimate, resolve and read
each type through both ways in (a Session on SQLite and PostgreSQL, the CLI's sqlite3 fast path),
bad input refused with nothing changed, and the ledger covering the new payloads while a binary
ledger's entries stay byte for byte what they were."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.config import Config
from freezegun import freeze_time
from sqlalchemy import inspect, text
from sqlalchemy.engine import Engine

from predictions import chain, lite, records, store
from predictions.db import SCHEMA_REVISION, schema_revision, upgrade_schema, write_session
from predictions.errors import InputError, StateError
from predictions.ledger import verify
from predictions.questions import GRID, Question, encode, rounded

NOW = datetime(2026, 12, 7, 12, 0, 0)
DUE = datetime(2030, 12, 31, 23, 59, 59)


def _seconds(at: str) -> float:
    return datetime.fromisoformat(at).replace(tzinfo=UTC).timestamp()


def _cdf(low: float = 0.0, high: float = 1.0, bend: float = 1.0) -> tuple[float, ...]:
    """A valid CDF on the grid: ``low`` below the range, ``1 - high`` above it, the mass between
    spread as ``(u + u ** bend) / 2`` (every bin holds its minimum)."""
    us = [k / (GRID - 1) for k in range(GRID)]
    return rounded(low + (high - low) * (u + u**bend) / 2 for u in us)


NUMERIC = Question("numeric", lower=0.0, upper=34.0)
DATE = Question("date", lower=_seconds("2026-01-01"), upper=_seconds("2036-01-01"), open_upper=True)
CHOICE = Question("choice", options=("DeepSeek", "Alibaba Qwen", "Other"), ordered=False)

#: question, first forecast, second forecast, resolution value
CASES: dict[str, tuple[Question, tuple[float, ...], tuple[float, ...], float]] = {
    "numeric": (NUMERIC, _cdf(), _cdf(bend=0.5), 11.0),
    "date": (DATE, _cdf(high=0.9), _cdf(high=0.8, bend=2.0), _seconds("2028-06-01")),
    "choice": (CHOICE, (0.5, 0.3, 0.2), (0.35, 0.45, 0.2), 1.0),
}


@pytest.fixture(params=["session", "sqlite3"])
def database(request: pytest.FixtureRequest, engine: Engine) -> Callable[[], Any]:
    """A function opening one writing transaction on the test database, either way in: a
    Session (SQLite and PostgreSQL) or the CLI's bare sqlite3 connection (SQLite only)."""
    if request.param == "sqlite3" and engine.dialect.name != "sqlite":
        pytest.skip("the sqlite3 fast path is for SQLite files")

    @contextlib.contextmanager
    def open_() -> Iterator[Any]:
        if request.param == "session":
            with write_session(engine) as session:
                yield session
            return
        conn = lite.connect(Path(str(engine.url.database)))
        assert conn is not None
        try:
            with lite.transaction(conn, write=True):
                yield conn
        finally:
            conn.close()

    return open_


_LEDGER = "SELECT kind, payload FROM ledger ORDER BY seq"


def _executor(db: Any) -> chain.Executor:
    if isinstance(db, sqlite3.Connection):
        return chain.SQLiteExecutor(db)
    from predictions.db import executor

    return executor(db)


def _add(db: Any, question: Question | None, **kwargs: Any) -> records.ForecastRow:
    return store.add_forecast(
        db, title="How many?", criteria="Count them.", due=DUE, author="alice",
        question=question, **kwargs,
    )  # fmt: skip


@pytest.mark.parametrize("kind", list(CASES))
def test_each_type_registers_estimates_resolves_and_reads_back(
    kind: str, database: Callable[[], Any], engine: Engine
) -> None:
    question, first, second, value = CASES[kind]
    with freeze_time(NOW), database() as db:
        f = _add(db, question, values=first)
        store.add_estimate(db, f.id, "bob", second, note="later")
        store.resolve(db, f.id, value, by="alice", note="counted")
    with database() as db:
        got = store.get_forecast(db, f.id)
        listed = store.list_forecasts(db, records.ForecastQuery(status="resolved"), now=NOW)
        query = records.ForecastQuery(status="resolved")
        latest = store.list_forecasts(db, query, now=NOW, latest_only=True)
    assert (got.kind, got.question, got.status) == (kind, question, "resolved")
    assert (got.outcome, got.resolution_value) == (None, value)
    assert [(e.forecaster, e.probability, e.values) for e in got.estimates] == [
        ("alice", None, first),
        ("bob", None, second),
    ]
    assert records.forecast_record(listed[0]) == records.forecast_record(got)
    assert [(e.forecaster, e.values) for e in latest[0].estimates] == [
        ("alice", first),
        ("bob", second),
    ]
    record = records.forecast_record(got, viewer="alice")
    key = chain.VALUES_KEY[kind]
    assert record["kind"] == kind and record["question"] == question.spec()
    assert record["resolution_value"] == value and record["outcome"] is None
    assert record["probability"] is None and record["others"]["median"] is None
    assert [e[key] for e in record["estimates"]] == [list(first), list(second)]
    assert all("probability" not in e for e in record["estimates"])
    with write_session(engine) as session:
        report = verify(session)
    assert report.ok, report.problem
    assert report.checked == {"forecasts": 1, "estimates": 2, "amendments": 0}


def test_the_ledger_payloads_of_each_type(database: Callable[[], Any], engine: Engine) -> None:
    """Register adds kind and the spec, an estimate carries its values in place of ``p``, a
    resolution its value beside a null outcome."""
    with freeze_time(NOW), database() as db:
        n = _add(db, NUMERIC, values=_cdf())
        c = _add(db, CHOICE, values=(0.5, 0.3, 0.2))
        store.resolve(db, n.id, 34.0, by="alice")
        store.resolve(db, c.id, 0, by="alice")
    with engine.connect() as conn:
        rows = conn.execute(text(_LEDGER)).all()
    at = chain.iso(NOW)
    assert [kind for kind, _ in rows] == ["register", "estimate"] * 2 + ["resolve"] * 2
    register = chain.canonical(
        {"id": 1, "title": "How many?", "criteria": "Count them.", "due": chain.iso(DUE),
         "created_at": at, "author": "alice", "source": None, "ref": None, "tags": [],
         "kind": "numeric", "question": NUMERIC.spec()}
    )  # fmt: skip
    assert rows[0][1] == register
    cdf = {"id": 1, "forecast": 1, "by": "alice", "cdf": list(_cdf()), "at": at, "note": None}
    assert rows[1][1] == chain.canonical(cdf)
    assert '"probabilities":[0.5,0.3,0.2]' in rows[3][1] and '"p"' not in rows[3][1]
    resolved = {"forecast": 1, "at": at, "by": "alice", "note": None, "outcome": None}
    assert rows[4][1] == chain.canonical({**resolved, "evidence": None, "value": 34.0})
    assert '"value":0.0' in rows[5][1]


def test_binary_payloads_are_byte_for_byte_as_before(database: Callable[[], Any]) -> None:
    """An old ledger verifies: a binary forecast's entries are exactly the text they always were
    (no kind, no question, no value), so their hashes are too."""
    with freeze_time(NOW), database() as db:
        f = _add(db, None, probability=0.7, tags=["china"])
        store.add_estimate(db, f.id, "bob", 0.25)
        store.resolve(db, f.id, True, by="alice", evidence="https://example.org")
        store.reopen(db, f.id, by="alice", note="wrong")
        store.annul(db, f.id, by="alice", note="moot")
        rows = [tuple(r) for r in _executor(db).execute(_LEDGER)]
    at = "2026-12-07T12:00:00.000000Z"
    assert rows == [
        ("register", '{"author":"alice","created_at":"' + at + '","criteria":"Count them.",'
         '"due":"2030-12-31T23:59:59.000000Z","id":1,"ref":null,"source":null,"tags":["china"],'
         '"title":"How many?"}'),
        ("estimate", '{"at":"' + at + '","by":"alice","forecast":1,"id":1,"note":null,"p":0.7}'),
        ("estimate", '{"at":"' + at + '","by":"bob","forecast":1,"id":2,"note":null,"p":0.25}'),
        ("resolve", '{"at":"' + at + '","by":"alice","evidence":"https://example.org",'
         '"forecast":1,"note":null,"outcome":true}'),
        ("reopen", '{"at":"' + at + '","by":"alice","forecast":1,"note":"wrong",'
         '"was":"resolved"}'),
        ("annul", '{"at":"' + at + '","by":"alice","forecast":1,"note":"moot"}'),
    ]  # fmt: skip


def test_binary_forecasts_read_as_before(database: Callable[[], Any]) -> None:
    with freeze_time(NOW), database() as db:
        f = _add(db, None, probability=0.7)
        store.resolve(db, f.id, False, by="alice")
        got = store.get_forecast(db, f.id)
    assert (got.kind, got.question, got.outcome, got.resolution_value) == (
        "binary", None, False, None,
    )  # fmt: skip
    assert [(e.probability, e.values) for e in got.estimates] == [(0.7, None)]
    record = records.forecast_record(got)
    assert record["kind"] == "binary" and "question" not in record
    assert record["estimates"][0]["probability"] == 0.7


def test_an_outcome_beyond_an_open_bound_is_stored_as_given(
    database: Callable[[], Any], engine: Engine
) -> None:
    beyond = _seconds("2040-03-01")
    with freeze_time(NOW), database() as db:
        f = _add(db, DATE, values=_cdf(high=0.9))
        store.resolve(db, f.id, beyond, by="alice")
        assert store.get_forecast(db, f.id).resolution_value == beyond
    with write_session(engine) as session:
        assert verify(session).ok


def test_values_are_stored_rounded(database: Callable[[], Any]) -> None:
    probabilities = (0.1234567, 0.3, 0.5765433)
    with freeze_time(NOW), database() as db:
        f = _add(db, CHOICE, values=probabilities)
        assert f.estimates[0].values == (0.123457, 0.3, 0.576543)
        assert store.get_forecast(db, f.id).estimates[0].values == (0.123457, 0.3, 0.576543)


def _bad(kind: str) -> list[Callable[[Any, int], object]]:
    """Calls each refused on a forecast ``fid`` of this kind (binary: fid 1, numeric: 2...)."""
    question, first, _, _ = CASES.get(kind, (None, (), (), 0.0))
    calls: list[Callable[[Any, int], object]] = [
        lambda db, fid: store.resolve(db, fid, True, by="alice"),
        lambda db, fid: store.resolve(db, fid, None, by="alice"),  # type: ignore[arg-type]
        lambda db, fid: store.resolve(db, fid, "11", by="alice"),  # type: ignore[arg-type]
        lambda db, fid: store.resolve(db, fid, float("nan"), by="alice"),
        lambda db, fid: store.add_estimate(db, fid, "bob", 0.5),
        lambda db, fid: store.add_estimate(db, fid, "bob", first[:-1]),
        lambda db, fid: store.add_estimate(db, fid, "bob", "0.5,0.5"),  # type: ignore[arg-type]
        lambda db, fid: _add(db, question, probability=0.5),
        lambda db, fid: _add(db, question, values=first[:-1]),
    ]
    if kind == "numeric":
        flat = list(_cdf())
        flat[100] = flat[99]  # a bin with no mass: an infinite log score there
        calls += [
            lambda db, fid: store.add_estimate(db, fid, "bob", tuple(reversed(first))),
            lambda db, fid: store.resolve(db, fid, 34.5, by="alice"),  # beyond a closed bound
            lambda db, fid: store.resolve(db, fid, -1.0, by="alice"),
            lambda db, fid: store.add_estimate(db, fid, "bob", flat),
            lambda db, fid: store.add_estimate(db, fid, "bob", _cdf(low=0.01)),  # closed lower
        ]
    if kind == "date":
        calls += [
            lambda db, fid: store.resolve(db, fid, _seconds("2025-12-31"), by="alice"),
            lambda db, fid: store.add_estimate(db, fid, "bob", _cdf()),  # no mass above open
        ]
    if kind == "choice":
        calls += [
            lambda db, fid: store.resolve(db, fid, 3, by="alice"),
            lambda db, fid: store.resolve(db, fid, 0.5, by="alice"),
            lambda db, fid: store.add_estimate(db, fid, "bob", (0.5, 0.3, 0.3)),
            lambda db, fid: store.add_estimate(db, fid, "bob", (0.7, 0.3, 0.0)),
        ]
    return calls


def test_bad_input_is_refused_with_nothing_changed(
    database: Callable[[], Any], counts: Callable[[], dict[str, int]]
) -> None:
    with freeze_time(NOW), database() as db:
        ids = {
            kind: _add(db, question, values=first).id
            for kind, (question, first, *_) in CASES.items()
        }
        ids["binary"] = _add(db, None, probability=0.6).id
    before = counts()
    binary_bad: list[Callable[[Any, int], object]] = [
        lambda db, fid: store.add_estimate(db, fid, "bob", (0.5, 0.5)),
        lambda db, fid: store.add_estimate(db, fid, "bob", True),
        lambda db, fid: _add(db, None, values=(0.5, 0.5)),
    ]
    for kind, fid in ids.items():
        for call in binary_bad if kind == "binary" else _bad(kind):
            with pytest.raises(InputError), freeze_time(NOW), database() as db:
                call(db, fid)
            assert counts() == before, (kind, call)


def test_a_resolved_question_takes_no_estimate_and_a_reopened_one_drops_its_value(
    database: Callable[[], Any], engine: Engine
) -> None:
    with freeze_time(NOW), database() as db:
        f = _add(db, NUMERIC, values=_cdf())
        store.resolve(db, f.id, 3.5, by="alice")
        with pytest.raises(StateError):
            store.add_estimate(db, f.id, "bob", _cdf())
        store.reopen(db, f.id, by="alice", note="miscounted")
        assert store.get_forecast(db, f.id).resolution_value is None
        store.resolve(db, f.id, 4.0, by="alice")
        store.withdraw(db, f.id, by="alice", note="a duplicate")
        assert store.get_forecast(db, f.id).resolution_value is None
    with write_session(engine) as session:
        assert verify(session).ok


@pytest.mark.parametrize(
    ("sql", "problem"),
    [
        ("UPDATE forecast SET question = :text WHERE id = 1", "forecast 1: question"),
        ("UPDATE forecast SET kind = 'choice' WHERE id = 1", "forecast 1: kind"),
        ("UPDATE forecast SET resolution_value = 12 WHERE id = 1", "forecast 1: resolution_value"),
        ("UPDATE estimate SET distribution = :blob WHERE id = 1", "estimate 1 (forecast 1): values"),
        ("UPDATE estimate SET distribution = NULL, probability = 0.5 WHERE id = 1",
         "estimate 1 (forecast 1): probability"),
    ],
)  # fmt: skip
def test_verify_names_a_tampered_question_or_cdf(engine: Engine, sql: str, problem: str) -> None:
    with freeze_time(NOW), write_session(engine) as session:
        f = _add(session, NUMERIC, values=_cdf())
        store.resolve(session, f.id, 11.0, by="alice")
    tampered = list(_cdf())
    tampered[100] += 0.001  # one value of the CDF, still a valid CDF
    params = {"text": chain.canonical({**NUMERIC.spec(), "upper": 35.0}), "blob": encode(tampered)}
    with engine.begin() as conn:
        conn.execute(text(sql), {k: v for k, v in params.items() if f":{k}" in sql})
    with write_session(engine) as session:
        report = verify(session)
    assert not report.ok
    assert report.problem is not None and report.problem.startswith(problem), report.problem


def test_verify_refuses_an_estimate_entry_of_the_wrong_shape(engine: Engine) -> None:
    """A ledger whose hashes hold but whose estimate on a numeric question carries ``p``."""
    with freeze_time(NOW), write_session(engine) as session:
        f = _add(session, NUMERIC)
        payload = {"id": 1, "forecast": f.id, "by": "alice", "p": 0.5, "at": chain.iso(NOW),
                   "note": None}  # fmt: skip
        chain.LEDGER.append(_executor(session), "estimate", payload, forecast_id=f.id, at=NOW)
    with write_session(engine) as session:
        report = verify(session)
    assert not report.ok and report.seq == 2
    assert "cdf" in (report.problem or "")


def _alembic() -> Config:
    config = Config()
    config.set_main_option("script_location", "predictions:migrations")
    return config


def test_migration_0004_upgrades_a_database_of_binary_forecasts(engine: Engine) -> None:
    """Down to 0003 (the binary-only schema) with binary forecasts in it, and up again: every
    forecast is binary, its estimates keep their probabilities, and the ledger still verifies."""
    with freeze_time(NOW), write_session(engine) as session:
        f = _add(session, None, probability=0.7, tags=["china"])
        store.add_estimate(session, f.id, "bob", 0.4)
        store.resolve(session, f.id, True, by="alice")
        _add(session, None, probability=0.2)
    config = _alembic()
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, "0003_estimate_latest")
    assert schema_revision(engine) == "0003_estimate_latest"
    with engine.connect() as conn:
        names = {c["name"] for c in inspect(conn).get_columns("forecast")}
        assert not names & {"kind", "question", "resolution_value"}
        columns = {c["name"]: c for c in inspect(conn).get_columns("estimate")}
        assert "distribution" not in columns and not columns["probability"]["nullable"]
    upgrade_schema(engine)
    assert schema_revision(engine) == SCHEMA_REVISION
    with write_session(engine) as session:
        got = [store.get_forecast(session, fid) for fid in (1, 2)]
        report = verify(session)
        assert report.ok, report.problem
    assert [(g.kind, g.question, g.outcome, g.resolution_value) for g in got] == [
        ("binary", None, True, None),
        ("binary", None, None, None),
    ]
    assert [e.probability for e in got[0].estimates] == [0.7, 0.4]
    with freeze_time(NOW), write_session(engine) as session:  # the new column takes new questions
        _add(session, CHOICE, values=(0.5, 0.3, 0.2))
        assert verify(session).ok


def test_migration_0004_keeps_non_binary_forecasts_from_a_downgrade(engine: Engine) -> None:
    """Their estimates have no probability: the downgrade is refused and nothing is lost."""
    with freeze_time(NOW), write_session(engine) as session:
        _add(session, CHOICE, values=(0.5, 0.3, 0.2))
    config = _alembic()
    with pytest.raises(RuntimeError, match="non-binary"), engine.begin() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, "0003_estimate_latest")
    assert schema_revision(engine) == SCHEMA_REVISION
    with write_session(engine) as session:
        assert store.get_forecast(session, 1).kind == "choice"
        assert verify(session).ok
