"""Claims control_{shuffled,random,cross_baseline}_null: control KV patches transfer no behaviour (DESIGN §4.4).

Method: as kv_transfer (second-half layers, all shared positions, α = 1) with the donor's K/V replaced by
(shuffled) the recursive donor's positions permuted by a seeded derangement per pair, one permutation for K
and V, keys re-rotated to their new positions; (random) Gaussian K/V with the donor's norm per layer, KV
head and position; (cross-baseline) a different baseline prompt of the same token length. T is normalised
by the same pairs' natural recursive − baseline gap; equivalence by TOST: the 90 % BCa CI over pairs must
lie inside ±0.10. Rules and planned n: the registry entries.
"""

from __future__ import annotations

import pytest

from harness.claim_support import behaviour_pairs, run_conditions, transfer_result
from harness.prompts.pairing import PairRole
from harness.registry import get_claim
from harness.results import assert_pass, record_claim
from harness.transfer import (
    CROSS_BASELINE,
    NATURAL_BASELINE,
    NATURAL_RECURSIVE,
    RANDOM_NORM_MATCHED,
    SHUFFLED,
    Condition,
)


def _control_null(claim_id: str, control: Condition, roles: tuple[PairRole, ...], lm, prompt_bank, run_settings,
                  measurement_cache, record_property) -> None:
    spec = get_claim(claim_id)
    pairs = behaviour_pairs(lm, prompt_bank, spec, run_settings.n_cap, roles=roles)
    runs = run_conditions(lm, pairs, spec, (NATURAL_BASELINE, NATURAL_RECURSIVE, control), run_settings,
                          measurement_cache)
    result = transfer_result(spec, lm, prompt_bank, runs, control, NATURAL_BASELINE, NATURAL_RECURSIVE,
                             seed=run_settings.seed)
    record_claim(record_property, result)
    assert_pass(result)


@pytest.mark.claim("control_shuffled_null")
def test_control_shuffled_null(lm, prompt_bank, run_settings, measurement_cache, record_property) -> None:
    _control_null("control_shuffled_null", SHUFFLED, (PairRole.RECURSIVE, PairRole.BASELINE), lm, prompt_bank,
                  run_settings, measurement_cache, record_property)


@pytest.mark.claim("control_random_null")
def test_control_random_null(lm, prompt_bank, run_settings, measurement_cache, record_property) -> None:
    _control_null("control_random_null", RANDOM_NORM_MATCHED, (PairRole.RECURSIVE, PairRole.BASELINE), lm, prompt_bank,
                  run_settings, measurement_cache, record_property)


@pytest.mark.claim("control_cross_baseline_null")
def test_control_cross_baseline_null(lm, prompt_bank, run_settings, measurement_cache, record_property) -> None:
    _control_null("control_cross_baseline_null", CROSS_BASELINE,
                  (PairRole.RECURSIVE, PairRole.BASELINE, PairRole.OTHER_BASELINE), lm, prompt_bank, run_settings,
                  measurement_cache, record_property)
