"""The FastAPI app: :func:`create_app` builds it from the route table over one database.

    app = create_app("sqlite:////srv/tracker.db", Settings(base_url="https://forecasts.example.org"))

``tracker serve`` runs it under uvicorn (with several workers, each builds its app with
``tracker.serve_commands.app_from_config``, from the same configuration).

Errors have one home (:func:`_tracker_error`): a :class:`~predictions.errors.TrackerError` (and
FastAPI's own validation errors, and Starlette's 404/405) becomes, under ``/api/``, an
``application/problem+json`` body ``{"type", "title", "status", "detail"}`` whose ``detail`` is
the CLI's one-line message, and an HTML error page elsewhere. Statuses
(:data:`predictions.errors.HTTP_STATUS`, which the CLI's client reads back): bad input 422 (as
FastAPI's own validation errors), not found 404, a state that forbids the action 409, not signed
in 401 (a page redirects to ``/login``), not allowed 403, throttled 429, the database or the world
failing 503.

Every response carries the security headers (:data:`SECURITY_HEADERS`; HSTS when HTTPS).
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from http import HTTPStatus
from typing import TYPE_CHECKING
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from predictions.db import ensure_schema, make_engine, read_session, write_session
from predictions.errors import (
    HTTP_STATUS,
    InputError,
    ThrottledError,
    TrackerError,
)
from service.render import TEMPLATES, render
from service.routes import install, route

if TYPE_CHECKING:
    from resolvers.sweep import SweepSettings

__all__ = [
    "CSP",
    "ROUTE_MODULES",
    "SECURITY_HEADERS",
    "SecurityHeaders",
    "Settings",
    "Store",
    "create_app",
    "is_api",
    "problem",
    "validation_message",
]

log = logging.getLogger("tracker.service")

#: The modules that declare routes (:func:`service.routes.route`), imported by :func:`create_app`.
ROUTE_MODULES = [
    "service.account_routes",
    "service.forecast_api",
    "service.check_api",
    "service.data_api",
    "service.pages",
    "service.record_pages",
]

CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS = {
    "content-security-policy": CSP,
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
    "x-frame-options": "DENY",
    "cross-origin-opener-policy": "same-origin",
}
_HSTS = "max-age=31536000; includeSubDomains"


@dataclass(frozen=True)
class Settings:
    """What the service needs beyond the routes: the database URL, its public base URL
    (``server.base_url``: emails link there; https makes cookies Secure) and the resolver
    runner's settings for a check run through the API (``tracker check``'s, from the
    ``resolvers.*`` keys; None: the runner's defaults)."""

    db_url: str = ""
    base_url: str | None = None
    sweep: SweepSettings | None = None


class Store:
    """The database as the routes hold it: ``with request.app.state.store.write() as s:``."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A read-only session (:func:`predictions.db.read_session`)."""
        with read_session(self.engine) as session:
            yield session

    @contextmanager
    def write(self) -> Iterator[Session]:
        """A session in one writing transaction, committed at the end of the block."""
        with write_session(self.engine) as session:
            yield session


def create_app(db_url: str | None = None, config: Settings | None = None) -> FastAPI:
    """The app over ``db_url`` (else ``config.db_url``); a SQLite file is created and migrated
    here, as the CLI does; PostgreSQL must be at the current schema. ``tracker serve`` builds
    ``config`` from the configuration (:mod:`tracker.serve_commands`)."""
    settings = config or Settings()
    if db_url:
        settings = replace(settings, db_url=db_url)
    if not settings.db_url:
        raise InputError("database URL", None, "--db, TRACKER_DB or database.url")
    engine = make_engine(settings.db_url)
    ensure_schema(engine)
    app = FastAPI(
        title="Forecast tracker",
        version=_version(),
        openapi_url=None,  # served by a declared route (below), like every other
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.store = Store(engine)
    for module in ROUTE_MODULES:
        importlib.import_module(module)
    install(app)
    app.add_exception_handler(TrackerError, _tracker_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(Exception, _internal_error)
    app.add_middleware(SecurityHeaders, https=(settings.base_url or "").startswith("https://"))
    return app


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("forecast-tracker")
    except PackageNotFoundError:
        return "0"


# --- routes every app has ------------------------------------------------------------------------


@route("GET", "/api/v1/openapi.json", role=None, include_in_schema=False)
def openapi(request: Request) -> JSONResponse:
    """The OpenAPI document, generated from the declared routes."""
    return JSONResponse(request.app.openapi())


@route("GET", "/static/tracker.css", role=None, include_in_schema=False)
def stylesheet() -> Response:
    """The one stylesheet."""
    css = (TEMPLATES.parent / "static" / "tracker.css").read_bytes()
    return Response(css, media_type="text/css", headers={"cache-control": "public, max-age=3600"})


# --- errors ------------------------------------------------------------------------------------


def is_api(request: Request) -> bool:
    """Whether the request is for the API (JSON errors) rather than a page."""
    return request.url.path.startswith("/api/")


def problem(status: int, detail: str, headers: dict[str, str] | None = None) -> JSONResponse:
    """An ``application/problem+json`` response (RFC 9457)."""
    body = {"type": "about:blank", "title": HTTPStatus(status).phrase, "status": status}
    body["detail"] = detail
    return JSONResponse(
        body, status_code=status, media_type="application/problem+json", headers=headers
    )


def _error(
    request: Request, status: int, detail: str, headers: dict[str, str] | None = None
) -> Response:
    if is_api(request):
        if status == 401:
            headers = {"www-authenticate": "Bearer", **(headers or {})}
        return problem(status, detail, headers)
    if status == 401 and request.method == "GET":
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)
    title = HTTPStatus(status).phrase
    response = render(request, "error.html", status_code=status, title=title, detail=detail)
    response.headers.update(headers or {})
    return response


async def _tracker_error(request: Request, exc: Exception) -> Response:
    status = next((code for cls, code in HTTP_STATUS if isinstance(exc, cls)), 500)
    headers = {"retry-after": str(exc.retry_after)} if isinstance(exc, ThrottledError) else None
    if status >= 500:
        log.error("%s %s: %s", request.method, request.url.path, exc)
    return _error(
        request, status, str(exc).splitlines()[0] if str(exc) else type(exc).__name__, headers
    )


def validation_message(exc: RequestValidationError) -> str:
    """FastAPI's first validation error as one line: ``name: field required``."""
    errors = exc.errors()
    if not errors:
        return "bad request"
    first = errors[0]
    where = ".".join(str(p) for p in first.get("loc", ()) if p not in ("body", "query", "path"))
    message = str(first.get("msg", "invalid")).removeprefix("Value error, ")
    return f"{where or 'request'}: {message[:1].lower()}{message[1:]}"


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    return _error(request, 422, validation_message(exc))


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    detail = exc.detail if isinstance(exc.detail, str) else HTTPStatus(exc.status_code).phrase
    if exc.status_code == 404 and detail == "Not Found":
        detail = f"no such page: {request.url.path}"
    return _error(request, exc.status_code, detail, dict(exc.headers or {}))


async def _internal_error(request: Request, exc: Exception) -> Response:
    log.exception("%s %s failed", request.method, request.url.path, exc_info=exc)
    return _error(request, 500, f"internal error: {type(exc).__name__}")


class SecurityHeaders:
    """ASGI middleware: :data:`SECURITY_HEADERS` on every response, HSTS over HTTPS, and
    ``Cache-Control: no-store`` unless the route said otherwise (pages carry CSRF tokens)."""

    def __init__(self, app: ASGIApp, https: bool = False) -> None:
        self.app = app
        self.https = https

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        https = self.https or scope.get("scheme") == "https"

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    headers[name] = value
                if https:
                    headers["strict-transport-security"] = _HSTS
                if "cache-control" not in headers:
                    headers["cache-control"] = "no-store"
            await send(message)

        await self.app(scope, receive, send_with_headers)
