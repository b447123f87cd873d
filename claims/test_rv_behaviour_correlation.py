"""Claim rv_behaviour_correlation: within recursive prompts, lower R_V goes with more recursive behaviour.

Method: the recursive prompts of the first planned-n exact-length pairs (pair order interleaves levels), so
their natural continuations are the natural A runs the transfer claims share (registered decoding regime;
degeneration-gated embedding score of the generated tokens). R_V per prompt as in rv_contraction: one clean
prefill, PR(V at the late layer) / PR(V at the early layer) over the last W (``--window``, 16) content
tokens, eigenvalue PR, uncentred (``harness.geometry.prompt_geometry.measure_rv``). Spearman ρ(R_V, score) within the
recursive group only (never pooled with baselines), 95 % BCa CI resampling prompts; p: Spearman, one-sided
(ρ < 0). Rule and planned n: the registry entry.
"""

from __future__ import annotations

import pytest

from harness.prompts.pairing import transfer_pairs
from harness.results import assert_pass, evaluate, record_claim
from harness.seeds import derive_seed
from harness.registry import get_claim
from harness.claim_support import behaviour_details, first_eligible, require_groups, run_conditions
from harness.geometry.prompt_geometry import measure_rv
from harness.stats import rank_correlation
from harness.transfer import NATURAL_RECURSIVE

CLAIM = get_claim("rv_behaviour_correlation")
pytestmark = pytest.mark.claim(CLAIM.id)


def test_rv_behaviour_correlation(lm, prompt_bank, run_settings, measurement_cache, record_property) -> None:
    require_groups(prompt_bank, CLAIM, run_settings.n_cap)
    pairs, _ = first_eligible(transfer_pairs(lm, prompt_bank), lambda p: True, CLAIM, run_settings.n_cap)
    if len(pairs) < 3:
        pytest.skip(f"{CLAIM.id}: {len(pairs)} recursive prompt(s) in exact-length pairs; need 3")
    runs = run_conditions(lm, pairs, CLAIM, (NATURAL_RECURSIVE,), run_settings, measurement_cache)
    prompts = [p.recursive for p in pairs]
    rv = measure_rv(lm, prompts, window=run_settings.window, cache=measurement_cache).r_v(lm.layers.early,
                                                                                          lm.layers.late)
    scores = runs[NATURAL_RECURSIVE.name].scores()
    corr = rank_correlation(rv, scores, alternative="less", level=CLAIM.ci_level,
                            rng=derive_seed(run_settings.seed, CLAIM.id, lm.name))
    result = evaluate(
        CLAIM, model=lm.name, estimate=corr.rho, ci_low=corr.ci_low, ci_high=corr.ci_high, p_value=corr.p_value,
        n=len(pairs), undefined_reason=corr.undefined_reason,
        details=behaviour_details(
            lm, prompt_bank, CLAIM, runs,
            pr_kind="eigen", centered=False, window=run_settings.window,
            rv_per_prompt={p.id: value for p, value in zip(prompts, rv)},
            scores_per_prompt={p.id: float(s) for p, s in zip(prompts, scores)},
        ),
    )
    record_claim(record_property, result)
    assert_pass(result)
