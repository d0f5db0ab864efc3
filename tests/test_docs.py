"""The README tells the truth: every command is in it with help text, and its session runs."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import click
import pytest
from click.testing import CliRunner
from freezegun import freeze_time

from tracker.cli import main

README = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")


def _commands(group: click.Group, prefix: str = "") -> list[tuple[str, click.Command]]:
    ctx = click.Context(group)
    found = []
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        assert command is not None
        path = f"{prefix}{name}"
        found.append((path, command))
        if isinstance(command, click.Group):
            found.extend(_commands(command, path + " "))
    return found


@pytest.mark.parametrize(("path", "command"), _commands(main), ids=[p for p, _ in _commands(main)])
def test_docs_every_command_has_help_and_is_in_the_readme(
    path: str, command: click.Command
) -> None:
    assert (command.help or "").strip(), f"`tracker {path}` has no help text"
    assert f"tracker {path}" in README, f"`tracker {path}` is not in README.md"


_GROUPS = [("", main)] + [(p, c) for p, c in _commands(main) if isinstance(c, click.Group)]


@pytest.mark.parametrize(("path", "group"), _GROUPS, ids=[p or "tracker" for p, _ in _GROUPS])
def test_docs_a_group_without_a_command_prints_its_help(path: str, group: click.Group) -> None:
    """Bare ``tracker`` (the first thing a new user types), ``tracker db``: help as help, exit 0."""
    result = CliRunner().invoke(main, path.split(), prog_name="tracker", catch_exceptions=False)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith(f"Usage: tracker {path}".rstrip()), lines[:2]
    assert "Error:" not in result.output and "\\n" not in result.output
    assert len(lines) > 5 and "Commands:" in result.output or "Forecasts:" in result.output


def _session() -> list[tuple[str, list[str]]]:
    """The ``$ tracker ...`` lines of the README's first console block, with their output."""
    block = re.search(r"## A session\s+```console\n(.*?)```", README, re.S)
    assert block, "README.md has no '## A session' console block"
    steps: list[tuple[str, list[str]]] = []
    command = ""
    for line in block.group(1).splitlines():
        if line.startswith("$ "):
            command = line[2:]
            steps.append((command, []))
        elif command and steps and steps[-1][0].endswith("\\"):
            steps[-1] = (steps[-1][0][:-1] + " " + line.strip(), steps[-1][1])
        elif steps:
            steps[-1][1].append(line)
    return steps


def test_docs_readme_session_runs_as_shown(tmp_path: Path) -> None:
    runner = CliRunner()
    env = {
        "TRACKER_DB": f"sqlite:///{tmp_path / 'readme.db'}",
        "TRACKER_FORECASTER": "alice",
        "NO_COLOR": "1",
    }
    with freeze_time("2026-11-23 09:00:00"):
        for command, expected in _session():
            args = shlex.split(command)
            assert args[0] == "tracker"
            result = runner.invoke(main, args[1:], env=env)
            assert result.exit_code == 0, f"{command}\n{result.output}"
            for line in expected:
                if "..." in line:  # elided output (hashes, long tables)
                    head = line.split("...")[0].rstrip()
                    assert head in result.output, (
                        f"{command}: expected {head!r} in\n{result.output}"
                    )
                elif line.strip():
                    assert (
                        line.rstrip() in result.output.splitlines() or line.strip() in result.output
                    ), f"{command}: expected {line!r} in\n{result.output}"


def test_docs_every_config_key_is_in_the_readme() -> None:
    from tracker.config import KEYS

    missing = [key for key in KEYS if f"`{key}`" not in README]
    assert not missing, f"config keys missing from README.md: {missing}"
