"""``tracker user`` and ``tracker token``: the first admin is made on the server's machine."""

from __future__ import annotations

import json

from sqlalchemy.engine import Engine

from predictions import accounts
from predictions.db import write_session
from tests.conftest import CliInvoke


def test_user_add_prints_a_password_that_signs_in(cli: CliInvoke, engine: Engine) -> None:
    result = cli("user", "add", "mei", "--email", "mei@example.org", "--role", "admin")
    assert result.exit_code == 0, result.output
    assert result.output.startswith("Added mei (admin). Password (shown once): ")
    password = result.output.split("Password (shown once): ")[1].split()[0]
    with write_session(engine) as session:
        user = accounts.authenticate(session, "mei", password, address="127.0.0.1")
    assert (user.name, user.email, user.role) == ("mei", "mei@example.org", "admin")
    listed = json.loads(cli("user", "list", "--json").output)
    assert [(u["name"], u["role"], u["disabled_at"]) for u in listed] == [("mei", "admin", None)]


def test_user_commands_change_role_disable_and_reset(cli: CliInvoke, engine: Engine) -> None:
    assert cli("user", "add", "bo").exit_code == 0
    assert cli("user", "role", "bo", "viewer").output == "bo is now viewer\n"
    with write_session(engine) as session:
        token, _ = accounts.create_token(session, "bo", "cli", by="bo")
    tokens = json.loads(cli("token", "list", "--json").output)
    assert [(t["id"], t["user"], t["revoked_at"]) for t in tokens] == [(token.id, "bo", None)]
    assert "trk_" not in cli("token", "list").output.replace(token.prefix, "")
    disabled = cli("user", "disable", "bo")
    assert disabled.exit_code == 0 and "tokens revoked" in disabled.output
    assert json.loads(cli("token", "list", "--json").output)[0]["revoked_at"] is not None
    again = cli("user", "disable", "bo")
    assert again.exit_code == 2 and again.output == "Error: user bo is disabled already\n"
    assert cli("user", "enable", "bo").exit_code == 0
    reset = cli("user", "password", "bo")
    assert reset.exit_code == 0 and reset.output.startswith("New password for bo (shown once): ")
    assert "disabled" not in cli("user", "list").output


def test_user_commands_refuse_bad_input_in_one_line(cli: CliInvoke) -> None:
    assert cli("user", "add", "mei", "--role", "admin").exit_code == 0
    twice = cli("user", "add", "mei")
    assert twice.exit_code == 2
    assert twice.output == "Error: name: got 'mei', expected a name no other user has\n"
    email = cli("user", "add", "bo", "--email", "nope")
    assert email.exit_code == 2 and email.output.startswith("Error: email: got 'nope'")
    assert cli("user", "role", "nobody", "admin").output.startswith("Error: user: got 'nobody'")
    role = cli("user", "role", "mei", "wizard")
    assert role.exit_code == 2 and "wizard" in role.output
    revoke = cli("token", "revoke", "7")
    assert revoke.exit_code == 2 and revoke.output.startswith("Error: token: got 7")
    assert [u["name"] for u in json.loads(cli("user", "list", "--json").output)] == ["mei"]


def test_user_commands_name_a_missing_user_by_name(cli: CliInvoke) -> None:
    """A user is found by name: a missing one is refused with one line saying so, exit 2."""
    for args in (("role", "nobody", "admin"), ("disable", "nobody"), ("password", "nobody")):
        result = cli("user", *args)
        assert result.exit_code == 2
        assert result.stderr == (
            "Error: user: got 'nobody', expected the name of an existing user\n"
        )
