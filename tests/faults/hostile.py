"""A raw TCP server on loopback that misbehaves on purpose, for the hostile-source tests.

Each path maps to a function ``(conn, stop)`` that writes whatever bytes it likes on the socket
(an endless body, one byte a second, a reset in the middle, ...). ``tls=True`` wraps accepted
connections with a freshly made self-signed certificate::

    with Hostile(host="127.0.0.2") as server:
        server.route("/x", lambda conn, stop: conn.sendall(head(200) + b"ok"))
        server.url + "/x"; server.hits["/x"]

The server stops every handler when it is closed (``stop`` is set), so endless writers end.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import socket
import ssl
import struct
import tempfile
import threading
from collections import Counter
from collections.abc import Callable
from pathlib import Path

__all__ = ["Handler", "Hostile", "head", "reset", "self_signed_context"]

Handler = Callable[[socket.socket, threading.Event], None]


def head(status: int, headers: dict[str, str] | None = None, length: int | None = None) -> bytes:
    """An HTTP/1.1 status line and headers (``Connection: close``; a length when given)."""
    lines = [f"HTTP/1.1 {status} Hostile", "Connection: close"]
    for name, value in (headers or {}).items():
        lines.append(f"{name}: {value}")
    if length is not None:
        lines.append(f"Content-Length: {length}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def reset(conn: socket.socket) -> None:
    """Close with a TCP RST instead of a FIN (SO_LINGER with a zero timeout)."""
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    conn.close()


def self_signed_context(host: str) -> ssl.SSLContext:
    """A server-side TLS context with a new self-signed certificate for ``host``."""
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(host))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    folder = Path(tempfile.mkdtemp(prefix="hostile-tls-"))
    (folder / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (folder / "key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(folder / "cert.pem", folder / "key.pem")
    return context


class Hostile:
    """A threaded raw HTTP server; a context manager. Unknown paths get a plain 404."""

    def __init__(self, host: str = "127.0.0.1", tls: bool = False) -> None:
        self.host = host
        self.routes: dict[str, Handler] = {}
        self.hits: Counter[str] = Counter()
        self.connections = 0
        self._stop = threading.Event()
        self._context = self_signed_context(host) if tls else None
        self._listener = socket.create_server((host, 0))
        self._listener.settimeout(0.05)
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._workers: list[threading.Thread] = []

    @property
    def port(self) -> int:
        """The port it listens on."""
        return int(self._listener.getsockname()[1])

    @property
    def url(self) -> str:
        """``http(s)://<host>:<port>``."""
        scheme = "https" if self._context else "http"
        return f"{scheme}://{self.host}:{self._listener.getsockname()[1]}"

    def route(self, path: str, handler: Handler) -> None:
        """Answer ``path`` with ``handler(conn, stop)``."""
        self.routes[path] = handler

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.connections += 1
            worker = threading.Thread(target=self._handle, args=(conn,), daemon=True)
            self._workers.append(worker)
            worker.start()

    def _handle(self, conn: socket.socket) -> None:
        try:
            conn.settimeout(10)
            if self._context is not None:
                conn = self._context.wrap_socket(conn, server_side=True)
            request = b""
            while b"\r\n\r\n" not in request:
                data = conn.recv(4096)
                if not data:
                    return
                request += data
            path = request.split(b" ", 2)[1].decode("latin-1").split("?")[0]
            self.hits[path] += 1
            handler = self.routes.get(path)
            if handler is None:
                conn.sendall(head(404, length=9) + b"not found")
            else:
                handler(conn, self._stop)
        except (OSError, ssl.SSLError):
            pass
        finally:
            with contextlib.suppress(OSError):
                conn.close()

    def __enter__(self) -> Hostile:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._listener.close()
        for worker in self._workers:
            worker.join(timeout=5)
