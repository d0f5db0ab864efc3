"""Pages: jinja2 templates in ``service/templates``, autoescaped, extending ``base.html``.

    return render(request, "tokens.html", tokens=rows)          # 200, text/html

Every template gets ``user`` (the signed-in :class:`~predictions.accounts.UserRow` or None),
``csrf_token`` (put it in every form: ``<input type="hidden" name="csrf_token"
value="{{ csrf_token }}">``) and ``request``.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import jinja2
from fastapi import Request
from fastapi.responses import HTMLResponse

__all__ = ["TEMPLATES", "environment", "render"]

TEMPLATES = Path(__file__).resolve().parent / "templates"


@cache
def environment() -> jinja2.Environment:
    """The pages' jinja2 environment (autoescaping on, undefined names are errors)."""
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render(
    request: Request, template: str, *, status_code: int = 200, **context: Any
) -> HTMLResponse:
    """The page ``template`` rendered with ``context`` (and ``user``, ``csrf_token``, ``request``)."""
    who = getattr(request.state, "principal", None)
    context.setdefault("user", who.user if who is not None else None)
    context.setdefault("csrf_token", who.csrf_token if who is not None else None)
    context.setdefault("request", request)
    html = environment().get_template(template).render(**context)
    return HTMLResponse(html, status_code=status_code)
