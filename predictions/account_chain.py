"""The receipts-chain side of accounts: the payloads of the ``account``, ``token`` and
``revoke`` entries, and their replay against the ``account`` and ``api_token`` tables.

An ``account`` entry carries the user's whole row as it stands after the change (the password
as the sha256 of its argon2 hash) with ``change`` (add, role, email, password, rehash, disable,
enable) and ``by``; ``token`` a token as created (its secret's sha256, which the table holds too);
``revoke`` which token, when and by whom. Stdlib only, like :mod:`predictions.chain`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

from predictions.chain import Executor, first_difference, iso, loaded

__all__ = ["AccountsReplay", "account_state", "revoke_payload", "sha256_hex", "token_payload"]


def sha256_hex(text: str) -> str:
    """The sha256 of ``text`` (UTF-8) in hex."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def account_state(row: Any) -> dict[str, Any]:
    """An ``account`` row ``(name, email, role, password_hash, created_at, disabled_at)`` as its
    entry records it."""
    name, email, role, password_hash, created_at, disabled_at = row
    return {
        "name": name,
        "email": email,
        "role": role,
        "password": sha256_hex(password_hash),
        "created_at": iso(loaded(created_at)),
        "disabled_at": iso(loaded(disabled_at)),
    }


def token_payload(
    token_id: int, account_id: int, name: str, prefix: str, digest: str, at: datetime, by: str
) -> dict[str, Any]:
    """Payload of a ``token`` entry: a token as created."""
    return {
        "id": token_id,
        "account": account_id,
        "name": name,
        "prefix": prefix,
        "hash": digest,
        "created_at": iso(at),
        "by": by,
    }


def revoke_payload(token_id: int, at: datetime, by: str) -> dict[str, Any]:
    """Payload of a ``revoke`` entry."""
    return {"id": token_id, "at": iso(at), "by": by}


class AccountsReplay:
    """What the receipts chain says the ``account`` and ``api_token`` tables hold: the replayers
    of the ``account``, ``token`` and ``revoke`` entries, and the comparison with the tables
    (:func:`predictions.receipts.verify` runs both)."""

    def __init__(self) -> None:
        self.accounts: dict[int, dict[str, Any]] = {}
        self.tokens: dict[int, dict[str, Any]] = {}

    def replayers(self) -> dict[str, Callable[[dict[str, Any]], None]]:
        return {"account": self._account, "token": self._token, "revoke": self._revoke}

    def _account(self, p: dict[str, Any]) -> None:
        key = int(p["id"])
        if (p["change"] == "add") == (key in self.accounts):
            raise ValueError(
                f"user {key} is {'added twice' if key in self.accounts else 'changed before it is added'}"
            )
        self.accounts[key] = {
            k: p[k] for k in ("name", "email", "role", "password", "created_at", "disabled_at")
        }

    def _token(self, p: dict[str, Any]) -> None:
        key = int(p["id"])
        if key in self.tokens:
            raise ValueError(f"token {key} is recorded twice")
        row = {k: p[k] for k in ("account", "name", "prefix", "hash", "created_at")}
        self.tokens[key] = {**row, "revoked_at": None}

    def _revoke(self, p: dict[str, Any]) -> None:
        token = self.tokens.get(int(p["id"]))
        if token is None or token["revoked_at"] is not None:
            raise ValueError(f"token {p['id']} is revoked before it exists, or twice")
        token["revoked_at"] = p["at"]

    def problem(self, x: Executor) -> str | None:
        """The first way the tables differ from the chain, or None."""
        return first_difference(
            "receipts chain", self._accounts(x), self.accounts, lambda k, r: f"user {k}"
        ) or first_difference(
            "receipts chain", self._tokens(x), self.tokens, lambda k, r: f"token {k}"
        )

    @staticmethod
    def _accounts(x: Executor) -> Iterator[tuple[int, dict[str, Any]]]:
        rows = x.execute(
            "SELECT id, name, email, role, password_hash, created_at, disabled_at FROM account "
            "ORDER BY id"
        )
        for row in rows:
            yield row[0], account_state(row[1:])

    @staticmethod
    def _tokens(x: Executor) -> Iterator[tuple[int, dict[str, Any]]]:
        rows = x.execute(
            "SELECT id, account_id, name, prefix, token_hash, created_at, revoked_at "
            "FROM api_token ORDER BY id"
        )
        for tid, account, name, prefix, digest, created, revoked in rows:
            yield (
                tid,
                {
                    "account": account,
                    "name": name,
                    "prefix": prefix,
                    "hash": digest,
                    "created_at": iso(loaded(created)),
                    "revoked_at": iso(loaded(revoked)),
                },
            )
