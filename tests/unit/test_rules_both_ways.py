"""Every registered rule can come out both ways (issue 23), table-driven over the registry.

For each claim, two sets of synthetic measurements written from its *statement* (not from its criteria): one built
to satisfy the statement, one built to contradict it. Through :func:`harness.claim.verdicts.evaluate` the first must
be PASS, the second FAIL, and the first with n one below the planned n INCONCLUSIVE ("underpowered"). A claim added
to the registry without its cases fails :func:`test_every_registered_claim_has_both_way_cases`; a rule mutated to a
constant (always met, or never met) fails the table, which :func:`test_a_rule_mutated_to_a_constant_is_caught`
shows for every claim.

The cases use the units of each claim's estimate (docs/METHODS.md): g in pooled-SD units, T and D in units of the
natural gap, ρ in [-1, 1], R_V differences, accuracies, nats. Estimator-level both-ways tests of the rules that
issue 23 changed are beside their claims: tests/unit/test_reverse_patch_rule.py (random-KV gibberish),
test_confabulation.py (the paired contrast) and, below, the gap-fade and one-sided null rules.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np
import pytest

from harness.claim.both_ways import both_ways_violations as check_both_ways
from harness.claim.verdicts import Verdict, evaluate
from harness.registry import CLAIMS, ClaimSpec
from harness.registry.rules import value

Case = dict[str, Any]


def _case(estimate: float, low: float | None = None, high: float | None = None, p: float | None = None,
          steps: list[tuple[float, float]] | None = None, contrasts: dict[str, tuple[float, float]] | None = None) -> Case:
    return {"estimate": estimate, "ci_low": low, "ci_high": high, "p_value": p, "step_cis": steps,
            "contrast_cis": contrasts}


RISING = [(0.10, 0.40)] * 4
"""Four adjacent steps that all rise (every CI above −0.10)."""
FALLING = [(0.10, 0.40), (-0.60, -0.30), (0.0, 0.2), (0.0, 0.2)]
"""A ladder whose second step falls clearly (its CI wholly below −0.10)."""
PROJECTOR_CONTRASTS = ("shuffled_sharer", "random_sharer", "mismatched_pairs")

CASES: dict[str, tuple[Case, Case]] = {
    # recursive prompts have lower R_V (g < -1) / they do not: g near 0 and the other way
    "rv_contraction": (_case(-1.8, -2.3, -1.3, 1e-9), _case(0.4, 0.1, 0.7, 0.999)),
    # V patch transfers nothing (T ≈ 0) / it transfers most of the gap
    "v_patch_null": (_case(0.0, -0.05, 0.05), _case(0.9, 0.6, 1.2)),
    # the KV patch transfers (T ≥ 0.8) / it transfers a little
    "kv_transfer": (_case(1.0, 0.9, 1.1, 1e-6), _case(0.2, 0.0, 0.4, 0.2)),
    "kv_transfer_specific": (_case(0.9, 0.7, 1.1, 1e-6), _case(0.05, -0.2, 0.3, 0.4)),
    # behaviour rises with α at every step / it falls at one step
    "alpha_monotone": (_case(0.25, 0.10, 0.40, 1e-6, RISING), _case(-0.45, -0.60, -0.30, 0.5, FALLING)),
    # one layer transfers nothing (T < 0.2) / it transfers most of it
    "single_layer_fails": (_case(0.0, -0.1, 0.1), _case(0.8, 0.5, 1.1)),
    # the step-0 gap shrinks by step 40 (S > 0) / it grows (S < 0, the other way)
    "rv_gap_fades_in_generation": (_case(0.05, 0.03, 0.07, 1e-5), _case(-0.05, -0.07, -0.03, 0.9999)),
    # R_V falls with level (ρ < -0.3) / it rises
    "level_rv_trend": (_case(-0.6, -0.75, -0.4, 1e-8), _case(0.3, 0.1, 0.5, 0.999)),
    # attention entropy differs (|g| > 0.5) / it does not (g inside ±0.5)
    "attention_entropy_differs": (_case(1.2, 0.8, 1.6, 1e-7), _case(0.0, -0.3, 0.3, 0.9)),
    **{f"rv_survives_{name}": (_case(-1.3, -1.7, -0.9, 1e-8), _case(0.2, -0.1, 0.5, 0.95))
       for name in ("long_control", "repetition", "about_recursion")},
    # R_V moves toward the donor's (G ≥ 0.25) / it does not move
    "geometry_transfers": (_case(0.7, 0.5, 0.9, 1e-6), _case(0.0, -0.1, 0.1, 0.5)),
    # lower R_V goes with more behaviour (ρ < -0.3) / it goes with less
    "rv_behaviour_correlation": (_case(-0.6, -0.75, -0.4, 1e-8), _case(0.3, 0.05, 0.5, 0.999)),
    # the baseline donor removes recursion, more than a same-length recursive donor / it removes nothing
    "reverse_patch_necessity": (_case(0.9, 0.7, 1.1, 1e-6, contrasts={"recursive_donor": (0.4, 0.9)}),
                                _case(0.1, -0.1, 0.3, 0.6, contrasts={"recursive_donor": (-0.3, 0.1)})),
    # the null control transfers nothing (T < 0.1; lowering the score is not a transfer) / it transfers half
    "control_random_null": (_case(-0.5, -0.8, -0.3), _case(0.5, 0.3, 0.7)),
    "control_cross_baseline_null": (_case(0.0, -0.08, 0.07), _case(0.5, 0.3, 0.7)),
    # order does not matter (|D| < 0.2) / permuting positions removes the transfer
    "kv_order_ablation": (_case(0.0, -0.1, 0.1), _case(0.8, 0.5, 1.1)),
    # late quarters carry the transfer (D > 0) / early ones do
    "layer_quarter_localisation": (_case(0.5, 0.2, 0.8), _case(-0.5, -0.8, -0.2)),
    "token_quarter_localisation": (_case(0.4, 0.2, 0.6, 1e-6), _case(-0.4, -0.6, -0.2, 0.9999)),
    # behaviour rises with level (ρ > 0.3) / it falls
    "level_behaviour_trend": (_case(0.6, 0.4, 0.75, 1e-8), _case(-0.3, -0.5, -0.1, 0.9999)),
    "donor_level_transfer_trend": (_case(0.5, 0.3, 0.7, 1e-8), _case(-0.3, -0.5, -0.1, 0.9999)),
    # the peak zone transfers less than the half (D > 0) / more
    "peak_zone_vs_half": (_case(0.4, 0.2, 0.6), _case(-0.4, -0.6, -0.2)),
    # self-referential positions carry half the gap (T ≥ 0.5) / almost none
    "self_ref_token_patch": (_case(0.8, 0.6, 1.0), _case(0.1, -0.1, 0.3)),
    # lower donor PR goes with more transfer (ρ < -0.3) / with less
    "donor_pr_predicts_transfer": (_case(-0.6, -0.75, -0.4, 1e-8), _case(0.3, 0.05, 0.5, 0.999)),
    # invariants: the cache matches the config / a layer's shape is off
    "cache_shapes_match_config": (_case(0.0), _case(2.0)),
    "cache_injection_equals_text": (_case(2e-5), _case(0.5)),
    "rope_rerotation": (_case(1e-4), _case(2.0)),
    # the cache identifies the persona beyond random weights / it does not (accuracy below the copies')
    "persona_signature": (_case(0.5, 0.3, 0.7, 1e-4), _case(-0.3, -0.5, -0.1, 0.9999)),
    # int8 packets keep the distribution (KL < 0.01 nats) / they change it
    "compressed_packet_fidelity": (_case(1e-4, 8e-5, 1.2e-4), _case(0.2, 0.1, 0.3)),
    # fidelity rises with the fraction of layers shared / it falls at one step
    "partial_layer_fidelity": (_case(0.9, p=1e-6, steps=RISING), _case(0.1, p=0.5, steps=FALLING)),
    # the projected cache lowers the loss, beyond every control / it raises it
    "projector_transfers_context": (
        _case(0.5, 0.3, 0.7, contrasts={k: (0.1, 0.5) for k in PROJECTOR_CONTRASTS}),
        _case(-0.5, -0.7, -0.3, contrasts={k: (-0.5, -0.1) for k in PROJECTOR_CONTRASTS})),
    # R_V differs between grounded and confabulation prompts / it does not (inside ±0.5)
    "confabulation_signature": (_case(1.2, 0.9, 1.5, 1e-6), _case(0.0, -0.2, 0.2, 0.8)),
}
"""claim id → (measurements satisfying its statement, measurements contradicting it)."""


def both_ways_violations(spec: ClaimSpec) -> list[str]:
    """:func:`harness.claim.both_ways.both_ways_violations` of ``spec`` against its cases in :data:`CASES`."""
    return check_both_ways(spec, *CASES[spec.id])


def test_every_registered_claim_has_both_way_cases() -> None:
    assert set(CASES) == set(CLAIMS), f"missing: {sorted(set(CLAIMS) - set(CASES))}; stale: {sorted(set(CASES) - set(CLAIMS))}"


@pytest.mark.parametrize("claim_id", sorted(CLAIMS))
def test_rule_comes_out_both_ways(claim_id: str) -> None:
    assert both_ways_violations(CLAIMS[claim_id]) == []


@pytest.mark.parametrize("constant", ["always met", "never met"])
@pytest.mark.parametrize("claim_id", sorted(CLAIMS))
def test_a_rule_mutated_to_a_constant_is_caught(claim_id: str, constant: str) -> None:
    """The table is not vacuous: replacing a claim's rule with a constant one (a value criterion that every or no
    estimate meets) makes one of its two cases come out wrong."""
    bound = math.inf if constant == "always met" else -math.inf
    spec = CLAIMS[claim_id]
    mutated = dataclasses.replace(spec, criteria=(value("<=", bound),), ci_level=None, significance_level=None,
                                  family=None, delta=None)
    assert both_ways_violations(mutated)


# ------------------------------------------------------------------ estimator level: the rules issue 23 changed


def test_gap_fade_rule_is_exchangeable_and_decides_both_ways() -> None:
    """rv_gap_fades_in_generation v3 from per-pair gaps: a negative step-0 gap that fades to 0 PASSes; one that
    doubles FAILs; opposite-sign gaps, where v2's swap statistic gave p = 1, get a small p when the change is real;
    no step-0 gap makes S undefined."""
    from claims.test_rv_gap_fades import gap_fade_numbers

    spec = CLAIMS["rv_gap_fades_in_generation"]
    rng = np.random.default_rng(5)
    n = spec.planned_n
    first = -0.08 + rng.normal(0.0, 0.03, n)

    def verdict(last: np.ndarray, start: np.ndarray = first) -> Any:
        est, lo, hi, p, undefined = gap_fade_numbers(start, last, level=0.95, seed=1)
        return evaluate(spec, model="synthetic", estimate=est, ci_low=lo, ci_high=hi, p_value=p, n=n,
                        undefined_reason=undefined)

    assert verdict(rng.normal(0.0, 0.03, n)).verdict is Verdict.PASS
    assert verdict(2.0 * first + rng.normal(0.0, 0.01, n)).verdict is Verdict.FAIL
    crossing = 0.02 + rng.normal(0.0, 0.03, n)  # mean d(40) > 0 while mean d(0) < 0
    est, lo, hi, p, _ = gap_fade_numbers(first, crossing, level=0.95, seed=1)
    assert p < spec.alpha_test and est > 0
    no_gap = verdict(rng.normal(0.0, 0.03, n), start=rng.normal(0.0, 0.03, n))
    assert no_gap.inconclusive_reason == "undefined" and no_gap.estimate is None


def test_one_sided_null_counts_a_control_below_the_baseline_for_the_null() -> None:
    """control_random_null v5: gibberish scoring below the baseline recipient (T < 0) is no transfer, so PASS; the
    v4 equivalence rule (±0.10) called the same numbers FAIL."""
    from harness.registry.rules import ci_within

    spec = CLAIMS["control_random_null"]
    below = {"estimate": -0.5, "ci_low": -0.8, "ci_high": -0.3}
    assert evaluate(spec, model="synthetic", n=spec.planned_n, **below).verdict is Verdict.PASS
    v4 = dataclasses.replace(spec, criteria=(ci_within(-0.10, 0.10),))
    assert evaluate(v4, model="synthetic", n=spec.planned_n, **below).verdict is Verdict.FAIL


def test_undefined_estimate_is_null_in_the_record_and_kept_in_the_details() -> None:
    spec = CLAIMS["kv_transfer"]
    r = evaluate(spec, model="synthetic", estimate=0.29, ci_low=-3.0, ci_high=4.0, p_value=0.2, n=spec.planned_n,
                 undefined_reason="the natural gap's CI reaches below the minimum")
    record = r.to_record()
    assert record["estimate"] is None and record["ci_low"] is None and record["ci_high"] is None
    assert record["inconclusive_reason"] == "undefined" and "0.29" not in r.explanation
    assert record["details"]["undefined_estimate"] == {"estimate": 0.29, "ci_low": -3.0, "ci_high": 4.0}


def test_a_fail_explanation_never_ends_in_an_undecided_state() -> None:
    spec = CLAIMS["rv_contraction"]
    r = evaluate(spec, model="synthetic", estimate=0.0, ci_low=-0.3, ci_high=0.3, p_value=0.49, n=spec.planned_n)
    assert r.verdict is Verdict.FAIL
    assert not r.explanation.rstrip().endswith("(undecided)") and "other criteria: undecided: p = 0.49" in r.explanation


def test_shipped_bank_units_are_the_banks_own_counts() -> None:
    """The reachability marks (harness.registry.reachability) read counts that the shipped bank really holds."""
    from harness.prompts import load_bank
    from harness.registry.reachability import SHIPPED_BANK_UNITS, shipped_capacity, underpowered_on_shipped_bank

    bank = load_bank()
    assert len(bank.pairs("recursive_baseline")) == SHIPPED_BANK_UNITS["prompt pairs"]
    assert len(bank.group("recursive")) == len(bank.group("baseline")) == SHIPPED_BANK_UNITS["prompts per group"]
    assert len(bank.group("recursive")) == SHIPPED_BANK_UNITS["recursive prompts"]
    assert len(bank.group("baseline")) == SHIPPED_BANK_UNITS["baseline recipients"]
    assert shipped_capacity(CLAIMS["confabulation_signature"]) == len(bank.pairs("grounded_confabulation"))
    for name, group in (("long_control", "long_control"), ("repetition", "repetitive"),
                        ("about_recursion", "about_recursion")):
        assert shipped_capacity(CLAIMS[f"rv_survives_{name}"]) == len(bank.group(group))
    assert not underpowered_on_shipped_bank(CLAIMS["rv_contraction"])
