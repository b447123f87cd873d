"""Claim rv_contraction: recursive self-observation prompts have lower R_V than baseline factual prompts.

Method: for every recursive and baseline prompt, capture V (v_proj output) over the last W content tokens
in one clean prefill; R_V = PR(V at the late layer) / PR(V at the early layer), eigenvalue PR, uncentred.
Effect: Hedges g (recursive − baseline), 95 % BCa bootstrap CI resampling prompts within each group,
one-sided Welch t. Decision rule and planned n: the registry entry.

Layer sweep (reported, never decides): the same g and CI with the early layer fixed and the late layer
swept over every later layer, from the same capture; the verdict stays on the pre-registered late layer.
"""

from __future__ import annotations

import numpy as np
import pytest

from harness.claim.context import ClaimContext
from harness.claim.steps import require_groups, run_details
from harness.geometry.prompt_geometry import hedges_contrast, measure_rv, rv_layer_sweep

pytestmark = pytest.mark.claim("rv_contraction")


def test_rv_contraction(claim: ClaimContext) -> None:
    lm = claim.lm
    groups = require_groups(claim)
    recursive, baseline = groups["recursive"], groups["baseline"]
    table = measure_rv(lm, recursive + baseline, window=claim.settings.window, store=claim.store)
    early, late = lm.layers.early, lm.layers.late
    rec_ids, base_ids = [p.id for p in recursive], [p.id for p in baseline]
    seed = claim.seed

    c = hedges_contrast(
        table.select(rec_ids).r_v(early, late), table.select(base_ids).r_v(early, late),
        alternative="less", level=claim.spec.ci_level, seed=seed,
    )
    sweep = rv_layer_sweep(
        table, rec_ids, base_ids, early=early, fixed_late=late, n_layers=lm.shape.n_layers,
        level=claim.spec.ci_level, seed=seed,
    )
    result = claim.evaluate(
        estimate=c.estimate,
        ci_low=c.ci.low,
        ci_high=c.ci.high,
        p_value=c.p_value,
        n=min(len(c.first), len(c.second)),
        details=run_details(
            claim, pr_kind="eigen",
            centered=False,
            window=claim.settings.window,
            rv_by_group={"recursive": c.first.tolist(), "baseline": c.second.tolist()},
            mean_rv={"recursive": float(c.first.mean()), "baseline": float(c.second.mean())},
            centered_rv_mean={
                name: float(np.mean(table.select([p.id for p in prompts]).r_v(early, late, centered=True)))
                for name, prompts in groups.items()
            },
            layer_sweep=sweep,
        ),
    )
    claim.conclude(result)
