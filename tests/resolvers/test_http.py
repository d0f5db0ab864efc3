"""The guarded HTTP client against a real loopback server: limits, retries, receipts, the guard."""

from __future__ import annotations

import ast
import hashlib
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import pytest
from freezegun import freeze_time

from resolvers.base import ResolverError
from resolvers.http import HttpClient, HttpSettings, Unchanged
from tests.faults.hostile import Handler, Hostile
from tests.resolvers.loopback import Loopback, Route

ROOT = Path(__file__).resolve().parents[2]
LOOPBACK = ("127.0.0.0/8", "::1/128")


@pytest.fixture
def web() -> Iterator[Loopback]:
    with Loopback() as server:
        yield server


def _client(**overrides: object) -> HttpClient:
    options: dict[str, object] = {"timeout": 5.0, "allowed_networks": LOOPBACK}
    options.update(overrides)
    return HttpClient(HttpSettings(**options))  # type: ignore[arg-type]


def test_http_get_returns_body_and_records_receipt(web: Loopback) -> None:
    web.route("/a", "<p>hello</p>", etag='"v1"', last_modified="Mon, 01 Jan 2024 00:00:00 GMT")
    with _client() as client:
        http = client.fetcher()
        page = http.get(web.url + "/a", params={"q": "x y"})
    assert (page.status, page.text, page.content_type) == (200, "<p>hello</p>", "text/html")
    assert page.sha256 == hashlib.sha256(b"<p>hello</p>").hexdigest() and page.bytes == 12
    [record] = http.records
    assert record.url == web.url + "/a?q=x+y" and record.status == 200
    assert record.sha256 == page.sha256 and record.wire_bytes > record.bytes
    assert http.validators == ('"v1"', "Mon, 01 Jan 2024 00:00:00 GMT")
    assert web.seen[-1].headers["User-Agent"].startswith("forecast-tracker/")


def test_http_conditional_request_304_raises_unchanged(web: Loopback) -> None:
    web.route("/a", "body", etag='"v1"')
    with _client() as client:
        http = client.fetcher(etag='"v1"')
        with pytest.raises(Unchanged):
            http.get(web.url + "/a")
        assert http.records[0].unchanged and http.records[0].status == 304
        assert http.validators == ('"v1"', None)
        # Only the first fetch of a check is conditional.
        assert http.get(web.url + "/a").status == 200
        assert client.fetcher(etag='"old"').get(web.url + "/a").text == "body"


def test_http_if_modified_since_sent_from_stored_last_modified(web: Loopback) -> None:
    stamp = "Tue, 02 Jan 2024 00:00:00 GMT"
    web.route("/a", "body", last_modified=stamp)
    with _client() as client, pytest.raises(Unchanged):
        client.fetcher(last_modified=stamp).get(web.url + "/a")
    assert web.seen[-1].headers["If-Modified-Since"] == stamp


@pytest.mark.parametrize(("status", "temporary"), [(404, False), (410, False), (500, True)])
def test_http_error_status_raises_with_temporary_flag(
    web: Loopback, status: int, temporary: bool
) -> None:
    web.route("/a", "nope", status=status)
    with _client(retries=0) as client:
        http = client.fetcher()
        with pytest.raises(ResolverError) as caught:
            http.get(web.url + "/a")
    assert caught.value.temporary is temporary and f"HTTP {status}" in str(caught.value)
    assert http.records[-1].status == status


def test_http_allow_status_returns_the_error_page(web: Loopback) -> None:
    web.route("/a", "{}", status=404)
    with _client() as client:
        assert client.fetcher().get(web.url + "/a", allow_status=[404]).status == 404


@pytest.mark.parametrize(
    ("route", "timeout", "said", "within"),
    [
        ({"delay": 3}, 0.5, "longer than 0.5 s", 2.0),  # no answer in time
        ({"trickle": 0.1}, 1.0, "(slow body)", 2.5),  # each byte in time; the whole, 10 s
    ],
    ids=["late-answer", "slow-trickle"],
)
def test_http_deadline_covers_the_whole_request(
    web: Loopback, route: dict[str, float], timeout: float, said: str, within: float
) -> None:
    web.route("/slow", b"x" * 100, **route)
    with _client(timeout=timeout) as client:
        started = time.monotonic()
        with pytest.raises(ResolverError) as caught:
            client.fetcher().get(web.url + "/slow")
    assert caught.value.temporary and said in str(caught.value)
    assert time.monotonic() - started < within


def test_http_body_over_cap_refused_by_declared_length(web: Loopback) -> None:
    web.route("/big", b"x" * 2000)
    with _client(max_bytes=1000) as client, pytest.raises(ResolverError) as caught:
        client.fetcher().get(web.url + "/big")
    assert not caught.value.temporary and "cap" in str(caught.value)


def test_http_body_over_cap_refused_while_streaming(web: Loopback) -> None:
    web.route("/big", b"x" * 200_000, length=False)  # no Content-Length: read until close
    with _client(max_bytes=100_000) as client, pytest.raises(ResolverError) as caught:
        client.fetcher().get(web.url + "/big")
    assert not caught.value.temporary and "100,000-byte cap" in str(caught.value)


def test_http_redirect_loop_is_a_permanent_error(web: Loopback) -> None:
    web.route("/a", status=302, headers={"Location": "/b"})
    web.route("/b", status=301, headers={"Location": "/a"})
    with _client() as client, pytest.raises(ResolverError) as caught:
        client.fetcher().get(web.url + "/a")
    assert not caught.value.temporary and "redirect loop" in str(caught.value)


def test_http_redirects_followed_and_final_url_recorded(web: Loopback) -> None:
    web.route("/old", status=301, headers={"Location": "/new"})
    web.route("/new", "moved here")
    with _client() as client:
        http = client.fetcher()
        page = http.get(web.url + "/old")
    assert page.text == "moved here" and page.url == web.url + "/new"
    assert http.records[-1].requested == web.url + "/old"


def test_http_too_many_redirects(web: Loopback) -> None:
    for i in range(4):
        web.route(f"/r{i}", status=302, headers={"Location": f"/r{i + 1}"})
    web.route("/r4", "end")
    with _client(max_redirects=3) as client, pytest.raises(ResolverError) as caught:
        client.fetcher().get(web.url + "/r0")
    assert "more than 3 redirects" in str(caught.value)


def test_http_redirect_to_other_scheme_refused(web: Loopback) -> None:
    web.route("/a", status=302, headers={"Location": "file:///etc/passwd"})
    with _client() as client, pytest.raises(ResolverError) as caught:
        client.fetcher().get(web.url + "/a")
    assert not caught.value.temporary and "only http(s)" in str(caught.value)


def test_http_429_retry_after_is_honoured_then_succeeds(web: Loopback) -> None:
    web.route(
        "/rate",
        status=429,
        headers={"Retry-After": "1"},
        then=[Route(b"fine", content_type="text/plain")],
    )
    with _client() as client:
        started = time.monotonic()
        page = client.fetcher().get(web.url + "/rate")
    assert page.text == "fine" and web.hits["/rate"] == 2
    assert time.monotonic() - started >= 0.95


def test_http_long_retry_after_is_handed_to_the_runner(web: Loopback) -> None:
    web.route("/busy", status=503, headers={"Retry-After": "3600"})
    with _client(max_retry_wait=5) as client, pytest.raises(ResolverError) as caught:
        client.fetcher().get(web.url + "/busy")
    assert caught.value.temporary and caught.value.retry_after == 3600
    assert web.hits["/busy"] == 1


def test_http_503_without_retry_after_is_retried(web: Loopback) -> None:
    web.route("/flaky", status=503, then=[Route(b"ok", content_type="text/plain")])
    with _client() as client:
        assert client.fetcher().get(web.url + "/flaky").text == "ok"


def test_http_connect_refused_is_temporary() -> None:
    with Loopback() as gone:
        url = gone.url
    with _client(retries=1) as client, pytest.raises(ResolverError) as caught:
        client.fetcher().get(url + "/a")
    assert caught.value.temporary and "cannot connect" in str(caught.value)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9/",
        "http://localhost:9/",
        "http://[::1]:9/",
        "http://10.1.2.3/",
        "http://192.168.0.1/",
        "http://169.254.169.254/latest/meta-data/",
        "http://[fe80::1]/",
        "http://0.0.0.0/",
        "http://[::ffff:127.0.0.1]/",
    ],
)
def test_http_ssrf_guard_refuses_private_addresses(url: str) -> None:
    with HttpClient(HttpSettings(timeout=2)) as client, pytest.raises(ResolverError) as caught:
        client.fetcher().get(url)
    assert not caught.value.temporary and "refused to connect" in str(caught.value)


def test_http_ssrf_guard_checks_every_redirect_hop(web: Loopback) -> None:
    web.route("/hop", status=302, headers={"Location": "http://169.254.169.254/latest/"})
    with _client() as client:  # loopback allowed, link-local not
        http = client.fetcher()
        with pytest.raises(ResolverError) as caught:
            http.get(web.url + "/hop")
    assert "refused to connect to 169.254.169.254" in str(caught.value)
    assert http.records[-1].url == "http://169.254.169.254/latest/"


def test_http_allow_private_lifts_the_guard(web: Loopback) -> None:
    web.route("/a", "ok")
    with HttpClient(HttpSettings(timeout=2, allow_private=True)) as client:
        assert client.fetcher().get(web.url + "/a").text == "ok"


def test_http_per_host_limit_bounds_requests_in_flight(web: Loopback) -> None:
    web.route("/slow", "x", delay=0.3)
    errors: list[Exception] = []
    with _client(per_host=2) as client:

        def fetch() -> None:
            try:
                client.fetcher().get(web.url + "/slow")
            except Exception as exc:
                errors.append(exc)

        threads = [threading.Thread(target=fetch) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert not errors and web.hits["/slow"] == 6
    assert web.max_in_flight["/slow"] == 2


def test_http_invalid_json_is_a_temporary_error(web: Loopback) -> None:
    web.route("/api", "<html>maintenance</html>", content_type="application/json")
    with _client() as client:
        answer = client.fetcher().get(web.url + "/api")
    with pytest.raises(ResolverError) as caught:
        answer.json()
    assert caught.value.temporary and "invalid JSON" in str(caught.value)


def test_http_text_decodes_declared_and_meta_charsets(web: Loopback) -> None:
    body = "<html><meta charset='gb18030'><p>人工智能</p></html>".encode("gb18030")
    web.route("/gb", body, content_type="text/html")
    web.route("/latin", "café".encode("latin-1"), content_type="text/plain; charset=iso-8859-1")
    with _client() as client:
        assert "人工智能" in client.fetcher().get(web.url + "/gb").text
        assert client.fetcher().get(web.url + "/latin").text == "café"


def test_http_gzip_body_is_decoded_and_hashed_as_read(web: Loopback) -> None:
    import gzip

    web.route("/z", gzip.compress("人工智能 ".encode() * 100), headers={"Content-Encoding": "gzip"})
    with _client() as client:
        http = client.fetcher()
        page = http.get(web.url + "/z")
    assert page.text == "人工智能 " * 100
    assert web.seen[-1].headers["Accept-Encoding"] == "gzip, deflate"
    assert http.records[0].bytes == len(page.body) > http.records[0].wire_bytes - 200


def test_http_gzip_bomb_refused_at_the_cap(web: Loopback) -> None:
    import gzip

    web.route("/bomb", gzip.compress(b"0" * 5_000_000), headers={"Content-Encoding": "gzip"})
    with _client(max_bytes=1_000_000) as client, pytest.raises(ResolverError) as caught:
        client.fetcher().get(web.url + "/bomb")
    assert not caught.value.temporary and "1,000,000-byte cap" in str(caught.value)


def test_http_invalid_gzip_is_an_error(web: Loopback) -> None:
    web.route("/z", b"not gzip at all", headers={"Content-Encoding": "gzip"})
    with _client() as client, pytest.raises(ResolverError, match="not valid gzip"):
        client.fetcher().get(web.url + "/z")


# --- the transport: HTTP/1.1 framing and kept-alive connections, against a raw server -----------


def _keep_alive(*answers: bytes) -> Handler:
    """A handler answering successive requests on one connection, then closing it."""

    def answer(conn: socket.socket, stop: threading.Event) -> None:
        for i, data in enumerate(answers):
            if i:
                request = b""
                while b"\r\n\r\n" not in request:
                    more = conn.recv(4096)
                    if not more:
                        return
                    request += more
            conn.sendall(data)

    return answer


def _ok(body: bytes, *headers: str) -> bytes:
    lines = ["HTTP/1.1 200 OK", "Content-Type: text/plain", f"Content-Length: {len(body)}"]
    return ("\r\n".join([*lines, *headers]) + "\r\n\r\n").encode() + body


def test_http_connection_kept_alive_across_fetches() -> None:
    with Hostile() as server, _client() as client:
        server.route("/a", _keep_alive(_ok(b"one"), _ok(b"two"), _ok(b"three")))
        texts = [client.fetcher().get(server.url + "/a").text for _ in range(3)]
    assert texts == ["one", "two", "three"] and server.connections == 1


def test_http_304_and_redirect_keep_the_connection() -> None:
    not_modified = b'HTTP/1.1 304 Not Modified\r\nETag: "v1"\r\n\r\n'
    moved = b"HTTP/1.1 302 Found\r\nLocation: /b\r\nContent-Length: 5\r\n\r\nmoved"
    with Hostile() as server, _client() as client:
        server.route("/a", _keep_alive(not_modified, moved, _ok(b"here")))
        with pytest.raises(Unchanged):
            client.fetcher(etag='"v1"').get(server.url + "/a")
        assert client.fetcher().get(server.url + "/a").text == "here"
    assert server.connections == 1


@pytest.mark.parametrize("idle", [0.1, 1.2], ids=["used-at-once", "polled-first"])
def test_http_connection_closed_while_idle_is_replaced(idle: float) -> None:
    with Hostile() as server, _client() as client:
        server.route("/a", _keep_alive(_ok(b"first")))  # then the server closes it
        assert client.fetcher().get(server.url + "/a").text == "first"
        time.sleep(idle)
        assert client.fetcher().get(server.url + "/a").text == "first"
    assert server.connections == 2


def test_http_unasked_answer_on_an_idle_connection_is_not_taken_for_the_next() -> None:
    timeout = b"HTTP/1.1 408 Request Timeout\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"

    def answer_then_time_out(conn: socket.socket, stop: threading.Event) -> None:
        conn.sendall(_ok(b"first"))
        stop.wait(1.1)
        conn.sendall(timeout)

    with Hostile() as server, _client() as client:
        server.route("/a", answer_then_time_out)
        assert client.fetcher().get(server.url + "/a").text == "first"
        time.sleep(1.3)
        assert client.fetcher().get(server.url + "/a").text == "first"
    assert server.connections == 2


def test_http_chunked_body_is_decoded_and_trailers_skipped() -> None:
    answer = (
        b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"5\r\nhello\r\n6;name=value\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n"
    )
    with Hostile() as server, _client() as client:
        server.route("/c", _keep_alive(answer, _ok(b"again")))
        http = client.fetcher()
        assert http.get(server.url + "/c").text == "hello world"
        assert http.records[0].bytes == 11 and http.records[0].wire_bytes == len(answer)
        assert client.fetcher().get(server.url + "/c").text == "again"
    assert server.connections == 1


def test_http_body_until_close_without_length() -> None:
    answer = b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nall of it"
    with Hostile() as server, _client() as client:
        server.route("/old", _keep_alive(answer))
        assert client.fetcher().get(server.url + "/old").text == "all of it"


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n", "chunk header"),
        (b"ICY 200 OK\r\n\r\nstream", "illegal status line"),
        (b"HTTP/1.1 200 OK\r\nbad header\r\n\r\n", "illegal header line"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 5, 6\r\n\r\nhello", "Content-Length"),
        (b"HTTP/1.1 200 OK\r\nX-Long: " + b"a" * 200_000 + b"\r\n\r\n", "too long"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\nConnection: close\r\n\r\nshort", "complete"),
        (b"", "disconnected without sending a response"),
    ],
    ids=["bad-chunk", "not-http", "bad-header", "two-lengths", "huge-head", "short", "silent"],
)
def test_http_broken_framing_is_a_temporary_error(answer: bytes, error: str) -> None:
    with Hostile() as server, _client(retries=0) as client:
        server.route("/x", _keep_alive(answer))
        with pytest.raises(ResolverError) as caught:
            client.fetcher().get(server.url + "/x")
    assert caught.value.temporary and "bad HTTP answer" in str(caught.value)
    assert error in str(caught.value)


@pytest.mark.parametrize(
    "headers",
    [{"X-Token": "a\r\nX-Evil: 1"}, {"Bad Name": "x"}, {"Host": "elsewhere.example"}],
    ids=["line-break", "not-a-token", "client-header"],
)
def test_http_request_header_that_would_break_the_request_refused(
    headers: dict[str, str],
) -> None:
    with Hostile() as server, _client() as client:
        server.route("/a", _keep_alive(_ok(b"x")))
        with pytest.raises(ResolverError) as caught:
            client.fetcher().get(server.url + "/a", headers=headers)
    assert not caught.value.temporary and server.connections == 0


def test_http_kind_headers_replace_the_defaults(web: Loopback) -> None:
    web.route("/a", "ok")
    with _client() as client:
        client.fetcher().get(web.url + "/a", headers={"Accept": "application/json"})
    sent = web.seen[-1].headers
    assert sent["Accept"] == "application/json" and sent["Host"] == web.url.split("//")[1]
    assert sent["User-Agent"].startswith("forecast-tracker/")


# --- redirect hygiene (issue 12, bug 1) and the one clock (bug 6) ----------------------------


def test_http_redirect_to_another_origin_drops_authorization_and_cookies(web: Loopback) -> None:
    with Loopback("127.0.0.2") as other:
        other.route("/landing", "there")
        web.route(
            "/start",
            status=302,
            headers={"Location": other.url + "/landing", "Set-Cookie": "session=s3cret; Path=/"},
        )
        with _client() as client:
            page = client.fetcher().get(
                web.url + "/start", headers={"Authorization": "Token abc", "Cookie": "kind=1"}
            )
        sent = other.seen[-1].headers
    assert page.text == "there" and page.url == other.url + "/landing"
    assert web.seen[-1].headers["Authorization"] == "Token abc"
    assert "Authorization" not in sent and "Cookie" not in sent


def test_http_redirect_within_the_origin_keeps_authorization_and_carries_cookies(
    web: Loopback,
) -> None:
    web.route("/login", status=302, headers={"Location": "/home", "Set-Cookie": "session=abc"})
    web.route("/home", "welcome")
    with _client() as client:
        page = client.fetcher().get(web.url + "/login", headers={"Authorization": "Token abc"})
    sent = web.seen[-1].headers
    assert page.text == "welcome"
    assert sent["Authorization"] == "Token abc" and sent["Cookie"] == "session=abc"


def test_http_retry_after_date_is_read_against_the_one_clock(web: Loopback) -> None:
    frozen = datetime(2031, 1, 1, 0, 0, tzinfo=UTC)
    later = format_datetime(frozen + timedelta(hours=2), usegmt=True)
    web.route("/busy", status=503, headers={"Retry-After": later})
    client = _client(max_retry_wait=5)
    with freeze_time(frozen, tick=False), client, pytest.raises(ResolverError) as caught:
        client.fetcher().get(web.url + "/busy")
    assert caught.value.retry_after == 7200 and web.hits["/busy"] == 1


def test_resolvers_take_the_time_of_day_only_from_the_one_clock() -> None:
    """``predictions.clock.now`` is the one clock (tests freeze it); no resolver reads another."""
    offenders = []
    for path in sorted((ROOT / "resolvers").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Attribute) and node.attr in ("now", "utcnow", "today", "time"):
                owner = node.value
                if isinstance(owner, ast.Name) and owner.id in ("datetime", "date", "time"):
                    offenders.append(f"{path.name}:{node.lineno} {owner.id}.{node.attr}")
    assert not offenders


# --- what httpx brings: proxies from the environment, other certificate roots ------------------


def test_http_proxy_from_the_environment_carries_requests_and_the_guard_checks_the_url_host(
    web: Loopback, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy", "http_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", web.url)  # a proxy on loopback: configured, so not refused
    web.route("/page", "via the proxy")
    with HttpClient(HttpSettings(timeout=5)) as client:
        page = client.fetcher().get("http://source.invalid/page")
        with pytest.raises(ResolverError) as caught:
            client.fetcher().get("http://169.254.169.254/latest/")
    assert page.text == "via the proxy" and web.seen[0].path == "http://source.invalid/page"
    assert not caught.value.temporary
    assert "refused to connect to 169.254.169.254" in str(caught.value)
    assert len(web.seen) == 1  # the refused request never reached the proxy


def test_http_no_proxy_hosts_are_fetched_directly_through_the_guard(
    web: Loopback, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTP_PROXY", "http://proxy.invalid:3128")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    web.route("/a", "direct")
    with _client() as client:
        assert client.fetcher().get(web.url + "/a").text == "direct"
    with HttpClient(HttpSettings(timeout=5)) as client, pytest.raises(ResolverError) as caught:
        client.fetcher().get(web.url + "/a")
    assert "refused to connect to 127.0.0.1" in str(caught.value)


def test_http_ssl_cert_file_names_other_roots(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with Hostile("127.0.0.2", tls=True) as server:
        server.route("/a", _keep_alive(_ok(b"trusted")))
        with _client() as client, pytest.raises(ResolverError, match="CERTIFICATE_VERIFY_FAILED"):
            client.fetcher().get(server.url + "/a")
        roots = tmp_path / "roots.pem"
        roots.write_text(ssl.get_server_certificate(("127.0.0.2", server.port)))
        monkeypatch.setenv("SSL_CERT_FILE", str(roots))
        with _client() as client:
            assert client.fetcher().get(server.url + "/a").text == "trusted"


@pytest.mark.parametrize("host", ["no-such-host.invalid", "a" * 64 + ".example"])
def test_http_host_that_does_not_resolve_is_a_temporary_error(host: str) -> None:
    with _client(retries=0) as client, pytest.raises(ResolverError) as caught:
        client.fetcher().get(f"http://{host}/")
    assert caught.value.temporary and f"cannot resolve {host}" in str(caught.value)
