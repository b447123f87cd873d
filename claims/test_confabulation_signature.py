"""Claim confabulation_signature: R_V of the prompt's V cache differs between grounded-fact prompts and matched
confabulation-inducing prompts at equal token length and word frequency.

Method: the bank's grounded/confabulation pairs (each confabulation prompt names its grounded counterpart). For
every prompt, R_V = PR(V late) / PR(V early) over the last W content tokens of one clean prefill (eigenvalue PR,
uncentred; the measurement store shared with rv_contraction), its content-token count under the model's tokenizer
and its mean word Zipf frequency (wordfreq). Effect (version 2): g, the paired confabulation − grounded R_V
difference as designed, in pooled within-group SD units; 90% BCa bootstrap CI resampling pairs; two-sided paired t
(:func:`harness.exchange.confabulation.paired_contrast`). Beside it: the mean length and frequency differences the
invented entities bring, and g_adj at equal length and frequency (a sensitivity analysis that adjusts away part of
the manipulation). Decision rule and planned n: the registry entry (PASS: the difference is significant; FAIL: TOST
equivalence within ±0.5).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from harness.claim.context import ClaimContext
from harness.claim.steps import require_groups, run_details
from harness.exchange.confabulation import (
    DegenerateDesignError,
    PairCovariates,
    adjusted_contrast,
    adjusted_hedges_g,
    mean_word_zipf,
    paired_contrast,
    residual_hedges_g,
)
from harness.geometry.prompt_geometry import measure_rv
from harness.prompts import Prompt
from harness.prompts.bank import content_token_count
from harness.stats import paired_dz

pytestmark = pytest.mark.claim("confabulation_signature")


def _pairs(claim: ClaimContext) -> list[tuple[Prompt, Prompt]]:
    """(grounded, confabulation) prompt pairs of the bank, in pair-id order, capped at ``--n``."""
    require_groups(claim, cap=False)
    by_id = {p.id: p for p in claim.bank.prompts}
    pairs = [(by_id[p.first], by_id[p.second]) for p in claim.bank.pairs("grounded_confabulation")]
    if claim.settings.n_cap:
        pairs = pairs[: claim.settings.n_cap]
    if len(pairs) < 4:
        pytest.skip(f"{claim.spec.id}: {len(pairs)} grounded/confabulation pair(s) in the bank; the adjusted "
                    "difference needs at least 4")
    return pairs


def _covariates(claim: ClaimContext, prompts: list[Prompt]) -> PairCovariates:
    return PairCovariates.of([content_token_count(p.text, claim.lm.tokenizer) for p in prompts],
                             [mean_word_zipf(p.text) for p in prompts])


def test_confabulation_signature(claim: ClaimContext) -> None:
    lm = claim.lm
    pairs = _pairs(claim)
    grounded, confab = [g for g, _ in pairs], [c for _, c in pairs]
    table = measure_rv(lm, grounded + confab, window=claim.settings.window, store=claim.store)
    early, late = lm.layers.early, lm.layers.late
    cov_c, cov_g = _covariates(claim, confab), _covariates(claim, grounded)

    def values(prompts: list[Prompt], what: str) -> np.ndarray:
        sub = table.select([p.id for p in prompts])
        if what == "r_v":
            return np.asarray(sub.r_v(early, late), dtype=np.float64)
        return np.asarray(sub.pr["eigen"][late if what == "pr_late" else early], dtype=np.float64)

    rv_c, rv_g = values(confab, "r_v"), values(grounded, "r_v")
    details: dict[str, Any] = {
        "window": claim.settings.window, "pr_kind": "eigen", "centered": False,
        "pairs": [[g.id, c.id] for g, c in pairs],
        "rv_by_group": {"grounded": rv_g.tolist(), "confabulation": rv_c.tolist()},
        "covariates": {"tokens": {"grounded": cov_g.tokens.tolist(), "confabulation": cov_c.tokens.tolist()},
                       "mean_word_zipf": {"grounded": cov_g.zipf.tolist(), "confabulation": cov_c.zipf.tolist()}},
        "frequency_source": "wordfreq English word Zipf frequency (log10 per billion words), mean over words",
    }
    try:
        c = paired_contrast(rv_c, rv_g, level=claim.spec.ci_level or 0.90, seed=claim.seed)
    except DegenerateDesignError as exc:
        claim.conclude(claim.evaluate(estimate=None, n=len(pairs), undefined_reason=str(exc),
                                      details=run_details(claim, **details)))
        return
    details |= {
        "paired_difference_rv": c.mean_difference,
        "unadjusted_paired_dz": paired_dz(rv_c, rv_g),
        "mean_rv": {"grounded": float(rv_g.mean()), "confabulation": float(rv_c.mean())},
        "manipulation_side_effects": {
            "mean_delta_tokens": float(np.mean(cov_c.tokens - cov_g.tokens)),
            "mean_delta_word_zipf": float(np.mean(cov_c.zipf - cov_g.zipf)),
        },
    }
    try:
        adjusted = adjusted_contrast(rv_c, rv_g, cov_c, cov_g, level=claim.spec.ci_level or 0.90, seed=claim.seed)
        details |= {
            "sensitivity_adjusted_hedges_g": {
                "estimate": adjusted.estimate, "ci_low": adjusted.ci.low, "ci_high": adjusted.ci.high,
                "p_value": adjusted.p_value, "adjusted_difference_rv": adjusted.difference.beta,
                "slopes": {"rv_per_token": adjusted.difference.slope_tokens,
                           "rv_per_zipf": adjusted.difference.slope_zipf},
                "reads": "the difference extrapolated to equal length and frequency; adjusts away part of the "
                         "manipulation (invented names are what add tokens and lower frequency)",
            },
            "adjusted_hedges_g_other_statistics": {
                what: adjusted_hedges_g(values(confab, what), values(grounded, what), cov_c, cov_g)
                for what in ("pr_late", "pr_early")
            },
            "residual_hedges_g_pooled_no_group_term": residual_hedges_g(rv_c, rv_g, cov_c, cov_g),
        }
    except DegenerateDesignError as exc:
        details["sensitivity_adjusted_hedges_g"] = {"undefined": str(exc)}
    result = claim.evaluate(estimate=c.estimate, ci_low=c.ci.low, ci_high=c.ci.high, p_value=c.p_value,
                            n=c.n_pairs, details=run_details(claim, **details))
    claim.conclude(result)
