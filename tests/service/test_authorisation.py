"""The service's security, proved route by route from the route table (service.routes.table()).

- The authorisation matrix: every route x (anonymous, viewer, member, admin) x (the requester's
  own thing, someone else's) for owned routes, signed in by a session cookie (with its CSRF
  token) and by a Bearer token. The guard runs before the endpoint, so each request only has to
  reach past it: unsafe API requests carry a body no endpoint accepts (an allowed one comes back
  422 from the body, a refused one 401/403 from the guard). Refusals: the API answers
  ``application/problem+json``, an anonymous page GET is sent to ``/login?next=...``, other page
  requests get the HTML error page. The table itself is held to the issue's policy, so a new
  route must be placed in it knowingly.
- CSRF: every unsafe route signed in by cookie is refused without the session's token, with a
  wrong one, and with one in a body that is not a form.
- ``next=`` never leads off the site; session fixation; logout and logout everywhere end the
  old cookie; a revoked token fails on the very next request, in any server process; sign-in
  throttling (predictions.accounts.THROTTLE); the security headers on every kind of response.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from freezegun import freeze_time
from sqlalchemy import text

from predictions import accounts, store
from predictions.accounts import THROTTLE, allows
from predictions.models import Check, Evidence, Proposal
from service.app import Settings, create_app
from service.auth import LOGIN_CSRF_COOKIE, SESSION_COOKIE
from tests.conftest import table_counts
from tests.service.support import add_user, csrf_of, route_rows, sign_in

#: The Content-Security-Policy the issue declares, word for word.
DECLARED_CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
#: The table has at least this many routes (it only grows; the matrix walks every one).
ROUTES_AT_LEAST = 58
ROLES = ("viewer", "member", "admin")
REQUESTERS = {"viewer": "vic", "member": "mia", "admin": "ada"}
OTHER = "oto"  # a member owning the "someone else's" things
UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}
PROBE = {"guard_probe": True}  # a JSON body every API endpoint refuses (422), past the guard
AUTH_LINES = (
    "sign in first",
    "your session has ended; sign in again",
    "the API token is unknown, revoked or its user disabled",
)
CSRF_LINE = "CSRF token is missing or wrong"


# --- the policy the table must follow ------------------------------------------------------------


def policy(method: str, path: str) -> tuple[str | None, bool]:
    """The (role, owner) the issue gives a route: viewers read; members add forecasts, add
    their own estimates anywhere and change what they own; admins users, imports and exports;
    everyone signs in and reads the stylesheets and the OpenAPI document. A route none of these
    rules places fails the test: decide its rule here, then declare it."""
    public = {
        ("GET", "/login"), ("POST", "/login"), ("POST", "/api/v1/tokens"),
        ("GET", "/api/v1/openapi.json"), ("GET", "/static/tracker.css"),
        ("GET", "/static/report.css"),
    }  # fmt: skip
    if (method, path) in public:
        return None, False
    if path.startswith("/api/v1/users") or path in ("/api/v1/import", "/api/v1/export"):
        return "admin", False  # the export holds every estimate, blind questions' too
    owned = any("{" + p + "}" in path for p in accounts.OWNED)
    if path.startswith(("/settings/", "/api/v1/tokens", "/logout", "/api/v1/me")):
        return "viewer", owned
    if method == "GET":
        return ("member", False) if path == "/forecasts/new" else ("viewer", False)
    if path in ("/forecasts/new", "/api/v1/forecasts") or path.endswith(
        ("/estimate", "/estimates")
    ):
        return "member", False
    if path.startswith(("/forecasts/", "/api/v1/forecasts/", "/api/v1/checks/", "/proposals/",
                        "/api/v1/proposals/")):  # fmt: skip
        return "member", True
    raise AssertionError(f"{method} {path}: no rule of the issue places this route; add one")


def test_authorisation_table_follows_the_policy_and_is_complete(app: FastAPI) -> None:
    rows = route_rows()
    assert len(rows) >= ROUTES_AT_LEAST
    wrong = [
        (m, p, (role, owner), policy(m, p))
        for m, p, role, owner in rows
        if (role, owner) != policy(m, p)
    ]
    assert not wrong, f"routes declared against the policy (declared, policy): {wrong}"
    assert {(m, p) for m, p, _, _ in rows} == {
        (m, getattr(r, "path", "")) for r in app.routes for m in getattr(r, "methods", ())
    }


# --- the world the matrix runs in ----------------------------------------------------------------


@dataclass
class Thing:
    """The ids one user owns: a forecast, its check and pending proposal, a spare token."""

    forecast_id: int
    check_id: int
    proposal_id: int
    token_id: int


@dataclass
class World:
    app: FastAPI
    client: TestClient
    owned: dict[str, Thing]  # by user name
    bearer: dict[str, str]  # by user name: the secret of the token they sign in with
    user: dict[str, accounts.UserRow]

    def session(self, name: str) -> tuple[str, str]:
        """A fresh session of ``name`` (no argon2): its cookie and CSRF token."""
        with self.app.state.store.write() as s:
            cookie, row = accounts.start_session(s, self.user[name])
        return cookie, row.csrf_token


def _thing(app: FastAPI, name: str) -> Thing:
    with app.state.store.write() as s:
        f = store.add_forecast(
            s, title=f"Owned by {name}", criteria="Resolves YES if it happens.",
            due=datetime(2031, 1, 1), author=name, probability=0.4, tags=["matrix"],
        )  # fmt: skip
        check = Check(forecast_id=f.id, kind="page", params={"url": "https://example.org/"},
                      created_at=datetime(2026, 1, 2), next_check_at=datetime(2026, 1, 3))  # fmt: skip
        s.add(check)
        s.flush()
        evidence = Evidence(
            check_id=check.id, forecast_id=f.id, checked_at=datetime(2026, 3, 1), kind="page",
            resolver_version="1", url="https://example.org/", http_status=200, sha256="ab" * 32,
            excerpt="it happened", value=None, verdict="yes",
        )  # fmt: skip
        s.add(evidence)
        s.flush()
        proposal = Proposal(forecast_id=f.id, check_id=check.id, evidence_id=evidence.id,
                            kind="resolve", verdict="yes", created_at=datetime(2026, 3, 1))  # fmt: skip
        s.add(proposal)
        s.flush()
        token, _ = accounts.create_token(s, name, "spare", by=name)
        return Thing(f.id, int(check.id), int(proposal.id), token.id)


@pytest.fixture
def world(app: FastAPI, client: TestClient) -> World:
    users = {name: role for role, name in REQUESTERS.items()} | {OTHER: "member"}
    for name, role in users.items():
        add_user(app, name, role)
    with app.state.store.write() as s:
        rows = {name: accounts.get_user(s, name) for name in users}
        bearer = {name: accounts.create_token(s, name, "matrix", by=name)[1] for name in users}
    owned = {name: _thing(app, name) for name in users}
    return World(app, client, owned, bearer, rows)


def _values(world: World, who: str | None, own: bool) -> dict[str, str]:
    """A value for every path parameter: what ``who`` owns (``own``) or the other member's."""
    thing = world.owned[who if own and who else OTHER]
    return {
        "forecast_id": str(thing.forecast_id),
        "check_id": str(thing.check_id),
        "proposal_id": str(thing.proposal_id),
        "token_id": str(thing.token_id),
        "name": OTHER,
        "tag": "matrix",
    }


def _fill(path: str, values: dict[str, str]) -> str:
    names = re.findall(r"\{(\w+)\}", path)
    unknown = [n for n in names if n not in values]
    assert not unknown, f"{path}: give the matrix a value for {unknown} (_values)"
    return re.sub(r"\{(\w+)\}", lambda m: values[m.group(1)], path)


def _call(
    world: World, method: str, path: str, who: str | None, how: str, values: dict[str, str]
) -> httpx.Response:
    """One request as ``who`` (None: anonymous) signed in ``how`` ("cookie" or "bearer")."""
    url = _fill(path, values)
    headers: dict[str, str] = {}
    csrf = "probe-token"
    if who is not None and how == "bearer":
        headers["authorization"] = f"Bearer {world.bearer[who]}"
    cookies = {}
    if who is not None and how == "cookie":
        cookie, csrf = world.session(who)
        cookies[SESSION_COOKIE] = cookie
    cookies[LOGIN_CSRF_COOKIE] = csrf  # the login form's double-submit pair, as a browser has it
    headers["cookie"] = "; ".join(f"{k}={v}" for k, v in cookies.items())
    kwargs: dict[str, Any] = {}
    if method in UNSAFE:
        if path.startswith("/api/"):
            headers["x-csrf-token"] = csrf
            kwargs["json"] = PROBE
        else:
            kwargs["data"] = {"csrf_token": csrf}
    world.client.cookies.clear()
    return world.client.request(method, url, headers=headers, **kwargs)


def refusal(response: httpx.Response) -> str | None:
    """What the guard refused for ("auth", "csrf", "role", "owner"), or None (it let through)."""
    if response.status_code == 303 and response.headers["location"].startswith("/login?next="):
        return "auth"
    if response.status_code not in (401, 403):
        return None
    if response.headers["content-type"] == "application/problem+json":
        said = response.json()["detail"]
    else:
        said = response.text.replace("&#39;", "'")
    if response.status_code == 401 and any(line in said for line in AUTH_LINES):
        return "auth"
    if response.status_code == 403:
        if CSRF_LINE in said:
            return "csrf"
        if re.search(r"this needs the \w+ role; \w+ is a \w+", said):
            return "role"
        if "(its owner) or an admin may change this" in said:
            return "owner"
    return None


def _expected(role: str | None, owner: bool, who_role: str | None, own: bool) -> str | None:
    if role is None:
        return None
    if who_role is None:
        return "auth"
    if not allows(who_role, role):
        return "role"
    if owner and not own and who_role != "admin":
        return "owner"
    return None


def _check_form(
    response: httpx.Response, method: str, path: str, url: str, expected: str | None
) -> str | None:
    """How the refusal is given: problem+json on the API, a redirect to the login page for an
    anonymous page GET, the HTML error page otherwise; the security headers every time."""
    problems = _header_problems(response, https=False)
    if problems:
        return problems
    if expected is None:
        return None
    kind = response.headers.get("content-type", "")
    if path.startswith("/api/"):
        if kind != "application/problem+json":
            return f"refused without problem+json ({kind})"
        body = response.json()
        if set(body) != {"type", "title", "status", "detail"} or body["status"] != (
            response.status_code
        ):
            return f"not a problem document: {body}"
        if response.status_code == 401 and response.headers.get("www-authenticate") != "Bearer":
            return "a 401 without WWW-Authenticate: Bearer"
    elif expected == "auth" and method == "GET":
        target = "/login?next=" + quote(url, safe="")
        if response.status_code != 303 or response.headers["location"] != target:
            return f"not sent to {target}"
    elif not kind.startswith("text/html"):
        return f"a refused page is not HTML ({kind})"
    return None


def test_authorisation_matrix_every_route_role_and_owner(world: World) -> None:
    """Every route of the table x every requester x own/someone else's x cookie/Bearer."""
    failures: list[str] = []
    seen: set[tuple[str, str]] = set()
    calls = 0
    for method, path, role, owner in route_rows():
        seen.add((method, path))
        cases: list[tuple[str | None, str | None, bool, str]] = [(None, None, False, "none")]
        for role_of, name in REQUESTERS.items():
            for own in (True, False) if owner else (False,):
                cases += [(role_of, name, own, how) for how in ("cookie", "bearer")]
        for who_role, who, own, how in cases:
            values = _values(world, who, own)
            response = _call(world, method, path, who, how, values)
            calls += 1
            expected = _expected(role, owner, who_role, own)
            got = refusal(response)
            case = f"{method} {path} as {who or 'anonymous'} ({how}, {'own' if own else 'other'})"
            if got != expected:
                failures.append(f"{case}: expected {expected or 'through'}, got "
                                f"{got or 'through'} ({response.status_code})")  # fmt: skip
                continue
            wrong = _check_form(response, method, path, _fill(path, values), expected)
            if wrong:
                failures.append(f"{case}: {wrong}")
    assert not failures, "\n".join(failures)
    assert seen == {(m, p) for m, p, _, _ in route_rows()}
    owned = sum(1 for *_, owner in route_rows() if owner)
    assert calls == len(route_rows()) * 7 + owned * 6 >= ROUTES_AT_LEAST * 7


def test_authorisation_an_owned_id_that_does_not_exist_is_404_not_403(world: World) -> None:
    """For a member, an owned route naming nothing answers 404 before its endpoint runs (and
    anonymous still 401: nobody learns what exists without signing in)."""
    for method, path, _role, owner in route_rows():
        if not owner:
            continue
        values = {**_values(world, "mia", True), **dict.fromkeys(accounts.OWNED, "999999")}
        response = _call(world, method, path, "mia", "bearer", values)
        assert response.status_code == 404, (method, path, response.text)
        anonymous = _call(world, method, path, None, "none", values)
        assert refusal(anonymous) == "auth", (method, path)


# --- CSRF ----------------------------------------------------------------------------------------


def test_authorisation_csrf_every_unsafe_cookie_route_needs_the_session_token(
    world: World, engine_counts: Callable[[], dict[str, int]]
) -> None:
    """Signed in by cookie as an admin (so neither role nor owner stops anything), every unsafe
    route is refused 403 without the token, with a wrong one (header or form field), with
    another session's, and with the right one in a body that is not a form; nothing changes and
    the session lives on."""
    before = engine_counts()
    client = world.client
    unsafe = [(m, p) for m, p, role, _ in route_rows() if m in UNSAFE and role is not None]
    assert len(unsafe) >= 30
    _, others = world.session("mia")
    for method, path in unsafe:
        cookie, token = world.session("ada")
        url = _fill(path, _values(world, "ada", True))
        jar = {"cookie": f"{SESSION_COOKIE}={cookie}"}
        api = path.startswith("/api/")
        attempts: list[dict[str, Any]] = [
            {"headers": jar},
            {"headers": {**jar, "x-csrf-token": "forged"}},
            {"headers": {**jar, "x-csrf-token": others}},
            {"headers": {**jar, "x-csrf-token": ""}, "data": {"csrf_token": ""}},
            {"headers": {**jar, "content-type": "text/plain"}, "content": f"csrf_token={token}"},
            {"headers": {**jar, "authorization": f"Basic {token}"}},
        ]
        if api:
            attempts.append({"headers": jar, "json": {**PROBE, "csrf_token": token}})
        else:
            attempts += [
                {"headers": jar, "data": {"csrf_token": "forged"}},
                {"headers": {**jar, "x-csrf-token": "forged"}, "data": {"csrf_token": token}},
            ]
        for attempt in attempts:
            client.cookies.clear()
            response = client.request(method, url, **attempt)
            assert response.status_code == 403 and refusal(response) == "csrf", (
                method, path, attempt, response.status_code, response.text[:300],
            )  # fmt: skip
            if api:
                assert response.headers["content-type"] == "application/problem+json"
        client.cookies.clear()
        me = client.get("/api/v1/me", headers=jar)
        assert me.status_code == 200, (method, path)  # logout refused: the session lives
    assert engine_counts() == before


@pytest.fixture
def engine_counts(app: FastAPI) -> Callable[[], dict[str, int]]:
    """Row counts of every table but the sessions' (the test starts sessions as it goes)."""

    def counts() -> dict[str, int]:
        found = table_counts(app.state.store.engine)
        found.pop("web_session", None)
        return found

    return counts


# --- open redirects ------------------------------------------------------------------------------

OFF_SITE = (
    "https://evil.example",
    "//evil.example",
    "///evil.example",
    "/\\evil.example",
    "\\\\evil.example",
    "javascript:alert(1)",
    "JavaScript:alert(1)",
    "/\t/evil.example",
    "/\n/evil.example",
    " //evil.example",
    "https:evil.example",
    "data:text/html,<script>alert(1)</script>",
    "",
)


def test_authorisation_next_never_leads_off_the_site(app: FastAPI, client: TestClient) -> None:
    password = add_user(app, "mei")
    for target in OFF_SITE:
        form = client.get("/login", params={"next": target})
        assert form.status_code == 200
        assert 'name="next" value="/"' in form.text, target  # the form carries / instead
        response = sign_in(client, "mei", password, next=target)
        assert response.status_code == 303 and response.headers["location"] == "/", target
    on_site = sign_in(client, "mei", password, next="/forecasts?tag=a%2Fb&status=all")
    assert on_site.headers["location"] == "/forecasts?tag=a%2Fb&status=all"
    client.cookies.clear()
    # signed out, a page sends you to the login form with the page (on this site) as next
    sent = client.get("/forecasts", params={"tag": "x"})
    assert sent.status_code == 303
    assert sent.headers["location"] == "/login?next=" + quote("/forecasts?tag=x", safe="")
    # the ways out of the session go to the login page, nowhere else
    sign_in(client, "mei", password)
    token = csrf_of(client.get("/settings/tokens").text)
    out = client.post("/logout", data={"csrf_token": token, "next": "https://evil.example"})
    assert out.status_code == 303 and out.headers["location"] == "/login"


# --- sessions ------------------------------------------------------------------------------------


def _me(app: FastAPI, cookie: str) -> int:
    with TestClient(app, follow_redirects=False, cookies={SESSION_COOKIE: cookie}) as other:
        return other.get("/api/v1/me").status_code


def test_authorisation_no_session_fixation(app: FastAPI, client: TestClient) -> None:
    """A cookie planted before sign-in (made up, or the attacker's own session) is replaced at
    sign-in and leads nowhere afterwards; each sign-in gives a new value."""
    password = add_user(app, "mei")
    attacker_password = add_user(app, "mallory", "viewer")
    with TestClient(app, follow_redirects=False) as attacker:
        sign_in(attacker, "mallory", attacker_password)
        planted = attacker.cookies[SESSION_COOKIE]
    for before in ("chosen-by-the-attacker", planted):
        client.cookies.clear()
        client.cookies.set(SESSION_COOKIE, before, domain="testserver.local")
        response = sign_in(client, "mei", password)
        assert response.status_code == 303
        issued = client.cookies[SESSION_COOKIE]
        assert issued != before and len(issued) >= 40
        assert f"{SESSION_COOKIE}={issued}" in response.headers["set-cookie"]
        assert _me(app, before) == 401  # the planted value is no session of mei's
        assert client.get("/api/v1/me").json()["name"] == "mei"
    again = client.cookies[SESSION_COOKIE]
    sign_in(client, "mei", password)
    assert client.cookies[SESSION_COOKIE] != again and _me(app, again) == 401


def test_authorisation_old_cookies_die_at_logout_and_logout_everywhere(
    app: FastAPI, client: TestClient
) -> None:
    password = add_user(app, "mei")
    sign_in(client, "mei", password)
    first = client.cookies[SESSION_COOKIE]
    token = csrf_of(client.get("/settings/tokens").text)
    out = client.post("/logout", data={"csrf_token": token})
    assert out.status_code == 303 and f'{SESSION_COOKIE}=""' in out.headers["set-cookie"]
    assert _me(app, first) == 401  # replayed after logout: dead in the database, not just unset
    with TestClient(app, follow_redirects=False, cookies={SESSION_COOKIE: first}) as replay:
        assert replay.get("/").headers["location"] == "/login?next=%2F"
    browsers = []
    for _ in range(3):
        other = TestClient(app, follow_redirects=False)
        sign_in(other, "mei", password)
        browsers.append(other)
    cookies = [b.cookies[SESSION_COOKIE] for b in browsers]
    assert all(_me(app, c) == 200 for c in cookies)
    token = csrf_of(browsers[0].get("/settings/tokens").text)
    assert browsers[0].post("/logout-everywhere", data={"csrf_token": token}).status_code == 303
    assert [_me(app, c) for c in cookies] == [401, 401, 401]
    for b in browsers:
        b.close()


# --- tokens --------------------------------------------------------------------------------------


def test_authorisation_token_revocation_takes_effect_on_the_next_request(
    app: FastAPI, client: TestClient, db_url: str
) -> None:
    """Revoked through the API, the tokens page or by disabling the user: the very next request
    fails, in this process and in another server process over the same database."""
    password = add_user(app, "mei", "admin")
    add_user(app, "bo", "member")
    second = create_app(db_url, Settings())  # another server process, the same database
    try:
        with TestClient(second, follow_redirects=False) as elsewhere:

            def new_token(name: str) -> tuple[int, dict[str, str]]:
                with app.state.store.write() as s:
                    row, secret = accounts.create_token(s, name, "t", by=name)
                return row.id, {"authorization": f"Bearer {secret}"}

            # DELETE /api/v1/tokens/{id}, with the token itself
            tid, bearer = new_token("mei")
            assert elsewhere.get("/api/v1/me", headers=bearer).status_code == 200
            assert client.delete(f"/api/v1/tokens/{tid}", headers=bearer).status_code == 200
            for c in (client, elsewhere):
                assert c.get("/api/v1/me", headers=bearer).status_code == 401
                assert c.get("/", headers=bearer).status_code == 303  # pages: to the login form
            # the tokens page
            tid, bearer = new_token("mei")
            sign_in(client, "mei", password)
            form = client.get("/settings/tokens").text
            revoked = client.post(
                f"/settings/tokens/{tid}/revoke", data={"csrf_token": csrf_of(form)}
            )
            assert revoked.status_code == 303
            assert elsewhere.get("/api/v1/me", headers=bearer).status_code == 401
            # an admin disables the user: every token of theirs fails at once
            _, bo = new_token("bo")
            assert elsewhere.get("/api/v1/me", headers=bo).status_code == 200
            _, admin = new_token("mei")
            changed = client.patch("/api/v1/users/bo", json={"disabled": True}, headers=admin)
            assert changed.status_code == 200
            refused = elsewhere.get("/api/v1/me", headers=bo)
            assert refused.status_code == 401
            assert refused.json()["detail"] == AUTH_LINES[2]
            # a made-up token, a wrong scheme: nobody
            client.cookies.clear()
            for header in ("Bearer trk_" + "x" * 43, "Bearer ", "Token " + "x" * 10):
                refused = client.get("/api/v1/me", headers={"authorization": header})
                assert refused.status_code == 401, header
    finally:
        second.state.store.engine.dispose()


# --- throttling ----------------------------------------------------------------------------------


def _failures(client: TestClient, name: str, n: int, clock: Any = None) -> None:
    for _ in range(n):
        if clock is not None:
            clock.tick(timedelta(seconds=1))
        assert sign_in(client, name, "not the password").status_code == 401


def test_authorisation_sign_in_throttling_by_name(app: FastAPI, client: TestClient) -> None:
    """THROTTLE['name']: 5 failures within 15 minutes since the last success lock the name for
    15 minutes after the last, whatever the password, on the form, the API and the password
    page; a success before the fifth starts the count again; failures spread wider than the
    window never lock."""
    rule = THROTTLE["name"]
    password = add_user(app, "mei")
    with freeze_time("2030-01-01 12:00:00") as clock:
        _failures(client, "mei", rule.failures - 1, clock)
        assert sign_in(client, "mei", password).status_code == 303  # the count starts again
        _failures(client, "mei", rule.failures - 1, clock)
        assert sign_in(client, "mei", password).status_code == 303
        _failures(client, "mei", rule.failures, clock)
        refused = sign_in(client, "mei", password)
        assert refused.status_code == 429 and "too many failed sign-ins" in refused.text
        assert 0 < int(refused.headers["retry-after"]) <= rule.lock.total_seconds() + 1
        api = client.post("/api/v1/tokens", json={"name": "mei", "password": password})
        assert api.status_code == 429 and api.headers["content-type"] == "application/problem+json"
        token = csrf_of(client.get("/settings/tokens").text)  # still signed in from before
        change = client.post("/settings/password",
                             data={"csrf_token": token, "current": password, "new": "x" * 12})  # fmt: skip
        assert change.status_code == 429
        clock.tick(rule.lock - timedelta(seconds=2))
        assert sign_in(client, "mei", password).status_code == 429  # not yet
        clock.tick(timedelta(seconds=3))
        assert sign_in(client, "mei", password).status_code == 303
    with freeze_time("2030-01-02 12:00:00") as clock:  # spread wider than the window
        for _ in range(rule.failures + 1):
            _failures(client, "mei", 1, clock)
            clock.tick(rule.window / (rule.failures - 1) + timedelta(seconds=30))
        assert sign_in(client, "mei", password).status_code == 303


def test_authorisation_sign_in_throttling_by_address(app: FastAPI) -> None:
    """THROTTLE['address']: 20 failures from one address within 15 minutes lock that address
    (whatever the name) and no other."""
    rule = THROTTLE["address"]
    password = add_user(app, "mei")
    here, there = ("10.1.1.1", 50000), ("10.2.2.2", 50000)
    at = datetime(2030, 1, 1, 12, 0)
    with app.state.store.write() as s:  # the earlier failures, as earlier sign-ins recorded them
        for i in range(rule.failures - 1):
            s.execute(
                text("INSERT INTO login_attempt (name, address, at, ok) VALUES (:n, :a, :at, :ok)"),
                {"n": f"guess{i}", "a": here[0], "at": at + timedelta(seconds=i), "ok": False},
            )
    with freeze_time(at + timedelta(minutes=1)):
        with TestClient(app, client=here, follow_redirects=False) as near:
            _failures(near, "someone", 1)  # the 20th
            refused = sign_in(near, "mei", password)
            assert refused.status_code == 429
        with TestClient(app, client=there, follow_redirects=False) as far:
            assert sign_in(far, "mei", password).status_code == 303


# --- security headers ----------------------------------------------------------------------------


def _header_problems(response: httpx.Response, *, https: bool) -> str | None:
    h = response.headers
    expected = {
        "content-security-policy": DECLARED_CSP,
        "x-content-type-options": "nosniff",
        "x-frame-options": "DENY",
        "referrer-policy": "same-origin",
    }
    wrong = {k: h.get(k) for k, v in expected.items() if h.get(k) != v}
    if wrong:
        return f"security headers wrong: {wrong}"
    hsts = h.get("strict-transport-security")
    if https and not (hsts or "").startswith("max-age=31536000"):
        return f"no HSTS over https ({hsts})"
    if not https and hsts is not None:
        return "HSTS over plain http"
    return None


def _every_kind(client: TestClient, bearer: dict[str, str]) -> Iterator[tuple[str, httpx.Response]]:
    """One response of every kind: a page, the API, static files, errors, redirects."""
    yield "page", client.get("/login")
    yield "api", client.get("/api/v1/me", headers=bearer)
    yield "openapi", client.get("/api/v1/openapi.json")
    yield "css", client.get("/static/tracker.css")
    yield "report css", client.get("/static/report.css")
    yield "api 401", client.get("/api/v1/me")
    yield "api 404", client.get("/api/v1/forecasts/999999", headers=bearer)
    yield "api 422", client.get("/api/v1/forecasts", params={"limit": 0}, headers=bearer)
    yield "api 405", client.put("/api/v1/me", headers=bearer)
    yield "page 404", client.get("/no/such/page")
    yield "page redirect", client.get("/record")
    yield "page 403", client.get("/forecasts/new", headers=bearer)
    yield "login no csrf", client.post("/login", data={"name": "x", "password": "y"})


def test_authorisation_security_headers_on_every_kind_of_response(
    app: FastAPI, client: TestClient, db_url: str
) -> None:
    """The declared CSP (word for word), nosniff, DENY, same-origin on every response; HSTS only
    over https (the request's scheme, or an https ``server.base_url``)."""
    add_user(app, "vi", "viewer")
    with app.state.store.write() as s:
        bearer = {"authorization": "Bearer " + accounts.create_token(s, "vi", "h", by="vi")[1]}
    statuses = {}
    for kind, response in _every_kind(client, bearer):
        assert _header_problems(response, https=False) is None, (kind, response.headers)
        statuses[kind] = response.status_code
    assert statuses == {
        "page": 200, "api": 200, "openapi": 200, "css": 200, "report css": 200, "api 401": 401,
        "api 404": 404, "api 422": 422, "api 405": 405, "page 404": 404, "page redirect": 303,
        "page 403": 403, "login no csrf": 403,
    }  # fmt: skip
    with TestClient(app, base_url="https://testserver", follow_redirects=False) as secure:
        for kind, response in _every_kind(secure, bearer):
            assert _header_problems(response, https=True) is None, (kind, response.headers)
    behind = create_app(db_url, Settings(base_url="https://forecasts.example.org"))
    try:
        with TestClient(behind, follow_redirects=False) as proxied:  # http to us, https outside
            for kind, response in _every_kind(proxied, bearer):
                assert _header_problems(response, https=True) is None, (kind, response.headers)
    finally:
        behind.state.store.engine.dispose()
