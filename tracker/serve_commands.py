"""``tracker serve``: the web app and HTTP API (:mod:`service`) under uvicorn.

FastAPI and uvicorn are imported here, inside the command, so that no other command pays for them.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import click

from tracker.cli import App, pass_app

if TYPE_CHECKING:
    from fastapi import FastAPI

    from service.app import Settings

__all__ = ["COMMANDS", "app_from_config"]


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port", type=click.IntRange(1, 65535), default=8080, show_default=True, help="Port."
)
@click.option(
    "--workers",
    type=click.IntRange(1, 64),
    default=1,
    show_default=True,
    help="Worker processes (they share the database; nothing is kept in process memory).",
)
@pass_app
def serve(app: App, host: str, port: int, workers: int) -> None:
    """Serve the web app and the HTTP API (JSON under /api/v1).

    Behind a reverse proxy, uvicorn trusts X-Forwarded-Proto and X-Forwarded-For from the
    addresses in $FORWARDED_ALLOW_IPS (default 127.0.0.1). Make the first admin with
    `tracker user add NAME --email E --role admin`.
    """
    import uvicorn

    from service.app import create_app

    settings = _settings(app)
    app.engine  # noqa: B018  (creates and migrates a SQLite file; an old schema fails here)
    where = app.engine.url.render_as_string(hide_password=True)
    click.echo(f"Serving http://{host}:{port} on {where} ({workers} worker(s)); Ctrl-C stops")
    options = {"host": host, "port": port, "proxy_headers": True}
    if workers == 1:
        uvicorn.run(create_app(config=settings), **options)  # type: ignore[arg-type]
        return
    os.environ["TRACKER_SERVICE_DB"] = settings.db_url
    factory = "tracker.serve_commands:app_from_config"
    uvicorn.run(factory, factory=True, workers=workers, **options)  # type: ignore[arg-type]


def _settings(app: App) -> Settings:
    """The service's settings from the configuration, as every command reads it: the database,
    ``server.base_url`` and the resolvers' settings (:func:`tracker.check_commands.sweep_settings`,
    so a check run through the API runs as ``tracker check`` does)."""
    from service.app import Settings
    from tracker.check_commands import sweep_settings

    base_url = app.config.get("server.base_url")
    return Settings(db_url=app.db_url, base_url=base_url, sweep=sweep_settings(app))


def app_from_config() -> FastAPI:
    """The app of each uvicorn worker process (``--workers`` > 1): the database ``serve`` chose
    (``TRACKER_SERVICE_DB``), the rest from the configuration, as ``serve`` reads it."""
    from service.app import create_app

    return create_app(config=_settings(App(os.environ["TRACKER_SERVICE_DB"])))


COMMANDS = [serve]
