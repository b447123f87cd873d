"""Claim rv_contraction: recursive self-observation prompts have lower R_V than baseline factual prompts.

Method: for every recursive and baseline prompt, capture V (v_proj output) over the last W content tokens
in one clean prefill; R_V = PR(V at the late layer) / PR(V at the early layer), eigenvalue PR, uncentred.
Effect: Hedges g (recursive − baseline), 95 % BCa bootstrap CI resampling prompts within each group,
one-sided Welch t. Decision rule and planned n: the registry entry.
"""

from __future__ import annotations

import numpy as np
import pytest

from harness.claim_support import require_groups, run_details
from harness.claims_registry import get_claim
from harness.geometry import measure_rv
from harness.results import Verdict, evaluate, record_claim
from harness.seeds import derive_seed
from harness.stats import bootstrap_ci, hedges_g, welch_t

CLAIM = get_claim("rv_contraction")
pytestmark = pytest.mark.claim(CLAIM.id)


def test_rv_contraction(lm, prompt_bank, run_settings, measurement_cache, record_property) -> None:
    groups = require_groups(prompt_bank, CLAIM, run_settings.n_cap)
    recursive, baseline = groups["recursive"], groups["baseline"]
    table = measure_rv(lm, recursive + baseline, window=run_settings.window, cache=measurement_cache)
    rv = np.asarray(table.r_v(lm.layers.early, lm.layers.late))
    rv_rec, rv_base = rv[: len(recursive)], rv[len(recursive) :]

    g = hedges_g(rv_rec, rv_base)
    ci = bootstrap_ci(
        hedges_g, rv_rec, rv_base, level=CLAIM.ci_level, rng=derive_seed(run_settings.seed, CLAIM.id, lm.name)
    )
    p = welch_t(rv_rec, rv_base, alternative="less").p
    result = evaluate(
        CLAIM,
        model=lm.name,
        estimate=g,
        ci_low=ci.low,
        ci_high=ci.high,
        p_value=p,
        n=min(len(rv_rec), len(rv_base)),
        details=run_details(
            lm,
            prompt_bank,
            pr_kind="eigen",
            centered=False,
            window=run_settings.window,
            rv_by_group={"recursive": rv_rec.tolist(), "baseline": rv_base.tolist()},
            mean_rv={"recursive": float(rv_rec.mean()), "baseline": float(rv_base.mean())},
            centered_rv_mean={
                name: float(np.mean(table.select([p.id for p in prompts]).r_v(lm.layers.early, lm.layers.late, centered=True)))
                for name, prompts in groups.items()
            },
        ),
    )
    record_claim(record_property, result)
    assert result.verdict is Verdict.PASS, result.explanation
