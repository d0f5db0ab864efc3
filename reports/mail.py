"""Email composition: three templates per message and one :func:`make_message`.

A message called ``daily`` is rendered from ``templates/email/daily.subject.txt``,
``daily.body.txt`` and ``daily.body.html``. Templates use :class:`jinja2.StrictUndefined`, so a
missing context key is an error rather than a blank; the HTML template autoescapes, so every
user-supplied string (titles, criteria, notes, evidence excerpts) is escaped there.

Anything that reaches a header goes through :func:`clean_header`: a forecast title holding a
newline cannot inject a header.

    >>> clean_header("Due today: X\\r\\nBcc: victim@example.org")
    'Due today: X Bcc: victim@example.org'
"""

from __future__ import annotations

import email.policy
import email.utils
import functools
import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from predictions.errors import InputError

__all__ = [
    "Rendered",
    "build_email",
    "clean_header",
    "make_message",
    "message_id_for",
    "parse_addresses",
]

TEMPLATE_DIR = Path(__file__).resolve().parent / "templates" / "email"
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")
_SPACES = re.compile(r"\s{2,}")
_HEADER_LIMIT = 200


@dataclass(frozen=True)
class Rendered:
    """A rendered message: subject (one clean line), plain-text body, HTML body."""

    subject: str
    text: str
    html: str


@functools.cache
def _environments() -> tuple[Any, Any]:
    import jinja2

    loader = jinja2.FileSystemLoader(str(TEMPLATE_DIR))
    common: dict[str, Any] = {
        "loader": loader,
        "undefined": jinja2.StrictUndefined,
        "keep_trailing_newline": True,
        "trim_blocks": True,
        "lstrip_blocks": True,
    }
    return jinja2.Environment(autoescape=False, **common), jinja2.Environment(
        autoescape=True, **common
    )


def make_message(name: str, context: Mapping[str, Any]) -> Rendered:
    """Render ``<name>.subject.txt``, ``<name>.body.txt`` and ``<name>.body.html`` with ``context``.

    Raises ``jinja2.UndefinedError`` when the context lacks a key a template uses.
    """
    text_env, html_env = _environments()
    subject = text_env.get_template(f"{name}.subject.txt").render(context)
    text = text_env.get_template(f"{name}.body.txt").render(context)
    html = html_env.get_template(f"{name}.body.html").render(context)
    return Rendered(subject=clean_header(subject), text=text, html=html)


def clean_header(value: str, limit: int = _HEADER_LIMIT) -> str:
    """One line for a header: control characters become spaces, runs of space shrink, cut to
    ``limit`` characters (with an ellipsis)."""
    line = _SPACES.sub(" ", _CONTROL.sub(" ", value)).strip()
    if len(line) > limit:
        line = line[: limit - 1].rstrip() + "…"
    return line


def parse_addresses(value: str | Sequence[str] | None, field: str = "email.to") -> list[str]:
    """Addresses from ``a@x.org, Bob <b@y.org>`` (or a list of them); refuses anything that is
    not a plain ``local@domain`` address."""
    if value is None:
        return []
    items = [value] if isinstance(value, str) else list(value)
    found: list[str] = []
    for item in items:
        for _name, address in email.utils.getaddresses([clean_header(item, 2000)]):
            address = address.strip()
            if not address:
                continue
            local, at, domain = address.rpartition("@")
            if not at or not local or not domain or any(c.isspace() for c in address):
                raise InputError(field, item, "email addresses such as me@example.org")
            if address not in found:
                found.append(address)
    if items and not found and any(i.strip() for i in items):
        raise InputError(field, value, "email addresses such as me@example.org")
    return found


def message_id_for(dedupe_key: str, sender: str) -> str:
    """A stable Message-ID for an outbox row: the hash of its dedupe key at the sender's domain."""
    domain = clean_header(sender).rpartition("@")[2].strip("<> ") or "localhost"
    domain = re.sub(r"[^A-Za-z0-9.\-]", "", domain) or "localhost"
    digest = hashlib.sha256(dedupe_key.encode("utf-8")).hexdigest()[:32]
    return f"<{digest}.tracker@{domain}>"


def build_email(
    *,
    subject: str,
    text: str,
    html: str,
    sender: str,
    recipients: Sequence[str],
    message_id: str,
    date: datetime,
) -> EmailMessage:
    """A multipart/alternative message (plain text first, then HTML) with clean headers."""
    message = EmailMessage(policy=email.policy.SMTP)
    message["Subject"] = clean_header(subject)
    message["From"] = clean_header(sender)
    if recipients:
        message["To"] = ", ".join(clean_header(r) for r in recipients)
    moment = date if date.tzinfo else date.replace(tzinfo=UTC)
    message["Date"] = email.utils.format_datetime(moment)
    message["Message-ID"] = clean_header(message_id)
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(text)
    message.add_alternative(html, subtype="html")
    return message
