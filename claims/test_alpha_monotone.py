"""Claim alpha_monotone: recursive behaviour rises monotonically with the KV mixing weight α.

Method: for each exact-length pair, decode the baseline B from caches whose second-half K and V are
(1−α)·B + α·A at every shared position, α ∈ {0, .25, .5, .75, 1}, one code path for every α (α = 0 is the
natural B run, which the layer's tests show equals the α = 0 patch bit for bit; α = 1 is the kv_transfer
condition). p: Page's L over pairs (blocks) × α on the behaviour scores, ordered increasing. Each adjacent
step T(α_k+1) − T(α_k) = mean(s_k+1 − s_k) / (mean s(A) − mean s(B)) gets a 95 % BCa CI over pairs that
resamples numerator and gap together. Estimate (version 5): the weakest step, the one whose CI lower bound is
lowest, with its CI (what the steps criterion tests); T(1) − T(0) is in the details. Rule and planned n: the
registry.
"""

from __future__ import annotations

import numpy as np
import pytest

from harness.claim.context import ClaimContext
from harness.claim.steps import behaviour_details, run_conditions
from harness.stats import bootstrap_ci, page_trend, steps_as_bounds
from harness.transfer import ALPHAS, NATURAL_BASELINE, NATURAL_RECURSIVE, estimate_transfer, kv_alpha, transfer_step_cis

pytestmark = pytest.mark.claim("alpha_monotone")
CURVE_LEVEL = 0.95


def test_alpha_monotone(claim: ClaimContext) -> None:
    ladder = [kv_alpha(a) for a in ALPHAS]
    runs = run_conditions(claim, (NATURAL_RECURSIVE, *ladder))
    pairs = runs.pairs
    ordered = [runs[c.name] for c in ladder]
    natural_b, natural_a = runs[NATURAL_BASELINE.name], runs[NATURAL_RECURSIVE.name]
    rng = np.random.default_rng(claim.seed)

    scores = np.column_stack([r.scores() for r in ordered])
    page = page_trend(scores)
    steps = transfer_step_cis(ordered, natural_b, natural_a, level=CURVE_LEVEL, rng=rng)
    per_alpha = [estimate_transfer(r, natural_b, natural_a, level=CURVE_LEVEL, rng=rng) for r in ordered]
    curve = [bootstrap_ci(np.mean, col, level=CURVE_LEVEL, rng=rng) for col in scores.T]
    weakest = min(range(len(steps)), key=lambda k: steps[k].low if np.isfinite(steps[k].low) else -np.inf)
    result = claim.evaluate(
        estimate=steps[weakest].estimate, ci_low=steps[weakest].low, ci_high=steps[weakest].high,
        p_value=page.p_value,
        step_cis=steps_as_bounds(steps),
        n=len(pairs),
        undefined_reason=per_alpha[-1].undefined_reason,
        details=behaviour_details(
            claim, runs,
            page_L=page.statistic,
            page_method=page.method,
            alpha_curve={
                "alpha": list(ALPHAS),
                "estimate": [c.estimate for c in curve],
                "ci_low": [c.low for c in curve],
                "ci_high": [c.high for c in curve],
                "effect_label": f"mean {claim.spec.behaviour_score} score (95% BCa CI over pairs)",
            },
            alpha_transfer={"alpha": list(ALPHAS), "transfer": [t.describe() for t in per_alpha]},
            step_estimates=[s.estimate for s in steps],
            weakest_step={"from_alpha": ALPHAS[weakest], "to_alpha": ALPHAS[weakest + 1]},
            total_transfer_T1_minus_T0=per_alpha[-1].estimate - per_alpha[0].estimate,
        ),
    )
    claim.conclude(result)
