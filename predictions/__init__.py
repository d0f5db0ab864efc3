"""The domain and the store: models, validation, the ledger, import/export, migrations, the clock.

This package imports no other project package; ``resolvers``, ``reports`` and ``tracker`` build on it.
Importing it is cheap: the SQLAlchemy-backed names below load on first use, so the CLI's fast
SQLite path for the everyday commands (:mod:`predictions.lite`) never pays for SQLAlchemy.
"""

from __future__ import annotations

from typing import Any

from predictions.clock import now
from predictions.errors import (
    ChainError,
    ImportProblems,
    InputError,
    NotFoundError,
    OperationalError,
    SchemaError,
    StateError,
    TrackerError,
)

__all__ = [
    "ChainError",
    "ImportProblems",
    "InputError",
    "NotFoundError",
    "OperationalError",
    "SchemaError",
    "StateError",
    "TrackerError",
    "ensure_schema",
    "make_engine",
    "now",
    "read_session",
    "upgrade_schema",
    "write_session",
]

_FROM_DB = {"ensure_schema", "make_engine", "read_session", "upgrade_schema", "write_session"}


def __getattr__(name: str) -> Any:
    if name in _FROM_DB:
        from predictions import db

        return getattr(db, name)
    raise AttributeError(f"module 'predictions' has no attribute {name!r}")
