"""Claim reverse_patch_necessity: a baseline donor's cache removes the recursive recipient's behaviour, more than a
same-length recursive donor's cache does.

Method: for each exact-length pair (recursive A, baseline B) that has another recursive prompt A' of A's token
length, decode A from a copy of its cache whose K and V over the patch layers (second half) and all shared positions
are B's (A⊕B, α = 1), A'’s (A⊕A') or Gaussian with B's norm per layer, KV head and position (A⊕R); also A and B
naturally. T_rev = (mean s(A⊕B) − mean s(A)) / (mean s(B) − mean s(A)), 95 % BCa CI over pairs; p: one-sided paired
Wilcoxon, s(A⊕B) < s(A). Contrast C_X = (mean s(A⊕X) − mean s(A⊕B)) / (mean s(A) − mean s(B)) for X = A', with a
95 % BCa paired cluster bootstrap CI; the rule needs it above 0. A' is the disruption-matched control: a fluent
foreign cache of the same length. X = R (random K/V) is reported beside, never deciding (version 5): its gibberish
scores near 0, below any fluent continuation, so a rule that needed A⊕B to beat it could never PASS. Each patched
condition's first-step disruption, KL(natural A ‖ patched) in nats, is in the details. Rule and planned n: the
registry entry.
"""

from __future__ import annotations

import pytest

from harness.claim.context import ClaimContext
from harness.claim.steps import paired_p, run_conditions, transfer_result
from harness.prompts.pairing import PairRole
from harness.transfer import (
    NATURAL_BASELINE,
    NATURAL_RECURSIVE,
    REVERSE,
    REVERSE_RANDOM,
    REVERSE_RECURSIVE_DONOR,
    Condition,
    first_step_kl,
    kl_summary,
)

pytestmark = pytest.mark.claim("reverse_patch_necessity")

CONTRASTS: dict[str, Condition] = {"recursive_donor": REVERSE_RECURSIVE_DONOR}
"""The registered contrast (name as in the registry's contrasts_above criterion) and its condition."""
REPORTED: dict[str, Condition] = {"random_kv": REVERSE_RANDOM}
"""Contrasts reported beside the rule, never deciding."""


def test_reverse_patch_necessity(claim: ClaimContext) -> None:
    patched = (REVERSE, *CONTRASTS.values(), *REPORTED.values())
    runs = run_conditions(claim, (NATURAL_BASELINE, NATURAL_RECURSIVE, *patched),
                          roles=(PairRole.RECURSIVE, PairRole.BASELINE, PairRole.OTHER_RECURSIVE))
    p, p_note = paired_p(runs[REVERSE.name].scores(), runs[NATURAL_RECURSIVE.name].scores(), "less")
    disruption = {c.name: kl_summary(first_step_kl(claim.lm, runs.pairs, c, run_seed=claim.settings.seed,
                                                   store=claim.store)) for c in patched}
    result = transfer_result(claim, runs, REVERSE, NATURAL_RECURSIVE, NATURAL_BASELINE, p_value=p, p_note=p_note,
                             contrasts=CONTRASTS, reported_contrasts=REPORTED, disruption_first_step_kl=disruption)
    claim.conclude(result)
