"""Claim geometry_transfers (v2): after a second-half KV patch, R_V on the recipient's tokens moves toward the donor's.

Method: for each exact-length pair (recursive A, baseline B), the continuations the behaviour claims already
decode — B naturally, A naturally, and B⊕A (K and V of A over the model's patch layers, the second half, at all
shared prompt positions, α = 1; kv_transfer's condition) — under the registered decoding regime.
What is measured (v2, same tokens): B's natural continuation g_0…g_{k−1} is teacher-forced through three prefix
caches — B's own, the patched B⊕A and A's own (``harness.geometry.replay.replay_v`` with ``tokens_from``) — and
R_V = PR(V at the late layer) / PR(V at the early layer) (eigenvalue PR, uncentred) is taken over those generated
positions, special tokens excluded. So the three R_V of a pair are computed on identical token ids and differ
only by the cache they read; the patch writes only prompt positions 0…n−2, so every measured row is downstream
of it. A pair is kept when B's natural continuation has at least W (``--window``, 16) such tokens — a property
of B alone, the same for every condition (v1 compared three different texts and dropped pairs by condition).
G = (mean R_V(B⊕A) − mean R_V(B)) / (mean R_V(A) − mean R_V(B)), paired by pair, 95 % BCa CI over pairs;
undefined (INCONCLUSIVE) when the CI of the natural gap mean R_V(A) − mean R_V(B) includes 0.
p: one-sided paired Wilcoxon of R_V(B⊕A) − R_V(B) in the direction of the natural gap (R_V(B⊕A) < R_V(B) when
mean R_V(A) < mean R_V(B), > otherwise; v1 always tested "<", which FAILed a model whose gap is positive).
The behavioural transfer T of the same pairs is reported beside it. Rule and planned n: the registry entry.
"""

from __future__ import annotations

import numpy as np
import pytest

from harness.claim.context import ClaimContext
from harness.claim.steps import behaviour_details, paired_p, run_conditions
from harness.geometry.replay import generated_rv, generated_token_counts, replay_capture_gap, replay_runs
from harness.stats import transfer_ci
from harness.transfer import KV_MAIN, NATURAL_BASELINE, NATURAL_RECURSIVE, estimate_transfer

pytestmark = pytest.mark.claim("geometry_transfers")
CONDITIONS = (NATURAL_BASELINE, NATURAL_RECURSIVE, KV_MAIN)
SAME_TOKENS_TEXT = (
    "R_V = PR(V late) / PR(V early), eigenvalue PR, uncentred, over the generated tokens of B's natural "
    "continuation (special tokens excluded), teacher-forced through B's own prefix cache, the patched B⊕A cache "
    "and A's own cache: the same token ids in all three, V downstream of the patch"
)


def test_geometry_transfers(claim: ClaimContext) -> None:
    lm = claim.lm
    runs = run_conditions(claim, CONDITIONS)
    pairs = runs.pairs
    natural_b = runs[NATURAL_BASELINE.name]
    own = replay_runs(lm, pairs, [natural_b], run_seed=claim.settings.seed, store=claim.store)[0]
    on_b_tokens = replay_runs(lm, pairs, [runs[NATURAL_RECURSIVE.name], runs[KV_MAIN.name]],
                              run_seed=claim.settings.seed, store=claim.store, tokens_from=natural_b)
    rv_b, rv_a, rv_p = (generated_rv(lm, r, min_tokens=claim.settings.window) for r in (own, *on_b_tokens))
    keep = np.isfinite(rv_b)  # B's own continuation is long enough; the same tokens in all three rows
    rng = np.random.default_rng(claim.seed)
    estimate = ci_low = ci_high = p = None
    p_note = undefined = gap = direction = None
    if keep.sum() >= 2:
        g = transfer_ci(rv_p[keep], rv_b[keep], rv_a[keep], level=claim.spec.ci_level, rng=rng)
        estimate, ci_low, ci_high, undefined = g.estimate, g.ci.low, g.ci.high, g.undefined_reason
        gap = {"estimate": g.denominator.estimate, "ci": [g.denominator.low, g.denominator.high]}
        direction = "less" if g.denominator.estimate < 0 else "greater"
        p, p_note = paired_p(rv_p[keep], rv_b[keep], direction)
    else:
        undefined = f"only {int(keep.sum())} pair(s) have ≥ {claim.settings.window} generated tokens in B's continuation"
    behaviour_t = estimate_transfer(runs[KV_MAIN.name], natural_b, runs[NATURAL_RECURSIVE.name], level=0.95, rng=rng)
    labels = {NATURAL_BASELINE.name: rv_b, NATURAL_RECURSIVE.name: rv_a, KV_MAIN.name: rv_p}
    result = claim.evaluate(
        estimate=estimate, ci_low=ci_low, ci_high=ci_high, p_value=p, n=int(keep.sum()),
        undefined_reason=undefined,
        details=behaviour_details(
            claim, runs,
            measured=SAME_TOKENS_TEXT,
            replay_vs_decode_capture_max_abs=replay_capture_gap([natural_b], [own]),
            min_generated_tokens=claim.settings.window,
            dropped_pairs=[pair.id for pair, k in zip(pairs, keep) if not k],
            generated_tokens=generated_token_counts(lm, own),
            rv_gap=gap,
            p_direction=direction,
            mean_rv={name: float(np.mean(v[keep])) if keep.any() else None for name, v in labels.items()},
            rv_per_pair={name: v.tolist() for name, v in labels.items()},
            rv_by_group={name: v[keep].tolist() for name, v in labels.items()},
            behaviour_transfer=behaviour_t.describe(),
            p_note=p_note,
        ),
    )
    claim.conclude(result)
