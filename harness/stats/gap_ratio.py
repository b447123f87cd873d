"""Transfer T (DESIGN §4.8) and adjacent-step CIs for dose-response rules, bootstrapped over prompt pairs.

T = (mean score(B⊕A) − mean score(B)) / (mean score(A) − mean score(B)), paired by prompt pair: row i of
``patched``, ``recipient`` and ``donor`` belong to pair i (average the k sampled continuations of a pair
first: the bootstrap resamples pairs, never samples). T is *undefined* when the CI of the denominator
(the natural donor − recipient gap) includes 0, or reaches closer to 0 than a registered minimum gap (there is then
no behaviour to transfer); the result then carries ``undefined_reason`` and a verdict must be INCONCLUSIVE (pass it
to :func:`harness.claim.verdicts.evaluate`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from harness.stats.bootstrap import ConfidenceInterval, bootstrap_ci


@dataclass(frozen=True)
class TransferEstimate:
    """T with its CI, the denominator's CI, and why T is undefined (None when defined)."""

    ci: ConfidenceInterval
    denominator: ConfidenceInterval
    undefined_reason: str | None

    @property
    def estimate(self) -> float:
        """The point estimate of T (in units of the natural gap: 0 = recipient, 1 = donor)."""
        return self.ci.estimate


def in_gap_units(difference: float, donor: ArrayLike, recipient: ArrayLike) -> float:
    """``difference`` (score units) divided by the natural gap mean(donor) − mean(recipient): the one place a
    transfer ratio is formed. Dimensionless (0 = the recipient's behaviour, 1 = the donor's); NaN when the gap is
    exactly 0."""
    gap = float(np.mean(donor) - np.mean(recipient))
    return float(difference) / gap if gap != 0 else float("nan")


def transfer_ratio(patched: ArrayLike, recipient: ArrayLike, donor: ArrayLike) -> float:
    """T = (mean patched − mean recipient) / (mean donor − mean recipient), paired rows (DESIGN §4.8)."""
    return in_gap_units(np.mean(patched) - np.mean(recipient), donor, recipient)


def _mean_gap(donor: np.ndarray, recipient: np.ndarray) -> float:
    return float(np.mean(donor) - np.mean(recipient))


def transfer_ci(
    patched: ArrayLike,
    recipient: ArrayLike,
    donor: ArrayLike,
    *,
    clusters: ArrayLike | None = None,
    level: float = 0.95,
    method: str = "BCa",
    n_resamples: int = 9999,
    rng: np.random.Generator | int,
    min_gap: float = 0.0,
) -> TransferEstimate:
    """T and its bootstrap CI over pairs (clustered by ``clusters`` when a prompt recurs across pairs).

    The denominator's CI uses the same ``level``. ``rng`` seeds both bootstraps (drawn in that order). T is
    undefined unless the gap's CI lies wholly beyond ``min_gap`` (score units, ≥ 0) on one side of 0: low ≥ min_gap
    or high ≤ −min_gap (with ``min_gap`` = 0, unless the CI excludes 0).
    """
    if min_gap < 0:
        raise ValueError(f"min_gap must be ≥ 0, got {min_gap}")
    gen = np.random.default_rng(rng)
    den = bootstrap_ci(_mean_gap, donor, recipient, paired=True, clusters=clusters, level=level, method=method,
                       n_resamples=n_resamples, rng=gen)
    ci = bootstrap_ci(transfer_ratio, patched, recipient, donor, paired=True, clusters=clusters, level=level,
                      method=method, n_resamples=n_resamples, rng=gen)
    reason = None
    if den.degenerate or not (den.low > 0 or den.high < 0):
        reason = (f"the natural donor − recipient gap has {level:.0%} CI [{den.low:.3g}, {den.high:.3g}], "
                  "which includes 0, so T is undefined")
    elif not (den.low >= min_gap or den.high <= -min_gap):
        reason = (f"the natural donor − recipient gap has {level:.0%} CI [{den.low:.3g}, {den.high:.3g}], which "
                  f"reaches below the registered minimum gap {min_gap:g}: the donor's natural continuations are not "
                  "distinguishable enough by the registered score, so there is no behaviour to transfer and T is "
                  "undefined")
    return TransferEstimate(ci, den, reason)


def adjacent_step_cis(
    scores: ArrayLike,
    *,
    clusters: ArrayLike | None = None,
    level: float = 0.95,
    method: str = "BCa",
    n_resamples: int = 9999,
    rng: np.random.Generator | int,
) -> list[ConfidenceInterval]:
    """CIs of mean(column k+1 − column k) for a (pairs × ordered conditions) array, bootstrapped over pairs."""
    arr = np.asarray(scores, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[1] < 2:
        raise ValueError(f"adjacent_step_cis: need a (pairs × conditions ≥ 2) array, got shape {arr.shape}")
    gen = np.random.default_rng(rng)
    return [
        bootstrap_ci(_step, arr[:, k + 1], arr[:, k], paired=True, clusters=clusters, level=level, method=method,
                     n_resamples=n_resamples, rng=gen)
        for k in range(arr.shape[1] - 1)
    ]


def _step(upper: np.ndarray, lower: np.ndarray) -> float:
    return float(np.mean(upper - lower))


def steps_as_bounds(cis: Sequence[ConfidenceInterval]) -> list[tuple[float, float]]:
    """``[(low, high), ...]`` in the form :func:`harness.claim.verdicts.evaluate` takes as ``step_cis``."""
    return [(c.low, c.high) for c in cis]
