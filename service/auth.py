"""Who is asking: a session cookie or a Bearer token; CSRF; the cookies of signing in and out.

- A browser signs in at ``/login`` and gets the ``tracker_session`` cookie (HttpOnly,
  SameSite=Lax, Secure when the request came over HTTPS, as uvicorn sees it behind a trusted
  proxy's ``X-Forwarded-Proto``, or ``server.base_url`` is https). Each sign-in starts a new
  session (the old cookie's session ends: no fixation).
- Every unsafe request (POST, PUT, PATCH, DELETE) signed in by that cookie must carry the
  session's CSRF token: the form field ``csrf_token`` or the ``X-CSRF-Token`` header. The login
  form, before any session, is protected by a double-submit cookie (``tracker_login_csrf``).
- Scripts and the CLI send ``Authorization: Bearer <token>``; the token is looked up on every
  request, so a revoked one fails at once. A request with a token needs no CSRF token.

Sessions and tokens live in the database (:mod:`predictions.accounts`): nothing here is kept in
process memory, so any number of server processes share them.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request, Response
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from predictions import accounts
from predictions.accounts import SESSION_LIFETIME, SessionRow, TokenRow, UserRow
from predictions.errors import AuthError, ForbiddenError

__all__ = [
    "LOGIN_CSRF_COOKIE",
    "SESSION_COOKIE",
    "UNSAFE",
    "CurrentUser",
    "Principal",
    "check_csrf",
    "check_login_csrf",
    "client_address",
    "current_user",
    "end_cookie",
    "is_https",
    "login_csrf",
    "principal",
    "safe_next",
    "set_login_csrf",
    "set_session_cookie",
]

SESSION_COOKIE = "tracker_session"
LOGIN_CSRF_COOKIE = "tracker_login_csrf"
UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_CSRF_MESSAGE = "the form's CSRF token is missing or wrong; reload the page and try again"
_FORMS = ("application/x-www-form-urlencoded", "multipart/form-data")


@dataclass(frozen=True)
class Principal:
    """The signed-in user, and their session when signed in by cookie (None for a token)."""

    user: UserRow
    session: SessionRow | None

    @property
    def csrf_token(self) -> str | None:
        return None if self.session is None else self.session.csrf_token


async def principal(request: Request) -> Principal | None:
    """Who is asking, or None; looked up once per request. A Bearer header wins over a cookie;
    one that names no active user leaves None and says why in ``request.state.auth_problem``."""
    if hasattr(request.state, "principal"):
        return request.state.principal
    found = await run_in_threadpool(_lookup, request)
    request.state.principal = found
    return found


def _lookup(request: Request) -> Principal | None:
    scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
    cookie = request.cookies.get(SESSION_COOKIE)
    find: Callable[[Session, str], tuple[UserRow, TokenRow | SessionRow] | None]
    if scheme.lower() == "bearer":
        find, secret = accounts.token_user, credentials.strip()
        problem = "the API token is unknown, revoked or its user disabled"
    elif cookie:
        find, secret = accounts.session_user, cookie
        problem = "your session has ended; sign in again"
    else:
        return None
    store = request.app.state.store
    with store.read() as session:
        found = find(session, secret)
    if found is None:
        request.state.auth_problem = problem
        return None
    user, row = found
    if accounts.stale(row):
        with store.write() as session:
            accounts.note_use(session, row)
    return Principal(user, row if isinstance(row, SessionRow) else None)


async def current_user(request: Request) -> UserRow:
    """The signed-in user of a route that needs one (its guard has checked already). Async,
    though it waits for nothing: FastAPI runs a plain function in a thread, a hop per request."""
    who = getattr(request.state, "principal", None)
    if who is None:
        raise AuthError("sign in first")
    return who.user


#: An endpoint's parameter for the signed-in user: ``def me(user: CurrentUser)``.
CurrentUser = Annotated[UserRow, Depends(current_user)]


async def check_csrf(request: Request, who: Principal) -> None:
    """:class:`ForbiddenError` for an unsafe request signed in by cookie without the session's
    CSRF token (form field ``csrf_token`` or header ``X-CSRF-Token``)."""
    if who.session is None or request.method not in UNSAFE:
        return
    sent = request.headers.get("x-csrf-token") or await _form_token(request)
    if not sent or not hmac.compare_digest(sent, who.session.csrf_token):
        raise ForbiddenError(
            "the form's CSRF token is missing or wrong; reload the page and try again"
        )


async def _form_token(request: Request) -> str | None:
    if not request.headers.get("content-type", "").startswith(_FORMS):
        return None
    value = (await request.form()).get("csrf_token")  # Starlette keeps the parsed form
    return value if isinstance(value, str) else None


def is_https(request: Request) -> bool:
    """Whether the browser talks HTTPS to us: the request's scheme (uvicorn applies a trusted
    proxy's ``X-Forwarded-Proto``), or ``server.base_url`` is https."""
    base = request.app.state.settings.base_url or ""
    return request.url.scheme == "https" or base.startswith("https://")


def client_address(request: Request) -> str:
    """The client's address (the proxy's ``X-Forwarded-For`` when uvicorn trusts it)."""
    return request.client.host if request.client else "unknown"


def _cookie(request: Request, response: Response, name: str, value: str, max_age: int) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path="/",
        httponly=True,
        samesite="lax",
        secure=is_https(request),
    )


def set_session_cookie(request: Request, response: Response, cookie: str) -> None:
    """Hand the browser its new session cookie (and drop the login form's CSRF cookie)."""
    _cookie(request, response, SESSION_COOKIE, cookie, int(SESSION_LIFETIME.total_seconds()))
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/")


def end_cookie(request: Request, response: Response) -> None:
    """Tell the browser to forget its session cookie."""
    response.delete_cookie(
        SESSION_COOKIE, path="/", httponly=True, samesite="lax", secure=is_https(request)
    )


def safe_next(value: object, default: str = "/") -> str:
    """Where to go after signing in: a path on this site, never elsewhere (``//evil.example``,
    ``https://...``, ``/\\evil`` and control characters give ``default``)."""
    text = value if isinstance(value, str) else ""
    if (
        not text.startswith("/")
        or text.startswith("//")
        or "\\" in text
        or any(ord(c) < 32 or ord(c) == 127 for c in text)
        or len(text) > 2000
    ):
        return default
    return text


def login_csrf(request: Request) -> str:
    """The login form's CSRF token (a double-submit cookie: there is no session yet): the
    browser's, else a new one; :func:`set_login_csrf` sets its cookie on the form's response."""
    return request.cookies.get(LOGIN_CSRF_COOKIE) or secrets.token_urlsafe(32)


def set_login_csrf(request: Request, response: Response, token: str) -> None:
    """Set (or renew) the login form's CSRF cookie."""
    _cookie(request, response, LOGIN_CSRF_COOKIE, token, 3600)


def check_login_csrf(request: Request, sent: object) -> None:
    """:class:`ForbiddenError` unless the login form's ``csrf_token`` equals its cookie."""
    cookie = request.cookies.get(LOGIN_CSRF_COOKIE)
    if not cookie or not isinstance(sent, str) or not hmac.compare_digest(cookie, sent):
        raise ForbiddenError(_CSRF_MESSAGE)
