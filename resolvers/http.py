"""The one HTTP client of the resolvers: guarded, bounded, polite, and keeping receipts.

:class:`HttpClient` is made once per sweep (it holds the connection pool and the per-host limits
and is safe to share between threads). For each check the runner asks it for a :class:`Fetcher`,
the ``http`` object a resolver kind receives::

    with HttpClient(HttpSettings(timeout=10, allow_private=False)) as client:
        http = client.fetcher(etag='"abc"', last_modified=None)
        page = http.get("https://example.org/news", params={"q": "AI"})
        page.status, page.text[:80], page.sha256
        http.records        # one FetchRecord per fetch: url, status, sha256, bytes, validators

What every request gets:

- a **total deadline** (``timeout`` seconds, default 20) covering DNS, connect, redirects, retries
  and the body; a source trickling bytes slowly is cut off when the deadline passes;
- a **streamed body with a size cap** (``max_bytes``, default 5 MB; a ``Content-Length`` above it
  is refused before reading);
- **retries** of connect failures and of 429/503 answers, honouring ``Retry-After`` when it asks
  for at most ``max_retry_wait`` seconds (default 10) and the deadline allows; a longer wait is
  handed to the runner as :attr:`ResolverError.retry_after` so the next check is scheduled after it;
- **conditional requests**: the first fetch of a check sends ``If-None-Match`` /
  ``If-Modified-Since`` from the validators stored on the check; a 304 raises :class:`Unchanged`;
- a descriptive **User-Agent** and a **per-host concurrency limit** (``per_host``, default 4);
- an **SSRF guard**: every connection (every redirect hop, every retry) resolves the host and
  refuses private, loopback, link-local, multicast, reserved and other non-global addresses unless
  ``allow_private`` is set, then connects to the address it checked (no DNS-rebinding window);
- redirects followed by hand (``max_redirects``, default 5), each hop checked; a loop is an error;
- **kept-alive connections** per origin (at most ``per_host``, idle at most 5 s, dropped when the
  server closed them); HTTP/1.1 framing (Content-Length, chunked, body until close) is parsed
  strictly and a response head over 64 KB is refused.

Failures raise :class:`~resolvers.base.ResolverError` with ``temporary`` set: timeouts, connect
and DNS failures, malformed answers, 5xx, 408 and 429 are temporary; SSRF refusals, oversize bodies, redirect loops,
other 4xx and non-http(s) redirects are permanent.
"""

from __future__ import annotations

import codecs
import contextlib
import hashlib
import ipaddress
import json
import re
import select
import socket
import threading
import time
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, NamedTuple
from urllib.parse import urljoin, urlsplit

from resolvers.base import ResolverError

__all__ = [
    "DEFAULT_USER_AGENT",
    "FetchRecord",
    "Fetched",
    "Fetcher",
    "HttpClient",
    "HttpSettings",
    "Unchanged",
]


def _package_version() -> str:
    try:
        from importlib.metadata import version

        return version("forecast-tracker")
    except Exception:
        return "0"


DEFAULT_USER_AGENT = (
    f"forecast-tracker/{_package_version()} (resolver; self-hosted forecast tracker; "
    "checks forecast evidence on a schedule)"
)
_REDIRECTS = (301, 302, 303, 307, 308)
_TEMPORARY_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})


@dataclass(frozen=True)
class HttpSettings:
    """Limits of the client. The CLI fills these from the ``resolvers.*`` configuration keys.

    ``allow_private`` lifts the SSRF guard entirely; ``allowed_networks`` (CIDR strings such as
    ``"127.0.0.0/8"``) lets through only those non-global networks, e.g. loopback in tests.
    """

    timeout: float = 20.0
    max_bytes: int = 5_000_000
    per_host: int = 4
    allow_private: bool = False
    allowed_networks: tuple[str, ...] = ()
    max_redirects: int = 5
    retries: int = 2
    max_retry_wait: float = 10.0
    user_agent: str = DEFAULT_USER_AGENT


class Unchanged(Exception):
    """The source answered 304 Not Modified to a conditional request: nothing new to read.

    Resolver kinds let it propagate; the runner records an "unchanged" evidence row carrying the
    previous verdict.
    """

    def __init__(self, url: str) -> None:
        super().__init__(f"{url} is unchanged (304)")
        self.url = url


@dataclass(frozen=True)
class FetchRecord:
    """The receipt of one fetch, for the evidence row.

    ``url`` is the final URL (after redirects), ``requested`` the one asked for; ``sha256`` and
    ``bytes`` describe the body as read (after content decoding); ``wire_bytes`` counts what came
    over the network (headers plus the encoded body). ``status`` is None when no answer came.
    """

    requested: str
    url: str
    status: int | None
    sha256: str | None = None
    bytes: int = 0
    wire_bytes: int = 0
    unchanged: bool = False
    etag: str | None = None
    last_modified: str | None = None
    error: str | None = None


@dataclass(frozen=True)
class Fetched:
    """A response read in full (within the cap).

    ``status``, ``headers`` (case-insensitive mapping), ``body`` (bytes), ``url`` (final, after
    redirects), ``sha256`` (hex digest of ``body``), ``bytes`` (``len(body)``), ``unchanged``
    (always False here: a 304 raises :class:`Unchanged`). ``text`` decodes the body by its declared
    charset (header, then an HTML ``<meta charset>``, then UTF-8 with replacement); ``json()``
    parses it or raises a temporary :class:`ResolverError` saying the JSON is invalid.
    """

    url: str
    status: int
    headers: Mapping[str, str]
    body: bytes
    sha256: str
    bytes: int
    unchanged: bool = False
    _text: list[str] = field(default_factory=list, repr=False, compare=False)

    @property
    def content_type(self) -> str:
        """The media type without parameters, lower case (``text/html``), or ``""``."""
        return self.headers.get("content-type", "").split(";")[0].strip().lower()

    @property
    def text(self) -> str:
        """The body as text (decoded once, then cached)."""
        if not self._text:
            self._text.append(_decode(self.body, self.headers.get("content-type", "")))
        return self._text[0]

    def json(self) -> Any:
        """The body parsed as JSON; a temporary :class:`ResolverError` if it is not JSON."""
        try:
            return json.loads(self.body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise ResolverError(
                f"invalid JSON from {self.url}: {str(exc)[:120]}", temporary=True
            ) from None


class Fetcher:
    """The ``http`` object a resolver kind receives: one per check, recording every fetch.

    ``get(url, *, params=None, headers=None, allow_status=()) -> Fetched``

    - ``params`` are added to the query string; ``headers`` are sent as given (the User-Agent and
      the conditional headers are added by the client);
    - any status >= 400 not listed in ``allow_status`` raises :class:`ResolverError` (after the
      fetch is recorded, so the evidence row shows the status);
    - the first ``get`` of a check is conditional when the check has stored validators; a 304
      raises :class:`Unchanged`. Later ``get`` calls of the same check are not conditional.

    ``records`` lists a :class:`FetchRecord` per ``get`` (including failed ones), in order;
    ``validators`` gives the ETag / Last-Modified of the first fetch, for the runner to store.
    """

    def __init__(
        self, client: HttpClient, *, etag: str | None = None, last_modified: str | None = None
    ) -> None:
        self._client = client
        self._etag = etag
        self._last_modified = last_modified
        self._first = True
        self.records: list[FetchRecord] = []

    @property
    def validators(self) -> tuple[str | None, str | None]:
        """``(etag, last_modified)`` of the first fetch when it succeeded (or was 304), else the
        validators this fetcher was made with."""
        if self.records:
            first = self.records[0]
            if first.unchanged:
                return self._etag, self._last_modified
            if first.status is not None and 200 <= first.status < 300:
                return first.etag, first.last_modified
        return self._etag, self._last_modified

    def get(
        self,
        url: str,
        *,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        allow_status: Iterable[int] = (),
    ) -> Fetched:
        """Fetch ``url`` (see the class docstring); returns a :class:`Fetched`."""
        conditional = self._first
        self._first = False
        extra = dict(headers or {})
        if conditional:
            if self._etag:
                extra["If-None-Match"] = self._etag
            if self._last_modified:
                extra["If-Modified-Since"] = self._last_modified
        return self._client._get(self, url, params, extra, frozenset(allow_status))


class _Refused(Exception):
    """The SSRF guard refused an address."""


class _Unresolvable(Exception):
    """DNS gave no address for a host."""


class _ConnectFailed(Exception):
    """No connection (TCP or TLS) could be made; retried by the caller."""


class _Protocol(Exception):
    """The source broke HTTP/1.1 (a malformed or oversized head, a bad chunk, a short body)."""


class _Late(Exception):
    """The request's total deadline passed."""


class _Stale(Exception):
    """A kept-alive connection turned out closed before it answered: retry on a new one."""


def _address_refused(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return not ip.is_global or ip.is_multicast


class _Headers(Mapping[str, str]):
    """Response headers: a case-insensitive mapping (names are kept lower case; a repeated
    header's values are joined with ``", "``)."""

    __slots__ = ("_items",)

    def __init__(self, items: dict[str, str]) -> None:
        self._items = items

    def __getitem__(self, name: str) -> str:
        return self._items[name.lower()]

    def get(self, name: str, default: Any = None) -> Any:  # noqa: D102 (Mapping's)
        return self._items.get(name.lower(), default)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        return f"_Headers({self._items!r})"


_RECV = 65_536
_HEAD_LIMIT = 65_536  # a response head larger than this is refused
_LINE_LIMIT = 4_096  # a chunk-size or trailer line
_DRAIN_LIMIT = 65_536  # a redirect body up to this size is read to keep the connection
_HEAD_END = re.compile(rb"\n\r?\n")
_STATUS_LINE = re.compile(rb"HTTP/1\.([01]) ([0-9]{3})(?:[ \t][^\r\n]*)?\r?")
_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_BAD_VALUE = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")
_DEFAULT_PORTS = {"http": 80, "https": 443}
_CLIENT_HEADERS = frozenset(
    {"host", "accept-encoding", "connection", "content-length", "transfer-encoding", "te"}
)


class _Connection:
    """One HTTP/1.1 connection: a socket (plain or TLS) and the bytes read past the last head.

    Every wait ends by the request's deadline (to within 5 ms), so a source trickling bytes slowly
    is cut off when the deadline passes. ``wire`` counts the bytes received for the current answer.
    """

    __slots__ = ("buffer", "idle_since", "sock", "timed_at", "timed_for", "wire")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = b""
        self.idle_since = 0.0
        self.wire = 0
        self.timed_at = 0.0  # when the socket's timeout was last set, and for which deadline
        self.timed_for = 0.0

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()

    def usable(self) -> bool:
        """An idle connection that shows nothing to read is still open (a readable one was closed
        by the server, or holds bytes nobody asked for)."""
        if self.buffer:
            return False
        try:
            poller = select.poll()
            poller.register(self.sock, select.POLLIN)
            return not poller.poll(0)
        except (OSError, ValueError):
            return False

    def _time(self, deadline: float) -> None:
        """Make the socket's next wait end by ``deadline``. Setting a timeout is a system call
        (and a hand-over of Python's lock), so one set less than 5 ms ago for the same deadline
        is kept: the wait then ends at most 5 ms late."""
        now = time.monotonic()
        if now >= deadline:
            raise _Late
        if self.timed_for != deadline or now - self.timed_at > 0.005:
            self.sock.settimeout(deadline - now)
            self.timed_at, self.timed_for = now, deadline

    def send(self, data: bytes, deadline: float) -> None:
        self._time(deadline)
        self.sock.sendall(data)

    def fill(self, deadline: float, want: int = _RECV) -> bytes:
        """Receive more bytes (at most ``want``); ``b""`` when the server closed."""
        self._time(deadline)
        data = self.sock.recv(want)
        self.wire += len(data)
        return data

    def head(self, deadline: float) -> bytes:
        """The next response head (status line and headers, without the blank line)."""
        buffer = self.buffer
        searched = 0
        while True:
            end = _HEAD_END.search(buffer, searched)
            if end is not None and end.start() <= _HEAD_LIMIT:
                self.buffer = buffer[end.end() :]
                return buffer[: end.start() + 1]
            if len(buffer) > _HEAD_LIMIT:
                raise _Protocol(f"response head over {_HEAD_LIMIT:,} bytes")
            searched = max(0, len(buffer) - 3)
            data = self.fill(deadline)
            if not data:
                if buffer:
                    raise _Protocol("the server closed the connection in the middle of the head")
                raise _Stale
            buffer += data

    def line(self, deadline: float) -> bytes:
        """One CRLF- (or LF-) terminated line of a chunked body, without its end."""
        while True:
            end = self.buffer.find(b"\n")
            if end >= 0:
                line, self.buffer = self.buffer[:end], self.buffer[end + 1 :]
                return line[:-1] if line.endswith(b"\r") else line
            if len(self.buffer) > _LINE_LIMIT:
                raise _Protocol("a chunk line over 4 KB")
            data = self.fill(deadline)
            if not data:
                raise _Protocol("the server closed the connection in the middle of the body")
            self.buffer += data

    def exactly(self, n: int, deadline: float, sink: Callable[[bytes], None]) -> None:
        """Pass the next ``n`` body bytes to ``sink`` as they come."""
        if self.buffer:
            piece, self.buffer = self.buffer[:n], self.buffer[n:]
            n -= len(piece)
            sink(piece)
        while n > 0:
            piece = self.fill(deadline, min(n, _RECV))
            if not piece:
                raise _Protocol("the server closed the connection in the middle of the body")
            n -= len(piece)
            sink(piece)

    def until_close(self, deadline: float, sink: Callable[[bytes], None]) -> None:
        """Pass every body byte to ``sink`` until the server closes."""
        if self.buffer:
            piece, self.buffer = self.buffer, b""
            sink(piece)
        while piece := self.fill(deadline):
            sink(piece)


@dataclass
class _Answer:
    """One response as the transport saw it; ``keep`` says whether its connection may be reused
    once the body is read (HTTP/1.1 without ``Connection: close``, and a known length)."""

    status: int
    headers: _Headers
    length: int | None  # None: chunked or until close (see ``chunked``)
    chunked: bool
    keep: bool
    head_bytes: int


def _parse_head(head: bytes) -> _Answer:
    """Parse a response head strictly enough that framing can be trusted (RFC 9112)."""
    lines = head.split(b"\n")
    status_line = _STATUS_LINE.fullmatch(lines[0])
    if status_line is None:
        raise _Protocol(f"not an HTTP/1.x status line: {lines[0][:60]!r}")
    minor, status = int(status_line.group(1)), int(status_line.group(2))
    fields: dict[str, str] = {}
    last = ""
    for raw in lines[1:]:
        line = raw[:-1] if raw.endswith(b"\r") else raw
        if not line:
            continue
        if line[0] in b" \t":  # obsolete line folding: a continuation of the previous value
            if not last:
                raise _Protocol("a folded header line with no header before it")
            fields[last] += " " + line.strip(b" \t").decode("latin-1")
            continue
        name, colon, value = line.partition(b":")
        if not colon or _TOKEN.fullmatch(name) is None:
            raise _Protocol(f"malformed header line {line[:60]!r}")
        value = value.strip(b" \t")
        if _BAD_VALUE.search(value):
            raise _Protocol(f"control characters in header {name.decode('ascii')}")
        last = name.decode("ascii").lower()
        text = value.decode("latin-1")
        fields[last] = f"{fields[last]}, {text}" if last in fields else text
    connection = fields.get("connection", "").lower()
    keep = minor == 1 and "close" not in connection
    chunked = False
    length: int | None = None
    if 100 <= status < 200 or status in (204, 304):
        length = 0
    elif "transfer-encoding" in fields:
        chunked = fields["transfer-encoding"].rsplit(",", 1)[-1].strip().lower() == "chunked"
        keep = keep and chunked
    elif "content-length" in fields:
        values = {v.strip() for v in fields["content-length"].split(",")}
        declared = values.pop() if len(values) == 1 else ""
        if not declared.isdigit():
            raise _Protocol(f"bad Content-Length {fields['content-length'][:40]!r}")
        length = int(declared)
    else:
        keep = False  # the body runs until the server closes
    return _Answer(status, _Headers(fields), length, chunked, keep, len(head) + 2)


class _Url(NamedTuple):
    """A parsed http(s) URL: its normal text, and what a request to it needs."""

    text: str
    scheme: str
    host: str  # ASCII (IDNA-encoded), an IPv6 address without brackets
    port: int | None  # None: the scheme's default
    netloc: str  # the Host header
    target: bytes  # path and query


# An http(s) URL that is already in normal form: lower-case host name (or a dotted-quad IPv4
# address), an explicit port other than the default, a path without dot segments, and only
# characters that need no quoting. Such a URL is its own normal form, so it is parsed by this
# one expression; any other goes through httpx's parser (quoting, IDNA, dot segments...).
_NORMAL_URL = re.compile(
    r"(https?)://"
    r"((?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?\.)*[a-z](?:[a-z0-9-]*[a-z0-9])?"
    r"|(?:(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])\.){3}"
    r"(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9]))"
    r"(?::([1-9][0-9]{0,4}))?"
    r"(/[A-Za-z0-9\-._~!$&'()*+,;=:@/%]*)"
    r"(\?[A-Za-z0-9\-._~!$&'()*+,;=:@/?%]*)?"
)


def _parse_url(url: str, params: Mapping[str, Any] | None = None) -> _Url:
    """Parse and normalise ``url`` (with ``params`` added to its query) as httpx does; raises
    ``httpx.InvalidURL`` (or ValueError, TypeError) for a URL that is not one."""
    match = None if params or len(url) > 65_536 else _NORMAL_URL.fullmatch(url)
    if match is not None:
        scheme, host, port_text, path, query = match.groups()
        port = int(port_text) if port_text else None
        dots = "." in path and any(part in (".", "..") for part in path.split("/"))
        if not dots and port != _DEFAULT_PORTS[scheme]:
            netloc = f"{host}:{port_text}" if port_text else host
            return _Url(url, scheme, host, port, netloc, (path + (query or "")).encode("ascii"))
    return _parse_any_url(url, params)


def _parse_any_url(url: str, params: Mapping[str, Any] | None = None) -> _Url:
    import httpx

    parsed = httpx.URL(url, params=dict(params)) if params else httpx.URL(url)
    return _Url(
        str(parsed),
        parsed.scheme,
        parsed.raw_host.decode("ascii"),
        parsed.port,
        parsed.netloc.decode("ascii"),
        parsed.raw_path,
    )


def _network_of(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str:
    """The address as a one-address network, the narrowest allow-list entry that admits it."""
    return str(ipaddress.ip_network(ip))


class HttpClient:
    """The client factory: one pool, per-host limits, the guard; hands out :class:`Fetcher` s.

    The transport is a small HTTP/1.1 client over sockets with a pool of kept-alive connections
    per origin: a sweep makes thousands of requests, and a general-purpose stack (httpx over
    httpcore and h11) costs several times the CPU of the check itself for each one. What it does
    not need it does not have (HTTP/2, proxies, cookies, uploads); what it has is strict where
    framing is concerned (status line, header syntax, Content-Length, chunked encoding, a cap on
    the head) so that a hostile source can only produce an error. Thread-safe; use it as a
    context manager or call :meth:`close`. ``wire_bytes`` totals what every fetch brought over the
    network (heads and encoded bodies).
    """

    def __init__(self, settings: HttpSettings | None = None) -> None:
        import httpx

        self.settings = settings or HttpSettings()
        self._ssl_context = httpx.create_ssl_context()
        self._allowed = [
            ipaddress.ip_network(n, strict=False) for n in self.settings.allowed_networks
        ]
        # Kept-alive connections by origin, most recently used last.
        self._idle: dict[tuple[str, str, int], list[_Connection]] = {}
        self._closed = False
        self._agent = self.settings.user_agent.encode("ascii", "replace")
        self._hosts: dict[str, threading.BoundedSemaphore] = {}
        self._lock = threading.Lock()
        self.wire_bytes = 0

    def __enter__(self) -> HttpClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close every idle connection (and each busy one as its request ends)."""
        with self._lock:
            self._closed = True
            idle, self._idle = [c for conns in self._idle.values() for c in conns], {}
        for conn in idle:
            conn.close()

    def fetcher(self, *, etag: str | None = None, last_modified: str | None = None) -> Fetcher:
        """A :class:`Fetcher` for one check, with that check's stored validators."""
        return Fetcher(self, etag=etag, last_modified=last_modified)

    # -- internals -----------------------------------------------------------------------------

    def _host_slot(self, host: str) -> threading.BoundedSemaphore:
        with self._lock:
            slot = self._hosts.get(host)
            if slot is None:
                slot = self._hosts[host] = threading.BoundedSemaphore(self.settings.per_host)
            return slot

    def _refused(self, ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
        if self.settings.allow_private or not _address_refused(ip):
            return False
        return not any(ip.version == net.version and ip in net for net in self._allowed)

    def _checkout(self, origin: tuple[str, str, int]) -> _Connection | None:
        """A kept-alive connection to ``origin`` that is still open, or None.

        One idle for more than a second is polled first (a server closing an idle connection,
        perhaps with a last answer nobody asked for, does so after seconds); a fresher one is
        used as is, and if it turns out closed the request moves to a new connection.
        """
        now = time.monotonic()
        while True:
            with self._lock:
                conns = self._idle.get(origin)
                conn = conns.pop() if conns else None
            if conn is None:
                return None
            idle = now - conn.idle_since
            if idle < 1.0 or (idle < 5.0 and conn.usable()):
                return conn
            conn.close()

    def _checkin(self, origin: tuple[str, str, int], conn: _Connection) -> None:
        conn.idle_since = time.monotonic()
        with self._lock:
            if not self._closed:
                conns = self._idle.setdefault(origin, [])
                if len(conns) < self.settings.per_host:
                    conns.append(conn)
                    return
        conn.close()

    def _connect(self, scheme: str, host: str, port: int, deadline: float) -> _Connection:
        """Resolve ``host``, refuse it if the guard says so (every address it resolves to),
        then connect to an address it checked (no DNS-rebinding window), with TLS for https."""
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except socket.gaierror as exc:
            raise _Unresolvable(f"cannot resolve {host}: {exc.strerror}") from None
        addresses = []
        for family, _type, _proto, _name, sockaddr in infos:
            ip = ipaddress.ip_address(str(sockaddr[0]).split("%")[0])
            if self._refused(ip):
                raise _Refused(
                    f"refused to connect to {host} ({ip}): a private, loopback or link-local "
                    "address (to reach it, name its network in resolvers.allowed_networks, "
                    f"e.g. `tracker config set resolvers.allowed_networks {_network_of(ip)}`)"
                )
            addresses.append((family, sockaddr))
        if not addresses:
            raise _Unresolvable(f"cannot resolve {host}: no address")
        last: Exception | None = None
        for family, sockaddr in addresses:
            left = deadline - time.monotonic()
            if left <= 0:
                raise _ConnectFailed(f"connecting to {host} timed out")
            sock = socket.socket(family, socket.SOCK_STREAM)
            try:
                sock.settimeout(left)
                sock.connect(sockaddr)
            except TimeoutError:
                sock.close()
                raise _ConnectFailed(f"connecting to {host} timed out") from None
            except OSError as exc:
                sock.close()
                last = exc
                continue
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if scheme == "https":
                try:
                    sock.settimeout(max(0.001, deadline - time.monotonic()))
                    sock = self._ssl_context.wrap_socket(sock, server_hostname=host)
                except TimeoutError:
                    sock.close()
                    raise _ConnectFailed(f"TLS handshake with {host} timed out") from None
                except OSError as exc:  # ssl.SSLError included: a certificate that fails
                    sock.close()
                    raise _ConnectFailed(str(exc)) from None
            return _Connection(sock)
        raise _ConnectFailed(str(last))

    def _request_headers(self, headers: Mapping[str, str]) -> bytes:
        """The request's headers after the Host line, ending with the blank line.

        A kind's own headers come after the client's and may replace ``User-Agent`` and
        ``Accept``; the framing and encoding headers are the client's alone. A name or value
        that would break the request (a line break, a control character, a name that is not a
        token, text outside Latin-1) is refused.
        """
        given = {name.lower() for name in headers}
        if given & _CLIENT_HEADERS:
            name = sorted(given & _CLIENT_HEADERS)[0]
            raise ResolverError(f"request header {name!r} is set by the client", temporary=False)
        out = [b"Accept-Encoding: gzip, deflate\r\n"]
        if "user-agent" not in given:
            out.append(b"User-Agent: " + self._agent + b"\r\n")
        if "accept" not in given:
            out.append(b"Accept: */*\r\n")
        for name, value in headers.items():
            try:
                line = f"{name}: {value}\r\n".encode("latin-1")
            except UnicodeEncodeError:
                raise ResolverError(f"request header {name!r} is not Latin-1", False) from None
            if _TOKEN.fullmatch(line[: len(name)]) is None or _BAD_VALUE.search(
                line, len(name) + 2, len(line) - 2
            ):
                raise ResolverError(f"invalid request header {name!r}", temporary=False)
            out.append(line)
        out.append(b"\r\n")
        return b"".join(out)

    def _get(
        self,
        fetcher: Fetcher,
        url: str,
        params: Mapping[str, Any] | None,
        headers: dict[str, str],
        allow_status: frozenset[int],
    ) -> Fetched:
        import httpx

        s = self.settings
        deadline = time.monotonic() + s.timeout
        try:
            parsed = _parse_url(url, params)
        except (httpx.InvalidURL, TypeError, ValueError) as exc:
            raise ResolverError(f"invalid URL {url!r}: {exc}", temporary=False) from None
        requested = current = parsed.text
        extra = self._request_headers(headers)
        seen: set[str] = set()
        hops = 0
        while True:
            scheme = urlsplit(current).scheme.lower()
            if scheme not in ("http", "https"):
                self._record(fetcher, requested, current, None, error="not http(s)")
                raise ResolverError(
                    f"refused to follow {current!r}: only http(s) URLs are fetched",
                    temporary=False,
                )
            if current in seen:
                self._record(fetcher, requested, current, None, error="redirect loop")
                raise ResolverError(f"redirect loop at {current}", temporary=False)
            seen.add(current)
            try:
                if parsed.text != current:
                    parsed = _parse_url(current)
                status, resp_headers, body, wire = self._send(parsed, current, extra, deadline)
            except (httpx.InvalidURL, ValueError) as exc:
                self._record(fetcher, requested, current, None, error="invalid URL")
                raise ResolverError(f"invalid URL {current!r}: {exc}", temporary=False) from None
            except ResolverError as exc:
                self._record(fetcher, requested, current, None, error=str(exc))
                raise
            with self._lock:
                self.wire_bytes += wire
            if status in _REDIRECTS and "location" in resp_headers:
                hops += 1
                if hops > s.max_redirects:
                    self._record(fetcher, requested, current, status, error="too many redirects")
                    raise ResolverError(
                        f"more than {s.max_redirects} redirects from {requested}", temporary=False
                    )
                current = urljoin(current, resp_headers["location"].strip())
                continue
            break
        if status == 304:
            self._record(
                fetcher, requested, current, status, wire=wire, unchanged=True, headers=resp_headers
            )
            raise Unchanged(current)
        digest = hashlib.sha256(body).hexdigest()
        self._record(
            fetcher,
            requested,
            current,
            status,
            sha256=digest,
            size=len(body),
            wire=wire,
            headers=resp_headers,
        )
        if status >= 400 and status not in allow_status:
            raise ResolverError(
                f"HTTP {status} from {current}",
                temporary=status in _TEMPORARY_STATUS or status >= 500,
                retry_after=_retry_after(resp_headers) if status in (429, 503) else None,
            )
        return Fetched(
            url=current,
            status=status,
            headers=resp_headers,
            body=body,
            sha256=digest,
            bytes=len(body),
        )

    @staticmethod
    def _record(
        fetcher: Fetcher,
        requested: str,
        url: str,
        status: int | None,
        *,
        sha256: str | None = None,
        size: int = 0,
        wire: int = 0,
        unchanged: bool = False,
        headers: Mapping[str, str] | None = None,
        error: str | None = None,
    ) -> None:
        headers = headers or {}
        fetcher.records.append(
            FetchRecord(
                requested=requested,
                url=url,
                status=status,
                sha256=sha256,
                bytes=size,
                wire_bytes=wire,
                unchanged=unchanged,
                etag=headers.get("etag"),
                last_modified=headers.get("last-modified"),
                error=error,
            )
        )

    def _send(
        self, parsed: _Url, url: str, extra: bytes, deadline: float
    ) -> tuple[int, _Headers, bytes, int]:
        """One hop: (status, headers, body, wire bytes), with retries; a redirect's body is not
        kept. The connection goes back to the pool when the answer allows it."""
        s = self.settings
        scheme, host, netloc = parsed.scheme, parsed.host, parsed.netloc
        port = parsed.port or _DEFAULT_PORTS[scheme]
        request = b"".join(
            (b"GET ", parsed.target, b" HTTP/1.1\r\nHost: ", netloc.encode(), b"\r\n", extra)
        )
        origin = (scheme, host, port)
        slot = self._host_slot(netloc.lower())
        if not slot.acquire(timeout=max(0.0, deadline - time.monotonic())):
            raise ResolverError(f"timed out waiting for a free connection to {netloc}", True)
        conn: _Connection | None = None
        try:
            attempt = 0
            while True:
                if time.monotonic() >= deadline:
                    raise ResolverError(f"{url} took longer than {s.timeout:g} s", temporary=True)
                try:
                    answer = None
                    conn = self._checkout(origin)
                    if conn is not None:
                        try:
                            answer = self._exchange(conn, request, deadline)
                        except _Stale:  # closed by the server while idle: try a new connection
                            conn.close()
                            conn = None
                    if conn is None:
                        conn = self._connect(scheme, host, port, deadline)
                        answer = self._exchange(conn, request, deadline)
                    assert answer is not None
                    status, resp_headers = answer.status, answer.headers
                    if status in (429, 503) and attempt < s.retries:
                        wait_for = _retry_after(resp_headers)
                        wait = 1.0 if wait_for is None else wait_for
                        if wait <= s.max_retry_wait and deadline - time.monotonic() > wait:
                            attempt += 1
                            conn.close()
                            conn = None
                            time.sleep(wait)
                            continue
                    if status in _REDIRECTS or status == 304:
                        body = b""
                        reusable = self._skip(conn, answer, deadline)
                    else:
                        body = self._read(conn, answer, url, deadline)
                        reusable = answer.keep and not conn.buffer
                    wire = conn.wire
                    if reusable:
                        self._checkin(origin, conn)
                        conn = None
                    return status, resp_headers, body, wire
                except _Refused as exc:
                    raise ResolverError(str(exc), temporary=False) from None
                except _Unresolvable as exc:
                    raise ResolverError(str(exc), temporary=True) from None
                except _ConnectFailed as exc:
                    wait = 0.25 * 2**attempt
                    if attempt < s.retries and deadline - time.monotonic() > wait:
                        attempt += 1
                        time.sleep(wait)
                        continue
                    raise ResolverError(f"cannot connect to {netloc}: {exc}", True) from None
                except (_Late, TimeoutError):
                    raise ResolverError(
                        f"{url} took longer than {s.timeout:g} s", temporary=True
                    ) from None
                except _Stale:
                    raise ResolverError(
                        f"{url}: the server closed the connection without answering", True
                    ) from None
                except _Protocol as exc:
                    raise ResolverError(f"{url}: bad HTTP answer: {exc}", True) from None
                except OSError as exc:
                    raise ResolverError(f"{url}: network error: {exc}", True) from None
        finally:
            slot.release()
            if conn is not None:
                conn.close()

    @staticmethod
    def _exchange(conn: _Connection, request: bytes, deadline: float) -> _Answer:
        """Send the request and read the answer's head (skipping 1xx interim answers).

        :class:`_Stale` when the connection turns out closed before any byte of an answer came.
        """
        conn.wire = 0
        try:
            conn.send(request, deadline)
        except (BrokenPipeError, ConnectionResetError):
            raise _Stale from None
        while True:
            try:
                head = conn.head(deadline)
            except ConnectionResetError:
                if conn.wire:
                    raise
                raise _Stale from None
            answer = _parse_head(head)
            if answer.status == 101:
                raise _Protocol("101 Switching Protocols in answer to a GET")
            if not 100 <= answer.status < 200:
                return answer

    @staticmethod
    def _skip(conn: _Connection, answer: _Answer, deadline: float) -> bool:
        """Skip a redirect's (small) body so its connection can be reused; False if it cannot."""
        if not answer.keep or answer.length is None or answer.length > _DRAIN_LIMIT:
            return False
        conn.exactly(answer.length, deadline, lambda _piece: None)
        return not conn.buffer

    def _read(self, conn: _Connection, answer: _Answer, url: str, deadline: float) -> bytes:
        """The decoded body; the cap applies to the decoded size (a small gzip bomb is still
        refused) and the deadline to the whole read."""
        cap = self.settings.max_bytes
        if answer.length is not None and answer.length > cap:
            raise ResolverError(
                f"{url}: body of {answer.length:,} bytes is over the {cap:,}-byte cap",
                temporary=False,
            )
        coding = answer.headers.get("content-encoding", "identity").strip().lower()
        if coding in ("gzip", "x-gzip", "deflate"):
            decoder: Any = zlib.decompressobj(zlib.MAX_WBITS | 32)  # zlib or gzip header
        elif coding in ("identity", ""):
            decoder = None
        else:
            raise ResolverError(f"{url}: unsupported content-encoding {coding!r}", False)
        over = ResolverError(f"{url}: body over the {cap:,}-byte cap", temporary=False)
        slow = ResolverError(
            f"{url} took longer than {self.settings.timeout:g} s (slow body)", temporary=True
        )
        chunks: list[bytes] = []
        total = 0

        def sink(data: bytes) -> None:
            nonlocal total
            if decoder is not None:
                data = decoder.decompress(data, cap + 1 - total)
                if decoder.unconsumed_tail:
                    raise over
            total += len(data)
            if total > cap:
                raise over
            if time.monotonic() > deadline:
                raise slow
            chunks.append(data)

        try:
            if answer.chunked:
                _read_chunked(conn, deadline, sink)
            elif answer.length is None:
                conn.until_close(deadline, sink)
            else:
                conn.exactly(answer.length, deadline, sink)
            if decoder is not None:
                tail = decoder.flush()
                total += len(tail)
                if total > cap:
                    raise over
                chunks.append(tail)
        except zlib.error as exc:
            raise ResolverError(f"{url}: body is not valid {coding}: {exc}", True) from None
        except (_Late, TimeoutError):  # a read reached the deadline
            raise slow from None
        return b"".join(chunks)


_HEX = re.compile(rb"[0-9A-Fa-f]{1,16}")


def _read_chunked(conn: _Connection, deadline: float, sink: Callable[[bytes], None]) -> None:
    """A chunked body (RFC 9112, 7.1): each chunk's data to ``sink``; trailers are skipped."""
    while True:
        line = conn.line(deadline)
        size = line.split(b";", 1)[0].strip(b" \t")
        if _HEX.fullmatch(size) is None:
            raise _Protocol(f"bad chunk size line {line[:40]!r}")
        n = int(size, 16)
        if n == 0:
            while conn.line(deadline):  # trailer fields, up to the blank line
                pass
            return
        conn.exactly(n, deadline, sink)
        if conn.line(deadline):
            raise _Protocol("no line end after a chunk")


def _retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds asked for by a ``Retry-After`` header (delta-seconds or an HTTP date), or None."""
    value = headers.get("retry-after", "").strip()
    if not value:
        return None
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_\-:.]+)""", re.I)


def _decode(body: bytes, content_type: str) -> str:
    charset = None
    match = re.search(r"charset\s*=\s*\"?([A-Za-z0-9_\-:.]+)", content_type, re.I)
    if match:
        charset = match.group(1)
    if body.startswith(codecs.BOM_UTF8):
        return body[3:].decode("utf-8", errors="replace")
    if charset is None:
        meta = _META_CHARSET.search(body[:4096])
        if meta:
            charset = meta.group(1).decode("ascii", errors="ignore")
    if charset:
        try:
            return body.decode(charset, errors="replace")
        except LookupError:
            pass
    return body.decode("utf-8", errors="replace")
