"""Claim kv_transfer_specific: the KV transfer is specific to the recursive donor, beyond a same-length foreign cache.

Method: for each exact-length pair (recursive A, baseline B) that has another baseline C of B's token length (the
cross-baseline donor), decode B naturally, A naturally, B⊕A (second-half KV patch, all shared positions, α = 1) and
B⊕C (the same patch from C), plus B⊕noise (norm-matched random KV) for the details, under the registered decoding
regime. T_spec = (mean s(B⊕A) − mean s(B⊕C)) / (mean s(A) − mean s(B)), 95 % BCa CI over pairs (clustered by prompt,
numerator and gap resampled together); p: one-sided paired Wilcoxon, s(B⊕A) > s(B⊕C). Details: T of the random and
cross-baseline patches, and the disruption size of each patched condition, first-step KL(natural B ‖ patched) in nats
(:mod:`harness.transfer.disruption`). Rule and planned n: the registry entry.
"""

from __future__ import annotations

import pytest

from harness.claim.context import ClaimContext
from harness.claim.steps import paired_p, run_conditions, transfer_difference_result
from harness.prompts.pairing import PairRole
from harness.transfer import (
    CROSS_BASELINE,
    KV_MAIN,
    NATURAL_BASELINE,
    NATURAL_RECURSIVE,
    RANDOM_NORM_MATCHED,
    first_step_kl,
    kl_summary,
)

pytestmark = pytest.mark.claim("kv_transfer_specific")

PATCHED = (KV_MAIN, CROSS_BASELINE, RANDOM_NORM_MATCHED)
"""The patched conditions whose disruption size goes into the details."""


def test_kv_transfer_specific(claim: ClaimContext) -> None:
    runs = run_conditions(claim, (NATURAL_BASELINE, NATURAL_RECURSIVE, *PATCHED), roles=(PairRole.RECURSIVE, PairRole.BASELINE, PairRole.OTHER_BASELINE))
    pairs = runs.pairs
    p, p_note = paired_p(runs[KV_MAIN.name].scores(), runs[CROSS_BASELINE.name].scores(), "greater")
    disruption = {c.name: kl_summary(first_step_kl(claim.lm, pairs, c, run_seed=claim.settings.seed, store=claim.store))
                  for c in PATCHED}
    result = transfer_difference_result(
        claim, runs, KV_MAIN, CROSS_BASELINE, NATURAL_BASELINE, NATURAL_RECURSIVE, p_value=p, p_note=p_note,
        also=(RANDOM_NORM_MATCHED,), disruption_first_step_kl=disruption,
    )
    claim.conclude(result)
