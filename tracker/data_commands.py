"""Commands that move forecasts in and out: import, export."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import click

from predictions.wording import plural
from tracker.cli import App, format_option, output_option, pass_app
from tracker.display import emit_json, output_file

__all__ = ["COMMANDS"]

_IMPORT_FORMATS = ("toml", "json", "csv", "predictionbook", "forecastbench")
_EXPORT_FORMATS = ("toml", "json", "csv")


@contextmanager
def _progress(enabled: bool, label: str) -> Iterator[Callable[[int], None] | None]:
    """A rich progress display on a terminal (stderr); nothing when piped."""
    if not enabled:
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed:,} records"),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=True,
    ) as bar:
        task = bar.add_task(label, total=None)
        yield lambda done: bar.update(task, completed=done)


@click.command(name="import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--format",
    "fmt",
    type=click.Choice(_IMPORT_FORMATS),
    help="The file's format (default: guessed from its name and content).",
)
@click.option(
    "--resolutions",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A ForecastBench resolution set to resolve the questions with.",
)
@click.option("--dry-run", is_flag=True, help="Check the whole file and report; write nothing.")
@click.option(
    "--skip-existing",
    is_flag=True,
    help="Skip records whose ref is already imported (default: refuse the file).",
)
@click.option("--by", help="Author of hand-written records that name none (default: you).")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@pass_app
def import_(
    app: App,
    file: Path,
    fmt: str | None,
    resolutions: Path | None,
    dry_run: bool,
    skip_existing: bool,
    by: str | None,
    as_json: bool,
) -> None:
    """Import forecasts from FILE: all or nothing, every problem listed by record or line.

    Formats: the tracker's own toml, json and csv (an export restores exactly into an empty
    database), predictionbook (JSON as scraped from predictionbook.com) and forecastbench (a
    question set, with --resolutions for its resolution set).
    """
    show = sys.stderr.isatty() and not as_json and app.client is None
    options = dict(format=fmt, resolutions=resolutions, dry_run=dry_run, by=by)
    with _progress(show, f"importing {file.name}") as progress:
        author = by if app.client is not None else app.writer(by)  # a server: an admin's --by
        summary = app.ops.import_file(
            file, {**options, "skip_existing": skip_existing, "progress": progress}, author
        )
    if as_json:
        emit_json(summary.as_dict())
        return
    verb = "Would import" if dry_run else "Imported"
    click.echo(
        f"{verb} {plural(summary.forecasts, 'forecast')} ({plural(summary.estimates, 'estimate')}, "
        f"{summary.resolved} resolved, {summary.annulled} annulled, "
        f"{plural(summary.amendments, 'amendment')}, {plural(summary.checks, 'check')}) "
        f"from {file.name} [{summary.format}]"
        + (f"; skipped {summary.skipped} already imported" if summary.skipped else "")
    )
    if summary.file_head_verified:
        click.echo(f"The file's ledger head {summary.file_head} verifies: restored exactly.")
    if dry_run:
        click.echo("Dry run: nothing was written.")
    else:
        click.echo(
            f"Ledger: +{plural(summary.ledger_entries, 'entry', 'entries')}; head {summary.head}"
        )


@click.command()
@format_option(_EXPORT_FORMATS, "json", "The file format.")
@output_option("Write to this file (default: standard output).")
@pass_app
def export(app: App, fmt: str, output: Path | None) -> None:
    """Export every forecast with its history, checks and the ledger chain head.

    Importing the file into an empty database rebuilds the same ledger, and exporting again gives
    the same bytes; the head in the file lets anyone check it later (`tracker import --dry-run`
    into an empty database).
    """
    if output is None:
        app.ops.export(fmt, sys.stdout)
        return
    with output_file(output) as out:
        count = app.ops.export(fmt, out)
    click.echo(f"Exported {plural(count, 'forecast')} to {output}")


COMMANDS = [import_, export]
