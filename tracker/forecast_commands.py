"""Commands that register and change forecasts: add, update, list, show, resolve, annul, amend,
withdraw and reopen, on questions of every type (binary, numeric, date, multiple choice: see
:mod:`predictions.questions`).

Each calls the operation :attr:`App.ops <tracker.cli.App.ops>` gives (:mod:`tracker.operations`):
the store over the database (on an existing SQLite file, a bare sqlite3 connection: no SQLAlchemy
import), or the service's API when the CLI is its client; the output is the same.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, TypeVar

import click

from predictions import records
from predictions.clock import now as clock_now
from predictions.questions import Question
from predictions.shown import (
    closing_words,
    format_estimate,
    format_others,
    format_outcome,
    question_line,
    relative,
)
from predictions.timetext import local_due, local_time
from predictions.wording import format_probability, plural
from tracker.cli import App, by_option, forecast_argument, json_option, limit_option, pass_app
from tracker.display import emit, emit_json, forecast_picture, table

__all__ = ["COMMANDS"]

_F = TypeVar("_F", bound=Callable[..., Any])

_QUANTILES_HELP = (
    "A numeric or date forecast as quantiles, P=VALUE comma-separated, at least three: "
    "10%=4,50%=8,90%=15 (dates as values: 25%=2027-06,50%=2028-06-30,75%=2030)."
)
_DISTRIBUTION_HELP = (
    "A numeric or date forecast as a named distribution: normal:MEAN,SD, lognormal:MU,SIGMA "
    "(of ln x), uniform; for dates normal:2028-06,365 (a date and days)."
)


def _stacked(*options: Callable[[Any], Any]) -> Callable[[_F], _F]:
    """One decorator applying click ``options`` (and arguments) in the order given."""

    def decorate(command: _F) -> _F:
        for option in reversed(options):
            command = option(command)
        return command

    return decorate


def _forecast_options(probability_help: str) -> Callable[[_F], _F]:
    """What add and update take as the forecast: ``-p`` (a probability, or one per option of a
    choice question), ``--quantiles`` or ``--distribution`` (numeric and date questions)."""
    return _stacked(
        click.option("-p", "--probability", help=probability_help),
        click.option("--quantiles", metavar="P=VALUE,...", help=_QUANTILES_HELP),
        click.option("--distribution", metavar="NAME:PARAMS", help=_DISTRIBUTION_HELP),
    )


@click.command()
@click.argument("title")
@_forecast_options(
    "Your probability: 0.7, 70% or 70; with --options one per option, in order: 35,30,35."
)
@click.option("--numeric", metavar="LO..HI", help="A numeric question over this range: 0..34.")
@click.option(
    "--date", metavar="FIRST..LAST", help="A date question over this range: 2026-01-01..2035-12-31."
)
@click.option(
    "--options",
    metavar="A,B,...",
    help='A multiple-choice question: "DeepSeek,Alibaba Qwen,Other".',
)
@click.option(
    "--open",
    "open_bounds",
    type=click.Choice(["lower", "upper", "both"]),
    help="Range bounds an outcome may fall beyond (default: closed).",
)
@click.option("--log", is_flag=True, help="A log-scale numeric range (a positive lower bound).")
@click.option("--ordered", is_flag=True, help="The options form a scale (ranked score).")
@click.option(
    "--due",
    required=True,
    help="Due: 2030-12-31, '31 Dec 2030', 'Dec 2030', 2030, 'end of 2030', +90d, 'in 3 months', "
    "tomorrow or 'next friday' (a date is the end of that day in your timezone).",
)
@click.option("--criteria", required=True, help="How it resolves: what counts as YES, checkably.")
@click.option("--tag", "tags", multiple=True, help="A tag (repeatable).")
@click.option("--source", help="Where the question comes from (URL or citation).")
@click.option("--by", help="Forecaster name (default: config 'forecaster' or your login).")
@click.option("--note", help="A note on your reasoning.")
@click.option(
    "--check",
    "checks",
    multiple=True,
    metavar="SPEC",
    help="A resolver check (repeatable): 'page:url=URL,contains=TERM' or a JSON object.",
)
@json_option
@pass_app
def add(
    app: App,
    title: str,
    probability: str | None,
    quantiles: str | None,
    distribution: str | None,
    numeric: str | None,
    date: str | None,
    options: str | None,
    open_bounds: str | None,
    log: bool,
    ordered: bool,
    due: str,
    criteria: str,
    tags: tuple[str, ...],
    source: str | None,
    by: str | None,
    note: str | None,
    checks: tuple[str, ...],
    as_json: bool,
) -> None:
    """Register a forecast and print its id.

    A yes/no question by default (-p 70%); --numeric LO..HI or --date FIRST..LAST with
    --quantiles or --distribution; --options with one probability per option (-p 35,30,35).
    """
    form = dict(
        title=title, criteria=criteria, due=due, probability=probability, quantiles=quantiles,
        distribution=distribution, numeric=numeric, date=date, options=options, open=open_bounds,
        log=log, ordered=ordered, tags=list(tags), source=source, note=note, checks=list(checks),
    )  # fmt: skip
    forecast, specs = app.ops.add_forecast(form, app.writer(by))
    record = records.forecast_record(forecast, viewer=forecast.author)
    if specs:
        record["checks"] = specs
    text = (
        f"Added forecast {record['id']}: {record['title']} "
        f"({format_estimate(forecast.question, forecast.estimates[0])}, "
        f"due {local_due(forecast.due, app.tz, forecast.due_zone)})"
    )
    emit(record, as_json, text + (f" with {plural(len(specs), 'check')}" if specs else ""))


@click.command()
@forecast_argument
@_forecast_options(
    "The new probability: 0.62, 62% or 62; on a multiple-choice question one per option: 30,40,30."
)
@click.option("--by", help="Forecaster name (default: config 'forecaster' or your login).")
@click.option("--note", help="Why it changed.")
@json_option
@pass_app
def update(
    app: App,
    forecast_id: str,
    probability: str | None,
    quantiles: str | None,
    distribution: str | None,
    by: str | None,
    note: str | None,
    as_json: bool,
) -> None:
    """Record a new forecast on a question: -p, or --quantiles / --distribution.

    Anyone may forecast any question: estimates are kept per forecaster.
    """
    given = dict(probability=probability, quantiles=quantiles, distribution=distribution)
    forecast, estimate = app.ops.add_estimate(forecast_id, {**given, "note": note}, app.writer(by))
    previous = [
        e for e in forecast.estimates if e.id != estimate.id and e.forecaster == estimate.forecaster
    ]
    record = records.forecast_record(forecast, viewer=estimate.forecaster)
    late = _unscored(forecast, estimate.made_at, app)
    if as_json:
        emit_json(record)
        if late:
            click.echo(late, err=True)
        return
    q = forecast.question
    before = f"{format_estimate(q, previous[-1])} -> " if previous else ""
    click.echo(
        f"Forecast {record['id']}: {estimate.forecaster} {before}{format_estimate(q, estimate)}"
    )
    if late:
        click.echo(late)


def _unscored(forecast: records.ForecastRow, made_at: datetime, app: App) -> str | None:
    """The note an estimate made at or after the due date gets: it is recorded, not scored (the
    scored rule, :mod:`reports.scored`, takes the last estimate made before the due date)."""
    if made_at < forecast.due:
        return None
    due = local_due(forecast.due, app.tz, forecast.due_zone)
    return (
        f"Note: forecast {forecast.id} was due {due}; estimates made after the due date are not "
        "scored."
    )


@click.command(name="list")
@click.option(
    "--status",
    type=click.Choice(records.LIST_STATUSES),
    default="open",
    show_default=True,
    help="open, due (within 7 days), overdue, resolved, annulled, withdrawn (entered by "
    "mistake) or all (all but withdrawn).",
)
@click.option("--tag", help="Only forecasts with this tag.")
@click.option("--search", help="Only forecasts whose title, criteria or tags hold this text.")
@click.option(
    "--by",
    help="Only forecasts this person registered or estimated, with their probability "
    "(default: every forecast, with yours).",
)
@limit_option(100, "At most this many (0: all).")
@json_option
@pass_app
def list_(
    app: App,
    status: str,
    tag: str | None,
    search: str | None,
    by: str | None,
    limit: int,
    as_json: bool,
) -> None:
    """List forecasts, soonest due first.

    p is your own latest probability (- if you have not forecast it; the median or the leading
    option on other question types); others shows the other forecasters' latest (one by name,
    several by their median and count) and the markets'.
    """
    query = records.ForecastQuery(status=status, tag=tag, by=by, limit=limit or None, search=search)
    now = clock_now()
    forecasts: Sequence[Any]
    # The table shows each forecaster's latest; --json carries every estimate. The total is
    # counted only when the page is full.
    forecasts, total = app.ops.list_forecasts(query, now=now, latest_only=not as_json)
    viewer = by or app.forecaster
    listed = [records.forecast_record(f, viewer=viewer) for f in forecasts]
    count = len(listed)
    total = count if total is None else total
    if as_json:
        emit_json(listed)
        return
    rows = []
    for i, r in enumerate(listed):
        f: Any = forecasts[i]
        when = relative(f.due, now, f.status) or (
            format_outcome(f) if f.status == "resolved" else f.status
        )
        view = records.standing(f, viewer)
        rows.append(
            (
                r["id"],
                format_estimate(f.question, view.mine),
                format_others(view, f.question),
                local_due(f.due, app.tz, f.due_zone),
                when,
                ",".join(r["tags"]),
                r["title"],
            )
        )
    if not rows:
        found = f"No {status if status != 'all' else ''} forecasts".replace("  ", " ")
        click.echo(found + (f" matching {search!r}." if search else "."))
        return
    headers: tuple[str, ...] = ("id", "p", "others", "due", "when", "tags", "title")
    cells: list[tuple[Any, ...]] = rows
    if not any(row[2] for row in rows):  # nobody else forecast these: no empty column
        headers, cells = headers[:2] + headers[3:], [row[:2] + row[3:] for row in rows]
    table(headers, cells)
    if total > count:
        click.echo(f"({count} of {total} shown; --limit 0 for all)")


@click.command()
@forecast_argument
@click.option("--by", help="Whose probability is 'yours' (default: config 'forecaster').")
@json_option
@pass_app
def show(app: App, forecast_id: str, by: str | None, as_json: bool) -> None:
    """Show one forecast with its history.

    Criteria, each forecaster's latest probability (yours, the others', the markets'; the
    quantiles and a sparkline, or the option bars, on other question types), every estimate,
    amendments and the resolution.
    """
    now = clock_now()
    f, record = app.ops.show(forecast_id, by)
    view = records.standing(f, record["forecaster"])
    due_text = local_due(f.due, app.tz, f.due_zone)
    when = relative(f.due, now, f.status)
    if as_json:
        emit_json(record)
        return
    q = f.question
    click.echo(f"#{record['id']}  {record['title']}")
    click.echo(
        f"  status:   {record['status']}"
        + (f" ({format_outcome(f)})" if record["status"] == "resolved" else "")
    )
    if q is not None:
        click.echo(f"  question: {question_line(q)}")
    click.echo(f"  due:      {due_text}" + (f" ({when})" if when else ""))
    click.echo(f"  author:   {record['author']}   created {local_time(f.created_at, app.tz)}")
    if record["tags"]:
        click.echo(f"  tags:     {', '.join(record['tags'])}")
    if record["source"]:
        click.echo(f"  source:   {record['source']}")
    click.echo("  criteria: " + record["criteria"].replace("\n", "\n            "))
    click.echo("  latest:")
    for shown, who in _latest_lines(view, q):
        click.echo(f"    {shown:>6}  {who}")
    drawn = view.mine or max(f.estimates, key=lambda e: (e.made_at, e.id), default=None)
    if q is not None and drawn is not None and drawn.values is not None:
        click.echo(f"  forecast of {drawn.forecaster}:")
        for line in forecast_picture(q, drawn.values, f.resolution_value):
            click.echo(f"    {line}")
    click.echo("  estimates:")
    for e in sorted(f.estimates, key=lambda e: (e.made_at, e.id)):
        click.echo(
            f"    {local_time(e.made_at, app.tz)}  {format_estimate(q, e):>6}"
            f"  {e.forecaster}" + (f"  - {e.note}" if e.note else "")
        )
    if record["amendments"]:
        click.echo("  amendments:")
        for a in record["amendments"]:
            click.echo(
                f"    {local_time(a['at'], app.tz)}  {a['by']} changed {a['field']}: "
                + (
                    f"{local_time(a['old'], app.tz)} -> {local_time(a['new'], app.tz)}"
                    if a["field"] == "due"
                    else f"{a['old']!r} -> {a['new']!r}"
                )
                + (f"  - {a['note']}" if a["note"] else "")
            )
    if record["checks"]:
        click.echo("  checks:")
        for c in record["checks"]:
            state = (
                f"running, next {local_time(c['next_check_at'], app.tz)}"
                if c["running"]
                else f"stopped (tracker check {record['id']} --resume {c['id']})"
            )
            checked = c["last_checked_at"]
            last = f", last checked {local_time(checked, app.tz)}" if checked else ""
            click.echo(f"    {c['id']}  {c['kind']} ({c['mode']})  {state}{last}")
    if any(h["kind"] == "reopen" for h in record["history"]):
        click.echo("  history:")
        for h in record["history"]:
            click.echo(f"    {_history_line(h, q, app)}")
    if record["status"] != "open":
        click.echo(
            f"  {record['status']} at {local_time(f.resolved_at, app.tz)}"
            f" by {record['resolved_by']}"
            + (f": {record['resolution_note']}" if record["resolution_note"] else "")
        )
        if record["resolution_evidence"]:
            click.echo(f"  evidence: {record['resolution_evidence']}")


def _latest_lines(view: records.Standing, question: Question | None) -> list[tuple[str, str]]:
    """``show``'s lines of each forecaster's latest: yours, the others' (with their median when
    there are several, on a binary question), the markets'."""
    lines = [(format_estimate(question, view.mine), f"{view.viewer} (you)")]
    lines += [(format_estimate(question, e), f"{e.forecaster} (other)") for e in view.others]
    if len(view.others) > 1 and question is None:
        lines.append((format_probability(view.median), f"median of {len(view.others)} others"))
    lines += [(format_estimate(question, e), f"{e.forecaster} (market)") for e in view.markets]
    return lines


def _history_line(h: dict[str, Any], question: Question | None, app: App) -> str:
    """One closing or reopening, as ``show`` lists them: "resolved YES by alice at ...: note"."""
    when = local_time(h["at"], app.tz)
    return f"{closing_words(h, question)} at {when}" + (f": {h['note']}" if h.get("note") else "")


@click.command()
@forecast_argument
@click.argument("outcome", metavar="OUTCOME")
@click.option("--note", help="Why: what happened.")
@click.option("--evidence", help="A URL or citation the resolution rests on.")
@by_option("resolves")
@json_option
@pass_app
def resolve(
    app: App,
    forecast_id: str,
    outcome: str,
    note: str | None,
    evidence: str | None,
    by: str | None,
    as_json: bool,
) -> None:
    """Resolve a forecast: yes or no; a number (numeric), a date (date), an option's name or
    number (multiple choice)."""
    form = dict(outcome=outcome, note=note, evidence=evidence)
    f = app.ops.resolve(forecast_id, form, app.writer(by))
    record = records.forecast_record(f, viewer=f.resolved_by)
    shown = format_outcome(f)
    emit(record, as_json, f"Forecast {record['id']} resolved {shown}: {record['title']}")


def _correction_options(note_help: str, verb: str) -> Callable[[_F], _F]:
    """What annul, withdraw and reopen take: the forecast's ID, a ``--note`` saying why (required),
    ``--by`` and ``--json``."""
    note = click.option("--note", required=True, help=note_help)
    return _stacked(forecast_argument, note, by_option(verb), json_option, pass_app)


@click.command()
@_correction_options("Why the question no longer has an answer.", "annuls")
def annul(app: App, forecast_id: str, note: str, by: str | None, as_json: bool) -> None:
    """Annul a forecast that became moot (left out of scores)."""
    _close(app, "annul", forecast_id, note, by, as_json)


def _close(
    app: App,
    kind: str,
    forecast_id: str,
    note: str,
    by: str | None,
    as_json: bool,
) -> None:
    """Annul or withdraw (``kind``: annul, withdraw) and print the forecast."""
    f = app.ops.close(kind, forecast_id, note, app.writer(by))
    record = records.forecast_record(f, viewer=f.resolved_by)
    emit(record, as_json, f"Forecast {record['id']} {record['status']}: {record['title']}")


@click.command()
@forecast_argument
@click.option("--title", help="New title.")
@click.option("--criteria", help="New resolution criteria.")
@click.option("--due", help="New due date (same forms as add).")
@click.option("--tag", "tags", multiple=True, help="Add a tag (repeatable).")
@click.option("--untag", "untags", multiple=True, help="Take a tag off (repeatable).")
@click.option("--note", help="Why the change.")
@by_option("amends")
@json_option
@pass_app
def amend(
    app: App,
    forecast_id: str,
    title: str | None,
    criteria: str | None,
    due: str | None,
    tags: tuple[str, ...],
    untags: tuple[str, ...],
    note: str | None,
    by: str | None,
    as_json: bool,
) -> None:
    """Change title, criteria, due date or tags, recorded as an amendment.

    The change is shown in `show` and kept in the ledger; nothing is edited silently.
    """
    who = app.writer(by)
    form = dict(title=title, criteria=criteria, due=due, tags=list(tags), untags=list(untags))
    forecast, changed = app.ops.amend(forecast_id, {**form, "note": note}, who)
    # (a server's client without a stored sign-in learns who it is from the answer)
    record = records.forecast_record(forecast, viewer=who or app.forecaster, full=True)
    emit(record, as_json, f"Forecast {record['id']} amended: {', '.join(changed)}")


@click.command()
@_correction_options("Why: a test entry, a duplicate of forecast N...", "withdraws")
def withdraw(app: App, forecast_id: str, note: str, by: str | None, as_json: bool) -> None:
    """Withdraw a forecast entered by mistake.

    It stays in the ledger but leaves lists, scores and emails; `list --status withdrawn` shows
    it and `reopen` brings it back. (A question that became moot is annulled instead.)
    """
    _close(app, "withdraw", forecast_id, note, by, as_json)


@click.command()
@_correction_options("Why the resolution, annulment or withdrawal goes.", "reopens")
def reopen(app: App, forecast_id: str, note: str, by: str | None, as_json: bool) -> None:
    """Reopen a forecast resolved, annulled or withdrawn by mistake.

    A new ledger entry withdraws the closing (which stays on the record: `show` lists both);
    the forecast is open again and out of the scores until it is resolved again.
    """
    who = app.writer(by)
    was, f = app.ops.reopen(forecast_id, note, who)
    record = records.forecast_record(f, viewer=who or app.forecaster)
    if as_json:
        emit_json(record)
        return
    click.echo(f"Forecast {record['id']} reopened (was {was}): {record['title']}")
    for c in f.checks:  # a source that still says the same would close it again at its next run
        if c.enabled and c.mode == "auto":
            click.echo(
                f"Note: check {c.id} ({c.kind}) resolves it automatically at its next run if its "
                f"source still says so; `tracker check {f.id} --stop {c.id}` stops it."
            )


COMMANDS = [add, update, list_, show, resolve, annul, amend, withdraw, reopen]
