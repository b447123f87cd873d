"""Proportions: Wilson / Clopper–Pearson intervals and the exact binomial test.

Intervals from ``statsmodels.stats.proportion.proportion_confint``; the test from ``scipy.stats.binomtest``.
"""

from __future__ import annotations

from scipy.stats import binomtest
from statsmodels.stats.proportion import proportion_confint

from harness.stats._validate import check_alternative
from harness.stats.significance import TestResult

CI_METHODS = {"wilson": "wilson", "clopper-pearson": "beta"}


def _check_counts(successes: int, n: int) -> None:
    if not (isinstance(successes, int) and isinstance(n, int)) or n < 1 or not 0 <= successes <= n:
        raise ValueError(f"need integers 0 ≤ successes ≤ n and n ≥ 1, got successes={successes!r}, n={n!r}")


def proportion_ci(successes: int, n: int, level: float = 0.95, method: str = "wilson") -> tuple[float, float]:
    """Two-sided CI for a proportion: ``method`` 'wilson' (score interval) or 'clopper-pearson' (exact)."""
    _check_counts(successes, n)
    if method not in CI_METHODS:
        raise ValueError(f"proportion_ci: method must be one of {sorted(CI_METHODS)}, got {method!r}")
    low, high = proportion_confint(successes, n, alpha=1.0 - level, method=CI_METHODS[method])
    return float(low), float(high)


def binomial_test(successes: int, n: int, p0: float, alternative: str = "greater") -> TestResult:
    """Exact binomial test of the success probability against ``p0``; ``statistic`` is successes / n."""
    _check_counts(successes, n)
    if not 0.0 < p0 < 1.0:
        raise ValueError(f"binomial_test: p0 must be in (0, 1), got {p0}")
    res = binomtest(successes, n, p0, alternative=check_alternative(alternative))
    return TestResult(successes / n, float(res.pvalue), "exact-binomial", alternative)
