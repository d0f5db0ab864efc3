"""Mail headers end to end: user text stays text, the envelope comes from the configuration, and
every message has its own Message-ID.

Python before 3.11.10 / 3.12.5 decodes an RFC 2047 encoded word found in a header value into the
header's structure when it writes a message (CVE-2024-6923): a forecaster named
``ali =?utf-8?q?=0D=0ABcc:_v2@evil.example?= ce`` forged a ``Bcc:`` line. These tests run
``tracker add`` / ``config set`` / ``notify`` with such text in every place a user can put it and
parse each written message (.eml file, and the bytes a real aiosmtpd server received) back with the
``default`` and ``compat32`` policies: exactly the expected headers, the text as typed, the
configured recipients in the envelope. They hold on whatever Python runs them.
"""

from __future__ import annotations

import json
import os
import re
from email import message_from_bytes, policy
from email.header import decode_header, make_header
from email.utils import getaddresses
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from freezegun import freeze_time

from tests.conftest import CliInvoke
from tests.mailserver import Handler, MailServer

#: Encoded words that decode to a line break and a header, a blank line (a forged body), or
#: split over two adjacent encoded words (decoders join them).
HOSTILE = {
    "bcc-q": "=?utf-8?q?=0D=0ABcc:_v2@evil.example?=",
    "bcc-b": "=?utf-8?b?DQpCY2M6IHYzQGV2aWwuZXhhbXBsZQ==?=",
    "reply-to": "=?us-ascii?q?=0AReply-To:_x@evil.example?=",
    "blank-line": "=?utf-8?q?=0D=0A=0D=0AX-Forged:_1?=",
    "adjacent": "=?utf-8?q?=0D?= =?iso-8859-1?q?=0ABcc:_v4@evil.example?=",
}
HEADERS = [
    "Subject",
    "From",
    "To",
    "Date",
    "Message-ID",
    "Auto-Submitted",
    "MIME-Version",
    "Content-Type",
]
TO = "alice@example.org"
SENDER = "tracker@example.org"
NOW = "2026-05-04 12:00:00"
CRITERIA = "Resolves YES if the list is published."


def _configure(cli: CliInvoke, **values: str) -> None:
    for key, value in {"email.to": TO, "email.from": SENDER, "notify.time": "00:00"}.items():
        values.setdefault(key, value)
    for key, value in values.items():
        result = cli("config", "set", key, value)
        assert result.exit_code == 0, result.output


def _add(cli: CliInvoke, title: str, *extra: str, due: str = "2026-05-05") -> None:
    result = cli("add", title, "-p", "60%", "--due", due, "--criteria", CRITERIA, *extra)
    assert result.exit_code == 0, result.output


def _subject(raw: bytes, style: policy.Policy) -> str:
    message = message_from_bytes(raw, policy=style)
    value = message["Subject"]
    if style is policy.compat32:  # the raw header: decode its encoded words once, as a client does
        return str(make_header(decode_header(value)))
    return str(value)


def _check(raw: bytes, subject: str) -> None:
    """The message has exactly our headers, ``subject`` as its text and the configured To/From,
    read back with both policies; the header block is made of those lines and their folds."""
    head = re.split(rb"\r?\n\r?\n", raw, maxsplit=1)[0]
    lines = re.split(rb"\r?\n", head)
    assert [ln.split(b":")[0].decode() for ln in lines if ln[:1] not in b" \t"] == HEADERS
    assert all(len(line) <= 78 for line in lines), lines
    for style in (policy.default, policy.compat32):
        message = message_from_bytes(raw, policy=style)
        assert list(message.keys()) == HEADERS
        assert _subject(raw, style) == subject
        assert [a for _n, a in getaddresses(message.get_all("To", []))] == [TO]
        assert [a for _n, a in getaddresses(message.get_all("From", []))] == [SENDER]
        assert message.get_content_type() == "multipart/alternative"
        parts = [p.get_content_type() for p in message.get_payload()]
        assert parts == ["text/plain", "text/html"]


def _notify_eml(cli: CliInvoke) -> bytes:
    with freeze_time(NOW):
        result = cli("notify")
    assert result.exit_code == 0, result.output
    [path] = (Path(os.environ["TRACKER_DATA_DIR"]) / "outbox").glob("*.eml")
    return path.read_bytes()


def _notify_smtp(cli: CliInvoke) -> bytes:
    with MailServer() as server:
        _configure(cli, **{"smtp.host": "127.0.0.1", "smtp.port": str(server.port)})
        assert cli("config", "set", "smtp.security", "none").exit_code == 0
        with freeze_time(NOW):
            result = cli("notify")
    assert result.exit_code == 0, result.output
    [got] = server.received
    assert got.mail_from == SENDER and got.rcpt_tos == [TO]  # the envelope: configuration only
    return got.raw


def _dry_run_subject(cli: CliInvoke) -> str:
    with freeze_time(NOW):
        result = cli("notify", "--dry-run", "--json")
    assert result.exit_code == 0, result.output
    [planned] = json.loads(result.stdout)
    return str(planned["subject"])


@pytest.mark.parametrize("transport", ["eml", "smtp"])
@pytest.mark.parametrize("where", ["--by", "config forecaster"])
@pytest.mark.parametrize("payload", list(HOSTILE.values()), ids=list(HOSTILE))
def test_notify_forecaster_name_with_encoded_words_stays_text(
    cli: CliInvoke, payload: str, where: str, transport: str
) -> None:
    name = f"ali {payload} ce"
    _configure(cli)
    if where == "--by":
        with freeze_time(NOW):
            _add(cli, "Hub list", "--by", name)
    else:
        assert cli("config", "set", "forecaster", name).exit_code == 0
        with freeze_time(NOW):
            _add(cli, "Hub list")
    subject = f"[tracker] {name}: 1 due this week"
    assert _dry_run_subject(cli) == subject
    raw = _notify_eml(cli) if transport == "eml" else _notify_smtp(cli)
    _check(raw, subject)


@pytest.mark.parametrize("transport", ["eml", "smtp"])
@pytest.mark.parametrize("payload", list(HOSTILE.values()), ids=list(HOSTILE))
def test_notify_title_with_encoded_words_stays_text_and_long_subjects_fold(
    cli: CliInvoke, payload: str, transport: str
) -> None:
    title = f"Will Zhipu's GLM-5 ship {payload} before the Wǔhàn AI summit, as the plan says?"
    _configure(cli)
    with freeze_time(NOW):
        _add(cli, title, due="2026-05-04T23:00")
    subject = f"[tracker] alice: 1 due today - {title}"
    assert _dry_run_subject(cli) == subject
    raw = _notify_eml(cli) if transport == "eml" else _notify_smtp(cli)
    _check(raw, subject)
    assert b"=?" in raw.split(b"Subject:", 1)[1][:20]  # encoded whole, by us


@pytest.mark.parametrize("field", ["email.to", "email.from"])
@pytest.mark.parametrize(
    "value",
    [
        f"{HOSTILE['bcc-q']} <{TO}>",
        f"{TO} {HOSTILE['reply-to']}",
        "=?utf-8?q?x?=@example.org",
        f"{TO}\r\nBcc: v@evil.example",
        f"{TO}\nReply-To: x@evil.example",
        f"{TO}\n\nX-Forged: 1",
    ],
    ids=["display-name", "trailing", "local-part", "crlf", "lf", "blank-line"],
)
def test_config_set_email_address_with_encoded_words_or_line_breaks_is_refused(
    cli: CliInvoke, field: str, value: str
) -> None:
    _configure(cli)
    config = Path(os.environ["TRACKER_CONFIG"])
    before = config.read_bytes()
    result = cli("config", "set", field, value)
    assert result.exit_code == 2
    assert result.stderr.startswith(f"Error: {field}:") and result.stderr.count("\n") == 1
    assert config.read_bytes() == before


def test_config_set_email_from_refuses_several_addresses(cli: CliInvoke) -> None:
    _configure(cli)
    config = Path(os.environ["TRACKER_CONFIG"])
    before = config.read_bytes()
    for value in (f"{SENDER}, {TO}", f"{SENDER})<{TO}", ""):
        result = cli("config", "set", "email.from", value)
        assert result.exit_code == 2 and result.stderr.startswith("Error: email.from:"), value
    assert config.read_bytes() == before
    several = cli("config", "set", "email.to", f"{TO}, Bob <bob@example.org>")
    assert several.exit_code == 0, several.output


def test_config_set_forecaster_over_two_lines_is_refused(cli: CliInvoke) -> None:
    result = cli("config", "set", "forecaster", "bob\r\nBcc: v@evil.example")
    assert result.exit_code == 2 and result.stderr.startswith("Error: forecaster:")
    assert not Path(os.environ["TRACKER_CONFIG"]).exists()


@pytest.mark.parametrize("field", ["to", "from"])
def test_notify_with_a_hand_written_hostile_address_sends_nothing(
    cli: CliInvoke, field: str
) -> None:
    with freeze_time(NOW):
        _add(cli, "Hub list")
    config = Path(os.environ["TRACKER_CONFIG"])
    config.parent.mkdir(parents=True, exist_ok=True)
    hostile = json.dumps(f"{HOSTILE['bcc-q']} <{TO}>")
    config.write_text(f'[email]\n{field} = {hostile}\n[notify]\ntime = "00:00"\n', "utf-8")
    with freeze_time(NOW):
        result = cli("notify")
    assert result.exit_code == 2 and result.stderr.startswith(f"Error: email.{field}:")
    assert not (Path(os.environ["TRACKER_DATA_DIR"]) / "outbox").exists()
    assert cli("list").exit_code == 0  # other commands still run, and the value can be fixed
    assert cli("config", "set", f"email.{field}", TO).exit_code == 0
    with freeze_time(NOW):
        assert cli("notify").exit_code == 0


def _run(db: Path, *args: str) -> Result:
    from tracker.cli import main

    env = {"TRACKER_DB": f"sqlite:///{db}"}
    return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)


def test_notify_two_databases_give_the_same_report_different_message_ids(
    tmp_path: Path,
) -> None:
    """Bug 5 of issue 12: alice's report of one day from two ledgers had one Message-ID, and mail
    clients that de-duplicate dropped one (the .eml of the second replaced the first)."""
    first, second = tmp_path / "team.db", tmp_path / "home.db"
    assert _run(first, "config", "set", "notify.time", "00:00").exit_code == 0
    ids = []
    for db in (first, second):
        with freeze_time(NOW):
            assert _run(db, "add", "Hub list", "-p", "60%", "--due", "+1d", "--criteria", CRITERIA)
            result = _run(db, "notify")
        assert result.exit_code == 0, result.output
        [record] = json.loads(_run(db, "outbox", "--json").stdout)
        assert record["dedupe_key"] == "daily:to::2026-05-04" and record["status"] == "sent"
        ids.append(record["message_id"])
    assert ids[0] != ids[1]
    files = list((Path(os.environ["TRACKER_DATA_DIR"]) / "outbox").glob("*.eml"))
    assert len(files) == 2
    assert sorted(message_from_bytes(f.read_bytes())["Message-ID"] for f in files) == sorted(ids)


def test_notify_retry_of_one_message_keeps_its_message_id(cli: CliInvoke) -> None:
    handler = Handler(data_replies=["451 4.3.0 Try again later"])
    with MailServer(handler=handler) as server:
        _configure(cli, **{"smtp.host": "127.0.0.1", "smtp.port": str(server.port)})
        assert cli("config", "set", "smtp.security", "none").exit_code == 0
        with freeze_time(NOW):
            _add(cli, "Hub list")
            first = cli("notify")
        [queued] = json.loads(cli("outbox", "--json").stdout)
        with freeze_time("2026-05-04 13:00:00"):
            second = cli("notify")
    assert first.exit_code == 1 and queued["status"] == "queued", first.output
    assert second.exit_code == 0, second.output
    [got] = server.received
    assert got.message["Message-ID"] == queued["message_id"]
    [sent] = json.loads(cli("outbox", "--json").stdout)
    assert sent["status"] == "sent" and sent["message_id"] == queued["message_id"]
