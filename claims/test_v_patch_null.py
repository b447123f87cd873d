"""Claim v_patch_null: patching V at the late layer, persistently during decoding, transfers no behaviour.

Method: for each exact-length pair (recursive A, baseline B), decode B with its late layer's ``v_proj``
output replaced by A's at every aligned prompt position and, on every decode step, by A's last-token V
(the hook fires on decode steps, ``harness.interventions``); also A and B naturally. T as in kv_transfer;
equivalence by TOST: the 90 % BCa CI over pairs must lie inside ±0.10. Rule and planned n: the registry.
"""

from __future__ import annotations

import pytest

from harness.claim_support import behaviour_pairs, run_conditions, transfer_result
from harness.registry import get_claim
from harness.results import assert_pass, record_claim
from harness.transfer import NATURAL_BASELINE, NATURAL_RECURSIVE, V_PATCH_LATE

CLAIM = get_claim("v_patch_null")
pytestmark = pytest.mark.claim(CLAIM.id)


def test_v_patch_null(lm, prompt_bank, run_settings, measurement_cache, record_property) -> None:
    pairs = behaviour_pairs(lm, prompt_bank, CLAIM, run_settings.n_cap)
    runs = run_conditions(lm, pairs, CLAIM, (NATURAL_BASELINE, NATURAL_RECURSIVE, V_PATCH_LATE), run_settings,
                          measurement_cache)
    decode_changes = [o.intervention_counts["decode"] for o in runs[V_PATCH_LATE.name].outcomes]
    result = transfer_result(CLAIM, lm, prompt_bank, runs, V_PATCH_LATE, NATURAL_BASELINE, NATURAL_RECURSIVE,
                             seed=run_settings.seed, v_patch_layer=lm.layers.late,
                             v_patch_decode_elements_changed_min=min(decode_changes))
    record_claim(record_property, result)
    assert_pass(result)
