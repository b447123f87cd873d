"""Claim donor_pr_predicts_transfer: donors whose cached V has a lower participation ratio transfer more.

Method: for the first planned-n exact-length pairs, the per-pair transfer score(B⊕A) − score(B) of the
second-half KV patch (the kv_transfer condition: K and V of the recursive donor A over the patch layers, all
shared positions, α = 1; registered decoding regime; degeneration-gated embedding score). The donor's PR is
the eigenvalue PR (uncentred) of the V held in A's prefix cache — the cache the patch copies from, tokens
0…n−2 — at the model's late layer, over its last W (``--window``, 16) content positions, read from the cache
tensor (``harness.geometry.cache_pr.donor_cache_pr``). Spearman ρ(PR, transfer) over pairs, 95 % BCa CI
resampling pairs; p: Spearman, one-sided (ρ < 0). Rule and planned n: the registry entry.
"""

from __future__ import annotations

import pytest

from harness.claim_support import behaviour_details, behaviour_pairs, run_conditions
from harness.registry import get_claim
from harness.geometry.cache_pr import donor_cache_pr
from harness.results import assert_pass, evaluate, record_claim
from harness.seeds import derive_seed
from harness.stats import rank_correlation
from harness.transfer import KV_MAIN, NATURAL_BASELINE, NATURAL_RECURSIVE, transfer

CLAIM = get_claim("donor_pr_predicts_transfer")
pytestmark = pytest.mark.claim(CLAIM.id)


def test_donor_pr_predicts_transfer(lm, prompt_bank, run_settings, measurement_cache, record_property) -> None:
    pairs = behaviour_pairs(lm, prompt_bank, CLAIM, run_settings.n_cap)
    runs = run_conditions(lm, pairs, CLAIM, (NATURAL_BASELINE, NATURAL_RECURSIVE, KV_MAIN), run_settings,
                          measurement_cache)
    gain = runs[KV_MAIN.name].scores() - runs[NATURAL_BASELINE.name].scores()
    pr = donor_cache_pr(lm, pairs, lm.layers.late, window=run_settings.window, cache=measurement_cache)
    seed = derive_seed(run_settings.seed, CLAIM.id, lm.name)
    corr = rank_correlation(pr, gain, alternative="less", level=CLAIM.ci_level, rng=seed)
    t = transfer(runs[KV_MAIN.name], runs[NATURAL_BASELINE.name], runs[NATURAL_RECURSIVE.name], level=0.95, rng=seed)
    result = evaluate(
        CLAIM, model=lm.name, estimate=corr.rho, ci_low=corr.ci_low, ci_high=corr.ci_high, p_value=corr.p_value,
        n=len(pairs), undefined_reason=corr.undefined_reason,
        details=behaviour_details(
            lm, prompt_bank, CLAIM, runs,
            donor_pr_layer=lm.layers.late,
            window=run_settings.window,
            donor_pr=pr,
            per_pair_transfer=gain.tolist(),
            transfer=t.describe(),
        ),
    )
    record_claim(record_property, result)
    assert_pass(result)
