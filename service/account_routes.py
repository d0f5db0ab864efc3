"""Accounts over HTTP: signing in and out, API tokens, ``/api/v1/me`` and the users (admin).

Pages: ``/login`` (GET, POST), ``/logout``, ``/logout-everywhere``, ``/settings/tokens``.
API: ``POST /api/v1/tokens`` (name and password give a new token: what ``tracker login``
calls), ``GET /api/v1/tokens``, ``DELETE /api/v1/tokens/{token_id}``, ``GET /api/v1/me``,
``GET/POST /api/v1/users``, ``PATCH /api/v1/users/{name}`` (admin).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Form, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import BaseModel, Field

from predictions import accounts
from predictions.accounts import UserRow, token_record, user_record
from predictions.errors import AuthError, InputError, ThrottledError
from service import auth
from service.api import Limit, Offset, page
from service.auth import CurrentUser
from service.render import render
from service.routes import route

__all__ = ["NewToken", "NewUser", "UserChange"]


# --- signing in and out (pages) ----------------------------------------------------------------


@route("GET", "/login", role=None)
async def login_page(request: Request, next: str = "/") -> Response:
    """The sign-in form (signed in already, it signs in anew, perhaps as someone else)."""
    await auth.principal(request)  # the page's header shows who is signed in
    return _login_form(request, auth.safe_next(next))


def _login_form(
    request: Request, target: str, *, name: str = "", error: str | None = None, status: int = 200
) -> Response:
    token = auth.login_csrf(request)
    response = render(
        request,
        "login.html",
        status_code=status,
        login_csrf=token,
        next=target,
        name=name,
        error=error,
    )
    auth.set_login_csrf(request, response, token)
    return response


@route("POST", "/login", role=None)
def login(
    request: Request,
    name: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
    csrf_token: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "/",
) -> Response:
    """Sign in: a new session (any session of this browser ends), then on to ``next``."""
    auth.check_login_csrf(request, csrf_token)
    target = auth.safe_next(next)
    try:
        cookie = _new_session(request, _authenticate(request, name, password))
    except ThrottledError as exc:
        response = _login_form(request, target, name=name, error=str(exc), status=429)
        response.headers["retry-after"] = str(exc.retry_after)
        return response
    except AuthError as exc:
        return _login_form(request, target, name=name, error=str(exc), status=401)
    response = RedirectResponse(target, status_code=303)
    auth.set_session_cookie(request, response, cookie)
    return response


def _authenticate(request: Request, name: str, password: str) -> UserRow:
    """The user ``name`` and ``password`` sign in. The password is checked in a read
    transaction (argon2 takes a while: no write lock is held meanwhile), then the attempt is
    recorded and committed either way (:func:`predictions.accounts.record_sign_in`)."""
    store = request.app.state.store
    with store.read() as session:
        attempt = accounts.check_sign_in(
            session, name, password, address=auth.client_address(request)
        )
    failure: AuthError | None = None
    with store.write() as session:
        try:
            return accounts.record_sign_in(session, attempt)
        except AuthError as exc:
            failure = exc
    raise failure


def _new_session(request: Request, user: UserRow) -> str:
    """A new session for ``user`` (this browser's old one ends: no fixation); its cookie."""
    with request.app.state.store.write() as session:
        old = request.cookies.get(auth.SESSION_COOKIE)
        if old:
            accounts.end_session(session, old)
        cookie, _ = accounts.start_session(session, user)
    return cookie


@route("POST", "/logout")
def logout(request: Request, user: CurrentUser) -> Response:
    """Sign this browser out."""
    cookie = request.cookies.get(auth.SESSION_COOKIE)
    if cookie:
        with request.app.state.store.write() as session:
            accounts.end_session(session, cookie)
    response = RedirectResponse("/login", status_code=303)
    auth.end_cookie(request, response)
    return response


@route("POST", "/logout-everywhere")
def logout_everywhere(request: Request, user: CurrentUser) -> Response:
    """Sign out every browser of the user (this one too); their API tokens stay."""
    with request.app.state.store.write() as session:
        accounts.end_sessions(session, user.id)
    response = RedirectResponse("/login", status_code=303)
    auth.end_cookie(request, response)
    return response


@route("GET", "/settings/password")
def password_page(request: Request, user: CurrentUser) -> Response:
    """The form to change one's password."""
    return render(request, "password.html", error=None, changed=False)


@route("POST", "/settings/password")
def change_password(
    request: Request,
    user: CurrentUser,
    current: Annotated[str, Form()] = "",
    new: Annotated[str, Form()] = "",
) -> Response:
    """Change one's password (the current one is checked, throttled as a sign-in): every other
    session ends, this browser gets a new one."""
    try:
        _authenticate(request, user.name, current)
        with request.app.state.store.write() as session:
            accounts.set_password(session, user.name, new, by=user.name)  # ends every session
            cookie, web = accounts.start_session(session, user)
    except (AuthError, InputError) as exc:
        status = 429 if isinstance(exc, ThrottledError) else 422
        if type(exc) is AuthError:
            status, exc = 403, AuthError("the current password is wrong")
        return render(request, "password.html", status_code=status, error=str(exc), changed=False)
    request.state.principal = auth.Principal(user, web)
    response = render(request, "password.html", error=None, changed=True)
    auth.set_session_cookie(request, response, cookie)
    return response


# --- API tokens (page) ---------------------------------------------------------------------------


@route("GET", "/settings/tokens")
def tokens_page(request: Request, user: CurrentUser) -> Response:
    """The user's API tokens: create (shown once), list, revoke."""
    with request.app.state.store.read() as session:
        tokens = accounts.list_tokens(session, user.name)
    return render(request, "tokens.html", tokens=tokens, created=None, secret=None, error=None)


@route("POST", "/settings/tokens")
def create_token_page(
    request: Request, user: CurrentUser, name: Annotated[str, Form()] = ""
) -> Response:
    """Create a token and show its secret, once."""
    with request.app.state.store.write() as session:
        token, secret = accounts.create_token(session, user.name, name, by=user.name)
        tokens = accounts.list_tokens(session, user.name)
    return render(request, "tokens.html", tokens=tokens, created=token, secret=secret, error=None)


@route("POST", "/settings/tokens/{token_id}/revoke", owner=True)
def revoke_token_page(request: Request, user: CurrentUser, token_id: int) -> Response:
    """Revoke a token (it fails from the next request on)."""
    with request.app.state.store.write() as session:
        accounts.revoke_token(session, token_id, by=user.name)
    return RedirectResponse("/settings/tokens", status_code=303)


# --- API -----------------------------------------------------------------------------------------


class NewToken(BaseModel):
    """``POST /api/v1/tokens``: a user's name and password, and what to call the token."""

    name: str
    password: str
    label: str = Field(default="cli", description="the token's name in lists")


@route("POST", "/api/v1/tokens", role=None, status_code=201)
def create_token(request: Request, body: NewToken) -> dict[str, Any]:
    """A new API token for the user the name and password sign in (throttled as the login
    form is). The secret is in ``token``, shown this once."""
    user = _authenticate(request, body.name, body.password)
    with request.app.state.store.write() as session:
        token, secret = accounts.create_token(session, user.name, body.label, by=user.name)
    return {**token_record(token), "token": secret}


@route("GET", "/api/v1/tokens")
def list_tokens(
    request: Request, user: CurrentUser, limit: Limit = 100, offset: Offset = 0
) -> dict[str, Any]:
    """The user's tokens, newest first (revoked ones too)."""
    with request.app.state.store.read() as session:
        tokens = accounts.list_tokens(session, user.name)
    return page([token_record(t) for t in tokens], limit, offset)


@route("DELETE", "/api/v1/tokens/{token_id}", owner=True)
def revoke_token(request: Request, user: CurrentUser, token_id: int) -> dict[str, Any]:
    """Revoke a token of the user's (an admin: anyone's)."""
    with request.app.state.store.write() as session:
        return token_record(accounts.revoke_token(session, token_id, by=user.name))


@route("GET", "/api/v1/me")
def me(user: CurrentUser) -> dict[str, Any]:
    """The signed-in user."""
    return user_record(user)


class NewUser(BaseModel):
    """``POST /api/v1/users``: a new user (their generated password comes back, once)."""

    name: str
    email: str | None = None
    role: str = "member"


class UserChange(BaseModel):
    """``PATCH /api/v1/users/{name}``: what to change (fields left out stay)."""

    role: str | None = None
    email: str | None = None
    disabled: bool | None = None


@route("GET", "/api/v1/users", role="admin")
def list_users(request: Request, limit: Limit = 100, offset: Offset = 0) -> dict[str, Any]:
    """Every user, by name."""
    with request.app.state.store.read() as session:
        users = accounts.list_users(session)
    return page([user_record(u) for u in users], limit, offset)


@route("POST", "/api/v1/users", role="admin", status_code=201)
def add_user(request: Request, user: CurrentUser, body: NewUser) -> dict[str, Any]:
    """Add a user; ``password`` is their generated password, shown this once."""
    with request.app.state.store.write() as session:
        added, password = accounts.add_user(
            session, body.name, email=body.email, role=body.role, by=user.name
        )
    return {**user_record(added), "password": password}


@route("PATCH", "/api/v1/users/{name}", role="admin")
def change_user(request: Request, user: CurrentUser, name: str, body: UserChange) -> dict[str, Any]:
    """Change a user's role or email, disable them (their sessions and tokens end at once) or
    enable them again."""
    with request.app.state.store.write() as session:
        changed = accounts.get_user(session, name)
        if body.role is not None:
            changed = accounts.set_role(session, name, body.role, by=user.name)
        if "email" in body.model_fields_set:
            changed = accounts.set_email(session, name, body.email, by=user.name)
        if body.disabled is True and changed.active:
            changed = accounts.disable_user(session, name, by=user.name)
        elif body.disabled is False and not changed.active:
            changed = accounts.enable_user(session, name, by=user.name)
    return user_record(changed)
