"""Small things a user met (issue 13, section 7): the demo from any folder of an installed
tracker, files written with the user's umask, ``-o`` into a missing folder, messages naming what is
missing or accepted, durations and counts as people read them, no negative zero, CJK table columns,
``list --search``."""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from freezegun import freeze_time
from sqlalchemy.engine import Engine

from predictions import store
from predictions.db import read_session
from predictions.records import ForecastQuery
from predictions.wording import duration, plural
from resolvers.sweep import SweepSettings, sweep
from tests.conftest import CliInvoke
from tests.resolvers.loopback import Loopback
from tests.resolvers.test_sweep import SETTINGS, _forecast
from tracker.display import table

ROOT = Path(__file__).resolve().parents[2]


def _add(cli: CliInvoke, title: str, *extra: str) -> int:
    result = cli("add", title, "-p", "70%", "--due", "+1y", "--criteria", "c", "--json", *extra)
    assert result.exit_code == 0, result.output
    return int(json.loads(result.stdout)["id"])


# --- tracker demo, installed (not editable), run from an empty folder -----------------------------


def test_demo_runs_from_any_folder_of_an_installed_tracker(tmp_path: Path) -> None:
    source = tmp_path / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    for folder in ("tracker", "predictions", "resolvers", "reports", "service", "examples"):
        shutil.copytree(
            ROOT / folder, source / folder, ignore=shutil.ignore_patterns("__pycache__")
        )
    site = tmp_path / "site"
    pip = subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(site), str(source)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert pip.returncode == 0, pip.stdout[-2000:] + pip.stderr[-2000:]
    assert (site / "tracker" / "examples" / "china-ai-forecasts.toml").is_file()
    assert (site / "service" / "templates" / "base.html").is_file()
    assert (site / "service" / "static" / "tracker.css").is_file()
    empty = tmp_path / "elsewhere"
    empty.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "TRACKER_DB"}
    env["PYTHONPATH"] = str(site)  # ahead of the editable checkout
    result = subprocess.run(
        [sys.executable, "-m", "tracker", "demo", "--dir", str(tmp_path / "demo")],
        cwd=empty, env=env, capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert str(site / "tracker" / "examples") in result.stdout  # the installed copy, not ROOT's
    assert (tmp_path / "demo" / "report.html").stat().st_size > 10_000
    assert not list(empty.iterdir())


# --- files for the user: umask, a missing folder ---------------------------------------------------


@pytest.fixture
def umask_022() -> Iterator[None]:
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def test_report_and_export_files_follow_the_umask(
    cli: CliInvoke, tmp_path: Path, umask_022: None
) -> None:
    _add(cli, "Q1")
    for args, path in (
        (("report", "--format", "html", "-o"), tmp_path / "report.html"),
        (("report", "-o"), tmp_path / "report.txt"),
        (("export", "-o"), tmp_path / "export.json"),
    ):
        result = cli(*args, str(path))
        assert result.exit_code == 0, result.output
        assert stat.S_IMODE(path.stat().st_mode) == 0o644, (args, oct(path.stat().st_mode))
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


@pytest.mark.parametrize("command", ["report", "export"])
def test_output_into_a_missing_folder_says_which(
    cli: CliInvoke, tmp_path: Path, command: str
) -> None:
    _add(cli, "Q1")
    missing = tmp_path / "no" / "such"
    result = cli(command, "-o", str(missing / "out.txt"))
    assert result.exit_code == 2
    [line] = result.stderr.splitlines()
    assert line.startswith("Error: --output: ") and f"no folder {missing})" in line, line
    assert ".partial" not in line and "Traceback" not in result.output


# --- messages: what is missing, what is accepted, what can be changed -----------------------------


def test_check_without_a_url_says_it_is_missing(cli: CliInvoke) -> None:
    result = cli(
        "add", "x", "-p", "50%", "--due", "+1y", "--criteria", "c", "--check", "page:contains=x"
    )
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        "Error: page check url: missing, expected an http:// or https:// URL"
    )


@pytest.mark.parametrize(
    ("spec", "params"),
    [
        (
            "page:url=https://x.org,contains=x,colour=red",
            "url, contains, match, regex, mode, otherwise",
        ),
        ("deadline:colour=red", "mode, otherwise"),
        ("json:url=https://x.org,path=a,colour=red", "url, path, op, threshold, mode, otherwise"),
    ],
)
def test_unknown_param_lists_every_param_the_kind_accepts(
    cli: CliInvoke, spec: str, params: str
) -> None:
    result = cli("add", "x", "-p", "50%", "--due", "+1y", "--criteria", "c", "--check", spec)
    assert result.exit_code == 2
    [line] = result.stderr.splitlines()
    assert line.endswith(f"check: got 'colour', expected one of the params {params}"), line


def test_amend_with_nothing_to_change_says_what_can_be(cli: CliInvoke) -> None:
    fid = _add(cli, "Q1")
    result = cli("amend", str(fid))
    assert result.exit_code == 2
    [line] = result.stderr.splitlines()
    assert line.startswith("Error: amend: ")
    for option in ("--title", "--criteria", "--due", "--tag", "--untag"):
        assert option in line


# --- durations and counts as people read them -----------------------------------------------------


@pytest.mark.parametrize(
    ("delta", "text"),
    [
        (timedelta(hours=4 / 3), "1 h 20 min"),
        (timedelta(seconds=45), "45 s"),
        (timedelta(minutes=90), "1 h 30 min"),
        (timedelta(hours=12), "12 h"),
        (timedelta(days=1, minutes=5), "1 day"),
        (timedelta(days=9, hours=5), "1 week 2 days"),
        (timedelta(days=-3), "3 days"),
        (timedelta(0), "0 s"),
    ],
)
def test_duration_reads_in_two_units(delta: timedelta, text: str) -> None:
    assert duration(delta) == text


def test_sweep_backing_off_reads_in_hours_and_minutes(engine: Engine) -> None:
    with Loopback() as web:
        web.route("/busy", status=503, headers={"Retry-After": "4800"})
        with freeze_time("2026-01-10 12:00:00"):
            _forecast(engine, {"kind": "page", "url": web.url + "/busy", "contains": "x"})
            report = sweep(engine, settings=SweepSettings(http=SETTINGS.http))
    [outcome] = report.outcomes
    assert outcome.action == "(backing off 1 h 20 min)", outcome.action


def test_counts_agree_with_their_nouns(cli: CliInvoke, tmp_path: Path) -> None:
    assert (plural(1, "forecast"), plural(0, "forecast")) == ("1 forecast", "0 forecasts")
    with freeze_time("2025-01-01 12:00:00"):
        added = cli("add", "Q1", "-p", "70%", "--due", "2025-03-01", "--criteria", "c",
                    "--check", "deadline")  # fmt: skip
    assert added.exit_code == 0 and "with 1 check" in added.stdout and "checks" not in added.stdout
    with freeze_time("2025-03-05 12:00:00"):
        assert cli("resolve", "1", "yes").exit_code == 0
        report = cli("report").stdout
        exported = cli("export", "-o", str(tmp_path / "one.json")).stdout
    assert "Scored: 1 forecast by 1 forecaster (" in report, report
    assert exported.startswith("Exported 1 forecast to ")


# --- reports: no negative zero -------------------------------------------------------------------


def test_reports_never_print_negative_zero(cli: CliInvoke, engine: Engine) -> None:
    from reports.build import ReportQuery, build_report
    from reports.render import render

    with freeze_time("2025-01-01 12:00:00"):
        for i, p in enumerate(("70%", "20%", "90%")):
            cli("add", f"Q{i}", "-p", p, "--due", "2025-03-01", "--criteria", "c")
    with freeze_time("2025-03-05 12:00:00"):
        for i, outcome in enumerate(("yes", "no", "no")):
            assert cli("resolve", str(i + 1), outcome).exit_code == 0
        with read_session(engine) as session:
            data = build_report(session, ReportQuery())
    overall = data["overall"]
    overall["murphy"]["within_bin_covariance"] = -1e-9  # a term that rounds to nothing
    overall["corp"]["brier"]["miscalibration"] = -0.0
    overall["brier_skill_vs_half"] = -1e-12
    for fmt in ("text", "md", "html"):
        text = render(data, fmt)
        assert not re.search(r"-0\.0+(?!\d*[1-9])", text), fmt
        assert "+0.00" not in text, fmt


# --- CJK in tables ----------------------------------------------------------------------------------


def test_table_columns_stay_aligned_with_cjk(capsys: pytest.CaptureFixture[str]) -> None:
    table(
        ("tags", "due", "title"),
        [("china", "2027-12-31", "a"), ("中国,人工智能", "2028-01-01", "b"), ("e\u0301t\u00e9", "2029-01-01", "c")],
    )  # fmt: skip
    lines = capsys.readouterr().out.splitlines()

    def column_of(line: str, text: str) -> int:  # display columns before ``text``
        import unicodedata

        before = line[: line.index(text)]
        return sum(
            0 if unicodedata.combining(c) else 2 if unicodedata.east_asian_width(c) in "WF" else 1
            for c in before
        )

    starts = {column_of(line, line.split()[-2]) for line in lines[1:]}
    assert len(starts) == 1 and column_of(lines[0], "due") in starts, lines


# --- list --search ---------------------------------------------------------------------------------


def test_list_search_matches_title_criteria_and_tags_ignoring_case(
    cli: CliInvoke, engine: Engine
) -> None:
    qwen = _add(cli, "Alibaba releases Qwen4 as open weights", "--tag", "china")
    deepseek = cli("add", "DeepSeek R3 by 2028", "-p", "40%", "--due", "+1y", "--criteria",
                   "Resolves YES if 100% of the weights are published.", "--tag", "open_models",
                   "--json")  # fmt: skip
    other = _add(cli, "Humanoid robots in factories")
    ds = int(json.loads(deepseek.stdout)["id"])

    def found(text: str) -> list[int]:
        result = cli("list", "--search", text, "--json")
        assert result.exit_code == 0, result.output
        return sorted(r["id"] for r in json.loads(result.stdout))

    assert found("QWEN") == [qwen]  # title, any case
    assert found("weights") == sorted([qwen, ds])  # title and criteria
    assert found("China") == [qwen]  # tag
    assert found("100%") == [ds] and found("0%") == [ds]  # % is a plain character
    assert found("open_") == [ds] and found("n_m") == [ds]  # so is _
    assert found("%") == [ds] and found("_") == [ds]
    assert found("robots") == [other]
    assert found("nothing like this") == []
    assert "No open forecasts matching 'zzz'." in cli("list", "--search", "zzz").stdout
    text = cli("list", "--search", "qwen").stdout
    assert "Qwen4" in text and "DeepSeek" not in text
    # The same filter through SQLAlchemy (the path every backend but a SQLite file takes).
    with read_session(engine) as session:
        rows = store.list_forecasts(session, ForecastQuery(status="all", search="WEIGHTS"))
    assert sorted(f.id for f in rows) == sorted([qwen, ds])
