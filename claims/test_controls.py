"""Claims control_{random,cross_baseline}_null: null KV patches transfer no behaviour (DESIGN §4.4).

Method: as kv_transfer (second-half layers, all shared positions, α = 1) with the donor's K/V replaced by
(random) Gaussian K/V with the donor's norm per layer, KV head and position; (cross-baseline) a different
baseline prompt of the same token length. Neither carries the recursive donor's content, so both are nulls (the
position-permuted patch keeps it and is an order ablation instead: claims/test_order_ablation.py). T is
normalised by the same pairs' natural recursive − baseline gap; equivalence by TOST: the 90 % BCa CI over pairs
must lie inside ±0.10. Rules and planned n: the registry entries.
"""

from __future__ import annotations

import pytest

from harness.claim.context import ClaimContext
from harness.claim.steps import run_conditions, transfer_result
from harness.prompts.pairing import PairRole
from harness.transfer import CROSS_BASELINE, NATURAL_BASELINE, NATURAL_RECURSIVE, RANDOM_NORM_MATCHED, Condition

RECURSIVE_BASELINE = (PairRole.RECURSIVE, PairRole.BASELINE)


def _control_null(claim: ClaimContext, control: Condition, roles: tuple[PairRole, ...] = RECURSIVE_BASELINE) -> None:
    """T of ``control`` against the same pairs' natural runs, judged by the claim's equivalence rule."""
    runs = run_conditions(claim, (NATURAL_BASELINE, NATURAL_RECURSIVE, control), roles=roles)
    claim.conclude(transfer_result(claim, runs, control, NATURAL_BASELINE, NATURAL_RECURSIVE))


@pytest.mark.claim("control_random_null")
def test_control_random_null(claim: ClaimContext) -> None:
    _control_null(claim, RANDOM_NORM_MATCHED)


@pytest.mark.claim("control_cross_baseline_null")
def test_control_cross_baseline_null(claim: ClaimContext) -> None:
    _control_null(claim, CROSS_BASELINE, (*RECURSIVE_BASELINE, PairRole.OTHER_BASELINE))
