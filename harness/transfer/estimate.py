"""Transfer T over condition runs (DESIGN §4.8) and its adjacent-step CIs, bootstrapped over pairs."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from harness.behaviour import BEHAVIOUR_SCORE
from harness.foundation.behavioural_regime import MIN_NATURAL_GAP
from harness.stats import ConfidenceInterval, bootstrap_ci, in_gap_units, transfer_ci
from harness.transfer.outcomes import ConditionRun

__all__ = ["TransferResult", "estimate_transfer", "prompt_clusters", "transfer_difference", "transfer_step_cis"]


@dataclass(frozen=True)
class TransferResult:
    """T with its bootstrap CI over pairs (see :func:`estimate_transfer`); ``undefined_reason`` is None when T is defined.

    ``gap`` is the CI of the natural donor − recipient gap (the denominator), in score units; the means are
    the per-condition mean scores. T is in units of that gap: 0 = recipient's behaviour, 1 = donor's.
    """

    estimate: float
    ci: ConfidenceInterval
    gap: ConfidenceInterval
    undefined_reason: str | None
    n: int
    patched_mean: float
    recipient_mean: float
    donor_mean: float

    def describe(self) -> dict[str, Any]:
        """Builtin summary for claim details."""
        return {
            "T": self.estimate, "ci_low": self.ci.low, "ci_high": self.ci.high, "ci_level": self.ci.level,
            "gap": self.gap.estimate, "gap_ci": [self.gap.low, self.gap.high], "undefined_reason": self.undefined_reason,
            "n": self.n, "mean_patched": self.patched_mean, "mean_recipient": self.recipient_mean,
            "mean_donor": self.donor_mean,
        }


def _aligned(*runs: ConditionRun) -> None:
    first = runs[0].pair_ids
    for run in runs[1:]:
        if run.pair_ids != first:
            raise ValueError(
                f"conditions {runs[0].condition.name!r} and {run.condition.name!r} cover different pairs; "
                "transfer is paired by pair and needs the same pairs in the same order"
            )
    if len(first) < 2:
        raise ValueError(f"transfer needs at least 2 pairs, got {len(first)}")


def prompt_clusters(*runs: ConditionRun) -> list[int] | None:
    """Cluster labels over pairs for the bootstrap when a prompt recurs across pairs, else None.

    Two pairs fall in one cluster when any run gives them a prompt in common (as recipient or donor), e.g.
    the cross-baseline donor of one pair is another pair's baseline; clusters are the connected components,
    so every resample keeps such pairs together (the registry's "clustered by prompt where a prompt recurs").
    """
    _aligned(*runs)
    n = len(runs[0].outcomes)
    parent = list(range(n))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    first_seen: dict[str, int] = {}
    for run in runs:
        for i, o in enumerate(run.outcomes):
            for prompt_id in (o.recipient_id, o.donor_id):
                if prompt_id is None:
                    continue
                j = first_seen.setdefault(prompt_id, i)
                parent[root(i)] = root(j)
    labels = [root(i) for i in range(n)]
    return labels if len(set(labels)) < n else None


def estimate_transfer(
    patched: ConditionRun,
    recipient: ConditionRun,
    donor: ConditionRun,
    *,
    level: float,
    rng: int | np.random.Generator,
    measure: str = BEHAVIOUR_SCORE,
    method: str = "BCa",
    n_resamples: int = 9999,
) -> TransferResult:
    """T = (mean s(patched) − mean s(recipient)) / (mean s(donor) − mean s(recipient)), paired by pair.

    ``recipient`` and ``donor`` are the natural runs of the patched run's recipient and donor prompts (for
    the main condition B and A; for the reverse patch A and B). CI: ``method`` bootstrap over pairs at
    ``level`` (:func:`harness.stats.transfer_ci`), resampling clusters of pairs that share a prompt
    (:func:`prompt_clusters`); undefined when the gap's CI includes 0 or, for the registered score, reaches below
    :data:`~harness.foundation.behavioural_regime.MIN_NATURAL_GAP` (no behaviour to transfer).
    """
    _aligned(patched, recipient, donor)
    p, r, d = patched.scores(measure), recipient.scores(measure), donor.scores(measure)
    est = transfer_ci(p, r, d, clusters=prompt_clusters(patched, recipient, donor), level=level, method=method,
                      n_resamples=n_resamples, rng=rng, min_gap=MIN_NATURAL_GAP if measure == BEHAVIOUR_SCORE else 0.0)
    return TransferResult(est.estimate, est.ci, est.denominator, est.undefined_reason, len(p),
                          float(np.mean(p)), float(np.mean(r)), float(np.mean(d)))


def _step_ratio(upper: np.ndarray, lower: np.ndarray, donor: np.ndarray, recipient: np.ndarray) -> float:
    """T(upper) − T(lower) as mean(upper − lower) in units of the natural gap."""
    return in_gap_units(np.mean(upper - lower), donor, recipient)


def transfer_step_cis(
    ordered: Sequence[ConditionRun],
    recipient: ConditionRun,
    donor: ConditionRun,
    *,
    level: float,
    rng: int | np.random.Generator,
    measure: str = BEHAVIOUR_SCORE,
    method: str = "BCa",
    n_resamples: int = 9999,
) -> list[ConfidenceInterval]:
    """CIs of the adjacent steps T(c_k+1) − T(c_k) = mean(s_k+1 − s_k) / (mean s(donor) − mean s(recipient)) over
    ordered conditions, each a paired bootstrap over pairs (clustered as in :func:`estimate_transfer`) that resamples
    numerator and gap together."""
    if len(ordered) < 2:
        raise ValueError("transfer_step_cis needs at least two ordered conditions")
    clusters = prompt_clusters(*ordered, recipient, donor)
    gen = np.random.default_rng(rng)
    d, r = donor.scores(measure), recipient.scores(measure)
    return [
        bootstrap_ci(_step_ratio, hi.scores(measure), lo.scores(measure), d, r, paired=True, clusters=clusters,
                     level=level, method=method, n_resamples=n_resamples, rng=gen)
        for lo, hi in zip(ordered[:-1], ordered[1:])
    ]


def transfer_difference(
    upper: ConditionRun,
    lower: ConditionRun,
    recipient: ConditionRun,
    donor: ConditionRun,
    *,
    level: float,
    rng: int | np.random.Generator,
    measure: str = BEHAVIOUR_SCORE,
    method: str = "BCa",
    n_resamples: int = 9999,
) -> ConfidenceInterval:
    """ΔT = T(upper) − T(lower) = (mean s(upper) − mean s(lower)) / (mean s(donor) − mean s(recipient)), in units
    of the natural gap, with the paired bootstrap CI of :func:`transfer_step_cis` (clustered by prompt, numerator
    and gap resampled together).

    When s(upper) − s(lower) is exactly 0 on every pair and the gap is not, every resample's ΔT is exactly 0: the
    bootstrap distribution is the point 0, and so is the interval ([0, 0], not degenerate). That is a measured
    absence of any difference (e.g. two patches that both leave every continuation empty), which a rule must be
    able to judge, not a failed bootstrap (BCa alone would return no interval for it).
    """
    ci = transfer_step_cis([lower, upper], recipient, donor, level=level, rng=rng, measure=measure, method=method,
                           n_resamples=n_resamples)[0]
    same = bool(np.all(upper.scores(measure) == lower.scores(measure)))
    gap = float(np.mean(donor.scores(measure)) - np.mean(recipient.scores(measure)))
    if same and gap != 0.0:
        return ConfidenceInterval(0.0, 0.0, 0.0, ci.level, ci.method, ci.n_resamples, ci.n_units, False)
    return ci
