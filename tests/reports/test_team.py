"""The team view: relative Brier (Fatebook's), the team's aggregates and the markets, against
hand-computed fractions, scipy's geometric mean and a plain per-question loop; and once through
read_scored on a real database file."""

from __future__ import annotations

import math
import statistics
from datetime import datetime, timedelta
from fractions import Fraction as F

import numpy as np
import pytest
from scipy.stats import gmean
from sqlalchemy import insert
from sqlalchemy.engine import Engine

from predictions.db import read_session
from predictions.errors import InputError
from predictions.models import Estimate, Forecast
from reports import team as team_view
from reports.scored import Scored, executor, read_scored
from reports.scoring import CLAMP
from reports.team import GEOMETRIC, MEDIAN, Standing, aggregate, team

Row = tuple[int, str, float, int]  # question id, forecaster, scored probability, outcome

#: q1 (YES): four people and a market; q2 (NO): two people; q3 (YES): alice alone and the market;
#: q4 (NO): the market alone.
CASE: list[Row] = [
    (1, "alice", 0.9, 1),
    (1, "bob", 0.6, 1),
    (1, "carol", 0.2, 1),
    (1, "dave", 0.5, 1),
    (1, "manifold", 0.8, 1),
    (2, "alice", 0.2, 0),
    (2, "bob", 0.5, 0),
    (3, "alice", 0.7, 1),
    (3, "manifold", 0.5, 1),
    (4, "manifold", 0.1, 0),
]


def _scored(rows: list[Row]) -> Scored:
    """Scored arrays as read_scored gives them: by question, then forecaster in name order."""
    names = sorted({name for _, name, _, _ in rows})
    rows = sorted(rows, key=lambda r: (r[0], names.index(r[1])))
    n = len(rows)
    times = np.full(n, np.datetime64("2026-01-01"), dtype="datetime64[us]")
    return Scored(
        forecast_id=np.array([r[0] for r in rows], dtype=np.int64),
        who=np.array([names.index(r[1]) for r in rows], dtype=np.int64),
        names=names,
        probability=np.array([r[2] for r in rows], dtype=np.float64),
        made_at=times,
        outcome=np.array([r[3] for r in rows], dtype=np.float64),
        due=times,
        resolved_at=times,
        time_averaged_brier=np.zeros(n),
    )


def _without_market(rows: list[Row]) -> list[Row]:
    return [r for r in rows if r[1] != "manifold"]


def _line(s: Standing) -> tuple[int, float, int, float | None]:
    return s.count, s.brier, s.relative_count, s.relative_brier


def _exact(count: int, brier: F, relative_count: int, relative: F | None) -> tuple:
    return count, float(brier), relative_count, None if relative is None else float(relative)


def _close(got: tuple, want: tuple) -> bool:
    return all(
        g == w if not isinstance(w, float) else math.isclose(g, w, rel_tol=0, abs_tol=1e-15)
        for g, w in zip(got, want, strict=True)
    )


def _by_name(view: team_view.Team) -> dict[str, Standing]:
    return {s.name: s for s in [*view.ranked, *view.unranked, *view.aggregates, *view.markets]}


def test_team_relative_brier_is_brier_minus_the_median_with_the_forecaster_in_it() -> None:
    """Per question the Brier minus the median Brier of the people on it (the forecaster among
    them), averaged over the questions with someone else; q3 (alice alone) has none."""
    got = _by_name(team(_scored(CASE), min_count=1))
    # q1 Briers: alice 1/100, bob 16/100, carol 64/100, dave 25/100: median (16+25)/200 = 41/200.
    # q2 Briers: alice 4/100, bob 25/100: median 29/200. q3: alice 9/100, alone.
    want = {
        "alice": (3, F(1 + 4 + 9, 300), 2, (F(2 - 41, 200) + F(8 - 29, 200)) / 2),
        "bob": (2, F(16 + 25, 200), 2, (F(32 - 41, 200) + F(50 - 29, 200)) / 2),
        "carol": (1, F(64, 100), 1, F(128 - 41, 200)),
        "dave": (1, F(25, 100), 1, F(50 - 41, 200)),
    }
    assert want["alice"][3] == F(-3, 20) and want["bob"][3] == F(3, 100)
    for name, line in want.items():
        assert _close(_line(got[name]), _exact(*line)), name


def test_team_median_of_an_even_crowd_is_the_mean_of_the_middle_two_and_ties_count_twice() -> None:
    """Two forecasters on a question each score half their difference; three alike score 0."""
    rows: list[Row] = [(1, "a", 0.9, 1), (1, "b", 0.6, 1), (2, "a", 0.3, 0)]
    rows += [(2, "b", 0.3, 0), (2, "c", 0.3, 0), (2, "d", 0.8, 0)]
    got = _by_name(team(_scored(rows), min_count=1))
    # q1: a 1/100, b 16/100, median 17/200. q2: 9, 9, 9, 64 (/100): median 9/100.
    assert _close(_line(got["a"]), _exact(2, F(10, 200), 2, (F(-15, 200) + 0) / 2))
    assert _close(_line(got["b"]), _exact(2, F(25, 200), 2, (F(15, 200) + 0) / 2))
    assert _close(_line(got["c"]), _exact(1, F(9, 100), 1, F(0)))
    assert _close(_line(got["d"]), _exact(1, F(64, 100), 1, F(55, 100)))


def test_team_single_forecaster_questions_have_no_relative_score() -> None:
    rows: list[Row] = [(1, "alice", 0.8, 1), (2, "alice", 0.4, 0), (3, "bob", 0.3, 1)]
    view = team(_scored(rows), min_count=1)
    got = _by_name(view)
    assert _close(_line(got["alice"]), _exact(2, F(4 + 16, 200), 0, None))
    assert _close(_line(got["bob"]), _exact(1, F(49, 100), 0, None))
    # no relative score: not ranked, however many questions
    assert view.ranked == [] and [s.name for s in view.unranked] == ["alice", "bob"]


def test_team_markets_stand_beside_the_people_outside_their_crowd_and_pool() -> None:
    """A market is scored like a person added to the people's crowd; the people's scores and the
    team's aggregates are the same with and without the market's rows."""
    view = team(_scored(CASE), min_count=1)
    without = team(_scored(_without_market(CASE)), min_count=1)
    assert [s.name for s in view.markets] == ["manifold"]
    assert "manifold" not in [s.name for s in [*view.ranked, *view.unranked]]
    assert (view.ranked, view.unranked, view.aggregates) == (
        without.ranked,
        without.unranked,
        without.aggregates,
    )
    assert without.markets == []
    # q1: people 1, 16, 25, 64 and the market 4 (/100): median 16/100. q3: alice 9, the market
    # 25: median 17/100. q4: the market alone (no relative score; no aggregate either).
    (market,) = view.markets
    want = _exact(3, F(4 + 25 + 1, 300), 2, (F(4 - 16, 100) + F(25 - 17, 100)) / 2)
    assert _close(_line(market), want) and market.rank is None
    pooled, pooled_without = aggregate(_scored(CASE)), aggregate(_scored(_without_market(CASE)))
    for field in ("forecast_id", "outcome", "members", "median", "geometric_mean_odds"):
        np.testing.assert_array_equal(getattr(pooled, field), getattr(pooled_without, field))


def test_aggregate_median_and_geometric_mean_by_hand() -> None:
    pooled = aggregate(_scored(CASE))
    assert pooled.forecast_id.tolist() == [1, 2, 3]  # q4: only the market forecast it
    assert pooled.members.tolist() == [4, 2, 1]
    assert pooled.outcome.tolist() == [1.0, 0.0, 1.0]
    # medians: (0.5 + 0.6) / 2, (0.2 + 0.5) / 2, 0.7 alone
    assert pooled.median.tolist() == pytest.approx([0.55, 0.35, 0.7], abs=1e-15)
    # q2: odds 1/4 and 1: geometric mean 1/2, the probability 1/3; q3: alice's own 0.7
    assert pooled.geometric_mean_odds[1:].tolist() == pytest.approx([1 / 3, 0.7], abs=1e-15)


def test_aggregate_geometric_mean_of_odds_matches_scipy_gmean() -> None:
    rng = np.random.default_rng(7)
    rows: list[Row] = []
    for q in range(1, 201):
        y = int(rng.random() < 0.5)
        for k in range(int(rng.integers(1, 9))):
            rows.append((q, f"p{k}", float(rng.uniform(0.01, 0.99)), y))
        if q % 3 == 0:
            rows.append((q, "metaculus", 0.999, y))  # never pooled
    pooled = aggregate(_scored(rows))
    for q, got in zip(pooled.forecast_id.tolist(), pooled.geometric_mean_odds, strict=True):
        p = np.array([r[2] for r in rows if r[0] == q and r[1] != "metaculus"])
        odds = gmean(p / (1 - p))
        assert got == pytest.approx(odds / (1 + odds), rel=1e-12), q
        assert pooled.median[q - 1] == statistics.median(p.tolist())


def test_aggregate_geometric_mean_clips_certainties_to_the_log_score_clamp() -> None:
    """An imported 0% or 100% is clipped to the log score's clamp first: the pool of 0% and
    100% is 50%, of 0% and 50% the geometric mean of 0.001/0.999 and 1."""
    pooled = aggregate(_scored([(1, "a", 0.0, 1), (1, "b", 1.0, 1), (2, "a", 0.0, 0)]))
    lo = CLAMP[0]
    assert pooled.geometric_mean_odds.tolist() == pytest.approx([0.5, lo], abs=1e-15)
    assert np.isfinite(team(_scored([(1, "a", 0.0, 1), (1, "b", 0.5, 1)])).aggregates[1].brier)


def test_team_aggregates_are_scored_as_forecasters_of_their_own() -> None:
    """The median forecast has the median Brier (Brier is monotone in p for a given outcome), so
    the team median's relative Brier is 0; the geometric mean is scored like any forecaster."""
    view = team(_scored(CASE), min_count=1)
    assert [s.name for s in view.aggregates] == [MEDIAN, GEOMETRIC]
    median, geometric = view.aggregates
    # 0.55, 0.35, 0.7: Briers 0.45^2, 0.35^2, 0.3^2
    assert _close(_line(median), _exact(3, (F(81, 400) + F(49, 400) + F(9, 100)) / 3, 3, F(0)))
    assert median.relative_brier == 0.0
    odds = math.prod([9, 1.5, 0.25, 1]) ** 0.25
    p = [odds / (1 + odds), 1 / 3, 0.7]
    brier = [(p[0] - 1) ** 2, p[1] ** 2, (p[2] - 1) ** 2]
    crowds = [[0.01, 0.16, 0.64, 0.25], [0.04, 0.25], [0.09]]
    relative = [b - statistics.median([*c, b]) for b, c in zip(brier, crowds, strict=True)]
    assert geometric.count == 3 and geometric.relative_count == 3
    assert geometric.brier == pytest.approx(sum(brier) / 3, abs=1e-15)
    assert geometric.relative_brier == pytest.approx(sum(relative) / 3, abs=1e-15)


def test_team_ranks_by_relative_brier_with_shared_ranks_and_a_minimum_count() -> None:
    """a and b tie, c is worse; d has too few questions, e none shared."""
    rows: list[Row] = []
    for q in range(1, 4):
        rows += [(q, "a", 0.8, 1), (q, "b", 0.8, 1), (q, "c", 0.3, 1)]
    rows += [(4, "a", 0.6, 1), (4, "b", 0.6, 1), (4, "d", 0.9, 1)]
    rows += [(q, "e", 0.7, 0) for q in range(5, 9)]
    view = team(_scored(rows), min_count=3)
    assert [(s.name, s.rank) for s in view.ranked] == [("a", 1), ("b", 1), ("c", 3)]
    assert [(s.name, s.count) for s in view.unranked] == [("e", 4), ("d", 1)]
    assert all(s.rank is None for s in [*view.unranked, *view.aggregates, *view.markets])
    # q1-q3: 0.04, 0.04, 0.49: median 0.04. q4: a 0.16, b 0.16, d 0.01: median 0.16.
    got = _by_name(view)
    assert _close(_line(got["a"]), _exact(4, F(3 * 4 + 16, 400), 4, F(0)))
    assert _close(_line(got["d"]), _exact(1, F(1, 100), 1, F(-15, 100)))
    assert _close(_line(got["c"]), _exact(3, F(49, 100), 3, F(45, 100)))
    assert team(_scored(rows)).ranked == []  # the default minimum is 10 questions
    assert team_view.MIN_COUNT == 10
    as_json = view.as_dict()
    assert as_json["min_count"] == 3 and as_json["ranked"][1]["name"] == "b"


@pytest.mark.parametrize("bad", [0, -1, 2.5, True, "10"])
def test_team_refuses_a_bad_minimum_count(bad: object) -> None:
    with pytest.raises(InputError, match="min-count"):
        team(_scored(CASE), min_count=bad)  # type: ignore[arg-type]


def test_team_of_nothing_is_empty_and_other_types_are_refused() -> None:
    view = team(_scored([]))
    assert (view.ranked, view.unranked, view.aggregates, view.markets) == ([], [], [], [])
    assert aggregate(_scored([])).forecast_id.size == 0
    with pytest.raises(ValueError, match="binary"):
        team(Scored(**{**_scored(CASE).__dict__, "kind": "numeric"}))


def test_team_matches_a_plain_loop_on_random_data() -> None:
    """Vectorised relative scores against a per-question loop with statistics.median."""
    rng = np.random.default_rng(11)
    rows: list[Row] = []
    people = [f"f{k:02d}" for k in range(12)]
    for q in range(1, 301):
        y = int(rng.random() < 0.4)
        chosen = rng.choice(people, size=int(rng.integers(1, 7)), replace=False)
        rows += [(q, str(name), float(rng.integers(1, 20)) / 20, y) for name in chosen]
    got = _by_name(team(_scored(rows), min_count=1))
    for name in people:
        briers, relative = [], []
        for q, who, p, y in rows:
            if who != name:
                continue
            crowd = [(pp - yy) ** 2 for qq, _, pp, yy in rows if qq == q]
            briers.append((p - y) ** 2)
            if len(crowd) > 1:
                relative.append((p - y) ** 2 - statistics.median(crowd))
        line = _line(got[name])
        assert line[:3] == (len(briers), pytest.approx(statistics.fmean(briers)), len(relative))
        assert line[3] == pytest.approx(statistics.fmean(relative), abs=1e-12)


def test_team_on_a_real_database_through_read_scored(engine: Engine) -> None:
    """The scored estimate is read_scored's: alice's estimate after the due date does not count."""
    t0 = datetime(2025, 1, 1)
    due = t0 + timedelta(days=10)
    forecasts = [
        {
            "id": fid,
            "title": f"Q{fid}",
            "criteria": "c",
            "due": due,
            "created_at": t0,
            "author": "alice",
            "status": "resolved",
            "outcome": outcome,
            "resolved_at": due,
        }
        for fid, outcome in ((1, True), (2, False))
    ]
    estimates = [
        (1, "alice", 0.9, 1),
        (1, "alice", 0.1, 11),  # after the due date: not scored
        (1, "bob", 0.6, 2),
        (1, "manifold", 0.8, 3),
        (2, "alice", 0.2, 1),
        (2, "bob", 0.5, 1),
    ]
    with engine.begin() as conn:
        conn.execute(insert(Forecast), forecasts)
        conn.execute(
            insert(Estimate),
            [
                {"forecast_id": f, "forecaster": w, "probability": p, "made_at": t0 + timedelta(d)}
                for f, w, p, d in estimates
            ],
        )
    with read_session(engine) as session:
        view = team(read_scored(executor(session)), min_count=2)
    # q1: alice 1/100, bob 16/100: median 17/200; q2: alice 4/100, bob 25/100: median 29/200.
    assert [(s.name, s.rank) for s in view.ranked] == [("alice", 1), ("bob", 2)]
    alice, bob = view.ranked
    assert _close(_line(alice), _exact(2, F(5, 200), 2, (F(-15, 200) + F(-21, 200)) / 2))
    assert _close(_line(bob), _exact(2, F(41, 200), 2, (F(15, 200) + F(21, 200)) / 2))
    # the market on q1: 4/100 among 1 and 16: median 4/100
    assert _close(_line(view.markets[0]), _exact(1, F(4, 100), 1, F(0)))
    assert [s.count for s in view.aggregates] == [2, 2]
