"""A real HTTP server on loopback for the resolver tests, with the misbehaviours sources have.

    with Loopback() as web:
        web.route("/feed.xml", RSS, content_type="application/rss+xml", etag='"v1"')
        web.route("/slow", b"x", delay=3)               # answers after 3 s
        web.route("/trickle", b"x" * 50, trickle=0.2)  # one byte every 0.2 s
        web.route("/moved", b"", status=302, headers={"Location": "/feed.xml"})
        web.url + "/feed.xml"; web.hits["/feed.xml"]; web.seen[-1].headers

A route with an ``etag`` (or ``last_modified``) answers 304 to a matching conditional request.
``max_in_flight`` records the most requests one path was serving at once. Unknown paths are 404.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

__all__ = ["Loopback", "Route", "Seen"]


@dataclass
class Route:
    """What a path answers."""

    body: bytes = b""
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "text/html; charset=utf-8"
    delay: float = 0.0
    trickle: float = 0.0
    etag: str | None = None
    last_modified: str | None = None
    length: bool = True
    then: list[Route] = field(default_factory=list)


@dataclass(frozen=True)
class Seen:
    """One request the server received."""

    path: str
    headers: dict[str, str]


class Loopback:
    """A threaded HTTP/1.1 server on ``host`` (127.0.0.1 unless told); a context manager."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.routes: dict[str, Route] = {}
        self.seen: list[Seen] = []
        self.hits: Counter[str] = Counter()
        self.max_in_flight: Counter[str] = Counter()
        self._in_flight: Counter[str] = Counter()
        self._lock = threading.Lock()
        web = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                path = urlsplit(self.path).path
                with web._lock:
                    web.seen.append(Seen(self.path, dict(self.headers.items())))
                    web.hits[path] += 1
                    web._in_flight[path] += 1
                    web.max_in_flight[path] = max(web.max_in_flight[path], web._in_flight[path])
                    route = web.routes.get(path)
                    if route is not None and route.then:
                        web.routes[path] = route.then[0]
                        web.routes[path].then = route.then[1:]
                try:
                    self._answer(route)
                except (BrokenPipeError, ConnectionResetError):
                    pass
                finally:
                    with web._lock:
                        web._in_flight[path] -= 1

            def _answer(self, route: Route | None) -> None:
                if route is None:
                    route = Route(b"not found", status=404, content_type="text/plain")
                if route.delay:
                    time.sleep(route.delay)
                fresh = (route.etag and self.headers.get("If-None-Match") == route.etag) or (
                    route.last_modified
                    and self.headers.get("If-Modified-Since") == route.last_modified
                )
                self.send_response(304 if fresh else route.status)
                if route.etag:
                    self.send_header("ETag", route.etag)
                if route.last_modified:
                    self.send_header("Last-Modified", route.last_modified)
                if fresh:
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_header("Content-Type", route.content_type)
                for name, value in route.headers.items():
                    self.send_header(name, value)
                if route.length:
                    self.send_header("Content-Length", str(len(route.body)))
                else:
                    self.send_header("Connection", "close")
                    self.close_connection = True
                self.end_headers()
                if route.trickle:
                    for i in range(len(route.body)):
                        self.wfile.write(route.body[i : i + 1])
                        self.wfile.flush()
                        time.sleep(route.trickle)
                else:
                    self.wfile.write(route.body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer((host, 0), Handler)
        self._server.daemon_threads = True
        self._server.block_on_close = False
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), daemon=True
        )

    @property
    def url(self) -> str:
        """``http://<host>:<port>``."""
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def route(self, path: str, body: bytes | str = b"", **options: object) -> Route:
        """Answer ``path`` with ``body`` (text is UTF-8 encoded); options as in :class:`Route`."""
        data = body.encode("utf-8") if isinstance(body, str) else body
        route = Route(data, **options)  # type: ignore[arg-type]
        self.routes[path] = route
        return route

    def __enter__(self) -> Loopback:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
