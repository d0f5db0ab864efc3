"""Commands that check evidence and settle proposals: check, sweep, review, confirm, dispute,
evidence. Thin: each parses, calls :mod:`resolvers.sweep` / :mod:`resolvers.review` /
:mod:`predictions.checks`, and formats."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import click

from predictions.wording import plural
from tracker.cli import App, by_option, forecast_argument, json_option, pass_app, proposal_option
from tracker.display import emit, emit_json, table

if TYPE_CHECKING:
    from resolvers.sweep import SweepReport, SweepSettings

__all__ = ["COMMANDS", "sweep_settings"]


def sweep_settings(app: App) -> SweepSettings:
    """The runner's settings from the ``resolvers.*`` configuration keys."""
    from resolvers.http import HttpSettings
    from resolvers.sweep import SweepSettings
    from tracker.config import parse_networks

    get = app.config.get
    networks = get("resolvers.allowed_networks")  # checked by its config key
    return SweepSettings(
        concurrency=max(1, int(get("resolvers.concurrency"))),
        grace=timedelta(days=int(get("resolvers.grace_days"))),
        lease=timedelta(seconds=max(1, int(get("resolvers.lease_seconds")))),
        http=HttpSettings(
            timeout=float(get("resolvers.timeout")),
            max_bytes=int(get("resolvers.max_bytes")),
            per_host=max(1, int(get("resolvers.per_host"))),
            allow_private=bool(get("resolvers.allow_private")),
            allowed_networks=parse_networks(networks) if networks else (),
        ),
    )


def _short(text: str | None, width: int = 70) -> str:
    if not text:
        return ""
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def _echo_outcome(o: dict[str, Any]) -> None:
    """One check's verdict and receipt, from its record (:meth:`CheckOutcome.record`)."""
    head = f"check {o['check']} ({o['kind']}) on forecast {o['forecast']}: {o['verdict'].upper()}"
    if o["unchanged"]:
        head += " (unchanged)"
    if o["action"]:
        head += f" -> {o['action']}"
    click.echo(head)
    receipt = [
        f"HTTP {o['http_status']}" if o["http_status"] is not None else None,
        f"sha256 {o['sha256'][:16]}" if o["sha256"] else None,
        o["url"],
    ]
    if any(receipt):
        click.echo("  " + "  ".join(r for r in receipt if r))
    if o["value"]:
        click.echo(f"  value:   {_short(o['value'], 100)}")
    if o["excerpt"]:
        click.echo(f"  excerpt: {_short(o['excerpt'], 200)}")
    if o["error"]:
        kind = "temporary" if o.get("temporary") else "permanent"
        click.echo(f"  error ({kind}): {o['error']}")


@click.command()
@forecast_argument
@click.option(
    "--add",
    "added",
    multiple=True,
    metavar="SPEC",
    help="First attach a resolver check (repeatable): 'page:url=URL,contains=TERM' or JSON.",
)
@click.option("--stop", "stop", type=int, metavar="CHECK", help="Stop one of its checks (no run).")
@click.option(
    "--resume", "resume", type=int, metavar="CHECK", help="Set a stopped check going (no run)."
)
@click.option("--note", help="Why, with --stop or --resume (kept in the receipt).")
@click.option("--dry-run", is_flag=True, help="Fetch and judge, but record nothing.")
@json_option
@pass_app
def check(
    app: App,
    forecast_id: str,
    added: tuple[str, ...],
    stop: int | None,
    resume: int | None,
    note: str | None,
    dry_run: bool,
    as_json: bool,
) -> int:
    """Run one forecast's checks now; print each verdict and its receipt.

    With --add, the checks are attached to the forecast first (as `tracker add --check` does at
    registration), then run with the others. --stop and --resume change one check and run none:
    a stopped check is passed by (sweeps, this command) until it is resumed.
    """
    if stop is not None or resume is not None:
        _switch(app, forecast_id, stop, resume, note, bool(added) or dry_run, as_json)
        return 0
    new_ids = _attach(app, forecast_id, added, dry_run, as_json) if added else []
    settings = sweep_settings(app) if app.client is None else None  # a server uses its own
    report = app.ops.run_checks(forecast_id, dry_run=dry_run, settings=settings)
    if as_json:
        emit_json({**report, "added": new_ids} if added else report)
    elif not report["outcomes"]:
        click.echo(f"Forecast {forecast_id} has no checks to run (none attached, or all stopped).")
    else:
        for outcome in report["outcomes"]:
            _echo_outcome(outcome)
        if dry_run:
            click.echo("(dry run: nothing recorded)")
    return 1 if report["errors"] else 0


def _switch(
    app: App,
    forecast_id: str,
    stop: int | None,
    resume: int | None,
    note: str | None,
    other: bool,
    as_json: bool,
) -> None:
    """``--stop`` / ``--resume``: one check changed, recorded in the receipts chain."""
    from predictions.errors import InputError
    from predictions.validation import require_text

    if stop is not None and resume is not None:
        raise InputError("--resume", resume, "either --stop or --resume, not both")
    if other:
        flag = "--stop" if stop is not None else "--resume"
        raise InputError(
            flag, stop if stop is not None else resume, "no --add or --dry-run with it"
        )
    check_id = stop if stop is not None else resume
    assert check_id is not None
    note = require_text(note, "note", optional=True)
    record = app.ops.switch_check(
        forecast_id, check_id, stop=stop is not None, note=note, by=app.writer()
    )
    state = "running again (due now)" if record["running"] else "stopped"
    emit(
        record,
        as_json,
        f"Forecast {record['forecast']}: check {check_id} ({record['kind']}) {state}.",
    )


def _attach(
    app: App, forecast_id: str, specs: tuple[str, ...], dry_run: bool, as_json: bool
) -> list[int]:
    """Validate every spec, then store them all on the forecast (each with its ``check``
    receipt); nothing is stored if any is bad. Returns the new check ids."""
    from predictions.errors import InputError

    if dry_run:
        raise InputError(
            "--add", specs[0], "no --dry-run with it (a dry run records nothing, not even a check)"
        )
    attached = app.ops.attach_checks(forecast_id, list(specs))
    ids, valid = attached["added"], attached["checks"]
    if not as_json:
        for cid, spec in zip(ids, valid, strict=True):
            click.echo(f"Forecast {attached['forecast']}: added check {cid} ({spec['kind']}).")
    return ids


@contextmanager
def _progress(total: int, enabled: bool) -> Iterator[Any]:
    if not enabled or total == 0:
        yield None
        return
    with click.progressbar(length=total, label="Checking", file=sys.stderr) as bar:
        done = [0]

        def update(n: int, _total: int) -> None:
            if n > done[0]:
                bar.update(n - done[0])
                done[0] = n

        yield update


def _summary(report: SweepReport) -> str:
    counts: dict[str, int] = {}
    for o in report.outcomes:
        counts[o.verdict] = counts.get(o.verdict, 0) + 1
    parts = [
        plural(counts[v], v) if v == "error" else f"{counts[v]} {v}"
        for v in ("yes", "no", "annul", "none", "error")
        if counts.get(v)
    ]
    text = f"Checked {report.checked} in {report.seconds:.1f}s"
    if parts:
        text += ": " + ", ".join(parts)
    if report.lost:
        text += f" ({report.lost} left to another worker after the lease ran out)"
    return text


@click.command()
@click.option("--limit", type=click.IntRange(min=1), help="Check at most this many.")
@json_option
@pass_app
def sweep(app: App, limit: int | None, as_json: bool) -> int:
    """Run every check that is due, concurrently; exit 1 if any failed."""
    from resolvers.sweep import count_due
    from resolvers.sweep import sweep as run_sweep

    settings = sweep_settings(app)
    show_bar = not as_json and sys.stderr.isatty()
    total = count_due(app.engine) if show_bar else 0
    if limit is not None:
        total = min(total, limit)
    with _progress(total, show_bar) as progress:
        report = run_sweep(app.engine, limit=limit, settings=settings, progress=progress)
    if as_json:
        emit_json(report.record())
        return 1 if report.errors else 0
    click.echo(_summary(report))
    for o in report.actions:
        click.echo(f"  forecast {o.forecast_id}: {o.action} ({o.kind}, check {o.check_id})")
    if report.errors:
        click.echo(
            f"{plural(len(report.errors), 'check')} failed (recorded; they back off and retry):"
        )
        for o in report.errors:
            click.echo(f"  check {o.check_id} ({o.kind}) on forecast {o.forecast_id}: {o.error}")
    return 1 if report.errors else 0


@click.command()
@json_option
@pass_app
def review(app: App, as_json: bool) -> None:
    """List proposals waiting for you: forecast, verdict, evidence excerpt, URL."""
    items = app.ops.review()
    if as_json:
        emit_json(items)
        return
    if not items:
        click.echo("Nothing to review.")
        return
    for item in items:
        f, e = item["forecast"], item["evidence"] or {}
        what = (
            item["said"]
            if item["kind"] == "resolve"
            else f"DISAGREEMENT: source says {item['said']}, forecast is "
            + (
                f["resolution"]
                or ("YES" if f["outcome"] else "NO" if f["status"] == "resolved" else f["status"])
            )
        )
        click.echo(f"#{f['id']}  {f['title']}")
        click.echo(f"  proposal {item['proposal']}: {what}  (from {e.get('kind', '?')})")
        if e.get("excerpt"):
            click.echo(f"  excerpt: {_short(e['excerpt'], 200)}")
        if e.get("url"):
            click.echo(f"  url:     {e['url']}")
    click.echo("Settle with `tracker confirm ID` or `tracker dispute ID --note TEXT`.")


@click.command()
@forecast_argument
@proposal_option
@click.option("--note", help="A note kept with the resolution.")
@by_option("confirms")
@json_option
@pass_app
def confirm(
    app: App,
    forecast_id: str,
    proposal_id: int | None,
    note: str | None,
    by: str | None,
    as_json: bool,
) -> None:
    """Accept a forecast's pending proposal: resolve (or annul) it as proposed."""
    record = app.ops.decide("confirm", forecast_id, proposal_id, note, app.writer(by))
    if as_json:
        emit_json(record)
    elif record["status"] == "acknowledged":
        click.echo(
            f"Forecast {record['forecast']}: disagreement {record['id']} acknowledged; "
            "the resolution stands."
        )
    elif record["verdict"] == "annul":
        click.echo(f"Forecast {record['forecast']} annulled (proposal {record['id']}).")
    else:
        click.echo(
            f"Forecast {record['forecast']} resolved {record['resolution']} "
            f"(proposal {record['id']})."
        )


@click.command()
@forecast_argument
@click.option("--note", required=True, help="Why the proposal is wrong.")
@proposal_option
@by_option("disputes")
@json_option
@pass_app
def dispute(
    app: App,
    forecast_id: str,
    note: str,
    proposal_id: int | None,
    by: str | None,
    as_json: bool,
) -> None:
    """Reject a forecast's pending proposal, with a note; the forecast is unchanged."""
    record = app.ops.decide("dispute", forecast_id, proposal_id, note, app.writer(by))
    emit(record, as_json, f"Forecast {record['forecast']}: proposal {record['id']} disputed.")


@click.command()
@forecast_argument
@json_option
@pass_app
def evidence(app: App, forecast_id: str, as_json: bool) -> None:
    """Every check ever made on a forecast: time, URL, status, sha256, verdict, excerpt."""
    from predictions.timetext import local_time

    records = app.ops.evidence(forecast_id)
    if as_json:
        emit_json(records)
        return
    if not records:
        click.echo(f"No evidence recorded for forecast {forecast_id} yet.")
        return
    rows = [
        (
            local_time(r["checked_at"], app.tz),
            r["kind"],
            r["verdict"] + (" (304)" if r["unchanged"] else ""),
            r["http_status"] if r["http_status"] is not None else "",
            (r["sha256"] or "")[:12],
            r["url"] or "",
            _short(r["error"] or r["excerpt"] or r["value"], 60),
        )
        for r in records
    ]
    table(("checked", "kind", "verdict", "http", "sha256", "url", "excerpt / error"), rows)


COMMANDS = [check, sweep, review, confirm, dispute, evidence]
