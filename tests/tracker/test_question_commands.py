"""Numeric, date and multiple-choice questions through the CLI (add, update, list, show, resolve),
on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from freezegun import freeze_time

from predictions.questions import GRID
from tests.conftest import CliInvoke

NUMERIC = ["How many provinces host national AI computing hubs by 2030?", "--numeric", "0..34",
           "--quantiles", "10%=4,50%=8,90%=15", "--due", "2030-12-31", "--criteria",
           "Count in the NDRC list"]  # fmt: skip
DATE = ["When does China publish a national AI loss-of-control standard?", "--date",
        "2026-01-01..2035-12-31", "--quantiles", "25%=2027-06,50%=2028-06,75%=2030", "--due",
        "2035-12-31", "--criteria", "A national standard (GB or GB/T) is published"]  # fmt: skip
CHOICE = ["Which lab ships the first Chinese open-weight model above 90 on MMLU-Pro?",
          "--options", "DeepSeek,Alibaba Qwen,Moonshot,Zhipu,Other", "-p", "35,30,15,10,10",
          "--due", "2027-12-31", "--criteria", "The first such model on the leaderboard"]  # fmt: skip

pytestmark = pytest.mark.usefixtures("_frozen")


@pytest.fixture
def _frozen() -> Any:
    with freeze_time("2026-03-01 12:00:00"):
        yield


def _json(cli: CliInvoke, *args: str) -> Any:
    result = cli(*args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_add_numeric_stores_the_cdf_and_says_its_median(cli: CliInvoke) -> None:
    result = cli("add", *NUMERIC)
    assert result.exit_code == 0, result.output
    assert result.stdout == (
        "Added forecast 1: How many provinces host national AI computing hubs by 2030? "
        "(median 8, due 2030-12-31)\n"
    )
    record = _json(cli, "show", "1")
    assert record["kind"] == "numeric" and record["probability"] is None
    assert record["question"] == {"lower": 0.0, "upper": 34.0, "open_lower": False,
                                  "open_upper": False, "log": False}  # fmt: skip
    cdf = record["estimates"][0]["cdf"]
    assert len(cdf) == GRID and cdf[0] == 0.0 and cdf[-1] == 1.0


def test_add_date_and_choice_questions(cli: CliInvoke) -> None:
    dated = cli("add", *DATE, "--open", "upper")
    assert dated.exit_code == 0, dated.output
    assert "(median 2028-06-02, due 2035-12-31)" in dated.stdout
    choice = _json(cli, "add", *CHOICE, "--ordered")
    assert choice["kind"] == "choice"
    assert choice["question"] == {
        "options": ["DeepSeek", "Alibaba Qwen", "Moonshot", "Zhipu", "Other"],
        "ordered": True,
    }
    assert choice["estimates"][0]["probabilities"] == [0.35, 0.3, 0.15, 0.1, 0.1]
    record = _json(cli, "show", "1")
    assert (
        record["question"]["upper"] == "2035-12-31T00:00:00Z" and record["question"]["open_upper"]
    )
    logged = cli("add", "Compute", "--numeric", "1..1000", "--log", "--distribution",
                 "lognormal:3,1", "--due", "2030", "--criteria", "c")  # fmt: skip
    assert logged.exit_code == 0, logged.output
    assert "median 20.1" in logged.stdout


def test_update_numeric_and_choice_forecasts(cli: CliInvoke) -> None:
    cli("add", *NUMERIC)
    cli("add", *CHOICE)
    moved = cli("update", "1", "--quantiles", "10%=5,50%=9,90%=14", "--note", "new list")
    assert moved.stdout == "Forecast 1: alice median 8 -> median 9\n"
    other = cli("update", "1", "--distribution", "normal:9,3", "--by", "bob")
    assert other.stdout == "Forecast 1: bob median 9\n"
    choice = cli("update", "2", "-p", "30%,40%,10%,10%,10%")
    assert choice.stdout == "Forecast 2: alice DeepSeek 35% -> Alibaba Qwen 40%\n"
    record = _json(cli, "show", "2")
    assert [e["probabilities"][1] for e in record["estimates"]] == [0.3, 0.4]
    listed = cli("list").stdout
    assert "Alibaba Qwen 40%" in listed
    assert "median 9 " in listed and "bob median 9 " in listed


def test_show_draws_the_forecast_and_its_history(cli: CliInvoke) -> None:
    cli("add", *NUMERIC, "--open", "upper")
    cli("update", "1", "--quantiles", "10%=5,50%=9,90%=14")
    cli("add", *CHOICE)
    shown = cli("show", "1").stdout
    assert "  question: numeric 0..34 (open upper)\n" in shown
    assert "    10%: 5  25%: 6.5  50%: 9  75%: 12.1  90%: 14\n" in shown
    sparkline = next(line for line in shown.splitlines() if line.startswith("    0 "))
    assert sparkline.endswith(" 34  (above 34: 0.1%)") and "█" in sparkline
    assert "median 8  alice" in shown and "median 9  alice" in shown
    bars = cli("show", "2").stdout
    assert "    DeepSeek         35%  ██████████████\n" in bars
    assert "    Other            10%  ████\n" in bars


def test_resolve_takes_a_number_a_date_and_an_option(cli: CliInvoke) -> None:
    cli("add", *NUMERIC)
    cli("add", *DATE)
    cli("add", *CHOICE)
    assert cli("resolve", "1", "11").stdout.startswith("Forecast 1 resolved 11: ")
    assert cli("resolve", "2", "2029-03-04").stdout.startswith("Forecast 2 resolved 2029-03-04")
    resolved = _json(cli, "resolve", "3", "alibaba qwen", "--note", "Qwen 4")
    assert resolved["resolution_value"] == 1.0 and resolved["outcome"] is None
    assert _json(cli, "show", "2")["resolution_value"] == 1867276800.0  # 2029-03-04 UTC
    listed = cli("list", "--status", "resolved").stdout
    assert "  11  " in listed and "2029-03-04" in listed and "Alibaba Qwen" in listed
    shown = cli("show", "3").stdout
    assert "  status:   resolved (Alibaba Qwen)" in shown
    assert "Alibaba Qwen     30%  ████████████  <- resolved" in shown
    assert cli("reopen", "3", "--note", "mistake").exit_code == 0
    assert cli("resolve", "3", "1").exit_code == 0  # an option by its number
    history = cli("show", "3").stdout
    assert "resolved Alibaba Qwen by alice" in history and "resolved DeepSeek by alice" in history
    assert cli("verify").exit_code == 0


def test_resolve_beyond_an_open_bound_is_stored_as_given(cli: CliInvoke) -> None:
    cli("add", *NUMERIC, "--open", "upper")
    assert _json(cli, "resolve", "1", "40")["resolution_value"] == 40.0


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (["add", *NUMERIC[:3], "-p", "70", *NUMERIC[5:]], "probability"),
        (["add", *NUMERIC[:3], *NUMERIC[5:]], "quantiles"),
        (["add", *NUMERIC[:4], "10%=4,50%=8", *NUMERIC[5:]], "quantiles"),
        (["add", *NUMERIC[:4], "10%=4,50%=40,90%=15", *NUMERIC[5:]], "quantiles"),
        (["add", *NUMERIC[:4], "10%=4,50%=8,90%=40", *NUMERIC[5:]], "quantiles"),
        (["add", *NUMERIC[:3], "--distribution", "normal:8,-3", *NUMERIC[5:]], "distribution"),
        (["add", *NUMERIC[:3], "--distribution", "gamma:2,2", *NUMERIC[5:]], "distribution"),
        (["add", *NUMERIC[:2], "34..0", *NUMERIC[3:]], "range"),
        (["add", *NUMERIC, "--options", "a,b"], "question"),
        (["add", *NUMERIC, "--log"], "log"),
        (["add", *NUMERIC, "--ordered"], "ordered"),
        (["add", *DATE[:4], "25%=2027-06,50%=2028-06,75%=2040", *DATE[5:]], "quantiles"),
        (["add", *DATE[:4], "25%=June 2027,50%=2028-06,75%=2030", *DATE[5:]], "quantiles"),
        (["add", *CHOICE[:4], "35,30,15,10", *CHOICE[5:]], "probabilities"),
        (["add", *CHOICE[:4], "35,30,15,10,5", *CHOICE[5:]], "probabilities"),
        (["add", *CHOICE[:2], "Solo", *CHOICE[3:]], "options"),
        (["add", *CHOICE[:2], "A,B,a", *CHOICE[3:]], "options"),
        (
            [
                "add",
                "Binary",
                "--quantiles",
                "10%=4,50%=8,90%=15",
                "--due",
                "2030",
                "--criteria",
                "c",
            ],
            "quantiles",
        ),  # fmt: skip
        (
            ["add", "Binary", "-p", "70", "--open", "both", "--due", "2030", "--criteria", "c"],
            "open",
        ),  # fmt: skip
        (["update", "1", "-p", "70"], "probability"),
        (["update", "1", "--quantiles", "10%=9,50%=8,90%=15"], "quantiles"),
        (["update", "2", "-p", "30,40,30"], "probabilities"),
        (["update", "2", "--quantiles", "10%=4,50%=8,90%=15"], "quantiles"),
        (["update", "3", "--quantiles", "10%=4,50%=8,90%=15"], "quantiles"),
        (["resolve", "1", "35"], "value"),
        (["resolve", "1", "yes"], "value"),
        (["resolve", "2", "OpenAI"], "value"),
        (["resolve", "2", "6"], "value"),
        (["resolve", "3", "11"], "outcome"),
    ],
)
def test_bad_input_is_one_error_line_naming_the_field_and_changes_nothing(
    cli: CliInvoke, counts: Callable[[], dict[str, int]], args: list[str], field: str
) -> None:
    cli("add", *NUMERIC)
    cli("add", *CHOICE)
    cli("add", "Binary", "-p", "70", "--due", "2030", "--criteria", "c")
    before = counts()
    result = cli(*args)
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    assert result.stderr.startswith(f"Error: {field}: ") and result.stderr.count("\n") == 1
    assert counts() == before


def test_question_commands_take_the_fast_path_without_sqlalchemy_or_numpy(db_url: str) -> None:
    if not db_url.startswith("sqlite:///"):
        pytest.skip("the fast path is SQLite's")
    from tests.predictions.test_lite import run_in_fresh_process

    commands = [
        ["add", *NUMERIC],
        ["add", *DATE],
        ["add", *CHOICE],
        ["update", "1", "--distribution", "normal:9,3"],
        ["update", "3", "-p", "30,40,10,10,10"],
        ["list"],
        ["show", "1"],
        ["show", "3", "--json"],
        ["resolve", "1", "11"],
        ["resolve", "2", "2029"],
        ["resolve", "3", "Moonshot"],
    ]
    result = run_in_fresh_process(Path(db_url.removeprefix("sqlite:///")), commands)
    assert result["sqlalchemy"] is False and result["numpy"] is False
    assert "Alibaba Qwen 40%" in result["out"][5]


def test_a_check_that_cannot_read_the_question_type_is_refused_at_add(
    cli: CliInvoke, tmp_path: Path
) -> None:
    """A feed check only says yes or no: on a numeric question it is refused when the forecast is
    registered (by ``add`` and by ``import``), not later by the sweep; nothing is written."""
    refused = cli("add", *NUMERIC, "--check", "feed:url=https://example.org/feed.xml,contains=hub")
    assert refused.exit_code == 2
    assert refused.stderr.startswith("Error: ") and "feed" in refused.stderr
    assert len(refused.stderr.splitlines()) == 1
    path = tmp_path / "typed.toml"
    path.write_text(
        '[[forecast]]\ntitle = "Provinces"\ncriteria = "Count."\ndue = 2030-12-31\n'
        'kind = "numeric"\nquestion = { lower = 0, upper = 34 }\n'
        'forecast = "10%=4,50%=8,90%=15"\n\n[[forecast.check]]\nkind = "feed"\n'
        'url = "https://example.org/feed.xml"\ncontains = "hub"\n',
        "utf-8",
    )
    imported = cli("import", str(path))
    assert imported.exit_code == 2 and "check 1" in imported.stderr
    assert _json(cli, "list", "--status", "all") == []
