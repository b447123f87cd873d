"""Claim single_layer_fails: patching only the late layer's K and V does not transfer recursive behaviour.

Method: as kv_transfer, but the KV patch covers only the model's late layer (all shared positions, α = 1).
T with a 95 % BCa CI over pairs; the rule asks for the upper bound below 0.20. Planned n: the registry.
"""

from __future__ import annotations

import pytest

from harness.claim_support import behaviour_pairs, run_conditions, transfer_result
from harness.registry import get_claim
from harness.results import assert_pass, record_claim
from harness.transfer import KV_SINGLE_LATE, NATURAL_BASELINE, NATURAL_RECURSIVE

CLAIM = get_claim("single_layer_fails")
pytestmark = pytest.mark.claim(CLAIM.id)


def test_single_layer_fails(lm, prompt_bank, run_settings, measurement_cache, record_property) -> None:
    pairs = behaviour_pairs(lm, prompt_bank, CLAIM, run_settings.n_cap)
    runs = run_conditions(lm, pairs, CLAIM, (NATURAL_BASELINE, NATURAL_RECURSIVE, KV_SINGLE_LATE), run_settings,
                          measurement_cache)
    result = transfer_result(CLAIM, lm, prompt_bank, runs, KV_SINGLE_LATE, NATURAL_BASELINE, NATURAL_RECURSIVE,
                             seed=run_settings.seed, patched_layer=lm.layers.late)
    record_claim(record_property, result)
    assert_pass(result)
