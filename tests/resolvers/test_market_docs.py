"""The "Market and Wikipedia checks" examples (the README's command line, the example file that it
points to) import and register as written."""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable
from pathlib import Path

from sqlalchemy.engine import Engine

from predictions.checks import checks_of
from predictions.db import read_session
from tests.conftest import CliInvoke

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")
SECTION = README.split("## Market and Wikipedia checks", 1)[1].split("\n## ", 1)[0]


def test_market_docs_toml_example_imports_every_kind(cli: CliInvoke, engine: Engine) -> None:
    assert "examples/market-checks.toml" in SECTION, "the section no longer points to the file"
    path = ROOT / "examples" / "market-checks.toml"

    result = cli("import", str(path))

    assert result.exit_code == 0, result.output
    assert "Imported 4 forecasts" in result.output and "4 checks" in result.output
    with read_session(engine) as session:
        specs = [
            (c.kind, c.params, c.mode) for fid in (1, 2, 3, 4) for c in checks_of(session, fid)
        ]
    assert specs == [
        ("manifold", {"slug": "will-china-establish-multiple-provinc"}, "auto"),
        ("metaculus", {"post": 35172}, "auto"),
        (
            "polymarket",
            {"slug": "will-china-publish-a-national-ai-safety-standard-by-december-31"},
            "propose",
        ),
        (
            "wikipedia",
            {
                "title": "15th Five-Year Plan",
                "contains": ["AI Plus", "人工智能+"],
                "match": "any",
                "api": "https://en.wikipedia.org/w/api.php",
                "otherwise": "no",
            },
            "propose",
        ),
    ]


def test_market_docs_command_line_example_registers_the_check(
    cli: CliInvoke, engine: Engine
) -> None:
    block = re.search(r"```bash\n(.*?)```", SECTION, re.S)
    assert block, "the section has no command-line example"
    args = shlex.split(block.group(1).replace("\\\n", " "))
    assert args[0] == "tracker"

    result = cli(*args[1:])

    assert result.exit_code == 0, result.output
    with read_session(engine) as session:
        [check] = checks_of(session, 1)
        assert (check.kind, check.params, check.mode) == ("metaculus", {"post": 35172}, "auto")


def test_market_docs_bad_market_spec_is_refused_and_nothing_stored(
    cli: CliInvoke, counts: Callable[[], dict[str, int]]
) -> None:
    result = cli(
        "add",
        "Will it resolve?",
        "-p",
        "50%",
        "--due",
        "2030-12-31",
        "--criteria",
        "As the market does.",
        "--check",
        "manifold:url=https://example.org/Austin/some-question",
    )
    assert result.exit_code == 2
    assert result.output.startswith("Error: manifold check url: got 'https://example.org/")
    assert counts()["forecast"] == 0
