"""Claim rv_gap_fades_in_generation: the recursive − baseline R_V gap the prompt sets shrinks once generation
moves the window onto generated tokens.

It replaces geometry_at_encoding (v1), whose step-0 R_V was the prompt-level R_V of rv_contraction again (the
step-0 window is the prompt's last W tokens; equal within 2e-8) and so counted one effect twice in the geometry
family. This claim asks what happens to that gap afterwards.

Method: the exact-length pairs (recursive A, baseline B) of the behaviour claims, each prompt decoded naturally
under the registered regime. At decode step s the model feeds the token at position n − 1 + s; R_V at step s =
PR(V at the late layer) / PR(V at the early layer) (eigenvalue PR, uncentred) over the last W (``--window``, 16)
non-special positions held then, V from the run's own prefill and a teacher-forced replay of its generated ids
(``harness.geometry.replay``). Step 0: the prompt's last W tokens. Step 40: generated tokens g_24…g_39 only.
Per pair, d(s) = R_V(A, s) − R_V(B, s). A pair is used when both continuations reach step 40 (stated in the
details with the pairs left out: an EOS before step 40 ends a continuation).
Estimate: S = |mean d(0)| − |mean d(40)|, in R_V units (> 0: the gap shrank). 95 % BCa CI resampling pairs.
p: paired permutation test swapping each pair's d(0) and d(40) (exchangeable when the gap does not change),
one-sided S > 0. Rule and planned n: the registry entry.
"""

from __future__ import annotations

import numpy as np
import pytest

from harness.claim.context import ClaimContext
from harness.claim.steps import behaviour_details, run_conditions
from harness.geometry.replay import decode_step_rv, replay_capture_gap, replay_runs
from harness.stats import bootstrap_ci, permutation_test_paired
from harness.transfer import NATURAL_BASELINE, NATURAL_RECURSIVE

pytestmark = pytest.mark.claim("rv_gap_fades_in_generation")
CONDITIONS = (NATURAL_RECURSIVE, NATURAL_BASELINE)
FIRST_STEP, LAST_STEP = 0, 40


def gap_shrinkage(at_first: np.ndarray, at_last: np.ndarray, axis: int = -1) -> np.ndarray:
    """S = |mean d(first)| − |mean d(last)| along ``axis`` (R_V units; vectorised for the permutation test)."""
    return np.abs(np.mean(at_first, axis=axis)) - np.abs(np.mean(at_last, axis=axis))


def test_rv_gap_fades_in_generation(claim: ClaimContext) -> None:
    lm = claim.lm
    runs = run_conditions(claim, CONDITIONS)
    pairs = runs.pairs
    rep_rec, rep_base = replay_runs(lm, pairs, [runs[c.name] for c in CONDITIONS], run_seed=claim.settings.seed,
                                    store=claim.store)
    window = claim.settings.window
    gap = {step: decode_step_rv(lm, rep_rec, step=step, window=window)
           - decode_step_rv(lm, rep_base, step=step, window=window) for step in (FIRST_STEP, LAST_STEP)}
    keep = np.isfinite(gap[FIRST_STEP]) & np.isfinite(gap[LAST_STEP])
    first, last = gap[FIRST_STEP][keep], gap[LAST_STEP][keep]
    estimate = ci_low = ci_high = p = undefined = None
    if keep.sum() >= 3:
        estimate = float(gap_shrinkage(first, last))
        ci = bootstrap_ci(lambda a, b: float(gap_shrinkage(a, b)), first, last, paired=True,
                          level=claim.spec.ci_level, rng=claim.seed)
        ci_low, ci_high = ci.low, ci.high
        p = permutation_test_paired(first, last, alternative="greater", statistic=gap_shrinkage,
                                    rng=claim.seed).p_value
    else:
        undefined = f"only {int(keep.sum())} pair(s) have both continuations reaching step {LAST_STEP}; need 3"
    result = claim.evaluate(
        estimate=estimate, ci_low=ci_low, ci_high=ci_high, p_value=p, n=int(keep.sum()), undefined_reason=undefined,
        details=behaviour_details(
            claim, runs,
            measured=("R_V at decode step s over the last W non-special positions held when step s feeds its token "
                      f"(step {FIRST_STEP}: the prompt's last W tokens; step {LAST_STEP}: generated tokens only), "
                      "natural continuations; d(s) = R_V(recursive, s) − R_V(baseline, s) per pair"),
            window=window,
            steps=[FIRST_STEP, LAST_STEP],
            mean_gap={str(FIRST_STEP): float(first.mean()) if keep.any() else None,
                      str(LAST_STEP): float(last.mean()) if keep.any() else None},
            gap_per_pair={str(step): values.tolist() for step, values in gap.items()},
            pairs_without_last_step=[pair.id for pair, k in zip(pairs, keep) if not k],
            replay_vs_decode_capture_max_abs=replay_capture_gap([runs[c.name] for c in CONDITIONS],
                                                                [rep_rec, rep_base]),
        ),
    )
    claim.conclude(result)
