"""The numeric, date and multiple-choice scores against independent implementations (scoringrules
and properscoring for the CRPS, scikit-learn for the log and Brier scores, Metaculus's own code
transcribed, exact fractions) and propriety properties (hypothesis)."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import properscoring
import pytest
import scoringrules
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import brier_score_loss, log_loss

from predictions.questions import Question
from reports import distributions as d
from reports import scoring


def _cdf(masses: list[float] | np.ndarray) -> np.ndarray:
    """The grid CDF of ``[mass at 0, bin masses..., mass at 1]`` (normalised)."""
    m = np.asarray(masses, dtype=float)
    m = m / m.sum()
    return np.cumsum(m)[:-1]


def _random_cdfs(seed: int, n: int, grid: int, *, open_bounds: bool = True) -> np.ndarray:
    rng = np.random.default_rng(seed)
    inner = rng.random((n, grid - 1)) ** 3 + 0.002
    tails = rng.random((n, 2)) * 0.1 if open_bounds else np.zeros((n, 2))
    masses = np.c_[tails[:, :1], inner, tails[:, 1:]]
    masses /= masses.sum(axis=1, keepdims=True)
    return np.cumsum(masses, axis=1)[:, :-1]


# --- CRPS ------------------------------------------------------------------------------------


def _crps_exact(values: list[Fraction], y: Fraction) -> Fraction:
    """Integral of (F - step)^2 piece by piece in exact arithmetic: each piece of [0, 1] (the
    bins, split at y) has F linear, F(x) = a + b x, and the integrand a polynomial."""
    bins = len(values) - 1
    cuts = sorted({Fraction(k, bins) for k in range(bins + 1)} | {y})
    total = Fraction(0)
    for lo, hi in zip(cuts, cuts[1:], strict=False):
        k = min(int(lo * bins), bins - 1)
        slope = (values[k + 1] - values[k]) * bins
        a = values[k] - slope * Fraction(k, bins) - (1 if lo >= y else 0)

        def antiderivative(x: Fraction, a: Fraction = a, b: Fraction = slope) -> Fraction:
            return a * a * x + a * b * x * x + b * b * x**3 / 3

        total += antiderivative(hi) - antiderivative(lo)
    return total


def test_distributions_crps_of_the_uniform_by_hand() -> None:
    # Uniform on [0, 1], y = 1/4: integral_0^1/4 u^2 + integral_1/4^1 (1 - u)^2 = 1/192 + 27/192.
    values = [Fraction(0), Fraction(1, 2), Fraction(1)]
    assert _crps_exact(values, Fraction(1, 4)) == Fraction(7, 48)
    got = d.crps(np.array([[0.0, 0.5, 1.0]]), [0.25])
    assert got[0] == pytest.approx(7 / 48, abs=1e-15)


@pytest.mark.parametrize(
    ("masses", "y"),
    [
        ((1, 1, 2, 0), Fraction(1, 3)),
        ((1, 2, 3, 4, 5, 1), Fraction(0)),
        ((0, 3, 1, 1, 2), Fraction(1)),
        ((2, 1, 1, 1, 1, 1, 3), Fraction(5, 7)),
        ((1, 6, 1, 1), Fraction(1, 2)),  # on a grid point
    ],
)
def test_distributions_crps_equals_exact_fractions(masses: tuple[int, ...], y: Fraction) -> None:
    total = sum(masses)
    values = [Fraction(sum(masses[: i + 1]), total) for i in range(len(masses) - 1)]
    exact = _crps_exact(values, y)
    got = d.crps(np.array([[float(v) for v in values]]), [float(y)])
    assert got[0] == pytest.approx(float(exact), abs=1e-14)


def test_distributions_crps_clamps_an_outcome_beyond_an_open_bound() -> None:
    cdf = _random_cdfs(3, 4, 7)
    assert np.array_equal(d.crps(cdf, [-3.0, -0.1, 1.2, 40.0]), d.crps(cdf, [0, 0, 1, 1]))


def test_distributions_crps_of_two_points_matches_scoringrules_uniform_with_masses() -> None:
    # G = 2 is a uniform distribution with point masses at its ends: scoringrules' closed form.
    rng = np.random.default_rng(1)
    low, high = rng.random(200) * 0.3, rng.random(200) * 0.3
    cdf = np.c_[low, 1.0 - high]
    u = rng.random(200) * 1.4 - 0.2
    y = np.clip(u, 0, 1)
    expected = scoringrules.crps_uniform(y, 0.0, 1.0, lmass=low, umass=high)
    np.testing.assert_allclose(d.crps(cdf, u), expected, rtol=0, atol=1e-13)


@pytest.mark.parametrize(("grid", "seed"), [(201, 0), (201, 1), (11, 2), (3, 3)])
def test_distributions_crps_matches_scoringrules_on_a_fine_weighted_ensemble(
    grid: int, seed: int
) -> None:
    # The grid distribution as an ensemble: its point masses, and each bin's mass spread over
    # m equal sub-bins at their midpoints (whose CRPS differs from the exact one by O(1/m^2)).
    n, m = 20, 400
    cdf = _random_cdfs(seed, n, grid)
    u = np.random.default_rng(seed + 7).random(n) * 1.2 - 0.1
    bins = grid - 1
    sub = (np.arange(m) + 0.5) / m
    members = np.r_[0.0, ((np.arange(bins)[:, None] + sub) / bins).ravel(), 1.0]
    masses = np.diff(np.c_[np.zeros(n), cdf, np.ones(n)], axis=1)
    weights = np.c_[masses[:, :1], np.repeat(masses[:, 1:-1] / m, m, axis=1), masses[:, -1:]]
    expected = scoringrules.crps_ensemble(
        np.clip(u, 0, 1), np.broadcast_to(members, weights.shape), ens_w=weights
    )
    np.testing.assert_allclose(d.crps(cdf, u), expected, rtol=0, atol=1 / (m * m * bins))


@pytest.mark.parametrize("seed", [0, 1])
def test_distributions_crps_matches_properscoring_quadrature(seed: int) -> None:
    grid = 5
    cdf = _random_cdfs(seed, 10, grid, open_bounds=False)  # (quad wants F(0) = 0, F(1) = 1)
    u = np.random.default_rng(seed).random(10)
    points = np.linspace(0, 1, grid)
    got = d.crps(cdf, u)
    for row, y, score in zip(cdf, u, got, strict=True):

        class Piecewise:
            @staticmethod
            def cdf(x: np.ndarray, row: np.ndarray = row) -> np.ndarray:
                return np.interp(x, points, row)

        expected = properscoring.crps_quadrature(y, Piecewise(), xmin=0.0, xmax=1.0, tol=1e-5)
        assert score == pytest.approx(float(expected), abs=1e-6)


# --- log scores ------------------------------------------------------------------------------


def _metaculus_baseline(cdf: list[float], location: float, open_bounds: int) -> float:
    """Transcribed from Metaculus (scoring/score_math.py, questions/models.py get_pmf,
    utils/the_math/formulas.py unscaled_location_to_bucket_index), one forecast at a time."""
    pmf = [cdf[0]]
    for i in range(1, len(cdf)):
        pmf.append(cdf[i] - cdf[i - 1])
    pmf.append(1 - cdf[-1])
    inbound = len(cdf) - 1
    if location < 0:
        bucket = 0
    elif location > 1:
        bucket = inbound + 1
    elif location == 1:
        bucket = inbound
    else:
        bucket = max(int(location * inbound + 1 - 1e-10), 1)
    if bucket in [0, len(pmf) - 1]:  # noqa: SIM108 (as Metaculus writes it)
        baseline = 0.05
    else:
        baseline = (1 - 0.05 * open_bounds) / (len(pmf) - 2)
    return 100 * np.log(pmf[bucket] / baseline) / 2


def test_distributions_baseline_score_matches_metaculus_code() -> None:
    rng = np.random.default_rng(5)
    cdf = _random_cdfs(5, 300, 201)
    u = np.r_[rng.random(292) * 1.4 - 0.2, [0.0, 1.0, 0.5, 0.005, 0.995, -1e-9, 1 + 1e-9, 0.3]]
    lower = rng.random(300) < 0.5
    upper = rng.random(300) < 0.5
    got = d.baseline_score(cdf, u, lower, upper)
    for i in range(300):
        expected = _metaculus_baseline(cdf[i].tolist(), float(u[i]), int(lower[i]) + int(upper[i]))
        assert got[i] == pytest.approx(expected, abs=1e-12)


def test_distributions_the_baseline_forecast_scores_zero() -> None:
    # Metaculus's baseline: 5% beyond each open bound, the rest uniform over the 200 bins.
    open_both = _cdf([0.05, *[0.9 / 200] * 200, 0.05])
    closed = _cdf([0.0, *[1 / 200] * 200, 0.0])
    u = np.array([-0.5, 0.0, 0.37, 1.0, 7.0])
    scores = d.baseline_score(np.tile(open_both, (5, 1)), u, True, True)
    np.testing.assert_allclose(scores, 0.0, atol=1e-9)
    scores = d.baseline_score(np.tile(closed, (3, 1)), [0.0, 0.5, 1.0], False, False)
    np.testing.assert_allclose(scores, 0.0, atol=1e-9)
    np.testing.assert_allclose(d.log_score(np.tile(closed, (3, 1)), [0, 0.5, 1]), 0, atol=1e-9)


def test_distributions_log_score_is_minus_the_log_density() -> None:
    # Masses 0.1 | 0.2 0.3 0.4 | 0 on 3 bins: density 0.6 / 0.9 / 1.2 per unit of u.
    cdf = np.tile(_cdf([0.1, 0.2, 0.3, 0.4, 0.0]), (5, 1))
    got = d.log_score(cdf, [0.1, 0.5, 0.9, 0.0, -0.2])
    # u = 0 is in the first bin (closed below, as Metaculus's bucket 1); below 0 the tail mass.
    expected = -np.log([0.6, 0.9, 1.2, 0.6, 0.3])
    np.testing.assert_allclose(got, expected, atol=1e-12)
    within = d.baseline_score(cdf[:1], [0.5], True, False)
    assert within[0] == pytest.approx(50 * (-got[1] - math.log(1 - 0.05)), abs=1e-12)


# --- PIT and coverage ------------------------------------------------------------------------


def test_distributions_pit_in_the_middle_of_a_point_mass() -> None:
    cdf = np.tile(_cdf([0.2, 0.3, 0.3, 0.2]), (5, 1))  # 2 bins; 0.2 at each bound
    got = d.pit(cdf, [-1.0, 0.0, 0.25, 1.0, 3.0])
    np.testing.assert_allclose(got, [0.1, 0.1, 0.35, 0.9, 0.9], atol=1e-15)
    uniform = np.tile(np.linspace(0, 1, 201), (4, 1))
    np.testing.assert_allclose(d.pit(uniform, [0, 0.123, 0.5, 1]), [0, 0.123, 0.5, 1], atol=1e-15)


def test_distributions_pit_histogram_of_outcomes_drawn_from_the_forecast_is_flat() -> None:
    rng = np.random.default_rng(9)
    n, grid = 20_000, 201
    cdf = np.tile(_random_cdfs(9, 1, grid, open_bounds=False), (n, 1))
    # Draw by inverting the CDF (linear in each bin).
    u = np.interp(rng.random(n), cdf[0], np.linspace(0, 1, grid))
    counts = d.pit_histogram(d.pit(cdf, u))
    assert counts.sum() == n
    expected = n / 10
    chi2 = float(((counts - expected) ** 2 / expected).sum())
    assert chi2 < 27.9  # the 0.999 quantile of chi-square with 9 degrees of freedom
    assert d.pit_histogram([0.0, 0.1, 0.95, 1.0]).tolist() == [1, 1, 0, 0, 0, 0, 0, 0, 0, 2]


def _quantile(row: np.ndarray, p: float) -> float:
    """inf{u : F(u) >= p} by bisection on the grid CDF with its point masses."""
    points = np.linspace(0, 1, row.size)

    def cdf(x: float) -> float:
        return 1.0 if x >= 1 else float(np.interp(x, points, row))

    if cdf(0.0) >= p:
        return 0.0
    lo, hi = 0.0, 1.0
    for _ in range(80):
        mid = (lo + hi) / 2
        lo, hi = (lo, mid) if cdf(mid) >= p else (mid, hi)
    return hi


@pytest.mark.parametrize("level", d.LEVELS)
def test_distributions_coverage_matches_the_quantiles(level: float) -> None:
    rng = np.random.default_rng(int(level * 100))
    cdf = _random_cdfs(int(level * 10), 400, 21)
    u = rng.random(400) * 1.3 - 0.15
    a = (1 - level) / 2
    expected = [
        _quantile(row, a) <= min(max(y, 0), 1) <= _quantile(row, 1 - a)
        for row, y in zip(cdf, u, strict=True)
    ]
    assert d.covered(cdf, u, level).tolist() == expected
    assert d.coverage(cdf, u)[level].tolist() == expected


def test_distributions_coverage_holds_its_level_for_outcomes_from_the_forecast() -> None:
    rng = np.random.default_rng(11)
    n = 20_000
    cdf = np.tile(_random_cdfs(11, 1, 201, open_bounds=False), (n, 1))
    u = np.interp(rng.random(n), cdf[0], np.linspace(0, 1, 201))
    for level, hits in d.coverage(cdf, u).items():
        assert abs(hits.mean() - level) < 0.015


# --- multiple choice -------------------------------------------------------------------------


def test_distributions_choice_scores_by_hand() -> None:
    p = [Fraction(1, 2), Fraction(1, 3), Fraction(1, 6)]
    brier = sum((pi - (i == 2)) ** 2 for i, pi in enumerate(p))
    assert brier == Fraction(19, 18)
    rps = ((Fraction(1, 2) - 0) ** 2 + (Fraction(5, 6) - 0) ** 2) / 2
    assert rps == Fraction(17, 36)
    row = np.array([[0.5, 1 / 3, 1 / 6, 0.0, 0.0]])  # padded to 5 columns
    assert d.choice_brier(row, [3], [2])[0] == pytest.approx(float(brier), abs=1e-15)
    assert d.ranked_probability_score(row, [3], [2])[0] == pytest.approx(float(rps), abs=1e-15)
    assert d.choice_log_score(row, [3], [2])[0] == pytest.approx(math.log(6), abs=1e-15)


def test_distributions_two_options_score_twice_the_binary_brier() -> None:
    p, y = np.array([0.7, 0.2, 0.5, 0.95]), np.array([1, 0, 0, 1])
    rows = np.c_[1 - p, p]
    two = np.full(4, 2)
    binary = (p - y) ** 2
    np.testing.assert_allclose(d.choice_brier(rows, two, y), 2 * binary, atol=1e-15)
    np.testing.assert_allclose(d.ranked_probability_score(rows, two, y), binary, atol=1e-15)
    assert scoring.brier_score(p, y) == pytest.approx(d.choice_brier(rows, two, y).mean() / 2)


@pytest.mark.parametrize("options", [2, 3, 5, 30])
def test_distributions_choice_brier_and_log_match_sklearn(options: int) -> None:
    rng = np.random.default_rng(options)
    n = 300
    p = rng.dirichlet(np.ones(options), n) * 0.97 + 0.03 / options  # (>= the clamp)
    k = rng.integers(0, options, n)
    padded = np.c_[p, np.zeros((n, 30 - options))]
    counts = np.full(n, options)
    labels = list(range(options))
    expected_log = log_loss(k, p, labels=labels)
    assert d.choice_log_score(padded, counts, k).mean() == pytest.approx(expected_log, abs=1e-12)
    expected_brier = brier_score_loss(k, p, labels=labels, scale_by_half=False)
    if options == 2:  # (scikit-learn takes a two-class problem's positive column only)
        expected_brier = 2 * brier_score_loss(k, p[:, 1], scale_by_half=True)
    assert d.choice_brier(padded, counts, k).mean() == pytest.approx(expected_brier, abs=1e-12)


def test_distributions_rows_with_different_numbers_of_options_score_as_alone() -> None:
    rng = np.random.default_rng(4)
    sizes = [2, 7, 3, 30, 5]
    rows = [rng.dirichlet(np.ones(s)) for s in sizes]
    k = [int(rng.integers(0, s)) for s in sizes]
    padded = np.zeros((len(sizes), 30))
    for i, row in enumerate(rows):
        padded[i, : row.size] = row
    for fn in (d.choice_brier, d.choice_log_score, d.ranked_probability_score):
        together = fn(padded, sizes, k)
        alone = [fn(row[None, :], [row.size], [ki])[0] for row, ki in zip(rows, k, strict=True)]
        np.testing.assert_allclose(together, alone, atol=1e-14)


def test_distributions_choice_log_score_clamps_a_zero() -> None:
    row = np.array([[0.0, 1.0]])
    assert d.choice_log_score(row, [2], [0])[0] == pytest.approx(-math.log(0.001))


def test_distributions_option_calibration_is_the_binary_table_of_every_option() -> None:
    p = np.array([[0.35, 0.65, 0.0], [0.2, 0.3, 0.5], [0.9, 0.05, 0.05]])
    counts, k = [2, 3, 3], [1, 2, 0]
    flat_p = [0.35, 0.65, 0.2, 0.3, 0.5, 0.9, 0.05, 0.05]
    flat_y = [0, 1, 0, 0, 1, 1, 0, 0]
    assert d.option_calibration(p, counts, k) == scoring.calibration_table(flat_p, flat_y)


def test_distributions_refuse_shapes_that_do_not_fit() -> None:
    with pytest.raises(ValueError, match="cdf must be"):
        d.crps(np.zeros((2, 5)), [0.1])
    with pytest.raises(ValueError, match="one of its row's options"):
        d.choice_brier(np.array([[0.5, 0.5, 0.0]]), [2], [2])
    with pytest.raises(ValueError, match="2 to W options"):
        d.choice_brier(np.array([[0.5, 0.5]]), [3], [0])


# --- propriety -------------------------------------------------------------------------------

_mass = st.integers(min_value=1, max_value=50)


@st.composite
def _pair(draw: st.DrawFn) -> tuple[int, np.ndarray, np.ndarray]:
    """Two distributions on one small grid: masses at 0, on each bin, at 1 (tails maybe 0)."""
    bins = draw(st.integers(min_value=1, max_value=5))
    tails = draw(st.booleans())

    def masses() -> np.ndarray:
        inner = draw(st.lists(_mass, min_size=bins, max_size=bins))
        ends = draw(st.lists(_mass, min_size=2, max_size=2)) if tails else [0, 0]
        m = np.array([ends[0], *inner, ends[1]], dtype=float)
        return m / m.sum()

    return bins, masses(), masses()


def _expected(score: object, bins: int, truth: np.ndarray, forecast: np.ndarray) -> float:
    """E_{Y ~ truth} score(forecast, Y): the masses at the ends, and within each bin the two-point
    Gauss-Legendre rule, exact here (the CRPS is quadratic in y within a bin, the log score
    constant)."""
    cdf = np.cumsum(forecast)[:-1][None, :]
    ends = [(m, u) for m, u in ((truth[0], -0.5), (truth[-1], 1.5)) if m > 0]
    total = sum(m * score(cdf, [u])[0] for m, u in ends)  # type: ignore[operator]
    offset = 1 / (2 * math.sqrt(3) * bins)
    for k in range(bins):
        mid = (k + 0.5) / bins
        s = score(np.repeat(cdf, 2, axis=0), [mid - offset, mid + offset])  # type: ignore[operator]
        total += truth[k + 1] * (s[0] + s[1]) / 2
    return float(total)


@settings(max_examples=200, deadline=None)
@given(_pair())
def test_distributions_crps_and_log_score_are_proper(pair: tuple) -> None:
    bins, truth, other = pair
    for score in (d.crps, d.log_score):
        honest = _expected(score, bins, truth, truth)
        assert honest <= _expected(score, bins, truth, other) + 1e-9


@settings(max_examples=200, deadline=None)
@given(
    st.integers(2, 6).flatmap(lambda k: st.tuples(*[st.lists(_mass, min_size=k, max_size=k)] * 2))
)
def test_distributions_choice_scores_are_proper(pair: tuple) -> None:
    truth, other = (np.array(m, dtype=float) / sum(m) for m in pair)
    options = truth.size
    outcomes = np.arange(options)
    counts = np.full(options, options)
    for score in (d.choice_brier, d.choice_log_score, d.ranked_probability_score):
        honest = score(np.tile(truth, (options, 1)), counts, outcomes) @ truth
        dishonest = score(np.tile(other, (options, 1)), counts, outcomes) @ truth
        assert honest <= dishonest + 1e-12


def test_distributions_scaled_is_question_scaled_for_many_questions() -> None:
    questions = [
        Question("numeric", lower=-5.0, upper=30.0),
        Question("numeric", lower=2.0, upper=2000.0, log=True, open_lower=True),
        Question("date", lower=1.7e9, upper=1.9e9, open_upper=True),
    ]
    xs = [12.5, 40.0, 1.95e9]
    got = d.scaled(
        xs,
        [q.lower for q in questions],
        [q.upper for q in questions],
        [q.log for q in questions],
    )
    expected = [q.scaled(x) for q, x in zip(questions, xs, strict=True)]
    np.testing.assert_allclose(got, expected, rtol=1e-15)
    # At or below zero on a log scale: below the range (the log of it is undefined).
    assert d.scaled([0.0, -3.0], [2.0, 2.0], [20.0, 20.0], [True, True]).tolist() == [
        -math.inf,
        -math.inf,
    ]
