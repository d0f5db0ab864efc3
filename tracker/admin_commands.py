"""Commands that look after the store: verify, db, config."""

from __future__ import annotations

import sys

import click

from predictions import ledger, lite, store
from predictions.db import SCHEMA_REVISION, schema_revision, upgrade_schema
from predictions.errors import ChainError, InputError
from predictions.wording import plural
from tracker.cli import App, json_option, pass_app
from tracker.config import login_name
from tracker.display import emit_json, table

__all__ = ["COMMANDS"]


@click.command()
@json_option
@pass_app
def verify(app: App, as_json: bool) -> None:
    """Check the tamper-evident record.

    Recomputes the hash chain, replays it against every table, and exits 1 naming the first
    entry or row that does not match.
    """
    with app.read() as session:
        report = ledger.verify(session)
    if as_json:
        emit_json(
            {
                "ok": report.ok,
                "entries": report.entries,
                "head": report.head,
                "first_bad_seq": report.seq,
                "receipts": report.receipts,
                "receipts_head": report.receipts_head,
                "first_bad_receipt": report.receipt_seq,
                "problem": report.problem,
            }
        )
        if not report.ok:
            raise SystemExit(1)
        return
    if not report.ok:
        raise ChainError(report.seq, f"ledger does not verify: {report.problem}")
    click.echo(
        f"OK: {plural(report.entries, 'ledger entry', 'ledger entries')} verify; "
        f"head {report.head}; {plural(report.receipts, 'receipt')} verify"
    )


@click.group()
def db() -> None:
    """Database schema: upgrade, current revision."""


@db.command()
@pass_app
def upgrade(app: App) -> None:
    """Apply the schema migrations (a SQLite file is migrated on first use by itself)."""
    engine = app.raw_engine()
    before = schema_revision(engine)
    upgrade_schema(engine)
    after = schema_revision(engine)
    click.echo(
        f"Database at {after}"
        + (" (already current)" if before == after else f" (was {before or 'empty'})")
    )


@db.command()
@pass_app
def current(app: App) -> None:
    """Print the schema revision of the database and the one this tracker expects."""
    engine = app.raw_engine()
    click.echo(f"database: {schema_revision(engine) or 'empty'}; expected: {SCHEMA_REVISION}")
    click.echo(f"url: {engine.url.render_as_string(hide_password=True)}")


@click.group()
def config() -> None:
    """Show and change settings in the config file."""


@config.command(name="show")
@json_option
@pass_app
def config_show(app: App, as_json: bool) -> None:
    """Every setting with its value and what it is for."""
    rows = app.config.shown()
    if as_json:
        values = {n: v for n, v, _ in rows}
        emit_json({"path": str(app.config.path), "database": app.db_url, "values": values})
        return
    click.echo(f"config file: {app.config.path}")
    table(("key", "value", "meaning"), [(n, "" if v is None else v, h) for n, v, h in rows])


@config.command(name="get")
@click.argument("key")
@pass_app
def config_get(app: App, key: str) -> None:
    """Print one setting."""
    value = app.config.get(key)
    click.echo("" if value is None else str(value))


@config.command(name="set")
@click.argument("key")
@click.argument("value")
@click.option(
    "--take-over/--no-take-over",
    default=None,
    help="With forecaster: make the forecasts and estimates recorded under your login name "
    "the new name's, by a ledger entry (default: ask on a terminal).",
)
@pass_app
def config_set(app: App, key: str, value: str, take_over: bool | None) -> None:
    """Set a setting in the config file (secrets go in environment variables, not here).

    `config set forecaster NAME` offers to take over what was recorded under your login name
    before a name was set (--take-over / --no-take-over say it without asking).
    """
    if key == "forecaster":
        stored = _set_forecaster(app, value.strip(), take_over)
    elif take_over is not None:
        raise InputError("--take-over", key, "the key forecaster")
    else:
        stored = app.config.set(key, value)
    click.echo(f"{key} = {stored}  ({app.config.path})")


def _set_forecaster(app: App, name: str, take_over: bool | None) -> object:
    """Set ``forecaster``, taking over the login name's records if agreed: in the database's
    transaction, so a name refused by either leaves both unchanged."""
    login = login_name()
    path = lite.sqlite_file(app.db_url)
    if take_over is False or name == login or (path is not None and not path.is_file()):
        return app.config.set("forecaster", name)
    with app.forecasts(write=True) as db:
        held = store.take_over(db, login, name, count_only=True)
        what = f"{plural(held[0], 'forecast')} and {plural(held[1], 'estimate')}"
        if any(held) and take_over is None:
            question = f'{what} are recorded as "{login}" (your login name). Make them {name}\'s?'
            if sys.stdin.isatty():
                take_over = click.confirm(question, default=True)
            else:
                click.echo(
                    f'Note: {what} stay recorded as "{login}"; to make them {name}\'s: '
                    f"tracker config set forecaster {name} --take-over",
                    err=True,
                )
        if any(held) and take_over:
            store.take_over(db, login, name)
            click.echo(f'Took over {what} from "{login}" (a take_over ledger entry)')
        return app.config.set("forecaster", name)


@config.command(name="unset")
@click.argument("key")
@pass_app
def config_unset(app: App, key: str) -> None:
    """Remove a setting from the config file (its default applies again)."""
    app.config.unset(key)
    click.echo(f"{key} unset")


COMMANDS = [verify, db, config]
