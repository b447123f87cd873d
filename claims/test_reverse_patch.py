"""Claim reverse_patch_necessity: a baseline donor's cache removes the recursive recipient's behaviour, more than a
same-length recursive donor's cache or random KV does.

Method: for each exact-length pair (recursive A, baseline B) that has another recursive prompt A' of A's token
length, decode A from a copy of its cache whose K and V over the patch layers (second half) and all shared positions
are B's (A⊕B, α = 1), A'’s (A⊕A') or Gaussian with B's norm per layer, KV head and position (A⊕R); also A and B
naturally. T_rev = (mean s(A⊕B) − mean s(A)) / (mean s(B) − mean s(A)), 95 % BCa CI over pairs; p: one-sided paired
Wilcoxon, s(A⊕B) < s(A). Contrasts C_X = (mean s(A⊕X) − mean s(A⊕B)) / (mean s(A) − mean s(B)) for X ∈ {A', R},
each with a 95 % BCa paired cluster bootstrap CI; the rule needs both above 0. Rule and planned n: the registry entry.
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
)

pytestmark = pytest.mark.claim("reverse_patch_necessity")

CONTRASTS: dict[str, Condition] = {"recursive_donor": REVERSE_RECURSIVE_DONOR, "random_kv": REVERSE_RANDOM}
"""The registered contrasts (names as in the registry's contrasts_above criterion) and their conditions."""


def test_reverse_patch_necessity(claim: ClaimContext) -> None:
    runs = run_conditions(claim, (NATURAL_BASELINE, NATURAL_RECURSIVE, REVERSE, *CONTRASTS.values()), roles=(PairRole.RECURSIVE, PairRole.BASELINE, PairRole.OTHER_RECURSIVE))
    p, p_note = paired_p(runs[REVERSE.name].scores(), runs[NATURAL_RECURSIVE.name].scores(), "less")
    result = transfer_result(claim, runs, REVERSE, NATURAL_RECURSIVE, NATURAL_BASELINE, p_value=p, p_note=p_note,
                             contrasts=CONTRASTS)
    claim.conclude(result)
