"""What the service's tests share: the route table's rows, signing in, a live uvicorn server.

rows = route_rows()                       # [(method, path, role, owner), ...]
with live_server(app) as base:            # "http://127.0.0.1:PORT"
    httpx.get(base + "/login")
sign_in(client, "mei", password)          # a TestClient or an httpx.Client, cookies kept
"""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI

from service.routes import table

__all__ = ["add_user", "csrf_of", "free_port", "live_server", "route_rows", "sign_in", "wait_for"]

_CSRF = re.compile(r'name="csrf_token" value="([^"]*)"')


def route_rows() -> list[tuple[str, str, str | None, bool]]:
    """The route table as ``(method, path, role, owner)``: role None is public."""
    return table()


def csrf_of(html: str, action: str | None = None) -> str:
    """The CSRF token of the page's first form (posting to ``action``, when given)."""
    start = html.index(f'action="{action}"') if action is not None else 0
    found = _CSRF.search(html, start)
    assert found is not None, "no csrf_token field on the page"
    return found.group(1)


def add_user(app: FastAPI, name: str, role: str = "member", **kwargs: Any) -> str:
    """Add a user through the store; returns their password."""
    from predictions import accounts

    with app.state.store.write() as session:
        _, password = accounts.add_user(
            session, name, email=kwargs.get("email"), role=role, by="test",
            password=kwargs.get("password"),
        )  # fmt: skip
    return password


def sign_in(client: Any, name: str, password: str, next: str = "/settings/tokens") -> Any:
    """Sign in through the login form (its CSRF token included); returns the POST's response."""
    page = client.get("/login")
    return client.post(
        "/login",
        data={
            "name": name,
            "password": password,
            "csrf_token": csrf_of(page.text, "/login"),
            "next": next,
        },
        follow_redirects=False,
    )


def free_port() -> int:
    """A TCP port free on loopback just now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def live_server(app: FastAPI, *, proxy_headers: bool = False) -> Iterator[str]:
    """Serve ``app`` with a real uvicorn on a free loopback port in a thread; yields its URL.
    ``proxy_headers``: trust X-Forwarded-* from loopback (as ``tracker serve`` does)."""
    port = free_port()
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        log_level="warning",
        lifespan="off",
        proxy_headers=proxy_headers,
        forwarded_allow_ips="127.0.0.1",
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the uvicorn server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


def wait_for(url: str) -> None:
    """Poll ``url`` until it answers (for servers started in another process)."""
    deadline = time.monotonic() + 30  # a loaded machine starts workers slowly
    while True:
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
