"""Bad input to the CLI, generated with hypothesis: add, update, resolve, amend, annul and list
with random text, huge strings, control characters, RTL and CJK text, undecodable argv bytes
(surrogate escapes), and dates and probabilities out of range.

Each command either succeeds (exit 0) or is refused with exit 2 and one ``Error: ...`` line,
never a traceback or an internal error; a refused command leaves every table's row count and the
ledger as they were, and ``tracker verify`` passes after every example.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import CliInvoke

_RAW_CONTROL = re.compile("[\x00-\x09\x0b-\x1f\x7f\x85\u2028\u2029]")
PIECES = [
    "", " ", "\t", "\n", "\r\n", "\x1b[31m", "\x07", "\x7f", "\u202e", "\u200f", "\u2066",
    "\ufeff", "\u0085", "\u2028", "مرحبا بالعالم", "שלום", "人工智能失控风险", "国家标准", "🙂",
    "𝔘𝔫𝔦", "e\u0301", "%", "--", "-p", "--help", "'; DROP TABLE forecast; --", "\udcff\udc80",
    "NaN", "null", "{}", "<script>",
]  # fmt: skip

TEXT = st.one_of(
    st.text(
        alphabet=st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)),
        max_size=30,
    ),
    st.lists(st.sampled_from(PIECES), max_size=5).map("".join),
    st.builds(
        lambda ch, n: ch * n, st.sampled_from(["x", "人", "\u202e", "a\n"]), st.integers(1, 70_000)
    ),
)
DATES = st.one_of(
    st.sampled_from(
        [
            "0000-01-01", "0001-01-01", "1969-12-31", "9999-12-31", "10000-01-01",
            "2030-02-30", "2030-13", "2030-00-10", "+0d", "-5d", "+99999999d", "+1e9d",
            "in 100000 years", "in -3 months", "yesterday", "2030-12-31T25:00", "٢٠٣٠-٠١-٠١",
            "2030", "2031-06", "+90d", "in 3 months",
        ]
    ),
    st.dates().map(str),
    TEXT,
)  # fmt: skip
PROBABILITIES = st.one_of(
    st.sampled_from(
        ["0", "1", "0%", "100%", "50", "101", "-1", "nan", "inf", "-inf", "1e-400", "1e400",
         "0.5", "70%", "½", "٥٠%", "0x10", "5e-1", "50 %", "99.9999999999%"]
    ),
    st.floats().map(str),
    TEXT,
)  # fmt: skip
IDS = st.one_of(st.sampled_from(["1", "2", "0", "-1", "99999999999999999999", "1.0", "#1"]), TEXT)

LIMITS = st.one_of(st.sampled_from(["0", "-1", "99999999999999999999", "1e3", "２"]), TEXT)
COMMANDS = st.one_of(
    st.tuples(st.just("add"), TEXT, st.just("-p"), PROBABILITIES, st.just("--due"), DATES,
              st.just("--criteria"), TEXT, st.just("--tag"), TEXT, st.just("--note"), TEXT),
    st.tuples(st.just("add"), TEXT, st.just("-p"), PROBABILITIES, st.just("--due"), DATES,
              st.just("--criteria"), st.just("Resolves YES if it happens."), st.just("--source"),
              TEXT, st.just("--by"), TEXT),
    st.tuples(st.just("update"), IDS, st.just("-p"), PROBABILITIES, st.just("--note"), TEXT),
    st.tuples(st.just("resolve"), IDS, st.sampled_from(["yes", "no", "YES", "maybe", ""]) | TEXT,
              st.just("--note"), TEXT, st.just("--evidence"), TEXT),
    st.tuples(st.just("amend"), IDS, st.just("--title"), TEXT, st.just("--due"), DATES,
              st.just("--note"), TEXT),
    st.tuples(st.just("amend"), IDS, st.just("--criteria"), TEXT, st.just("--note"), TEXT),
    st.tuples(st.just("annul"), IDS, st.just("--note"), TEXT),
    st.tuples(st.just("list"), st.just("--tag"), TEXT, st.just("--by"), TEXT, st.just("--json")),
    st.tuples(st.just("show"), IDS, st.just("--json")),
    st.tuples(st.sampled_from(["list", "outbox"]), st.just("--limit"), LIMITS, st.just("--json")),
)  # fmt: skip


def _verify(cli: CliInvoke) -> None:
    result = cli("verify")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("OK: "), result.stdout


def _seed(cli: CliInvoke) -> None:
    for title in ("Qwen4 is released as open weights", "国家标准 on AI loss of control"):
        result = cli("add", title, "-p", "40%", "--due", "+1y", "--criteria", "Resolves YES if so.")
        assert result.exit_code == 0, result.output


@settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(args=COMMANDS)
def test_bad_input_cli_is_accepted_or_refused_cleanly(
    cli: CliInvoke, counts: Callable[[], dict[str, int]], args: tuple[str, ...]
) -> None:
    if counts()["forecast"] == 0:
        _seed(cli)
    before = counts()
    result = cli(*args)
    assert "Traceback" not in result.output
    assert "internal error" not in result.output, result.output
    assert result.exit_code in (0, 2), (args, result.exit_code, result.output)
    if result.exit_code == 2:
        assert not _RAW_CONTROL.search(result.stderr), result.stderr  # no escape injection
        lines = result.stderr.split("\n")
        assert len(lines) == 2 and lines[0].startswith("Error: ") and not lines[1], result.stderr
        assert counts() == before
    elif args[0] in ("list", "show", "outbox"):
        json.loads(result.stdout)
        assert counts() == before
    _verify(cli)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("add", "x" * 100_000, "-p", "50%", "--due", "+1y", "--criteria", "c"), "title"),
        (("add", "a\x1bb", "-p", "50%", "--due", "+1y", "--criteria", "c"), "control"),
        (("add", "t", "-p", "50%", "--due", "10000-01-01", "--criteria", "c"), "due"),
        (("add", "t", "-p", "50%", "--due", "+99999999d", "--criteria", "c"), "due"),
        (("add", "t", "-p", "101", "--due", "+1y", "--criteria", "c"), "probability"),
        (("add", "t\udcff", "-p", "50%", "--due", "+1y", "--criteria", "c"), "title"),
        (("show", "99999999999999999999"), "forecast: got 99999999999999999999"),
        (("update", "2147483648", "-p", "50%"), "forecast: got 2147483648"),
        # click's own usage error quotes the arguments: escaped, on one line (hypothesis found it)
        (("resolve", "1", "--", "--note", "\n\x1f\u202e"), "argument (\\n\\x1f\\u202e)"),
    ],
)
def test_bad_input_cli_named_cases_are_refused_with_the_field(
    cli: CliInvoke, counts: Callable[[], dict[str, int]], args: tuple[str, ...], message: str
) -> None:
    before = counts()
    result = cli(*args)
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("Error: ") and message in result.stderr
    assert len(result.stderr.splitlines()) == 1 and len(result.stderr) < 400
    assert counts() == before


@pytest.mark.parametrize("command", ["list", "outbox"])
def test_bad_input_cli_huge_limit_means_all(cli: CliInvoke, command: str) -> None:
    result = cli(command, "--limit", "99999999999999999999", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == []
