"""Accounts: argon2id hashes, tokens shown once and stored hashed, revocation and disabling at
once, the throttling rule, and the receipts chain over users and tokens."""

from __future__ import annotations

from datetime import timedelta

import pytest
from freezegun import freeze_time
from sqlalchemy import text
from sqlalchemy.engine import Engine

from predictions import accounts, ledger
from predictions.db import read_session, write_session
from predictions.errors import AuthError, InputError, NotFoundError, StateError, ThrottledError


def _add(engine: Engine, name: str = "mei", role: str = "admin") -> str:
    with write_session(engine) as s:
        _, password = accounts.add_user(s, name, email=f"{name}@example.org", role=role, by="t")
    return password


def _login(engine: Engine, name: str, password: str, address: str = "10.0.0.1") -> object:
    """authenticate, committing the recorded attempt even when it fails (as the service does)."""
    failure = None
    with write_session(engine) as s:
        try:
            user = accounts.authenticate(s, name, password, address=address)
        except ThrottledError:
            raise
        except AuthError as exc:
            failure = exc
    if failure is not None:
        raise failure
    return user


def test_accounts_password_is_an_argon2id_hash_and_verifies(engine: Engine) -> None:
    password = _add(engine)
    with engine.connect() as conn:
        stored = conn.execute(text("SELECT password_hash FROM account")).scalar_one()
    assert stored.startswith("$argon2id$") and password not in stored
    assert len(password) >= 16
    assert _login(engine, "mei", password).name == "mei"  # type: ignore[attr-defined]
    with pytest.raises(AuthError, match="wrong name or password"):
        _login(engine, "mei", password + "x")
    with pytest.raises(AuthError, match="wrong name or password"):
        _login(engine, "nobody", password)


def test_accounts_bad_input_names_the_field_and_changes_nothing(engine: Engine) -> None:
    _add(engine)
    with write_session(engine) as s:
        for kwargs, field in (
            ({"name": "bo", "email": None, "role": "wizard"}, "role"),
            ({"name": "bo", "email": "not an address", "role": "member"}, "email"),
            ({"name": "mei", "email": None, "role": "member"}, "name"),
            ({"name": "manifold", "email": None, "role": "member"}, "name"),
            ({"name": "a\nb", "email": None, "role": "member"}, "forecaster"),
        ):
            with pytest.raises(InputError) as caught:
                accounts.add_user(s, by="t", **kwargs)  # type: ignore[arg-type]
            assert caught.value.field == field
        with pytest.raises(InputError, match="password: .* at least 10 characters"):
            accounts.add_user(s, "bo", email=None, role="member", by="t", password="short")
        with pytest.raises(NotFoundError):
            accounts.set_role(s, "nobody", "admin", by="t")
    with read_session(engine) as s:
        assert [u.name for u in accounts.list_users(s)] == ["mei"]


def test_accounts_token_is_shown_once_stored_hashed_and_revoked_at_once(engine: Engine) -> None:
    _add(engine)
    with write_session(engine) as s:
        token, secret = accounts.create_token(s, "mei", "laptop", by="mei")
    assert secret.startswith("trk_") and len(secret) > 40 and token.prefix == secret[:12]
    with engine.connect() as conn:
        row = conn.execute(text("SELECT * FROM api_token")).mappings().one()
    assert secret not in [str(v) for v in row.values()]
    import hashlib

    assert row["token_hash"] == hashlib.sha256(secret.encode()).hexdigest()
    with read_session(engine) as s:
        found = accounts.token_user(s, secret)
        assert found is not None and found[0].name == "mei"
        assert accounts.token_user(s, secret + "x") is None
        assert [t.name for t in accounts.list_tokens(s, "mei")] == ["laptop"]
    with write_session(engine) as s:
        accounts.revoke_token(s, token.id, by="mei")
        with pytest.raises(StateError):
            accounts.revoke_token(s, token.id, by="mei")
    with read_session(engine) as s:
        assert accounts.token_user(s, secret) is None


def test_accounts_disable_ends_sessions_and_tokens(engine: Engine) -> None:
    password = _add(engine, "bo", "member")
    with write_session(engine) as s:
        user = accounts.get_user(s, "bo")
        cookie, _ = accounts.start_session(s, user)
        _, secret = accounts.create_token(s, "bo", "cli", by="bo")
    with write_session(engine) as s:
        accounts.disable_user(s, "bo", by="mei")
    with read_session(engine) as s:
        assert accounts.session_user(s, cookie) is None
        assert accounts.token_user(s, secret) is None
        assert all(t.revoked_at is not None for t in accounts.list_tokens(s, "bo"))
    with pytest.raises(AuthError):
        _login(engine, "bo", password)
    with write_session(engine) as s:
        accounts.enable_user(s, "bo", by="mei")
    assert _login(engine, "bo", password).name == "bo"  # type: ignore[attr-defined]
    with read_session(engine) as s:
        assert accounts.token_user(s, secret) is None  # revoked tokens stay revoked


def test_accounts_new_password_ends_sessions(engine: Engine) -> None:
    old = _add(engine, "bo", "member")
    with write_session(engine) as s:
        cookie, _ = accounts.start_session(s, accounts.get_user(s, "bo"))
        new = accounts.set_password(s, "bo", by="mei")
    with read_session(engine) as s:
        assert accounts.session_user(s, cookie) is None
    with pytest.raises(AuthError):
        _login(engine, "bo", old)
    _login(engine, "bo", new)


def test_accounts_session_expires(engine: Engine) -> None:
    _add(engine)
    with freeze_time("2030-01-01 12:00:00"):
        with write_session(engine) as s:
            cookie, _ = accounts.start_session(s, accounts.get_user(s, "mei"))
        with read_session(engine) as s:
            assert accounts.session_user(s, cookie) is not None
    with freeze_time("2030-01-01 12:00:00") as frozen:
        frozen.tick(accounts.SESSION_LIFETIME + timedelta(seconds=1))
        with read_session(engine) as s:
            assert accounts.session_user(s, cookie) is None


def test_accounts_throttle_locks_a_name_after_five_failures(engine: Engine) -> None:
    password = _add(engine, "bo", "member")
    rule = accounts.THROTTLE["name"]
    with freeze_time("2030-01-01 12:00:00") as frozen:
        for i in range(rule.failures):
            with pytest.raises(AuthError, match="wrong"):
                _login(engine, "bo", "wrong-password", address=f"10.0.0.{i}")
            frozen.tick(timedelta(seconds=30))
        with pytest.raises(ThrottledError) as caught:
            _login(engine, "bo", password, address="10.9.9.9")  # the right password, too
        assert 0 < caught.value.retry_after <= rule.lock.total_seconds()
        frozen.tick(rule.lock)
        assert _login(engine, "bo", password).name == "bo"  # type: ignore[attr-defined]
        # a success starts the count of the name's failures anew
        with pytest.raises(AuthError, match="wrong"):
            _login(engine, "bo", "wrong-password")
        assert _login(engine, "bo", password).name == "bo"  # type: ignore[attr-defined]


def test_accounts_throttle_locks_an_address(engine: Engine) -> None:
    password = _add(engine, "bo", "member")
    rule = accounts.THROTTLE["address"]
    with freeze_time("2030-01-01 12:00:00") as frozen:
        for i in range(rule.failures):
            with pytest.raises(AuthError):
                _login(engine, f"guess{i}", "wrong-password", address="192.0.2.7")
        with pytest.raises(ThrottledError):
            _login(engine, "bo", password, address="192.0.2.7")
        assert _login(engine, "bo", password, address="192.0.2.8").name == "bo"  # type: ignore[attr-defined]
        frozen.tick(rule.lock + timedelta(seconds=1))
        assert _login(engine, "bo", password, address="192.0.2.7").name == "bo"  # type: ignore[attr-defined]


def test_accounts_changes_are_in_the_receipts_chain(engine: Engine) -> None:
    _add(engine)
    _add(engine, "bo", "member")
    with write_session(engine) as s:
        accounts.set_role(s, "bo", "viewer", by="mei")
        token, _ = accounts.create_token(s, "bo", "cli", by="bo")
        accounts.revoke_token(s, token.id, by="mei")
        accounts.set_password(s, "bo", by="mei")
        accounts.disable_user(s, "bo", by="mei")
    with read_session(engine) as s:
        report = ledger.verify(s)
    assert report.ok, report.problem
    with engine.begin() as conn:
        kinds = conn.execute(text("SELECT kind FROM receipt ORDER BY seq")).scalars().all()
        assert kinds == ["account", "account", "account", "token", "revoke", "account", "account"]
        conn.execute(text("UPDATE account SET role = 'admin' WHERE name = 'bo'"))
    with read_session(engine) as s:
        report = ledger.verify(s)
    assert not report.ok and "user 2: role is 'admin' in the table" in str(report.problem)
