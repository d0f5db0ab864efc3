"""Accounts of the service: users and roles, passwords, API tokens, web sessions, throttling.

A user's ``name`` is the forecaster name the ledger records on everything they do. Roles, in
order of what they may do (:data:`ROLES`): ``viewer`` reads; ``member`` also forecasts, and
changes the forecasts they own; ``admin`` may do everything, users included.

- Passwords are hashed with argon2id (argon2-cffi's defaults); a new user, and a password reset,
  get a generated password shown once (:func:`new_password`), which the user may keep or change.
- API tokens are 32 random bytes (``trk_`` and 43 URL-safe characters), shown once; only their
  sha256 is kept, with a short ``prefix`` that names them in lists. A revoked token fails at once:
  every request looks its hash up.
- Web sessions live in the database (``web_session``, keyed by the sha256 of the cookie), so any
  number of server processes share them; each carries its CSRF token.
- Sign-in throttling, the one rule (:data:`THROTTLE`): a name with 5 failed sign-ins within 15
  minutes (since its last success), or an address with 20, is refused for 15 minutes after the
  last of them, whatever the password.

Creating a user, changing their role, email, password or state, and creating or revoking a token
append a receipts-chain entry (kinds ``account``, ``token``, ``revoke``; see
:mod:`predictions.account_chain`) in the same transaction, so ``tracker verify`` catches a row edited
behind the tracker's back. Sessions, throttling and ``last_used_at`` are operational state and are
not chained.

Every function takes the database as :mod:`predictions.store` does (a Session, or a sqlite3
connection) and runs in the caller's transaction; bad input raises
:class:`~predictions.errors.InputError` naming the field.
"""

from __future__ import annotations

import re
import secrets
import sqlite3
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from predictions.account_chain import (
    account_state,
    revoke_payload,
    sha256_hex,
    token_payload,
)
from predictions.chain import RECEIPTS, Executor, SQLiteExecutor, iso, loaded
from predictions.clock import now as clock_now
from predictions.errors import (
    AuthError,
    ForbiddenError,
    InputError,
    NotFoundError,
    StateError,
    ThrottledError,
)
from predictions.records import is_market
from predictions.validation import require_text

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    Database = Session | sqlite3.Connection
else:
    Database = Any

__all__ = [
    "OWNED",
    "ROLES",
    "SESSION_LIFETIME",
    "THROTTLE",
    "Throttle",
    "TokenRow",
    "UserRow",
    "SessionRow",
    "add_user",
    "allows",
    "SignIn",
    "authenticate",
    "check_owner",
    "check_sign_in",
    "create_token",
    "disable_user",
    "enable_user",
    "end_session",
    "end_sessions",
    "get_user",
    "list_tokens",
    "list_users",
    "new_password",
    "owner_of",
    "parse_role",
    "record_sign_in",
    "revoke_token",
    "note_use",
    "session_user",
    "set_email",
    "set_password",
    "set_role",
    "stale",
    "start_session",
    "token_record",
    "token_user",
    "user_record",
]

#: The roles, from the least to the most allowed.
ROLES = ("viewer", "member", "admin")

#: How long a web session lasts from sign-in (a sign-in starts a new one).
SESSION_LIFETIME = timedelta(days=14)

#: A session's or a token's ``last_seen_at``/``last_used_at`` is written at most this often.
_TOUCH_EVERY = timedelta(minutes=1)

_PASSWORD_MIN = 10
_TOKEN_PREFIX = "trk_"


@dataclass(frozen=True)
class Throttle:
    """``failures`` failed sign-ins within ``window`` lock the name (or address) until ``lock``
    after the last of them."""

    failures: int
    window: timedelta
    lock: timedelta


#: The throttling rule, for a name (failures since its last success) and for an address (every
#: failure: a shared office address gets more room).
THROTTLE = {
    "name": Throttle(5, timedelta(minutes=15), timedelta(minutes=15)),
    "address": Throttle(20, timedelta(minutes=15), timedelta(minutes=15)),
}


@dataclass(frozen=True)
class UserRow:
    """A user as the service sees them (never the password hash)."""

    id: int
    name: str
    email: str | None
    role: str
    created_at: datetime
    disabled_at: datetime | None

    @property
    def active(self) -> bool:
        return self.disabled_at is None


@dataclass(frozen=True)
class TokenRow:
    """An API token as listed: ``prefix`` names it, the secret is never kept."""

    id: int
    user: str
    name: str
    prefix: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


@dataclass(frozen=True)
class SessionRow:
    """A signed-in browser: its id (the cookie's sha256), CSRF token and times."""

    id: str
    account_id: int
    csrf_token: str
    created_at: datetime
    expires_at: datetime
    last_seen_at: datetime


# --- small parts -------------------------------------------------------------------------------


def _x(db: Database) -> Executor:
    if isinstance(db, sqlite3.Connection):
        return SQLiteExecutor(db)
    from predictions.db import executor

    return executor(db)


def _hasher() -> Any:
    from argon2 import PasswordHasher  # argon2id, the library's recommended parameters

    return PasswordHasher()


def parse_role(value: object, field: str = "role") -> str:
    """One of :data:`ROLES`."""
    text = str(value).strip().lower() if value is not None else ""
    if text not in ROLES:
        raise InputError(field, value, "one of " + ", ".join(ROLES))
    return text


def allows(role: str, needed: str) -> bool:
    """Whether ``role`` is at least ``needed`` (admin > member > viewer)."""
    return ROLES.index(role) >= ROLES.index(needed)


def _name(value: object) -> str:
    text = str(require_text(value, "forecaster", multiline=False))
    if is_market(text):
        raise InputError("name", value, "a person's name, not a market's")
    return text


_EMAIL = re.compile(r"^[^@\s<>,;\"]+@[^@\s<>,;\"]+\.[^@\s<>,;\"]+$")


def _email(value: object) -> str | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    text = str(value).strip()
    if len(text) > 320 or not _EMAIL.match(text):
        raise InputError("email", value, "an email address such as mei@example.org")
    return text


def new_password() -> str:
    """A generated password (16 URL-safe characters, 96 random bits), shown once."""
    return secrets.token_urlsafe(12)


def _check_password(password: object) -> str:
    if not isinstance(password, str) or len(password) < _PASSWORD_MIN:
        raise InputError(
            "password",
            "(hidden)",
            f"at least {_PASSWORD_MIN} characters",
        )
    if len(password) > 1000:
        raise InputError("password", "(hidden)", "at most 1000 characters")
    return password


def user_record(user: UserRow) -> dict[str, Any]:
    """A user as the API shows them."""
    return {
        "id": user.id,
        "name": user.name,
        "email": user.email,
        "role": user.role,
        "created_at": iso(user.created_at),
        "disabled_at": iso(user.disabled_at),
    }


def token_record(token: TokenRow) -> dict[str, Any]:
    """A token as the API lists it (never its secret)."""
    return {
        "id": token.id,
        "user": token.user,
        "name": token.name,
        "prefix": token.prefix,
        "created_at": iso(token.created_at),
        "last_used_at": iso(token.last_used_at),
        "revoked_at": iso(token.revoked_at),
    }


# --- users -------------------------------------------------------------------------------------

_USER = "SELECT id, name, email, role, created_at, disabled_at FROM account"


def _user(r: Any) -> UserRow:
    return UserRow(r[0], r[1], r[2], r[3], loaded(r[4]), loaded(r[5]))  # type: ignore[arg-type]


def _find(x: Executor, name: str) -> UserRow | None:
    row = x.execute(f"{_USER} WHERE name = :n", {"n": name}).fetchone()
    return None if row is None else _user(row)


def get_user(db: Database, name: str) -> UserRow:
    """The user called ``name``; :class:`NotFoundError` if there is none."""
    user = _find(_x(db), name)
    if user is None:
        raise NotFoundError("user", name, key="name")
    return user


def list_users(db: Database) -> list[UserRow]:
    """Every user, by name."""
    return [_user(r) for r in _x(db).execute(f"{_USER} ORDER BY name").fetchall()]


def _record(x: Executor, user_id: int, change: str, by: str, at: datetime) -> None:
    """Append the ``account`` entry: the user's row as it now is (its password by a digest)."""
    row = x.execute(
        "SELECT name, email, role, password_hash, created_at, disabled_at FROM account "
        "WHERE id = :id",
        {"id": user_id},
    ).fetchone()
    payload = {"id": user_id, "change": change, "by": by, **account_state(row)}
    RECEIPTS.append(x, "account", payload, forecast_id=None, at=at)


def add_user(
    db: Database,
    name: str,
    *,
    email: str | None,
    role: str,
    by: str,
    password: str | None = None,
) -> tuple[UserRow, str]:
    """Create a user; returns the user and their password (generated unless given), to show
    once."""
    x = _x(db)
    name, email, role = _name(name), _email(email), parse_role(role)
    password = new_password() if password is None else _check_password(password)
    if _find(x, name) is not None:
        raise InputError("name", name, "a name no other user has")
    at = clock_now()
    x.execute(
        "INSERT INTO account (name, email, role, password_hash, created_at) "
        "VALUES (:n, :e, :r, :h, :at)",
        {"n": name, "e": email, "r": role, "h": _hasher().hash(password), "at": at},
    )
    user = get_user(db, name)
    _record(x, user.id, "add", by, at)
    return user, password


def _change(db: Database, name: str, change: str, by: str, sql: str, **params: Any) -> UserRow:
    x = _x(db)
    user = get_user(db, name)
    x.execute(f"UPDATE account SET {sql} WHERE id = :id", {"id": user.id, **params})
    _record(x, user.id, change, by, clock_now())
    return get_user(db, name)


def set_role(db: Database, name: str, role: str, *, by: str) -> UserRow:
    """Give ``name`` another role."""
    return _change(db, name, "role", by, "role = :r", r=parse_role(role))


def set_email(db: Database, name: str, email: str | None, *, by: str) -> UserRow:
    """Change (or clear) ``name``'s email address."""
    return _change(db, name, "email", by, "email = :e", e=_email(email))


def set_password(db: Database, name: str, password: str | None = None, *, by: str) -> str:
    """Set ``name``'s password (a generated one unless given) and end their sessions; returns it.
    Their API tokens stay."""
    password = new_password() if password is None else _check_password(password)
    user = _change(db, name, "password", by, "password_hash = :h", h=_hasher().hash(password))
    end_sessions(db, user.id)
    return password


def disable_user(db: Database, name: str, *, by: str) -> UserRow:
    """Disable ``name``: their sessions end and their tokens are revoked at once; what they
    recorded stays theirs."""
    if not get_user(db, name).active:
        raise StateError(f"user {name} is disabled already")
    user = _change(db, name, "disable", by, "disabled_at = :at", at=clock_now())
    end_sessions(db, user.id)
    for token in list_tokens(db, name):
        if token.revoked_at is None:
            revoke_token(db, token.id, by=by)
    return user


def enable_user(db: Database, name: str, *, by: str) -> UserRow:
    """Let a disabled user sign in again (their old tokens stay revoked)."""
    if get_user(db, name).active:
        raise StateError(f"user {name} is not disabled")
    return _change(db, name, "enable", by, "disabled_at = NULL")


# --- sign-in and throttling ----------------------------------------------------------------------

#: A hash to verify against when the name is unknown, so that a wrong name takes as long as a
#: wrong password (no telling which names exist by the time an answer takes).
_DUMMY: list[str] = []


def _locked_until(x: Executor, column: str, value: str, at: datetime) -> datetime | None:
    rule = THROTTLE[column]
    since = ""
    if column == "name":  # failures since the name's last success
        since = " AND at > COALESCE((SELECT MAX(at) FROM login_attempt WHERE name = :v AND ok), :w)"
    rows = x.execute(
        f"SELECT at FROM login_attempt WHERE {column} = :v AND NOT ok AND at > :w{since} "
        "ORDER BY at DESC LIMIT :n",
        {"v": value, "w": at - rule.window - rule.lock, "n": rule.failures},
    ).fetchall()
    if len(rows) < rule.failures:
        return None
    last, first = loaded(rows[0][0]), loaded(rows[-1][0])
    assert last is not None and first is not None
    if last - first <= rule.window and at < last + rule.lock:
        return last + rule.lock
    return None


@dataclass(frozen=True)
class SignIn:
    """A checked sign-in attempt, to record (:func:`record_sign_in`): ``user`` when it succeeds;
    ``rehash``: the password hashed anew when the stored hash's parameters are out of date."""

    name: str
    address: str
    at: datetime
    user: UserRow | None
    rehash: str | None = None


def check_sign_in(db: Database, name: str, password: str, *, address: str) -> SignIn:
    """Check a sign-in without writing (the slow argon2 verification runs here, so a caller can
    hold no write lock meanwhile); :class:`ThrottledError` while the name or the address is
    locked (:data:`THROTTLE`; such an attempt is not counted). A wrong name takes as long as a
    wrong password."""
    x = _x(db)
    at = clock_now()
    name, address = str(name).strip()[:200], str(address)[:64]
    for column, value in (("name", name), ("address", address)):
        until = _locked_until(x, column, value, at)
        if until is not None:
            wait = max(1, int((until - at).total_seconds()) + 1)
            raise ThrottledError(
                f"too many failed sign-ins; try again in {(wait + 59) // 60} minutes", wait
            )
    row = x.execute(
        "SELECT id, name, email, role, created_at, disabled_at, password_hash FROM account "
        "WHERE name = :n",
        {"n": name},
    ).fetchone()
    if row is None:
        _verify(_dummy_hash(), password)
        return SignIn(name, address, at, None)
    stored = str(row[6])
    user = _user(row)
    if not _verify(stored, password) or not user.active:
        return SignIn(name, address, at, None)
    rehash = _hasher().hash(password) if _hasher().check_needs_rehash(stored) else None
    return SignIn(name, address, at, user, rehash)


def record_sign_in(db: Database, attempt: SignIn) -> UserRow:
    """Record a checked attempt (and a rehashed password); returns the user, or raises
    :class:`AuthError` (one message for a wrong name, a wrong password and a disabled user).
    Commit the transaction either way: a failure must be recorded."""
    x = _x(db)
    at, ok = attempt.at, attempt.user is not None
    x.execute(
        "INSERT INTO login_attempt (name, address, at, ok) VALUES (:n, :a, :at, :ok)",
        {"n": attempt.name, "a": attempt.address, "at": at, "ok": ok},
    )
    x.execute("DELETE FROM login_attempt WHERE at < :old", {"old": at - timedelta(days=1)})
    if attempt.user is None:
        raise AuthError("wrong name or password")
    if attempt.rehash is not None:
        x.execute(
            "UPDATE account SET password_hash = :h WHERE id = :id",
            {"h": attempt.rehash, "id": attempt.user.id},
        )
        _record(x, attempt.user.id, "rehash", attempt.name, at)
    return attempt.user


def authenticate(db: Database, name: str, password: str, *, address: str) -> UserRow:
    """:func:`check_sign_in` then :func:`record_sign_in` in one transaction (commit it even
    when :class:`AuthError` is raised)."""
    return record_sign_in(db, check_sign_in(db, name, password, address=address))


def _verify(password_hash: str, password: str) -> bool:
    from argon2.exceptions import InvalidHashError, VerificationError

    try:
        return bool(_hasher().verify(password_hash, password))
    except (VerificationError, InvalidHashError):
        return False


def _dummy_hash() -> str:
    if not _DUMMY:
        _DUMMY.append(_hasher().hash(secrets.token_urlsafe(16)))
    return _DUMMY[0]


# --- web sessions ------------------------------------------------------------------------------

_SESSION = (
    "SELECT s.id, s.account_id, s.csrf_token, s.created_at, s.expires_at, s.last_seen_at, "
    "a.id, a.name, a.email, a.role, a.created_at, a.disabled_at "
    "FROM web_session s JOIN account a ON a.id = s.account_id"
)


def start_session(db: Database, user: UserRow) -> tuple[str, SessionRow]:
    """A new session for ``user``: returns the cookie's value (shown to the browser only) and the
    session. Expired sessions of anyone are swept away here."""
    x = _x(db)
    at = clock_now()
    x.execute("DELETE FROM web_session WHERE expires_at < :at", {"at": at})
    cookie = secrets.token_urlsafe(32)
    row = SessionRow(
        sha256_hex(cookie), user.id, secrets.token_urlsafe(32), at, at + SESSION_LIFETIME, at
    )
    x.execute(
        "INSERT INTO web_session (id, account_id, csrf_token, created_at, expires_at, "
        "last_seen_at) VALUES (:id, :a, :c, :at, :exp, :at)",
        {"id": row.id, "a": user.id, "c": row.csrf_token, "at": at, "exp": row.expires_at},
    )
    return cookie, row


def session_user(db: Database, cookie: str) -> tuple[UserRow, SessionRow] | None:
    """The active user and session a cookie's value names, or None (unknown, expired, or the
    user disabled)."""
    row = _x(db).execute(f"{_SESSION} WHERE s.id = :id", {"id": sha256_hex(cookie)}).fetchone()
    if row is None:
        return None
    session = SessionRow(row[0], row[1], row[2], *(loaded(v) for v in row[3:6]))  # type: ignore[arg-type]
    user = _user(row[6:])
    if session.expires_at <= clock_now() or not user.active:
        return None
    return user, session


def stale(row: TokenRow | SessionRow) -> bool:
    """Whether a token's ``last_used_at`` (a session's ``last_seen_at``) is old enough to write
    anew: once a minute, so that most requests need no write transaction."""
    last = row.last_used_at if isinstance(row, TokenRow) else row.last_seen_at
    return last is None or clock_now() - last >= _TOUCH_EVERY


def note_use(db: Database, row: TokenRow | SessionRow) -> None:
    """Write now as a token's ``last_used_at`` (a session's ``last_seen_at``)."""
    table, column = (
        ("api_token", "last_used_at")
        if isinstance(row, TokenRow)
        else ("web_session", "last_seen_at")
    )
    _x(db).execute(
        f"UPDATE {table} SET {column} = :at WHERE id = :id", {"at": clock_now(), "id": row.id}
    )


def end_session(db: Database, cookie: str) -> None:
    """Sign one browser out (nothing happens for an unknown cookie)."""
    _x(db).execute("DELETE FROM web_session WHERE id = :id", {"id": sha256_hex(cookie)})


def end_sessions(db: Database, user_id: int) -> int:
    """Sign ``user_id`` out everywhere (every browser; tokens stay); returns how many ended."""
    x = _x(db)
    (count,) = x.execute(
        "SELECT COUNT(*) FROM web_session WHERE account_id = :a", {"a": user_id}
    ).fetchone()
    x.execute("DELETE FROM web_session WHERE account_id = :a", {"a": user_id})
    return int(count)


# --- API tokens --------------------------------------------------------------------------------

_TOKEN = (
    "SELECT t.id, a.name, t.name, t.prefix, t.created_at, t.last_used_at, t.revoked_at "
    "FROM api_token t JOIN account a ON a.id = t.account_id"
)


def _token(r: Any) -> TokenRow:
    return TokenRow(r[0], r[1], r[2], r[3], *(loaded(v) for v in r[4:7]))  # type: ignore[arg-type]


def create_token(db: Database, user: str, name: str, *, by: str) -> tuple[TokenRow, str]:
    """A new API token for ``user`` called ``name``: returns it and its secret, to show once."""
    x = _x(db)
    owner = get_user(db, user)
    if not owner.active:
        raise StateError(f"user {user} is disabled")
    label = str(require_text(name, "token name", multiline=False))
    if len(label) > 100:
        raise InputError("token name", label, "at most 100 characters")
    secret = _TOKEN_PREFIX + secrets.token_urlsafe(32)
    at = clock_now()
    digest = sha256_hex(secret)
    x.execute(
        "INSERT INTO api_token (account_id, name, token_hash, prefix, created_at) "
        "VALUES (:a, :n, :h, :p, :at)",
        {"a": owner.id, "n": label, "h": digest, "p": secret[:12], "at": at},
    )
    row = x.execute(f"{_TOKEN} WHERE t.token_hash = :h", {"h": digest}).fetchone()
    token = _token(row)
    payload = token_payload(token.id, owner.id, label, token.prefix, digest, at, by)
    RECEIPTS.append(x, "token", payload, forecast_id=None, at=at)
    return token, secret


def list_tokens(db: Database, user: str | None = None) -> list[TokenRow]:
    """The tokens of ``user`` (everyone's when None), newest first, revoked ones included."""
    x = _x(db)
    if user is None:
        rows = x.execute(f"{_TOKEN} ORDER BY t.id DESC").fetchall()
    else:
        rows = x.execute(f"{_TOKEN} WHERE a.name = :n ORDER BY t.id DESC", {"n": user}).fetchall()
    return [_token(r) for r in rows]


def revoke_token(db: Database, token_id: int, *, by: str, user: str | None = None) -> TokenRow:
    """Revoke a token (``user``: only if it is theirs); it fails from the next request on."""
    x = _x(db)
    row = x.execute(f"{_TOKEN} WHERE t.id = :id", {"id": token_id}).fetchone()
    if row is None or (user is not None and row[1] != user):
        raise NotFoundError("token", token_id)
    if row[6] is not None:
        raise StateError(f"token {token_id} is revoked already")
    at = clock_now()
    x.execute("UPDATE api_token SET revoked_at = :at WHERE id = :id", {"at": at, "id": token_id})
    RECEIPTS.append(x, "revoke", revoke_payload(token_id, at, by), forecast_id=None, at=at)
    return _token(x.execute(f"{_TOKEN} WHERE t.id = :id", {"id": token_id}).fetchone())


def token_user(db: Database, secret: str) -> tuple[UserRow, TokenRow] | None:
    """The active user a token's secret names, and the token; None when it is unknown, revoked
    or its user disabled."""
    if not secret.startswith(_TOKEN_PREFIX):
        return None
    x = _x(db)
    row = x.execute(f"{_TOKEN} WHERE t.token_hash = :h", {"h": sha256_hex(secret)}).fetchone()
    if row is None or row[6] is not None:
        return None
    token = _token(row)
    user = _find(x, token.user)
    if user is None or not user.active:
        return None
    return user, token


# --- ownership ---------------------------------------------------------------------------------

#: What a path parameter names, and how to find who owns it: a forecast's author owns it and its
#: checks and proposals; a user owns their tokens.
OWNED: dict[str, tuple[str, str]] = {
    "forecast_id": ("forecast", "SELECT author FROM forecast WHERE id = :id"),
    "check_id": (
        "check",
        "SELECT f.author FROM check_spec c JOIN forecast f ON f.id = c.forecast_id WHERE c.id = :id",
    ),
    "proposal_id": (
        "proposal",
        "SELECT f.author FROM proposal p JOIN forecast f ON f.id = p.forecast_id WHERE p.id = :id",
    ),
    "token_id": (
        "token",
        "SELECT a.name FROM api_token t JOIN account a ON a.id = t.account_id WHERE t.id = :id",
    ),
}


def owner_of(db: Database, parameter: str, value: object) -> str:
    """The name of who owns what the path parameter ``parameter`` (a key of :data:`OWNED`)
    names; :class:`NotFoundError` when it does not exist."""
    what, sql = OWNED[parameter]
    try:
        key = int(str(value))
    except ValueError:
        raise InputError(what, value, f"the id of an existing {what}") from None
    row = _x(db).execute(sql, {"id": key}).fetchone() if 0 < key < 2**31 else None
    if row is None:
        raise NotFoundError(what, key)  # the number, as the store says it
    return str(row[0])


def check_owner(user: UserRow, owner: str, what: str) -> None:
    """:class:`ForbiddenError` unless ``user`` owns it or is an admin."""
    if user.role != "admin" and user.name != owner:
        raise ForbiddenError(f"only {owner} (its owner) or an admin may change this {what}")
