"""Claim reverse_patch_necessity: a baseline donor's cache removes the recursive recipient's behaviour.

Method: for each exact-length pair, decode the recursive prompt A from a copy of its cache whose K and V
over the patch layers (second half) and all shared positions are the baseline B's (α = 1); also A and B
naturally. T_rev = (mean s(A⊕B) − mean s(A)) / (mean s(B) − mean s(A)), 95 % BCa CI over pairs;
p: one-sided paired Wilcoxon, s(A⊕B) < s(A). Rule and planned n: the registry entry.
"""

from __future__ import annotations

import pytest

from harness.claim_support import behaviour_pairs, paired_p, run_conditions, transfer_result
from harness.registry import get_claim
from harness.results import assert_pass, record_claim
from harness.transfer import NATURAL_BASELINE, NATURAL_RECURSIVE, REVERSE

CLAIM = get_claim("reverse_patch_necessity")
pytestmark = pytest.mark.claim(CLAIM.id)


def test_reverse_patch_necessity(lm, prompt_bank, run_settings, measurement_cache, record_property) -> None:
    pairs = behaviour_pairs(lm, prompt_bank, CLAIM, run_settings.n_cap)
    runs = run_conditions(lm, pairs, CLAIM, (NATURAL_BASELINE, NATURAL_RECURSIVE, REVERSE), run_settings,
                          measurement_cache)
    p, p_note = paired_p(runs[REVERSE.name].scores(), runs[NATURAL_RECURSIVE.name].scores(), "less")
    result = transfer_result(CLAIM, lm, prompt_bank, runs, REVERSE, NATURAL_RECURSIVE, NATURAL_BASELINE,
                             seed=run_settings.seed, p_value=p, p_note=p_note)
    record_claim(record_property, result)
    assert_pass(result)
