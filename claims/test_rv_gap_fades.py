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
Estimate: S = |mean d(0)| − |mean d(40)|, in R_V units (> 0: the gap shrank), 95 % BCa CI resampling pairs;
defined when the step-0 gap lies in the registered direction (recursive lower R_V, as rv_contraction claims: the
95 % t-interval of mean d(0) below 0), since with no gap at step 0 there is nothing to fade.
p (version 3): exact sign-flip permutation test of the paired change e = d(40) − d(0), one-sided mean e > 0 (the
negative gap moves up toward 0). Swapping a pair's d(0) and d(40) flips its e, so the test is exchangeable when the
gap does not change. (Version 2 permuted S itself, which under swaps is confined to ±|m₀ + m₄₀| and gave p = 1
whenever the two gaps had opposite signs.) A gap that overshoots past 0 to a larger positive gap has S < 0: the CI
decides that case. Rule and planned n: the registry entry.
"""

from __future__ import annotations

import numpy as np
import pytest

from harness.claim.context import ClaimContext
from harness.claim.steps import behaviour_details, run_conditions
from harness.geometry.replay import decode_step_rv, replay_capture_gap, replay_runs
from harness.stats import bootstrap_ci, permutation_test_paired, t_interval
from harness.transfer import NATURAL_BASELINE, NATURAL_RECURSIVE

pytestmark = pytest.mark.claim("rv_gap_fades_in_generation")
CONDITIONS = (NATURAL_RECURSIVE, NATURAL_BASELINE)
FIRST_STEP, LAST_STEP = 0, 40


def gap_shrinkage(at_first: np.ndarray, at_last: np.ndarray, axis: int = -1) -> np.ndarray:
    """S = |mean d(first)| − |mean d(last)| along ``axis`` (R_V units; vectorised for the permutation test)."""
    return np.abs(np.mean(at_first, axis=axis)) - np.abs(np.mean(at_last, axis=axis))


def gap_fade_numbers(first: np.ndarray, last: np.ndarray, *, level: float,
                     seed: int) -> tuple[float | None, float | None, float | None, float | None, str | None]:
    """(S, CI low, CI high, p, undefined reason) of the registered rule from per-pair gaps d(0) = ``first`` and
    d(40) = ``last`` (R_V units; module docstring). Undefined with fewer than 3 pairs or no step-0 gap below 0."""
    if first.size < 3:
        return None, None, None, None, f"only {first.size} pair(s) have both continuations reaching step {LAST_STEP}; need 3"
    low0, high0 = t_interval(first, 0.95)
    estimate = float(gap_shrinkage(first, last))
    ci = bootstrap_ci(lambda a, b: float(gap_shrinkage(a, b)), first, last, paired=True, level=level, rng=seed)
    p = permutation_test_paired(last, first, alternative="greater", rng=seed).p_value
    if not high0 < 0.0:
        return estimate, ci.low, ci.high, p, (
            f"no step-0 gap in the registered direction (recursive lower R_V): mean d(0) = {first.mean():.3g}, 95% "
            f"t-interval [{low0:.3g}, {high0:.3g}] does not lie below 0, so there is no gap to fade")
    return estimate, ci.low, ci.high, p, None


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
    estimate, ci_low, ci_high, p, undefined = gap_fade_numbers(first, last, level=claim.spec.ci_level or 0.95,
                                                               seed=claim.seed)
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
