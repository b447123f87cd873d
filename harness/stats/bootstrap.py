"""Bootstrap confidence intervals (percentile and BCa) with resampling by unit, cluster or pair.

Built on ``scipy.stats.bootstrap``. What is resampled is explicit:

- independent samples (``paired=False``, no clusters): each sample is resampled on its own (stratified);
- paired samples (``paired=True``): row ``i`` of every sample is one unit, rows are resampled jointly;
- clustered (``clusters=``): the resampling unit is a cluster (e.g. a prompt that appears in several pairs);
  all rows of a drawn cluster enter the resample together. For ``paired=True`` give one label array shared
  by all samples; for independent samples give one label array per sample.

BCa's acceleration uses scipy's jackknife over the same units, so a clustered BCa interval is a
leave-one-cluster-out jackknife. A bootstrap distribution with no spread (a constant statistic) gives
NaN bounds and ``degenerate=True``; decision code must treat that as "no interval", never as a point.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import stats as sps

METHODS = ("percentile", "BCa")


@dataclass(frozen=True)
class ConfidenceInterval:
    """A bootstrap interval for ``statistic`` at confidence ``level`` (two-sided).

    ``estimate`` is the statistic on the original data; ``n_units`` the number of resampling units per
    sample (clusters, pairs or observations).
    """

    estimate: float
    low: float
    high: float
    level: float
    method: str
    n_resamples: int
    n_units: tuple[int, ...]
    degenerate: bool


def _unit_members(labels: ArrayLike, n_rows: int, name: str) -> list[NDArray[np.intp]]:
    lab = np.asarray(labels)
    if lab.ndim != 1 or lab.size != n_rows:
        raise ValueError(f"{name}: need one cluster label per row ({n_rows}), got shape {lab.shape}")
    _, inverse = np.unique(lab, return_inverse=True)
    order = np.argsort(inverse, kind="stable")
    bounds = np.cumsum(np.bincount(inverse))
    return np.split(order, bounds[:-1])


def _expand(units: NDArray, members: list[NDArray[np.intp]] | None) -> NDArray[np.intp]:
    idx = units.astype(np.intp)
    if members is None:
        return idx
    return np.concatenate([members[k] for k in idx])


def bootstrap_ci(
    statistic: Callable[..., float],
    *samples: ArrayLike,
    paired: bool = False,
    clusters: ArrayLike | Sequence[ArrayLike] | None = None,
    level: float = 0.95,
    method: str = "BCa",
    n_resamples: int = 9999,
    rng: np.random.Generator | int,
) -> ConfidenceInterval:
    """Two-sided bootstrap CI of ``statistic(*samples)``, each sample a 1-D array (see module docstring).

    ``statistic`` receives resampled 1-D float arrays, one per sample, and returns a float.
    ``rng`` is required so that every interval in a report is reproducible.
    """
    if method not in METHODS:
        raise ValueError(f"bootstrap_ci: method must be one of {METHODS}, got {method!r}")
    if not 0.0 < level < 1.0:
        raise ValueError(f"bootstrap_ci: level must be in (0, 1), got {level}")
    if not samples:
        raise ValueError("bootstrap_ci: give at least one sample")
    arrays = [np.asarray(s, dtype=np.float64) for s in samples]
    for i, a in enumerate(arrays):
        if a.ndim != 1 or a.size < 2:
            raise ValueError(f"bootstrap_ci: sample {i} must be 1-D with at least 2 rows, got shape {a.shape}")
        if not np.all(np.isfinite(a)):
            raise ValueError(f"bootstrap_ci: sample {i} contains NaN or infinite values")

    if paired:
        n = arrays[0].size
        if any(a.size != n for a in arrays):
            raise ValueError(f"bootstrap_ci: paired samples need equal lengths, got {[a.size for a in arrays]}")
        members = None if clusters is None else _unit_members(clusters, n, "clusters")  # type: ignore[arg-type]
        n_units = n if members is None else len(members)

        def stat_paired(units: NDArray) -> float:
            rows = _expand(units, members)
            return float(statistic(*(a[rows] for a in arrays)))

        data: tuple[NDArray, ...] = (np.arange(n_units, dtype=np.float64),)
        wrapped: Callable[..., float] = stat_paired
        unit_counts: tuple[int, ...] = (n_units,)
    else:
        if clusters is None:
            per_sample: list[list[NDArray[np.intp]] | None] = [None] * len(arrays)
        else:
            if len(clusters) != len(arrays):  # type: ignore[arg-type]
                raise ValueError("bootstrap_ci: for independent samples give one cluster-label array per sample")
            per_sample = [
                _unit_members(lab, a.size, f"clusters[{i}]")
                for i, (lab, a) in enumerate(zip(clusters, arrays))  # type: ignore[arg-type]
            ]
        unit_counts = tuple(a.size if m is None else len(m) for a, m in zip(arrays, per_sample))

        def stat_independent(*units: NDArray) -> float:
            return float(statistic(*(a[_expand(u, m)] for a, u, m in zip(arrays, units, per_sample))))

        data = tuple(np.arange(k, dtype=np.float64) for k in unit_counts)
        wrapped = stat_independent

    estimate = float(wrapped(*data))  # undefined on the data itself: the caller's error, raised here

    if min(unit_counts) < 2:  # one cluster (e.g. every pair shares a prompt): nothing to resample, no interval
        return ConfidenceInterval(estimate, float("nan"), float("nan"), level, method, n_resamples, unit_counts, True)

    def on_resample(*units: NDArray) -> float:
        # A statistic undefined on one resample (e.g. Hedges g of a resample that repeats one prompt, so
        # both groups are constant) makes that replicate NaN, which makes the interval NaN (degenerate)
        # rather than stopping the claim: tiny n then reads INCONCLUSIVE, never a crash.
        try:
            return wrapped(*units)
        except ValueError:
            return float("nan")

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=sps.DegenerateDataWarning)
        warnings.simplefilter("ignore", category=RuntimeWarning)
        res = sps.bootstrap(
            data, on_resample, n_resamples=n_resamples, vectorized=False, paired=False,
            confidence_level=level, method=method, rng=rng,
        )
    low, high = float(res.confidence_interval.low), float(res.confidence_interval.high)
    degenerate = not (np.isfinite(low) and np.isfinite(high)) or float(res.standard_error) == 0.0
    if degenerate:
        low = high = float("nan")
    return ConfidenceInterval(estimate, low, high, level, method, n_resamples, unit_counts, degenerate)
