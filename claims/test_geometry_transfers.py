"""Claim geometry_transfers: after a second-half KV patch, R_V of the patched generation moves toward the donor's.

Method: for each exact-length pair (recursive A, baseline B), the three continuations the behaviour claims
already decode — B naturally, A naturally, and B⊕A (K and V of A over the model's patch layers, the second
half, at all shared prompt positions, α = 1; kv_transfer's condition) — under the registered decoding regime.
What is measured: for each continuation, R_V = PR(V at the late layer) / PR(V at the early layer) (eigenvalue
PR, uncentred) over its generated tokens g_0…g_{k−1}, special tokens excluded: the very tokens whose text the
behaviour score reads. V is the ``v_proj`` output at those new positions, from a teacher-forced replay of the
same token ids over the condition's own (patched) prefix cache (``harness.geometry.replay.replay_v``, equal to
the decode loop's per-step capture, tested). The patch writes only prompt positions 0…n−2, so no measured row
is a patched (layer, position): every row is downstream of the patch. A continuation with fewer than W
(``--window``, 16) such tokens has no R_V and its pair is dropped (listed in the details).
G = (mean R_V(B⊕A) − mean R_V(B)) / (mean R_V(A) − mean R_V(B)), paired by pair, 95 % BCa CI over pairs;
undefined (INCONCLUSIVE) when the CI of the natural gap mean R_V(A) − mean R_V(B) includes 0.
p: one-sided paired Wilcoxon, R_V(B⊕A) < R_V(B). Rule and planned n: the registry entry.
"""

from __future__ import annotations

import numpy as np
import pytest

from harness.claim_context import ClaimContext
from harness.claim_support import behaviour_details, claim_pairs, paired_p, pairing_details, run_conditions
from harness.geometry.replay import (
    GENERATED_RV_TEXT,
    generated_rv,
    generated_token_counts,
    replay_capture_gap,
    replay_runs,
)
from harness.stats import transfer_ci
from harness.transfer import KV_MAIN, NATURAL_BASELINE, NATURAL_RECURSIVE, transfer

pytestmark = pytest.mark.claim("geometry_transfers")
CONDITIONS = (NATURAL_BASELINE, NATURAL_RECURSIVE, KV_MAIN)


def test_geometry_transfers(claim: ClaimContext) -> None:
    lm = claim.lm
    selection = claim_pairs(claim)
    pairs = selection.pairs
    runs = run_conditions(claim, pairs, CONDITIONS)
    replays = replay_runs(lm, pairs, [runs[c.name] for c in CONDITIONS], run_seed=claim.settings.seed,
                          cache=claim.cache)
    rv_b, rv_a, rv_p = (generated_rv(lm, r, min_tokens=claim.settings.window) for r in replays)
    keep = np.isfinite(rv_b) & np.isfinite(rv_a) & np.isfinite(rv_p)
    rng = np.random.default_rng(claim.seed)
    estimate = ci_low = ci_high = p = None
    p_note = undefined = gap = None
    if keep.sum() >= 2:
        g = transfer_ci(rv_p[keep], rv_b[keep], rv_a[keep], level=claim.spec.ci_level, rng=rng)
        estimate, ci_low, ci_high, undefined = g.estimate, g.ci.low, g.ci.high, g.undefined_reason
        gap = {"estimate": g.denominator.estimate, "ci": [g.denominator.low, g.denominator.high]}
        p, p_note = paired_p(rv_p[keep], rv_b[keep], "less")
    else:
        undefined = f"only {int(keep.sum())} pair(s) have ≥ {claim.settings.window} generated tokens in all three runs"
    behaviour_t = transfer(runs[KV_MAIN.name], runs[NATURAL_BASELINE.name], runs[NATURAL_RECURSIVE.name],
                           level=0.95, rng=rng)
    labels = {NATURAL_BASELINE.name: rv_b, NATURAL_RECURSIVE.name: rv_a, KV_MAIN.name: rv_p}
    result = claim.evaluate(
        estimate=estimate, ci_low=ci_low, ci_high=ci_high, p_value=p, n=int(keep.sum()),
        undefined_reason=undefined,
        details=behaviour_details(
            claim, runs,
            measured=GENERATED_RV_TEXT,
            replay_vs_decode_capture_max_abs=replay_capture_gap([runs[c.name] for c in CONDITIONS], replays),
            min_generated_tokens=claim.settings.window,
            dropped_pairs=[pair.id for pair, k in zip(pairs, keep) if not k],
            generated_tokens={c.name: generated_token_counts(lm, r) for c, r in zip(CONDITIONS, replays)},
            rv_gap=gap,
            mean_rv={name: float(np.mean(v[keep])) if keep.any() else None for name, v in labels.items()},
            rv_per_pair={name: v.tolist() for name, v in labels.items()},
            rv_by_group={name: v[keep].tolist() for name, v in labels.items()},
            behaviour_transfer=behaviour_t.describe(),
            p_note=p_note,
            pairing=pairing_details(selection),
        ),
    )
    claim.conclude(result)
