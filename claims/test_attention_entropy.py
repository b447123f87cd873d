"""Claim attention_entropy_differs: mean attention entropy at the late layer differs between recursive and
baseline prompts.

Method: in the same clean prefill that captures V (cached per prompt), a hook on the late layer's attention
module reduces the eager attention probabilities to entropies at once (the probabilities are not kept):
for every query head, H = −Σ_k p_k ln p_k (nats) over the keys the head attends to, averaged over the last W
content-token query positions. Per prompt, the mean over query heads. Effect: Hedges g (recursive −
baseline), 95 % BCa CI resampling prompts within each group, two-sided Welch t; per-head g in the record.
"""

from __future__ import annotations

import numpy as np
import pytest

from harness.claim.context import ClaimContext
from harness.claim.steps import require_groups, run_details
from harness.geometry.prompt_geometry import hedges_contrast, measure_attention_entropy
from harness.stats import hedges_g

pytestmark = pytest.mark.claim("attention_entropy_differs")


def test_attention_entropy_differs(claim: ClaimContext) -> None:
    lm = claim.lm
    groups = require_groups(claim)
    recursive, baseline = groups["recursive"], groups["baseline"]
    late = lm.layers.late
    rec = measure_attention_entropy(lm, recursive, [late], window=claim.settings.window, store=claim.store)
    base = measure_attention_entropy(lm, baseline, [late], window=claim.settings.window, store=claim.store)
    c = hedges_contrast(rec.mean_over_heads(late), base.mean_over_heads(late), alternative="two-sided",
                        level=claim.spec.ci_level, seed=claim.seed)
    heads = range(lm.shape.n_heads)
    result = claim.evaluate(
        estimate=c.estimate, ci_low=c.ci.low, ci_high=c.ci.high, p_value=c.p_value,
        n=min(len(c.first), len(c.second)),
        details=run_details(
            claim, window=claim.settings.window, entropy_layer=late, entropy_units="nats",
            sliding_layer=lm.shape.layer_types[late] == "sliding_attention",
            entropy_by_group={"recursive": c.first.tolist(), "baseline": c.second.tolist()},
            mean_entropy={"recursive": float(np.mean(c.first)), "baseline": float(np.mean(c.second))},
            per_head_g=[hedges_g(rec.head(late, h), base.head(late, h)) for h in heads],
            per_head_mean={"recursive": [float(np.mean(rec.head(late, h))) for h in heads],
                           "baseline": [float(np.mean(base.head(late, h))) for h in heads]},
        ),
    )
    claim.conclude(result)
