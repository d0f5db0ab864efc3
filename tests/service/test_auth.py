"""Signing in and out through the app: session fixation, CSRF, throttling, logout everywhere,
tokens revoked at once, roles and ownership, open redirects, Secure cookies."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.testclient import TestClient
from freezegun import freeze_time

from predictions import accounts
from service.auth import LOGIN_CSRF_COOKIE, SESSION_COOKIE
from tests.service.support import add_user, csrf_of, sign_in


def _token(client: TestClient, name: str, password: str) -> str:
    response = client.post("/api/v1/tokens", json={"name": name, "password": password})
    assert response.status_code == 201, response.text
    return str(response.json()["token"])


def test_auth_login_sets_a_new_session_cookie_each_time(app: FastAPI, client: TestClient) -> None:
    password = add_user(app, "mei")
    first = sign_in(client, "mei", password)
    assert first.status_code == 303 and first.headers["location"] == "/settings/tokens"
    cookie = client.cookies[SESSION_COOKIE]
    header = first.headers["set-cookie"]
    assert "HttpOnly" in header and "SameSite=lax" in header and "Secure" not in header
    second = sign_in(client, "mei", password)
    assert second.status_code == 303
    assert client.cookies[SESSION_COOKIE] != cookie
    # the session of the old cookie ended: a planted cookie gives nothing after sign-in
    with TestClient(app, follow_redirects=False, cookies={SESSION_COOKIE: cookie}) as other:
        assert other.get("/api/v1/me").status_code == 401
    assert client.get("/api/v1/me").json()["name"] == "mei"


def test_auth_login_refuses_a_form_without_its_csrf_token(app: FastAPI, client: TestClient) -> None:
    password = add_user(app, "mei")
    client.get("/login")
    response = client.post("/login", data={"name": "mei", "password": password, "csrf_token": ""})
    assert response.status_code == 403 and "CSRF" in response.text
    assert SESSION_COOKIE not in client.cookies
    with TestClient(app, follow_redirects=False) as fresh:  # no login cookie at all
        token = csrf_of(client.get("/login").text)
        response = fresh.post(
            "/login", data={"name": "mei", "password": password, "csrf_token": token}
        )
        assert response.status_code == 403


def test_auth_unsafe_cookie_requests_need_the_session_csrf_token(
    app: FastAPI, client: TestClient
) -> None:
    password = add_user(app, "mei", "admin")
    sign_in(client, "mei", password)
    assert client.post("/logout").status_code == 403
    assert client.post("/logout", data={"csrf_token": "forged"}).status_code == 403
    response = client.post("/api/v1/users", json={"name": "bo"})
    assert response.status_code == 403
    assert response.headers["content-type"] == "application/problem+json"
    assert client.get("/api/v1/me").status_code == 200  # still signed in
    token = csrf_of(client.get("/settings/tokens").text)
    response = client.post("/api/v1/users", json={"name": "bo"}, headers={"X-CSRF-Token": token})
    assert response.status_code == 201
    assert client.post("/logout", data={"csrf_token": token}).status_code == 303
    assert client.get("/api/v1/me").status_code == 401


def test_auth_bearer_requests_need_no_csrf_token(app: FastAPI, client: TestClient) -> None:
    password = add_user(app, "mei", "admin")
    secret = _token(client, "mei", password)
    response = client.post(
        "/api/v1/users", json={"name": "bo"}, headers={"Authorization": f"Bearer {secret}"}
    )
    assert response.status_code == 201 and response.json()["role"] == "member"
    assert len(response.json()["password"]) >= 16


def test_auth_logout_everywhere_ends_every_session_but_not_tokens(
    app: FastAPI, client: TestClient
) -> None:
    password = add_user(app, "mei")
    secret = _token(client, "mei", password)
    with TestClient(app, follow_redirects=False) as phone:
        sign_in(phone, "mei", password)
        sign_in(client, "mei", password)
        assert phone.get("/api/v1/me").status_code == 200
        token = csrf_of(client.get("/settings/tokens").text)
        assert client.post("/logout-everywhere", data={"csrf_token": token}).status_code == 303
        assert phone.get("/api/v1/me").status_code == 401
        assert phone.get("/settings/tokens").headers["location"].startswith("/login?next=")
    assert client.get("/api/v1/me").status_code == 401
    bearer = {"Authorization": f"Bearer {secret}"}
    assert client.get("/api/v1/me", headers=bearer).status_code == 200


def test_auth_login_form_is_throttled(app: FastAPI, client: TestClient) -> None:
    password = add_user(app, "mei")
    with freeze_time("2030-01-01 12:00:00") as frozen:
        for _ in range(accounts.THROTTLE["name"].failures):
            assert sign_in(client, "mei", "wrong-password").status_code == 401
        refused = sign_in(client, "mei", password)
        assert refused.status_code == 429 and "too many failed sign-ins" in refused.text
        assert int(refused.headers["retry-after"]) > 0
        api = client.post("/api/v1/tokens", json={"name": "mei", "password": password})
        assert api.status_code == 429 and api.json()["detail"].startswith("too many")
        frozen.tick(accounts.THROTTLE["name"].lock)
        assert sign_in(client, "mei", password).status_code == 303


def test_auth_revoked_token_fails_at_once(app: FastAPI, client: TestClient) -> None:
    password = add_user(app, "mei")
    secret = _token(client, "mei", password)
    bearer = {"Authorization": f"Bearer {secret}"}
    me = client.get("/api/v1/me", headers=bearer)
    assert me.status_code == 200 and me.json()["role"] == "member"
    listed = client.get("/api/v1/tokens", headers=bearer).json()
    assert listed["total"] == 1 and "token" not in listed["items"][0]
    token_id = listed["items"][0]["id"]
    assert client.delete(f"/api/v1/tokens/{token_id}", headers=bearer).status_code == 200
    refused = client.get("/api/v1/me", headers=bearer)
    assert refused.status_code == 401 and refused.headers["www-authenticate"] == "Bearer"
    assert refused.json()["detail"] == "the API token is unknown, revoked or its user disabled"


def test_auth_roles_and_ownership(app: FastAPI, client: TestClient) -> None:
    passwords = {name: add_user(app, name, role) for name, role in
                 (("mei", "admin"), ("bo", "member"), ("vi", "viewer"))}  # fmt: skip
    secrets = {name: _token(client, name, pw) for name, pw in passwords.items()}

    def call(name: str, method: str, path: str, **kwargs: object) -> int:
        headers = {"Authorization": f"Bearer {secrets[name]}"}
        return client.request(method, path, headers=headers, **kwargs).status_code  # type: ignore[arg-type]

    assert call("vi", "GET", "/api/v1/users") == 403
    assert call("bo", "POST", "/api/v1/users", json={"name": "zed"}) == 403
    assert call("mei", "GET", "/api/v1/users") == 200
    bo_token = client.get(
        "/api/v1/tokens", headers={"Authorization": f"Bearer {secrets['bo']}"}
    ).json()["items"][0]["id"]
    assert call("vi", "DELETE", f"/api/v1/tokens/{bo_token}") == 403  # not the owner
    assert call("vi", "DELETE", "/api/v1/tokens/999") == 404
    assert call("mei", "DELETE", f"/api/v1/tokens/{bo_token}") == 200  # an admin may
    assert call("mei", "PATCH", "/api/v1/users/vi", json={"disabled": True}) == 200
    assert call("vi", "GET", "/api/v1/me") == 401  # disabled: the token failed at once


def test_auth_login_never_redirects_off_site(app: FastAPI, client: TestClient) -> None:
    password = add_user(app, "mei")
    for target in ("//evil.example/x", "https://evil.example", "/\\evil.example", "javascript:x"):
        response = sign_in(client, "mei", password, next=target)
        assert response.status_code == 303 and response.headers["location"] == "/", target
    assert sign_in(client, "mei", password, next="/forecasts/3?x=1").headers["location"] == (
        "/forecasts/3?x=1"
    )


def test_auth_cookies_are_secure_over_https(app: FastAPI) -> None:
    password = add_user(app, "mei")
    with TestClient(app, base_url="https://testserver", follow_redirects=False) as client:
        page = client.get("/login")
        assert (
            "Secure" in page.headers["set-cookie"]
            and LOGIN_CSRF_COOKIE in page.headers["set-cookie"]
        )
        assert page.headers["strict-transport-security"].startswith("max-age=")
        response = sign_in(client, "mei", password)
        assert "Secure" in response.headers["set-cookie"]


def test_auth_tokens_page_shows_a_new_token_once(app: FastAPI, client: TestClient) -> None:
    password = add_user(app, "mei")
    sign_in(client, "mei", password)
    token = csrf_of(client.get("/settings/tokens").text)
    created = client.post("/settings/tokens", data={"csrf_token": token, "name": "laptop"})
    assert created.status_code == 200 and "not shown again" in created.text
    with app.state.store.read() as session:
        (row,) = accounts.list_tokens(session, "mei")
    secret_start = created.text.index("trk_")
    secret = created.text[secret_start : created.text.index("<", secret_start)]
    assert secret.startswith(row.prefix) and len(secret) > 40
    listing = client.get("/settings/tokens").text
    assert row.prefix in listing and secret not in listing
    revoked = client.post(f"/settings/tokens/{row.id}/revoke", data={"csrf_token": token})
    assert revoked.status_code == 303
    assert (
        client.get("/api/v1/me", headers={"Authorization": f"Bearer {secret}"}).status_code == 401
    )


def test_auth_password_change_checks_the_current_one_and_ends_other_sessions(
    app: FastAPI, client: TestClient
) -> None:
    password = add_user(app, "mei")
    with TestClient(app, follow_redirects=False) as phone:
        sign_in(phone, "mei", password)
        sign_in(client, "mei", password)
        token = csrf_of(client.get("/settings/password").text)
        form = {"csrf_token": token, "current": "not it at all", "new": "a brand new secret"}
        wrong = client.post("/settings/password", data=form)
        assert wrong.status_code == 403 and "the current password is wrong" in wrong.text
        short = client.post("/settings/password", data={**form, "current": password, "new": "x"})
        assert short.status_code == 422 and "at least 10 characters" in short.text
        assert phone.get("/api/v1/me").status_code == 200  # nothing changed yet
        changed = client.post("/settings/password", data={**form, "current": password})
        assert changed.status_code == 200 and "Your password is changed" in changed.text
        assert phone.get("/api/v1/me").status_code == 401
    assert client.get("/api/v1/me").json()["name"] == "mei"  # this browser's new session
    assert sign_in(client, "mei", password).status_code == 401
    assert sign_in(client, "mei", "a brand new secret").status_code == 303
