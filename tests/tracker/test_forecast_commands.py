"""The forecast commands end to end through the CLI, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from freezegun import freeze_time

from tests.conftest import CliInvoke

CRITERIA = "Resolves YES if at least two provincial governments announce AI computing clusters."


def _add(cli: CliInvoke, title: str = "Provincial AI clusters by 2030", *extra: str) -> int:
    result = cli(
        "add",
        title,
        "-p",
        "70%",
        "--due",
        "2030-12-31",
        "--criteria",
        CRITERIA,
        "--tag",
        "china",
        "--json",
        *extra,
    )
    assert result.exit_code == 0, result.output
    return int(json.loads(result.stdout)["id"])


def test_add_prints_the_id_and_list_shows_it(cli: CliInvoke) -> None:
    result = cli(
        "add",
        "Provincial AI clusters by 2030",
        "-p",
        "70",
        "--due",
        "2030-12-31",
        "--criteria",
        CRITERIA,
        "--tag",
        "china",
        "--tag",
        "ai-policy",
        "--source",
        "https://merics.org/en/china-ai",
    )
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(
        "Added forecast 1: Provincial AI clusters by 2030 (70%, due 2030-12-31)"
    )
    listed = cli("list")
    assert "Provincial AI clusters by 2030" in listed.stdout
    assert "ai-policy,china" in listed.stdout


def test_add_json_record_carries_the_documented_fields(cli: CliInvoke) -> None:
    fid = _add(cli)
    record = json.loads(cli("show", str(fid), "--json").stdout)
    for key in (
        "id",
        "title",
        "criteria",
        "due",
        "status",
        "outcome",
        "probability",
        "tags",
        "estimates",
        "created_at",
    ):
        assert key in record
    assert record["status"] == "open"
    assert record["outcome"] is None
    assert record["probability"] == 0.7
    assert record["tags"] == ["china"]
    assert record["estimates"][0]["by"] == "alice"


def test_update_appends_history_and_other_forecasters_may_join(cli: CliInvoke) -> None:
    fid = _add(cli)
    assert cli("update", str(fid), "-p", "0.62", "--note", "slower than expected").exit_code == 0
    result = cli("update", str(fid), "-p", "40%", "--by", "bob")
    assert result.exit_code == 0
    record = json.loads(cli("show", str(fid), "--json").stdout)
    assert [(e["by"], e["probability"]) for e in record["estimates"]] == [
        ("alice", 0.7),
        ("alice", 0.62),
        ("bob", 0.4),
    ]
    assert record["estimates"][1]["note"] == "slower than expected"
    assert record["probability"] == 0.62  # mine (alice's), not bob's later one
    assert record["others"]["latest"] == {"bob": 0.4}
    assert (
        "bob" in cli("list", "--by", "bob").stdout
        or "Provincial" in cli("list", "--by", "bob").stdout
    )


def test_resolve_and_annul_close_forecasts(cli: CliInvoke) -> None:
    a, b = _add(cli), _add(cli, "Second question")
    result = cli(
        "resolve",
        str(a),
        "yes",
        "--note",
        "two provinces did",
        "--evidence",
        "https://example.org/n",
    )
    assert result.exit_code == 0
    assert "resolved YES" in result.stdout
    assert cli("annul", str(b), "--note", "question withdrawn").exit_code == 0
    resolved = json.loads(cli("list", "--status", "resolved", "--json").stdout)
    assert [(r["id"], r["outcome"], r["resolution_evidence"]) for r in resolved] == [
        (a, True, "https://example.org/n")
    ]
    assert [r["id"] for r in json.loads(cli("list", "--status", "annulled", "--json").stdout)] == [
        b
    ]
    assert json.loads(cli("list", "--json").stdout) == []


def test_amend_is_recorded_and_shown_never_silent(cli: CliInvoke) -> None:
    fid = _add(cli)
    result = cli(
        "amend",
        str(fid),
        "--criteria",
        "Resolves YES if three provinces announce clusters.",
        "--note",
        "sharper",
    )
    assert result.exit_code == 0, result.output
    shown = cli("show", str(fid))
    assert "amendments:" in shown.stdout
    assert "sharper" in shown.stdout
    record = json.loads(cli("show", str(fid), "--json").stdout)
    assert record["criteria"] == "Resolves YES if three provinces announce clusters."
    assert record["amendments"][0]["old"] == CRITERIA
    assert cli("verify").exit_code == 0


def test_list_status_filters_due_and_overdue(cli: CliInvoke) -> None:
    with freeze_time("2026-01-01 12:00:00"):
        soon = int(
            json.loads(
                cli(
                    "add", "Soon", "-p", "0.5", "--due", "2026-01-05", "--criteria", "c", "--json"
                ).stdout
            )["id"]
        )
        later = int(
            json.loads(
                cli(
                    "add", "Later", "-p", "0.5", "--due", "2027-01-05", "--criteria", "c", "--json"
                ).stdout
            )["id"]
        )
        past = int(
            json.loads(
                cli(
                    "add", "Past", "-p", "0.5", "--due", "2026-01-02", "--criteria", "c", "--json"
                ).stdout
            )["id"]
        )
    with freeze_time("2026-01-03 12:00:00"):
        assert [r["id"] for r in json.loads(cli("list", "--status", "due", "--json").stdout)] == [
            soon
        ]
        assert [
            r["id"] for r in json.loads(cli("list", "--status", "overdue", "--json").stdout)
        ] == [past]
        assert [r["id"] for r in json.loads(cli("list", "--json").stdout)] == [past, soon, later]
        text = cli("list").stdout
        assert "overdue by 12 h" in text
        assert "due in 2 days" in text


BAD_INPUT = [
    (("add", "T", "-p", "1.5", "--due", "2030", "--criteria", "c"), "probability: got '1.5'"),
    (("add", "T", "-p", "0", "--due", "2030", "--criteria", "c"), "probability: got '0'"),
    (("add", "T", "-p", "100%", "--due", "2030", "--criteria", "c"), "probability"),
    (("add", "T", "-p", "abc", "--due", "2030", "--criteria", "c"), "probability"),
    (("add", "T", "-p", "0.5", "--due", "2001-01-01", "--criteria", "c"), "due: got"),
    (("add", "T", "-p", "0.5", "--due", "someday", "--criteria", "c"), "due: got 'someday'"),
    (("add", "  ", "-p", "0.5", "--due", "2030", "--criteria", "c"), "title"),
    (("add", "T", "-p", "0.5", "--due", "2030", "--criteria", ""), "criteria"),
    (("add", "T", "-p", "0.5", "--due", "2030", "--criteria", "c", "--tag", "two words"), "tag"),
    (("add", "T", "-p", "0.5", "--due", "2030"), "Missing option '--criteria'"),
    (("update", "99", "-p", "0.5"), "forecast: got 99"),
    (("update", "x", "-p", "0.5"), "id: got 'x'"),
    (("resolve", "1", "maybe"), "outcome: got 'maybe'"),
    (("list", "--status", "bogus"), "'bogus' is not one of"),
    (("amend", "1"), "at least one of"),
    (("config", "set", "timezone", "Mars/Olympus"), "timezone"),
    (("config", "set", "no.such.key", "1"), "key: got 'no.such.key'"),
]


@pytest.mark.parametrize(
    ("args", "message"), BAD_INPUT, ids=[" ".join(a[:2]) + ":" + m[:20] for a, m in BAD_INPUT]
)
def test_bad_input_is_one_error_line_exit_2_and_changes_nothing(
    cli: CliInvoke, counts: Callable[[], dict[str, int]], args: tuple[str, ...], message: str
) -> None:
    _add(cli)
    before = counts()
    result = cli(*args)
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: ")
    assert message in lines[0]
    assert "Traceback" not in result.output
    assert counts() == before


def test_state_errors_resolving_twice_and_updating_resolved(
    cli: CliInvoke, counts: Callable[[], dict[str, int]]
) -> None:
    fid = _add(cli)
    assert cli("resolve", str(fid), "no").exit_code == 0
    before = counts()
    for args in (
        ("resolve", str(fid), "yes"),
        ("update", str(fid), "-p", "0.3"),
        ("annul", str(fid), "--note", "x"),
        ("amend", str(fid), "--title", "New"),
    ):
        result = cli(*args)
        assert result.exit_code == 2
        assert result.stderr.startswith(f"Error: forecast {fid} is ")
    assert counts() == before


def test_database_failure_is_exit_1_without_traceback(tmp_path: object) -> None:
    from click.testing import CliRunner

    from tracker.cli import main

    result = CliRunner().invoke(main, ["--db", "postgresql://nobody@127.0.0.1:1/none", "list"])
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: ")
    assert "Traceback" not in result.output


def test_first_use_creates_and_migrates_the_default_sqlite_file(
    tmp_path: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pathlib import Path

    from click.testing import CliRunner

    from tracker.cli import main

    data = Path(str(tmp_path)) / "fresh-data"
    monkeypatch.setenv("TRACKER_DATA_DIR", str(data))
    result = CliRunner().invoke(main, ["add", "Q", "-p", "0.5", "--due", "+30d", "--criteria", "c"])
    assert result.exit_code == 0, result.output
    assert (data / "tracker.db").exists()
    assert CliRunner().invoke(main, ["verify"]).exit_code == 0


def test_config_set_get_and_show(cli: CliInvoke) -> None:
    assert cli("config", "set", "email.to", "me@example.org").exit_code == 0
    assert cli("config", "get", "email.to").stdout.strip() == "me@example.org"
    assert cli("config", "set", "timezone", "Asia/Shanghai").exit_code == 0
    shown = json.loads(cli("config", "show", "--json").stdout)
    assert shown["values"]["timezone"] == "Asia/Shanghai"
    result = cli("add", "Q", "-p", "0.5", "--due", "2030-12-31", "--criteria", "c", "--json")
    assert json.loads(result.stdout)["due"] == "2030-12-31T15:59:59.000000Z"


def test_verify_fails_with_exit_1_naming_the_entry(cli: CliInvoke, db_url: str) -> None:
    from sqlalchemy import create_engine, text

    from predictions.db import normalize_url

    fid = _add(cli)
    cli("update", str(fid), "-p", "0.2")
    engine = create_engine(normalize_url(db_url))
    with engine.begin() as conn:
        conn.execute(text("UPDATE estimate SET probability = 0.9 WHERE id = 2"))
    engine.dispose()
    result = cli("verify")
    assert result.exit_code == 1
    assert (
        "estimate 2 (forecast 1): probability is 0.9 in the table, the ledger says 0.2"
        in result.stderr
    )
    assert json.loads(cli("verify", "--json").stdout)["ok"] is False
