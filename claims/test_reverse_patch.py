"""Claim reverse_patch_necessity: a baseline donor's cache removes the recursive recipient's behaviour.

Method: for each exact-length pair, decode the recursive prompt A from a copy of its cache whose K and V
over the patch layers (second half) and all shared positions are the baseline B's (α = 1); also A and B
naturally. T_rev = (mean s(A⊕B) − mean s(A)) / (mean s(B) − mean s(A)), 95 % BCa CI over pairs;
p: one-sided paired Wilcoxon, s(A⊕B) < s(A). Rule and planned n: the registry entry.
"""

from __future__ import annotations

import pytest

from harness.claim_context import ClaimContext
from harness.claim_support import claim_pairs, paired_p, pairing_details, run_conditions, transfer_result
from harness.transfer import NATURAL_BASELINE, NATURAL_RECURSIVE, REVERSE

pytestmark = pytest.mark.claim("reverse_patch_necessity")


def test_reverse_patch_necessity(claim: ClaimContext) -> None:
    selection = claim_pairs(claim)
    pairs = selection.pairs
    runs = run_conditions(claim, pairs, (NATURAL_BASELINE, NATURAL_RECURSIVE, REVERSE))
    p, p_note = paired_p(runs[REVERSE.name].scores(), runs[NATURAL_RECURSIVE.name].scores(), "less")
    result = transfer_result(claim, runs, REVERSE, NATURAL_RECURSIVE, NATURAL_BASELINE, p_value=p, p_note=p_note,
                             pairing=pairing_details(selection))
    claim.conclude(result)
