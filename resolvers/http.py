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
- redirects followed by hand (``max_redirects``, default 5), each hop checked; a loop is an error.

Failures raise :class:`~resolvers.base.ResolverError` with ``temporary`` set: timeouts, connect
and DNS failures, 5xx, 408 and 429 are temporary; SSRF refusals, oversize bodies, redirect loops,
other 4xx and non-http(s) redirects are permanent.
"""

from __future__ import annotations

import codecs
import hashlib
import ipaddress
import json
import re
import socket
import threading
import time
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin, urlsplit

from resolvers.base import ResolverError

if TYPE_CHECKING:
    import httpx

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


#: The deadline (``time.monotonic()``) of the request this thread is running, read by the stream.
_DEADLINE = threading.local()


def _address_refused(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return not ip.is_global or ip.is_multicast


def _guarded_backend(allow_private: bool, allowed_networks: tuple[str, ...]) -> Any:
    """An httpcore network backend that checks each address before connecting to it."""
    import httpcore

    allowed = [ipaddress.ip_network(n, strict=False) for n in allowed_networks]

    def refused(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
        if allow_private or not _address_refused(ip):
            return False
        return not any(ip.version == net.version and ip in net for net in allowed)

    from httpcore._backends.sync import SyncBackend, SyncStream

    class _DeadlineStream(SyncStream):
        """A socket stream whose reads never wait past the running request's total deadline
        (httpcore fixes a read timeout once per body, so a trickling source could otherwise run
        up to twice the deadline)."""

        def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
            end = getattr(_DEADLINE, "at", None)
            if end is not None:
                left = max(0.001, end - time.monotonic())
                timeout = left if timeout is None else min(timeout, left)
            return super().read(max_bytes, timeout)

        def start_tls(self, *args: Any, **kwargs: Any) -> Any:
            stream = super().start_tls(*args, **kwargs)
            return _DeadlineStream(stream._sock) if type(stream) is SyncStream else stream

    class _GuardedBackend(SyncBackend):
        def connect_tcp(
            self,
            host: str,
            port: int,
            timeout: float | None = None,
            local_address: str | None = None,
            socket_options: Iterable[Any] | None = None,
        ) -> Any:
            try:
                infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
            except socket.gaierror as exc:
                raise _Unresolvable(f"cannot resolve {host}: {exc.strerror}") from None
            addresses = []
            for family, _type, _proto, _name, sockaddr in infos:
                ip = ipaddress.ip_address(str(sockaddr[0]).split("%")[0])
                if refused(ip):
                    raise _Refused(
                        f"refused to connect to {host} ({ip}): a private, loopback or link-local "
                        "address (set resolvers.allow_private to allow)"
                    )
                addresses.append((family, sockaddr))
            if not addresses:
                raise _Unresolvable(f"cannot resolve {host}: no address")
            last: Exception | None = None
            for family, sockaddr in addresses:
                sock = socket.socket(family, socket.SOCK_STREAM)
                try:
                    sock.settimeout(timeout)
                    if local_address:
                        sock.bind((local_address, 0))
                    sock.connect(sockaddr)
                except TimeoutError:
                    sock.close()
                    raise httpcore.ConnectTimeout(f"connecting to {host} timed out") from None
                except OSError as exc:
                    sock.close()
                    last = exc
                    continue
                for option in socket_options or ():
                    sock.setsockopt(*option)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                return _DeadlineStream(sock)
            raise httpcore.ConnectError(str(last))

    return _GuardedBackend()


class HttpClient:
    """The client factory: one pool, per-host limits, the guard; hands out :class:`Fetcher` s.

    Built on httpcore, the transport layer of httpx, driven directly: a sweep makes thousands of
    requests and the layer above (cookies, auth flows, event hooks) would cost more CPU than the
    checks themselves. Thread-safe; use it as a context manager or call :meth:`close`.
    ``wire_bytes`` totals what every fetch brought over the network (headers and encoded bodies).
    """

    def __init__(self, settings: HttpSettings | None = None) -> None:
        import httpcore
        import httpx

        self.settings = settings or HttpSettings()
        self._ssl_context = httpx.create_ssl_context()
        self._backend = _guarded_backend(
            self.settings.allow_private, self.settings.allowed_networks
        )
        # One small pool per origin: httpcore scans every connection of a pool on each request,
        # so one big pool over many hosts would cost CPU in proportion to the hosts.
        self._pools: dict[str, httpcore.ConnectionPool] = {}
        self._base_headers = [
            (b"User-Agent", self.settings.user_agent.encode("ascii", "replace")),
            (b"Accept-Encoding", b"gzip, deflate"),
            (b"Accept", b"*/*"),
        ]
        self._hosts: dict[str, threading.BoundedSemaphore] = {}
        self._lock = threading.Lock()
        self.wire_bytes = 0

    def __enter__(self) -> HttpClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close every connection."""
        with self._lock:
            pools, self._pools = list(self._pools.values()), {}
        for pool in pools:
            pool.close()

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

    def _pool_for(self, origin: str) -> Any:
        import httpcore

        with self._lock:
            pool = self._pools.get(origin)
            if pool is None:
                pool = self._pools[origin] = httpcore.ConnectionPool(
                    ssl_context=self._ssl_context,
                    max_connections=self.settings.per_host,
                    max_keepalive_connections=self.settings.per_host,
                    keepalive_expiry=5.0,
                    network_backend=self._backend,
                )
            return pool

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
            parsed = httpx.URL(url, params=dict(params)) if params else httpx.URL(url)
        except (httpx.InvalidURL, TypeError, ValueError) as exc:
            raise ResolverError(f"invalid URL {url!r}: {exc}", temporary=False) from None
        requested = current = str(parsed)
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
                if str(parsed) != current:
                    parsed = httpx.URL(current)
                status, resp_headers, body, wire = self._send(parsed, current, headers, deadline)
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
        self, parsed: httpx.URL, url: str, headers: dict[str, str], deadline: float
    ) -> tuple[int, Mapping[str, str], bytes, int]:
        """One hop: (status, headers, body, wire bytes), with retries; a redirect's body is not
        read."""
        import httpcore
        import httpx

        s = self.settings
        host = parsed.netloc.decode("ascii", "replace").lower()
        target = httpcore.URL(
            scheme=parsed.raw_scheme, host=parsed.raw_host, port=parsed.port, target=parsed.raw_path
        )
        request_headers = [
            *self._base_headers,
            *((k.encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()),
        ]
        slot = self._host_slot(host)
        pool = self._pool_for(f"{parsed.scheme}://{host}")
        if not slot.acquire(timeout=max(0.0, deadline - time.monotonic())):
            raise ResolverError(f"timed out waiting for a free connection to {host}", True)
        _DEADLINE.at = deadline
        try:
            attempt = 0
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise ResolverError(f"{url} took longer than {s.timeout:g} s", temporary=True)
                timeouts = {"connect": remaining, "read": remaining, "write": remaining}
                try:
                    with pool.stream(
                        "GET",
                        target,
                        headers=request_headers,
                        extensions={"timeout": {**timeouts, "pool": remaining}},
                    ) as response:
                        status = response.status
                        resp_headers = httpx.Headers(response.headers)
                        head_bytes = 16 + sum(len(k) + len(v) + 4 for k, v in response.headers)
                        if status in (429, 503) and attempt < s.retries:
                            wait_for = _retry_after(resp_headers)
                            wait = 1.0 if wait_for is None else wait_for
                            if wait <= s.max_retry_wait and deadline - time.monotonic() > wait:
                                attempt += 1
                                time.sleep(wait)
                                continue
                        if status in _REDIRECTS or status == 304:
                            return status, resp_headers, b"", head_bytes
                        body, wire = self._read(response, resp_headers, url, deadline)
                        return status, resp_headers, body, head_bytes + wire
                except _Refused as exc:
                    raise ResolverError(str(exc), temporary=False) from None
                except _Unresolvable as exc:
                    raise ResolverError(str(exc), temporary=True) from None
                except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                    wait = 0.25 * 2**attempt
                    if attempt < s.retries and deadline - time.monotonic() > wait:
                        attempt += 1
                        time.sleep(wait)
                        continue
                    raise ResolverError(
                        f"cannot connect to {host}: {exc or type(exc).__name__}", temporary=True
                    ) from None
                except httpcore.TimeoutException:
                    raise ResolverError(
                        f"{url} took longer than {s.timeout:g} s", temporary=True
                    ) from None
                except (httpcore.NetworkError, httpcore.ProtocolError) as exc:
                    raise ResolverError(f"{url}: {type(exc).__name__}: {exc}", True) from None
        finally:
            _DEADLINE.at = None
            slot.release()

    def _read(
        self, response: Any, headers: Mapping[str, str], url: str, deadline: float
    ) -> tuple[bytes, int]:
        """The decoded body and the bytes it took on the wire; the cap applies to the decoded
        size (a small gzip bomb is still refused) and the deadline to the whole read."""
        import httpcore

        cap = self.settings.max_bytes
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > cap:
            raise ResolverError(
                f"{url}: body of {int(declared):,} bytes is over the {cap:,}-byte cap",
                temporary=False,
            )
        coding = headers.get("content-encoding", "identity").strip().lower()
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
        total = wire = 0
        try:
            for chunk in response.iter_stream():
                wire += len(chunk)
                if decoder is not None:
                    data = decoder.decompress(chunk, cap + 1 - total)
                    if decoder.unconsumed_tail:
                        raise over
                else:
                    data = chunk
                total += len(data)
                if total > cap:
                    raise over
                if time.monotonic() > deadline:
                    raise slow
                chunks.append(data)
            if decoder is not None:
                tail = decoder.flush()
                total += len(tail)
                if total > cap:
                    raise over
                chunks.append(tail)
        except zlib.error as exc:
            raise ResolverError(f"{url}: body is not valid {coding}: {exc}", True) from None
        except httpcore.TimeoutException:  # a read reached the deadline (see _DeadlineStream)
            raise slow from None
        return b"".join(chunks), wire


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
