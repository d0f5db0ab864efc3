"""The outbox: queue a message once, deliver it once.

- :func:`queue` inserts a row in the caller's transaction (the one that decided to send it); a
  second row with the same dedupe key is silently dropped (``INSERT ... ON CONFLICT DO NOTHING``),
  so two ``notify`` runs or two daemons queue each report once.
- :func:`deliver` claims ready rows with a lease (:mod:`predictions.leases`, as the sweep does),
  sends each through a transport, and records the outcome: sent; a temporary failure (SMTP 4xx,
  connection refused, timeout, TLS or login trouble) is retried with exponential backoff; a
  permanent one (SMTP 5xx) is marked failed with the server's text. Recipients refused while
  others were accepted are noted on the sent row.
- Transports: :class:`SmtpTransport` (STARTTLS or implicit TLS, certificates verified with
  ``ssl.create_default_context()``, a timeout on every connection) and :class:`EmlTransport`,
  which writes ``.eml`` files into a folder when no SMTP server is configured.
"""

from __future__ import annotations

import contextlib
import os
import smtplib
import ssl
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any, Protocol, cast

from sqlalchemy import Table, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from predictions import chain, leases, receipts
from predictions.clock import now as clock_now
from predictions.db import is_postgres, read_session, write_session
from predictions.errors import DeliveryError, InputError
from predictions.models import Outbox
from reports.mail import Rendered, build_email, clean_header, new_message_id, parse_addresses

__all__ = [
    "OUTBOX_STATUSES",
    "SMTP_SECURITY",
    "DeliveryReport",
    "EmlTransport",
    "SmtpTransport",
    "Transport",
    "backoff",
    "deliver",
    "email_for",
    "list_messages",
    "message_record",
    "queue",
]

OUTBOX_STATUSES = ("queued", "sent", "failed", "all")
#: How SMTP connections are secured: STARTTLS, implicit TLS, or neither (``smtp.security``).
SMTP_SECURITY = ("starttls", "tls", "none")
#: A message still undelivered this long after it was queued is marked failed.
GIVE_UP_AFTER = timedelta(days=7)
_FIRST_RETRY = timedelta(minutes=1)
_MAX_RETRY = timedelta(hours=1)
#: Replies that mean the server wants TLS or authentication first (RFC 3207, RFC 4954): a
#: problem of the set-up, not of the message, so the message stays queued.
_SETUP_CODES = frozenset({530, 534, 535, 538})


class Transport(Protocol):
    """Hands a message to the world. Returns the refused recipients (address -> server text) when
    some, not all, were refused; raises :class:`DeliveryError` otherwise."""

    def send(
        self, message: EmailMessage, sender: str, recipients: Sequence[str]
    ) -> dict[str, str]: ...

    def close(self) -> None: ...

    def describe(self) -> str: ...


def _reply_text(code: int, reply: bytes | str) -> str:
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)
    return f"{code} {' '.join(text.split())}"


class SmtpTransport:
    """SMTP with STARTTLS (``starttls``), implicit TLS (``tls``) or neither (``none``).

    Certificates are verified against the system store, or ``cafile`` when given. One connection is
    opened lazily and reused for a batch; every socket operation has ``timeout`` seconds.
    """

    def __init__(
        self,
        host: str,
        port: int,
        *,
        security: str = "starttls",
        username: str | None = None,
        password: str | None = None,
        timeout: float = 30.0,
        cafile: str | None = None,
    ) -> None:
        if security not in SMTP_SECURITY:
            raise InputError("smtp.security", security, "one of " + ", ".join(SMTP_SECURITY))
        self.host = host
        self.port = port
        self.security = security
        self.username = username
        self.password = password
        self.timeout = timeout
        self.cafile = cafile
        self._conn: smtplib.SMTP | None = None

    def describe(self) -> str:
        """Where messages go, for the user."""
        return f"SMTP {self.host}:{self.port} ({self.security})"

    def _tls_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=self.cafile)

    def _connect(self) -> smtplib.SMTP:
        if self._conn is not None:
            return self._conn
        where = f"{self.host}:{self.port}"
        conn: smtplib.SMTP | None = None
        try:
            if self.security == "tls":
                conn = smtplib.SMTP_SSL(
                    self.host, self.port, timeout=self.timeout, context=self._tls_context()
                )
            else:
                conn = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
                conn.ehlo()
                if self.security == "starttls":
                    conn.starttls(context=self._tls_context())
                    conn.ehlo()
            if self.username:
                conn.login(self.username, self.password or "")
        except (smtplib.SMTPException, OSError) as exc:
            _quietly_close(conn)
            if isinstance(exc, smtplib.SMTPNotSupportedError):
                why = f"{exc} (set smtp.security to tls or none?)"
            elif isinstance(exc, smtplib.SMTPResponseException):
                why = _reply_text(exc.smtp_code, exc.smtp_error)
            else:
                why = f"{type(exc).__name__}: {exc}"
            raise DeliveryError(f"{where}: {why}", temporary=True, connection=True) from exc
        self._conn = conn
        return conn

    def send(self, message: EmailMessage, sender: str, recipients: Sequence[str]) -> dict[str, str]:
        """Send one message; see :class:`Transport`."""
        if not recipients:
            raise DeliveryError("no recipients (set email.to)", temporary=False)
        conn = self._connect()
        try:  # the envelope comes from the outbox row, never from the message's headers
            refused = conn.send_message(message, from_addr=sender, to_addrs=list(recipients))
        except smtplib.SMTPRecipientsRefused as exc:
            answers = {a: (int(c), m) for a, (c, m) in exc.recipients.items()}
            text = "recipients refused: " + "; ".join(
                f"{a}: {_reply_text(c, m)}" for a, (c, m) in answers.items()
            )
            raise DeliveryError(
                text, temporary=any(400 <= c < 500 for c, _ in answers.values())
            ) from exc
        except smtplib.SMTPServerDisconnected as exc:
            self._drop()
            raise DeliveryError(
                f"server disconnected: {exc}", temporary=True, connection=True
            ) from exc
        except smtplib.SMTPResponseException as exc:
            code = int(exc.smtp_code)
            if code == 421:
                self._drop()
            if code in _SETUP_CODES:  # the server wants TLS or a login: our set-up, not the mail
                raise DeliveryError(
                    f"{_reply_text(code, exc.smtp_error)} (check smtp.security and smtp.username)",
                    temporary=True,
                    connection=True,
                ) from exc
            raise DeliveryError(
                _reply_text(code, exc.smtp_error), temporary=not 500 <= code < 600
            ) from exc
        except (smtplib.SMTPException, OSError) as exc:
            self._drop()
            raise DeliveryError(
                f"{type(exc).__name__}: {exc}", temporary=True, connection=True
            ) from exc
        return {a: _reply_text(int(c), m) for a, (c, m) in refused.items()}

    def _drop(self) -> None:
        _quietly_close(self._conn)
        self._conn = None

    def close(self) -> None:
        """QUIT the connection, if one is open."""
        if self._conn is not None:
            with contextlib.suppress(smtplib.SMTPException, OSError):
                self._conn.quit()
            self._drop()


def _quietly_close(conn: smtplib.SMTP | None) -> None:
    if conn is not None:
        with contextlib.suppress(OSError):
            conn.close()


class EmlTransport:
    """Writes each message as ``<date>-<message id>.eml`` into ``folder`` (no SMTP needed).

    The file name comes from the stable Message-ID, so writing a message again replaces its file.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self.written: list[Path] = []

    def describe(self) -> str:
        """Where messages go, for the user."""
        return f"folder {self.folder}"

    def send(self, message: EmailMessage, sender: str, recipients: Sequence[str]) -> dict[str, str]:
        """Write the message to a file; see :class:`Transport`."""
        ident = str(message["Message-ID"] or "message").strip("<>").split("@")[0]
        stamp = _date_stamp(message)
        path = self.folder / f"{stamp}-{ident}.eml"
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".eml.tmp")
            tmp.write_bytes(message.as_bytes())
            os.replace(tmp, path)
        except OSError as exc:
            raise DeliveryError(
                f"cannot write {path}: {exc.strerror or exc}", temporary=True, connection=True
            ) from exc
        self.written.append(path)
        return {}

    def close(self) -> None:
        """Nothing to close."""


def _date_stamp(message: EmailMessage) -> str:
    """``20261123T080000`` from the message's Date header (``undated`` without one)."""
    import email.utils

    raw = message["Date"]
    if not raw:
        return "undated"
    return email.utils.parsedate_to_datetime(str(raw)).strftime("%Y%m%dT%H%M%S")


def queue(
    session: Session,
    *,
    dedupe_key: str,
    kind: str,
    recipients: Sequence[str],
    sender: str,
    message: Rendered,
    now: datetime | None = None,
) -> int | None:
    """Queue a message in the caller's transaction; return its id, or None when a message with
    this dedupe key was queued before (nothing is written then).

    The row keeps the recipients (checked by :func:`reports.mail.parse_addresses`: they become
    the SMTP envelope) and a fresh Message-ID, which every retry of the row reuses.
    """
    now = now or clock_now()
    values: dict[str, Any] = {
        "dedupe_key": dedupe_key,
        "kind": kind,
        "recipients": ", ".join(parse_addresses(list(recipients), "email.to")),
        "subject": message.subject,
        "body_text": message.text,
        "body_html": message.html,
        "message_id": new_message_id(sender),
        "created_at": now,
        "attempts": 0,
        "next_attempt_at": now,
    }
    insert: Any
    if is_postgres(session.get_bind()):  # type: ignore[arg-type]
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    stmt = (
        insert(Outbox)
        .values(**values)
        .on_conflict_do_nothing(index_elements=["dedupe_key"])
        .returning(Outbox.id)
    )
    row_id = session.scalar(stmt)
    if row_id is not None:
        receipts.append(
            session,
            "queue",
            receipts.queue_payload(
                row_id,
                dedupe_key=dedupe_key,
                kind=kind,
                recipients=values["recipients"],
                message_id=values["message_id"],
                created_at=now,
                subject=message.subject,
                body_text=message.text,
                body_html=message.html,
            ),
            at=now,
        )
    return row_id


def backoff(attempts: int) -> timedelta:
    """The wait before retry number ``attempts``: 1, 2, 4 ... minutes, at most an hour
    (:func:`predictions.leases.backoff`)."""
    return leases.backoff(attempts, base=_FIRST_RETRY, cap=_MAX_RETRY)


_OUTBOX = cast(Table, Outbox.__table__)


def _claim(engine: Engine, worker: str, now: datetime, lease: timedelta, limit: int) -> list[int]:
    """Lease up to ``limit`` unsent messages whose retry time has come, oldest first."""
    o = _OUTBOX.c
    ready = (
        select(o.id)
        .where(o.sent_at.is_(None), o.failed_at.is_(None), o.next_attempt_at <= now)
        .order_by(o.id)
    )
    rows = leases.claim(engine, _OUTBOX, ready, worker=worker, lease=lease, limit=limit, now=now)
    return [row[0] for row in rows]


def email_for(row: Outbox, sender: str) -> EmailMessage:
    """The MIME message of an outbox row (its Message-ID and Date are fixed at queue time).

    A row whose addresses :func:`queue` would refuse (edited in the database, or queued by an
    older version) raises a permanent :class:`DeliveryError` naming them.
    """
    try:
        return build_email(
            subject=row.subject,
            text=row.body_text,
            html=row.body_html,
            sender=sender,
            recipients=_recipients(row),
            message_id=row.message_id,
            date=row.created_at,
        )
    except InputError as exc:
        raise DeliveryError(f"not sent: {exc}", temporary=False) from exc


def _recipients(row: Outbox) -> list[str]:
    return [r.strip() for r in row.recipients.split(",") if r.strip()]


@dataclass
class DeliveryReport:
    """What one :func:`deliver` run did: ids sent, retrying, failed, and the errors by id."""

    sent: list[int] = field(default_factory=list)
    retrying: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)
    errors: dict[int, str] = field(default_factory=dict)
    refused: dict[int, dict[str, str]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True when every claimed message was handed over to every recipient."""
        return not (self.retrying or self.failed or self.refused)


def deliver(
    engine: Engine,
    transport: Transport,
    *,
    sender: str,
    worker: str,
    now: datetime | None = None,
    batch: int = 20,
    lease: timedelta | None = None,
) -> DeliveryReport:
    """Send every ready message once; record each outcome in its own short transaction.

    ``now`` (default: the clock) decides which rows are ready and stamps the outcomes; rows whose
    retry time is later wait for a later run. A row leased by another worker is left alone.
    """
    report = DeliveryReport()
    lease = lease or timedelta(seconds=60 + 2 * batch * getattr(transport, "timeout", 30.0))
    try:
        while True:
            at = now or clock_now()
            ids = _claim(engine, worker, at, lease, batch)
            if not ids:
                break
            unreachable: DeliveryError | None = None
            for row_id in ids:
                outcome: DeliveryError | dict[str, str] | None = None
                with read_session(engine) as session:
                    row = session.get(Outbox, row_id)
                    assert row is not None
                    try:
                        message = email_for(row, sender)
                    except DeliveryError as exc:  # a row that queue() would refuse today
                        outcome = exc
                    recipients = _recipients(row)
                if unreachable is not None:
                    outcome = unreachable
                elif outcome is None:
                    try:
                        outcome = transport.send(message, sender, recipients)
                    except DeliveryError as exc:
                        outcome = exc
                        if exc.connection:
                            unreachable = exc
                _record(engine, row_id, worker, outcome, now or clock_now(), report)
            if unreachable is not None:
                break
    finally:
        transport.close()
    return report


def _record(
    engine: Engine,
    row_id: int,
    worker: str,
    outcome: DeliveryError | dict[str, str],
    at: datetime,
    report: DeliveryReport,
) -> None:
    with write_session(engine) as session:
        if not leases.held(session, _OUTBOX, [row_id], worker):
            return  # the lease ran out and another worker took the row over
        row = session.get_one(Outbox, row_id)
        row.attempts += 1
        leases.release(session, _OUTBOX, [row_id], worker)
        if isinstance(outcome, dict):
            row.sent_at = at
            row.last_error = (
                "refused: " + "; ".join(f"{a}: {t}" for a, t in outcome.items())
                if outcome
                else None
            )
            receipts.append(
                session, "sent", receipts.delivery_payload(row_id, at, row.last_error), at=at
            )
            report.sent.append(row_id)
            if outcome:
                report.refused[row_id] = outcome
            return
        text = clean_header(outcome.text, 1000)
        report.errors[row_id] = text
        if outcome.temporary and at - row.created_at < GIVE_UP_AFTER:
            row.last_error = text
            row.next_attempt_at = at + backoff(row.attempts)
            report.retrying.append(row_id)
            return
        row.failed_at = at
        row.last_error = (
            text if not outcome.temporary else f"gave up after {row.attempts} attempts: {text}"
        )
        receipts.append(
            session, "failed", receipts.delivery_payload(row_id, at, row.last_error), at=at
        )
        report.failed.append(row_id)


def _status(row: Outbox) -> str:
    if row.sent_at is not None:
        return "sent"
    if row.failed_at is not None:
        return "failed"
    return "queued"


def message_record(row: Outbox) -> dict[str, Any]:
    """The JSON form of an outbox row, as ``tracker outbox --json`` prints it."""
    return {
        "id": row.id,
        "status": _status(row),
        "kind": row.kind,
        "dedupe_key": row.dedupe_key,
        "recipients": _recipients(row),
        "subject": row.subject,
        "message_id": row.message_id,
        "created_at": chain.iso(row.created_at),
        "attempts": row.attempts,
        "next_attempt_at": chain.iso(row.next_attempt_at) if _status(row) == "queued" else None,
        "sent_at": chain.iso(row.sent_at),
        "failed_at": chain.iso(row.failed_at),
        "last_error": row.last_error,
    }


def list_messages(
    session: Session, status: str = "all", *, limit: int | None = 100
) -> list[dict[str, Any]]:
    """Outbox rows, newest first, as records; ``status`` is queued, sent, failed or all."""
    if status not in OUTBOX_STATUSES:
        raise InputError("status", status, "one of " + ", ".join(OUTBOX_STATUSES))
    stmt = select(Outbox).order_by(Outbox.id.desc())
    if status == "queued":
        stmt = stmt.where(Outbox.sent_at.is_(None), Outbox.failed_at.is_(None))
    elif status == "sent":
        stmt = stmt.where(Outbox.sent_at.is_not(None))
    elif status == "failed":
        stmt = stmt.where(Outbox.failed_at.is_not(None))
    if limit:
        stmt = stmt.limit(limit)
    return [message_record(row) for row in session.scalars(stmt)]
