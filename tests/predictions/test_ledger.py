"""The ledger detects rows changed, deleted, inserted or reordered behind the tracker's back."""

from __future__ import annotations

from datetime import datetime

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine

from predictions import chain, ledger, store
from predictions.chain import LEDGER
from predictions.db import executor, read_session, write_session


def _seed(engine: Engine) -> None:
    with write_session(engine) as s:
        f1 = store.add_forecast(
            s,
            title="Qwen4 released",
            criteria="Alibaba releases Qwen4",
            due=datetime(2030, 1, 1),
            author="alice",
            probability=0.6,
            tags=["china", "llm"],
        )
        store.add_estimate(s, f1, "bob", 0.4, note="doubtful")
        f2 = store.add_forecast(
            s,
            title="AI law passed",
            criteria="NPC passes an AI law",
            due=datetime(2030, 6, 1),
            author="bob",
            probability=0.3,
        )
        store.amend(
            s,
            f2.id,
            "criteria",
            "NPC Standing Committee passes an AI law",
            by="bob",
            note="sharper",
        )
        store.resolve(s, f1.id, True, by="alice", note="it happened")
        f3 = store.add_forecast(
            s, title="Moot", criteria="c", due=datetime(2030, 6, 1), author="bob", probability=0.5
        )
        store.annul(s, f3.id, by="bob", note="question withdrawn")


def _verify(engine: Engine) -> ledger.VerifyReport:
    with read_session(engine) as s:
        return ledger.verify(s)


def test_ledger_verify_passes_on_untouched_history(engine: Engine) -> None:
    _seed(engine)
    report = _verify(engine)
    assert report.ok, report.problem
    assert report.entries == 10
    assert len(report.head) == 64


TAMPERING = [
    ("UPDATE estimate SET probability = 0.9 WHERE id = 1", "estimate 1 (forecast 1): probability"),
    ("DELETE FROM estimate WHERE id = 2", "estimate 2 (forecast 1) is in the ledger but missing"),
    (
        "INSERT INTO estimate (forecast_id, forecaster, probability, made_at, note) VALUES (2, 'eve', 0.99, '2026-01-01 00:00:00', NULL)",
        "estimate 5 (forecast 2) is in the table but not in the ledger",
    ),
    ("UPDATE forecast SET outcome = {false} WHERE id = 1", "forecast 1: outcome"),
    (
        "UPDATE forecast SET created_at = '2020-01-01 00:00:00' WHERE id = 2",
        "forecast 2: created_at",
    ),
    ("UPDATE forecast SET criteria = 'softer' WHERE id = 2", "forecast 2: criteria"),
    (
        "UPDATE forecast SET status = 'open', outcome = NULL, resolved_at = NULL, resolved_by = NULL, resolution_note = NULL WHERE id = 3",
        "forecast 3: status",
    ),
    ("DELETE FROM tag WHERE name = 'llm'", "forecast 1: tags"),
    ("UPDATE amendment SET new_value = 'x' WHERE id = 1", "amendment 1"),
    (
        "UPDATE ledger SET payload = replace(payload, '0.6', '0.7') WHERE seq = 2",
        "ledger entry 2 (estimate): hash does not match",
    ),
    ("DELETE FROM ledger WHERE seq = 4", "ledger entry 4 is missing"),
    ("UPDATE ledger SET seq = seq + 100 WHERE seq >= 9", "ledger entry 9 is missing"),
    ("DELETE FROM ledger WHERE seq = 10", "forecast 3: status"),
]


@pytest.mark.parametrize(("sql", "named"), TAMPERING, ids=[t[1] for t in TAMPERING])
def test_ledger_verify_names_raw_sql_tampering(engine: Engine, sql: str, named: str) -> None:
    _seed(engine)
    false = "0" if engine.dialect.name == "sqlite" else "false"
    with engine.begin() as conn:
        conn.execute(text(sql.replace("{false}", false)))
    report = _verify(engine)
    assert not report.ok
    assert named in (report.problem or "")


def test_ledger_reordering_two_entries_is_caught(engine: Engine) -> None:
    _seed(engine)
    with engine.begin() as conn:
        conn.execute(text("UPDATE ledger SET seq = -1 WHERE seq = 2"))
        conn.execute(text("UPDATE ledger SET seq = 2 WHERE seq = 3"))
        conn.execute(text("UPDATE ledger SET seq = 3 WHERE seq = -1"))
    report = _verify(engine)
    assert not report.ok
    assert report.seq == 2


def test_ledger_hash_covers_previous_hash_and_content() -> None:
    at = datetime(2026, 1, 1)
    a = chain.chain_hash(chain.GENESIS, 1, at, "register", '{"a":1}')
    assert a != chain.chain_hash(chain.GENESIS, 1, at, "register", '{"a":2}')
    assert a != chain.chain_hash("1" * 64, 1, at, "register", '{"a":1}')
    assert a != chain.chain_hash(chain.GENESIS, 2, at, "register", '{"a":1}')
    assert chain.canonical({"b": 1, "a": "é"}) == '{"a":"é","b":1}'


def test_ledger_chain_link_hashes_as_row() -> None:
    a = chain.ChainBuilder(chain.ChainHead(5, "f" * 64))
    b = chain.ChainBuilder(chain.ChainHead(5, "f" * 64))
    for i, at in enumerate([datetime(2025, 1, 1), datetime(2025, 1, 1, 0, 0, 0, 1)]):
        row = a.row("estimate", {"p": 0.5, "note": "é"}, i, at)
        body = chain.canonical({"p": 0.5, "note": "é"})
        assert b.link("estimate", chain.iso(at) or "", body) == (
            row["seq"],
            row["prev_hash"],
            row["hash"],
        )
    assert (a.seq, a.hash) == (b.seq, b.hash) == (7, a.hash)


def test_ledger_verify_replays_corrections(engine: Engine) -> None:
    """Reopenings, withdrawals and tag amendments replay into the state the tables hold; an entry
    that reopens what is not closed does not replay, even with its hashes recomputed."""
    _seed(engine)
    with write_session(engine) as s:
        store.reopen(s, 1, by="alice", note="resolved too early")
        store.withdraw(s, 3, by="bob", note="a duplicate")
        store.amend(s, 2, "tags", (["law"], []), by="bob")
        store.reopen(s, 3, by="bob", note="not a duplicate")
        store.withdraw(s, 3, by="bob", note="a duplicate after all")
    report = _verify(engine)
    assert report.ok, report.problem
    assert report.entries == 15
    with write_session(engine) as s:  # a forged entry, linked into the chain as a writer would
        payload = {"forecast": 1, "was": "resolved", "at": "2026-01-01T00:00:00.000000Z"}
        LEDGER.append(
            executor(s), "reopen", {**payload, "by": "eve", "note": None},
            forecast_id=1, at=datetime(2026, 1, 1),
        )  # fmt: skip
    report = _verify(engine)
    assert not report.ok
    assert report.problem == "ledger entry 16 (reopen): forecast 1 is open, not resolved"
