"""The one HTTP client of the resolvers: httpx, with a thin layer of ours that guards, bounds and
keeps receipts.

:class:`HttpClient` is made once per sweep (it holds the connection pool and the per-host limits
and is safe to share between threads). For each check the runner asks it for a :class:`Fetcher`,
the ``http`` object a resolver kind receives::

    with HttpClient(HttpSettings(timeout=10, allow_private=False)) as client:
        http = client.fetcher(etag='"abc"', last_modified=None)
        page = http.get("https://example.org/news", params={"q": "AI"})
        page.status, page.text[:80], page.sha256
        http.records        # one FetchRecord per fetch: url, status, sha256, bytes, validators

From httpx: pooled keep-alive connections, HTTP/1.1 framing, TLS (``SSL_CERT_FILE`` or
``SSL_CERT_DIR`` name other roots), content decoding (gzip, deflate; brotli and zstd when their
packages are installed), proxies from ``HTTP_PROXY``/``HTTPS_PROXY``/``ALL_PROXY``/``NO_PROXY``,
and redirect hygiene: httpx builds each hop, dropping ``Authorization`` when the hop leaves the
origin (an http to https upgrade of the same host keeps it) and taking ``Cookie`` from the
client's jar, so a cookie goes only where its domain allows.

Ours, on top:

- a **total deadline** (``timeout`` s, default 20) over the slot wait, DNS, connect, TLS,
  redirects, retries and the body: every read and write ends by it, so a trickle is cut off;
- a **streamed body with a size cap** (``max_bytes``, default 5 MB; a larger ``Content-Length``
  is refused unread). Decoded bytes are counted after each read of at most 16 KB, so a gzip bomb
  inflates at most ~16 MB before it is refused;
- **retries** of connect failures and of 429/503, honouring ``Retry-After`` (seconds, or an HTTP
  date read against :func:`predictions.clock.now`) up to ``max_retry_wait`` s (default 10) when
  the deadline allows; a longer wait goes to the runner as :attr:`ResolverError.retry_after`;
- **conditional requests**: a check's first fetch sends ``If-None-Match`` / ``If-Modified-Since``
  from its stored validators; a 304 raises :class:`Unchanged`;
- a descriptive **User-Agent**, a **per-host concurrency limit** (``per_host``, default 4), and
  redirects followed hop by hop (``max_redirects``, default 5; a loop or a non-http(s) hop is
  refused);
- an **SSRF guard**: a direct connection (each hop, each retry) resolves the host, refuses it if
  any address is private, loopback, link-local, multicast, reserved or otherwise not global
  (unless ``allow_private``, or ``allowed_networks`` names the network), then connects to an
  address it checked: an httpcore network backend of ours, so there is no DNS-rebinding window,
  while TLS verifies and sends SNI for the host name and ``Host`` names it.

**Behind a proxy** the proxy connects, not us, so the guard can check only the URL's host name:
an address literal, or what the name resolves to *here* (a name that does not resolve here
passes), refused before the request reaches the proxy. The proxy's own DNS lookup is not ours
(DNS rebinding, split-horizon DNS are not caught) and its own address is not checked (you chose
it). Where that matters, have the proxy refuse private destinations, or list the sources in
``NO_PROXY``.

Failures raise :class:`ResolverError`: timeouts, connect and DNS failures, malformed answers,
5xx, 408 and 429 are temporary; SSRF refusals, oversize bodies, redirect loops, other 4xx and
non-http(s) redirects are permanent.
"""

from __future__ import annotations

import codecs
import hashlib
import importlib.metadata
import ipaddress
import json
import math
import re
import socket
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any

import httpcore
import httpx

from predictions.clock import now, to_utc_naive
from predictions.errors import ResolverError, Unchanged

__all__ = [
    "DEFAULT_USER_AGENT",
    "FetchRecord",
    "Fetched",
    "Fetcher",
    "HttpClient",
    "HttpSettings",
    "Unchanged",
]


try:
    _VERSION = importlib.metadata.version("forecast-tracker")
except importlib.metadata.PackageNotFoundError:
    _VERSION = "0"
DEFAULT_USER_AGENT = (
    f"forecast-tracker/{_VERSION} (resolver; self-hosted forecast tracker; "
    "checks forecast evidence on a schedule)"
)
_TEMPORARY_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})
_READ_SIZE = 16_384  # the most one read of a connection takes (bounds what one decode inflates)
_KEEPALIVE = 5.0  # seconds an idle connection is kept
_DRAIN_LIMIT = 65_536  # a redirect body up to this size is read to keep the connection
_CLIENT_HEADERS = frozenset(
    {"host", "accept-encoding", "connection", "content-length", "transfer-encoding", "te"}
)
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_BAD_VALUE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\U0010ffff]")


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


@dataclass(frozen=True)
class FetchRecord:
    """The receipt of one fetch, for the evidence row.

    ``url`` is the final URL (after redirects), ``requested`` the one asked for; ``sha256`` and
    ``bytes`` describe the body as read (after content decoding); ``wire_bytes`` counts what came
    over the network for the last hop (headers plus the encoded body). ``status`` is None when no
    answer came.
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
      the conditional headers are added by the client; a header that would break the request, or
      one of the framing headers the client sets, is refused);
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
        client = self._client
        extra = dict(headers or {})
        _check_headers(extra)
        if self._first:
            self._first = False
            if self._etag:
                extra["If-None-Match"] = self._etag
            if self._last_modified:
                extra["If-Modified-Since"] = self._last_modified
        try:
            request = client._client.build_request("GET", url, params=params, headers=extra)
        except (httpx.InvalidURL, TypeError, ValueError) as exc:
            raise ResolverError(f"invalid URL {url!r}: {exc}", temporary=False) from None
        requested = current = str(request.url)
        seen: set[str] = set()
        _current.deadline = time.monotonic() + client.settings.timeout
        try:
            while True:  # one hop a turn
                current = str(request.url)
                if request.url.scheme not in ("http", "https"):
                    raise ResolverError(
                        f"refused to follow {current!r}: only http(s) URLs are fetched", False
                    )
                if not request.url.host:
                    raise ResolverError(f"invalid URL {current!r}: no host", temporary=False)
                if current in seen:
                    raise ResolverError(f"redirect loop at {current}", temporary=False)
                if len(seen) > client.settings.max_redirects:
                    raise ResolverError(
                        f"more than {client.settings.max_redirects} redirects from {requested}",
                        temporary=False,
                    )
                seen.add(current)
                _current.wire = 0
                response, body = client._send(request, current)
                with client._lock:
                    client.wire_bytes += _current.wire
                if response.next_request is None:
                    break
                request = response.next_request
        except ResolverError as exc:
            self._record(requested, current, error=str(exc))
            raise
        finally:
            _current.deadline = math.inf
        status = response.status_code
        self._record(requested, current, response, None if status == 304 else body)
        if status == 304:
            raise Unchanged(current)
        if status >= 400 and status not in allow_status:
            raise ResolverError(
                f"HTTP {status} from {current}",
                temporary=status in _TEMPORARY_STATUS or status >= 500,
                retry_after=_retry_after(response.headers) if status in (429, 503) else None,
            )
        digest = self.records[-1].sha256 or ""
        return Fetched(current, status, response.headers, body, digest, len(body))

    def _record(
        self,
        requested: str,
        url: str,
        response: httpx.Response | None = None,
        body: bytes | None = None,
        error: str | None = None,
    ) -> None:
        headers = response.headers if response is not None else {}
        self.records.append(
            FetchRecord(
                requested=requested,
                url=url,
                status=response.status_code if response is not None else None,
                sha256=hashlib.sha256(body).hexdigest() if body is not None else None,
                bytes=len(body or b""),
                wire_bytes=_current.wire if response is not None else 0,
                unchanged=response is not None and response.status_code == 304,
                etag=headers.get("etag"),
                last_modified=headers.get("last-modified"),
                error=error,
            )
        )


def _check_headers(headers: Mapping[str, str]) -> None:
    """Refuse a kind's header that the client sets itself, or that would break the request (a
    name that is not a token; a line break, control character or non-ASCII text in a value)."""
    for name, value in headers.items():
        if name.lower() in _CLIENT_HEADERS:
            raise ResolverError(f"request header {name!r} is set by the client", temporary=False)
        if _TOKEN.fullmatch(name) is None or _BAD_VALUE.search(value):
            raise ResolverError(f"invalid request header {name!r}", temporary=False)


# --- under httpx: the deadline and the byte count of each read, the guard at each connect -------


class _Request(threading.local):
    """The current request's deadline and the bytes received for it. httpx reads and writes a
    connection on the thread that sent the request, so the network stream finds them here."""

    deadline = math.inf
    wire = 0


_current = _Request()


def _until_deadline(timeout: float | None, late: type[Exception]) -> float:
    """``timeout`` shortened to what is left of the request's deadline; ``late`` when none is."""
    left = _current.deadline - time.monotonic()
    if left <= 0:
        raise late("the request's deadline passed")
    return left if timeout is None else min(timeout, left)


class _Stream(httpcore.NetworkStream):
    """A connection whose every wait ends by the request's deadline, counting bytes received."""

    def __init__(self, inner: httpcore.NetworkStream) -> None:
        self._inner = inner

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        timeout = _until_deadline(timeout, httpcore.ReadTimeout)
        data = self._inner.read(min(max_bytes, _READ_SIZE), timeout)
        _current.wire += len(data)
        return data

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, _until_deadline(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self, ssl_context: Any, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.NetworkStream:
        timeout = _until_deadline(timeout, httpcore.ConnectTimeout)
        return _Stream(self._inner.start_tls(ssl_context, server_hostname, timeout))

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class _Guard(httpcore.NetworkBackend):
    """httpcore's network backend: resolve, check every address, connect to a checked one (the
    host name still goes to TLS for SNI and certificate checks); every stream keeps the request's
    deadline. With ``check`` false (a connection to a proxy) it connects without checking."""

    def __init__(self, settings: HttpSettings, check: bool = True) -> None:
        self.check = check and not settings.allow_private
        self.allowed = [ipaddress.ip_network(n, strict=False) for n in settings.allowed_networks]
        self._sync = httpcore.SyncBackend()

    def addresses(self, host: str, port: int, proxied: bool = False) -> list[str]:
        """Every address ``host`` resolves to, after checking each: a permanent
        :class:`ResolverError` names the first refused one; a temporary one says DNS failed
        (behind a proxy a name that does not resolve here passes: the proxy resolves it)."""
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError) as exc:  # UnicodeError: a label over 63 bytes
            if proxied:
                return []
            reason = exc.strerror if isinstance(exc, OSError) else "not a valid host name"
            raise ResolverError(f"cannot resolve {host}: {reason}", temporary=True) from None
        found = list(dict.fromkeys(str(info[4][0]).split("%")[0] for info in infos))
        for ip in map(ipaddress.ip_address, found):
            mapped = ip.ipv4_mapped if isinstance(ip, ipaddress.IPv6Address) else None
            plain = mapped or ip
            if not self.check or (plain.is_global and not plain.is_multicast):
                continue
            if not any(ip in net or plain in net for net in self.allowed):
                raise ResolverError(
                    f"refused to connect to {host} ({ip}): a private, loopback or link-local "
                    "address (to reach it, name its network in resolvers.allowed_networks, e.g. "
                    f"`tracker config set resolvers.allowed_networks {ipaddress.ip_network(ip)}`)",
                    temporary=False,
                )
        return found

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        failure: Exception = httpcore.ConnectError(f"cannot resolve {host}: no address")
        for address in self.addresses(host, port) if self.check else [host]:
            left = _until_deadline(timeout, httpcore.ConnectTimeout)
            try:
                stream = self._sync.connect_tcp(address, port, left, local_address, socket_options)
            except httpcore.ConnectError as exc:
                failure = exc
                continue
            return _Stream(stream)
        raise failure

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


class _Pools:
    """One small httpcore pool per origin. httpcore's pool walks every connection it holds (and
    polls each socket) on each request, which over a sweep's many sources costs more than the
    request itself; per origin the walk is at most ``per_host`` long. Once a second, the pools
    that started no request for the keep-alive time and hold only idle connections are closed."""

    def __init__(self, make: Callable[[], httpcore.ConnectionPool]) -> None:
        self._make = make
        self._pools: dict[tuple[bytes, bytes, int | None], httpcore.ConnectionPool] = {}
        self._used: dict[tuple[bytes, bytes, int | None], float] = {}
        self._lock = threading.Lock()
        self._swept = time.monotonic()

    def handle_request(self, request: httpcore.Request) -> httpcore.Response:
        key = (request.url.scheme, request.url.host, request.url.port)
        now = time.monotonic()
        stale = []
        with self._lock:
            pool = self._pools.get(key) or self._pools.setdefault(key, self._make())
            self._used[key] = now
            if now - self._swept > 1.0:
                self._swept = now
                for k, used in list(self._used.items()):
                    connections = self._pools[k].connections
                    if now - used > _KEEPALIVE and all(c.is_idle() for c in connections):
                        del self._used[k]
                        stale.append(self._pools.pop(k))
        for old in stale:
            old.close()
        return pool.handle_request(request)

    def close(self) -> None:
        with self._lock:
            pools, self._pools, self._used = list(self._pools.values()), {}, {}
        for pool in pools:
            pool.close()


class _Transport(httpx.HTTPTransport):
    """httpx's own transport over :class:`_Pools` of httpx's own httpcore pools (direct, or through
    ``proxy``) whose connections :class:`_Guard` makes. Through a proxy the guard checks the URL's
    host name before the request leaves (see the module docstring)."""

    def __init__(self, ssl_context: Any, settings: HttpSettings, proxy: str | None = None) -> None:
        super().__init__(verify=ssl_context, proxy=proxy)
        self._guard = _Guard(settings) if proxy else None
        backend = _Guard(settings, check=not proxy)
        limits = httpx.Limits(
            max_connections=None,
            max_keepalive_connections=settings.per_host,
            keepalive_expiry=_KEEPALIVE,
        )

        def pool() -> httpcore.ConnectionPool:
            made = httpx.HTTPTransport(verify=ssl_context, limits=limits, proxy=proxy)._pool
            made._network_backend = backend  # httpx takes no backend; its httpcore pool does
            return made

        self._pool = _Pools(pool)  # type: ignore[assignment]

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if self._guard is not None:
            port = request.url.port or (443 if request.url.scheme == "https" else 80)
            self._guard.addresses(request.url.host, port, proxied=True)
        return super().handle_request(request)


class HttpClient:
    """The client factory: one httpx client and pool, per-host limits, the guard; hands out
    :class:`Fetcher` s. Thread-safe; use it as a context manager or call :meth:`close`.
    ``wire_bytes`` totals what every fetch brought over the network (heads and encoded bodies).
    """

    def __init__(self, settings: HttpSettings | None = None) -> None:
        from httpx._utils import get_environment_proxies  # what httpx itself reads (trust_env)

        self.settings = s = settings or HttpSettings()
        ssl_context = httpx.create_ssl_context(trust_env=True)  # SSL_CERT_FILE, SSL_CERT_DIR
        mounts: dict[str, httpx.BaseTransport | None] = {
            pattern: None if proxy is None else _Transport(ssl_context, s, proxy)
            for pattern, proxy in get_environment_proxies().items()
        }
        self._client = httpx.Client(
            transport=_Transport(ssl_context, s),
            mounts=mounts,
            headers={"User-Agent": s.user_agent},
            timeout=s.timeout,
            follow_redirects=False,
        )
        self._hosts: dict[str, threading.BoundedSemaphore] = {}
        self._lock = threading.Lock()
        self.wire_bytes = 0

    def __enter__(self) -> HttpClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the pool's connections."""
        self._client.close()

    def fetcher(self, *, etag: str | None = None, last_modified: str | None = None) -> Fetcher:
        """A :class:`Fetcher` for one check, with that check's stored validators."""
        return Fetcher(self, etag=etag, last_modified=last_modified)

    def _send(self, request: httpx.Request, url: str) -> tuple[httpx.Response, bytes]:
        """One hop, with its retries, inside the host's concurrency slot: the response and its
        body (a redirect's or a 304's is empty)."""
        s = self.settings
        netloc = request.url.netloc.decode("ascii").lower()
        with self._lock:
            slot = self._hosts.get(netloc) or self._hosts.setdefault(
                netloc, threading.BoundedSemaphore(s.per_host)
            )
        if not slot.acquire(timeout=max(0.0, _current.deadline - time.monotonic())):
            raise ResolverError(f"timed out waiting for a free connection to {netloc}", True)
        try:
            attempt = 0
            while True:
                try:
                    response = self._client.send(request, stream=True)
                except httpx.ConnectError as exc:
                    wait = 0.25 * 2**attempt
                    if attempt < s.retries and _current.deadline - time.monotonic() > wait:
                        attempt += 1
                        time.sleep(wait)
                        continue
                    raise ResolverError(f"cannot connect to {netloc}: {exc}", True) from None
                except httpx.HTTPError as exc:
                    raise _failure(url, exc, s.timeout) from None
                try:
                    if response.status_code in (429, 503) and attempt < s.retries:
                        wait = _retry_after(response.headers)
                        wait = 1.0 if wait is None else wait
                        left = _current.deadline - time.monotonic()
                        if wait <= s.max_retry_wait and left > wait:
                            attempt += 1
                            time.sleep(wait)
                            continue
                    if response.next_request is None and response.status_code != 304:
                        return response, self._read(response, url)
                    length = response.headers.get("content-length", "")
                    if response.status_code == 304 or (
                        length.isdigit() and int(length) <= _DRAIN_LIMIT
                    ):
                        self._read(response, url)  # so that the connection is kept
                    return response, b""
                finally:
                    response.close()
        finally:
            slot.release()

    def _read(self, response: httpx.Response, url: str) -> bytes:
        """The decoded body, refused once over the cap; the deadline covers the whole read."""
        cap = self.settings.max_bytes
        declared = response.headers.get("content-length", "").strip()
        if declared.isdigit() and int(declared) > cap:
            raise ResolverError(
                f"{url}: body of {int(declared):,} bytes is over the {cap:,}-byte cap", False
            )
        chunks: list[bytes] = []
        total = 0
        try:
            for chunk in response.iter_bytes():
                total += len(chunk)
                if total > cap:
                    raise ResolverError(f"{url}: body over the {cap:,}-byte cap", False)
                chunks.append(chunk)
        except httpx.HTTPError as exc:
            raise _failure(url, exc, self.settings.timeout, response) from None
        return b"".join(chunks)


def _failure(
    url: str, exc: httpx.HTTPError, timeout: float, reading: httpx.Response | None = None
) -> ResolverError:
    """What an httpx error on ``url`` (while ``reading`` a response's body) says: temporary."""
    if isinstance(exc, httpx.TimeoutException):
        slow = " (slow body)" if reading is not None else ""
        return ResolverError(f"{url} took longer than {timeout:g} s{slow}", temporary=True)
    if isinstance(exc, httpx.DecodingError) and reading is not None:
        coding = reading.headers.get("content-encoding", "")
        return ResolverError(f"{url}: body is not valid {coding}: {exc}", temporary=True)
    if isinstance(exc, httpx.ProtocolError):
        return ResolverError(f"{url}: bad HTTP answer: {exc}", temporary=True)
    return ResolverError(f"{url}: network error: {exc}", temporary=True)


def _retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds asked for by a ``Retry-After`` header (delta-seconds, or an HTTP date read against
    the one clock), or None."""
    value = headers.get("retry-after", "").strip()
    if not value:
        return None
    if value.isdigit():
        return float(value)
    try:
        when = to_utc_naive(parsedate_to_datetime(value))
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - now()).total_seconds())


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
