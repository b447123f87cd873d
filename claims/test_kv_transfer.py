"""Claim kv_transfer: a KV patch over the second half of the layers transfers recursive behaviour.

Method: for each exact-length pair (recursive A, baseline B), decode B naturally, A naturally, and B from
a copy of its cache whose K and V at the model's patch layers (second half) and all shared positions are
A's (α = 1, DESIGN §4.3), under the registered decoding regime. Score: the registered behaviour score of the
generated tokens (degeneration-gated P(recursive) of the frozen classifier,
``harness.foundation.behavioural_regime.BEHAVIOUR_SCORE``). T = (mean s(B⊕A) − mean s(B)) / (mean s(A) − mean s(B)), 95 % BCa CI over pairs;
p: one-sided paired Wilcoxon, s(B⊕A) > s(B). Decision rule and planned n: the registry entry.
"""

from __future__ import annotations

import pytest

from harness.claim.context import ClaimContext
from harness.claim.steps import paired_p, run_conditions, transfer_result
from harness.transfer import KV_MAIN, NATURAL_BASELINE, NATURAL_RECURSIVE

pytestmark = pytest.mark.claim("kv_transfer")


def test_kv_transfer(claim: ClaimContext) -> None:
    runs = run_conditions(claim, (NATURAL_BASELINE, NATURAL_RECURSIVE, KV_MAIN))
    p, p_note = paired_p(runs[KV_MAIN.name].scores(), runs[NATURAL_BASELINE.name].scores(), "greater")
    result = transfer_result(claim, runs, KV_MAIN, NATURAL_BASELINE, NATURAL_RECURSIVE, p_value=p, p_note=p_note)
    claim.conclude(result)
