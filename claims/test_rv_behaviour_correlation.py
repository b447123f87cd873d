"""Claim rv_behaviour_correlation: within recursive prompts, lower R_V goes with more recursive behaviour.

Method: the recursive prompts of the first planned-n exact-length pairs (pair order interleaves levels; the
registered unmatched variant on a bank with too few exact pairs, ``harness.claim.steps.claim_pairs``), so
their natural continuations are the natural A runs the transfer claims share (registered decoding regime;
registered behaviour score (degeneration-gated classifier P(recursive), docs/METHODS.md §6) of the generated tokens). R_V per prompt as in rv_contraction: one clean
prefill, PR(V at the late layer) / PR(V at the early layer) over the last W (``--window``, 16) content
tokens, eigenvalue PR, uncentred (``harness.geometry.prompt_geometry.measure_rv``). Spearman ρ(R_V, score) within the
recursive group only (never pooled with baselines), 95 % BCa CI resampling prompts; p: Spearman, one-sided
(ρ < 0). Rule and planned n: the registry entry.
"""

from __future__ import annotations

import pytest

from harness.claim.context import ClaimContext
from harness.claim.steps import behaviour_details, claim_pairs, run_conditions
from harness.geometry.prompt_geometry import measure_rv
from harness.stats import rank_correlation
from harness.transfer import NATURAL_RECURSIVE

pytestmark = pytest.mark.claim("rv_behaviour_correlation")


def test_rv_behaviour_correlation(claim: ClaimContext) -> None:
    lm = claim.lm
    selection = claim_pairs(claim)
    pairs = selection.pairs
    if len(pairs) < 3:
        pytest.skip(f"{claim.spec.id}: {len(pairs)} recursive prompt(s) in pairs; need 3")
    runs = run_conditions(claim, (NATURAL_RECURSIVE,), selection=selection)
    prompts = [p.recursive for p in pairs]
    rv = measure_rv(lm, prompts, window=claim.settings.window, store=claim.store).r_v(lm.layers.early,
                                                                                          lm.layers.late)
    scores = runs[NATURAL_RECURSIVE.name].scores()
    corr = rank_correlation(rv, scores, alternative="less", level=claim.spec.ci_level,
                            rng=claim.seed)
    result = claim.evaluate(
        estimate=corr.rho, ci_low=corr.ci_low, ci_high=corr.ci_high, p_value=corr.p_value,
        n=len(pairs), undefined_reason=corr.undefined_reason,
        details=behaviour_details(
            claim, runs,
            pr_kind="eigen", centered=False, window=claim.settings.window,
            rv_per_prompt={p.id: value for p, value in zip(prompts, rv)},
            scores_per_prompt={p.id: float(s) for p, s in zip(prompts, scores)},
        ),
    )
    claim.conclude(result)
