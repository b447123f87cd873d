"""Spearman rank correlation with a bootstrap CI (DESIGN §6).

ρ and its one-sided p come from :func:`harness.stats.spearman` (scipy ``spearmanr``); the interval is a BCa
bootstrap (:func:`harness.stats.bootstrap_ci`) resampling (x, y) rows jointly.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats as sps

from harness.stats.bootstrap import bootstrap_ci
from harness.stats.significance import spearman

__all__ = ["Correlation", "rank_correlation"]


@dataclass(frozen=True)
class Correlation:
    """A Spearman ρ with its bootstrap CI and one-sided p (``undefined_reason`` set when ρ is undefined)."""

    rho: float
    ci_low: float
    ci_high: float
    p_value: float | None
    n: int
    undefined_reason: str | None


def _rho(x: np.ndarray, y: np.ndarray) -> float:
    """Spearman ρ, NaN for a constant sample (a bootstrap resample may be constant)."""
    if np.all(x == x[0]) or np.all(y == y[0]):
        return math.nan
    return float(sps.spearmanr(x, y).statistic)


def rank_correlation(
    x: Sequence[float], y: Sequence[float], *, alternative: str, level: float, rng: int | np.random.Generator,
    n_resamples: int = 9999,
) -> Correlation:
    """Spearman ρ(x, y) (:func:`harness.stats.spearman`, one-sided p in ``alternative``) with a BCa CI
    resampling (x, y) rows jointly (``n_resamples`` draws). Undefined (NaN, with the reason) when either
    sample is constant."""
    xa, ya = np.asarray(x, np.float64), np.asarray(y, np.float64)
    try:
        test = spearman(xa, ya, alternative=alternative)
    except ValueError as exc:
        return Correlation(math.nan, math.nan, math.nan, None, len(xa), str(exc))
    ci = bootstrap_ci(_rho, xa, ya, paired=True, level=level, n_resamples=n_resamples, rng=rng)
    return Correlation(test.statistic, ci.low, ci.high, test.p_value, len(xa), None)
