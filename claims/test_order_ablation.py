"""Claim kv_order_ablation: the donor's cache transfers about as much whatever the order of its positions.

Method: for each exact-length pair (recursive A, baseline B), decode B, A, B⊕A (second-half KV patch, all shared
positions, α = 1) and the order-ablated B⊕A: the same patch with A's positions permuted within the span by a seeded
derangement per pair, one permutation for K and V and every layer, keys re-rotated to their new positions. That
keeps A's whole set of K/V vectors, so it measures how much the transfer depends on their order; it is not a null.
D = T(main) − T(order-ablated) (gap units), 90 % BCa CI over pairs, numerator and gap resampled together;
equivalence (TOST at α = 0.05): the CI must lie inside ±0.20. Rule and planned n: the registry entry.
"""

from __future__ import annotations

import pytest

from harness.claim.context import ClaimContext
from harness.claim.steps import run_conditions, transfer_difference_result
from harness.transfer import KV_MAIN, NATURAL_BASELINE, NATURAL_RECURSIVE, ORDER_ABLATION

pytestmark = pytest.mark.claim("kv_order_ablation")


def test_kv_order_ablation(claim: ClaimContext) -> None:
    runs = run_conditions(claim, (NATURAL_BASELINE, NATURAL_RECURSIVE, KV_MAIN, ORDER_ABLATION))
    claim.conclude(transfer_difference_result(claim, runs, KV_MAIN, ORDER_ABLATION, NATURAL_BASELINE,
                                              NATURAL_RECURSIVE))
