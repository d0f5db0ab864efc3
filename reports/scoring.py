"""Scoring maths for binary forecasts: pure functions, numpy arrays in, numbers out.

Every function takes ``p`` (forecast probabilities in [0, 1]), ``y`` (outcomes, 0 or 1) and an
optional ``w`` (non-negative frequency weights: a row with weight 3 counts as three identical
forecasts; the report builder aggregates identical forecasts in SQL and passes the counts here).
Means are weighted means, ``N = sum(w)``. Nothing here touches a database, a clock or a file.

Orientation: Brier and log score are *losses* (0 is perfect, lower is better); the spherical score
is a *gain* (1 is perfect, higher is better).

Definitions (``p`` the probability given to YES, ``y`` the outcome):

==================  =============================================  =======================================
score               formula                                        reference
==================  =============================================  =======================================
Brier               ``mean((p - y)^2)``                            Brier (1950), Mon. Weather Rev. 78(1)
log score           ``-mean(y ln q + (1 - y) ln(1 - q))``,         Good (1952), J. R. Stat. Soc. B 14(1)
                    ``q = clip(p, 0.001, 0.999)``
spherical           ``mean(p_y / sqrt(p^2 + (1 - p)^2))``,          Gneiting & Raftery (2007), JASA 102
                    ``p_y = p if y else 1 - p``
skill score         ``(S - S_ref) / (S_perfect - S_ref)``          Murphy (1988), Mon. Weather Rev. 116
Murphy decomp.      ``BS = REL - RES + UNC + WBV - WBC``            Murphy (1973), J. Appl. Meteor. 12;
                                                                   Stephenson, Coelho & Jolliffe (2008),
                                                                   Weather and Forecasting 23(4)
CORP decomp.        ``S = MCB - DSC + UNC`` with PAV recalibration  Dimitriadis, Gneiting & Jordan (2021),
                                                                   PNAS 118(8) e2016191118
Wilson interval     see :func:`wilson_interval`                    Wilson (1927), JASA 22(158)
==================  =============================================  =======================================

Clamp policy for the log score: every probability is clipped to ``[0.001, 0.999]`` (:data:`CLAMP`)
before its logarithm is taken, for every forecast, not only imported ones. Input through the CLI is
strictly inside (0, 1), but imported history (PredictionBook credences of 0% and 100%) may hold 0
and 1, whose log score would be infinite; one confident miss would then swamp any record. The
Brier and spherical scores are finite at 0 and 1 and use the unclipped probability.

Bins: the calibration table and the Murphy decomposition use 10 equal bins, unfolded (a 10%
forecast and a 90% forecast fall in different bins): bin ``k`` holds ``k/10 <= p < (k+1)/10``, the
last bin also holds ``p = 1``. A probability within ``1e-9`` of an edge counts as on the edge, so
``0.3`` (stored as 0.29999999999999998...) is in the 30-40% bin.

Example::

    >>> import numpy as np
    >>> p, y = np.array([0.9, 0.2, 0.6]), np.array([1, 0, 0])
    >>> round(brier_score(p, y), 6)
    0.136667
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = [
    "BINS",
    "BOOTSTRAP_RESAMPLES",
    "BOOTSTRAP_SEED",
    "CLAMP",
    "BootstrapInterval",
    "CalibrationBin",
    "CorpDecomposition",
    "MurphyDecomposition",
    "ScoreSummary",
    "base_rate",
    "bin_index",
    "bootstrap_brier_interval",
    "brier_score",
    "calibration_table",
    "corp_curve",
    "corp_decomposition",
    "isotonic_fit",
    "log_score",
    "murphy_decomposition",
    "skill_score",
    "spherical_score",
    "summarize",
    "time_averaged_brier",
    "wilson_interval",
]

#: Log score clamp: probabilities are clipped to this closed interval before taking logarithms.
CLAMP = (0.001, 0.999)
#: Number of equal-width bins of the calibration table and the Murphy decomposition.
BINS = 10
#: Bootstrap resamples and seed (fixed, so a report is reproducible).
BOOTSTRAP_RESAMPLES = 2000
BOOTSTRAP_SEED = 20_211_002
#: Above this many distinct squared errors the bootstrap is replaced by its normal limit.
_BOOTSTRAP_MAX_DISTINCT = 10_000
#: z for a 95% interval: the 0.975 quantile of the standard normal distribution.
_Z95 = 1.959963984540054
_EDGE_TOLERANCE = 1e-9

Array = NDArray[np.float64]


def _arrays(p: ArrayLike, y: ArrayLike, w: ArrayLike | None) -> tuple[Array, Array, Array]:
    """Check and convert inputs: equal lengths, p in [0, 1], y in {0, 1}, w >= 0, N > 0."""
    pa = np.asarray(p, dtype=np.float64).ravel()
    ya = np.asarray(y, dtype=np.float64).ravel()
    wa = np.ones_like(pa) if w is None else np.asarray(w, dtype=np.float64).ravel()
    if not (pa.shape == ya.shape == wa.shape):
        raise ValueError(f"p, y and w differ in length: {pa.size}, {ya.size}, {wa.size}")
    if pa.size == 0:
        raise ValueError("no forecasts to score")
    if not np.all(np.isfinite(pa)) or np.any(pa < 0.0) or np.any(pa > 1.0):
        raise ValueError("probabilities must lie in [0, 1]")
    if np.any((ya != 0.0) & (ya != 1.0)):
        raise ValueError("outcomes must be 0 or 1")
    if not np.all(np.isfinite(wa)) or np.any(wa < 0.0):
        raise ValueError("weights must be finite and >= 0")
    if wa.sum() <= 0.0:
        raise ValueError("the weights sum to zero: no forecasts to score")
    return pa, ya, wa


def _mean(values: Array, w: Array) -> float:
    return float(np.dot(values, w) / w.sum())


def brier_score(p: ArrayLike, y: ArrayLike, w: ArrayLike | None = None) -> float:
    """Mean squared error of the probability: ``BS = (1/N) sum w (p - y)^2``; 0 best, 1 worst.

    Reference: G. W. Brier (1950), "Verification of forecasts expressed in terms of probability",
    Monthly Weather Review 78(1), 1-3.
    """
    pa, ya, wa = _arrays(p, y, w)
    return _mean((pa - ya) ** 2, wa)


def _log_losses(pa: Array, ya: Array, clamp: tuple[float, float]) -> Array:
    q = np.clip(pa, clamp[0], clamp[1])
    # The log of the probability given to what happened; q is never 0 or 1 after the clip.
    return -np.log(np.where(ya == 1.0, q, 1.0 - q))


def log_score(
    p: ArrayLike, y: ArrayLike, w: ArrayLike | None = None, *, clamp: tuple[float, float] = CLAMP
) -> float:
    """Mean negative log likelihood (natural log): ``-(1/N) sum w (y ln q + (1 - y) ln(1 - q))``.

    ``q = clip(p, clamp)``, by default ``[0.001, 0.999]`` (see the module docstring); 0 is best,
    ``ln 2 = 0.693`` is what always saying 50% earns, the clamp caps one forecast at ``-ln 0.001 =
    6.91``. Reference: I. J. Good (1952), "Rational decisions", J. R. Stat. Soc. B 14(1), 107-114.
    """
    lo, hi = clamp
    if not 0.0 < lo <= hi < 1.0:
        raise ValueError("clamp must satisfy 0 < low <= high < 1")
    pa, ya, wa = _arrays(p, y, w)
    return _mean(_log_losses(pa, ya, clamp), wa)


def spherical_score(p: ArrayLike, y: ArrayLike, w: ArrayLike | None = None) -> float:
    """Mean spherical score ``p_y / sqrt(p^2 + (1 - p)^2)`` with ``p_y`` the probability given to
    the outcome; a gain: 1 best, 0 worst, 0.7071 for always 50%.

    Reference: T. Gneiting and A. E. Raftery (2007), "Strictly proper scoring rules, prediction,
    and estimation", JASA 102(477), 359-378, section 3.1.
    """
    pa, ya, wa = _arrays(p, y, w)
    py = np.where(ya == 1.0, pa, 1.0 - pa)
    return _mean(py / np.sqrt(pa**2 + (1.0 - pa) ** 2), wa)


def base_rate(y: ArrayLike, w: ArrayLike | None = None) -> float:
    """The (weighted) share of YES outcomes."""
    ya = np.asarray(y, dtype=np.float64).ravel()
    _, ya, wa = _arrays(np.zeros_like(ya), ya, w)
    return _mean(ya, wa)


def skill_score(score: float, reference: float, perfect: float = 0.0) -> float | None:
    """``(S - S_ref) / (S_perfect - S_ref)``: 1 perfect, 0 no better than the reference, < 0 worse.

    For a loss (Brier, log) ``perfect = 0`` and this is ``1 - S / S_ref``; for the spherical score
    ``perfect = 1``. None when the reference is itself perfect (all outcomes the same and the
    reference is the base rate): there is no room to show skill. Reference: A. H. Murphy (1988),
    "Skill scores based on the mean square error and their relationships to the correlation
    coefficient", Monthly Weather Review 116(12), 2417-2424.
    """
    if perfect == reference:
        return None
    return (score - reference) / (perfect - reference)


def wilson_interval(
    k: ArrayLike, n: ArrayLike, z: float = _Z95
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Wilson score interval for a binomial proportion ``k / n`` (vectorised; NaN where n = 0).

    ``centre = (k + z^2/2) / (n + z^2)``, ``half = z / (n + z^2) * sqrt(k (n - k) / n + z^2 / 4)``.
    Unlike the normal (Wald) interval it stays inside [0, 1] and is not degenerate at 0 or n.
    Reference: E. B. Wilson (1927), "Probable inference, the law of succession, and statistical
    inference", JASA 22(158), 209-212.
    """
    ka = np.asarray(k, dtype=np.float64)
    na = np.asarray(n, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        z2 = z * z
        centre = (ka + z2 / 2.0) / (na + z2)
        half = z / (na + z2) * np.sqrt(ka * (na - ka) / na + z2 / 4.0)
        low = np.where(na > 0, np.clip(centre - half, 0.0, 1.0), np.nan)
        high = np.where(na > 0, np.clip(centre + half, 0.0, 1.0), np.nan)
    return low, high


def bin_index(p: ArrayLike, bins: int = BINS) -> NDArray[np.intp]:
    """The bin of each probability: ``floor(p * bins)`` with edges inclusive below, ``p = 1`` in the
    top bin, and values within 1e-9 of an edge counted on it (so float noise never moves 0.3)."""
    pa = np.asarray(p, dtype=np.float64)
    idx = np.floor(pa * bins + _EDGE_TOLERANCE).astype(np.intp)
    return np.clip(idx, 0, bins - 1)


@dataclass(frozen=True)
class MurphyDecomposition:
    """``brier = reliability - resolution + uncertainty + within_bin_variance - within_bin_covariance``.

    With ``K`` bins, ``n_k`` forecasts in bin ``k``, bin means ``f_k`` (forecast) and ``o_k``
    (outcome), overall base rate ``o``:

    - reliability ``REL = (1/N) sum_k n_k (f_k - o_k)^2`` (lower is better),
    - resolution ``RES = (1/N) sum_k n_k (o_k - o)^2`` (higher is better),
    - uncertainty ``UNC = o (1 - o)``,
    - within-bin variance ``WBV = (1/N) sum_k sum_{i in k} (p_i - f_k)^2``,
    - within-bin covariance ``WBC = (2/N) sum_k sum_{i in k} (y_i - o_k)(p_i - f_k)``.

    Murphy's three terms add up to the Brier score only when every forecast in a bin is the same;
    the two within-bin terms of Stephenson, Coelho & Jolliffe (2008), "Two extra components in the
    Brier score decomposition", Weather and Forecasting 23(4), 752-757, make it exact.
    """

    reliability: float
    resolution: float
    uncertainty: float
    within_bin_variance: float
    within_bin_covariance: float
    brier: float

    @property
    def total(self) -> float:
        """The parts added up; equal to :attr:`brier` up to floating-point rounding."""
        return (
            self.reliability
            - self.resolution
            + self.uncertainty
            + self.within_bin_variance
            - self.within_bin_covariance
        )

    def as_dict(self) -> dict[str, float]:
        """The terms as a plain dict (for JSON)."""
        return asdict(self)


def murphy_decomposition(
    p: ArrayLike, y: ArrayLike, w: ArrayLike | None = None, bins: int = BINS
) -> MurphyDecomposition:
    """The five-term Brier decomposition over ``bins`` equal bins (see :class:`MurphyDecomposition`)."""
    pa, ya, wa = _arrays(p, y, w)
    total = wa.sum()
    idx = bin_index(pa, bins)
    n_k = np.bincount(idx, weights=wa, minlength=bins)
    used = n_k > 0
    f_k = np.zeros(bins)
    o_k = np.zeros(bins)
    f_k[used] = np.bincount(idx, weights=wa * pa, minlength=bins)[used] / n_k[used]
    o_k[used] = np.bincount(idx, weights=wa * ya, minlength=bins)[used] / n_k[used]
    o = float(np.dot(wa, ya) / total)
    dp = pa - f_k[idx]
    dy = ya - o_k[idx]
    return MurphyDecomposition(
        reliability=float(np.dot(n_k, (f_k - o_k) ** 2) / total),
        resolution=float(np.dot(n_k, (o_k - o) ** 2) / total),
        uncertainty=o * (1.0 - o),
        within_bin_variance=float(np.dot(wa, dp * dp) / total),
        within_bin_covariance=float(2.0 * np.dot(wa, dy * dp) / total),
        brier=float(np.dot(wa, (pa - ya) ** 2) / total),
    )


@dataclass(frozen=True)
class CalibrationBin:
    """One row of the calibration table: forecasts with ``low <= p < high`` (``<= 1`` at the top).

    ``observed`` is the share that came true, ``ci_low``/``ci_high`` its Wilson 95% interval;
    the means are None for an empty bin.
    """

    low: float
    high: float
    count: int
    yes: int
    mean_forecast: float | None
    observed: float | None
    ci_low: float | None
    ci_high: float | None

    def as_dict(self) -> dict[str, Any]:
        """The row as a plain dict (for JSON)."""
        return asdict(self)


def calibration_table(
    p: ArrayLike, y: ArrayLike, w: ArrayLike | None = None, bins: int = BINS
) -> list[CalibrationBin]:
    """The unfolded calibration table: per bin the count, mean forecast, observed frequency and
    Wilson 95% interval. Weights must be whole counts here (they are numbers of forecasts)."""
    pa, ya, wa = _arrays(p, y, w)
    idx = bin_index(pa, bins)
    n_k = np.bincount(idx, weights=wa, minlength=bins)
    yes_k = np.bincount(idx, weights=wa * ya, minlength=bins)
    sum_p = np.bincount(idx, weights=wa * pa, minlength=bins)
    low, high = wilson_interval(yes_k, n_k)
    rows = []
    for k in range(bins):
        n = float(n_k[k])
        rows.append(
            CalibrationBin(
                low=k / bins,
                high=(k + 1) / bins,
                count=int(round(n)),
                yes=int(round(float(yes_k[k]))),
                mean_forecast=float(sum_p[k] / n) if n > 0 else None,
                observed=float(yes_k[k] / n) if n > 0 else None,
                ci_low=float(low[k]) if n > 0 else None,
                ci_high=float(high[k]) if n > 0 else None,
            )
        )
    return rows


def isotonic_fit(
    x: ArrayLike, y: ArrayLike, w: ArrayLike | None = None
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """Non-decreasing least-squares fit of ``y`` on ``x`` by pool-adjacent-violators (PAV).

    Tied ``x`` values are pooled first (one point with their summed weight and mean ``y``), so
    equal forecasts always get the same recalibrated value: the "CORP" choice of Dimitriadis,
    Gneiting & Jordan (2021). Returns ``(xs, fitted, weight)`` over the distinct ``x``, sorted.
    The loop runs over distinct forecast values (at most a few thousand in practice), never over
    forecasts. Reference: M. Ayer et al. (1955), "An empirical distribution function for sampling
    with incomplete information", Ann. Math. Statist. 26(4), 641-647.
    """
    xa = np.asarray(x, dtype=np.float64).ravel()
    ya = np.asarray(y, dtype=np.float64).ravel()
    wa = np.ones_like(xa) if w is None else np.asarray(w, dtype=np.float64).ravel()
    xs, inverse = np.unique(xa, return_inverse=True)
    weight = np.bincount(inverse, weights=wa, minlength=xs.size)
    total = np.bincount(inverse, weights=wa * ya, minlength=xs.size)
    # Blocks as (summed weight, summed weighted y, number of distinct points); merge while the
    # previous block's mean exceeds the new one's (compared without division).
    block_w: list[float] = []
    block_s: list[float] = []
    block_len: list[int] = []
    for wi, si in zip(weight.tolist(), total.tolist(), strict=True):
        cw, cs, cl = wi, si, 1
        while block_w and block_s[-1] * cw > cs * block_w[-1]:
            cw += block_w.pop()
            cs += block_s.pop()
            cl += block_len.pop()
        block_w.append(cw)
        block_s.append(cs)
        block_len.append(cl)
    means = np.array(block_s, dtype=np.float64) / np.array(block_w, dtype=np.float64)
    fitted = np.repeat(means, block_len).astype(np.float64)
    return xs.astype(np.float64), fitted, weight.astype(np.float64)


@dataclass(frozen=True)
class CorpDecomposition:
    """``score = miscalibration - discrimination + uncertainty`` (CORP, for one scoring rule).

    With ``S(f)`` the mean score of forecasts ``f``, ``c`` the PAV-recalibrated forecasts and
    ``r`` the constant base rate: ``MCB = S(p) - S(c) >= 0``, ``DSC = S(r) - S(c) >= 0``,
    ``UNC = S(r)``. Both are non-negative because PAV is the best non-decreasing function of
    ``p`` under every proper scoring rule, and both ``p`` (clamped, for the log score) and the
    constant ``r`` are such functions. Reference: T. Dimitriadis, T. Gneiting and A. I. Jordan
    (2021), "Stable reliability diagrams for probabilistic classifiers", PNAS 118(8), e2016191118.
    """

    rule: str
    score: float
    miscalibration: float
    discrimination: float
    uncertainty: float

    @property
    def total(self) -> float:
        """``MCB - DSC + UNC``: equal to :attr:`score` up to floating-point rounding."""
        return self.miscalibration - self.discrimination + self.uncertainty

    def as_dict(self) -> dict[str, Any]:
        """The terms as a plain dict (for JSON)."""
        return asdict(self)


def _recalibrated(pa: Array, ya: Array, wa: Array) -> Array:
    xs, fitted, _ = isotonic_fit(pa, ya, wa)
    return fitted[np.searchsorted(xs, pa)]


def corp_decomposition(
    p: ArrayLike,
    y: ArrayLike,
    w: ArrayLike | None = None,
    *,
    rule: str = "brier",
    clamp: tuple[float, float] = CLAMP,
) -> CorpDecomposition:
    """MCB, DSC and UNC of the Brier score (``rule="brier"``) or the log score (``rule="log"``).

    For the log score the original forecasts are clamped as in :func:`log_score`; the recalibrated
    and base-rate forecasts are not (a PAV block at 0 holds only NO outcomes, so it scores 0 and
    never infinity).
    """
    pa, ya, wa = _arrays(p, y, w)
    c = _recalibrated(pa, ya, wa)
    r = np.full_like(pa, float(np.dot(wa, ya) / wa.sum()))
    if rule == "brier":
        score, s_c, s_r = (_mean((f - ya) ** 2, wa) for f in (pa, c, r))
    elif rule == "log":
        score = _mean(_log_losses(pa, ya, clamp), wa)
        s_c, s_r = (_mean(-np.log(np.where(ya == 1.0, f, 1.0 - f)), wa) for f in (c, r))
    else:
        raise ValueError(f"unknown rule {rule!r}: expected 'brier' or 'log'")
    return CorpDecomposition(
        rule=rule,
        score=score,
        miscalibration=score - s_c,
        discrimination=s_r - s_c,
        uncertainty=s_r,
    )


def corp_curve(
    p: ArrayLike, y: ArrayLike, w: ArrayLike | None = None
) -> list[tuple[float, float, float]]:
    """The CORP reliability curve: ``(forecast, recalibrated probability, count)`` per distinct
    forecast value, the recalibrated value being the PAV fit (see :func:`isotonic_fit`)."""
    pa, ya, wa = _arrays(p, y, w)
    xs, fitted, weight = isotonic_fit(pa, ya, wa)
    return [
        (float(a), float(b), float(c))
        for a, b, c in zip(xs.tolist(), fitted.tolist(), weight.tolist(), strict=True)
    ]


@dataclass(frozen=True)
class BootstrapInterval:
    """A confidence interval for the Brier score; ``method`` says how it was made."""

    low: float
    high: float
    level: float
    method: str
    resamples: int
    seed: int

    def as_dict(self) -> dict[str, Any]:
        """The interval as a plain dict (for JSON)."""
        return asdict(self)


def bootstrap_brier_interval(
    p: ArrayLike,
    y: ArrayLike,
    w: ArrayLike | None = None,
    *,
    level: float = 0.95,
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
) -> BootstrapInterval:
    """Percentile bootstrap interval for the Brier score, seeded and so reproducible.

    Resampling ``N`` forecasts with replacement is the same as drawing multinomial counts over the
    distinct squared errors (with probabilities their shares), so the draw is made over distinct
    values: exact, and fast when forecasts repeat (70%, 80%...). ``w`` must be whole counts. With
    more than 10,000 distinct squared errors the interval is the normal limit of that bootstrap,
    ``BS +- z sd / sqrt(N)`` (``method = "normal"``). Reference: B. Efron and R. J. Tibshirani
    (1993), An Introduction to the Bootstrap, chapter 13.
    """
    pa, ya, wa = _arrays(p, y, w)
    if not np.all(wa == np.round(wa)):
        raise ValueError("bootstrap weights must be whole counts")
    if not 0.0 < level < 1.0:
        raise ValueError("level must lie strictly between 0 and 1")
    se = (pa - ya) ** 2
    values, inverse = np.unique(se, return_inverse=True)
    counts = np.bincount(inverse, weights=wa, minlength=values.size)
    n = int(round(float(counts.sum())))
    alpha = (1.0 - level) / 2.0
    mean = float(np.dot(counts, values) / n)
    if values.size > _BOOTSTRAP_MAX_DISTINCT:
        sd = math.sqrt(float(np.dot(counts, (values - mean) ** 2)) / n)
        z = _normal_quantile(1.0 - alpha)
        half = z * sd / math.sqrt(n)
        return BootstrapInterval(
            low=max(0.0, mean - half),
            high=min(1.0, mean + half),
            level=level,
            method="normal",
            resamples=0,
            seed=seed,
        )
    rng = np.random.default_rng(seed)
    shares = counts / counts.sum()
    means = np.empty(resamples)
    chunk = max(1, 2_000_000 // max(1, values.size))
    for start in range(0, resamples, chunk):
        size = min(chunk, resamples - start)
        draws = rng.multinomial(n, shares, size=size)
        means[start : start + size] = draws @ values / n
    low, high = np.quantile(means, [alpha, 1.0 - alpha])
    return BootstrapInterval(
        low=float(low),
        high=float(high),
        level=level,
        method="bootstrap",
        resamples=resamples,
        seed=seed,
    )


def _normal_quantile(q: float) -> float:
    """Standard normal quantile by bisection on ``erf`` (no scipy needed)."""
    lo, hi = -10.0, 10.0
    for _ in range(200):
        mid = (lo + hi) / 2.0
        if 0.5 * (1.0 + math.erf(mid / math.sqrt(2.0))) < q:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2.0


def time_averaged_brier(
    group: ArrayLike, t: ArrayLike, p: ArrayLike, y: ArrayLike, close: ArrayLike
) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
    """Brier score averaged over each question's open lifetime, from its estimate history.

    Rows are estimates, sorted by ``group`` (one group per question and forecaster) then by time
    ``t`` (any unit, e.g. days); ``y`` and ``close`` (the moment the question stopped being open:
    the earlier of due date and resolution) are constant within a group. Each estimate holds from
    its time until the next estimate of its group, or until ``close``; estimates at or after
    ``close`` are ignored. The result per group is

        ``TAB = (1 / (close - t_first)) * integral_{t_first}^{close} (p(t) - y)^2 dt``,

    the time average of the step function ``p(t)``. A group whose estimates all fall at or after
    ``close`` gets NaN. Returns ``(group ids, TAB)`` in order of first appearance.
    """
    g = np.asarray(group).ravel()
    ta = np.asarray(t, dtype=np.float64).ravel()
    pa = np.asarray(p, dtype=np.float64).ravel()
    ya = np.asarray(y, dtype=np.float64).ravel()
    ca = np.asarray(close, dtype=np.float64).ravel()
    if not (g.shape == ta.shape == pa.shape == ya.shape == ca.shape):
        raise ValueError("group, t, p, y and close differ in length")
    if g.size == 0:
        return np.empty(0, dtype=np.int64), np.empty(0)
    if np.any(np.diff(ta)[g[1:] == g[:-1]] < 0):
        raise ValueError("estimates must be sorted by time within each group")
    new_group = np.r_[True, g[1:] != g[:-1]]
    starts = np.flatnonzero(new_group)
    ids = np.cumsum(new_group) - 1
    same_next = np.r_[g[1:] == g[:-1], False]
    end = np.where(same_next, np.r_[ta[1:], 0.0], ca)
    end = np.minimum(end, ca)
    duration = np.maximum(end - ta, 0.0)
    duration[ta >= ca] = 0.0
    area = np.bincount(ids, weights=duration * (pa - ya) ** 2, minlength=starts.size)
    length = np.bincount(ids, weights=duration, minlength=starts.size)
    with np.errstate(invalid="ignore", divide="ignore"):
        tab = np.where(length > 0, area / length, np.nan)
    return g[starts].astype(np.int64), tab


@dataclass(frozen=True)
class ScoreSummary:
    """The headline numbers of a set of scored forecasts (see :func:`summarize`)."""

    count: int
    base_rate: float
    mean_forecast: float
    brier: float
    log: float
    spherical: float
    brier_skill_vs_half: float | None
    brier_skill_vs_base_rate: float | None
    log_skill_vs_half: float | None
    log_skill_vs_base_rate: float | None
    spherical_skill_vs_half: float | None
    spherical_skill_vs_base_rate: float | None

    def as_dict(self) -> dict[str, Any]:
        """The summary as a plain dict (for JSON)."""
        return asdict(self)


def summarize(
    p: ArrayLike, y: ArrayLike, w: ArrayLike | None = None, *, clamp: tuple[float, float] = CLAMP
) -> ScoreSummary:
    """Brier, log and spherical scores with skill against two baselines: always 50%, and the
    base rate of these very outcomes (a hindsight baseline: it knows the share of YES)."""
    pa, ya, wa = _arrays(p, y, w)
    rate = _mean(ya, wa)
    half = np.full_like(pa, 0.5)
    base = np.full_like(pa, rate)
    brier = brier_score(pa, ya, wa)
    log = log_score(pa, ya, wa, clamp=clamp)
    sph = spherical_score(pa, ya, wa)
    return ScoreSummary(
        count=int(round(float(wa.sum()))),
        base_rate=rate,
        mean_forecast=_mean(pa, wa),
        brier=brier,
        log=log,
        spherical=sph,
        brier_skill_vs_half=skill_score(brier, 0.25),
        brier_skill_vs_base_rate=skill_score(brier, brier_score(base, ya, wa)),
        log_skill_vs_half=skill_score(log, math.log(2.0)),
        # With all outcomes alike the hindsight base rate is a perfect forecast: no skill to show
        # (its clamped log score would be a tiny, meaningless denominator).
        log_skill_vs_base_rate=(
            skill_score(log, log_score(base, ya, wa, clamp=clamp)) if 0.0 < rate < 1.0 else None
        ),
        spherical_skill_vs_half=skill_score(sph, spherical_score(half, ya, wa), 1.0),
        spherical_skill_vs_base_rate=skill_score(sph, spherical_score(base, ya, wa), 1.0),
    )
