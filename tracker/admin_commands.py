"""Commands that look after the store: verify, db, config."""

from __future__ import annotations

import click

from predictions import ledger
from predictions.db import SCHEMA_REVISION, schema_revision, upgrade_schema
from predictions.errors import ChainError
from tracker.cli import App, pass_app
from tracker.display import emit_json, table

__all__ = ["COMMANDS"]


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
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
        f"OK: {report.entries} ledger entries verify; head {report.head}; "
        f"{report.receipts} receipts verify"
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
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
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
@pass_app
def config_set(app: App, key: str, value: str) -> None:
    """Set a setting in the config file (secrets go in environment variables, not here)."""
    stored = app.config.set(key, value)
    click.echo(f"{key} = {stored}  ({app.config.path})")


@config.command(name="unset")
@click.argument("key")
@pass_app
def config_unset(app: App, key: str) -> None:
    """Remove a setting from the config file (its default applies again)."""
    app.config.unset(key)
    click.echo(f"{key} unset")


COMMANDS = [verify, db, config]
