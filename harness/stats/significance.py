"""Significance tests: thin, validated wrappers over scipy / statsmodels with one result type.

Every function returns a :class:`TestResult` whose ``p_value`` is the p-value of the stated ``alternative``
(scipy's convention: ``"less"`` means the first sample / the differences ``x − y`` are shifted down).
Which library routine computes each number is named in the function docstring.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from numpy.typing import ArrayLike
from scipy import stats as sps
from statsmodels.stats.weightstats import ttost_ind, ttost_paired

from harness.stats._validate import as_pair, as_sample, check_alternative


@dataclass(frozen=True)
class TestResult:
    """A test statistic and its p-value. ``method`` names the routine; ``df`` is set for t-type tests."""

    __test__ = False  # keep pytest from collecting this class

    statistic: float
    p_value: float
    method: str
    alternative: str
    df: float | None = None


class WelchT(NamedTuple):
    """Welch's unequal-variance t-test: statistic, Welch–Satterthwaite degrees of freedom, p-value."""

    t: float
    df: float
    p: float


@dataclass(frozen=True)
class TostResult:
    """Two one-sided tests for equivalence of the mean difference to the interval (low, high).

    ``p_value`` is the larger of the two one-sided p-values; equivalence is shown at level α when p < α.
    """

    p_value: float
    p_lower: float
    p_upper: float
    low: float
    high: float
    method: str


def welch_t(x: ArrayLike, y: ArrayLike, alternative: str = "two-sided") -> WelchT:
    """Welch's t-test of mean x − mean y (``scipy.stats.ttest_ind(equal_var=False)``)."""
    xa, ya = as_sample(x, "x"), as_sample(y, "y")
    res = sps.ttest_ind(xa, ya, equal_var=False, alternative=check_alternative(alternative))
    return WelchT(float(res.statistic), float(res.df), float(res.pvalue))


def mann_whitney(x: ArrayLike, y: ArrayLike, alternative: str = "two-sided") -> TestResult:
    """Mann–Whitney U test; ``statistic`` is U of ``x`` (``scipy.stats.mannwhitneyu``, method 'auto')."""
    xa, ya = as_sample(x, "x", 1), as_sample(y, "y", 1)
    res = sps.mannwhitneyu(xa, ya, alternative=check_alternative(alternative))
    return TestResult(float(res.statistic), float(res.pvalue), "mann-whitney-u", alternative)


def wilcoxon_paired(x: ArrayLike, y: ArrayLike, alternative: str = "two-sided") -> TestResult:
    """Wilcoxon signed-rank test on x − y (``scipy.stats.wilcoxon``, zero differences: 'wilcox' drop)."""
    xa, ya = as_pair(x, y, 1)
    if np.all(xa == ya):
        raise ValueError("wilcoxon_paired: every paired difference is zero, the test is undefined")
    res = sps.wilcoxon(xa, ya, alternative=check_alternative(alternative))
    return TestResult(float(res.statistic), float(res.pvalue), "wilcoxon-signed-rank", alternative)


def _mean_difference(x: np.ndarray, y: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.mean(x, axis=axis) - np.mean(y, axis=axis)


def permutation_test_ind(
    x: ArrayLike,
    y: ArrayLike,
    *,
    alternative: str = "two-sided",
    n_resamples: int = 9999,
    rng: np.random.Generator | int,
) -> TestResult:
    """Label-permutation test of mean x − mean y for independent samples (``scipy.stats.permutation_test``).

    Exact when the number of distinct relabelings is at most ``n_resamples``; otherwise Monte Carlo with ``rng``.
    """
    xa, ya = as_sample(x, "x", 1), as_sample(y, "y", 1)
    res = sps.permutation_test(
        (xa, ya), _mean_difference, permutation_type="independent", vectorized=True,
        n_resamples=n_resamples, alternative=check_alternative(alternative), rng=rng,
    )
    return TestResult(float(res.statistic), float(res.pvalue), "permutation-independent", alternative)


def permutation_test_paired(
    x: ArrayLike,
    y: ArrayLike,
    *,
    alternative: str = "two-sided",
    n_resamples: int = 9999,
    rng: np.random.Generator | int,
    statistic: Callable[..., np.ndarray] | None = None,
) -> TestResult:
    """Paired permutation test swapping x_i and y_i within each pair (``permutation_type='samples'``).

    The statistic defaults to mean(x − y) (the sign-flip test); ``statistic(x, y, axis=-1)`` (vectorised along
    ``axis``) tests any other function of the paired samples that the swap leaves exchangeable under H0, e.g.
    |mean x| − |mean y|."""
    xa, ya = as_pair(x, y, 1)
    res = sps.permutation_test(
        (xa, ya), statistic or _mean_difference, permutation_type="samples", vectorized=True,
        n_resamples=n_resamples, alternative=check_alternative(alternative), rng=rng,
    )
    method = "permutation-paired-signflip" if statistic is None else "permutation-paired-swap"
    return TestResult(float(res.statistic), float(res.pvalue), method, alternative)


def t_interval(values: ArrayLike, level: float = 0.95) -> tuple[float, float]:
    """Two-sided Student t interval for the mean of ``values``: mean ± t(1 − (1 − level)/2, n − 1) · SD / √n
    (``scipy.stats.t``); a zero SD gives the point interval at the mean."""
    xa = as_sample(values, "values", 2)
    if not 0.0 < level < 1.0:
        raise ValueError(f"t_interval: level must be in (0, 1), got {level}")
    half = float(sps.t.ppf(0.5 + level / 2.0, xa.size - 1) * xa.std(ddof=1) / np.sqrt(xa.size))
    return float(xa.mean() - half), float(xa.mean() + half)


def tost_paired(x: ArrayLike, y: ArrayLike, low: float, high: float) -> TostResult:
    """TOST equivalence of mean(x − y) to (low, high) with paired t-tests (``statsmodels ttost_paired``)."""
    xa, ya = as_pair(x, y)
    _check_margin(low, high)
    p, lower, upper = ttost_paired(xa, ya, low, high)
    return TostResult(float(p), float(lower[1]), float(upper[1]), low, high, "tost-paired-t")


def tost_ind(x: ArrayLike, y: ArrayLike, low: float, high: float) -> TostResult:
    """TOST equivalence of mean x − mean y to (low, high), Welch t-tests (``statsmodels ttost_ind``, unequal)."""
    xa, ya = as_sample(x, "x"), as_sample(y, "y")
    _check_margin(low, high)
    p, lower, upper = ttost_ind(xa, ya, low, high, usevar="unequal")
    return TostResult(float(p), float(lower[1]), float(upper[1]), low, high, "tost-welch-t")


def _check_margin(low: float, high: float) -> None:
    if not low < high:
        raise ValueError(f"equivalence margin must satisfy low < high, got ({low}, {high})")


def page_trend(data: ArrayLike) -> TestResult:
    """Page's L test for an increasing trend across ordered conditions (``scipy.stats.page_trend_test``).

    ``data`` is (blocks × conditions): one row per block (e.g. prompt pair), columns in the predicted
    increasing order (e.g. α = 0, .25, .5, .75, 1). The alternative is always the ordered increase.
    """
    arr = np.asarray(data, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[0] < 2 or arr.shape[1] < 3:
        raise ValueError(f"page_trend: need a (blocks ≥ 2) × (conditions ≥ 3) array, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError("page_trend: data contain NaN or infinite values")
    res = sps.page_trend_test(arr)
    return TestResult(float(res.statistic), float(res.pvalue), f"page-L-{res.method}", "increasing")


def spearman(x: ArrayLike, y: ArrayLike, alternative: str = "two-sided") -> TestResult:
    """Spearman rank correlation ρ and its p-value (``scipy.stats.spearmanr``, t-approximation)."""
    xa, ya = as_pair(x, y, 3)
    if np.all(xa == xa[0]) or np.all(ya == ya[0]):
        raise ValueError("spearman: a constant sample has no rank correlation")
    res = sps.spearmanr(xa, ya, alternative=check_alternative(alternative))
    return TestResult(float(res.statistic), float(res.pvalue), "spearman", alternative)
