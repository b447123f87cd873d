"""Input checks shared by the statistics modules: one place that turns bad input into a clear error."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

ALTERNATIVES = ("two-sided", "less", "greater")


def as_sample(values: ArrayLike, name: str, min_size: int = 2) -> NDArray[np.float64]:
    """Return ``values`` as a finite 1-D float64 array of at least ``min_size`` entries, or raise ValueError."""
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != 1:
        raise ValueError(f"{name}: expected a 1-D sample, got shape {arr.shape}")
    if arr.size < min_size:
        raise ValueError(f"{name}: needs at least {min_size} values, got {arr.size}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name}: contains NaN or infinite values")
    return arr


def as_pair(x: ArrayLike, y: ArrayLike, min_size: int = 2) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Two paired samples of equal length (pair i is ``(x[i], y[i])``)."""
    xa, ya = as_sample(x, "x", min_size), as_sample(y, "y", min_size)
    if xa.size != ya.size:
        raise ValueError(f"paired samples must have equal length: x has {xa.size}, y has {ya.size}")
    return xa, ya


def check_alternative(alternative: str) -> str:
    """Validate a scipy-style ``alternative`` argument."""
    if alternative not in ALTERNATIVES:
        raise ValueError(f"alternative must be one of {ALTERNATIVES}, got {alternative!r}")
    return alternative
