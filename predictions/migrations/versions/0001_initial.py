"""initial schema

Revision ID: 0001_initial
Revises:
Create Date: 2026-11-23 13:08:59.017601
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import sqlalchemy as sa
from alembic import op

revision = "0001_initial"
down_revision = None
branch_labels = None
depends_on = None


class _Table(NamedTuple):
    """A table as created. ``columns``: in order, ``name type``, ``?`` marking a column that may be
    NULL; the types are ``int``, ``bigint``, ``float``, ``bool``, ``text``, ``json``, ``time`` (a
    naive-UTC DateTime) and ``strN`` (a String of length N). ``foreign_keys``: column -> the
    referenced table (its ``id``) and ON DELETE. ``indexes``: a column's name, or a tuple of the
    index's own name and its columns."""

    name: str
    columns: str
    primary_key: tuple[str, ...] = ("id",)
    unique: tuple[str, ...] = ()
    foreign_keys: dict[str, tuple[str, str]] = {}
    indexes: tuple[str | tuple[str, ...], ...] = ()


#: The ledger and the receipts chain have one shape (``predictions.models._ChainEntry``).
_CHAIN_COLUMNS = (
    "id int, seq bigint, at time, kind str32, forecast_id int?, payload text, prev_hash str64,"
    " hash str64"
)
_FORECAST_FK = {"forecast_id": ("forecast", "CASCADE")}
_CHECK_FK = {"check_id": ("check_spec", "SET NULL")}

_TABLES = (
    _Table(
        "forecast",
        "id int, title text, criteria text, due time, created_at time, author str200,"
        " source text?, ref str300?, status str16, outcome bool?, resolved_at time?,"
        " resolved_by str200?, resolution_note text?, resolution_evidence text?",
        unique=("ref",),
        indexes=("author", "due", "status"),
    ),
    _Table("ledger", _CHAIN_COLUMNS, unique=("seq",), indexes=("forecast_id",)),
    _Table("receipt", _CHAIN_COLUMNS, unique=("seq",), indexes=("forecast_id",)),
    _Table(
        "outbox",
        "id int, dedupe_key str300, kind str32, recipients text, subject text, body_text text,"
        " body_html text, message_id str300, created_at time, attempts int, next_attempt_at time,"
        " sent_at time?, failed_at time?, last_error text?, claimed_by str200?,"
        " claimed_until time?",
        unique=("dedupe_key",),
        indexes=(("ix_outbox_pending", "sent_at", "failed_at", "next_attempt_at"),),
    ),
    _Table(
        "amendment",
        "id int, forecast_id int, field str32, old_value text, new_value text, made_at time,"
        " made_by str200, note text?",
        foreign_keys=_FORECAST_FK,
        indexes=("forecast_id",),
    ),
    _Table(
        "check_spec",
        "id int, forecast_id int, kind str64, params json, mode str16, enabled bool,"
        " created_at time, next_check_at time, last_checked_at time?, failures int, etag text?,"
        " last_modified text?, claimed_by str200?, claimed_until time?",
        foreign_keys=_FORECAST_FK,
        indexes=(("ix_check_spec_due", "enabled", "next_check_at"), "forecast_id"),
    ),
    _Table(
        "estimate",
        "id int, forecast_id int, forecaster str200, probability float, made_at time, note text?",
        foreign_keys=_FORECAST_FK,
        indexes=(("ix_estimate_forecast_made", "forecast_id", "made_at"), "forecaster"),
    ),
    _Table(
        "tag",
        "forecast_id int, name str100",
        primary_key=("forecast_id", "name"),
        foreign_keys=_FORECAST_FK,
        indexes=("name",),
    ),
    _Table(
        "evidence",
        "id int, check_id int?, forecast_id int, checked_at time, kind str64,"
        " resolver_version str32, url text?, http_status int?, sha256 str64?, bytes bigint?,"
        " unchanged bool, excerpt text?, value text?, verdict str16, error text?",
        foreign_keys={**_CHECK_FK, **_FORECAST_FK},
        indexes=("check_id", "forecast_id"),
    ),
    _Table(
        "proposal",
        "id int, forecast_id int, check_id int?, evidence_id int?, kind str16, verdict str16,"
        " created_at time, status str16, decided_at time?, decided_by str200?, note text?",
        foreign_keys={**_CHECK_FK, "evidence_id": ("evidence", "SET NULL"), **_FORECAST_FK},
        indexes=("forecast_id", "status"),
    ),
)

_TYPES: dict[str, Callable[[], sa.types.TypeEngine[Any]]] = {
    "int": sa.Integer,
    "bigint": sa.BigInteger,
    "float": sa.Float,
    "bool": sa.Boolean,
    "text": sa.Text,
    "json": sa.JSON,
    "time": sa.DateTime,
}


def _column(spec: str) -> sa.Column[Any]:
    """One column of a table's ``columns``: ``"ref str300?"``."""
    name, kind = spec.split()
    nullable = kind.endswith("?")
    kind = kind.rstrip("?")
    if kind.startswith("str"):
        return sa.Column(name, sa.String(length=int(kind[3:])), nullable=nullable)
    return sa.Column(name, _TYPES[kind](), nullable=nullable)


def _create(t: _Table) -> None:
    constraints: list[sa.schema.SchemaItem] = [
        sa.ForeignKeyConstraint(
            [column],
            [f"{target}.id"],
            name=op.f(f"fk_{t.name}_{column}_{target}"),
            ondelete=ondelete,
        )
        for column, (target, ondelete) in t.foreign_keys.items()
    ]
    constraints.append(sa.PrimaryKeyConstraint(*t.primary_key, name=op.f(f"pk_{t.name}")))
    constraints += [sa.UniqueConstraint(c, name=op.f(f"uq_{t.name}_{c}")) for c in t.unique]
    columns = [_column(spec) for spec in t.columns.split(",")]
    op.create_table(t.name, *columns, *constraints)
    with op.batch_alter_table(t.name, schema=None) as batch_op:
        for index in t.indexes:
            name, *on = (f"ix_{t.name}_{index}", index) if isinstance(index, str) else index
            batch_op.create_index(batch_op.f(name), on, unique=False)


def upgrade() -> None:
    for table in _TABLES:
        _create(table)


def downgrade() -> None:
    for table in reversed(_TABLES):
        op.drop_table(table.name)  # its indexes go with it
