"""Every configuration key refuses a bad value at ``config set`` (one ``Error:`` line naming the
key, the value and what is expected; exit 2; the file unchanged), by the one check that also runs
where the value is read."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.conftest import CliInvoke
from tracker.config import FORECASTER_EMAIL, KEYS

#: key -> (a good value, what `config get` then prints, a bad value, a word the error names)
CASES: dict[str, tuple[str, str, str, str]] = {
    "database.url": ("sqlite:////tmp/t.db", "sqlite:////tmp/t.db", "mysql:/x", "postgresql://"),
    "forecaster": ("Ada Lovelace", "Ada Lovelace", "bob\nBcc: x@evil.example", "forecaster"),
    "timezone": ("Asia/Shanghai", "Asia/Shanghai", "Mars/Olympus", "IANA time zone"),
    "email.to": (
        "a@example.org, b@example.org",
        "a@example.org, b@example.org",
        "not-an-email",
        "email addresses",
    ),
    "email.from": (
        "tracker@example.org",
        "tracker@example.org",
        "a@x.org, b@x.org",
        "one email address",
    ),
    FORECASTER_EMAIL: ("ada@example.org", "ada@example.org", "ada", "email address"),
    "email.outbox_dir": ("/tmp/mail", "/tmp/mail", "   ", "a value"),
    "email.lease_seconds": ("120", "120", "-5", "a whole number >= 1"),
    "smtp.host": ("mail.example.org", "mail.example.org", " ", "a value"),
    "smtp.port": ("2525", "2525", "99999", "from 1 to 65535"),
    "smtp.security": ("tls", "tls", "ssl", "starttls, tls, none"),
    "smtp.username": ("ada", "ada", "", "a value"),
    "smtp.timeout": ("12.5", "12.5", "0", "seconds > 0"),
    "smtp.cafile": ("/etc/ssl/ca.pem", "/etc/ssl/ca.pem", "", "a value"),
    "notify.time": ("7:30", "07:30", "25:00", "HH:MM"),
    "notify.frequency": ("weekly", "weekly", "monthly", "daily, weekly"),
    "notify.overdue_interval_days": ("3", "3", "0", "a whole number >= 1"),
    "notify.interval_minutes": ("5", "5", "-1", "a whole number >= 1"),
    "server.base_url": (
        "https://forecasts.example.org/",
        "https://forecasts.example.org",
        "ftp://x",
        "http:// or https:// URL",
    ),
    "server.url": ("http://127.0.0.1:8080", "http://127.0.0.1:8080", "localhost", "https://"),
    "resolvers.grace_days": ("0", "0", "-2", "a whole number >= 0"),
    "resolvers.allow_private": ("yes", "True", "perhaps", "true or false"),
    "resolvers.allowed_networks": (
        "10.1.0.0/16,fd00::/8",
        "10.1.0.0/16, fd00::/8",
        "10.1.0.0/33",
        "CIDR",
    ),
    "resolvers.concurrency": ("4", "4", "0", "a whole number >= 1"),
    "resolvers.per_host": ("2", "2", "two", "a whole number >= 1"),
    "resolvers.timeout": ("5", "5.0", "-3", "seconds > 0"),
    "resolvers.max_bytes": ("1000", "1000", "0", "a whole number >= 1"),
    "resolvers.interval_minutes": ("30", "30", "0", "a whole number >= 1"),
    "resolvers.lease_seconds": ("60", "60", "1.5", "a whole number >= 1"),
}


def _name(key: str) -> str:
    return "forecasters.ada.email" if key == FORECASTER_EMAIL else key


def test_config_checks_cover_every_key() -> None:
    assert set(CASES) == set(KEYS)


@pytest.mark.parametrize("key", sorted(CASES))
def test_config_set_refuses_a_bad_value_and_keeps_a_good_one(cli: CliInvoke, key: str) -> None:
    good, shown, bad, expected = CASES[key]
    config = Path(os.environ["TRACKER_CONFIG"])
    assert cli("config", "set", "notify.time", "09:00").exit_code == 0
    before = config.read_bytes()
    result = cli("config", "set", "--", _name(key), bad)
    assert result.exit_code == 2, result.output
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("Error: ") and expected in line, line
    assert _name(key) in line or key in ("forecaster", "timezone"), line
    assert config.read_bytes() == before
    result = cli("config", "set", _name(key), good)
    assert result.exit_code == 0, result.output
    assert cli("config", "get", _name(key)).stdout.strip() == shown
    assert cli("config", "unset", _name(key)).exit_code == 0


def test_config_forecaster_emails_are_set_shown_and_unset_by_name(cli: CliInvoke) -> None:
    import json

    assert cli("config", "set", "forecasters.j.doe.email", "Jo <jo@example.org>").exit_code == 0
    assert cli("config", "set", "forecasters.Zoë.email", "zoe@example.org").exit_code == 0
    assert cli("config", "get", "forecasters.j.doe.email").stdout.strip() == "jo@example.org"
    text = Path(os.environ["TRACKER_CONFIG"]).read_text("utf-8")
    assert '[forecasters."j.doe"]' in text
    values = json.loads(cli("config", "show", "--json").stdout)["values"]
    assert values["forecasters.j.doe.email"] == "jo@example.org"
    assert values["forecasters.Zoë.email"] == "zoe@example.org"
    assert "forecasters.j.doe.email" in cli("config", "show").stdout
    assert cli("config", "unset", "forecasters.j.doe.email").exit_code == 0
    assert cli("config", "get", "forecasters.j.doe.email").stdout.strip() == ""
    for bad in ("forecasters..email", "forecasters.NAME.email", "forecasters.ada.phone"):
        result = cli("config", "set", bad, "x@example.org")
        assert result.exit_code == 2 and "key: got" in result.stderr


def test_a_hand_edited_bad_value_fails_where_it_is_read_with_the_same_line(
    cli: CliInvoke,
) -> None:
    """The check of ``config set`` also runs where the value is read: ``notify`` refuses the
    port, other commands run, and the value can be fixed."""
    config = Path(os.environ["TRACKER_CONFIG"])
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text('[smtp]\nhost = "127.0.0.1"\nport = 99999\n[email]\nto = "a@x.org"\n')
    refused = cli("config", "set", "smtp.port", "99999")
    result = cli("notify")
    assert result.exit_code == 2
    for stderr in (refused.stderr, result.stderr):  # one check: the same line but for quotes
        [line] = stderr.replace("'", "").strip().splitlines()
        assert line == "Error: smtp.port: got 99999, expected a whole number from 1 to 65535"
    assert cli("list").exit_code == 0
    assert cli("config", "set", "smtp.port", "2525").exit_code == 0
