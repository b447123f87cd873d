"""Standardized effect sizes, one stated definition each.

All effects are signed as ``x − y``: a negative value means ``x`` is lower than ``y``.

- :func:`cohens_d` — (mean x − mean y) / s_p, with the pooled SD
  s_p = sqrt(((n_x − 1)·s_x² + (n_y − 1)·s_y²) / (n_x + n_y − 2)) and sample variances (ddof = 1).
- :func:`hedges_g` — ``J(df) · cohens_d`` with df = n_x + n_y − 2 and the exact small-sample correction
  J(df) = Γ(df/2) / (sqrt(df/2) · Γ((df − 1)/2)) (Hedges 1981); J ≈ 1 − 3/(4·df − 1).
- :func:`paired_dz` — mean(x − y) / sd(x − y) with ddof = 1 (the paired-design d_z; no correction).

The values are in units of standard deviations (dimensionless).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike
from scipy.special import gammaln

from harness.stats._validate import as_pair, as_sample


def hedges_correction(df: float) -> float:
    """Exact small-sample bias correction J(df) = Γ(df/2) / (sqrt(df/2)·Γ((df−1)/2)); requires df > 1."""
    if not df > 1:
        raise ValueError(f"hedges_correction: degrees of freedom must exceed 1, got {df}")
    return float(np.exp(gammaln(df / 2.0) - gammaln((df - 1.0) / 2.0)) / np.sqrt(df / 2.0))


def pooled_sd(x: ArrayLike, y: ArrayLike) -> float:
    """Pooled standard deviation of two independent samples (ddof = 1 within each)."""
    xa, ya = as_sample(x, "x"), as_sample(y, "y")
    nx, ny = xa.size, ya.size
    var = ((nx - 1) * xa.var(ddof=1) + (ny - 1) * ya.var(ddof=1)) / (nx + ny - 2)
    return float(np.sqrt(var))


def cohens_d(x: ArrayLike, y: ArrayLike) -> float:
    """Cohen's d of two independent samples: (mean x − mean y) / pooled SD (ddof = 1). Raises if both are constant."""
    xa, ya = as_sample(x, "x"), as_sample(y, "y")
    sp = pooled_sd(xa, ya)
    if sp == 0.0:
        raise ValueError("cohens_d: both samples are constant (pooled SD is 0), the effect size is undefined")
    return float((xa.mean() - ya.mean()) / sp)


def hedges_g(x: ArrayLike, y: ArrayLike) -> float:
    """Hedges' g of two independent samples: J(n_x + n_y − 2) · cohens_d(x, y) (exact gamma-function J)."""
    xa, ya = as_sample(x, "x"), as_sample(y, "y")
    return hedges_correction(xa.size + ya.size - 2) * cohens_d(xa, ya)


def paired_dz(x: ArrayLike, y: ArrayLike) -> float:
    """Paired standardized mean difference d_z = mean(x − y) / sd(x − y), ddof = 1."""
    xa, ya = as_pair(x, y)
    diff = xa - ya
    sd = diff.std(ddof=1)
    if sd == 0.0:
        raise ValueError("paired_dz: the paired differences are constant (SD is 0), d_z is undefined")
    return float(diff.mean() / sd)
