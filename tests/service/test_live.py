"""The service under a real uvicorn on loopback: sign in with a browser's cookies, get a token,
call the API with it."""

from __future__ import annotations

import httpx
from fastapi import FastAPI

from tests.service.support import add_user, live_server, sign_in


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
