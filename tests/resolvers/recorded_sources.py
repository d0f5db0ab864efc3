"""A real HTTP server on loopback that answers with recorded payloads (``fixtures/<kind>/*.json``).

Used by the market and Wikipedia resolver tests::

    with RecordedSource() as source:
        source.route("/v0/market/abc", fixture("manifold", "binary_open.json"))
        http = source.client().fetcher()
        ...
        source.requests[-1].headers["User-Agent"]

Each route answers a path (the query string is ignored for matching and kept in ``requests``)
with a status, a body and headers. Unknown paths answer 404 with an empty JSON object.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from resolvers.http import HttpClient, HttpSettings

FIXTURES = Path(__file__).resolve().parent / "fixtures"


def fixture(kind: str, name: str) -> bytes:
    """The bytes of ``fixtures/<kind>/<name>``."""
    return (FIXTURES / kind / name).read_bytes()


@dataclass
class Answer:
    """What a route answers."""

    body: bytes
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json; charset=utf-8"


@dataclass(frozen=True)
class SeenRequest:
    """One request the server received."""

    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]


class RecordedSource:
    """A threaded ``http.server`` on 127.0.0.1 serving recorded answers; a context manager."""

    def __init__(self) -> None:
        self.routes: dict[str, Answer] = {}
        self.requests: list[SeenRequest] = []
        source = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                parts = urlsplit(self.path)
                source.requests.append(
                    SeenRequest(parts.path, parse_qs(parts.query), dict(self.headers.items()))
                )
                answer = source.routes.get(parts.path, Answer(b"{}", status=404))
                self.send_response(answer.status)
                self.send_header("Content-Type", answer.content_type)
                self.send_header("Content-Length", str(len(answer.body)))
                for name, value in answer.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(answer.body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), daemon=True
        )
        self._clients: list[HttpClient] = []

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``."""
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def route(
        self,
        path: str,
        body: bytes,
        status: int = 200,
        headers: dict[str, str] | None = None,
        content_type: str = "application/json; charset=utf-8",
    ) -> None:
        """Answer ``path`` with ``body``."""
        self.routes[path] = Answer(body, status, dict(headers or {}), content_type)

    def client(self) -> HttpClient:
        """The project's guarded client with loopback allowed and no retries (closed on exit)."""
        client = HttpClient(HttpSettings(timeout=5, allow_private=True, retries=0))
        self._clients.append(client)
        return client

    def __enter__(self) -> RecordedSource:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        for client in self._clients:
            client.close()
        self._server.shutdown()
        self._server.server_close()


def serve() -> Iterator[RecordedSource]:
    """Generator body for a pytest fixture: a running :class:`RecordedSource`."""
    with RecordedSource() as source:
        yield source
