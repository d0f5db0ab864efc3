"""The route table: every route of the service, with the role it needs and whether it is owned.

A route exists only by being declared here, through :func:`route`::

    @route("POST", "/api/v1/forecasts/{forecast_id}/resolution", role="member", owner=True)
    def resolve(forecast_id: int, body: Resolution, user: CurrentUser, db: Db) -> dict: ...

Before the endpoint runs, its guard (:func:`_guard`) checks, in order: who is asking
(:func:`service.auth.principal`; none for ``role=None``, a public route), the CSRF token of an
unsafe request signed in by cookie, the role (:data:`predictions.accounts.ROLES`: viewer <
member < admin), and with ``owner=True`` that the user owns what the path names (the path
parameter, one of :data:`predictions.accounts.OWNED`: ``forecast_id``, ``check_id``,
``proposal_id``, ``token_id``) unless they are an admin.

:func:`install` adds every declared route to an app and then refuses to start if the app holds
any route the table does not (:func:`unlisted`), so a route cannot bypass the table. The
authorisation tests walk :func:`table`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from fastapi import Depends, FastAPI, Request
from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool

from predictions import accounts
from predictions.accounts import OWNED, ROLES, allows, check_owner
from predictions.errors import AuthError, ForbiddenError
from service import auth

__all__ = ["METHODS", "Rule", "install", "route", "rules", "table", "unlisted"]

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")

_F = TypeVar("_F", bound=Callable[..., Any])


@dataclass(frozen=True)
class Rule:
    """One row of the table: ``role`` None is a public route."""

    method: str
    path: str
    role: str | None
    owner: bool
    endpoint: Callable[..., Any] = field(compare=False, repr=False)
    options: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def api(self) -> bool:
        """An API route (JSON, problem+json errors) rather than a page."""
        return self.path.startswith("/api/")

    @property
    def owned(self) -> str | None:
        """The path parameter naming what must be owned (``owner=True``), else None."""
        return next((p for p in OWNED if "{" + p + "}" in self.path), None) if self.owner else None


_TABLE: dict[tuple[str, str], Rule] = {}


def route(
    method: str, path: str, *, role: str | None = "viewer", owner: bool = False, **options: Any
) -> Callable[[_F], _F]:
    """Declare a route: ``method`` and ``path``, the least ``role`` it needs (None: public) and
    whether the user must own what its path names (``owner``). ``options`` go to FastAPI's
    ``add_api_route`` (``status_code``, ``response_class``, ``summary``...)."""
    if method not in METHODS:
        raise ValueError(f"route {path}: method {method!r} is not one of {METHODS}")
    if role is not None and role not in ROLES:
        raise ValueError(f"route {method} {path}: role {role!r} is not one of {ROLES}")
    if owner and (role is None or not any("{" + p + "}" in path for p in OWNED)):
        raise ValueError(
            f"route {method} {path}: owner=True needs a role and one of the path parameters "
            + ", ".join(OWNED)
        )

    def declare(endpoint: _F) -> _F:
        key = (method, path)
        if key in _TABLE and _TABLE[key].endpoint is not endpoint:
            raise ValueError(f"route {method} {path} is declared twice")
        _TABLE[key] = Rule(method, path, role, owner, endpoint, options)
        return endpoint

    return declare


def rules() -> list[Rule]:
    """Every declared route, by path then method."""
    return sorted(_TABLE.values(), key=lambda r: (r.path, r.method))


def table() -> list[tuple[str, str, str | None, bool]]:
    """The table as ``(method, path, role, owner)`` rows, by path then method."""
    return [(r.method, r.path, r.role, r.owner) for r in rules()]


def _guard(rule: Rule) -> Callable[[Request], Any]:
    async def guard(request: Request) -> None:
        if rule.role is None:  # public: an endpoint that cares asks auth.principal itself
            return
        who = await auth.principal(request)
        if who is None:
            raise AuthError(getattr(request.state, "auth_problem", None) or "sign in first")
        await auth.check_csrf(request, who)
        if not allows(who.user.role, rule.role):
            raise ForbiddenError(
                f"this needs the {rule.role} role; {who.user.name} is a {who.user.role}"
            )
        parameter = rule.owned
        if parameter is not None:
            value = request.path_params[parameter]
            owner = await run_in_threadpool(_owner, request, parameter, value)
            check_owner(who.user, owner, OWNED[parameter][0])

    guard.__name__ = f"guard_{rule.method}_{rule.path}"
    return guard


def _owner(request: Request, parameter: str, value: object) -> str:
    with request.app.state.store.read() as session:
        return accounts.owner_of(session, parameter, value)


def install(app: FastAPI) -> None:
    """Add every declared route to ``app``; refuse an app holding a route outside the table."""
    for rule in rules():
        options = {"include_in_schema": rule.api, **rule.options}
        app.add_api_route(
            rule.path,
            rule.endpoint,
            methods=[rule.method],
            dependencies=[Depends(_guard(rule))],
            **options,
        )
    stray = unlisted(app)
    if stray:
        raise RuntimeError(f"routes outside the route table: {stray}")


def unlisted(app: FastAPI) -> list[str]:
    """The app's routes that the table does not declare (``METHOD path``): should be none."""
    stray = []
    for r in app.routes:
        methods = sorted(getattr(r, "methods", None) or ["*"])
        path = getattr(r, "path", repr(r))
        for method in methods:
            rule = _TABLE.get((method, path))
            if rule is None or not isinstance(r, APIRoute) or r.endpoint is not rule.endpoint:
                stray.append(f"{method} {path}")
    return stray
