"""The ``report`` command: calibration scores, decompositions and breakdowns, in four formats."""

from __future__ import annotations

from pathlib import Path

import click

from reports.render import FORMATS
from reports.team import MIN_COUNT
from tracker.cli import App, format_option, output_option, pass_app
from tracker.display import output_file

__all__ = ["COMMANDS"]

_GROUP_BY = ("month", "quarter", "year", "tag", "forecaster", "horizon")


@click.command()
@format_option(
    FORMATS,
    "text",
    "text (terminal summary), json, md (Markdown) or html (one self-contained file).",
)
@click.option("--json", "as_json", is_flag=True, help="Same as --format json.")
@output_option("Write to FILE.")
@click.option("--by", help="Only this forecaster's estimates (market prices are forecasters too).")
@click.option("--tag", help="Only questions with this tag.")
@click.option("--since", help="Only questions resolved (or due, if open) on or after this date.")
@click.option("--until", help="Only questions resolved (or due, if open) on or before this date.")
@click.option(
    "--group-by",
    type=click.Choice(_GROUP_BY),
    default="quarter",
    show_default=True,
    help="Scores per period of resolution, tag, forecaster or horizon (estimate to due date);"
    " forecaster adds the team view.",
)
@click.option(
    "--min-count",
    type=int,
    default=MIN_COUNT,
    show_default=True,
    help="Scored questions a person needs before the team view ranks them.",
)
@click.option("--title", default="Calibration report", show_default=True, help="Report title.")
@pass_app
def report(
    app: App,
    fmt: str,
    as_json: bool,
    output: Path | None,
    by: str | None,
    tag: str | None,
    since: str | None,
    until: str | None,
    group_by: str,
    min_count: int,
    title: str,
) -> None:
    """Score resolved forecasts: Brier, log and spherical scores, calibration, breakdowns; numeric
    and date questions by CRPS, log score, interval coverage and PIT, choice questions by
    multi-class Brier, log score and RPS (each type apart).

    With --group-by forecaster, the team view of the binary questions too: each person's Brier
    and relative Brier (their Brier minus the median Brier of the question's forecasters,
    averaged; Fatebook's), the team median and the geometric mean of the people's odds scored as
    forecasters, and the markets beside them; people are ranked from --min-count scored
    questions, the others listed unranked with their counts. The JSON report's "team" holds it
    (null under any other --group-by)."""
    filters = dict(by=by, tag=tag, since=since, until=until, group_by=group_by)
    text = app.ops.report("json" if as_json else fmt, title, {**filters, "min_count": min_count})
    if output is None:
        click.echo(text, nl=False)
        return
    with output_file(output) as fh:
        fh.write(text)
    click.echo(f"Wrote {output}", err=True)


COMMANDS = [report]
