"""The data model: SQLAlchemy tables for forecasts, estimates, checks, evidence, outbox, ledger.

Times are naive UTC everywhere, through :class:`UTCDateTime`. Schema changes go through the Alembic
migrations in ``predictions/migrations``; a test keeps this module and the migrations in step.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, declared_attr, mapped_column, relationship

from predictions.clock import to_utc_naive

__all__ = [
    "Account",
    "Amendment",
    "Base",
    "Check",
    "Estimate",
    "Evidence",
    "Forecast",
    "LedgerEntry",
    "Outbox",
    "Proposal",
    "Receipt",
    "Tag",
    "UTCDateTime",
    "ApiToken",
    "LoginAttempt",
    "WebSession",
]

_NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """A datetime stored as naive UTC; aware values are converted on the way in."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return to_utc_naive(value)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return value


class Base(DeclarativeBase):
    """Declarative base with a naming convention, so migrations name constraints the same way."""

    metadata = MetaData(naming_convention=_NAMING)
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSON()}


class Forecast(Base):
    """A claim about the future. Title, criteria and due are fixed; changes are amendments."""

    __tablename__ = "forecast"
    # the report reads each type's resolved questions apart (reports.scored)
    __table_args__ = (Index("ix_forecast_status_kind", "status", "kind"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    title: Mapped[str] = mapped_column(Text)
    criteria: Mapped[str] = mapped_column(Text)
    due: Mapped[datetime] = mapped_column(index=True)
    created_at: Mapped[datetime]
    author: Mapped[str] = mapped_column(String(200), index=True)
    source: Mapped[str | None] = mapped_column(Text)
    ref: Mapped[str | None] = mapped_column(String(300), unique=True)
    status: Mapped[str] = mapped_column(String(16), default="open", index=True)
    outcome: Mapped[bool | None] = mapped_column(Boolean)
    resolved_at: Mapped[datetime | None]
    resolved_by: Mapped[str | None] = mapped_column(String(200))
    resolution_note: Mapped[str | None] = mapped_column(Text)
    resolution_evidence: Mapped[str | None] = mapped_column(Text)
    #: the IANA zone whose day a date-only due ends (None: a due typed with its time)
    due_zone: Mapped[str | None] = mapped_column(String(64))
    #: the question type (:data:`predictions.questions.KINDS`)
    kind: Mapped[str] = mapped_column(String(16), default="binary", server_default="binary")
    #: a numeric, date or choice question's spec (:func:`predictions.chain.question_json`)
    question: Mapped[str | None] = mapped_column(Text)
    #: a numeric, date or choice question's resolution: the outcome, POSIX seconds or the option's
    #: index (``outcome`` stays NULL)
    resolution_value: Mapped[float | None] = mapped_column(Float)

    estimates: Mapped[list[Estimate]] = relationship(
        back_populates="forecast", order_by="Estimate.id", cascade="all, delete-orphan"
    )
    tags: Mapped[list[Tag]] = relationship(
        order_by="Tag.name", cascade="all, delete-orphan", lazy="selectin"
    )
    amendments: Mapped[list[Amendment]] = relationship(
        order_by="Amendment.id", cascade="all, delete-orphan"
    )
    checks: Mapped[list[Check]] = relationship(
        order_by="Check.id", cascade="all, delete-orphan", back_populates="forecast"
    )


class Tag(Base):
    """A label on a forecast (topic, project); reports break down by tag."""

    __tablename__ = "tag"

    forecast_id: Mapped[int] = mapped_column(
        ForeignKey("forecast.id", ondelete="CASCADE"), primary_key=True
    )
    name: Mapped[str] = mapped_column(String(100), primary_key=True, index=True)


class Estimate(Base):
    """One forecast given by one forecaster at one time. Append-only.

    A binary question's estimate is a ``probability``; the others' a ``distribution``
    (:func:`predictions.questions.encode`: a CDF on the grid, or one probability per option).
    """

    __tablename__ = "estimate"
    __table_args__ = (
        Index("ix_estimate_forecast_made", "forecast_id", "made_at"),
        # each forecaster's latest estimate on a forecast (list: yours, the others', the markets')
        Index("ix_estimate_latest", "forecast_id", "forecaster", "made_at", "id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    forecast_id: Mapped[int] = mapped_column(ForeignKey("forecast.id", ondelete="CASCADE"))
    forecaster: Mapped[str] = mapped_column(String(200), index=True)
    probability: Mapped[float | None] = mapped_column(Float)
    made_at: Mapped[datetime]
    note: Mapped[str | None] = mapped_column(Text)
    distribution: Mapped[bytes | None] = mapped_column(LargeBinary)

    forecast: Mapped[Forecast] = relationship(back_populates="estimates")


class Amendment(Base):
    """A recorded change of a registered forecast's title, criteria or due date."""

    __tablename__ = "amendment"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    forecast_id: Mapped[int] = mapped_column(
        ForeignKey("forecast.id", ondelete="CASCADE"), index=True
    )
    field: Mapped[str] = mapped_column(String(32))
    old_value: Mapped[str] = mapped_column(Text)
    new_value: Mapped[str] = mapped_column(Text)
    made_at: Mapped[datetime]
    made_by: Mapped[str] = mapped_column(String(200))
    note: Mapped[str | None] = mapped_column(Text)


class Check(Base):
    """A resolver spec: which kind checks this forecast, with what params, and when next."""

    __tablename__ = "check_spec"
    __table_args__ = (Index("ix_check_spec_due", "enabled", "next_check_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    forecast_id: Mapped[int] = mapped_column(
        ForeignKey("forecast.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(64))
    params: Mapped[dict[str, Any]]
    mode: Mapped[str] = mapped_column(String(16), default="propose")
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime]
    next_check_at: Mapped[datetime]
    last_checked_at: Mapped[datetime | None]
    failures: Mapped[int] = mapped_column(Integer, default=0)
    etag: Mapped[str | None] = mapped_column(Text)
    last_modified: Mapped[str | None] = mapped_column(Text)
    claimed_by: Mapped[str | None] = mapped_column(String(200))
    claimed_until: Mapped[datetime | None]

    forecast: Mapped[Forecast] = relationship(back_populates="checks")


class Evidence(Base):
    """The receipt of one check: what was fetched, what was seen, what it meant. Append-only."""

    __tablename__ = "evidence"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    check_id: Mapped[int | None] = mapped_column(
        ForeignKey("check_spec.id", ondelete="SET NULL"), index=True
    )
    forecast_id: Mapped[int] = mapped_column(
        ForeignKey("forecast.id", ondelete="CASCADE"), index=True
    )
    checked_at: Mapped[datetime]
    kind: Mapped[str] = mapped_column(String(64))
    resolver_version: Mapped[str] = mapped_column(String(32))
    url: Mapped[str | None] = mapped_column(Text)
    http_status: Mapped[int | None] = mapped_column(Integer)
    sha256: Mapped[str | None] = mapped_column(String(64))
    bytes: Mapped[int | None] = mapped_column(BigInteger)
    unchanged: Mapped[bool] = mapped_column(Boolean, default=False)
    excerpt: Mapped[str | None] = mapped_column(Text)
    value: Mapped[str | None] = mapped_column(Text)
    verdict: Mapped[str] = mapped_column(String(16))
    error: Mapped[str | None] = mapped_column(Text)


class Proposal(Base):
    """A resolution (or a disagreement) a resolver proposes, waiting for a person to decide."""

    __tablename__ = "proposal"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    forecast_id: Mapped[int] = mapped_column(
        ForeignKey("forecast.id", ondelete="CASCADE"), index=True
    )
    check_id: Mapped[int | None] = mapped_column(ForeignKey("check_spec.id", ondelete="SET NULL"))
    evidence_id: Mapped[int | None] = mapped_column(ForeignKey("evidence.id", ondelete="SET NULL"))
    kind: Mapped[str] = mapped_column(String(16), default="resolve")
    verdict: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime]
    status: Mapped[str] = mapped_column(String(16), default="pending", index=True)
    decided_at: Mapped[datetime | None]
    decided_by: Mapped[str | None] = mapped_column(String(200))
    note: Mapped[str | None] = mapped_column(Text)


class Outbox(Base):
    """An email to send. The UNIQUE dedupe key makes queuing the same report twice a no-op."""

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_pending", "sent_at", "failed_at", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dedupe_key: Mapped[str] = mapped_column(String(300), unique=True)
    kind: Mapped[str] = mapped_column(String(32))
    recipients: Mapped[str] = mapped_column(Text)
    subject: Mapped[str] = mapped_column(Text)
    body_text: Mapped[str] = mapped_column(Text)
    body_html: Mapped[str] = mapped_column(Text)
    message_id: Mapped[str] = mapped_column(String(300))
    created_at: Mapped[datetime]
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime]
    sent_at: Mapped[datetime | None]
    failed_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    claimed_by: Mapped[str | None] = mapped_column(String(200))
    claimed_until: Mapped[datetime | None]


class _ChainEntry:
    """The columns of a hash chain's entry (:class:`predictions.chain.Chain`):
    hash = sha256(prev_hash, seq, at, kind, canonical payload)."""

    @declared_attr.directive
    def __table_args__(cls) -> tuple[Any, ...]:
        return (UniqueConstraint("seq"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger)
    at: Mapped[datetime]
    kind: Mapped[str] = mapped_column(String(32))
    forecast_id: Mapped[int | None] = mapped_column(Integer, index=True)
    payload: Mapped[str] = mapped_column(Text)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class LedgerEntry(_ChainEntry, Base):
    """One link of the ledger: every event that touches a score (what an export carries)."""

    __tablename__ = "ledger"


class Receipt(_ChainEntry, Base):
    """One link of the receipts chain: the resolvers' and the mailer's records (check specs,
    evidence, proposals and their decisions, queued and delivered mail).

    A chain of its own, so that the forecast ledger stays exactly what an export carries.
    """

    __tablename__ = "receipt"


class Account(Base):
    """A user of the service (:mod:`predictions.accounts`): ``name`` is the forecaster name the
    ledger records on everything they do. (Not called ``user``: a reserved word in PostgreSQL.)"""

    __tablename__ = "account"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    email: Mapped[str | None] = mapped_column(String(320))
    role: Mapped[str] = mapped_column(String(16))
    password_hash: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime]
    disabled_at: Mapped[datetime | None]


class ApiToken(Base):
    """A personal API token: only the sha256 of the secret is kept; ``prefix`` names it in lists."""

    __tablename__ = "api_token"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(
        ForeignKey("account.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(100))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime]
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]


class WebSession(Base):
    """A signed-in browser: ``id`` is the sha256 of the cookie's value (the value is never kept)."""

    __tablename__ = "web_session"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    account_id: Mapped[int] = mapped_column(
        ForeignKey("account.id", ondelete="CASCADE"), index=True
    )
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime] = mapped_column(index=True)
    last_seen_at: Mapped[datetime]


class LoginAttempt(Base):
    """One try at signing in, kept a day for throttling (:data:`predictions.accounts.THROTTLE`)."""

    __tablename__ = "login_attempt"
    __table_args__ = (
        Index("ix_login_attempt_name", "name", "at"),
        Index("ix_login_attempt_address", "address", "at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    address: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime]
    ok: Mapped[bool] = mapped_column(Boolean)
