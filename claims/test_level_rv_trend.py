"""Claim level_rv_trend: R_V falls as the recursion level of the prompt rises from L1 to L5.

Method: R_V of every recursive prompt (PR(V late) / PR(V early), last W content tokens, eigenvalue PR,
uncentred; the same cached prefill as rv_contraction). Effect: Spearman ρ between level (1–5) and R_V over
recursive prompts; 95 % BCa bootstrap CI resampling prompts (level and R_V together); one-sided Spearman p
(ρ < 0). Fewer than two distinct levels leaves ρ undefined (INCONCLUSIVE, with the reason).
"""

from __future__ import annotations

import numpy as np
import pytest

from harness.claim_context import ClaimContext
from harness.claim_support import require_groups, run_details
from harness.geometry.prompt_geometry import measure_rv
from harness.stats import bootstrap_ci, spearman

pytestmark = pytest.mark.claim("level_rv_trend")


def _rho(levels: np.ndarray, rv: np.ndarray) -> float:
    """Spearman ρ (a resample with a constant column has none; the bootstrap then reports no interval)."""
    return spearman(levels, rv).statistic


def test_level_rv_trend(claim: ClaimContext) -> None:
    lm = claim.lm
    recursive = [p for p in require_groups(claim)["recursive"] if p.level]
    table = measure_rv(lm, recursive, window=claim.settings.window, cache=claim.cache)
    rv = np.asarray(table.r_v(lm.layers.early, lm.layers.late))
    levels = np.asarray([p.level for p in recursive], dtype=np.float64)
    by_level = {f"L{lv}": rv[levels == lv].tolist() for lv in sorted(set(levels.astype(int)))}
    details = run_details(claim, pr_kind="eigen", centered=False, window=claim.settings.window,
                          rv_by_group=by_level, mean_rv_by_level={k: float(np.mean(v)) for k, v in by_level.items()})

    if len(by_level) < 2:
        result = claim.evaluate(
            estimate=None, n=len(rv), details=details,
                          undefined_reason=f"the selected recursive prompts span {len(by_level)} level(s); ρ needs two or more")
    else:
        ci = bootstrap_ci(_rho, levels, rv, paired=True, level=claim.spec.ci_level,
                          rng=claim.seed)
        test = spearman(levels, rv, alternative="less")
        result = claim.evaluate(
            estimate=test.statistic, ci_low=ci.low, ci_high=ci.high,
                          p_value=test.p_value, n=len(rv), details=details)
    claim.conclude(result)
