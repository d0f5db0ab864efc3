"""The route table is the only way to a route; errors and security headers are the same on every
route."""

from __future__ import annotations

from http import HTTPStatus

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from service.app import CSP
from service.routes import install, route, rules, unlisted
from tests.service.support import add_user, route_rows, sign_in


def test_routes_every_app_route_is_in_the_table(app: FastAPI) -> None:
    served = {(m, r.path) for r in app.routes if isinstance(r, APIRoute) for m in r.methods}
    assert served == {(m, p) for m, p, _, _ in route_rows()}
    assert all(isinstance(r, APIRoute) for r in app.routes)
    assert unlisted(app) == []


def test_routes_table_declares_the_account_routes() -> None:
    rows = set(route_rows())
    assert {
        ("GET", "/login", None, False),
        ("POST", "/login", None, False),
        ("POST", "/logout", "viewer", False),
        ("POST", "/logout-everywhere", "viewer", False),
        ("GET", "/settings/password", "viewer", False),
        ("POST", "/settings/password", "viewer", False),
        ("GET", "/settings/tokens", "viewer", False),
        ("POST", "/settings/tokens", "viewer", False),
        ("POST", "/settings/tokens/{token_id}/revoke", "viewer", True),
        ("POST", "/api/v1/tokens", None, False),
        ("GET", "/api/v1/tokens", "viewer", False),
        ("DELETE", "/api/v1/tokens/{token_id}", "viewer", True),
        ("GET", "/api/v1/me", "viewer", False),
        ("GET", "/api/v1/users", "admin", False),
        ("POST", "/api/v1/users", "admin", False),
        ("PATCH", "/api/v1/users/{name}", "admin", False),
        ("GET", "/api/v1/openapi.json", None, False),
        ("GET", "/static/tracker.css", None, False),
    } <= rows
    # every unsafe public route checks its caller itself (a password, the login form's token)
    public_writes = {(m, p) for m, p, role, _ in rows if role is None and m != "GET"}
    assert public_writes == {("POST", "/login"), ("POST", "/api/v1/tokens")}


def test_routes_an_app_with_a_route_outside_the_table_refuses_to_start() -> None:
    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
    app.add_api_route("/sneaky", lambda: {}, methods=["GET"])
    with pytest.raises(RuntimeError, match="GET /sneaky"):
        install(app)


def test_routes_declarations_are_checked() -> None:
    with pytest.raises(ValueError, match="owner=True needs"):
        route("POST", "/api/v1/things/{thing}", owner=True)
    with pytest.raises(ValueError, match="role 'root'"):
        route("GET", "/x", role="root")
    with pytest.raises(ValueError, match="declared twice"):
        route("GET", "/api/v1/me")(lambda: None)
    assert all(rule.owned is not None for rule in rules() if rule.owner)


def test_routes_openapi_documents_the_api(client: TestClient) -> None:
    document = client.get("/api/v1/openapi.json").json()
    assert document["info"]["title"] == "Forecast tracker"
    assert "/api/v1/me" in document["paths"] and "/login" not in document["paths"]


def test_routes_security_headers_on_every_response(app: FastAPI, client: TestClient) -> None:
    password = add_user(app, "mei")
    responses = [
        client.get("/login"),
        client.get("/static/tracker.css"),
        client.get("/api/v1/me"),  # 401
        client.get("/no/such/page"),  # 404
        client.post("/api/v1/tokens", json={}),  # 422
        sign_in(client, "mei", password),  # 303
        client.get("/settings/tokens"),
    ]
    for response in responses:
        headers = response.headers
        assert headers["content-security-policy"] == CSP, response.url
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["x-frame-options"] == "DENY"
        assert headers["referrer-policy"] == "same-origin"
        assert "strict-transport-security" not in headers  # plain HTTP
    assert responses[1].headers["content-type"].startswith("text/css")
    assert responses[-1].headers["cache-control"] == "no-store"


def test_routes_errors_are_problem_json_on_the_api_and_pages_elsewhere(
    app: FastAPI, client: TestClient
) -> None:
    add_user(app, "mei", "admin", password="correct horse battery")
    missing = client.post("/api/v1/tokens", json={"password": "x"})
    assert missing.status_code == 422
    assert missing.headers["content-type"] == "application/problem+json"
    assert missing.json() == {
        "type": "about:blank",
        "title": HTTPStatus(422).phrase,
        "status": 422,
        "detail": "name: field required",
    }
    secret = client.post(
        "/api/v1/tokens", json={"name": "mei", "password": "correct horse battery"}
    ).json()["token"]
    bearer = {"Authorization": f"Bearer {secret}"}
    bad = client.post("/api/v1/users", json={"name": "bo", "role": "wizard"}, headers=bearer)
    assert bad.status_code == 422
    # the CLI's line: `Error: role: got 'wizard', expected one of viewer, member, admin`
    assert bad.json()["detail"] == "role: got 'wizard', expected one of viewer, member, admin"
    twice = client.patch("/api/v1/users/mei", json={"disabled": False}, headers=bearer)
    assert twice.status_code == 200
    gone = client.patch("/api/v1/users/nobody", json={"role": "member"}, headers=bearer)
    assert gone.status_code == 404 and gone.json()["detail"].startswith("user: got 'nobody'")
    page = client.get("/no/such/page")
    assert page.status_code == 404 and page.headers["content-type"].startswith("text/html")
    assert "no such page: /no/such/page" in page.text


def test_routes_https_base_url_makes_cookies_secure_and_sends_hsts(db_url: str) -> None:
    """Behind a proxy that does not say X-Forwarded-Proto, server.base_url decides."""
    from service.app import Settings, create_app

    app = create_app(db_url, Settings(base_url="https://forecasts.example.org"))
    try:
        with TestClient(app) as client:
            page = client.get("/login")
            assert page.headers["strict-transport-security"].startswith("max-age=")
            assert "Secure" in page.headers["set-cookie"]
            assert "strict-transport-security" in client.get("/static/tracker.css").headers
    finally:
        app.state.store.engine.dispose()
