"""Claims level_behaviour_trend and donor_level_transfer_trend: behaviour across recursion levels L1…L5.

- level_behaviour_trend: the recursive prompts of the first planned-n exact-length pairs (the unmatched variant on
  a bank with too few, ``harness.claim.steps.claim_pairs``) that carry a level
  (pair order interleaves levels, so every level is equally represented), each decoded naturally under the
  registered regime (the natural A continuations the transfer claims share). v2: partial Spearman ρ(level,
  behaviour score | prompt length in tokens) — the bank's higher levels are longer prompts, so a plain ρ could
  be a length effect; 95 % BCa CI resampling prompts; p: t-test, one-sided (ρ > 0, n − 3 df). The plain ρ is
  reported beside it.
- donor_level_transfer_trend: blocks are baseline recipients B; each gets five second-half KV patches
  (α = 1, all prompt positions), one from a donor of each level L1…L5
  (``harness.prompts.pairing.donor_level_blocks``). No recursive prompt set has every level at a baseline's
  exact length, so each donor is at least as long as B and the patch copies the donor's first n − 1 tokens
  (the shared-prefix alignment of DESIGN §4.3); the donor of B's own pair level is B's exact-length partner,
  the others rotate over the eligible prompts of their level. Estimate: the mean over blocks of the
  within-block Spearman ρ(level, score) — a block whose five scores are all equal shows no ordering and gets
  ρ = 0 (their count is reported); 95 % BCa CI over blocks; p: Page's L over blocks × levels (increasing).
  The share of each donor's tokens that the patch uses is reported per level.

Rules and planned n: the registry entries.
"""

from __future__ import annotations

import numpy as np
import pytest

from harness.claim.context import ClaimContext
from harness.claim.steps import (
    behaviour_details,
    claim_pairs,
    planned_count,
    require_groups,
    run_conditions,
    run_on_pairs,
)
from harness.prompts import LEVELS
from harness.prompts.pairing import donor_level_blocks
from harness.stats import bootstrap_ci, page_trend, partial_rank_correlation, rank_correlation, spearman
from harness.transfer import KV_MAIN, NATURAL_RECURSIVE


@pytest.mark.claim("level_behaviour_trend")
def test_level_behaviour_trend(claim: ClaimContext) -> None:
    spec = claim.spec
    require_groups(claim)
    selection = claim_pairs(claim, keep=lambda p: p.recursive.level is not None)
    pairs = selection.pairs
    if len(pairs) < 3:
        pytest.skip(f"{spec.id}: {len(pairs)} recursive prompt(s) with a level in exact-length pairs; need 3")
    runs = run_conditions(claim, (NATURAL_RECURSIVE,), selection=selection)
    levels = [p.recursive.level for p in pairs]
    scores = runs[NATURAL_RECURSIVE.name].scores()
    lengths = [len(p.recursive_ids) for p in pairs]
    corr = partial_rank_correlation(levels, scores, lengths, alternative="greater", level=spec.ci_level,
                                    rng=claim.seed)
    plain = rank_correlation(levels, scores, alternative="greater", level=spec.ci_level, rng=claim.seed)
    result = claim.evaluate(
        estimate=corr.rho, ci_low=corr.ci_low, ci_high=corr.ci_high, p_value=corr.p_value,
        n=len(pairs), undefined_reason=corr.undefined_reason,
        details=behaviour_details(
            claim, runs,
            mean_score_by_level={str(level): float(np.mean([s for lv, s in zip(levels, scores) if lv == level]))
                                 for level in sorted(set(levels))},
            prompts_by_level={str(level): levels.count(level) for level in sorted(set(levels))},
            mean_tokens_by_level={str(level): float(np.mean([n for lv, n in zip(levels, lengths) if lv == level]))
                                  for level in sorted(set(levels))},
            covariate="prompt length in tokens (the model's tokenizer)",
            plain_spearman={"rho": plain.rho, "ci": [plain.ci_low, plain.ci_high], "p": plain.p_value},
        ),
    )
    claim.conclude(result)


def _block_rho(scores: np.ndarray) -> float:
    """Spearman ρ(level, score) within one block; 0 when the block's scores are all equal (no ordering)."""
    if np.all(scores == scores[0]):
        return 0.0
    return spearman(np.asarray(LEVELS, dtype=np.float64), scores).statistic


@pytest.mark.claim("donor_level_transfer_trend")
def test_donor_level_transfer_trend(claim: ClaimContext) -> None:
    lm = claim.lm
    spec = claim.spec
    require_groups(claim)
    blocks, qualified = donor_level_blocks(lm, claim.bank, planned_count(claim))
    if len(blocks) < 2:
        pytest.skip(f"{spec.id}: {len(blocks)} baseline recipient(s) in exact-length pairs have a donor of every "
                    "level L1–L5 at least as long as themselves; need 2")
    runs = {
        f"donor_L{level}": run_on_pairs(claim, [b.pairs[i] for b in blocks], (KV_MAIN,))[KV_MAIN.name]
        for i, level in enumerate(LEVELS)
    }
    scores = np.column_stack([runs[f"donor_L{level}"].scores() for level in LEVELS])
    rhos = np.asarray([_block_rho(row) for row in scores])
    page = page_trend(scores)
    ci = bootstrap_ci(np.mean, rhos, level=spec.ci_level, rng=claim.seed)
    result = claim.evaluate(
        estimate=float(rhos.mean()), ci_low=ci.low, ci_high=ci.high, p_value=page.p_value,
        n=len(blocks),
        details=behaviour_details(
            claim, runs,
            qualified_baselines=qualified,
            blocks=[{"baseline": b.baseline.id, "donors": [p.recursive.id for p in b.pairs],
                     "pair_ids": [p.id for p in b.pairs]} for b in blocks],
            used_donor_fraction_by_level={f"L{level}": float(np.mean([b.used_fraction[i] for b in blocks]))
                                          for i, level in enumerate(LEVELS)},
            mean_score_by_level={f"L{level}": float(scores[:, i].mean()) for i, level in enumerate(LEVELS)},
            block_rho=rhos.tolist(),
            constant_blocks=int(sum(np.all(row == row[0]) for row in scores)),
            page_L=page.statistic,
            page_method=page.method,
        ),
    )
    claim.conclude(result)
