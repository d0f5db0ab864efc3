"""``tracker login URL`` and ``tracker logout``: the CLI as a client of a tracker service.

Login asks for a name and a password, gets an API token from the server (``POST /api/v1/tokens``)
and keeps it, with the URL and the name, in ``credentials.json`` beside ``config.toml`` (0600).
From then on the forecast, check, review, report, import and export commands go through the
server as that user (:mod:`tracker.client`). Logout revokes the token on the server and deletes
the file. Scripts pass a token in ``$TRACKER_TOKEN`` and the server with ``--server`` instead.
"""

from __future__ import annotations

import socket
import sys

import click

from predictions.errors import AuthError, OperationalError
from tracker.cli import App, pass_app

__all__ = ["COMMANDS"]


@click.command()
@click.argument("url")
@click.option("--name", help="Your user name on the service (default: asked).")
@click.option(
    "--password-stdin", is_flag=True, help="Read the password from standard input (scripts)."
)
@pass_app
def login(app: App, url: str, name: str | None, password_stdin: bool) -> None:
    """Sign in to the tracker service at URL; the CLI then works through it as you.

    The token is kept in credentials.json beside the config file, readable by you only; `tracker
    logout` revokes it.
    """
    from tracker.client import (
        Client,
        Credentials,
        credentials_path,
        load_credentials,
        save_credentials,
    )
    from tracker.config import KEYS

    url = KEYS["server.url"].parse("URL", url)
    if name is None:
        name = click.prompt("Name", default=app.config.configured_forecaster)
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("Password", hide_input=True)
    label = f"cli@{socket.gethostname()}"[:100]
    made = Client(url, None).call(
        "POST", "/api/v1/tokens", json={"name": name, "password": password, "label": label}
    )
    before = load_credentials()
    save_credentials(Credentials(url, made["token"], made["id"], made["user"]))
    if before is not None and before.token != made["token"]:
        try:
            _revoke(before.url, before.token, before.token_id)  # the token it replaces
        except OperationalError as exc:
            click.echo(f"Note: the previous token was not revoked: {exc}", err=True)
    click.echo(
        f"Signed in to {url} as {made['user']}; the token is kept in {credentials_path()} "
        "(readable by you only)."
    )


def _revoke(url: str, token: str, token_id: int | None) -> bool:
    """Revoke a token on its server; False if the server no longer knows it."""
    from tracker.client import Client

    client = Client(url, token)
    try:
        client.call("DELETE", f"/api/v1/tokens/{token_id}")
    except AuthError:
        return False
    finally:
        client.close()
    return True


@click.command()
def logout() -> None:
    """Revoke the token `tracker login` stored, on its server, and forget it."""
    from tracker.client import credentials_path, delete_credentials, load_credentials

    stored = load_credentials()
    if stored is None:
        click.echo("Not signed in: no stored token.")
        return
    revoked = _revoke(stored.url, stored.token, stored.token_id)  # unreachable: nothing changes
    delete_credentials()
    done = "token revoked" if revoked else "the server had revoked the token already"
    click.echo(f"Signed out of {stored.url} ({done}); {credentials_path()} deleted.")


COMMANDS = [login, logout]
