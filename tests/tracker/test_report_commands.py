"""``tracker report`` end to end on SQLite and PostgreSQL: formats, filters, output file, errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from freezegun import freeze_time

from tests.conftest import CliInvoke


def _history(cli: CliInvoke) -> None:
    """Four questions: alice and bob forecast, one annulled, one still open past its due date."""
    with freeze_time("2025-01-01 12:00:00"):
        assert (
            cli(
                "add", "Q1", "-p", "70%", "--due", "2025-03-01", "--criteria", "c", "--tag", "china"
            ).exit_code
            == 0
        )
        assert (
            cli(
                "add", "Q2", "-p", "20%", "--due", "2025-05-01", "--criteria", "c", "--tag", "us"
            ).exit_code
            == 0
        )
        assert (
            cli("add", "Q3", "-p", "50%", "--due", "2025-05-01", "--criteria", "c").exit_code == 0
        )
        assert (
            cli("add", "Q4", "-p", "90%", "--due", "2025-06-01", "--criteria", "c").exit_code == 0
        )
    with freeze_time("2025-02-01 12:00:00"):
        assert cli("update", "1", "-p", "80%", "--by", "bob").exit_code == 0
    with freeze_time("2025-03-05 12:00:00"):
        assert cli("resolve", "1", "yes").exit_code == 0
        assert cli("annul", "3", "--note", "moot").exit_code == 0
    with freeze_time("2025-05-02 12:00:00"):
        assert cli("resolve", "2", "no").exit_code == 0


def test_report_text_summary(cli: CliInvoke) -> None:
    _history(cli)
    with freeze_time("2025-07-01 12:00:00"):
        result = cli("report")
    assert result.exit_code == 0, result.output
    out = result.output
    assert (
        "Questions: 4 (2 resolved, 1 annulled and excluded, 1 past due awaiting resolution" in out
    )
    assert "Scored: 3 forecasts by 2 forecasters" in out
    # (0.09 + 0.04 + 0.04) / 3
    assert "Brier score      0.057" in out
    assert "70%-80%" in out and "80%-90%" in out and "20%-30%" in out
    assert "Only 3 scored forecasts" in out


def test_report_json_is_the_report_dict(cli: CliInvoke) -> None:
    _history(cli)
    with freeze_time("2025-07-01 12:00:00"):
        data = json.loads(cli("report", "--format", "json", "--group-by", "forecaster").output)
        same = json.loads(cli("report", "--json", "--group-by", "forecaster").output)
    assert data["counts"]["pending"] == 1 and data["counts"]["annulled"] == 1
    assert {g["key"]: g["count"] for g in data["groups"]} == {"alice": 2, "bob": 1}
    assert data["overall"]["brier"] == pytest.approx((0.09 + 0.04 + 0.04) / 3)
    assert same["overall"] == data["overall"]


def test_report_filters_and_group_by(cli: CliInvoke) -> None:
    _history(cli)
    with freeze_time("2025-07-01 12:00:00"):
        china = json.loads(cli("report", "--json", "--tag", "china").output)
        bob = json.loads(cli("report", "--json", "--by", "bob").output)
        spring = json.loads(
            cli("report", "--json", "--since", "2025-04", "--until", "2025-05-31").output
        )
        months = json.loads(cli("report", "--json", "--group-by", "month").output)
        horizon = json.loads(cli("report", "--json", "--group-by", "horizon").output)
    assert china["counts"]["scored"] == 2 and china["counts"]["questions"] == 1
    assert bob["counts"]["scored"] == 1 and bob["overall"]["brier"] == pytest.approx(0.04)
    assert spring["counts"]["scored"] == 1 and spring["overall"]["brier"] == pytest.approx(0.04)
    assert [g["key"] for g in months["groups"]] == ["2025-03", "2025-05"]
    assert {g["key"] for g in horizon["groups"]} == {
        "1 week - 1 month",
        "1-3 months",
        "3-12 months",
    }


def test_report_markdown_and_html_to_a_file(cli: CliInvoke, tmp_path: Path) -> None:
    _history(cli)
    target = tmp_path / "report.html"
    with freeze_time("2025-07-01 12:00:00"):
        result = cli("report", "--format", "html", "-o", str(target), "--title", "A <b>& c")
        md = cli("report", "--format", "md", "--group-by", "tag").output
    assert result.exit_code == 0 and result.output.strip() == f"Wrote {target}"
    html = target.read_text(encoding="utf-8")
    assert html.startswith("<!DOCTYPE html>") and "<svg" in html
    assert "<title>A &lt;b&gt;&amp; c</title>" in html and "<b>&" not in html
    assert "http://" not in html.replace("http://www.w3.org", "") and "https://" not in html
    assert md.startswith("# Calibration report")
    assert "| china | 2 |" in md and "| 70%-80% | 1 |" in md


def test_report_on_an_empty_database(cli: CliInvoke) -> None:
    result = cli("report")
    assert result.exit_code == 0
    assert "No resolved forecasts to score yet." in result.output
    assert json.loads(cli("report", "--json").output)["overall"] == {"count": 0}
    assert "No resolved forecasts" in cli("report", "--format", "html").output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--since", "2025-13"], "Error: since: got '2025-13', expected a date"),
        (["--until", "yesterday"], "Error: until: got 'yesterday', expected a date"),
        (["--since", "2025-06", "--until", "2025-01"], "Error: since: got '2025-06-01'"),
        (["--tag", "two words"], "Error: tag: got 'two words'"),
        (["--group-by", "week"], "Error: Invalid value for '--group-by'"),
        (["--format", "pdf"], "Error: Invalid value for '--format'"),
    ],
)
def test_report_refuses_bad_input(cli: CliInvoke, args: list[str], message: str) -> None:
    result = cli("report", *args)
    assert result.exit_code == 2
    assert result.output.startswith(message), result.output
    assert "Traceback" not in result.output


def test_report_in_a_subprocess(tracker_env: dict[str, str], cli: CliInvoke) -> None:
    _history(cli)
    done = subprocess.run(
        [sys.executable, "-m", "tracker", "report", "--format", "json", "--until", "2025-12-31"],
        env=tracker_env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["counts"]["scored"] == 3
