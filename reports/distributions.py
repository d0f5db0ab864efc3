"""Scoring maths for numeric, date and multiple-choice forecasts: pure functions, vectorised over
many forecasts (numpy arrays in, numpy arrays out; nothing touches a database, a clock or a file).

**Numeric and date forecasts** arrive as ``cdf``, an array of shape ``(n, G)`` (``G`` =
:data:`predictions.questions.GRID` = 201 in the store; any ``G >= 2`` works, which the tests use
for small exact cases), and ``u``, the outcomes in the *scaled* coordinate
(:meth:`predictions.questions.Question.scaled`: 0 at the lower bound, 1 at the upper, below 0 or
above 1 beyond an open bound). Row ``i`` is the distribution with

- a point mass ``cdf[i, 0]`` at ``u = 0`` (0 for a closed lower bound),
- the CDF linear in ``u`` between the grid points ``u_k = k / (G - 1)``, where it equals
  ``cdf[i, k]`` (so the density is constant within each of the ``G - 1`` bins),
- a point mass ``1 - cdf[i, -1]`` at ``u = 1`` (0 for a closed upper bound).

An outcome beyond an open bound falls in that bound's point mass (the CRPS, PIT and coverage
clamp ``u`` into [0, 1]; the log scores use Metaculus's out-of-bounds buckets).

==================  ==================================================  ==========================
score               formula (per forecast)                              reference
==================  ==================================================  ==========================
CRPS (loss)         ``integral (F(u) - 1{u >= y})^2 du``, ``y`` the     Matheson & Winkler (1976);
                    outcome clamped into [0, 1]; exact, per bin         Hersbach (2000)
log score (loss)    ``-ln((G - 1) pmf[b])``: minus the log density at   Good (1952)
                    the outcome (range = 1; a uniform forecast over a
                    closed range scores 0)
baseline score      ``50 ln(pmf[b] / base[b])`` (Metaculus; gain)       Metaculus, see below
PIT                 ``F(y)``; within a point mass the middle of its     Dawid (1984); Czado,
                    jump                                                Gneiting & Held (2009)
coverage            ``y`` in the central interval ``[q(a), q(1 - a)]``  Gneiting & Raftery (2007),
                    with ``a = (1 - level) / 2``                        section 6.2
==================  ==================================================  ==========================

The CRPS here is in the scaled coordinate (the range has length 1); the caller multiplies it by
``upper - lower`` for the question's units on a linear numeric question (a date question: in days,
``(upper - lower) / 86400``). On a log-scaled question the scaled CRPS is the CRPS of ``ln x``
divided by ``ln(upper / lower)``.

**Multiple-choice forecasts** arrive as ``p``, an array ``(n, W)`` of option probabilities,
each row padded with zeros beyond its ``options[i]`` options (``W`` >= the most options of any
row; the store allows 30), and ``k``, the index of the option that happened (0-based).
Padding with zeros is what makes one matrix serve questions with different numbers of options:
a zero column adds nothing to the Brier score and is left out of the RPS and the calibration.

===============  =======================================================  ======================
score            formula (per forecast, ``K`` options)                    reference
===============  =======================================================  ======================
Brier (loss)     ``sum_i (p_i - o_i)^2``, 0..2                            Brier (1950)
log score        ``-ln max(p_k, 0.001)`` (natural log; the clamp of       Good (1952)
(loss)           :data:`reports.scoring.CLAMP`)
RPS (loss)       ``sum_{j<K-1} (P_j - O_j)^2 / (K - 1)``; ``P``, ``O``    Epstein (1969);
                 the cumulative forecast and outcome; 0..1                Murphy (1971)
calibration      every option's probability as a binary forecast of       Kull et al. (2019),
                 that option (:func:`reports.scoring.calibration_table`)  classwise calibration
===============  =======================================================  ======================

The multi-class Brier score is Brier's own (1950) convention: the sum over the options. A binary
question written as two options (NO, YES) scores ``(p - y)^2 + ((1 - p) - (1 - y))^2 =
2 (p - y)^2``: twice its binary Brier score (:func:`reports.scoring.brier_score`), so an
always-50% forecast scores 0.5, not 0.25; the uniform forecast over ``K`` options scores
``1 - 1/K``. The RPS of two options is the binary Brier score itself.

References: J. E. Matheson and R. L. Winkler (1976), "Scoring rules for continuous probability
distributions", Management Science 22(10), 1087-1096. H. Hersbach (2000), "Decomposition of the
continuous ranked probability score for ensemble prediction systems", Weather and Forecasting
15(5), 559-570. I. J. Good (1952), "Rational decisions", J. R. Stat. Soc. B 14(1), 107-114.
A. P. Dawid (1984), "Statistical theory: the prequential approach", J. R. Stat. Soc. A 147(2),
278-292. C. Czado, T. Gneiting and L. Held (2009), "Predictive model assessment for count data",
Biometrics 65(4), 1254-1261. T. Gneiting and A. E. Raftery (2007), "Strictly proper scoring
rules, prediction, and estimation", JASA 102(477), 359-378. G. W. Brier (1950), Monthly Weather
Review 78(1), 1-3. E. S. Epstein (1969), "A scoring system for probability forecasts of ranked
categories", J. Appl. Meteor. 8(6), 985-987. A. H. Murphy (1971), "A note on the ranked
probability score", J. Appl. Meteor. 10(1), 155-156. M. Kull et al. (2019), "Beyond temperature
scaling: obtaining well-calibrated multi-class probabilities with Dirichlet calibration",
NeurIPS 32. Metaculus: github.com/Metaculus/metaculus (commit 100c4088),
``scoring/score_math.py`` (``evaluate_forecasts_baseline_accuracy``), ``questions/models.py``
(``Forecast.get_pmf``), ``utils/the_math/formulas.py`` (``unscaled_location_to_bucket_index``).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from reports import scoring

__all__ = [
    "BASELINE_TAIL",
    "LEVELS",
    "PIT_BINS",
    "baseline_score",
    "choice_brier",
    "choice_log_score",
    "coverage",
    "covered",
    "crps",
    "log_score",
    "option_calibration",
    "pit",
    "pit_histogram",
    "ranked_probability_score",
    "scaled",
]

#: The central intervals whose coverage the report shows.
LEVELS = (0.5, 0.8, 0.9)
#: Bins of the PIT histogram.
PIT_BINS = 10
#: Metaculus's baseline mass of each out-of-bounds bucket of a continuous question.
BASELINE_TAIL = 0.05

Array = NDArray[np.float64]


def scaled(x: ArrayLike, lower: ArrayLike, upper: ArrayLike, log: ArrayLike) -> Array:
    """The grid coordinate ``u`` of each outcome ``x``: :meth:`predictions.questions.Question.scaled`
    for many questions at once (``(x - lower) / (upper - lower)``, or ``ln(x / lower) /
    ln(upper / lower)`` where ``log``; an outcome at or below 0 on a log scale is below the
    range)."""
    xa, lo, hi = (np.asarray(a, dtype=np.float64) for a in (x, lower, upper))
    on_log = np.asarray(log, dtype=bool)
    with np.errstate(divide="ignore", invalid="ignore"):
        logs = np.log(xa / lo) / np.log(hi / lo)
    logs = np.where(xa > 0, logs, -np.inf)
    return np.where(on_log, logs, (xa - lo) / (hi - lo))


def _grid(cdf: ArrayLike, u: ArrayLike) -> tuple[Array, Array]:
    values = np.ascontiguousarray(cdf, dtype=np.float64)
    outcome = np.asarray(u, dtype=np.float64).ravel()
    if values.ndim != 2 or values.shape[1] < 2 or values.shape[0] != outcome.size:
        raise ValueError(
            f"cdf must be (n, G) with G >= 2 and u (n,): got {values.shape} and {outcome.shape}"
        )
    return values, outcome


def _at(values: Array, y: Array) -> tuple[Array, Array, Array]:
    """For outcomes ``y`` in [0, 1]: the bin ``j`` of each (0..G-2), the position ``t`` in it
    (0..1) and the CDF there, ``F(y) = v_j + t (v_{j+1} - v_j)`` (the point masses left out)."""
    bins = values.shape[1] - 1
    rows = np.arange(values.shape[0])
    j = np.minimum(np.floor(y * bins).astype(np.intp), bins - 1)
    t = y * bins - j
    left = values[rows, j]
    return j, t, left + t * (values[rows, j + 1] - left)


def crps(cdf: ArrayLike, u: ArrayLike) -> Array:
    """The continuous ranked probability score of each forecast, in the scaled coordinate.

    ``CRPS = integral_0^1 (F(u) - 1{u >= y})^2 du`` with ``y`` the outcome clamped into [0, 1]
    (outside [0, 1] the CDF and the step agree). Computed exactly, bin by bin: with ``h = 1 /
    (G - 1)`` and ``F`` linear from ``v_k`` to ``v_{k+1}`` on bin ``k``,

    - ``integral F^2 = (h / 3) sum_k (v_k^2 + v_k v_{k+1} + v_{k+1}^2)``,
    - ``integral_y^1 F = (h / 2) sum_{k >= j} (v_k + v_{k+1}) - h t (v_j + F(y)) / 2`` for ``y``
      at position ``t`` in bin ``j``,

    and ``CRPS = integral F^2 - 2 integral_y^1 F + (1 - y)``. Lower is better; 0 for all the mass
    at the outcome. References: Matheson & Winkler (1976); Hersbach (2000) (the CRPS of a
    piecewise-linear CDF, bin by bin).
    """
    values, outcome = _grid(cdf, u)
    h = 1.0 / (values.shape[1] - 1)
    y = np.clip(outcome, 0.0, 1.0)
    squares = np.einsum("ij,ij->i", values, values)
    ends = values[:, 0] ** 2 + values[:, -1] ** 2
    cross = np.einsum("ij,ij->i", values[:, :-1], values[:, 1:])
    square_integral = (h / 3.0) * (2.0 * squares - ends + cross)
    j, t, at_y = _at(values, y)
    # sum_{k >= j} (v_k + v_{k+1}) = 2 sum_{k >= j} v_k - v_j - v_last; the sums from each
    # row's v_j to its end in one pass over the flat array (the odd segments of reduceat)
    rows = np.arange(values.shape[0])
    cuts = np.repeat(rows * values.shape[1], 2)
    cuts[1::2] += j
    tail = np.add.reduceat(values.ravel(), cuts)[1::2]
    above = (h / 2.0) * (2.0 * tail - values[rows, j] - values[:, -1])
    above -= h * t * (values[rows, j] + at_y) / 2.0
    return np.maximum(square_integral - 2.0 * above + (1.0 - y), 0.0)


def _bucket(u: Array, bins: int) -> NDArray[np.intp]:
    """Metaculus's bucket of each outcome: 0 below the lower bound, 1..bins within the range
    (bucket ``b`` is ``((b - 1) h, b h]``, the first one closed at the lower bound too), ``bins +
    1`` above the upper bound (``unscaled_location_to_bucket_index``)."""
    inside = np.maximum((np.clip(u, 0.0, 1.0) * bins + 1 - 1e-10).astype(np.intp), 1)
    inside = np.where(u == 1.0, bins, inside)
    return np.where(u < 0.0, 0, np.where(u > 1.0, bins + 1, inside))


def _pmf_at(values: Array, b: NDArray[np.intp]) -> Array:
    """``pmf[b]`` of each row, the pmf being Metaculus's ``get_pmf``: ``[cdf[0], cdf[1] -
    cdf[0], ..., cdf[-1] - cdf[-2], 1 - cdf[-1]]`` (G + 1 buckets)."""
    last = values.shape[1] - 1
    rows = np.arange(values.shape[0])
    high = np.where(b > last, 1.0, values[rows, np.minimum(b, last)])
    low = np.where(b == 0, 0.0, values[rows, np.maximum(b - 1, 0)])
    return high - low


def log_score(cdf: ArrayLike, u: ArrayLike) -> Array:
    """Minus the log density at the outcome (natural log), in the scaled coordinate: ``-ln((G -
    1) pmf[b])`` for the outcome's bucket ``b`` (see :func:`baseline_score`). Within the range
    this is exactly ``-ln f(y)``, the CDF being linear in each bin; beyond an open bound the tail
    mass counts as one bin's worth of density (the out-of-bounds bucket, as Metaculus scores it).
    A loss: lower is better, 0 for the uniform forecast over a closed range, negative for a
    density sharper than that at the outcome. In the question's units (linear numeric) add
    ``ln(upper - lower)``. Reference: Good (1952).
    """
    values, outcome = _grid(cdf, u)
    bins = values.shape[1] - 1
    with np.errstate(divide="ignore"):
        return -np.log(bins * _pmf_at(values, _bucket(outcome, bins)))


def baseline_score(
    cdf: ArrayLike, u: ArrayLike, open_lower: ArrayLike, open_upper: ArrayLike
) -> Array:
    """Metaculus's baseline score of a continuous forecast: ``100 ln(pmf[b] / base[b]) / 2``.

    ``pmf`` has G + 1 buckets (``cdf[0]``, the ``G - 1`` bins' masses, ``1 - cdf[-1]``), ``b`` is
    the outcome's bucket, and the baseline gives each out-of-bounds bucket
    :data:`BASELINE_TAIL` (0.05) and each of the ``G - 1`` bins ``(1 - 0.05 m) / (G - 1)``, ``m``
    the number of open bounds. A gain: 0 for the baseline, higher is better; within the range
    it is ``50 (-log_score - ln(1 - 0.05 m))``. Source: ``evaluate_forecasts_baseline_accuracy``
    in Metaculus's ``scoring/score_math.py`` (with ``get_pmf`` in ``questions/models.py`` and
    the bucket of ``unscaled_location_to_bucket_index`` in ``utils/the_math/formulas.py``).
    """
    values, outcome = _grid(cdf, u)
    bins = values.shape[1] - 1
    b = _bucket(outcome, bins)
    m = np.asarray(open_lower, dtype=bool).astype(float) + np.asarray(open_upper, dtype=bool)
    base = np.where((b == 0) | (b == bins + 1), BASELINE_TAIL, (1.0 - BASELINE_TAIL * m) / bins)
    with np.errstate(divide="ignore"):
        return 100.0 * np.log(_pmf_at(values, b) / base) / 2.0


def _around(values: Array, outcome: Array) -> tuple[Array, Array]:
    """``F(y-)`` and ``F(y)`` at each outcome clamped into [0, 1]: they differ only at a point
    mass (at 0: from 0 to ``v_0``; at 1: from ``v_last`` to 1)."""
    y = np.clip(outcome, 0.0, 1.0)
    _, _, at_y = _at(values, y)
    below = np.where(y >= 1.0, values[:, -1], np.where(y <= 0.0, 0.0, at_y))
    upto = np.where(y >= 1.0, 1.0, np.where(y <= 0.0, values[:, 0], at_y))
    return below, upto


def pit(cdf: ArrayLike, u: ArrayLike) -> Array:
    """The probability integral transform of each outcome: ``F(y)``, and within a point mass the
    middle of its jump, ``(F(y-) + F(y)) / 2`` (the mean of the randomised PIT). A calibrated
    forecaster's PIT values are uniform on [0, 1]. References: Dawid (1984); Czado, Gneiting &
    Held (2009)."""
    below, upto = _around(*_grid(cdf, u))
    return (below + upto) / 2.0


def covered(cdf: ArrayLike, u: ArrayLike, level: float) -> NDArray[np.bool_]:
    """Whether each outcome lies in the forecast's central ``level`` interval ``[q(a), q(1 - a)]``,
    ``a = (1 - level) / 2``, ``q(p) = inf{u : F(u) >= p}`` the inverse of the grid CDF (its
    point masses included, so an interval may end at a bound).

    Read without inverting: ``q(a) <= y`` exactly when ``F(y) >= a``, and ``y <= q(1 - a)``
    exactly when ``F(y-) <= 1 - a`` (for a CDF that is not flat just below ``y``; the store's
    minimum mass per bin sees to that). Reference: Gneiting & Raftery (2007), section 6.2.
    """
    if not 0.0 < level < 1.0:
        raise ValueError("level must lie strictly between 0 and 1")
    below, upto = _around(*_grid(cdf, u))
    a = (1.0 - level) / 2.0
    return (upto >= a) & (below <= 1.0 - a)


def coverage(
    cdf: ArrayLike, u: ArrayLike, levels: tuple[float, ...] = LEVELS
) -> dict[float, NDArray[np.bool_]]:
    """:func:`covered` for each level (50%, 80% and 90% by default): the share of ``True`` is the
    interval's coverage, which for a calibrated forecaster is the level itself."""
    return {level: covered(cdf, u, level) for level in levels}


def pit_histogram(values: ArrayLike, bins: int = PIT_BINS) -> NDArray[np.int64]:
    """How many PIT values fall in each of ``bins`` equal bins of [0, 1] (the bins of
    :func:`reports.scoring.bin_index`: inclusive below, 1 in the top bin). Flat for a calibrated
    forecaster; a U shape says overconfident, a hump underconfident, a slope biased."""
    return np.bincount(scoring.bin_index(values, bins), minlength=bins).astype(np.int64)


# --- multiple choice -----------------------------------------------------------------------------


def _choice(
    p: ArrayLike, options: ArrayLike, k: ArrayLike
) -> tuple[Array, NDArray[np.intp], NDArray[np.intp], NDArray[np.bool_]]:
    probs = np.asarray(p, dtype=np.float64)
    counts = np.asarray(options, dtype=np.intp).ravel()
    happened = np.asarray(k, dtype=np.intp).ravel()
    if probs.ndim != 2 or not probs.shape[0] == counts.size == happened.size:
        raise ValueError(f"p must be (n, W) with options and k (n,): got {probs.shape}")
    if np.any(counts < 2) or np.any(counts > probs.shape[1]):
        raise ValueError("each row needs 2 to W options")
    if np.any(happened < 0) or np.any(happened >= counts):
        raise ValueError("each outcome must be one of its row's options")
    real = np.arange(probs.shape[1]) < counts[:, None]
    return probs, counts, happened, real


def choice_brier(p: ArrayLike, options: ArrayLike, k: ArrayLike) -> Array:
    """The multi-class Brier score ``sum_i (p_i - o_i)^2`` of each forecast (0 best, 2 worst);
    twice the binary Brier score on a two-option question. Reference: Brier (1950)."""
    probs, _, happened, real = _choice(p, options, k)
    rows = np.arange(probs.shape[0])
    squares = np.einsum("ij,ij->i", probs * real, probs)
    return squares - 2.0 * probs[rows, happened] + 1.0


def choice_log_score(p: ArrayLike, options: ArrayLike, k: ArrayLike) -> Array:
    """``-ln p_k`` of the option that happened (natural log), ``p_k`` clipped from below at
    ``reports.scoring.CLAMP[0]`` as the binary log score is. A loss: 0 best; the uniform
    forecast scores ``ln K``. Reference: Good (1952)."""
    probs, _, happened, _ = _choice(p, options, k)
    chosen = probs[np.arange(probs.shape[0]), happened]
    return -np.log(np.maximum(chosen, scoring.CLAMP[0]))


def ranked_probability_score(p: ArrayLike, options: ArrayLike, k: ArrayLike) -> Array:
    """The ranked probability score of each forecast over ordered options: ``sum_{j < K - 1}
    (P_j - O_j)^2 / (K - 1)`` with ``P_j = p_0 + ... + p_j`` and ``O_j = 1`` from the option
    that happened on (0 best, 1 worst). A near miss costs less than a far one; with two options
    it is the binary Brier score. References: Epstein (1969); Murphy (1971)."""
    probs, counts, happened, real = _choice(p, options, k)
    cumulative = np.cumsum(probs * real, axis=1)
    steps = (np.arange(probs.shape[1]) >= happened[:, None]).astype(np.float64)
    inner = np.arange(probs.shape[1]) < (counts - 1)[:, None]
    return np.einsum("ij,ij->i", (cumulative - steps) ** 2, inner) / (counts - 1)


def option_calibration(
    p: ArrayLike, options: ArrayLike, k: ArrayLike, bins: int = scoring.BINS
) -> list[scoring.CalibrationBin]:
    """The calibration table of every option's probability taken as a binary forecast that this
    option happens (:func:`reports.scoring.calibration_table`, its bins and Wilson intervals):
    of all the options given 30-40%, about a third should have happened. Reference: Kull et al.
    (2019), classwise calibration."""
    probs, _, happened, real = _choice(p, options, k)
    hit = np.arange(probs.shape[1]) == happened[:, None]
    return scoring.calibration_table(probs[real], hit[real].astype(np.float64), bins=bins)
