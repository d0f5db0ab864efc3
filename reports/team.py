"""The team view, for ``tracker report`` and the web team page: each forecaster's Brier score and
relative Brier score, the team's aggregate forecasts scored as forecasters of their own, and the
markets beside them. Pure: the scored estimates of :func:`reports.scored.read_scored` (binary
questions; one row per question and forecaster, the estimate its one rule picks) in, numbers out.

Who is who: the **people** are the forecasters not in
:data:`predictions.records.MARKET_FORECASTERS`; the **markets** are shown beside them and never
ranked, pooled or counted in a person's crowd. A question's **crowd** is the people who forecast
it.

Definitions (``p`` the scored probability, ``y`` the outcome 0 or 1):

- **Brier**: ``mean((p - y)^2)`` over the forecaster's scored questions, with their count, as
  :func:`reports.scoring.brier_score` (Brier 1950).
- **Relative Brier** (Fatebook's): per question, the forecaster's Brier minus the median of the
  Brier scores of the question's crowd *with the forecaster in it* (a market or an aggregate is
  added to the people's crowd as one more member), defined when that set holds at least two
  forecasters; the mean over the forecaster's questions where it is defined. Negative is better.
  The median of an even count is the mean of the two middle values.
- **Team median**: per question, the median of the crowd's scored probabilities.
- **Team geometric mean of odds**: per question, ``o = (o_1 ... o_N)^(1/N)`` of the crowd's odds
  ``o_i = p_i / (1 - p_i)``, as the probability ``o / (1 + o)``; each ``p_i`` is first clipped to
  :data:`reports.scoring.CLAMP` (the log score's clamp), so that an imported 0% or 100% does not
  make the pool 0, 1 or undefined. References: J. Sevilla (2021), "When pooling forecasts, use
  the geometric mean of odds", EA Forum; V. A. Satopaa et al. (2014), "Combining multiple
  probability predictions using a simple logit model", Int. J. Forecasting 30(2), 344-356.
- Each aggregate is scored as its own forecaster on the questions with at least one person:
  Brier, count and relative Brier as above. The team median's relative Brier is 0 by
  construction (for a given outcome the Brier score is monotone in ``p``, so the median forecast
  has the median Brier): a check, not news.
- **Ranking**: people with at least ``min_count`` scored questions (:data:`MIN_COUNT` by default)
  and a relative Brier, by relative Brier, lowest first; equal scores share a rank (1, 2, 2, 4).
  The others are listed unranked with their counts.

Fatebook's relative Brier, and where ours differs. Its code (``relativeBrierScoring`` in
``lib/_scoring.ts`` of github.com/Sage-Future/fatebook, commit 3eb5379) takes, for each day of a
question's life, the median of the Brier scores of *every* forecaster with a forecast standing
that day, the forecaster included, and subtracts it from the forecaster's; its track-record
tooltip says "Relative to the median of other forecasters' Brier scores on each question"
(``components/TrackRecord.tsx``), but the code does not leave the forecaster out, and neither do
we: with two forecasters each scores half the difference of their Brier scores. A question with
one forecaster gets no relative score there or here. Over questions, the mean of the defined
scores, as Fatebook's tournament leaderboard (``components/TournamentLeaderboard.tsx``);
Fatebook's own track record (``averageScores`` in ``lib/_utils_common.ts``) divides their sum by
all the forecaster's questions instead, counting a question forecast alone as 0. Two deliberate
differences: (1) Fatebook averages a score over the days from the question's creation to its
resolution (a day before the forecaster's first forecast adding 0); we score the one estimate
:mod:`reports.scored` picks, the rule of every score of ours, so the two agree when every
forecast stood the question's whole life; (2) Fatebook's Brier sums over both outcomes,
``2 (p - y)^2`` in [0, 2]; ours is ``(p - y)^2`` in [0, 1], as in the rest of the report, so
Fatebook's figures are twice ours.

Everything is numpy over the rows (sorts and bincounts, no loop per forecast); the only loops
run over the markets and the two aggregates.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from predictions.errors import InputError
from predictions.records import is_market
from reports.scored import Scored
from reports.scoring import CLAMP

__all__ = [
    "GEOMETRIC",
    "MEDIAN",
    "MIN_COUNT",
    "Aggregates",
    "Standing",
    "Team",
    "aggregate",
    "team",
]

#: Scored questions a person needs before being ranked.
MIN_COUNT = 10
#: The names of the team's two aggregate forecasters.
MEDIAN = "team median"
GEOMETRIC = "team geometric mean of odds"
#: Relative scores equal to this many decimals share a rank (float sums of equal fractions may
#: differ in the last bit).
_TIE_DECIMALS = 12

Floats = NDArray[np.float64]
Ints = NDArray[np.int64]


@dataclass(frozen=True)
class Standing:
    """One forecaster's line: ``count`` scored questions and their mean ``brier``; the relative
    Brier over the ``relative_count`` of them where it is defined (None if none); ``rank`` among
    the ranked people (None for the unranked, the markets and the aggregates)."""

    name: str
    count: int
    brier: float
    relative_count: int
    relative_brier: float | None
    rank: int | None = None

    def as_dict(self) -> dict[str, Any]:
        """The line as a plain dict (for JSON)."""
        return asdict(self)


@dataclass(frozen=True)
class Aggregates:
    """The team's aggregate forecasts, one entry per question with at least one person (by
    question id): its outcome, the number of ``members`` pooled, the median of their scored
    probabilities and their geometric mean of odds."""

    forecast_id: Ints
    outcome: Floats
    members: Ints
    median: Floats
    geometric_mean_odds: Floats


@dataclass(frozen=True)
class Team:
    """The team view: the ranked people in rank order, the unranked ones (fewest questions
    last), the two aggregates and the markets, each a :class:`Standing`."""

    min_count: int
    ranked: list[Standing]
    unranked: list[Standing]
    aggregates: list[Standing]
    markets: list[Standing]

    def as_dict(self) -> dict[str, Any]:
        """The view as a plain dict (for JSON)."""
        return {
            "min_count": self.min_count,
            **{
                key: [s.as_dict() for s in getattr(self, key)]
                for key in ("ranked", "unranked", "aggregates", "markets")
            },
        }


@dataclass(frozen=True)
class _Rows:
    """The scored rows as the maths needs them: question code (0..``questions``-1, by id),
    forecaster code, probability, outcome, Brier and whether the forecaster is a person."""

    question: Ints
    who: Ints
    p: Floats
    y: Floats
    brier: Floats
    person: NDArray[np.bool_]
    ids: Ints

    @property
    def questions(self) -> int:
        return int(self.ids.size)


def _rows(s: Scored) -> _Rows:
    if s.kind != "binary":
        raise ValueError(f"the team view scores binary questions, not {s.kind!r}")
    ids, question = np.unique(s.forecast_id, return_inverse=True)
    people = np.array([not is_market(name) for name in s.names], dtype=bool)
    return _Rows(
        question=question.astype(np.int64).ravel(),
        who=s.who,
        p=s.probability,
        y=s.outcome,
        brier=(s.probability - s.outcome) ** 2,
        person=people[s.who],
        ids=ids.astype(np.int64),
    )


def _medians(group: Ints, values: Floats, groups: int) -> tuple[Floats, Ints]:
    """Per group ``0..groups-1``: the median of its values (the mean of the two middle ones for
    an even count; NaN for an empty group) and their count."""
    # (by group, then value: one sort of integer keys, faster than np.lexsort)
    rank = np.empty(values.size, dtype=np.int64)
    rank[np.argsort(values)] = np.arange(values.size)
    ordered = values[np.argsort(group * values.size + rank)]
    counts = np.bincount(group, minlength=groups)
    starts = np.cumsum(counts) - counts
    have = counts > 0
    low = (starts + (counts - 1) // 2)[have]
    high = (starts + counts // 2)[have]
    median = np.full(groups, np.nan)
    median[have] = (ordered[low] + ordered[high]) / 2.0
    return median, counts


def _crowd(rows: _Rows) -> tuple[Ints, Floats]:
    """The people's rows: question codes and Brier scores."""
    return rows.question[rows.person], rows.brier[rows.person]


def _relative(
    rows: _Rows, question: Ints, brier: Floats, *, member: bool
) -> tuple[Floats, NDArray[np.bool_]]:
    """Each of one forecaster's rows (or, with ``member``, each person's row): the Brier minus the
    median Brier of the question's crowd with the forecaster in it, and whether it is defined
    (two forecasters or more in that set)."""
    crowd_q, crowd_b = _crowd(rows)
    if not member:
        crowd_q = np.concatenate([crowd_q, question])
        crowd_b = np.concatenate([crowd_b, brier])
    median, counts = _medians(crowd_q, crowd_b, rows.questions)
    return brier - median[question], counts[question] >= 2


def _standings(
    names: list[str], who: Ints, brier: Floats, relative: Floats, defined: NDArray[np.bool_]
) -> list[Standing]:
    """The line of each forecaster ``names[who]`` that has rows, from its rows' Brier and
    relative scores (the latter where ``defined``)."""
    size = len(names)
    count = np.bincount(who, minlength=size)
    total = np.bincount(who, weights=brier, minlength=size)
    scored = np.bincount(who[defined], minlength=size)
    relative_total = np.bincount(who[defined], weights=relative[defined], minlength=size)
    return [
        Standing(
            name=names[k],
            count=int(count[k]),
            brier=float(total[k] / count[k]),
            relative_count=int(scored[k]),
            relative_brier=float(relative_total[k] / scored[k]) if scored[k] else None,
        )
        for k in np.flatnonzero(count).tolist()
    ]


def _aggregate(rows: _Rows) -> Aggregates:
    crowd_q = rows.question[rows.person]
    p = rows.p[rows.person]
    median, members = _medians(crowd_q, p, rows.questions)
    log_odds = np.log(np.clip(p, *CLAMP)) - np.log1p(-np.clip(p, *CLAMP))
    have = members > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.bincount(crowd_q, weights=log_odds, minlength=rows.questions) / members
    outcome = np.zeros(rows.questions)
    outcome[rows.question] = rows.y
    return Aggregates(
        forecast_id=rows.ids[have],
        outcome=outcome[have],
        members=members[have].astype(np.int64),
        median=median[have],
        geometric_mean_odds=1.0 / (1.0 + np.exp(-mean[have])),
    )


def aggregate(s: Scored) -> Aggregates:
    """The team's aggregate forecasts on each question (the people's scored estimates only;
    markets are left out)."""
    return _aggregate(_rows(s))


def team(s: Scored, *, min_count: int = MIN_COUNT) -> Team:
    """The team view of the scored estimates ``s`` (binary), ranking the people with at least
    ``min_count`` scored questions."""
    if isinstance(min_count, bool) or not isinstance(min_count, int) or min_count < 1:
        raise InputError("min-count", min_count, "a whole number of questions, at least 1")
    rows = _rows(s)
    crowd_q, crowd_b = _crowd(rows)
    relative, defined = _relative(rows, crowd_q, crowd_b, member=True)
    people = _standings(s.names, rows.who[rows.person], crowd_b, relative, defined)
    markets: list[Standing] = []
    for code in np.unique(rows.who[~rows.person]).tolist():
        mine = rows.who == code
        question, brier = rows.question[mine], rows.brier[mine]
        scores = _relative(rows, question, brier, member=False)
        markets += _standings([s.names[code]], np.zeros_like(question), brier, *scores)
    pooled = _aggregate(rows)
    question = np.searchsorted(rows.ids, pooled.forecast_id)
    aggregates: list[Standing] = []
    for name, p in ((MEDIAN, pooled.median), (GEOMETRIC, pooled.geometric_mean_odds)):
        brier = (p - pooled.outcome) ** 2
        scores = _relative(rows, question, brier, member=False)
        aggregates += _standings([name], np.zeros_like(question), brier, *scores)
    ranked, unranked = _rank(people, min_count)
    return Team(min_count, ranked, unranked, aggregates, markets)


def _rank(people: list[Standing], min_count: int) -> tuple[list[Standing], list[Standing]]:
    """The people who qualify (``min_count`` questions and a relative Brier), ranked by relative
    Brier with shared ranks for ties (then by name); the others by count, most first."""
    qualify = [s for s in people if s.count >= min_count and s.relative_brier is not None]
    key = {s.name: round(s.relative_brier or 0.0, _TIE_DECIMALS) for s in qualify}
    qualify.sort(key=lambda s: (key[s.name], s.name))
    ranked: list[Standing] = []
    for place, s in enumerate(qualify, start=1):
        tied = ranked and key[ranked[-1].name] == key[s.name]
        rank = ranked[-1].rank if tied else place
        ranked.append(Standing(**{**s.as_dict(), "rank": rank}))
    names = set(key)
    others = [s for s in people if s.name not in names]
    others.sort(key=lambda s: (-s.count, s.name))
    return ranked, others
