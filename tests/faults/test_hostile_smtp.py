"""Hostile SMTP servers against the real ``tracker notify``: 421 on connect, 451 then 250, 550 for
one of two recipients, a server that accepts the connection and never answers, a connection
dropped after DATA, 554 to the message.

The server is a raw socket SMTP server (aiosmtpd cannot be told to stay silent or to drop a
connection mid-transaction). Each connection follows the next behaviour of its script, then
plain "ok". ``notify`` is run repeatedly at frozen times a few minutes apart (the outbox retries
after 1, 2, 4 ... minutes); every report must be accepted exactly once (counted by the server,
by Message-ID) or be marked failed with the server's words, and never be sent again.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import pytest
from freezegun import freeze_time

from tests.conftest import CliInvoke

T0 = datetime(2026, 5, 4, 12, 0)
CRITERIA = "Resolves YES if the model card is published with open weights."


def _clock() -> float:
    """Real elapsed time, untouched by freezegun."""
    return time.clock_gettime(time.CLOCK_MONOTONIC)


@dataclass
class Accepted:
    """A message the server answered 250 to."""

    recipients: list[str]
    message_id: str


@dataclass
class RawSmtp:
    """A scripted SMTP server on 127.0.0.1. ``script`` lists one behaviour per connection:
    ``ok``, ``421`` (refuse at the greeting), ``silent`` (never say anything), ``451-data``
    (answer the message with 451), ``554-data``, ``drop-after-data`` (read the message, then
    close without a reply). ``refuse`` maps recipients to RCPT replies."""

    script: list[str] = field(default_factory=list)
    refuse: dict[str, str] = field(default_factory=dict)
    accepted: list[Accepted] = field(default_factory=list)
    connections: int = 0

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.05)
        self._threads: list[threading.Thread] = []
        self._main = threading.Thread(target=self._serve, daemon=True)

    @property
    def port(self) -> int:
        """The port it listens on."""
        return int(self._listener.getsockname()[1])

    def __enter__(self) -> RawSmtp:
        self._main.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._main.join(timeout=5)
        self._listener.close()
        for thread in self._threads:
            thread.join(timeout=5)

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            behaviour = self.script.pop(0) if self.script else "ok"
            self.connections += 1
            thread = threading.Thread(target=self._session, args=(conn, behaviour), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _session(self, conn: socket.socket, behaviour: str) -> None:
        with conn:
            conn.settimeout(10)
            if behaviour == "silent":
                while not self._stop.wait(0.05):
                    pass
                return
            if behaviour == "421":
                conn.sendall(b"421 4.3.2 mail.example.org busy, try again later\r\n")
                return
            reader = conn.makefile("rb")
            conn.sendall(b"220 mail.example.org ESMTP hostile\r\n")
            recipients: list[str] = []
            try:
                while True:
                    line = reader.readline()
                    if not line:
                        return
                    verb = line[:4].upper()
                    if verb in (b"EHLO", b"HELO"):
                        conn.sendall(b"250-mail.example.org\r\n250 8BITMIME\r\n")
                    elif verb == b"MAIL":
                        recipients = []
                        conn.sendall(b"250 2.1.0 OK\r\n")
                    elif verb == b"RCPT":
                        address = line.split(b":", 1)[1].strip().split(b" ")[0].strip(b"<>")
                        text = address.decode()
                        if text in self.refuse:
                            conn.sendall(self.refuse[text].encode() + b"\r\n")
                        else:
                            recipients.append(text)
                            conn.sendall(b"250 2.1.5 OK\r\n")
                    elif verb == b"DATA":
                        conn.sendall(b"354 go ahead\r\n")
                        content = b""
                        while not content.endswith(b"\r\n.\r\n"):
                            chunk = reader.readline()
                            if not chunk:
                                return
                            content += chunk
                        if behaviour == "drop-after-data":
                            return
                        if behaviour == "451-data":
                            conn.sendall(b"451 4.3.0 Temporary local problem, try later\r\n")
                            continue
                        if behaviour == "554-data":
                            conn.sendall(b"554 5.7.1 Message rejected as spam\r\n")
                            continue
                        self.accepted.append(Accepted(list(recipients), _message_id(content)))
                        conn.sendall(b"250 2.0.0 queued\r\n")
                    elif verb == b"RSET" or verb == b"NOOP":
                        conn.sendall(b"250 OK\r\n")
                    elif verb == b"QUIT":
                        conn.sendall(b"221 bye\r\n")
                        return
                    else:
                        conn.sendall(b"502 5.5.2 not implemented\r\n")
            except OSError:
                return


def _message_id(content: bytes) -> str:
    for line in content.split(b"\r\n"):
        if line.lower().startswith(b"message-id:"):
            return line.split(b":", 1)[1].strip().decode()
    return ""


@pytest.fixture
def configured(cli: CliInvoke) -> Iterator[CliInvoke]:
    """The CLI sending to two recipients over plain SMTP with a 1 s timeout."""
    for key, value in (
        ("notify.time", "00:00"),
        ("email.to", "me@example.org, team@example.org"),
        ("smtp.host", "127.0.0.1"),
        ("smtp.security", "none"),
        ("smtp.timeout", "1"),
    ):
        result = cli("config", "set", key, value)
        assert result.exit_code == 0, result.output
    with freeze_time(T0):
        added = cli("add", "Open weights of the model", "-p", "60%", "--due", "+1d",
                    "--criteria", CRITERIA)  # fmt: skip
    assert added.exit_code == 0, added.output
    yield cli


def _notify_runs(cli: CliInvoke, server: RawSmtp, minutes: list[int]) -> list[tuple[int, float]]:
    assert cli("config", "set", "smtp.port", str(server.port)).exit_code == 0
    runs = []
    for minute in minutes:
        with freeze_time(T0 + timedelta(minutes=minute)):
            started = _clock()
            result = cli("notify")
            runs.append((result.exit_code, _clock() - started))
            assert "Traceback" not in result.output
    return runs


def _outbox(cli: CliInvoke) -> list[dict[str, object]]:
    result = cli("outbox", "--status", "all", "--json")
    assert result.exit_code == 0, result.output
    records: list[dict[str, object]] = json.loads(result.stdout)
    return records


RUNS = [0, 2, 10, 30, 120]


@pytest.mark.parametrize("first", ["421", "451-data", "drop-after-data", "silent"])
def test_hostile_smtp_temporary_failure_then_delivered_exactly_once(
    configured: CliInvoke, first: str
) -> None:
    with RawSmtp(script=[first]) as server:
        runs = _notify_runs(configured, server, RUNS)
    [record] = _outbox(configured)
    assert record["status"] == "sent", record
    assert [code for code, _ in runs] == [1, 0, 0, 0, 0]
    assert all(seconds < 5 for _, seconds in runs), runs  # smtp.timeout is 1 s
    [got] = server.accepted
    assert got.message_id == record["message_id"]
    assert sorted(got.recipients) == ["me@example.org", "team@example.org"]
    assert server.connections == 2  # one failed try, one delivery, then nothing more to send


def test_hostile_smtp_silent_server_is_ended_by_the_timeout(configured: CliInvoke) -> None:
    with RawSmtp(script=["silent"]) as server:
        assert configured("config", "set", "smtp.port", str(server.port)).exit_code == 0
        with freeze_time(T0):
            started = _clock()
            result = configured("notify")
            elapsed = _clock() - started
    assert result.exit_code == 1
    assert 0.9 < elapsed < 4, elapsed
    assert "will retry" in result.output and "timed out" in result.output
    [record] = _outbox(configured)
    assert record["status"] == "queued" and "timed out" in str(record["last_error"])


def test_hostile_smtp_421_words_are_kept(configured: CliInvoke) -> None:
    with RawSmtp(script=["421"]) as server:
        _notify_runs(configured, server, [0])
    [record] = _outbox(configured)
    assert record["status"] == "queued"
    assert "421 4.3.2 mail.example.org busy, try again later" in str(record["last_error"])
    assert not server.accepted


def test_hostile_smtp_550_for_one_of_two_recipients_is_sent_once_and_noted(
    configured: CliInvoke,
) -> None:
    refuse = {"team@example.org": "550 5.1.1 team@example.org: user unknown"}
    with RawSmtp(refuse=refuse) as server:
        runs = _notify_runs(configured, server, RUNS)
    [record] = _outbox(configured)
    assert record["status"] == "sent"
    assert "team@example.org: 550 5.1.1 team@example.org: user unknown" in str(record["last_error"])
    [got] = server.accepted
    assert got.recipients == ["me@example.org"]
    assert runs[0][0] == 1 and all(code == 0 for code, _ in runs[1:])


def test_hostile_smtp_554_is_marked_failed_with_the_server_words_and_never_resent(
    configured: CliInvoke,
) -> None:
    with RawSmtp(script=["554-data"]) as server:
        runs = _notify_runs(configured, server, RUNS)
    [record] = _outbox(configured)
    assert record["status"] == "failed"
    assert record["last_error"] == "554 5.7.1 Message rejected as spam"
    assert not server.accepted and server.connections == 1
    assert runs[0][0] == 1
