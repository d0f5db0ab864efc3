"""The service under a real uvicorn on loopback: sign in with a browser's cookies, get a token,
call the API with it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
from fastapi import FastAPI

from service.auth import LOGIN_CSRF_COOKIE
from tests.service.support import add_user, csrf_of, live_server, sign_in, wait_for


def test_live_sign_in_token_and_api_over_real_http(app: FastAPI) -> None:
    password = add_user(app, "mei", "admin", email="mei@example.org")
    with live_server(app) as base, httpx.Client(base_url=base) as browser:
        response = sign_in(browser, "mei", password)
        assert response.status_code == 303
        assert browser.get("/api/v1/me").json()["name"] == "mei"
        issued = httpx.post(base + "/api/v1/tokens", json={"name": "mei", "password": password})
        assert issued.status_code == 201
        bearer = {"Authorization": f"Bearer {issued.json()['token']}"}
        me = httpx.get(base + "/api/v1/me", headers=bearer)
        assert me.status_code == 200 and me.json()["email"] == "mei@example.org"
        assert me.headers["x-frame-options"] == "DENY"
        users = httpx.get(base + "/api/v1/users", headers=bearer).json()
        assert users["total"] == 1 and users["items"][0]["role"] == "admin"
        refused = httpx.get(base + "/api/v1/users")
        assert refused.status_code == 401
        assert refused.headers["content-type"] == "application/problem+json"


def test_live_behind_a_proxy_cookies_are_secure_and_hsts_is_sent(app: FastAPI) -> None:
    """uvicorn applies X-Forwarded-Proto from a trusted proxy (loopback here): the browser talks
    HTTPS to the proxy, so the session cookie is Secure and HSTS is on."""
    password = add_user(app, "mei")
    proxied = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.9"}
    with live_server(app, proxy_headers=True) as base, httpx.Client(base_url=base) as plain:
        page = plain.get("/login")
        assert "Secure" not in page.headers["set-cookie"]
        assert "strict-transport-security" not in page.headers
        page = plain.get("/login", headers=proxied)
        assert "Secure" in page.headers["set-cookie"]
        assert page.headers["strict-transport-security"].startswith("max-age=")
        token = csrf_of(page.text)
        data = {"name": "mei", "password": password, "csrf_token": token}
        # the browser sends its Secure cookie over its HTTPS leg (here: by hand over plain HTTP)
        cookie = {"Cookie": f"{LOGIN_CSRF_COOKIE}={token}"}
        signed = httpx.post(base + "/login", data=data, headers={**proxied, **cookie})
        assert signed.status_code == 303 and "Secure" in signed.headers["set-cookie"]
    with app.state.store.read() as session:
        from sqlalchemy import text

        addresses = session.execute(text("SELECT address FROM login_attempt")).scalars().all()
    assert addresses == ["203.0.113.9"]  # throttling counts the client, not the proxy


def test_live_tracker_serve_with_two_workers(tmp_path: Path, free_port: int) -> None:
    """`tracker serve --workers 2` (uvicorn's multiprocess mode over the import-string factory)
    serves the database the CLI made its user in."""
    env = {**os.environ, "TRACKER_DB": f"sqlite:///{tmp_path / 'served.db'}"}
    added = subprocess.run(
        [sys.executable, "-m", "tracker", "user", "add", "mei", "--role", "admin", "--json"],
        env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    password = json.loads(added.stdout)["password"]
    server = subprocess.Popen(
        [sys.executable, "-m", "tracker", "serve", "--port", str(free_port), "--workers", "2"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        base = f"http://127.0.0.1:{free_port}"
        wait_for(base + "/login")
        issued = httpx.post(base + "/api/v1/tokens", json={"name": "mei", "password": password})
        assert issued.status_code == 201, issued.text
        bearer = {"Authorization": f"Bearer {issued.json()['token']}"}
        for _ in range(6):  # across both workers
            assert httpx.get(base + "/api/v1/me", headers=bearer).json()["role"] == "admin"
    finally:
        server.terminate()
        output, _ = server.communicate(timeout=30)
    assert f"Serving http://127.0.0.1:{free_port}" in output
