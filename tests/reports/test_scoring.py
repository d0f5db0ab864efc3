"""The scoring maths against scikit-learn, hand-computed fractions and properties (hypothesis)."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.calibration import calibration_curve
from sklearn.isotonic import IsotonicRegression
from sklearn.metrics import brier_score_loss, log_loss

from reports import scoring

CLAMP_LO, CLAMP_HI = scoring.CLAMP


def _random(seed: int, n: int, *, grid: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    p = rng.random(n)
    if grid:
        p = np.round(p * grid) / grid
    y = (rng.random(n) < p).astype(int)
    return p, y


EDGE_CASES = {
    "ties": (np.array([0.3, 0.3, 0.3, 0.7, 0.7, 0.7]), np.array([0, 1, 0, 1, 1, 0])),
    "all_yes": (np.array([0.2, 0.55, 0.9, 0.9]), np.array([1, 1, 1, 1])),
    "all_no": (np.array([0.1, 0.45, 0.8]), np.array([0, 0, 0])),
    "bin_edges": (
        np.array([i / 10 for i in range(11)]),
        np.array([0, 0, 1, 0, 1, 0, 1, 1, 0, 1, 1]),
    ),
    "zero_and_one": (np.array([0.0, 1.0, 0.0, 1.0, 0.5]), np.array([0, 1, 1, 0, 1])),
    "one_forecast": (np.array([0.8]), np.array([1])),
}


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_scoring_brier_log_match_sklearn_on_random_data(seed: int) -> None:
    p, y = _random(seed, 500)
    w = np.random.default_rng(seed + 10).integers(1, 5, p.size)
    assert scoring.brier_score(p, y) == pytest.approx(brier_score_loss(y, p), abs=1e-15)
    assert scoring.brier_score(p, y, w) == pytest.approx(
        brier_score_loss(y, p, sample_weight=w), abs=1e-15
    )
    clipped = np.clip(p, CLAMP_LO, CLAMP_HI)
    assert scoring.log_score(p, y) == pytest.approx(log_loss(y, clipped), abs=1e-12)
    assert scoring.log_score(p, y, w) == pytest.approx(
        log_loss(y, clipped, sample_weight=w), abs=1e-12
    )


@pytest.mark.parametrize("case", sorted(EDGE_CASES))
def test_scoring_brier_log_match_sklearn_on_edge_cases(case: str) -> None:
    p, y = EDGE_CASES[case]
    assert scoring.brier_score(p, y) == pytest.approx(
        brier_score_loss(y, p, pos_label=1), abs=1e-15
    )
    clipped = np.clip(p, CLAMP_LO, CLAMP_HI)
    expected = log_loss(y, clipped, labels=[0, 1])
    assert scoring.log_score(p, y) == pytest.approx(expected, abs=1e-12)
    assert math.isfinite(scoring.log_score(p, y))


def test_scoring_log_clamp_caps_a_confident_miss() -> None:
    # PredictionBook credence 0% on something that happened: -ln(0.001), not infinity.
    assert scoring.log_score([0.0], [1]) == pytest.approx(-math.log(0.001))
    assert scoring.log_score([1.0], [1]) == pytest.approx(-math.log(0.999))
    assert scoring.log_score([0.0005], [0]) == pytest.approx(-math.log(0.999))


def test_scoring_spherical_by_hand() -> None:
    # p = 0.8, y = 1: 0.8 / sqrt(0.64 + 0.04); p = 0.8, y = 0: 0.2 / sqrt(0.68).
    assert scoring.spherical_score([0.8], [1]) == pytest.approx(0.8 / math.sqrt(0.68))
    assert scoring.spherical_score([0.8], [0]) == pytest.approx(0.2 / math.sqrt(0.68))
    assert scoring.spherical_score([0.5, 0.5], [0, 1]) == pytest.approx(1 / math.sqrt(2))
    assert scoring.spherical_score([1.0, 0.0], [1, 0]) == 1.0


def test_scoring_brier_in_fractions_for_a_small_case() -> None:
    p = [Fraction(9, 10), Fraction(1, 5), Fraction(3, 5), Fraction(7, 10)]
    y = [1, 0, 0, 1]
    exact = sum((pi - yi) ** 2 for pi, yi in zip(p, y, strict=True)) / len(p)
    assert exact == Fraction(1, 8)  # (0.01 + 0.04 + 0.36 + 0.09) / 4
    got = scoring.brier_score([float(v) for v in p], y)
    assert got == pytest.approx(float(exact), abs=1e-15)


def _murphy_exact(p: list[float], y: list[int], bins: int = 10) -> dict[str, Fraction]:
    """The five Stephenson terms in exact rational arithmetic from the float inputs."""
    fp = [Fraction(v) for v in p]
    n = len(fp)
    groups: dict[int, list[int]] = {}
    for i, v in enumerate(p):
        groups.setdefault(min(int(math.floor(v * bins + 1e-9)), bins - 1), []).append(i)
    o = Fraction(sum(y), n)
    rel = res = wbv = wbc = Fraction(0)
    for idx in groups.values():
        nk = len(idx)
        fk = sum(fp[i] for i in idx) / nk
        ok = Fraction(sum(y[i] for i in idx), nk)
        rel += nk * (fk - ok) ** 2
        res += nk * (ok - o) ** 2
        wbv += sum((fp[i] - fk) ** 2 for i in idx)
        wbc += 2 * sum((y[i] - ok) * (fp[i] - fk) for i in idx)
    brier = sum((fp[i] - y[i]) ** 2 for i in range(n)) / n
    return {
        "reliability": rel / n,
        "resolution": res / n,
        "uncertainty": o * (1 - o),
        "within_bin_variance": wbv / n,
        "within_bin_covariance": wbc / n,
        "brier": brier,
    }


@pytest.mark.parametrize(
    "case", ["ties", "all_yes", "all_no", "bin_edges", "zero_and_one", "one_forecast"]
)
def test_scoring_murphy_matches_exact_fractions_and_adds_up(case: str) -> None:
    p, y = EDGE_CASES[case]
    exact = _murphy_exact(p.tolist(), y.tolist())
    # The decomposition is an identity in exact arithmetic...
    assert (
        exact["reliability"]
        - exact["resolution"]
        + exact["uncertainty"]
        + exact["within_bin_variance"]
        - exact["within_bin_covariance"]
        == exact["brier"]
    )
    got = scoring.murphy_decomposition(p, y)
    # ...and every float term equals the exact one to rounding.
    for name, value in exact.items():
        assert getattr(got, name) == pytest.approx(float(value), abs=1e-14), name
    assert got.total == pytest.approx(got.brier, abs=1e-14)


def test_scoring_murphy_small_case_by_hand() -> None:
    # Bin 70-80%: 0.7, 0.75 with outcomes 1, 0; bin 10-20%: 0.1 with outcome 0.
    got = scoring.murphy_decomposition([0.7, 0.75, 0.1], [1, 0, 0])
    f1, o1 = Fraction(29, 40), Fraction(1, 2)
    assert got.reliability == pytest.approx(float((2 * (f1 - o1) ** 2 + Fraction(1, 100)) / 3))
    assert got.resolution == pytest.approx(
        float((2 * (o1 - Fraction(1, 3)) ** 2 + (Fraction(1, 3)) ** 2) / 3)
    )
    assert got.uncertainty == pytest.approx(2 / 9)
    assert got.within_bin_variance == pytest.approx(float(2 * Fraction(1, 40) ** 2 / 3))
    # (1 - 1/2)(0.7 - 0.725) + (0 - 1/2)(0.75 - 0.725) = -0.025, times 2/3
    assert got.within_bin_covariance == pytest.approx(-0.05 / 3)


def test_scoring_bins_put_edges_in_the_upper_bin_and_one_in_the_top() -> None:
    p = np.array([0.0, 0.1, 0.2, 0.3, 0.5, 0.7, 0.9, 0.99999, 1.0, 0.3 - 1e-12, 0.29])
    assert scoring.bin_index(p).tolist() == [0, 1, 2, 3, 5, 7, 9, 9, 9, 3, 2]


@pytest.mark.parametrize("seed", [3, 4])
def test_scoring_calibration_table_matches_sklearn(seed: int) -> None:
    p, y = _random(seed, 2000)
    prob_true, prob_pred = calibration_curve(y, p, n_bins=10, strategy="uniform")
    table = [b for b in scoring.calibration_table(p, y) if b.count]
    assert [b.observed for b in table] == pytest.approx(prob_true.tolist(), abs=1e-12)
    assert [b.mean_forecast for b in table] == pytest.approx(prob_pred.tolist(), abs=1e-12)
    assert sum(b.count for b in table) == p.size


def test_scoring_calibration_table_unfolded_and_wilson_by_hand() -> None:
    p = [0.1] * 4 + [0.9] * 10
    y = [0, 0, 0, 1] + [1] * 7 + [0] * 3
    table = scoring.calibration_table(p, y)
    low_bin, high_bin = table[1], table[9]
    assert (low_bin.count, low_bin.yes, high_bin.count, high_bin.yes) == (4, 1, 10, 7)
    assert low_bin.observed == 0.25 and high_bin.observed == 0.7
    # Wilson for 7/10, z = 1.96: (7 + 1.92) / 13.84 -+ 1.96/13.84 * sqrt(2.1 + 0.96)
    z = 1.959963984540054
    centre = (7 + z * z / 2) / (10 + z * z)
    half = z / (10 + z * z) * math.sqrt(7 * 3 / 10 + z * z / 4)
    assert high_bin.ci_low == pytest.approx(centre - half)
    assert high_bin.ci_high == pytest.approx(centre + half)
    assert (round(high_bin.ci_low, 3), round(high_bin.ci_high, 3)) == (0.397, 0.892)
    assert table[5].count == 0 and table[5].observed is None


def test_scoring_wilson_stays_inside_zero_one_at_the_extremes() -> None:
    low, high = scoring.wilson_interval(np.array([0, 5, 0]), np.array([5, 5, 0]))
    assert low[0] == 0.0 and 0 < high[0] < 1
    assert 0 < low[1] < 1 and high[1] == 1.0
    assert math.isnan(low[2]) and math.isnan(high[2])


@pytest.mark.parametrize("seed", [5, 6, 7])
@pytest.mark.parametrize("grid", [None, 10, 20])
def test_scoring_isotonic_fit_matches_sklearn(seed: int, grid: int | None) -> None:
    p, y = _random(seed, 400, grid=grid)
    w = np.random.default_rng(seed).integers(1, 4, p.size).astype(float)
    xs, fitted, weight = scoring.isotonic_fit(p, y, w)
    reference = IsotonicRegression(increasing=True, out_of_bounds="clip").fit(p, y, sample_weight=w)
    assert fitted == pytest.approx(reference.predict(xs), abs=1e-12)
    assert np.all(np.diff(fitted) >= -1e-15)
    assert weight.sum() == pytest.approx(w.sum())


def test_scoring_isotonic_pools_tied_forecasts() -> None:
    # Two forecasts of 0.6 with outcomes 1 and 0 get one value (their pooled mean), and the
    # violator at 0.7 (outcome 0) is pooled with them: (1 + 0 + 0) / 3.
    xs, fitted, weight = scoring.isotonic_fit([0.2, 0.6, 0.6, 0.7], [0, 1, 0, 0])
    assert xs.tolist() == [0.2, 0.6, 0.7]
    assert fitted.tolist() == pytest.approx([0.0, 1 / 3, 1 / 3])
    assert weight.tolist() == [1.0, 2.0, 1.0]


def test_scoring_corp_small_case_by_hand() -> None:
    p, y = [0.2, 0.6, 0.6, 0.7], [0, 1, 0, 0]
    corp = scoring.corp_decomposition(p, y)
    brier = Fraction(sum((Fraction(a) - b) ** 2 for a, b in zip(p, y, strict=True)), 4)
    recal = [Fraction(0), Fraction(1, 3), Fraction(1, 3), Fraction(1, 3)]
    s_c = sum((c - b) ** 2 for c, b in zip(recal, y, strict=True)) / 4
    unc = Fraction(1, 4) * Fraction(3, 4)
    assert corp.score == pytest.approx(float(brier))
    assert corp.miscalibration == pytest.approx(float(brier - s_c))
    assert corp.discrimination == pytest.approx(float(unc - s_c))
    assert corp.uncertainty == pytest.approx(float(unc))
    log = scoring.corp_decomposition(p, y, rule="log")
    # Recalibrated: 0 for the NO at 0.2 (scores 0), 1/3 for the block (one YES, two NO).
    s_c_log = -(math.log(1 / 3) + 2 * math.log(2 / 3)) / 4
    unc_log = -(0.25 * math.log(0.25) + 0.75 * math.log(0.75))
    assert log.miscalibration == pytest.approx(log.score - s_c_log)
    assert log.discrimination == pytest.approx(unc_log - s_c_log)
    assert log.uncertainty == pytest.approx(unc_log)


def test_scoring_corp_uses_sklearn_isotonic_recalibration() -> None:
    p, y = _random(8, 1000, grid=100)
    recal = IsotonicRegression(out_of_bounds="clip").fit(p, y).predict(p)
    corp = scoring.corp_decomposition(p, y)
    assert corp.miscalibration == pytest.approx(
        brier_score_loss(y, p) - np.mean((recal - y) ** 2), abs=1e-12
    )
    rate = y.mean()
    assert corp.uncertainty == pytest.approx(rate * (1 - rate), abs=1e-12)
    curve = scoring.corp_curve(p, y)
    assert [c[1] for c in curve] == pytest.approx(
        IsotonicRegression(out_of_bounds="clip").fit(p, y).predict([c[0] for c in curve]).tolist(),
        abs=1e-12,
    )


def test_scoring_skill_scores_against_baselines() -> None:
    p, y = np.array([0.9, 0.8, 0.3, 0.1]), np.array([1, 1, 0, 0])
    s = scoring.summarize(p, y)
    brier = np.mean((p - y) ** 2)
    assert s.brier_skill_vs_half == pytest.approx(1 - brier / 0.25)
    assert s.brier_skill_vs_base_rate == pytest.approx(1 - brier / 0.25)  # base rate 0.5
    assert s.log_skill_vs_half == pytest.approx(1 - s.log / math.log(2))
    assert s.spherical_skill_vs_half == pytest.approx(
        (s.spherical - 1 / math.sqrt(2)) / (1 - 1 / math.sqrt(2))
    )
    all_yes = scoring.summarize([0.6, 0.7], [1, 1])
    assert all_yes.brier_skill_vs_base_rate is None
    assert all_yes.log_skill_vs_base_rate is None
    assert all_yes.brier_skill_vs_half is not None


def test_scoring_bootstrap_is_seeded_and_covers_the_score() -> None:
    p, y = _random(9, 300, grid=20)
    a = scoring.bootstrap_brier_interval(p, y, seed=1)
    b = scoring.bootstrap_brier_interval(p, y, seed=1)
    c = scoring.bootstrap_brier_interval(p, y, seed=2)
    assert a == b and a != c
    assert a.method == "bootstrap" and a.low < scoring.brier_score(p, y) < a.high


def test_scoring_bootstrap_over_counts_equals_bootstrap_over_rows() -> None:
    # Weights are counts: 3 rows of weight 100 resample like 300 rows. Compare the interval
    # with a plain index bootstrap of the expanded rows (same distribution, different draws).
    p = np.array([0.2, 0.7, 0.9])
    y = np.array([0, 1, 0])
    w = np.array([100, 150, 50])
    grouped = scoring.bootstrap_brier_interval(p, y, w, resamples=4000, seed=3)
    rows_p, rows_y = np.repeat(p, w), np.repeat(y, w)
    rng = np.random.default_rng(11)
    idx = rng.integers(0, rows_p.size, (4000, rows_p.size))
    means = ((rows_p[idx] - rows_y[idx]) ** 2).mean(axis=1)
    lo, hi = np.quantile(means, [0.025, 0.975])
    assert grouped.low == pytest.approx(lo, abs=0.006)
    assert grouped.high == pytest.approx(hi, abs=0.006)


def test_scoring_bootstrap_falls_back_to_normal_with_many_distinct_values() -> None:
    p, y = _random(10, 30_000)
    ci = scoring.bootstrap_brier_interval(p, y)
    se = (p - y) ** 2
    half = 1.959963984540054 * se.std() / math.sqrt(p.size)
    assert ci.method == "normal"
    assert (ci.low, ci.high) == pytest.approx((se.mean() - half, se.mean() + half), abs=1e-9)


def test_scoring_time_averaged_brier_by_hand() -> None:
    # Question A: 20% from day 0 to 3, 80% from day 3 to close at day 4; outcome YES.
    # (0.64 * 3 + 0.04 * 1) / 4 = 0.49. Question B: one estimate, 0.5, close 10: 0.25.
    # Question C: two estimates at the same moment: only the later-recorded counts.
    ids, tab = scoring.time_averaged_brier(
        group=[1, 1, 2, 3, 3],
        t=[0.0, 3.0, 5.0, 1.0, 1.0],
        p=[0.2, 0.8, 0.5, 0.1, 0.9],
        y=[1, 1, 0, 1, 1],
        close=[4.0, 4.0, 10.0, 2.0, 2.0],
    )
    assert ids.tolist() == [1, 2, 3]
    assert tab.tolist() == pytest.approx([0.49, 0.25, 0.01])


def test_scoring_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        scoring.brier_score([1.2], [1])
    with pytest.raises(ValueError, match="0 or 1"):
        scoring.brier_score([0.5], [2])
    with pytest.raises(ValueError, match="no forecasts"):
        scoring.brier_score([], [])
    with pytest.raises(ValueError, match="length"):
        scoring.brier_score([0.5, 0.2], [1])


_probabilities = st.lists(
    st.tuples(
        st.one_of(
            st.floats(0.0, 1.0),
            st.sampled_from([0.0, 0.1, 0.3, 0.5, 0.7, 0.9, 1.0]),
        ),
        st.integers(0, 1),
        st.integers(1, 5),
    ),
    min_size=1,
    max_size=60,
)


@settings(max_examples=200, deadline=None)
@given(_probabilities)
def test_scoring_decompositions_add_up_and_mcb_dsc_are_non_negative(rows: list) -> None:
    p = np.array([r[0] for r in rows])
    y = np.array([r[1] for r in rows])
    w = np.array([r[2] for r in rows], dtype=float)
    murphy = scoring.murphy_decomposition(p, y, w)
    assert murphy.total == pytest.approx(murphy.brier, abs=1e-12)
    assert murphy.brier == pytest.approx(scoring.brier_score(p, y, w), abs=1e-15)
    assert murphy.reliability >= 0 and murphy.resolution >= 0 and murphy.within_bin_variance >= 0
    for rule in ("brier", "log"):
        corp = scoring.corp_decomposition(p, y, w, rule=rule)
        assert corp.total == pytest.approx(corp.score, abs=1e-12)
        # PAV is optimal among non-decreasing maps, so both are >= 0 up to rounding.
        assert corp.miscalibration >= -1e-12
        assert corp.discrimination >= -1e-12
        assert corp.uncertainty >= 0
    assert scoring.corp_decomposition(p, y, w).score == pytest.approx(
        scoring.brier_score(p, y, w), abs=1e-15
    )


@settings(max_examples=100, deadline=None)
@given(_probabilities)
def test_scoring_weights_equal_repeated_rows(rows: list) -> None:
    p = np.array([r[0] for r in rows])
    y = np.array([r[1] for r in rows])
    w = np.array([r[2] for r in rows])
    rp, ry = np.repeat(p, w), np.repeat(y, w)
    assert scoring.brier_score(p, y, w) == pytest.approx(scoring.brier_score(rp, ry), abs=1e-12)
    assert scoring.log_score(p, y, w) == pytest.approx(scoring.log_score(rp, ry), abs=1e-12)
    assert scoring.spherical_score(p, y, w) == pytest.approx(
        scoring.spherical_score(rp, ry), abs=1e-12
    )
    a = scoring.corp_decomposition(p, y, w)
    b = scoring.corp_decomposition(rp, ry)
    assert a.miscalibration == pytest.approx(b.miscalibration, abs=1e-12)
    assert [x.count for x in scoring.calibration_table(p, y, w)] == [
        x.count for x in scoring.calibration_table(rp, ry)
    ]
