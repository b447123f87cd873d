"""Spearman rank correlation, plain and partial, with a bootstrap CI (DESIGN §6).

ρ and its one-sided p come from :func:`harness.stats.spearman` (scipy ``spearmanr``); the interval is a BCa
bootstrap (:func:`harness.stats.bootstrap_ci`) resampling (x, y) rows jointly.

The partial Spearman ρ(x, y | z) removes a covariate z (e.g. prompt length in tokens) from both: the ranks of x
and of y are each regressed on the ranks of z (least squares with an intercept) and ρ is the Pearson correlation
of the two residuals; its p uses Student's t with n − 3 degrees of freedom (one covariate), the interval resamples
(x, y, z) rows jointly.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats as sps

from harness.stats.bootstrap import bootstrap_ci
from harness.stats.significance import spearman

__all__ = ["Correlation", "partial_rank_correlation", "partial_spearman", "rank_correlation"]


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


def _residual(values: np.ndarray, covariate_ranks: np.ndarray) -> np.ndarray:
    design = np.column_stack([np.ones_like(covariate_ranks), covariate_ranks])
    coef, *_ = np.linalg.lstsq(design, values, rcond=None)
    return values - design @ coef


def partial_spearman(x: np.ndarray, y: np.ndarray, z: np.ndarray) -> float:
    """Partial Spearman ρ(x, y | z) (see the module docstring), in [−1, 1]; NaN when x or y is constant or is
    fully explained by z (a residual with no variance), as a bootstrap resample may be."""
    rx, ry, rz = (sps.rankdata(np.asarray(a, np.float64)) for a in (x, y, z))
    ex, ey = _residual(rx, rz), _residual(ry, rz)
    sx, sy = float(np.sqrt(ex @ ex)), float(np.sqrt(ey @ ey))
    if sx <= 1e-12 * max(1.0, float(np.abs(rx).max())) or sy <= 1e-12 * max(1.0, float(np.abs(ry).max())):
        return math.nan
    return float(np.clip((ex @ ey) / (sx * sy), -1.0, 1.0))


def _partial_p(rho: float, n: int, alternative: str) -> float:
    """p of a partial correlation with one covariate: t = ρ·√((n − 3) / (1 − ρ²)), n − 3 df."""
    df = n - 3
    t = math.copysign(math.inf, rho) if abs(rho) >= 1.0 else rho * math.sqrt(df / (1.0 - rho * rho))
    if alternative == "greater":
        return float(sps.t.sf(t, df))
    if alternative == "less":
        return float(sps.t.cdf(t, df))
    if alternative == "two-sided":
        return float(min(1.0, 2.0 * sps.t.sf(abs(t), df)))
    raise ValueError(f"alternative must be 'greater', 'less' or 'two-sided', got {alternative!r}")


def partial_rank_correlation(
    x: Sequence[float], y: Sequence[float], covariate: Sequence[float], *, alternative: str, level: float,
    rng: int | np.random.Generator, n_resamples: int = 9999,
) -> Correlation:
    """Partial Spearman ρ(x, y | covariate) with its one-sided (``alternative``) t-test p and a BCa CI resampling
    (x, y, covariate) rows jointly. Undefined (NaN, with the reason) for fewer than 4 rows or when x or y has
    no variance left once the covariate is removed (e.g. every level has its own length)."""
    xa, ya, za = (np.asarray(a, np.float64) for a in (x, y, covariate))
    if not xa.size == ya.size == za.size:
        raise ValueError(f"partial_rank_correlation: lengths differ ({xa.size}, {ya.size}, {za.size})")
    if xa.size < 4:
        return Correlation(math.nan, math.nan, math.nan, None, int(xa.size), f"{xa.size} rows; need 4 or more")
    rho = partial_spearman(xa, ya, za)
    if not math.isfinite(rho):
        return Correlation(math.nan, math.nan, math.nan, None, int(xa.size),
                           "no variance left in x or y once the covariate is removed")
    ci = bootstrap_ci(partial_spearman, xa, ya, za, paired=True, level=level, n_resamples=n_resamples, rng=rng)
    return Correlation(rho, ci.low, ci.high, _partial_p(rho, int(xa.size), alternative), int(xa.size), None)
