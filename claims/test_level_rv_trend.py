"""Claim level_rv_trend: R_V falls as the recursion level of the prompt rises from L1 to L5.

Method: R_V of every recursive prompt (PR(V late) / PR(V early), last W content tokens, eigenvalue PR,
uncentred; the same cached prefill as rv_contraction). Effect (v2): partial Spearman ρ(level, R_V | prompt
length in tokens) over recursive prompts — the bank's L4–L5 prompts are longer than its L1–L3 ones, so a plain ρ
could be a length effect; 95 % BCa bootstrap CI resampling prompts (level, R_V and length together); one-sided
t-test p (ρ < 0, n − 3 df). The plain Spearman ρ is reported beside it. Fewer than two distinct levels, or levels
fully determined by length, leave ρ undefined (INCONCLUSIVE, with the reason).
"""

from __future__ import annotations

import numpy as np
import pytest

from harness.claim.context import ClaimContext
from harness.claim.steps import require_groups, run_details
from harness.engine.tokens import encode
from harness.geometry.prompt_geometry import measure_rv
from harness.stats import partial_rank_correlation, rank_correlation

pytestmark = pytest.mark.claim("level_rv_trend")


def test_level_rv_trend(claim: ClaimContext) -> None:
    lm = claim.lm
    recursive = [p for p in require_groups(claim)["recursive"] if p.level]
    table = measure_rv(lm, recursive, window=claim.settings.window, store=claim.store)
    rv = np.asarray(table.r_v(lm.layers.early, lm.layers.late))
    levels = np.asarray([p.level for p in recursive], dtype=np.float64)
    lengths = np.asarray([len(encode(lm.tokenizer, p.text)) for p in recursive], dtype=np.float64)
    by_level = {f"L{lv}": rv[levels == lv].tolist() for lv in sorted(set(levels.astype(int)))}
    details = run_details(claim, pr_kind="eigen", centered=False, window=claim.settings.window,
                          rv_by_group=by_level, mean_rv_by_level={k: float(np.mean(v)) for k, v in by_level.items()},
                          mean_tokens_by_level={f"L{lv}": float(lengths[levels == lv].mean())
                                                for lv in sorted(set(levels.astype(int)))},
                          covariate="prompt length in tokens (the model's tokenizer)")

    if len(by_level) < 2:
        result = claim.evaluate(
            estimate=None, n=len(rv), details=details,
            undefined_reason=f"the selected recursive prompts span {len(by_level)} level(s); ρ needs two or more")
    else:
        level = claim.spec.ci_level
        partial = partial_rank_correlation(levels, rv, lengths, alternative="less", level=level, rng=claim.seed)
        plain = rank_correlation(levels, rv, alternative="less", level=level, rng=claim.seed)
        details["plain_spearman"] = {"rho": plain.rho, "ci": [plain.ci_low, plain.ci_high], "p": plain.p_value}
        result = claim.evaluate(
            estimate=partial.rho, ci_low=partial.ci_low, ci_high=partial.ci_high, p_value=partial.p_value,
            n=partial.n, undefined_reason=partial.undefined_reason, details=details)
    claim.conclude(result)
