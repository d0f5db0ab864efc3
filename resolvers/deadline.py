"""The ``deadline`` kind: nothing to fetch; NO once the due date has passed.

For "by date X" questions with no source to watch. Before the due date the check says ``none``;
from the due date on it says ``no`` (not final), and the runner turns that into a NO *proposal*
only at due + grace (``resolvers.grace_days``, default 7), leaving time for a person to resolve
YES from evidence the tracker cannot see.

On a date question ("when will X happen?") the moment is the range end instead of the due date:
from it on the check says ``no`` with the outcome "not before the range end": just beyond the
range end when the upper bound is open (:func:`resolvers.base.beyond`: every score reads it in the
tail beyond the bound), the range end itself when it is closed (a closed range says the event
happens within it, so its last moment is the latest outcome there is). As for binary questions
the runner proposes it at due + grace at the earliest.

Worked example: a forecast due 2027-12-31T23:59:59Z with ``--check deadline``:

- checked 2027-06-01: ``Verdict("none")``, nothing happens;
- checked 2028-01-03: ``Verdict("no", value="past due")``, still inside the grace period, so the
  runner records the evidence and waits;
- checked 2028-01-08 (due + 7 days): the runner proposes NO; ``tracker review`` lists it and
  ``tracker confirm ID`` resolves it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from predictions.timetext import local_time
from resolvers.base import ForecastInfo, Resolver, Verdict, beyond, outcome_text
from resolvers.http import Fetcher

_UTC = ZoneInfo("UTC")

__all__ = ["DeadlineResolver"]


class DeadlineResolver(Resolver):
    """Says NO from the due date on (a date question: "not before the range end" from its end on);
    the runner waits for the grace period before proposing it."""

    name = "deadline"
    version = "1"
    question_kinds = frozenset({"binary", "date"})

    def check(
        self, forecast: ForecastInfo, params: dict[str, Any], http: Fetcher, now: datetime
    ) -> Verdict:
        """``none`` before the due date (the range end), ``no`` from it on."""
        question = forecast.question
        if question is not None:
            end = datetime.fromtimestamp(question.upper, UTC).replace(tzinfo=None)
            shown = local_time(end, _UTC)
            if now < end:
                return Verdict("none", excerpt=f"the range ends {shown}")
            after = beyond(question, "upper") if question.open_upper else question.upper
            where = "after the range end" if question.open_upper else "at the range end (closed)"
            excerpt = f"no evidence of the event recorded by the range end {shown}: {where}"
            return Verdict("no", value=outcome_text(question, after), excerpt=excerpt)
        due = local_time(forecast.due, _UTC)
        if now < forecast.due:
            return Verdict("none", excerpt=f"not due until {due}")
        return Verdict("no", value="past due", excerpt=f"no evidence of YES recorded by {due}")
