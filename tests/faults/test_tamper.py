"""Tampering: a row edited, deleted, inserted or reordered with raw SQL in every table, and the
ledger or the receipts chain truncated; ``tracker verify`` exits 1 naming the first bad entry or
row every time, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from predictions.db import make_engine
from tests.conftest import CliInvoke
from tests.faults.tamper_data import populate
from tests.resolvers.loopback import Loopback

T = "'2026-01-01 00:00:00'"


def _swap(table: str, key: str, a: int, b: int) -> list[str]:
    return [
        f"UPDATE {table} SET {key} = -1 WHERE {key} = {a}",
        f"UPDATE {table} SET {key} = {a} WHERE {key} = {b}",
        f"UPDATE {table} SET {key} = {b} WHERE {key} = -1",
    ]


def _forge(table: str, seq: int) -> list[str]:
    return [
        f"INSERT INTO {table} (seq, at, kind, forecast_id, payload, prev_hash, hash) "
        f"SELECT {seq}, at, kind, forecast_id, payload, hash, hash FROM {table} "
        f"WHERE seq = {seq - 1}"
    ]


# (case, raw SQL, what the error line must name)
CASES: list[tuple[str, list[str], str]] = [
    ("forecast-edit", ["UPDATE forecast SET title = 'Forecast three' WHERE id = 3"], "forecast 3"),
    ("forecast-delete", ["DELETE FROM forecast WHERE id = 4"], "forecast 4"),
    (
        "forecast-insert",
        [
            "INSERT INTO forecast (id, title, criteria, due, created_at, author, status) "
            f"VALUES (9, 'x', 'y', {T}, {T}, 'mallory', 'open')"
        ],
        "forecast 9",
    ),
    (
        "forecast-reorder",
        [
            "UPDATE forecast SET title = CASE id WHEN 3 THEN 'Forecast 4' ELSE 'Forecast 3' END "
            "WHERE id IN (3, 4)"
        ],
        "forecast 3",
    ),
    (  # a forecast hidden from lists and scores without a withdraw entry
        "forecast-withdraw",
        ["UPDATE forecast SET status = 'withdrawn' WHERE id = 3"],
        "forecast 3: status",
    ),
    (
        "tag-edit",
        ["UPDATE tag SET name = 'usa' WHERE forecast_id = 1 AND name = 'china'"],
        "forecast 1: tags",
    ),
    ("tag-delete", ["DELETE FROM tag WHERE forecast_id = 2 AND name = 'ai'"], "forecast 2: tags"),
    ("tag-insert", ["INSERT INTO tag (forecast_id, name) VALUES (3, 'extra')"], "forecast 3: tags"),
    ("tag-reorder", ["UPDATE tag SET forecast_id = 4 WHERE forecast_id = 5"], "forecast 4: tags"),
    ("estimate-edit", ["UPDATE estimate SET probability = 0.9 WHERE id = 2"], "estimate 2"),
    ("estimate-delete", ["DELETE FROM estimate WHERE id = 6"], "estimate 6"),
    (
        "estimate-insert",
        [
            "INSERT INTO estimate (id, forecast_id, forecaster, probability, made_at) "
            f"VALUES (50, 1, 'mallory', 0.5, {T})"
        ],
        "estimate 50",
    ),
    ("estimate-reorder", _swap("estimate", "id", 1, 2), "estimate 1"),
    (
        "amendment-edit",
        ["UPDATE amendment SET new_value = 'Forecast 2!' WHERE id = 1"],
        "amendment 1",
    ),
    ("amendment-delete", ["DELETE FROM amendment WHERE id = 1"], "amendment 1"),
    (
        "amendment-insert",
        [
            "INSERT INTO amendment (id, forecast_id, field, old_value, new_value, made_at, made_by) "
            f"VALUES (7, 3, 'title', 'a', 'b', {T}, 'mallory')"
        ],
        "amendment 7",
    ),
    ("amendment-reorder", ["UPDATE amendment SET forecast_id = 3 WHERE id = 1"], "amendment 1"),
    ("check-edit-mode", ["UPDATE check_spec SET mode = 'auto' WHERE id = 4"], "check 4: mode"),
    (
        "check-edit-params",
        [
            'UPDATE check_spec SET params = \'{"url": "http://evil.example/", '
            '"contains": ["x"], "match": "any"}\' WHERE id = 2'
        ],
        "check 2: params",
    ),
    ("check-delete", ["DELETE FROM check_spec WHERE id = 3"], "check 3"),
    (
        "check-insert",
        [
            "INSERT INTO check_spec (id, forecast_id, kind, params, mode, enabled, created_at, "
            f"next_check_at, failures) VALUES (9, 1, 'deadline', '{{}}', 'auto', TRUE, {T}, {T}, 0)"
        ],
        "check 9",
    ),
    (
        "check-reorder",
        ["UPDATE check_spec SET forecast_id = CASE id WHEN 3 THEN 4 ELSE 3 END WHERE id IN (3, 4)"],
        "check 3: forecast",
    ),
    (
        "evidence-edit-verdict",
        ["UPDATE evidence SET verdict = 'no', value = NULL WHERE id = 1"],
        "evidence 1: verdict",
    ),
    (
        "evidence-edit-excerpt",
        ["UPDATE evidence SET excerpt = 'forged' WHERE id = 3"],
        "evidence 3",
    ),
    ("evidence-delete", ["DELETE FROM evidence WHERE id = 5"], "evidence 5"),
    (
        "evidence-insert",
        [
            "INSERT INTO evidence (id, check_id, forecast_id, checked_at, kind, resolver_version, "
            f"unchanged, verdict) VALUES (9, 1, 1, {T}, 'page', '1', FALSE, 'yes')"
        ],
        "evidence 9",
    ),
    (
        "evidence-reorder",
        [
            "UPDATE evidence SET check_id = CASE id WHEN 4 THEN 5 ELSE 4 END, "
            "forecast_id = CASE id WHEN 4 THEN 5 ELSE 4 END WHERE id IN (4, 5)"
        ],
        "evidence 4",
    ),
    (
        "proposal-edit-status",
        ["UPDATE proposal SET status = 'confirmed', decided_by = 'mallory' WHERE id = 3"],
        "proposal 3: status",
    ),
    ("proposal-edit-note", ["UPDATE proposal SET note = 'fine' WHERE id = 2"], "proposal 2: note"),
    ("proposal-delete", ["DELETE FROM proposal WHERE id = 4"], "proposal 4"),
    (
        "proposal-insert",
        [
            "INSERT INTO proposal (id, forecast_id, kind, verdict, created_at, status) "
            f"VALUES (9, 3, 'resolve', 'no', {T}, 'pending')"
        ],
        "proposal 9",
    ),
    ("proposal-reorder", _swap("proposal", "id", 3, 4), "proposal 3"),
    (
        "outbox-edit-recipients",
        ["UPDATE outbox SET recipients = 'mallory@example.org' WHERE id = 3"],
        "message 3: recipients",
    ),
    ("outbox-edit-body", ["UPDATE outbox SET body_text = 'forged' WHERE id = 1"], "message 1"),
    ("outbox-edit-unsent", ["UPDATE outbox SET sent_at = NULL WHERE id = 2"], "message 2: sent_at"),
    ("outbox-delete", ["DELETE FROM outbox WHERE id = 2"], "message 2"),
    (
        "outbox-insert",
        [
            "INSERT INTO outbox (id, dedupe_key, kind, recipients, subject, body_text, body_html, "
            "message_id, created_at, attempts, next_attempt_at) VALUES (9, 'x', 'daily', "
            f"'a@example.org', 's', 't', 'h', '<m@example.org>', {T}, 0, {T})"
        ],
        "message 9",
    ),
    ("outbox-reorder", _swap("outbox", "id", 1, 2), "message 1"),
    (
        "ledger-edit",
        ["UPDATE ledger SET payload = replace(payload, '0.3', '0.9') WHERE seq = 2"],
        "ledger entry 2",
    ),
    ("ledger-delete", ["DELETE FROM ledger WHERE seq = 5"], "ledger entry 5"),
    ("ledger-insert", _forge("ledger", 14), "ledger entry 14"),
    ("ledger-reorder", _swap("ledger", "seq", 3, 4), "ledger entry 3"),
    ("ledger-truncate", ["DELETE FROM ledger WHERE seq > 10"], "forecast 1: status"),
    (
        "receipt-edit",
        ["UPDATE receipt SET payload = replace(payload, 'propose', 'auto') WHERE seq = 2"],
        "receipt 2",
    ),
    ("receipt-delete", ["DELETE FROM receipt WHERE seq = 7"], "receipt 7"),
    ("receipt-insert", _forge("receipt", 22), "receipt 22"),
    ("receipt-reorder", _swap("receipt", "seq", 3, 4), "receipt 3"),
    ("receipt-truncate", ["DELETE FROM receipt WHERE seq > 16"], "message 1"),
]

_TEMPLATES: dict[str, Path] = {}


@pytest.fixture
def populated(db_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The test database with a row in every table (SQLite: a copy of one populated file)."""
    if db_url.startswith("sqlite"):
        path = Path(db_url.removeprefix("sqlite:///"))
        if "sqlite" not in _TEMPLATES:
            folder = tmp_path_factory.mktemp("tamper")
            engine = make_engine(db_url)
            with Loopback() as web:
                populate(engine, web, folder)
            engine.dispose()
            shutil.copyfile(path, folder / "template.db")
            _TEMPLATES["sqlite"] = folder / "template.db"
        shutil.copyfile(_TEMPLATES["sqlite"], path)
        yield db_url
        return
    engine = make_engine(db_url)
    with Loopback() as web:
        populate(engine, web, tmp_path_factory.mktemp("tamper"))
    engine.dispose()
    yield db_url


def _tamper(url: str, statements: list[str]) -> None:
    engine = make_engine(url)
    with engine.begin() as conn:
        for sql in statements:
            conn.execute(text(sql))
    engine.dispose()


def test_tamper_untouched_database_verifies(populated: str, cli: CliInvoke) -> None:
    result = cli("verify", "--json")
    report = json.loads(result.output)
    assert result.exit_code == 0, result.output
    assert report["ok"] is True and report["entries"] == 13 and report["receipts"] == 21


@pytest.mark.parametrize(("case", "statements", "named"), CASES, ids=[c[0] for c in CASES])
def test_tamper_verify_names_the_first_bad_entry_or_row(
    populated: str, cli: CliInvoke, case: str, statements: list[str], named: str
) -> None:
    _tamper(populated, statements)
    result = cli("verify")
    assert result.exit_code == 1, result.output
    [line] = result.output.strip().splitlines()
    assert line.startswith("Error: ledger does not verify: "), line
    assert named in line, line
    assert "Traceback" not in result.output
