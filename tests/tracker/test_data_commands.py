"""`tracker import` and `tracker export` end to end through the CLI, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import CliInvoke

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _add_some(cli: CliInvoke) -> None:
    for title, p in (("Provincial AI clusters by 2030", "70%"), ("AI law by 2028", "30")):
        result = cli("add", title, "-p", p, "--due", "2030-12-31", "--criteria", "c", "--tag", "x")
        assert result.exit_code == 0, result.output
    assert cli("update", "1", "-p", "0.6", "--by", "bob", "--note", "hmm").exit_code == 0
    assert cli("amend", "2", "--criteria", "c2").exit_code == 0
    assert cli("resolve", "1", "yes", "--evidence", "https://example.org").exit_code == 0


@pytest.mark.parametrize("fmt", ["json", "csv", "toml"])
def test_data_export_import_export_is_byte_identical_across_databases(
    cli: CliInvoke, tmp_path: Path, fmt: str
) -> None:
    _add_some(cli)
    assert cli("import", str(EXAMPLES / "china-ai-forecasts.toml")).exit_code == 0
    first = tmp_path / f"first.{fmt}"
    result = cli("export", "--format", fmt, "-o", str(first))
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("Exported 17 forecasts to")
    target = {"TRACKER_DB": f"sqlite:///{tmp_path / 'restored.db'}"}

    restored = cli("import", str(first), env=target)

    assert restored.exit_code == 0, restored.output
    assert "verifies: restored exactly" in restored.stdout
    again = cli("export", "--format", fmt, env=target)
    assert again.stdout == first.read_text(encoding="utf-8")
    assert cli("verify", env=target).exit_code == 0


def test_data_import_examples_then_verify_and_list(cli: CliInvoke) -> None:
    result = cli("import", str(EXAMPLES / "china-ai-forecasts.toml"))
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("Imported 15 forecasts (15 estimates, 0 resolved")
    assert "13 checks" in result.stdout
    pb = cli("import", str(EXAMPLES / "predictionbook-excerpt.json"), "--json")
    summary = json.loads(pb.stdout)
    assert (summary["format"], summary["forecasts"], summary["resolved"]) == (
        "predictionbook",
        300,
        300,
    )
    verified = cli("verify")
    assert verified.exit_code == 0
    assert verified.stdout.startswith("OK: ")
    listed = json.loads(cli("list", "--tag", "ai-safety", "--json").stdout)
    assert len(listed) == 4


def test_data_import_refuses_a_bad_file_whole(
    cli: CliInvoke, tmp_path: Path, counts: Callable[[], dict[str, int]]
) -> None:
    _add_some(cli)
    before = counts()
    bad = tmp_path / "bad.csv"
    bad.write_text(
        "title,criteria,due,probability\nFine,c,2030,0.5\nBroken,c,yesterday,abc\n",
        encoding="utf-8",
    )

    result = cli("import", str(bad))

    assert result.exit_code == 2
    assert result.stderr.splitlines()[0] == f"Error: {bad}: 2 problems, nothing imported"
    assert "line 3: due: got 'yesterday'" in result.stderr
    assert "line 3, estimate 1: probability: got 'abc'" in result.stderr
    assert "Traceback" not in result.output
    assert counts() == before


def test_data_dry_run_checks_everything_and_writes_nothing(
    cli: CliInvoke, counts: Callable[[], dict[str, int]]
) -> None:
    before = counts()
    result = cli("import", str(EXAMPLES / "predictionbook-excerpt.json"), "--dry-run")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("Would import 300 forecasts")
    assert "Dry run: nothing was written." in result.stdout
    assert counts() == before


def test_data_reimport_is_refused_or_skipped(cli: CliInvoke) -> None:
    path = str(EXAMPLES / "china-ai-forecasts.toml")
    assert cli("import", path).exit_code == 0
    again = cli("import", path)
    assert again.exit_code == 2
    assert again.stderr.splitlines() == [
        f"Error: {path}: 15 of its forecasts are already in this database, nothing imported "
        "(--skip-existing skips them): forecast 1 (line 18) is ref "
        "'example:china-ai/provincial-ai-clusters-2030'; forecast 2 (line 34) is ref "
        "'example:china-ai/loss-of-control-standard-2027'; forecast 3 (line 52) is ref "
        "'example:china-ai/national-ai-law-2028'; ..."
    ]
    skipped = cli("import", path, "--skip-existing", "--json")
    assert skipped.exit_code == 0
    assert (json.loads(skipped.stdout)["forecasts"], json.loads(skipped.stdout)["skipped"]) == (
        0,
        15,
    )


@pytest.mark.parametrize("fmt", ["json", "csv", "toml"])
def test_data_export_reimported_into_the_same_database_is_recognised(
    cli: CliInvoke, tmp_path: Path, fmt: str, counts: Callable[[], dict[str, int]]
) -> None:
    """Bug: an export imported back into its own database imported every forecast again (with
    --skip-existing too), and a duplicated resolved forecast counted twice in every score."""
    _add_some(cli)  # forecasts without a ref: one resolved, one amended, an estimate by bob
    export = tmp_path / f"b.{fmt}"
    assert cli("export", "--format", fmt, "-o", str(export)).exit_code == 0
    before = counts()

    again = cli("import", str(export))

    assert again.exit_code == 2, again.output
    assert len(again.stderr.splitlines()) == 1
    assert again.stderr.startswith(
        f"Error: {export}: 2 of its forecasts are already in this database, nothing imported "
        "(--skip-existing skips them): "
    )
    assert "is forecast 1 here" in again.stderr and "is forecast 2 here" in again.stderr
    assert counts() == before

    assert (
        cli("add", "A third one", "-p", "20%", "--due", "2031-01-01", "--criteria", "c").exit_code
        == 0
    )
    skipped = cli("import", str(export), "--skip-existing")

    assert skipped.exit_code == 0, skipped.output
    assert skipped.stdout.startswith(
        f"Imported 0 forecasts (0 estimates, 0 resolved, 0 annulled, 0 amendments, 0 checks) "
        f"from b.{fmt} [{fmt}]; skipped 2 already imported"
    )
    listed = json.loads(cli("list", "--status", "all", "--limit", "0", "--json").stdout)
    assert sorted(f["title"] for f in listed) == [
        "A third one",
        "AI law by 2028",
        "Provincial AI clusters by 2030",
    ]
    assert cli("verify").exit_code == 0


def test_data_export_imported_into_another_database_and_back_is_recognised(
    cli: CliInvoke, tmp_path: Path
) -> None:
    """The registration, not the id, is what is recognised: a forecast exported to a second
    database (where it gets other ids) and exported back is already there."""
    other = {"TRACKER_DB": f"sqlite:///{tmp_path / 'other.db'}"}
    assert (
        cli(
            "add",
            "Only in the other",
            "-p",
            "50%",
            "--due",
            "2031-01-01",
            "--criteria",
            "c",
            env=other,
        ).exit_code
        == 0
    )
    _add_some(cli)
    first = tmp_path / "first.json"
    assert cli("export", "-o", str(first)).exit_code == 0
    assert cli("import", str(first), env=other).exit_code == 0
    back = tmp_path / "back.json"
    assert cli("export", "-o", str(back), env=other).exit_code == 0

    result = cli("import", str(back), "--skip-existing", "--json")

    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert (summary["forecasts"], summary["skipped"]) == (1, 2)
    assert cli("verify").exit_code == 0


def test_data_forecastbench_with_resolutions(cli: CliInvoke, shared_data: Path) -> None:
    result = cli(
        "import",
        str(shared_data / "forecastbench-2025-10-26-questions.json"),
        "--resolutions",
        str(shared_data / "forecastbench-2025-10-26-resolutions.json"),
        "--json",
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["format"] == "forecastbench"
    assert summary["resolved"] == 1089
    assert cli("verify").exit_code == 0


def test_data_import_argument_errors(cli: CliInvoke, tmp_path: Path) -> None:
    missing = cli("import", str(tmp_path / "nope.json"))
    assert missing.exit_code == 2
    assert "does not exist" in missing.stderr
    odd = tmp_path / "data.bin"
    odd.write_bytes(b"\x00\x01\x02")
    unknown = cli("import", str(odd))
    assert unknown.exit_code == 2
    assert "give --format" in unknown.stderr
    wrong = cli(
        "import",
        str(EXAMPLES / "china-ai-forecasts.toml"),
        "--resolutions",
        str(EXAMPLES / "predictionbook-excerpt.json"),
    )
    assert wrong.exit_code == 2
    assert "only with a ForecastBench question set" in wrong.stderr


def test_data_import_is_quiet_when_piped(tracker_env: dict[str, str], tmp_path: Path) -> None:
    env = {**tracker_env, "TRACKER_CONFIG": str(tmp_path / "c.toml")}
    done = subprocess.run(
        [sys.executable, "-m", "tracker", "import", str(EXAMPLES / "predictionbook-excerpt.json")],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=os.getcwd(),
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert done.stdout.startswith("Imported 300 forecasts")
