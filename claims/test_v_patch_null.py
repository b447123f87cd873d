"""Claim v_patch_null: patching V at the late layer, persistently during decoding, transfers no behaviour.

Method: for each exact-length pair (recursive A, baseline B), decode B with its late layer's ``v_proj``
output replaced by A's at every aligned prompt position and, on every decode step, by A's last-token V
(the hook fires on decode steps, ``harness.engine.interventions``); also A and B naturally. T as in kv_transfer;
equivalence by TOST: the 90 % BCa CI over pairs must lie inside ±0.10. Rule and planned n: the registry.
"""

from __future__ import annotations

import pytest

from harness.claim.context import ClaimContext
from harness.claim.steps import run_conditions, transfer_result
from harness.transfer import NATURAL_BASELINE, NATURAL_RECURSIVE, V_PATCH_LATE

pytestmark = pytest.mark.claim("v_patch_null")


def test_v_patch_null(claim: ClaimContext) -> None:
    lm = claim.lm
    runs = run_conditions(claim, (NATURAL_BASELINE, NATURAL_RECURSIVE, V_PATCH_LATE))
    decode_changes = [o.intervention_counts["decode"] for o in runs[V_PATCH_LATE.name].outcomes]
    result = transfer_result(claim, runs, V_PATCH_LATE, NATURAL_BASELINE, NATURAL_RECURSIVE, v_patch_layer=lm.layers.late,
                             v_patch_decode_elements_changed_min=min(decode_changes))
    claim.conclude(result)
