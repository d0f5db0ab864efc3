"""Hostile sources: a loopback server misbehaving on purpose, checked through the real
``tracker sweep`` / ``tracker check`` of a forecast whose check is in ``mode = auto``.

Every case must end within its deadline (wall time asserted), record a clear error in the
evidence, back off (``next_check_at`` moves out) and change no forecast. The server sits on
127.0.0.2, the only network ``resolvers.allowed_networks`` lets through, so the SSRF guard stays on
for every other address: redirects to 127.0.0.1, 10.0.0.1 and 169.254.169.254 are refused before
any connection is made.
"""

from __future__ import annotations

import gzip
import json
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.engine import Engine

from predictions.clock import now
from predictions.db import read_session
from predictions.models import Amendment, Check, Estimate, Evidence, Forecast
from tests.conftest import CliInvoke
from tests.faults.hostile import Hostile, head, reset

HOST = "127.0.0.2"
TIMEOUT = 2.0
CAP = 5_000_000
BOMB = gzip.compress(b"\0" * 64_000_000, compresslevel=9)  # 64 MB of zeros in ~62 KB


def _endless_fast(conn: socket.socket, stop: threading.Event) -> None:
    conn.sendall(head(200, {"Content-Type": "application/json"}) + b'{"a": [')
    while not stop.is_set():
        conn.sendall(b"1," * 32_768)


def _endless_slow(conn: socket.socket, stop: threading.Event) -> None:
    conn.sendall(head(200, {"Content-Type": "text/html"}) + b"<html><body>")
    while not stop.wait(0.05):
        conn.sendall(b"<p>still going</p>")


def _trickle(conn: socket.socket, stop: threading.Event) -> None:
    body = b"<html><body>" + b"x" * 100 + b"</body></html>"
    conn.sendall(head(200, {"Content-Type": "text/html"}, length=len(body)))
    for i in range(len(body)):
        if stop.wait(1.0):
            return
        conn.sendall(body[i : i + 1])


def _stall(conn: socket.socket, stop: threading.Event) -> None:
    """Headers at once, a little body just before the deadline, then nothing for 10 s."""
    conn.sendall(head(200, {"Content-Type": "text/html"}, length=1000))
    if not stop.wait(TIMEOUT - 0.3):
        conn.sendall(b"<html><body>")
        stop.wait(10)


def _big_json(declared: bool) -> Callable[[socket.socket, threading.Event], None]:
    body = b'{"a": "' + b"x" * 30_000_000 + b'"}'

    def answer(conn: socket.socket, stop: threading.Event) -> None:
        length = len(body) if declared else None
        conn.sendall(head(200, {"Content-Type": "application/json"}, length=length))
        view = memoryview(body)
        for start in range(0, len(body), 1 << 20):
            if stop.is_set():
                return
            conn.sendall(view[start : start + (1 << 20)])

    return answer


def _fixed(
    status: int, body: bytes, headers: dict[str, str]
) -> Callable[[socket.socket, threading.Event], None]:
    def answer(conn: socket.socket, stop: threading.Event) -> None:
        conn.sendall(head(status, headers, length=len(body)) + body)

    return answer


def _reset_mid_body(conn: socket.socket, stop: threading.Event) -> None:
    conn.sendall(head(200, {"Content-Type": "text/html"}, length=10_000) + b"<html>" + b"y" * 500)
    time.sleep(0.2)
    reset(conn)


@dataclass(frozen=True)
class Case:
    """One misbehaviour: what the server does, the check spec and the error expected."""

    name: str
    spec: str  # {url} is replaced by the route's URL
    answer: Callable[[socket.socket, threading.Event], None] | None
    error: str
    within: float
    min_delay: timedelta = timedelta(minutes=4)


def _redirect(target: str) -> Callable[[socket.socket, threading.Event], None]:
    return _fixed(302, b"", {"Location": target})


PAGE = "page:url={url},contains=standard,mode=auto"
JSON = "json:url={url},path=a,mode=auto"
CASES = [
    Case("endless-fast", JSON, _endless_fast, "body over the 5,000,000-byte cap", TIMEOUT + 3),
    Case("endless-slow", PAGE, _endless_slow, "took longer than 2 s", TIMEOUT + 1.5),
    Case("trickle", PAGE, _trickle, "took longer than 2 s", TIMEOUT + 1.5),
    Case("stall-before-deadline", PAGE, _stall, "took longer than 2 s", TIMEOUT + 1.5),
    Case("json-30mb", JSON, _big_json(True), "body of 30,000,009 bytes is over the", 3),
    Case("json-30mb-undeclared", JSON, _big_json(False), "over the 5,000,000-byte cap", 4),
    Case(
        "gzip-bomb",
        JSON,
        _fixed(200, BOMB, {"Content-Type": "application/json", "Content-Encoding": "gzip"}),
        "body over the 5,000,000-byte cap",
        3,
    ),
    Case(
        "invalid-utf8",
        JSON,
        _fixed(200, b'{"a": "\xff\xfe\xc3("}', {"Content-Type": "application/json"}),
        "invalid JSON from",
        3,
    ),
    Case(
        "wrong-type-page",
        PAGE,
        _fixed(200, b"\x89PNG\r\n\x1a\n standard", {"Content-Type": "image/png"}),
        "is image/png, not an HTML or text page",
        3,
    ),
    Case(
        "wrong-type-json",
        JSON,
        _fixed(200, b"<html><body>a standard</body></html>", {"Content-Type": "text/html"}),
        "invalid JSON from",
        3,
    ),
    Case("redirect-loop", PAGE, None, "redirect loop at", 3),
    Case("redirect-loopback", PAGE, None, "refused to connect to 127.0.0.1", 3),
    Case("redirect-private", PAGE, None, "refused to connect to 10.0.0.1", 3),
    Case("redirect-metadata", PAGE, None, "refused to connect to 169.254.169.254", 3),
    Case("redirect-decimal-ip", PAGE, None, "refused to connect to 2130706433 (127.0.0.1)", 3),
    Case("redirect-mapped-v6", PAGE, None, "refused to connect to ::ffff:127.0.0.1", 3),
    Case("redirect-unspecified", PAGE, None, "refused to connect to 0.0.0.0", 3),
    Case(
        "429-retry-after",
        PAGE,
        _fixed(429, b"slow down", {"Retry-After": "7200", "Content-Type": "text/plain"}),
        "HTTP 429 from",
        3,
        min_delay=timedelta(hours=2),
    ),
    Case("reset-mid-body", PAGE, _reset_mid_body, "Connection reset by peer", 3),
]


TARGETS = {
    "redirect-decimal-ip": "http://2130706433:{port}/secret",
    "redirect-mapped-v6": "http://[::ffff:127.0.0.1]:{port}/secret",
    "redirect-unspecified": "http://0.0.0.0:{port}/secret",
}


@pytest.fixture
def tracker(cli: CliInvoke) -> CliInvoke:
    """The CLI with the guard on, only 127.0.0.2 let through, and a 2 s deadline."""
    for key, value in (
        ("resolvers.allowed_networks", f"{HOST}/32"),
        ("resolvers.timeout", str(TIMEOUT)),
    ):
        result = cli("config", "set", key, value)
        assert result.exit_code == 0, result.output
    return cli


@pytest.fixture
def bystander() -> Iterator[Hostile]:
    """A server on 127.0.0.1 that a refused redirect must never reach."""
    with Hostile("127.0.0.1") as server:
        server.route("/secret", _fixed(200, b"standard", {"Content-Type": "text/plain"}))
        yield server


def _snapshot(engine: Engine, fid: int) -> tuple[Any, ...]:
    with read_session(engine) as session:
        f = session.get(Forecast, fid)
        assert f is not None
        row = (f.status, f.outcome, f.resolved_at, f.title, f.due)
        estimates = session.scalars(select(Estimate.id).where(Estimate.forecast_id == fid)).all()
        amendments = session.scalars(select(Amendment.id).where(Amendment.forecast_id == fid)).all()
        return row, tuple(estimates), tuple(amendments)


def _add(tracker: CliInvoke, spec: str) -> int:
    result = tracker(
        "add", "A national AI standard", "-p", "30%", "--due", "+1y",
        "--criteria", "Resolves YES when the standard is published.",
        "--check", spec, "--json",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    return int(json.loads(result.output)["id"])


def _run_case(
    tracker: CliInvoke, engine: Engine, server: Hostile, case: Case, command: str
) -> tuple[float, Evidence, Check]:
    path = "/" + case.name
    if case.answer is not None:
        server.route(path, case.answer)
    url = server.url + path
    fid = _add(tracker, case.spec.format(url=url))
    before = _snapshot(engine, fid)
    started = now()
    clock = time.monotonic()
    args = ["sweep"] if command == "sweep" else ["check", str(fid)]
    result = tracker(*args)
    elapsed = time.monotonic() - clock
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    assert case.error in result.output, result.output
    assert elapsed < case.within, f"{case.name} took {elapsed:.1f} s"
    assert _snapshot(engine, fid) == before
    with read_session(engine) as session:
        [evidence] = session.scalars(select(Evidence).where(Evidence.forecast_id == fid)).all()
        [check] = session.scalars(select(Check).where(Check.forecast_id == fid)).all()
        session.expunge_all()
    assert evidence.verdict == "error" and case.error in (evidence.error or "")
    assert check.failures == 1
    assert check.next_check_at >= started + case.min_delay, (check.next_check_at, started)
    return elapsed, evidence, check


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_hostile_source_ends_in_time_records_error_and_backs_off(
    tracker: CliInvoke, engine: Engine, bystander: Hostile, case: Case
) -> None:
    with Hostile(HOST) as server:
        if case.name == "redirect-loop":
            server.route("/redirect-loop", _redirect("/redirect-loop-2"))
            server.route("/redirect-loop-2", _redirect("/redirect-loop"))
        elif case.name == "redirect-loopback":
            server.route("/" + case.name, _redirect(bystander.url + "/secret"))
        elif case.name == "redirect-private":
            server.route("/" + case.name, _redirect("http://10.0.0.1/latest"))
        elif case.name == "redirect-metadata":
            server.route("/" + case.name, _redirect("http://169.254.169.254/latest/meta-data/iam"))
        elif case.name in TARGETS:
            server.route("/" + case.name, _redirect(TARGETS[case.name].format(port=bystander.port)))
        _run_case(tracker, engine, server, case, "sweep")
        if case.name.startswith("redirect-") and case.name != "redirect-loop":
            assert server.hits["/" + case.name] == 1
    assert bystander.connections == 0


@pytest.mark.parametrize("case", [CASES[2], CASES[10], CASES[18]], ids=lambda c: c.name)
def test_hostile_source_through_tracker_check(
    tracker: CliInvoke, engine: Engine, case: Case
) -> None:
    with Hostile(HOST) as server:
        if case.name == "redirect-loop":
            server.route("/redirect-loop", _redirect("/redirect-loop-2"))
            server.route("/redirect-loop-2", _redirect("/redirect-loop"))
        _run_case(tracker, engine, server, case, "check")


def test_hostile_source_self_signed_tls_refused(tracker: CliInvoke, engine: Engine) -> None:
    with Hostile(HOST, tls=True) as server:
        case = Case(
            "tls",
            PAGE,
            _fixed(200, b"standard", {"Content-Type": "text/plain"}),
            "CERTIFICATE_VERIFY_FAILED",
            TIMEOUT + 2,
        )
        _, evidence, _ = _run_case(tracker, engine, server, case, "sweep")
        assert server.hits["/tls"] == 0  # the handshake failed: no request was ever sent
        assert evidence.http_status is None


def test_hostile_source_refused_config_value_is_one_error_line(cli: CliInvoke) -> None:
    """A bad network is refused at ``config set`` (the file unchanged) and, written into the file
    by hand, by the sweep that reads it: the same one line, exit 2, nothing checked."""
    line = (
        "Error: resolvers.allowed_networks: got '10.0.0.0/33', expected CIDR networks "
        "such as 10.1.0.0/16\n"
    )
    refused = cli("config", "set", "resolvers.allowed_networks", "10.0.0.0/33")
    assert (refused.exit_code, refused.output) == (2, line)
    config = Path(os.environ["TRACKER_CONFIG"])
    assert "10.0.0.0/33" not in (config.read_text() if config.exists() else "")
    _add(cli, "page:url=https://example.org/,contains=x")
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text('[resolvers]\nallowed_networks = "10.0.0.0/33"\n', encoding="utf-8")
    result = cli("sweep")
    assert (result.exit_code, result.output) == (2, line)
