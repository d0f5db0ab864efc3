"""Email composition: three templates per message and one :func:`build_email`.

A message called ``daily`` is rendered from ``templates/email/daily.subject.txt``,
``daily.body.txt`` and ``daily.body.html``. Templates use :class:`jinja2.StrictUndefined`, so a
missing context key is an error rather than a blank; the HTML template autoescapes, so every
user-supplied string (titles, criteria, notes, evidence excerpts) is escaped there.

Every header is written by :func:`build_email`, through one door, and stays text:

- control characters become spaces (:func:`clean_header`), so a title holding a newline cannot
  start a header of its own;
- address headers hold only addresses that :func:`parse_addresses` accepted (``local@domain``,
  no ``=?``), never a display name;
- a value holding ``=?`` or non-ASCII text is encoded whole, as RFC 2047 encoded words that this
  module folds itself. Python before 3.11.10 and 3.12.5 decodes an encoded word found in a header
  value while it writes the message (CVE-2024-6923): a forecaster named
  ``=?utf-8?q?=0D=0ABcc:_x@evil.example?=`` became a real ``Bcc:`` line. Encoded by us, the
  reader decodes it back to the literal name, on every Python.

    >>> clean_header("Due today: X\\r\\nBcc: victim@example.org")
    'Due today: X Bcc: victim@example.org'
"""

from __future__ import annotations

import functools
import re
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from predictions.errors import InputError

if TYPE_CHECKING:
    from email.message import EmailMessage
    from email.policy import Policy

__all__ = [
    "Rendered",
    "build_email",
    "clean_header",
    "make_message",
    "new_message_id",
    "parse_address",
    "parse_addresses",
]

TEMPLATE_DIR = Path(__file__).resolve().parent / "templates" / "email"
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")
_SPACES = re.compile(r"\s{2,}")
_HEADER_LIMIT = 200
#: ``local@domain``: dot-atom characters (RFC 5322 atext, letters of any script), no quoting.
_ADDRESS = re.compile(r"[\w!#$%&'*+/=?^`{|}~-]+(?:\.[\w!#$%&'*+/=?^`{|}~-]+)*@[\w-]+(?:\.[\w-]+)*")
_ADDRESS_EXPECTED = "email addresses such as me@example.org (no line breaks, no =?...?=)"


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


def clean_header(value: str, limit: int | None = _HEADER_LIMIT) -> str:
    """One line for a header: control characters become spaces, runs of space shrink, cut to
    ``limit`` characters (with an ellipsis; None: no cut)."""
    line = _SPACES.sub(" ", _CONTROL.sub(" ", value)).strip()
    if limit is not None and len(line) > limit:
        line = line[: limit - 1].rstrip() + "…"
    return line


def parse_addresses(value: str | Sequence[str] | None, field: str = "email.to") -> list[str]:
    """The addresses in ``a@x.org, Bob <b@y.org>`` (or a list of such strings), display names
    dropped, each once.

    Refuses (:class:`InputError` naming ``field``) a value holding a line break or another control
    character, an encoded word (``=?``), or anything that is not a plain ``local@domain`` address:
    these values end up in headers and in the SMTP envelope.
    """
    if value is None:
        return []
    import email.utils

    items = [value] if isinstance(value, str) else list(value)
    found: list[str] = []
    for item in items:
        if _CONTROL.search(item) or "=?" in item:
            raise InputError(field, item, _ADDRESS_EXPECTED)
        for _name, address in email.utils.getaddresses([item]):
            address = address.strip()
            if not address:
                continue
            if not _ADDRESS.fullmatch(address):
                raise InputError(field, item, _ADDRESS_EXPECTED)
            if address not in found:
                found.append(address)
    if not found and any(i.strip() for i in items):
        raise InputError(field, value, _ADDRESS_EXPECTED)
    return found


def parse_address(value: str | None, field: str = "email.from") -> str:
    """Exactly one address (see :func:`parse_addresses`); several, or none, is an error."""
    found = parse_addresses(value, field)
    if len(found) != 1:
        raise InputError(field, value, "one email address such as me@example.org")
    return found[0]


def new_message_id(sender: str) -> str:
    """A fresh Message-ID at the sender's domain: 128 random bits, so two databases (or two
    messages of one) never share one. The outbox stores it with the row, so every retry of a
    message carries the same id."""
    domain = parse_address(sender).rpartition("@")[2]
    return f"<{secrets.token_hex(16)}.tracker@{domain}>"


class _Header(str):
    """A header value that this module folds, not the policy's header registry.

    ``email.policy.EmailPolicy`` treats a value with a ``name`` attribute as a header object: it
    stores it as given and writes what its ``fold`` returns, so the registry never parses (and
    never decodes encoded words in) the text. ASCII text without ``=?`` is folded at spaces as it
    is; any other text is encoded whole as UTF-8 encoded words, which a reader decodes back to
    exactly this text.
    """

    name: str

    def __new__(cls, name: str, text: str) -> _Header:
        header = super().__new__(cls, text)
        header.name = name
        return header

    def fold(self, *, policy: Policy) -> str:
        """``Name: value`` folded to the policy's line length, ending with its line separator."""
        from email.header import Header

        text = str(self)
        charset = "us-ascii" if text.isascii() and "=?" not in text else "utf-8"
        value = Header(text, charset, header_name=self.name).encode(
            splitchars=" ", maxlinelen=policy.max_line_length or 78, linesep=policy.linesep
        )
        return f"{self.name}: {value}{policy.linesep}"


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
    """A multipart/alternative message (plain text first, then HTML) whose every header stays
    text on every Python (see the module's docstring).

    ``sender`` must be one address and ``recipients`` addresses (:func:`parse_addresses`);
    :class:`InputError` otherwise.
    """
    import email.policy
    import email.utils
    from email.message import EmailMessage

    to = parse_addresses(list(recipients), "email.to")
    moment = date if date.tzinfo else date.replace(tzinfo=UTC)
    headers = {
        "Subject": subject,
        "From": parse_address(sender),
        "To": ", ".join(to),
        "Date": email.utils.format_datetime(moment),
        "Message-ID": message_id,
        "Auto-Submitted": "auto-generated",
    }
    message = EmailMessage(policy=email.policy.SMTP)
    for name, value in headers.items():
        if value:
            limit = _HEADER_LIMIT if name == "Subject" else None  # never cut an address list
            message[name] = _Header(name, clean_header(value, limit))
    message.set_content(text)
    message.add_alternative(html, subtype="html")
    return message
