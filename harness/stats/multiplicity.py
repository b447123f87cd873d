"""Multiplicity adjustment over a family fixed in advance (the claims registry), not by what happened to run.

``family_size`` is the registry's family size m. When fewer p-values are present (a claim skipped or
errored), the missing ones are treated as p = 1, so the adjustment never becomes less strict because
part of the family did not run. Holm: ``statsmodels.stats.multitest.multipletests(method='holm')``;
Benjamini–Hochberg: ``scipy.stats.false_discovery_control(method='bh')``.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.stats import false_discovery_control
from statsmodels.stats.multitest import multipletests


def _padded(p_values: ArrayLike, family_size: int | None) -> tuple[NDArray[np.float64], int]:
    p = np.asarray(p_values, dtype=np.float64)
    if p.ndim != 1 or p.size == 0:
        raise ValueError(f"p_values must be a non-empty 1-D array, got shape {p.shape}")
    if not np.all((p >= 0.0) & (p <= 1.0)):
        raise ValueError(f"p_values must lie in [0, 1], got {p.tolist()}")
    m = p.size if family_size is None else family_size
    if m < p.size:
        raise ValueError(f"family_size {m} is smaller than the number of p-values {p.size}")
    return np.concatenate([p, np.ones(m - p.size)]), p.size


def holm(p_values: ArrayLike, family_size: int | None = None) -> NDArray[np.float64]:
    """Holm step-down adjusted p-values (FWER), in the input order, within a family of ``family_size``."""
    full, k = _padded(p_values, family_size)
    return multipletests(full, method="holm")[1][:k]


def benjamini_hochberg(p_values: ArrayLike, family_size: int | None = None) -> NDArray[np.float64]:
    """Benjamini–Hochberg adjusted p-values (FDR), in the input order, within a family of ``family_size``."""
    full, k = _padded(p_values, family_size)
    return np.asarray(false_discovery_control(full, method="bh"))[:k]


ADJUSTERS = {"holm": holm, "bh": benjamini_hochberg}


def adjust(p_values: ArrayLike, method: str, family_size: int | None = None) -> NDArray[np.float64]:
    """Adjust with ``method`` ('holm' or 'bh')."""
    if method not in ADJUSTERS:
        raise ValueError(f"unknown multiplicity method {method!r}; known: {sorted(ADJUSTERS)}")
    return ADJUSTERS[method](p_values, family_size)
