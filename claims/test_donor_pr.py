"""Claim donor_pr_predicts_transfer: donors whose cached V has a lower participation ratio transfer more.

Method: for the first planned-n exact-length pairs, the per-pair transfer score(B⊕A) − score(B) of the
second-half KV patch (the kv_transfer condition: K and V of the recursive donor A over the patch layers, all
shared positions, α = 1; registered decoding regime; registered behaviour score (degeneration-gated classifier P(recursive), docs/METHODS.md §6)). The donor's PR is
the eigenvalue PR (uncentred) of the V held in A's prefix cache — the cache the patch copies from, tokens
0…n−2 — at the model's late layer, over its last W (``--window``, 16) content positions, read from the cache
tensor (``harness.geometry.cache_pr.donor_cache_pr``). Spearman ρ(PR, transfer) over pairs, 95 % BCa CI
resampling pairs; p: Spearman, one-sided (ρ < 0). Rule and planned n: the registry entry.
"""

from __future__ import annotations

import pytest

from harness.claim.context import ClaimContext
from harness.claim.steps import behaviour_details, run_conditions
from harness.geometry.cache_pr import donor_cache_pr
from harness.stats import rank_correlation
from harness.transfer import KV_MAIN, NATURAL_BASELINE, NATURAL_RECURSIVE, estimate_transfer

pytestmark = pytest.mark.claim("donor_pr_predicts_transfer")


def test_donor_pr_predicts_transfer(claim: ClaimContext) -> None:
    lm = claim.lm
    runs = run_conditions(claim, (NATURAL_BASELINE, NATURAL_RECURSIVE, KV_MAIN))
    pairs = runs.pairs
    gain = runs[KV_MAIN.name].scores() - runs[NATURAL_BASELINE.name].scores()
    pr = donor_cache_pr(lm, pairs, lm.layers.late, window=claim.settings.window, store=claim.store)
    seed = claim.seed
    corr = rank_correlation(pr, gain, alternative="less", level=claim.spec.ci_level, rng=seed)
    t = estimate_transfer(runs[KV_MAIN.name], runs[NATURAL_BASELINE.name], runs[NATURAL_RECURSIVE.name], level=0.95, rng=seed)
    result = claim.evaluate(
        estimate=corr.rho, ci_low=corr.ci_low, ci_high=corr.ci_high, p_value=corr.p_value,
        n=len(pairs), undefined_reason=corr.undefined_reason,
        details=behaviour_details(
            claim, runs,
            donor_pr_layer=lm.layers.late,
            window=claim.settings.window,
            donor_pr=pr,
            per_pair_transfer=gain.tolist(),
            transfer=t.describe(),
        ),
    )
    claim.conclude(result)
