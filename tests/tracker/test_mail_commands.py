"""``tracker notify`` and ``tracker outbox`` end to end: .eml files, a real aiosmtpd server."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest
from freezegun import freeze_time

from tests.conftest import CliInvoke
from tests.mailserver import Handler, MailServer, make_certificate

CRITERIA = "Resolves YES if Alibaba publishes Qwen4 weights under an open licence."


def _add(cli: CliInvoke, title: str = "Qwen4 released as open weights", due: str = "+1d") -> int:
    result = cli("add", title, "-p", "70%", "--due", due, "--criteria", CRITERIA, "--json")
    assert result.exit_code == 0, result.output
    return int(json.loads(result.stdout)["id"])


def _configure(cli: CliInvoke, **values: str) -> None:
    for key, value in values.items():
        result = cli("config", "set", key.replace("__", "."), value)
        assert result.exit_code == 0, result.output


def test_notify_without_smtp_writes_eml_files_and_says_where(
    cli: CliInvoke, counts: Callable[[], dict[str, int]]
) -> None:
    with freeze_time("2026-05-04 12:00:00"):
        fid = _add(cli, due="2026-05-05")
        result = cli("notify")
    assert result.exit_code == 0, result.output
    folder = Path(os.environ["TRACKER_DATA_DIR"]) / "outbox"
    [path] = list(folder.glob("*.eml"))
    assert f"Wrote 1 message to {folder}" in result.stdout
    assert str(path) in result.stdout
    content = path.read_text(encoding="utf-8")
    assert "Subject: [tracker] alice: 1 due this week" in content
    assert f"tracker resolve {fid} yes" in content
    assert counts()["outbox"] == 1
    with freeze_time("2026-05-04 13:00:00"):
        again = cli("notify")
    assert again.exit_code == 0 and "Nothing new to report today." in again.stdout
    assert len(list(folder.glob("*.eml"))) == 1
    listing = cli("outbox", "--json")
    [record] = json.loads(listing.stdout)
    assert record["status"] == "sent" and record["dedupe_key"] == "daily:to::2026-05-04"


def test_notify_before_the_local_send_time_says_when(cli: CliInvoke) -> None:
    _configure(cli, timezone="Asia/Tokyo", notify__time="09:30")
    with freeze_time("2026-05-04 00:00:00"):  # 09:00 in Tokyo
        _add(cli)
        result = cli("notify")
    assert result.exit_code == 0
    assert "goes out after 09:30 Asia/Tokyo" in result.stdout


def test_notify_dry_run_prints_the_message_and_queues_nothing(
    cli: CliInvoke, counts: Callable[[], dict[str, int]]
) -> None:
    _configure(cli, email__to="me@example.org")
    with freeze_time("2026-05-05 09:00:00"):
        _add(cli, due="2026-05-05")
        text = cli("notify", "--dry-run")
        as_json = cli("notify", "--dry-run", "--json")
    assert text.exit_code == 0, text.output
    assert "To: me@example.org" in text.stdout
    assert "Subject: [tracker] alice: 1 due today - Qwen4 released as open weights" in text.stdout
    assert "DUE TODAY" in text.stdout
    [planned] = json.loads(as_json.stdout)
    assert planned["dedupe_key"] == "daily:to:me@example.org:2026-05-05"
    assert planned["recipients"] == ["me@example.org"]
    assert "<html>" in planned["html"]
    assert counts()["outbox"] == 0


def test_notify_over_smtp_delivers_to_the_configured_recipients(cli: CliInvoke) -> None:
    fid = _add(cli)
    with MailServer() as server:
        _configure(
            cli,
            notify__time="00:00",
            email__to="me@example.org, team@example.org",
            email__from="Tracker <tracker@example.org>",
            smtp__host="127.0.0.1",
            smtp__port=str(server.port),
            smtp__security="none",
            smtp__timeout="5",
        )
        result = cli("notify", "--json")
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["sent"] == [out["queued"][0]["id"]] and out["destination"].startswith("SMTP")
    # The email.to addresses share one message: one report a day, the envelope from the config.
    [got] = server.received
    assert got.mail_from == "tracker@example.org"
    assert sorted(got.rcpt_tos) == ["me@example.org", "team@example.org"]
    plain = got.message.get_body(("plain",))
    assert plain is not None and f"#{fid}  Qwen4 released as open weights" in plain.get_content()


def test_notify_over_starttls_trusts_the_configured_ca_file(cli: CliInvoke, tmp_path: Path) -> None:
    cert = make_certificate(tmp_path / "tls")
    _add(cli)
    with MailServer(tls="starttls", cert=cert) as server:
        _configure(
            cli,
            notify__time="00:00",
            email__to="me@example.org",
            smtp__host="localhost",
            smtp__port=str(server.port),
            smtp__security="starttls",
            smtp__cafile=str(cert[0]),
        )
        result = cli("notify")
    assert result.exit_code == 0, result.output
    assert "Sent 1 message via SMTP localhost" in result.stdout
    assert len(server.received) == 1


def test_notify_550_exits_1_and_outbox_shows_the_server_text(cli: CliInvoke) -> None:
    _add(cli)
    handler = Handler(data_replies=["554 5.7.1 Rejected by policy"])
    with MailServer(handler=handler) as server:
        _configure(
            cli,
            notify__time="00:00",
            email__to="me@example.org",
            smtp__host="127.0.0.1",
            smtp__port=str(server.port),
            smtp__security="none",
        )
        result = cli("notify")
    assert result.exit_code == 1
    assert "failed: 554 5.7.1 Rejected by policy" in result.stderr
    failed = cli("outbox", "--status", "failed")
    assert failed.exit_code == 0 and "Rejected by policy" in failed.stdout
    assert "No queued messages." in cli("outbox", "--status", "queued").stdout


def test_notify_with_smtp_down_keeps_the_message_queued(cli: CliInvoke) -> None:
    from tests.mailserver import free_port

    _add(cli)
    _configure(
        cli,
        notify__time="00:00",
        email__to="me@example.org",
        smtp__host="127.0.0.1",
        smtp__port=str(free_port()),
        smtp__security="none",
    )
    result = cli("notify")
    assert result.exit_code == 1
    assert "not sent, will retry" in result.stderr
    [record] = json.loads(cli("outbox", "--status", "queued", "--json").stdout)
    assert record["attempts"] == 1 and "127.0.0.1" in record["last_error"]


def test_notify_says_when_and_why_a_message_waits_for_a_retry(cli: CliInvoke) -> None:
    """Issue 13: with a message waiting for its retry, ``notify`` said "Nothing new"."""
    from tests.mailserver import free_port

    _configure(
        cli,
        timezone="Europe/Berlin",
        notify__time="08:00",
        email__to="me@example.org",
        smtp__host="127.0.0.1",
        smtp__port=str(free_port()),
        smtp__security="none",
    )
    with freeze_time("2026-05-04 12:00:00"):
        _add(cli, due="2026-05-05")
        failed = cli("notify")
    assert failed.exit_code == 1
    assert "Message 1: not sent, will retry at 2026-05-04 14:01 CEST: " in failed.stderr
    with freeze_time("2026-05-04 12:00:30"):  # the first retry is a minute later
        result = cli("notify")
        dry = cli("notify", "--dry-run")
        as_json = json.loads(cli("notify", "--json").stdout)
    assert result.exit_code == 0, result.output
    [line] = result.stdout.strip().splitlines()
    assert line.startswith(
        "Message 1 ([tracker] alice: 1 due this week) waits for a retry at 2026-05-04 14:01 CEST "
        "after 1 failed attempt: "
    )
    assert "127.0.0.1" in line and "Nothing new" not in line
    assert dry.stdout.strip() == line
    [waiting] = as_json["waiting"]
    assert waiting["id"] == 1 and waiting["next_attempt_at"].startswith("2026-05-04T12:01:00")
    _configure(cli, **{"forecasters__bob__email": "bob@example.org"})
    with freeze_time("2026-05-04 12:00:40"):  # a new report is queued; the old one still waits
        added = cli("add", "Bob's", "-p", "40%", "--due", "+1d", "--criteria", "c", "--by", "bob")
        assert added.exit_code == 0, added.output
        both = cli("notify")
    assert "Queued 1 report: bob@example.org: bob (2026-05-04)" in both.stdout
    assert "Message 1 ([tracker] alice: 1 due this week) waits for a retry at" in both.stdout


def test_notify_smtp_without_email_to_is_refused(
    cli: CliInvoke, counts: Callable[[], dict[str, int]]
) -> None:
    _add(cli)
    _configure(cli, notify__time="00:00", smtp__host="127.0.0.1")
    result = cli("notify")
    assert result.exit_code == 2
    assert result.stderr.startswith("Error: email.to:")
    assert counts()["outbox"] == 0


@pytest.mark.parametrize("value", ["not an address", "a@b.org, @nowhere"])
def test_notify_bad_email_to_is_refused(cli: CliInvoke, value: str) -> None:
    refused = cli("config", "set", "email.to", value)
    assert refused.exit_code == 2 and refused.stderr.startswith("Error: email.to:")
    config = Path(os.environ["TRACKER_CONFIG"])
    assert not config.exists()
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(f"[email]\nto = {json.dumps(value)}\n", encoding="utf-8")  # by hand
    result = cli("notify")
    assert result.exit_code == 2 and result.stderr.startswith("Error: email.to:")


def test_outbox_empty_and_bad_status(cli: CliInvoke) -> None:
    assert cli("outbox").stdout.strip() == "No messages."
    assert json.loads(cli("outbox", "--json").stdout) == []
    assert cli("outbox", "--status", "lost").exit_code == 2


def test_notify_weekly_sends_the_monday_digest_once_a_week(cli: CliInvoke) -> None:
    _configure(cli, notify__frequency="weekly", email__to="me@example.org")
    with freeze_time("2026-05-04 07:00:00"):  # Monday, before notify.time
        _add(cli, due="2026-05-08")
        early = cli("notify")
    assert "goes out after 08:00 UTC on Mondays (notify.time, timezone, notify.frequency)" in (
        early.stdout
    )
    with freeze_time("2026-05-04 09:00:00"):
        sent = cli("notify")
    assert "me@example.org: alice (2026-05-04)" in sent.stdout, sent.output
    with freeze_time("2026-05-08 09:00:00"):  # its due day: no daily mail in a weekly setting
        assert "Nothing new to report this week." in cli("notify").stdout
    [record] = json.loads(cli("outbox", "--json").stdout)
    assert record["dedupe_key"] == "daily:to:me@example.org:2026-05-04"
