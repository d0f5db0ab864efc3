"""Due dates as people type them, a date-only due kept in the zone it was entered in, and every
time a person reads written one way (issue 13, section 3)."""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import pytest
from click.testing import CliRunner
from freezegun import freeze_time
from sqlalchemy.engine import Engine

from predictions import lite
from predictions.db import make_engine, schema_revision, upgrade_schema
from predictions.revision import SCHEMA_REVISION
from tests.conftest import CliInvoke
from tracker.cli import main

CRITERIA = "Resolves YES if the standard is published in the official gazette."
NOW = "2026-12-06 15:00:00"  # a Sunday; 09:00 in Chicago


def _add(cli: CliInvoke, due: str, *extra: str) -> dict:
    result = cli("add", "AI standard", "-p", "40%", "--due", due, "--criteria", CRITERIA, *extra)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout) if "--json" in extra else {"text": result.stdout}


@pytest.mark.parametrize(
    ("typed", "due", "shown"),
    [
        ("tomorrow", "2026-12-07T23:59:59.000000Z", "2026-12-07"),
        ("next friday", "2026-12-11T23:59:59.000000Z", "2026-12-11"),
        ("Friday", "2026-12-11T23:59:59.000000Z", "2026-12-11"),
        ("end of 2027", "2027-12-31T23:59:59.000000Z", "2027-12-31"),
        ("Dec 2027", "2027-12-31T23:59:59.000000Z", "2027-12-31"),
        ("September 2027", "2027-09-30T23:59:59.000000Z", "2027-09-30"),
        ("31 Dec 2027", "2027-12-31T23:59:59.000000Z", "2027-12-31"),
        ("Dec 31, 2027", "2027-12-31T23:59:59.000000Z", "2027-12-31"),
        ("end of month", "2026-12-31T23:59:59.000000Z", "2026-12-31"),
        ("end of next month", "2027-01-31T23:59:59.000000Z", "2027-01-31"),
        ("2030-12-31", "2030-12-31T23:59:59.000000Z", "2030-12-31"),
        ("2030-06", "2030-06-30T23:59:59.000000Z", "2030-06-30"),
        ("2030", "2030-12-31T23:59:59.000000Z", "2030-12-31"),
        ("+90d", "2027-03-06T23:59:59.000000Z", "2027-03-06"),
        ("+2w", "2026-12-20T23:59:59.000000Z", "2026-12-20"),
        ("+3m", "2027-03-06T23:59:59.000000Z", "2027-03-06"),
        ("+1y", "2027-12-06T23:59:59.000000Z", "2027-12-06"),
        ("in 3 months", "2027-03-06T23:59:59.000000Z", "2027-03-06"),
        ("2030-12-31T12:00", "2030-12-31T12:00:00.000000Z", "2030-12-31 12:00 UTC"),
    ],
)
def test_add_accepts_due_dates_as_people_type_them(
    cli: CliInvoke, typed: str, due: str, shown: str
) -> None:
    with freeze_time(NOW):
        record = _add(cli, typed, "--json")
        text = cli("show", str(record["id"])).stdout
    assert record["due"] == due
    assert f"  due:      {shown} (due in " in text


@pytest.mark.parametrize(
    ("typed", "hint"),
    [
        ("31/12/2027", "use 2027-12-31"),
        ("12/31/2027", "use 2027-12-31"),
        ("01/02/2027", "use 2027-02-01 or 2027-01-02"),
        ("31.12.2027", "use 2027-12-31"),
    ],
)
def test_add_refuses_a_slashed_date_as_ambiguous_with_the_iso_form(
    cli: CliInvoke, counts: Callable[[], dict[str, int]], typed: str, hint: str
) -> None:
    before = counts()
    with freeze_time(NOW):
        result = cli("add", "x", "-p", "40%", "--due", typed, "--criteria", CRITERIA)
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr == (
        f"Error: due: got '{typed}', expected a date written year first "
        f"(day/month order differs between countries): {hint}\n"
    )
    assert counts() == before


def test_a_date_only_due_stays_that_date_when_the_timezone_changes(cli: CliInvoke) -> None:
    with freeze_time(NOW):
        utc = _add(cli, "2030-12-31", "--json")["id"]
        assert cli("config", "set", "timezone", "America/Chicago").exit_code == 0
        chicago = _add(cli, "31 Dec 2030", "--json")["id"]
        instant = _add(cli, "2030-12-31T12:00Z", "--json")["id"]
        shown = cli("show", str(utc)).stdout
        listed = cli("list").stdout
        ours = cli("show", str(chicago)).stdout
        moment = cli("show", str(instant)).stdout
    # not "2031-01-01 ..." nor "2030-12-31 17:59 CST": the date, with the zone it belongs to
    assert "  due:      2030-12-31 UTC (due in " in shown
    assert "2030-12-31 UTC" in listed
    assert "  due:      2030-12-31 (due in " in ours  # entered here: just the date
    assert "  due:      2030-12-31 06:00 CST (due in " in moment
    with freeze_time(NOW):
        assert cli("config", "set", "timezone", "Asia/Tokyo").exit_code == 0
        assert "  due:      2030-12-31 UTC (due in " in cli("show", str(utc)).stdout
        assert "  due:      2030-12-31 CST (due in " in cli("show", str(chicago)).stdout


def test_amend_keeps_the_zone_of_a_new_date_only_due(cli: CliInvoke) -> None:
    with freeze_time(NOW):
        fid = _add(cli, "2030-12-31T12:00Z", "--json")["id"]
        assert cli("amend", str(fid), "--due", "30 Jun 2031").exit_code == 0
        assert cli("config", "set", "timezone", "Asia/Shanghai").exit_code == 0
        text = cli("show", str(fid)).stdout
    assert "  due:      2031-06-30 UTC (due in " in text
    # the amendment in local time too, not as UTC ISO text
    assert "changed due: 2030-12-31 20:00 CST -> 2031-07-01 07:59 CST" in text, text


def test_show_prints_every_time_in_local_time_with_its_zone(cli: CliInvoke) -> None:
    assert cli("config", "set", "timezone", "America/Chicago").exit_code == 0
    with freeze_time("2026-12-06 15:00:00"):
        fid = _add(cli, "+1y", "--json")["id"]
    with freeze_time("2026-12-07 03:30:00"):
        assert cli("update", str(fid), "-p", "55%").exit_code == 0
        assert cli("resolve", str(fid), "yes", "--note", "published").exit_code == 0
        text = cli("show", str(fid)).stdout
        record = json.loads(cli("show", str(fid), "--json").stdout)
    assert "created 2026-12-06 09:00 CST" in text
    assert "    2026-12-06 09:00 CST     40%  alice" in text
    assert "    2026-12-06 21:30 CST     55%  alice" in text
    assert "  resolved at 2026-12-06 21:30 CST by alice: published" in text
    assert not re.search(r"\dT\d|\dZ", text)  # no UTC ISO text left
    # JSON keeps UTC ISO 8601
    assert record["created_at"] == "2026-12-06T15:00:00.000000Z"
    assert record["resolved_at"] == "2026-12-07T03:30:00.000000Z"


def test_evidence_prints_the_check_time_in_local_time(cli: CliInvoke) -> None:
    assert cli("config", "set", "timezone", "Asia/Tokyo").exit_code == 0
    with freeze_time("2026-12-06 15:00:00"):
        result = cli(
            "add", "x", "-p", "40%", "--due", "2026-12-31", "--criteria", CRITERIA,
            "--check", '{"kind": "deadline"}', "--json",
        )  # fmt: skip
        fid = json.loads(result.stdout)["id"]
        assert cli("check", str(fid)).exit_code == 0
        table = cli("evidence", str(fid)).stdout
        [ev] = json.loads(cli("evidence", str(fid), "--json").stdout)
    assert "2026-12-07 00:00 JST" in table
    assert "not due until 2026-12-31 14:59 UTC" in table  # the check's words: no ISO text
    assert ev["checked_at"].startswith("2026-12-06T15:00:00")


def test_outbox_prints_when_a_message_is_next_tried_in_local_time(
    cli: CliInvoke, engine: Engine
) -> None:
    from predictions.db import write_session
    from reports.mail import Rendered
    from reports.outbox import queue

    assert cli("config", "set", "timezone", "Asia/Tokyo").exit_code == 0
    with write_session(engine) as session:
        message = Rendered(subject="[tracker] 1 due", text="t", html="<p>t</p>")
        queue(
            session, dedupe_key="daily:alice:2026-05-04", kind="daily", recipients=["a@b.org"],
            sender="tracker@b.org", message=message, now=datetime(2026, 5, 4, 12, 0),
        )  # fmt: skip
    listing = cli("outbox").stdout
    [record] = json.loads(cli("outbox", "--json").stdout)
    assert "next try 2026-05-04 21:00 JST" in listing
    assert record["next_attempt_at"] == "2026-05-04T12:00:00.000000Z"


def test_report_echoes_since_as_typed_and_its_time_in_local_time(cli: CliInvoke) -> None:
    assert cli("config", "set", "timezone", "America/Chicago").exit_code == 0
    with freeze_time("2026-12-06 15:00:00"):
        md = cli("report", "--format", "md", "--since", "2026-12", "--until", "2027").stdout
        data = json.loads(cli("report", "--json", "--since", "2026-12").stdout)
    assert "Generated 2026-12-06 09:00 CST." in md
    assert "since 2026-12 until 2027" in md
    assert data["filters"]["since"] == "2026-12-01T06:00:00Z"


def test_a_0001_sqlite_file_is_migrated_on_first_use(tmp_path: Path) -> None:
    """A database made before ``due_zone`` gets it on the first command; the fast path declines
    the old file (it would read a column that is not there) until then."""
    path = tmp_path / "old.db"
    engine = make_engine(f"sqlite:///{path}")
    upgrade_schema(engine, "0001_initial")
    engine.dispose()
    assert lite.connect(path) is None
    env = {"TRACKER_DB": f"sqlite:///{path}"}
    runner = CliRunner()
    args = ["add", "x", "-p", "40%", "--due", "2030-12-31", "--criteria", CRITERIA]
    result = runner.invoke(main, args, env=env)
    assert result.exit_code == 0, result.output
    engine = make_engine(f"sqlite:///{path}")
    assert schema_revision(engine) == SCHEMA_REVISION
    engine.dispose()
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT due_zone FROM forecast").fetchall() == [("UTC",)]
    conn = lite.connect(path)
    assert conn is not None  # at the current schema: the fast path again
    conn.close()


def test_add_with_dates_in_words_stays_on_the_fast_path(tmp_path: Path) -> None:
    """The words are read by the fast grammar: ``add`` imports no date library (dateutil,
    dateparser) and, on an existing file, no SQLAlchemy."""
    code = (
        "import sys\n"
        "from tracker.cli import main\n"
        "try:\n"
        "    main(['add', 'x', '-p', '40%', '--due', sys.argv[1], '--criteria', 'c'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & "
        "{'dateutil', 'dateparser', 'sqlalchemy'}))\n"
    )
    env = {**os.environ, "TRACKER_DB": f"sqlite:///{tmp_path / 't.db'}"}
    for due in ("2030-12-31", "2030-12-31", "next friday", "31 Dec 2030", "end of 2030"):
        run = subprocess.run(
            [sys.executable, "-c", code, due], env=env, capture_output=True, text=True
        )
        assert run.returncode == 0, run.stderr
        assert "Added forecast" in run.stdout, run.stdout + run.stderr
    assert run.stdout.strip().splitlines()[-1] == "[]", run.stdout


def test_errors_name_a_time_the_same_way(cli: CliInvoke, tmp_path: Path) -> None:
    """An import's past due date is named as local time with its zone, not as ISO text."""
    path = tmp_path / "old.json"
    path.write_text(json.dumps([{"title": "t", "criteria": "c", "due": "2020-01-01"}]))
    assert cli("config", "set", "timezone", "Asia/Tokyo").exit_code == 0
    with freeze_time(NOW):
        result = cli("import", str(path))
    assert result.exit_code == 2
    assert "due: got 2020-01-01 23:59 JST, expected a date in the future" in result.output
