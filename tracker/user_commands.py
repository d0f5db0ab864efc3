"""Accounts of the service, run against the database on the server's machine: ``tracker user``
(add, list, role, disable, enable, password) and ``tracker token`` (list, revoke).

This is how the first admin is made: ``tracker user add mei --email mei@example.org --role
admin`` prints a generated password, shown once. It is the user's to keep, or to change on the
service's ``/settings/password`` page.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from predictions import accounts
from tracker.cli import App, json_option, pass_app
from tracker.display import emit, emit_json, table

__all__ = ["COMMANDS"]

_ROLE = click.Choice(accounts.ROLES)
T = TypeVar("T")


def _when(value: object) -> str:
    return "" if value is None else f"{value:%Y-%m-%d %H:%M}"


def _sign_in_hint(app: App) -> str:
    base = app.config.get("server.base_url")
    return f"sign in at {base}/login" if base else "sign in on the service's /login page"


def _change(app: App, change: Callable[..., T], *args: Any) -> T:
    """Run one change of :mod:`predictions.accounts` in a writing transaction, by the user."""
    with app.write() as session:
        return change(session, *args, by=app.forecaster)


@click.group()
def user() -> None:
    """Users of the service: add, list, change role, disable, reset a password."""


@user.command(name="add")
@click.argument("name")
@click.option("--email", help="Their email address.")
@click.option("--role", type=_ROLE, default="member", show_default=True, help="What they may do.")
@json_option
@pass_app
def user_add(app: App, name: str, email: str | None, role: str, as_json: bool) -> None:
    """Add a user NAME (their forecaster name) and print their one-time password.

    Roles: viewer reads; member forecasts and changes the forecasts they own; admin may do
    everything, users included.
    """
    with app.write() as session:
        added, password = accounts.add_user(
            session, name, email=email, role=role, by=app.forecaster
        )
    emit(
        {**accounts.user_record(added), "password": password},
        as_json,
        f"Added {added.name} ({added.role}). Password (shown once): {password}\n"
        f"They {_sign_in_hint(app)}; they may keep this password or change it there.",
    )


@user.command(name="list")
@json_option
@pass_app
def user_list(app: App, as_json: bool) -> None:
    """Every user with their role and state."""
    with app.read() as session:
        users = accounts.list_users(session)
    if as_json:
        emit_json([accounts.user_record(u) for u in users])
        return
    if not users:
        click.echo("No users yet: tracker user add NAME --email E --role admin")
        return
    table(
        ("name", "role", "email", "created", "state"),
        [
            (u.name, u.role, u.email or "", _when(u.created_at), "active" if u.active else
             f"disabled {_when(u.disabled_at)}")
            for u in users
        ],
    )  # fmt: skip


@user.command(name="role")
@click.argument("name")
@click.argument("role", type=_ROLE)
@pass_app
def user_role(app: App, name: str, role: str) -> None:
    """Give user NAME another ROLE."""
    changed = _change(app, accounts.set_role, name, role)
    click.echo(f"{changed.name} is now {changed.role}")


@user.command(name="disable")
@click.argument("name")
@pass_app
def user_disable(app: App, name: str) -> None:
    """Disable user NAME: their sessions end and their tokens are revoked at once."""
    _change(app, accounts.disable_user, name)
    click.echo(f"Disabled {name}: signed out everywhere, tokens revoked")


@user.command(name="enable")
@click.argument("name")
@pass_app
def user_enable(app: App, name: str) -> None:
    """Let a disabled user NAME sign in again (their old tokens stay revoked)."""
    _change(app, accounts.enable_user, name)
    click.echo(f"Enabled {name}")


@user.command(name="password")
@click.argument("name")
@pass_app
def user_password(app: App, name: str) -> None:
    """Give user NAME a new generated password (their sessions end; tokens stay)."""
    password = _change(app, accounts.set_password, name)
    click.echo(f"New password for {name} (shown once): {password}")


@click.group()
def token() -> None:
    """API tokens of the service's users: list, revoke."""


@token.command(name="list")
@click.option("--user", "name", help="Only this user's tokens.")
@json_option
@pass_app
def token_list(app: App, name: str | None, as_json: bool) -> None:
    """API tokens (never their secrets), newest first."""
    with app.read() as session:
        if name is not None:
            accounts.get_user(session, name)
        tokens = accounts.list_tokens(session, name)
    if as_json:
        emit_json([accounts.token_record(t) for t in tokens])
        return
    if not tokens:
        click.echo("No tokens")
        return
    table(
        ("id", "user", "name", "token", "created", "last used", "revoked"),
        [
            (t.id, t.user, t.name, t.prefix + "...", _when(t.created_at), _when(t.last_used_at),
             _when(t.revoked_at))
            for t in tokens
        ],
    )  # fmt: skip


@token.command(name="revoke")
@click.argument("token_id", metavar="ID", type=click.IntRange(min=1))
@pass_app
def token_revoke(app: App, token_id: int) -> None:
    """Revoke API token ID: it fails from the next request on."""
    revoked = _change(app, accounts.revoke_token, token_id)
    click.echo(f"Revoked token {revoked.id} ({revoked.name}) of {revoked.user}")


COMMANDS = [user, token]
