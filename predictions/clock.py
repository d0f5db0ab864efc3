"""The one clock. Every "now" in the tracker comes from :func:`now`, so tests can freeze it."""

from __future__ import annotations

from datetime import UTC, datetime

__all__ = ["now", "to_utc_naive"]


def now() -> datetime:
    """The current time as a naive UTC datetime (the form the store keeps), to the microsecond."""
    return datetime.now(UTC).replace(tzinfo=None)


def to_utc_naive(value: datetime) -> datetime:
    """Convert an aware datetime to naive UTC; a naive one is taken to be UTC already."""
    if value.tzinfo is None:
        return value
    return value.astimezone(UTC).replace(tzinfo=None)
