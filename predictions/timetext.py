"""Every time a person reads, written one way (stdlib only: the everyday commands load it).

A moment is local time to the minute with its zone's abbreviation, ``2027-12-31 23:59 CST``; a
date-only due date is that date, in the zone it was entered in (named when it is not the
reader's). JSON keeps naive-UTC ISO 8601 (:func:`predictions.chain.iso`); this is for people.

    >>> from zoneinfo import ZoneInfo
    >>> local_time(datetime(2028, 1, 1, 5, 59, 59), ZoneInfo("America/Chicago"))
    '2027-12-31 23:59 CST'
    >>> local_due(datetime(2031, 1, 1, 5, 59, 59), ZoneInfo("America/Chicago"), "UTC")
    '2031-01-01 UTC'
"""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

__all__ = ["local_due", "local_time"]


def _local(moment: datetime, tz: ZoneInfo) -> datetime:
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    return aware.astimezone(tz)


def local_time(moment: datetime | str | None, tz: ZoneInfo) -> str:
    """A naive-UTC moment (or its ISO text, ``...Z``) as local time to the minute with the zone's
    abbreviation: ``2027-12-31 23:59 CST``. None is ``-``."""
    if moment is None:
        return "-"
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment.rstrip("Z"))
    return _local(moment, tz).strftime("%Y-%m-%d %H:%M %Z")


def local_due(due: datetime, tz: ZoneInfo, zone: str | None = None) -> str:
    """A due date as a reader in ``tz`` sees it.

    A date-only due (``zone`` is the time zone it was entered in) is that date, whatever ``tz``
    is, followed by the abbreviation of its zone when that is not ``tz``. Without a zone (an
    instant typed with its time, or a forecast from before zones were kept), the end of a day in
    ``tz`` is shown as that date, any other moment as :func:`local_time`.
    """
    if zone:
        try:
            own = ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError):
            own = None
        if own is not None:
            local = _local(due, own)
            day = local.date().isoformat()
            return day if zone == tz.key else f"{day} {local.strftime('%Z')}"
    local = _local(due, tz)
    if (local.hour, local.minute, local.second) == (23, 59, 59):
        return local.date().isoformat()
    return local_time(due, tz)
