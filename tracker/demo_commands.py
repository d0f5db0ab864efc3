"""``tracker demo``: the whole loop on a fresh machine, offline, in well under a minute.

The demo is a script of the real commands, printed as a user would type them, run against a demo
SQLite file with a demo config beside it, so that everything it shows can be repeated by hand:

1. import the forecasts drawn from the seed articles (``examples/china-ai-forecasts.toml``);
2. import an attributed excerpt of real resolved PredictionBook history;
3. add one forecast falling due this week (so the due report has something to say);
4. sweep: every resolver check runs; sources that cannot be reached record the error and back off;
5. notify: the due-date report, written as ``.eml`` files (no SMTP configured);
6. report: ``report.html`` and the terminal calibration summary;
7. the commands to type next.
"""

from __future__ import annotations

import os
import shlex
import shutil
import time
from pathlib import Path

import click

from predictions.errors import TrackerError
from tracker.cli import main

__all__ = ["COMMANDS"]

_EXAMPLES = ("china-ai-forecasts.toml", "predictionbook-excerpt.json")


def _find_examples(explicit: Path | None) -> Path:
    """The folder of the demo's files: ``--examples``, else the copy installed with the package.

    ``examples/`` is installed as ``tracker/examples`` (pyproject ``package-dir``); a source
    checkout, editable or run in place, reads ``examples/`` beside the packages.
    """
    here = Path(__file__).resolve().parent
    candidates = [explicit] if explicit else [here / "examples", here.parent / "examples"]
    for folder in candidates:
        if all((folder / name).is_file() for name in _EXAMPLES):
            return folder
    from predictions.errors import InputError

    raise InputError(
        "--examples",
        str(candidates[0]),
        f"a folder holding {' and '.join(_EXAMPLES)}",
    )


def _demo_config(folder: Path) -> str:
    outbox = folder / "outbox"
    return (
        "# Settings of the tracker demo (tracker demo writes this file afresh on every run).\n"
        'forecaster = "you"\n'
        'timezone = "UTC"\n\n'
        "[email]\n"
        'to = "you@example.org"\n'
        'from = "tracker-demo@localhost"\n'
        f"outbox_dir = {str(outbox)!r}\n\n"
        "[notify]\n"
        'time = "00:00"\n\n'
        "[resolvers]\n"
        "timeout = 5.0\n"
    ).replace("'", '"')


def _step(title: str, args: list[str]) -> int:
    """Print and run one ``tracker`` command; return its exit code (the demo goes on regardless)."""
    click.echo()
    click.secho(f"== {title}", bold=True)
    click.secho("$ tracker " + " ".join(shlex.quote(a) for a in args), fg="cyan")
    try:
        with main.make_context("tracker", list(args)) as ctx:
            main.invoke(ctx)
    except SystemExit as exc:
        return int(exc.code or 0)
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.ClickException as exc:
        click.echo(f"Error: {exc.format_message()}", err=True)
        return exc.exit_code
    except TrackerError as exc:
        click.echo(f"Error: {exc}", err=True)
        return exc.exit_code
    return 0


@click.command()
@click.option(
    "--dir",
    "folder",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("tracker-demo"),
    show_default=True,
    help="Folder for the demo database, config, .eml files and report.html.",
)
@click.option(
    "--examples",
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    help="Folder with the example files (default: the ones installed with the tracker).",
)
def demo(folder: Path, examples: Path | None) -> None:
    """Run the whole loop on a demo database: import, check, email, report.

    Offline and without configuration; a second run starts afresh in the same folder.
    """
    started = time.perf_counter()
    source = _find_examples(examples)
    folder = folder.resolve()
    reused = folder.exists() and any(folder.iterdir())
    for name in ("demo.db", "demo.db-wal", "demo.db-shm", "report.html", "config.toml"):
        (folder / name).unlink(missing_ok=True)
    shutil.rmtree(folder / "outbox", ignore_errors=True)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.toml").write_text(_demo_config(folder), encoding="utf-8")
    db = folder / "demo.db"
    os.environ["TRACKER_DB"] = f"sqlite:///{db}"
    os.environ["TRACKER_CONFIG"] = str(folder / "config.toml")
    click.secho("tracker demo", bold=True)
    click.echo(
        f"database: {db}"
        + ("  (an earlier demo's files were cleared: this run starts afresh)" if reused else "")
    )
    click.echo(f"config:   {folder / 'config.toml'}")

    failures: list[str] = []
    steps: list[tuple[str, list[str], str]] = [
        ("Forecasts drawn from the seed articles, with their resolver checks",
         ["import", str(source / _EXAMPLES[0])], ""),
        ("Real resolved history: an excerpt of PredictionBook, for a calibration report with substance",
         ["import", str(source / _EXAMPLES[1]), "--format", "predictionbook"], ""),
        ("A forecast of your own, falling due this week",
         ["add", "DeepSeek publishes a new open-weight model this week", "-p", "35%", "--due", "+5d",
          "--criteria", "Resolves YES if DeepSeek publishes the weights of a new model on Hugging Face before the due date.",
          "--tag", "china", "--tag", "llm", "--check", "deadline"], ""),
        ("Check the evidence: every due resolver check (sources out of reach record the error and back off)",
         ["sweep"], "some sources could not be reached (expected offline): the errors are recorded, the checks back off"),
        ("The due-date email report (no SMTP configured: written as .eml files)",
         ["notify"], ""),
        ("The calibration report as one self-contained HTML file",
         ["report", "--format", "html", "-o", str(folder / "report.html")], ""),
        ("The calibration summary in the terminal",
         ["report"], ""),
    ]  # fmt: skip
    for title, args, expected_failure in steps:
        code = _step(title, args)
        if code:
            if expected_failure:
                click.echo(f"(exit {code}: {expected_failure})")
            else:
                failures.append(f"`tracker {args[0]}` exited {code}")

    click.echo()
    click.secho("== What the demo left you", bold=True)
    click.echo(f"  database:     {db}")
    click.echo(f"  email (.eml): {folder / 'outbox'}")
    click.echo(f"  report:       {folder / 'report.html'}")
    click.echo(f"  finished in {time.perf_counter() - started:.1f} s")
    click.echo()
    click.secho("== Next, try", bold=True)
    click.echo(f"  export TRACKER_DB=sqlite:///{db} TRACKER_CONFIG={folder / 'config.toml'}")
    click.echo('  tracker add "Alibaba releases Qwen4 as open weights" -p 70% --due +1y \\')
    click.echo(
        '      --criteria "Resolves YES if Alibaba publishes Qwen4 weights under an open licence." --tag china'
    )
    click.echo("  tracker report --group-by quarter")
    click.echo("  tracker run          # the daemon: sweeps and email on their schedules")
    click.echo("  tracker user add you --role admin && tracker serve   # the web app on :8080")
    if failures:
        from predictions.errors import OperationalError

        raise OperationalError("demo: " + "; ".join(failures))


COMMANDS = [demo]
