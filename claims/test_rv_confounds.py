"""Claims rv_survives_{long_control, repetition, about_recursion}: R_V contraction is not a confound.

Method: as rv_contraction (R_V = PR(V late) / PR(V early) over the last W content tokens, eigenvalue PR,
uncentred, one clean prefill per prompt, shared through the on-disk cache), but the comparison group is a
confound control instead of the factual baselines:

- long_control: long non-recursive prompts (length confound). The recursive side is restricted to levels
  L4–L5, the levels the long controls are length-matched to (registry note); a bank whose recursive prompts
  carry no level uses all of them and says so in the record.
- repetitive: repetitive or nested structure without self-reference (repetition confound).
- about_recursion: third-person talk about recursion without an instruction to observe oneself (topic).

Effect: Hedges g (recursive − control), 95 % BCa CI resampling prompts within each group, one-sided Welch t.
"""

from __future__ import annotations

import pytest

from harness.claim.context import ClaimContext
from harness.claim.steps import capped, require_groups, run_details
from harness.geometry.prompt_geometry import hedges_contrast, measure_rv
from harness.prompts import Prompt

LONG_CONTROL_LEVELS = (4, 5)


def _rv_versus_control(claim: ClaimContext, control: str, recursive: list[Prompt], **notes: object) -> None:
    """Hedges g of R_V, recursive − ``control`` group, judged by the claim's rule."""
    lm, settings = claim.lm, claim.settings
    others = require_groups(claim)[control]
    table = measure_rv(lm, recursive + others, window=settings.window, store=claim.store)
    early, late = lm.layers.early, lm.layers.late
    c = hedges_contrast(
        table.select([p.id for p in recursive]).r_v(early, late), table.select([p.id for p in others]).r_v(early, late),
        alternative="less", level=claim.spec.ci_level, seed=claim.seed,
    )
    claim.conclude(claim.evaluate(
        estimate=c.estimate, ci_low=c.ci.low, ci_high=c.ci.high, p_value=c.p_value,
        n=min(len(c.first), len(c.second)),
        details=run_details(
            claim, pr_kind="eigen", centered=False, window=settings.window,
            rv_by_group={"recursive": c.first.tolist(), control: c.second.tolist()},
            mean_rv={"recursive": float(c.first.mean()), control: float(c.second.mean())},
            n_by_group={"recursive": len(c.first), control: len(c.second)},
            **notes,
        ),
    ))


@pytest.mark.claim("rv_survives_long_control")
def test_rv_survives_long_control(claim: ClaimContext) -> None:
    recursive = require_groups(claim, cap=False)["recursive"]
    if any(p.level for p in recursive):
        recursive, side = [p for p in recursive if p.level in LONG_CONTROL_LEVELS], "levels L4–L5"
    else:
        side = "all recursive prompts (the bank's recursive prompts carry no level)"
    _rv_versus_control(claim, "long_control", capped(recursive, claim.settings.n_cap), recursive_side=side)


@pytest.mark.claim("rv_survives_repetition")
def test_rv_survives_repetition(claim: ClaimContext) -> None:
    _rv_versus_control(claim, "repetitive", require_groups(claim)["recursive"])


@pytest.mark.claim("rv_survives_about_recursion")
def test_rv_survives_about_recursion(claim: ClaimContext) -> None:
    _rv_versus_control(claim, "about_recursion", require_groups(claim)["recursive"])
