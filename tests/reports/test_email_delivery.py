"""The outbox and SMTP delivery against a real aiosmtpd server on loopback, on both databases."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.engine import Engine

from predictions.db import read_session, write_session
from predictions.models import Outbox
from reports.mail import Rendered, make_message
from reports.outbox import EmlTransport, SmtpTransport, backoff, deliver, list_messages, queue
from tests.mailserver import Handler, MailServer, free_port, make_certificate

T0 = datetime(2026, 3, 2, 7, 0)
SENDER = "tracker@example.org"
TO = ("alice@example.org", "team@example.org")


@pytest.fixture(scope="module")
def cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return make_certificate(tmp_path_factory.mktemp("tls"))


def _message(title: str = "Qwen4 ships") -> Rendered:
    return Rendered(
        subject=f"[tracker] due today - {title}",
        text=f"#1 {title}\nresolve: tracker resolve 1 yes\n",
        html=f"<p>#1 {title}</p>",
    )


def _queue(engine: Engine, key: str = "daily:alice:2026-03-02", **kw: object) -> int | None:
    with write_session(engine) as session:
        return queue(
            session,
            dedupe_key=key,
            kind="daily",
            recipients=kw.pop("recipients", TO),  # type: ignore[arg-type]
            sender=SENDER,
            message=kw.pop("message", _message()),  # type: ignore[arg-type]
            now=T0,
        )


def _row(engine: Engine, row_id: int) -> Outbox:
    with read_session(engine) as session:
        row = session.get(Outbox, row_id)
        assert row is not None
        return row


def _smtp(port: int, security: str = "none", cafile: Path | None = None) -> SmtpTransport:
    return SmtpTransport(
        "127.0.0.1",
        port,
        security=security,
        timeout=5,
        cafile=str(cafile) if cafile else None,
    )


def test_outbox_queue_same_dedupe_key_is_queued_once(engine: Engine) -> None:
    first = _queue(engine)
    second = _queue(engine)
    assert first is not None
    assert second is None
    with read_session(engine) as session:
        assert len(session.scalars(select(Outbox)).all()) == 1


def test_smtp_plain_delivers_recipients_subject_and_both_parts(engine: Engine) -> None:
    row_id = _queue(engine)
    assert row_id is not None
    with MailServer() as server:
        report = deliver(engine, _smtp(server.port), sender=SENDER, worker="w1", now=T0)
    assert report.sent == [row_id] and report.ok
    [got] = server.received
    assert got.mail_from == SENDER
    assert sorted(got.rcpt_tos) == sorted(TO)
    msg = got.message
    assert msg["Subject"] == "[tracker] due today - Qwen4 ships"
    assert msg.get_content_type() == "multipart/alternative"
    parts = [p.get_content_type() for p in msg.iter_parts()]
    assert parts == ["text/plain", "text/html"]
    plain = msg.get_body(("plain",))
    html = msg.get_body(("html",))
    assert plain is not None and "tracker resolve 1 yes" in plain.get_content()
    assert html is not None and "<p>#1 Qwen4 ships</p>" in html.get_content()
    row = _row(engine, row_id)
    assert row.sent_at == T0 and row.attempts == 1 and row.last_error is None
    assert msg["Message-ID"] == row.message_id


def test_smtp_second_delivery_run_sends_nothing_again(engine: Engine) -> None:
    _queue(engine)
    with MailServer() as server:
        deliver(engine, _smtp(server.port), sender=SENDER, worker="w1", now=T0)
        again = deliver(
            engine, _smtp(server.port), sender=SENDER, worker="w2", now=T0 + timedelta(hours=1)
        )
    assert again.sent == []
    assert len(server.received) == 1


def test_smtp_451_then_250_delivers_once(engine: Engine) -> None:
    row_id = _queue(engine)
    assert row_id is not None
    handler = Handler(data_replies=["451 4.3.0 Try again later", "250 OK"])
    with MailServer(handler=handler) as server:
        first = deliver(engine, _smtp(server.port), sender=SENDER, worker="w1", now=T0)
        assert first.retrying == [row_id] and not server.received
        row = _row(engine, row_id)
        assert row.last_error is not None and row.last_error.startswith("451")
        assert row.next_attempt_at == T0 + backoff(1)
        early = deliver(
            engine, _smtp(server.port), sender=SENDER, worker="w1", now=T0 + timedelta(seconds=30)
        )
        assert early.sent == [] and handler.data_attempts == 1
        later = T0 + backoff(1)
        second = deliver(engine, _smtp(server.port), sender=SENDER, worker="w1", now=later)
        third = deliver(
            engine, _smtp(server.port), sender=SENDER, worker="w1", now=later + timedelta(hours=2)
        )
    assert second.sent == [row_id] and third.sent == []
    assert len(server.received) == 1
    row = _row(engine, row_id)
    assert row.attempts == 2 and row.sent_at == later


def test_smtp_server_down_then_up_delivers_once(engine: Engine) -> None:
    first_id = _queue(engine, "daily:alice:2026-03-02")
    second_id = _queue(engine, "daily:bob:2026-03-02")
    port = free_port()
    down = deliver(engine, _smtp(port), sender=SENDER, worker="w1", now=T0)
    assert sorted(down.retrying) == sorted([first_id, second_id])
    assert "127.0.0.1" in (_row(engine, first_id or 0).last_error or "")
    hours_later = T0 + timedelta(hours=5)
    with MailServer(port=port) as server:
        up = deliver(engine, _smtp(port), sender=SENDER, worker="w1", now=hours_later)
        again = deliver(
            engine, _smtp(port), sender=SENDER, worker="w1", now=hours_later + timedelta(days=1)
        )
    assert sorted(up.sent) == sorted([first_id, second_id]) and again.sent == []
    assert len(server.received) == 2


def test_smtp_550_marks_failed_with_the_server_text(engine: Engine) -> None:
    row_id = _queue(engine)
    assert row_id is not None
    handler = Handler(data_replies=["550 5.7.1 Message rejected as spam"])
    with MailServer(handler=handler) as server:
        report = deliver(engine, _smtp(server.port), sender=SENDER, worker="w1", now=T0)
        later = deliver(
            engine, _smtp(server.port), sender=SENDER, worker="w1", now=T0 + timedelta(days=1)
        )
    assert report.failed == [row_id] and later.sent == [] and not server.received
    row = _row(engine, row_id)
    assert row.failed_at == T0
    assert row.last_error == "550 5.7.1 Message rejected as spam"
    with read_session(engine) as session:
        [record] = list_messages(session, "failed")
    assert record["status"] == "failed" and "spam" in record["last_error"]


def test_smtp_partly_refused_recipients_are_noted(engine: Engine) -> None:
    row_id = _queue(engine)
    assert row_id is not None
    handler = Handler(refuse={"team@example.org": "550 5.1.1 No such user"})
    with MailServer(handler=handler) as server:
        report = deliver(engine, _smtp(server.port), sender=SENDER, worker="w1", now=T0)
    assert report.sent == [row_id] and not report.ok
    assert report.refused[row_id] == {"team@example.org": "550 5.1.1 No such user"}
    assert server.received[0].rcpt_tos == ["alice@example.org"]
    assert "team@example.org" in (_row(engine, row_id).last_error or "")


def test_smtp_all_recipients_refused_permanently_fails(engine: Engine) -> None:
    row_id = _queue(engine, recipients=("nobody@example.org",))
    handler = Handler(refuse={"nobody@example.org": "550 5.1.1 No such user"})
    with MailServer(handler=handler) as server:
        report = deliver(engine, _smtp(server.port), sender=SENDER, worker="w1", now=T0)
    assert report.failed == [row_id] and not server.received
    assert "No such user" in (_row(engine, row_id or 0).last_error or "")


def test_smtp_starttls_with_a_trusted_certificate_delivers(
    engine: Engine, cert: tuple[Path, Path]
) -> None:
    _queue(engine)
    with MailServer(tls="starttls", cert=cert) as server:
        report = deliver(
            engine,
            _smtp(server.port, "starttls", cafile=cert[0]),
            sender=SENDER,
            worker="w1",
            now=T0,
        )
    assert report.ok and len(report.sent) == 1
    assert server.received[0].message["Subject"].startswith("[tracker]")


def test_smtp_implicit_tls_with_a_trusted_certificate_delivers(
    engine: Engine, cert: tuple[Path, Path]
) -> None:
    _queue(engine)
    with MailServer(tls="implicit", cert=cert) as server:
        report = deliver(
            engine, _smtp(server.port, "tls", cafile=cert[0]), sender=SENDER, worker="w1", now=T0
        )
    assert report.ok and len(server.received) == 1


def test_smtp_starttls_untrusted_certificate_is_refused_and_kept(
    engine: Engine, cert: tuple[Path, Path]
) -> None:
    row_id = _queue(engine)
    assert row_id is not None
    with MailServer(tls="starttls", cert=cert) as server:
        report = deliver(engine, _smtp(server.port, "starttls"), sender=SENDER, worker="w1", now=T0)
    assert report.retrying == [row_id] and not server.received
    assert "CERTIFICATE_VERIFY_FAILED" in (_row(engine, row_id).last_error or "")


def test_smtp_plain_client_refused_by_a_server_requiring_starttls(
    engine: Engine, cert: tuple[Path, Path]
) -> None:
    row_id = _queue(engine)
    with MailServer(tls="starttls", cert=cert) as server:
        report = deliver(engine, _smtp(server.port, "none"), sender=SENDER, worker="w1", now=T0)
    assert report.retrying == [row_id] and not server.received


def test_smtp_title_with_a_newline_cannot_inject_a_header(engine: Engine) -> None:
    evil = "Qwen4\r\nBcc: victim@example.org\r\nX-Evil: 1"
    context = {"title": evil}
    rendered = Rendered(subject=f"Due: {context['title']}", text="t", html="<p>h</p>")
    _queue(engine, message=rendered)
    with MailServer() as server:
        deliver(engine, _smtp(server.port), sender=SENDER, worker="w1", now=T0)
    [got] = server.received
    assert got.message["X-Evil"] is None and got.message["Bcc"] is None
    assert "victim@example.org" not in got.rcpt_tos
    assert got.message["Subject"] == "Due: Qwen4 Bcc: victim@example.org X-Evil: 1"


def test_outbox_message_id_is_stable_per_row_and_differs_between_rows(engine: Engine) -> None:
    a = _queue(engine, "daily:alice:2026-03-02")
    b = _queue(engine, "daily:alice:2026-03-03")
    ra, rb = _row(engine, a or 0), _row(engine, b or 0)
    assert ra.message_id != rb.message_id
    assert ra.message_id.endswith("@example.org>")
    with MailServer() as server:
        deliver(engine, _smtp(server.port), sender=SENDER, worker="w1", now=T0)
    assert {r.message["Message-ID"] for r in server.received} == {ra.message_id, rb.message_id}


def test_outbox_two_workers_deliver_each_message_once(engine: Engine) -> None:
    import threading

    ids = [_queue(engine, f"daily:user{i}:2026-03-02") for i in range(12)]
    with MailServer() as server:
        results = []

        def work(name: str) -> None:
            results.append(deliver(engine, _smtp(server.port), sender=SENDER, worker=name, now=T0))

        threads = [threading.Thread(target=work, args=(f"w{i}",)) for i in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    sent = sorted(i for r in results for i in r.sent)
    assert sent == sorted(ids)
    subjects = [r.message["Message-ID"] for r in server.received]
    assert len(subjects) == 12 and len(set(subjects)) == 12


def test_eml_transport_writes_one_file_per_message(engine: Engine, tmp_path: Path) -> None:
    row_id = _queue(engine, message=make_message_for_eml())
    transport = EmlTransport(tmp_path / "outbox")
    report = deliver(engine, transport, sender=SENDER, worker="w1", now=T0)
    assert report.sent == [row_id]
    [path] = list((tmp_path / "outbox").glob("*.eml"))
    assert transport.written == [path]
    content = path.read_text(encoding="utf-8")
    assert "Subject: [tracker]" in content and "multipart/alternative" in content


def make_message_for_eml() -> Rendered:
    return Rendered(subject="[tracker] one due", text="plain body\n", html="<p>html body</p>")


def test_backoff_doubles_and_caps_at_an_hour() -> None:
    assert [backoff(n).total_seconds() for n in (1, 2, 3, 7, 30)] == [60, 120, 240, 3600, 3600]


def test_make_message_unknown_template_is_an_error() -> None:
    import jinja2

    with pytest.raises(jinja2.TemplateNotFound):
        make_message("no-such-message", {})


SUBJECTS = [
    "[tracker] alice: 1 due today - Qwen4 ships",
    "[tracker] ali =?utf-8?q?=0D=0ABcc:_v2@evil.example?= ce: 1 due this week",
    "[tracker] " + "=?utf-8?b?DQpCY2M6IHZAZXZpbC5leGFtcGxl?= " * 6,
    "[tracker] bob: 3 due this week - " + "Will the Hub list of provincial AI clusters grow " * 4,
    "[tracker] 王芳: 1 due today - 北京市人工智能算力中心 =?utf-8?q?=0A?= 是否在2026年前投产" * 2,
    "[tracker] " + "x" * 120,
]


@pytest.mark.parametrize("subject", SUBJECTS)
def test_build_email_subject_reads_back_as_typed_and_folds(subject: str) -> None:
    from email import message_from_bytes, policy

    from reports.mail import build_email, clean_header

    message = build_email(
        subject=subject,
        text="t\n",
        html="<p>h</p>",
        sender=SENDER,
        recipients=TO,
        message_id="<1.tracker@example.org>",
        date=T0,
    )
    expected = clean_header(subject)
    raw = message.as_bytes()
    assert raw == message.as_string().encode("ascii")  # both generators, one text
    head = raw.split(b"\r\n\r\n", 1)[0].split(b"\r\n")
    assert all(len(line) <= 78 or b" " not in line.strip() for line in head), head
    assert [ln.split(b":")[0] for ln in head if not ln.startswith(b" ")] == [
        b"Subject",
        b"From",
        b"To",
        b"Date",
        b"Message-ID",
        b"Auto-Submitted",
        b"MIME-Version",
        b"Content-Type",
    ]
    parsed = message_from_bytes(raw, policy=policy.default)
    assert str(parsed["Subject"]) == expected
    assert [a.addr_spec for a in parsed["To"].addresses] == list(TO)
    if "=?" in subject or not subject.isascii():
        assert head[0].startswith(b"Subject: =?utf-8?")


@pytest.mark.parametrize(
    "recipients",
    [
        ("=?utf-8?q?=0D=0ABcc:_v@evil.example?= <alice@example.org>",),
        ("alice@example.org\r\nBcc: v@evil.example",),
        ("=?utf-8?q?v?=@evil.example",),
    ],
)
def test_outbox_queue_refuses_hostile_recipients(engine: Engine, recipients: tuple[str]) -> None:
    from predictions.errors import InputError

    with pytest.raises(InputError, match=r"^email\.to: "):
        _queue(engine, recipients=recipients)
    with read_session(engine) as session:
        assert session.scalars(select(Outbox)).all() == []


def test_outbox_row_with_addresses_queue_would_refuse_fails_alone(engine: Engine) -> None:
    """A row edited in the database (or queued by an older version) whose recipients are not
    plain addresses is marked failed, naming them; the next row is still sent."""
    from sqlalchemy import update

    bad = _queue(engine, "daily:alice:2026-03-02")
    good = _queue(engine, "daily:bob:2026-03-02")
    with write_session(engine) as session:
        hostile = "=?utf-8?q?=0D=0ABcc:_v@evil.example?=@example.org"
        session.execute(update(Outbox).where(Outbox.id == bad).values(recipients=hostile))
    with MailServer() as server:
        report = deliver(engine, _smtp(server.port), sender=SENDER, worker="w1", now=T0)
    assert report.failed == [bad] and report.sent == [good]
    assert "email.to" in (_row(engine, bad or 0).last_error or "")
    [got] = server.received
    assert sorted(got.rcpt_tos) == sorted(TO)
