"""Mistakes corrected on the record: reopen, withdraw, tag amendments and late updates, through the
CLI on SQLite and PostgreSQL; the history in show, the ledger, the export, scores and emails."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from freezegun import freeze_time
from sqlalchemy import text
from sqlalchemy.engine import Engine

from predictions.db import read_session
from predictions.ledger import verify
from reports.notify import NotifySettings, plan_reports
from tests.conftest import CliInvoke

CRITERIA = "Resolves YES if Alibaba publishes the Qwen4 weights under an open licence."


def _add(cli: CliInvoke, title: str, p: str = "70%", *extra: str) -> int:
    result = cli(
        "add", title, "-p", p, "--due", "2026-03-01", "--criteria", CRITERIA, "--json", *extra
    )
    assert result.exit_code == 0, result.output
    return int(json.loads(result.stdout)["id"])


def _report(cli: CliInvoke) -> dict:
    result = cli("report", "--format", "json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def _verified(engine: Engine) -> int:
    with read_session(engine) as s:
        report = verify(s)
    assert report.ok, report.problem
    return report.entries


def _emailed_ids(engine: Engine, now: datetime) -> set[int]:
    """The forecasts named anywhere in the daily reports a notify run would queue at ``now``."""
    settings = NotifySettings(("me@example.org",), "tracker@example.org", ZoneInfo("UTC"))
    with read_session(engine) as s:
        contexts = [r.context for r in plan_reports(s, settings, now)]
    found: set[int] = set()

    def walk(value: object) -> None:
        if isinstance(value, dict):
            if "id" in value and "title" in value:
                found.add(value["id"])
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    walk(contexts)
    return found


def test_reopen_takes_a_resolution_out_of_the_scores_until_resolved_again(
    cli: CliInvoke, engine: Engine
) -> None:
    with freeze_time("2026-01-01 12:00:00"):
        fid = _add(cli, "Qwen4 open weights")
        _add(cli, "Kept question", "20%")
    with freeze_time("2026-03-02 12:00:00"):
        assert cli("resolve", str(fid), "yes", "--note", "misread the blog").exit_code == 0
        assert cli("resolve", "2", "no").exit_code == 0
        assert _report(cli)["overall"]["count"] == 2
    with freeze_time("2026-03-03 12:00:00"):
        result = cli("reopen", str(fid), "--note", "the release was a preview")
    assert result.exit_code == 0, result.output
    assert result.stdout == f"Forecast {fid} reopened (was resolved): Qwen4 open weights\n"
    with freeze_time("2026-03-04 12:00:00"):
        report = _report(cli)
        listed = json.loads(cli("list", "--status", "overdue", "--json").stdout)
    assert report["overall"]["count"] == 1
    assert (report["counts"]["resolved"], report["counts"]["pending"]) == (1, 1)
    assert [f["id"] for f in listed] == [fid]
    assert (listed[0]["status"], listed[0]["outcome"], listed[0]["resolved_at"]) == (
        "open",
        None,
        None,
    )

    with freeze_time("2026-03-05 08:00:00"):
        assert (
            cli("resolve", str(fid), "no", "--note", "not released by the due date").exit_code == 0
        )
        assert _report(cli)["overall"]["count"] == 2
        shown = cli("show", str(fid)).stdout
        record = json.loads(cli("show", str(fid), "--json").stdout)
    assert "  history:\n" in shown
    history = shown.split("  history:\n")[1]
    lines = [line.strip() for line in history.splitlines()[:3]]
    assert lines[0].startswith("resolved YES by alice at 2026-03-02 12:00")
    assert lines[0].endswith(": misread the blog")
    assert lines[1].startswith("reopened by alice at 2026-03-03 12:00")
    assert lines[1].endswith(": the release was a preview")
    assert lines[2].startswith("resolved NO by alice at 2026-03-05 08:00")
    assert [(h["kind"], h.get("outcome"), h.get("was")) for h in record["history"]] == [
        ("resolve", True, None),
        ("reopen", None, "resolved"),
        ("resolve", False, None),
    ]
    assert record["history"][1]["note"] == "the release was a preview"
    assert (record["status"], record["outcome"]) == ("resolved", False)
    # the ledger holds both resolutions and the reopening, and verify replays them
    assert _verified(engine) == 8


def test_reopen_an_open_forecast_is_refused(cli: CliInvoke, engine: Engine) -> None:
    with freeze_time("2026-01-01 12:00:00"):
        fid = _add(cli, "Qwen4 open weights")
    before = _verified(engine)
    result = cli("reopen", str(fid), "--note", "oops")
    assert result.exit_code == 2
    assert result.stderr == (
        f"Error: forecast {fid} is open: there is no resolution, annulment or withdrawal to "
        "reopen\n"
    )
    assert cli("reopen", str(fid)).exit_code == 2  # --note is required
    assert _verified(engine) == before


def test_reopen_an_annulment_and_resolve_it(cli: CliInvoke, engine: Engine) -> None:
    with freeze_time("2026-01-01 12:00:00"):
        fid = _add(cli, "Qwen4 open weights")
    with freeze_time("2026-03-02 12:00:00"):
        assert cli("annul", str(fid), "--note", "moot?").exit_code == 0
        refused = cli("resolve", str(fid), "yes")
        assert refused.exit_code == 2
        assert f"`tracker reopen {fid} --note TEXT` reopens it" in refused.stderr
        result = cli("reopen", str(fid), "--note", "the question still stands")
        assert "(was annulled)" in result.stdout
        assert cli("resolve", str(fid), "yes").exit_code == 0
        assert _report(cli)["overall"]["count"] == 1
    _verified(engine)


def test_withdraw_leaves_lists_scores_and_emails(cli: CliInvoke, engine: Engine) -> None:
    with freeze_time("2026-01-01 12:00:00"):
        kept = _add(cli, "Qwen4 open weights")
        test_entry = _add(cli, "test entry, ignore", "50%")
        duplicate = _add(cli, "Qwen4 open weights (again)", "90%")
    with freeze_time("2026-03-02 12:00:00"):
        for fid in (kept, duplicate):
            assert cli("resolve", str(fid), "yes").exit_code == 0
        assert _report(cli)["overall"]["count"] == 2
        assert _emailed_ids(engine, datetime(2026, 3, 2, 13)) == {kept, duplicate, test_entry}
        one = cli("withdraw", str(test_entry), "--note", "a test entry")
        two = cli("withdraw", str(duplicate), "--note", f"duplicate of {kept}")
    assert one.exit_code == 0 and two.exit_code == 0, one.output + two.output
    assert one.stdout == f"Forecast {test_entry} withdrawn: test entry, ignore\n"
    with freeze_time("2026-03-03 12:00:00"):
        report = _report(cli)
        everything = json.loads(cli("list", "--status", "all", "--json").stdout)
        open_now = json.loads(cli("list", "--json").stdout)
        withdrawn = json.loads(cli("list", "--status", "withdrawn", "--json").stdout)
        table = cli("list", "--status", "withdrawn").stdout
    assert report["overall"]["count"] == 1  # the withdrawn duplicate's YES no longer counts
    assert report["counts"]["questions"] == 1
    assert [f["id"] for f in everything] == [kept]
    assert open_now == []
    assert sorted(f["id"] for f in withdrawn) == [test_entry, duplicate]
    assert {f["status"] for f in withdrawn} == {"withdrawn"}
    assert "withdrawn" in table and "test entry, ignore" in table
    assert _emailed_ids(engine, datetime(2026, 3, 3, 13)) == {kept}

    refused = cli("update", str(test_entry), "-p", "40%")
    assert refused.exit_code == 2
    assert refused.stderr == (
        f"Error: forecast {test_entry} is withdrawn; its estimates are closed "
        f"(`tracker reopen {test_entry} --note TEXT` reopens it)\n"
    )
    again = cli("withdraw", str(test_entry), "--note", "twice")
    assert again.exit_code == 2 and "already withdrawn" in again.stderr
    assert cli("resolve", str(test_entry), "no").exit_code == 2
    shown = cli("show", str(duplicate)).stdout
    assert f"withdrawn at 2026-03-02 12:00 UTC by alice: duplicate of {kept}" in shown
    _verified(engine)


def test_reopen_brings_a_withdrawn_forecast_back(cli: CliInvoke, engine: Engine) -> None:
    with freeze_time("2026-01-01 12:00:00"):
        fid = _add(cli, "Qwen4 open weights")
        assert cli("withdraw", str(fid), "--note", "looked like a duplicate").exit_code == 0
        result = cli("reopen", str(fid), "--note", "it was not a duplicate")
        assert "(was withdrawn)" in result.stdout
        assert [f["id"] for f in json.loads(cli("list", "--json").stdout)] == [fid]
        assert cli("update", str(fid), "-p", "0.6").exit_code == 0
        record = json.loads(cli("show", str(fid), "--json").stdout)
    assert [h["kind"] for h in record["history"]] == ["withdraw", "reopen"]
    assert _verified(engine) == 5


def test_amend_tags_is_an_amendment_in_show_list_and_the_ledger(
    cli: CliInvoke, engine: Engine
) -> None:
    with freeze_time("2026-01-01 12:00:00"):
        fid = _add(cli, "Qwen4 open weights", "70%", "--tag", "china", "--tag", "llm")
        result = cli("amend", str(fid), "--tag", "Open-Weights", "--untag", "llm", "--note", "x")
    assert result.exit_code == 0, result.output
    assert result.stdout == f"Forecast {fid} amended: tags\n"
    record = json.loads(cli("show", str(fid), "--json").stdout)
    assert record["tags"] == ["china", "open-weights"]
    [amendment] = record["amendments"]
    assert (amendment["field"], amendment["old"], amendment["new"]) == (
        "tags",
        "china,llm",
        "china,open-weights",
    )
    assert "changed tags: 'china,llm' -> 'china,open-weights'" in cli("show", str(fid)).stdout
    assert [f["id"] for f in json.loads(cli("list", "--tag", "open-weights", "--json").stdout)] == [
        fid
    ]
    assert json.loads(cli("list", "--tag", "llm", "--json").stdout) == []
    assert _verified(engine) == 3
    # a resolved forecast's tags may still change; a withdrawn one's may not
    with freeze_time("2026-03-02 12:00:00"):
        assert cli("resolve", str(fid), "yes").exit_code == 0
        assert cli("amend", str(fid), "--tag", "qwen").exit_code == 0
        assert cli("withdraw", str(fid), "--note", "test").exit_code == 0
        refused = cli("amend", str(fid), "--tag", "more")
    assert refused.exit_code == 2 and "withdrawn" in refused.stderr
    _verified(engine)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--untag", "usa"], "Error: untag: got 'usa', expected one of its tags: china"),
        (["--tag", "china"], "Error: tag: got 'china', expected a tag it does not have yet"),
        (["--tag", "two words"], "Error: tag: got 'two words'"),
    ],
)
def test_amend_tags_refuses_what_changes_nothing(
    cli: CliInvoke, engine: Engine, args: list[str], message: str
) -> None:
    with freeze_time("2026-01-01 12:00:00"):
        fid = _add(cli, "Qwen4 open weights", "70%", "--tag", "china")
        result = cli("amend", str(fid), *args)
    assert result.exit_code == 2
    assert result.stderr.startswith(message)
    assert _verified(engine) == 2


def test_tag_amendment_tampering_is_named_by_verify(cli: CliInvoke, engine: Engine) -> None:
    with freeze_time("2026-01-01 12:00:00"):
        fid = _add(cli, "Qwen4 open weights", "70%", "--tag", "china")
        assert cli("amend", str(fid), "--tag", "llm").exit_code == 0
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM tag WHERE name = 'llm'"))
    with read_session(engine) as s:
        report = verify(s)
    assert not report.ok and f"forecast {fid}: tags" in (report.problem or "")


def test_reopened_status_tampering_is_named_by_verify(cli: CliInvoke, engine: Engine) -> None:
    with freeze_time("2026-01-01 12:00:00"):
        fid = _add(cli, "Qwen4 open weights")
    with freeze_time("2026-03-02 12:00:00"):
        assert cli("resolve", str(fid), "yes").exit_code == 0
        assert cli("reopen", str(fid), "--note", "mistake").exit_code == 0
    with engine.begin() as conn:  # put the withdrawn resolution back behind the tracker's back
        conn.execute(text(f"UPDATE forecast SET status = 'resolved' WHERE id = {fid}"))
    with read_session(engine) as s:
        report = verify(s)
    assert not report.ok and f"forecast {fid}: status" in (report.problem or "")


def test_update_after_the_due_date_says_it_is_not_scored(cli: CliInvoke) -> None:
    with freeze_time("2026-01-01 12:00:00"):
        fid = _add(cli, "Qwen4 open weights")
        early = cli("update", str(fid), "-p", "60%")
    assert "not scored" not in early.output
    with freeze_time("2026-03-04 12:00:00"):
        late = cli("update", str(fid), "-p", "20%")
        as_json = cli("update", str(fid), "-p", "25%", "--json")
    assert late.exit_code == 0, late.output
    note = (
        f"Note: forecast {fid} was due 2026-03-01; estimates made after the due date are not "
        "scored.\n"
    )
    assert late.stdout == f"Forecast {fid}: alice 60% -> 20%\n{note}"
    assert json.loads(as_json.stdout)["probability"] == 0.25  # still recorded
    assert as_json.stderr.endswith(note)
    with freeze_time("2026-03-05 12:00:00"):
        assert cli("resolve", str(fid), "no").exit_code == 0
        report = _report(cli)
    assert report["overall"]["brier"] == pytest.approx(0.36)  # the 60% before the due date


def test_reopen_and_withdraw_run_without_sqlalchemy(tmp_path: Path) -> None:
    from tests.predictions.test_lite import run_in_fresh_process

    path = tmp_path / "fast.db"
    env = dict(os.environ, TRACKER_DB=f"sqlite:///{path}")
    add = ["add", "Qwen4", "-p", "70%", "--due", "2030-06-30", "--criteria", "c"]
    subprocess.run(
        [sys.executable, "-m", "tracker", *add], env=env, check=True, capture_output=True
    )  # creates and migrates the file (SQLAlchemy's job)
    commands = [
        ["resolve", "1", "yes"],
        ["reopen", "1", "--note", "too early"],
        ["withdraw", "1", "--note", "a test entry"],
        ["reopen", "1", "--note", "not a test"],
        ["amend", "1", "--tag", "china"],
        ["show", "1"],
    ]
    result = run_in_fresh_process(path, commands)
    assert result["sqlalchemy"] is False
    assert "reopened by alice" in result["out"][-1] and "withdrawn by alice" in result["out"][-1]


def test_reopen_names_an_automatic_check_that_would_close_it_again(cli: CliInvoke) -> None:
    with freeze_time("2026-01-01 12:00:00"):
        fid = _add(cli, "Qwen4 open weights", "70%", "--check", "deadline:mode=auto")
        plain = _add(cli, "Kept question", "20%", "--check", "deadline")
    with freeze_time("2026-03-02 12:00:00"):
        for f in (fid, plain):
            assert cli("resolve", str(f), "no").exit_code == 0
        result = cli("reopen", str(fid), "--note", "the source was late")
        quiet = cli("reopen", str(plain), "--note", "wrong question")
    assert result.stdout.splitlines()[1] == (
        f"Note: check 1 (deadline) resolves it automatically at its next run if its source still "
        f"says so; `tracker check {fid} --stop 1` stops it."
    )
    assert "Note" not in quiet.stdout


def test_withdrawn_forecast_is_not_swept_and_its_proposals_leave_review(
    cli: CliInvoke, engine: Engine
) -> None:
    """A forecast entered by mistake: its checks no longer run (they could not change it) and its
    pending proposals leave `tracker review`."""

    def evidence() -> dict[int, int]:
        with read_session(engine) as s:
            rows = s.execute(
                text("SELECT forecast_id, COUNT(*) FROM evidence GROUP BY forecast_id")
            )
            return {int(fid): int(n) for fid, n in rows}

    with freeze_time("2026-01-01 12:00:00"):
        kept = _add(cli, "Kept question", "20%", "--check", "deadline")
        gone = _add(cli, "Entered twice", "20%", "--check", "deadline")
    with freeze_time("2026-03-20 12:00:00"):  # past due + grace: each deadline check proposes NO
        assert cli("sweep").exit_code == 0
        before = json.loads(cli("review", "--json").stdout)
        assert sorted(p["forecast"]["id"] for p in before) == [kept, gone]
        assert cli("withdraw", str(gone), "--note", "a duplicate").exit_code == 0
        after = json.loads(cli("review", "--json").stdout)
        assert [p["forecast"]["id"] for p in after] == [kept]
    seen = evidence()
    with freeze_time("2026-09-20 12:00:00"):  # both checks are due again by now
        swept = cli("sweep", "--json")
    assert swept.exit_code == 0, swept.output
    now_seen = evidence()
    assert now_seen[gone] == seen[gone]
    assert now_seen[kept] > seen[kept]
