"""``tracker serve``: the web app and HTTP API (:mod:`service`) under uvicorn.

FastAPI and uvicorn are imported here, inside the command, so that no other command pays for them.
"""

from __future__ import annotations

import os

import click

from tracker.cli import App, pass_app

__all__ = ["COMMANDS"]


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

    from service.app import Settings, create_app

    settings = Settings(db_url=app.db_url, base_url=app.config.get("server.base_url"))
    app.engine  # noqa: B018  (creates and migrates a SQLite file; an old schema fails here)
    where = app.engine.url.render_as_string(hide_password=True)
    click.echo(f"Serving http://{host}:{port} on {where} ({workers} worker(s)); Ctrl-C stops")
    options = {"host": host, "port": port, "proxy_headers": True}
    if workers == 1:
        uvicorn.run(create_app(config=settings), **options)  # type: ignore[arg-type]
        return
    os.environ["TRACKER_SERVICE_DB"] = settings.db_url
    if settings.base_url:
        os.environ["TRACKER_SERVICE_BASE_URL"] = settings.base_url
    uvicorn.run("service.app:app_from_env", factory=True, workers=workers, **options)  # type: ignore[arg-type]


COMMANDS = [serve]
