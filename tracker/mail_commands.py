"""Commands for email reports and the daemon: notify, outbox, run. The translations from
configuration to the library live in :mod:`tracker.daemon`, which the daemon's jobs share."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from predictions.clock import now as clock_now
from predictions.leases import worker_name
from predictions.timetext import local_time
from predictions.wording import plural
from tracker.cli import App, json_option, limit_option, pass_app
from tracker.daemon import make_transport, notify_settings, run_daemon
from tracker.display import emit_json, table

if TYPE_CHECKING:
    from reports.notify import NotifySettings

__all__ = ["COMMANDS"]


@click.command()
@click.option(
    "--dry-run", is_flag=True, help="Print the reports that are due; queue and send nothing."
)
@json_option
@pass_app
def notify(app: App, dry_run: bool, as_json: bool) -> int:
    """Queue and send the reports due now.

    Sends every message ready in the outbox, including earlier ones waiting for a retry.
    Without smtp.host the messages are written as .eml files into a folder (email.outbox_dir,
    else 'outbox' in the user data dir). Exits 1 if a message could not be delivered.
    """
    from reports import notify as notify_lib

    settings = notify_settings(app)
    if dry_run:
        now = clock_now()
        with app.read() as session:
            planned = notify_lib.plan_reports(session, settings, now)
        if as_json:
            emit_json(
                [
                    {
                        "forecasters": list(p.forecasters),
                        "day": p.day.isoformat(),
                        "dedupe_key": p.dedupe_key,
                        "recipients": list(p.recipients),
                        "subject": p.message.subject,
                        "text": p.message.text,
                        "html": p.message.html,
                    }
                    for p in planned
                ]
            )
            return 0
        pending = _waiting(app)
        if not planned and not pending:
            click.echo(_nothing_due(settings, now))
        for r in pending:
            click.echo(_waits(r, app))
        for p in planned:
            click.echo(f"To: {', '.join(p.recipients) or '(email.to not set)'}")
            click.echo(f"Subject: {p.message.subject}")
            click.echo("")
            click.echo(p.message.text.rstrip("\n"))
            click.echo("")
        return 0
    transport = make_transport(app)
    result = notify_lib.run_notify(app.engine, settings, transport, worker=worker_name())
    delivery = result.delivery
    written = [str(p) for p in getattr(transport, "written", [])]
    waiting = {r["id"]: r for r in _waiting(app)}
    if as_json:
        emit_json(
            {
                "queued": [
                    {
                        "id": q.id,
                        "forecasters": list(q.forecasters),
                        "recipients": list(q.recipients),
                        "day": q.day.isoformat(),
                        "dedupe_key": q.dedupe_key,
                        "subject": q.message.subject,
                    }
                    for q in result.queued
                ],
                "destination": transport.describe(),
                "sent": delivery.sent,
                "files": written,
                "retrying": delivery.retrying,
                "failed": delivery.failed,
                "errors": {str(k): v for k, v in delivery.errors.items()},
                "refused": {str(k): v for k, v in delivery.refused.items()},
                "waiting": [
                    {
                        k: r[k]
                        for k in ("id", "subject", "next_attempt_at", "attempts", "last_error")
                    }
                    for r in waiting.values()
                ],
            }
        )
        return 0 if delivery.ok else 1
    if result.queued:
        click.echo(
            f"Queued {plural(len(result.queued), 'report')}: "
            + "; ".join(
                f"{', '.join(q.recipients) or '(email.to not set)'}: "
                f"{', '.join(q.forecasters)} ({q.day})"
                for q in result.queued
            )
        )
    elif not (delivery.sent or delivery.errors or waiting):
        click.echo(_nothing_due(settings, clock_now()))
    for r in waiting.values():
        if r["id"] not in delivery.errors:  # failed in an earlier run, waits for its retry
            click.echo(_waits(r, app))
    if delivery.sent:
        if written:
            folder = Path(written[0]).parent
            click.echo(
                f"Wrote {plural(len(written), 'message')} to {folder} (no smtp.host set; "
                "`tracker config set smtp.host HOST` to send mail):"
            )
            for path in written:
                click.echo(f"  {path}")
        else:
            click.echo(f"Sent {plural(len(delivery.sent), 'message')} via {transport.describe()}")
    for row_id, refused in delivery.refused.items():
        for address, reply in refused.items():
            click.echo(f"Message {row_id}: recipient {address} refused: {reply}", err=True)
    for row_id in delivery.retrying:
        when = waiting[row_id]["next_attempt_at"] if row_id in waiting else None
        at = f" at {local_time(when, app.tz)}" if when else ""
        click.echo(
            f"Message {row_id}: not sent, will retry{at}: {delivery.errors[row_id]}", err=True
        )
    for row_id in delivery.failed:
        click.echo(f"Message {row_id}: failed: {delivery.errors[row_id]}", err=True)
    return 0 if delivery.ok else 1


def _waiting(app: App) -> list[dict[str, Any]]:
    """Queued messages that failed and wait for their next try."""
    from reports.outbox import list_messages

    with app.read() as session:
        return [r for r in list_messages(session, "queued", limit=None) if r["attempts"]]


def _waits(r: dict[str, Any], app: App) -> str:
    """When and why a message waits for its next try."""
    return (
        f"Message {r['id']} ({r['subject']}) waits for a retry at "
        f"{local_time(r['next_attempt_at'], app.tz)} after "
        f"{plural(r['attempts'], 'failed attempt')}: {r['last_error']}"
    )


def _nothing_due(settings: NotifySettings, now: Any) -> str:
    """What ``notify`` says when it has nothing to queue, send or wait for: whether the report
    is still to come."""
    from reports.notify import report_day

    weekly = settings.frequency == "weekly"
    if report_day(now, settings) is None:
        return (
            f"Nothing to send yet: the report goes out after {settings.send_at.strftime('%H:%M')} "
            f"{settings.tz.key}{' on Mondays' if weekly else ''} (notify.time, timezone"
            f"{', notify.frequency' if weekly else ''})."
        )
    return f"Nothing new to report {'this week' if weekly else 'today'}."


@click.command()
@click.option(
    "--status",
    type=click.Choice(("queued", "sent", "failed", "all")),
    default="all",
    show_default=True,
    help="Which messages to list.",
)
@limit_option(50, "At most this many, newest first (0: all).")
@json_option
@pass_app
def outbox(app: App, status: str, limit: int, as_json: bool) -> None:
    """List queued, sent and failed messages.

    Each with its attempts, when it was sent or is next tried, and the last error.
    """
    from reports.outbox import list_messages

    with app.read() as session:
        records = list_messages(session, status, limit=limit or None)
    if as_json:
        emit_json(records)
        return
    if not records:
        click.echo("No messages." if status == "all" else f"No {status} messages.")
        return
    rows = []
    for r in records:
        at = r["sent_at"] or r["failed_at"]
        when = local_time(at or r["next_attempt_at"], app.tz)
        when = when if at else f"next try {when}"
        rows.append(
            (
                r["id"],
                r["status"],
                r["attempts"],
                when,
                ", ".join(r["recipients"]),
                r["subject"],
                r["last_error"] or "",
            )
        )
    table(("id", "status", "tries", "when", "to", "subject", "last error"), rows)


@click.command()
@click.option(
    "--notify-every",
    type=click.FloatRange(min=0.1),
    metavar="SECONDS",
    help="Seconds between notify runs (default: notify.interval_minutes).",
)
@click.option(
    "--sweep-every",
    type=click.FloatRange(min=0.1),
    metavar="SECONDS",
    help="Seconds between resolver sweeps (default: resolvers.interval_minutes).",
)
@pass_app
def run(app: App, notify_every: float | None, sweep_every: float | None) -> int:
    """Run the daemon: reports and resolver sweeps on a schedule.

    SIGTERM or SIGINT lets the job in hand finish, then exits 0. Any number may run on one
    database: each report is queued once and each message sent once.
    """
    return run_daemon(app, notify_seconds=notify_every, sweep_seconds=sweep_every)


COMMANDS = [notify, outbox, run]
