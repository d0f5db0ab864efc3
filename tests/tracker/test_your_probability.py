"""'Your' probability is yours (issue 13, section 2): list, show and --json show the viewing
forecaster's own latest estimate, the other people's and the markets' beside it, labelled; the
login name is said when it is used; `config set forecaster NAME` takes over the login name's
records by a ledger entry. On real SQLite files and PostgreSQL, a real sweep, a loopback Manifold.
"""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine

from predictions import records
from predictions.db import read_session
from predictions.ledger import verify
from resolvers.base import MarketResolver
from resolvers.http import HttpSettings
from resolvers.registry import kinds
from resolvers.sweep import SweepSettings, sweep
from tests.conftest import CliInvoke
from tests.resolvers.recorded_sources import RecordedSource, fixture, serve

MARKET = "Qx7r2LmN8pTaVc3kYw1Z"


@pytest.fixture
def source() -> Iterator[RecordedSource]:
    yield from serve()


@pytest.fixture
def unconfigured(monkeypatch: pytest.MonkeyPatch) -> str:
    """No forecaster configured: the login name (``root`` here) is the name."""
    monkeypatch.delenv("TRACKER_FORECASTER", raising=False)
    for name in ("LOGNAME", "USER", "LNAME", "USERNAME"):
        monkeypatch.setenv(name, "root")
    return "root"


def _add(cli: CliInvoke, title: str, p: str, *extra: str) -> int:
    result = cli("add", title, "-p", p, "--due", "2030-12-31", "--criteria", "c", "--json", *extra)
    assert result.exit_code == 0, result.output
    return int(json.loads(result.stdout)["id"])


def _rows(cli: CliInvoke, *args: str) -> dict[str, list[str]]:
    """``list``'s table as {id: cells}, cells split on the two-space column gaps."""
    result = cli("list", *args)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["id", "p", "others", "due", "when", "tags", "title"]
    return {
        line.split()[0]: [c.strip() for c in line.split("  ") if c.strip()] for line in lines[1:]
    }


def test_the_issue_story_my_list_shows_my_70_percent(
    cli: CliInvoke, engine: Engine, source: RecordedSource
) -> None:
    """I forecast 70%, a manifold check records 18%, a colleague records 40%: my list shows 70%
    with the colleague's and the market's beside it, labelled."""
    body = json.loads(fixture("manifold", "binary_open.json"))
    source.route(f"/v0/market/{MARKET}", json.dumps({**body, "probability": 0.18}).encode())
    check = f"manifold:id={MARKET},base_url={source.url}"
    fid = _add(cli, "Provincial AI clusters by 2030", "70%", "--check", check)
    report = sweep(engine, settings=SweepSettings(http=HttpSettings(allow_private=True)))
    assert report.checked == 1 and not report.errors
    assert cli("update", str(fid), "-p", "40%", "--by", "bob").exit_code == 0

    row = _rows(cli)[str(fid)]
    assert row[1:3] == ["70%", "bob 40%, mkt 18%"]
    record = json.loads(cli("list", "--json").stdout)[0]
    assert (record["forecaster"], record["probability"]) == ("alice", 0.7)
    assert record["others"] == {"median": 0.4, "latest": {"bob": 0.4}}
    assert record["market"] == {"manifold": 0.18}
    shown = cli("show", str(fid)).stdout
    latest = shown.split("  latest:\n")[1].split("  estimates:")[0].splitlines()
    assert [line.split() for line in latest] == [
        ["70%", "alice", "(you)"],
        ["40%", "bob", "(other)"],
        ["18%", "manifold", "(market)"],
    ]
    assert json.loads(cli("show", str(fid), "--json").stdout)["probability"] == 0.7
    # Bob sees his own 40%, with mine beside it.
    assert _rows(cli, "--by", "bob")[str(fid)][1:3] == ["40%", "alice 70%, mkt 18%"]
    bobs = json.loads(cli("show", str(fid), "--by", "bob", "--json").stdout)
    assert (bobs["probability"], bobs["others"]["latest"]) == (0.4, {"alice": 0.7})
    assert "40%  bob (you)" in cli("show", str(fid), "--by", "bob").stdout


def test_a_forecast_i_have_not_forecast_shows_a_dash_and_the_median_of_the_others(
    cli: CliInvoke,
) -> None:
    fid = _add(cli, "Not mine", "30%", "--by", "bob")
    for who, p in (("carol", "60%"), ("dan", "50%"), ("bob", "40%"), ("polymarket", "35%")):
        assert cli("update", str(fid), "-p", p, "--by", who).exit_code == 0
    assert _rows(cli)[str(fid)][1:3] == ["-", "med 50% (3), mkt 35%"]
    record = json.loads(cli("list", "--json").stdout)[0]
    assert record["probability"] is None
    assert record["others"] == {"median": 0.5, "latest": {"bob": 0.4, "carol": 0.6, "dan": 0.5}}
    assert record["market"] == {"polymarket": 0.35}
    shown = cli("show", str(fid)).stdout
    assert "     -  alice (you)" in shown
    assert "50%  median of 3 others" in shown and "35%  polymarket (market)" in shown
    # A forecast nobody else has forecast: an empty others cell.
    mine = _add(cli, "Mine alone", "20%")
    assert _rows(cli)[str(mine)][1:3] == ["20%", "2030-12-31"]
    # Only such forecasts listed: no others column at all.
    header = cli("list", "--by", "alice").stdout.splitlines()[0]
    assert header.split() == ["id", "p", "due", "when", "tags", "title"]


def test_my_latest_is_the_latest_made_not_the_latest_recorded(cli: CliInvoke) -> None:
    fid = _add(cli, "Q", "70%")
    assert cli("update", str(fid), "-p", "0.62").exit_code == 0
    assert cli("update", str(fid), "-p", "0.9", "--by", "bob").exit_code == 0
    record = json.loads(cli("show", str(fid), "--json").stdout)
    assert (record["probability"], record["others"]["latest"]) == (0.62, {"bob": 0.9})


def test_the_market_forecasters_are_the_market_resolver_kinds() -> None:
    """The sweep records a market's price under its kind's name: exactly these are markets."""
    markets = {name for name, kind in kinds().items() if issubclass(kind, MarketResolver)}
    assert markets == set(records.MARKET_FORECASTERS)
    assert records.is_market("manifold") and not records.is_market("alice")


def test_the_login_name_is_said_on_a_write_while_no_name_is_configured(
    cli: CliInvoke, unconfigured: str
) -> None:
    note = 'Note: recording as "root" (set your name: tracker config set forecaster NAME)\n'
    result = cli("add", "Q", "-p", "70%", "--due", "2030-12-31", "--criteria", "c")
    assert result.exit_code == 0 and result.stderr == note
    assert cli("update", "1", "-p", "60%").stderr == note
    assert cli("update", "1", "-p", "50%", "--by", "bob").stderr == ""  # a name given
    assert cli("list").stderr == "" and cli("show", "1").stderr == ""  # reads say nothing
    assert json.loads(cli("show", "1", "--json").stdout)["author"] == "root"
    assert cli("config", "set", "forecaster", "alice", "--no-take-over").exit_code == 0
    assert cli("update", "1", "-p", "55%").stderr == ""
    assert cli("update", "1", "-p", "56%", env={"TRACKER_FORECASTER": "erin"}).stderr == ""


def test_config_set_forecaster_takes_over_the_login_names_records_by_a_ledger_entry(
    cli: CliInvoke, engine: Engine, unconfigured: str, tmp_path: Path
) -> None:
    fid = _add(cli, "Before I set my name", "70%")
    assert cli("update", str(fid), "-p", "40%", "--by", "bob").exit_code == 0
    other = _add(cli, "Bob's", "20%", "--by", "bob")

    # Not on a terminal and not told: nothing is taken over, and the way to do it is said.
    result = cli("config", "set", "forecaster", "alice")
    assert result.exit_code == 0, result.output
    assert result.stderr == (
        'Note: 1 forecast and 1 estimate stay recorded as "root"; to make them alice\'s: '
        "tracker config set forecaster alice --take-over\n"
    )
    assert _rows(cli)[str(fid)][1:3] == ["-", "med 55% (2)"]  # root and bob are others

    result = cli("config", "set", "forecaster", "alice", "--take-over")
    assert result.exit_code == 0, result.output
    assert 'Took over 1 forecast and 1 estimate from "root"' in result.stdout
    assert _rows(cli)[str(fid)][1:3] == ["70%", "bob 40%"]
    assert _rows(cli)[str(other)][1:3] == ["-", "bob 20%"]
    record = json.loads(cli("show", str(fid), "--json").stdout)
    assert record["author"] == "alice"
    assert [e["by"] for e in record["estimates"]] == ["alice", "bob"]
    with read_session(engine) as s:
        report = verify(s)
        assert report.ok, report.problem
        [(kind, payload)] = s.execute(
            text("SELECT kind, payload FROM ledger WHERE forecast_id IS NULL")
        ).all()
    assert kind == "take_over"
    assert json.loads(payload) == {
        "from": "root", "to": "alice", "at": json.loads(payload)["at"],
        "forecasts": [fid], "estimates": [1],
    }  # fmt: skip
    # Taken over once: nothing of root's is left to take.
    assert "Took over" not in cli("config", "set", "forecaster", "alice", "--take-over").stdout
    # The take-over is on the record: the table changed back behind the ledger is caught.
    with engine.begin() as conn:
        conn.execute(text("UPDATE estimate SET forecaster = 'root' WHERE id = 1"))
    with read_session(engine) as s:
        report = verify(s)
    assert not report.ok
    assert "estimate 1 (forecast 1): forecaster is 'root' in the table" in str(report.problem)


def test_no_take_over_and_bad_names_leave_everything_unchanged(
    cli: CliInvoke, engine: Engine, unconfigured: str, tmp_path: Path
) -> None:
    fid = _add(cli, "Q", "70%")
    result = cli("config", "set", "forecaster", "alice", "--no-take-over")
    assert result.exit_code == 0 and result.stderr == ""
    assert _rows(cli)[str(fid)][1:3] == ["-", "root 70%"]
    config = Path(os.environ["TRACKER_CONFIG"])
    before = config.read_text()
    with read_session(engine) as s:
        entries = s.execute(text("SELECT COUNT(*) FROM ledger")).scalar()
    for args, expected in (
        (("forecaster", "manifold", "--take-over"), "a person's name, not a market's"),
        (("forecaster", "two\nlines", "--take-over"), "forecaster: got"),
        (("timezone", "UTC", "--take-over"), "--take-over: got 'timezone'"),
    ):
        result = cli("config", "set", *args)
        assert result.exit_code == 2, result.output
        assert expected in result.stderr and result.stderr.startswith("Error: ")
    assert config.read_text() == before
    with read_session(engine) as s:
        assert s.execute(text("SELECT COUNT(*) FROM ledger")).scalar() == entries
    assert json.loads(cli("show", str(fid), "--json").stdout)["author"] == "root"


def test_config_set_forecaster_before_any_database_creates_none(
    cli: CliInvoke, unconfigured: str, tmp_path: Path
) -> None:
    missing = tmp_path / "nowhere" / "t.db"
    result = cli("config", "set", "forecaster", "alice", env={"TRACKER_DB": str(missing)})
    assert result.exit_code == 0, result.output
    assert not missing.exists() and not missing.parent.exists()


def test_config_set_forecaster_asks_on_a_terminal(
    tmp_path: Path, unconfigured: str, db_url: str
) -> None:
    """On a terminal, `config set forecaster` asks before taking over (answered here through a
    pseudo-terminal)."""
    env = dict(os.environ, TRACKER_DB=db_url)
    tracker = [str(Path(sys.executable).parent / "tracker")]
    add = [*tracker, "add", "Q", "-p", "70%", "--due", "2030-12-31", "--criteria", "c"]
    subprocess.run(add, env=env, check=True, capture_output=True)
    master, slave = pty.openpty()
    try:
        proc = subprocess.Popen(
            [*tracker, "config", "set", "forecaster", "alice"],
            env=env, stdin=slave, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )  # fmt: skip
        os.write(master, b"y\n")
        out, err = proc.communicate(timeout=60)
    finally:
        os.close(master)
        os.close(slave)
    assert proc.returncode == 0, err
    text_out = out.decode()
    assert 'are recorded as "root" (your login name). Make them alice\'s? [Y/n]' in text_out
    assert 'Took over 1 forecast and 1 estimate from "root"' in text_out
    listed = subprocess.run(
        [*tracker, "list", "--json"], env=env, check=True, capture_output=True, text=True
    )
    assert json.loads(listed.stdout)[0]["probability"] == 0.7


def test_list_reads_only_each_forecasters_latest_through_one_index(
    cli: CliInvoke, engine: Engine
) -> None:
    """A market's long price history is not read by `list`: each forecaster's latest estimate on
    the page comes from one query on ``ix_estimate_latest``, and the standing is the same as
    from the whole history."""
    from predictions import store
    from predictions.db import write_session

    fids = [_add(cli, f"Q{i}", "70%") for i in range(3)]
    with write_session(engine) as s:
        for fid in fids:
            for day in range(1, 29):  # made out of order: the latest made, not the last recorded
                p = 0.5 if day == 20 else 0.01 * day
                at = f"2026-02-{29 - day if day != 20 else 28:02d}"
                store.add_estimate(s, fid, "manifold", p, made_at=datetime.fromisoformat(at))
            store.add_estimate(s, fid, "bob", 0.3)
    query = records.ForecastQuery(status="open")
    with read_session(engine) as s:
        full = store.list_forecasts(s, query)
        latest = store.list_forecasts(s, query, latest_only=True)
        assert [len(f.estimates) for f in latest] == [3, 3, 3]
        assert [records.standing(f, "alice") for f in latest] == [
            records.standing(f, "alice") for f in full
        ]
        assert records.standing(latest[0], "alice").markets[0].probability == 0.5
        if engine.dialect.name == "sqlite":
            within = "forecast_id IN (1, 2, 3)"
            plan = s.execute(text("EXPLAIN QUERY PLAN " + store._LATEST.format(within=within)))
            steps = [row[-1] for row in plan]
            assert all("SCAN estimate" not in step for step in steps), steps
            assert sum("COVERING INDEX ix_estimate_latest" in step for step in steps) == 2, steps
    assert _rows(cli)[str(fids[0])][1:3] == ["70%", "bob 30%, mkt 50%"]
