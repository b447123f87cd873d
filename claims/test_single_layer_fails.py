"""Claim single_layer_fails: patching only the late layer's K and V does not transfer recursive behaviour.

Method: as kv_transfer, but the KV patch covers only the model's late layer (all shared positions, α = 1).
T with a 95 % BCa CI over pairs; the rule asks for the upper bound below 0.20. Planned n: the registry.
"""

from __future__ import annotations

import pytest

from harness.claim.context import ClaimContext
from harness.claim.steps import run_conditions, transfer_result
from harness.transfer import KV_SINGLE_LATE, NATURAL_BASELINE, NATURAL_RECURSIVE

pytestmark = pytest.mark.claim("single_layer_fails")


def test_single_layer_fails(claim: ClaimContext) -> None:
    lm = claim.lm
    runs = run_conditions(claim, (NATURAL_BASELINE, NATURAL_RECURSIVE, KV_SINGLE_LATE))
    result = transfer_result(claim, runs, KV_SINGLE_LATE, NATURAL_BASELINE, NATURAL_RECURSIVE,
                             patched_layer=lm.layers.late)
    claim.conclude(result)
