"""User claim mid_stack_rv_contraction (declared in mid_stack_rv.claim.yaml beside this file): recursive prompts
have lower R_V at the middle of the stack than baseline prompts. Thin like the built-in claims: pick the prompts,
measure with the harness, evaluate against the registered rule, conclude."""

from __future__ import annotations

import pytest

from harness.claim.context import ClaimContext
from harness.claim.steps import require_groups, run_details
from harness.geometry.prompt_geometry import hedges_contrast, measure_rv

pytestmark = pytest.mark.claim("mid_stack_rv_contraction")


def test_mid_stack_rv_contraction(claim: ClaimContext) -> None:
    lm = claim.lm
    groups = require_groups(claim)
    recursive, baseline = groups["recursive"], groups["baseline"]
    early, mid = lm.layers.early, lm.shape.n_layers // 2
    table = measure_rv(lm, recursive + baseline, layers=[early, mid], window=claim.settings.window, store=claim.store)
    contrast = hedges_contrast(
        table.select([p.id for p in recursive]).r_v(early, mid), table.select([p.id for p in baseline]).r_v(early, mid),
        alternative="less", level=claim.spec.ci_level, seed=claim.seed,
    )
    result = claim.evaluate(
        estimate=contrast.estimate, ci_low=contrast.ci.low, ci_high=contrast.ci.high, p_value=contrast.p_value,
        n=min(len(contrast.first), len(contrast.second)),
        details=run_details(claim, mid_layer=mid, mean_rv={"recursive": float(contrast.first.mean()),
                                                           "baseline": float(contrast.second.mean())}),
    )
    claim.conclude(result)
