"""The ``deadline`` kind: nothing to fetch; NO once the due date has passed.

For "by date X" questions with no source to watch. Before the due date the check says ``none``;
from the due date on it says ``no`` (not final), and the runner turns that into a NO *proposal*
only at due + grace (``resolvers.grace_days``, default 7), leaving time for a person to resolve
YES from evidence the tracker cannot see.

Worked example: a forecast due 2027-12-31T23:59:59Z with ``--check deadline``:

- checked 2027-06-01: ``Verdict("none")``, nothing happens;
- checked 2028-01-03: ``Verdict("no", value="past due")``, still inside the grace period, so the
  runner records the evidence and waits;
- checked 2028-01-08 (due + 7 days): the runner proposes NO; ``tracker review`` lists it and
  ``tracker confirm ID`` resolves it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from predictions.timetext import local_time
from resolvers.base import ForecastInfo, Resolver, Verdict
from resolvers.http import Fetcher

_UTC = ZoneInfo("UTC")

__all__ = ["DeadlineResolver"]


class DeadlineResolver(Resolver):
    """Says NO from the due date on; the runner waits for the grace period before proposing it."""

    name = "deadline"
    version = "1"

    def check(
        self, forecast: ForecastInfo, params: dict[str, Any], http: Fetcher, now: datetime
    ) -> Verdict:
        """``none`` before the due date, ``no`` from it on."""
        due = local_time(forecast.due, _UTC)
        if now < forecast.due:
            return Verdict("none", excerpt=f"not due until {due}")
        return Verdict("no", value="past due", excerpt=f"no evidence of YES recorded by {due}")
