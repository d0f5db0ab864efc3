"""What the API's endpoints share: pagination (``?limit=&offset=``) and the list envelope.

@route("GET", "/api/v1/things")
def things(request: Request, limit: Limit = 100, offset: Offset = 0) -> dict[str, Any]:
    return page(rows, limit, offset)     # {"items", "total", "limit", "offset"}
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Query

__all__ = ["Limit", "Offset", "page"]

#: ``?limit=``: at most this many items (1 to 1000).
Limit = Annotated[int, Query(ge=1, le=1000)]
#: ``?offset=``: skip this many items.
Offset = Annotated[int, Query(ge=0)]


def page(items: list[Any], limit: int, offset: int, total: int | None = None) -> dict[str, Any]:
    """One page of a list: ``{"items", "total", "limit", "offset"}``. ``items`` is the whole
    list, or with ``total`` given, the page already (read with LIMIT and OFFSET)."""
    if total is None:
        total, items = len(items), items[offset : offset + limit]
    return {
        "items": items,
        "total": total,
        "limit": limit,
        "offset": offset,
    }
