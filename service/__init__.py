"""The service: a web app and HTTP API over the same library calls as the CLI (``tracker serve``).

``service -> {reports, resolvers, predictions}``; ``tracker`` imports it only inside ``tracker
serve``, so the CLI's everyday commands never load FastAPI.

- :mod:`service.app`: :func:`~service.app.create_app`, the FastAPI factory; errors as
  ``application/problem+json`` (API) or an HTML page; security headers on every response.
- :mod:`service.routes`: the route table; every route is declared there with the role it needs
  and whether the user must own the forecast.
- :mod:`service.auth`: who is asking (session cookie or Bearer token), CSRF, sign-in cookies.
- :mod:`service.render`: the jinja2 pages (``service/templates``).
- :mod:`service.account_routes`: sign-in and out, tokens, ``/api/v1/me``, the users (admin).
"""

from __future__ import annotations

__all__: list[str] = []
