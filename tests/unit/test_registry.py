"""The claims registry: every DESIGN §5 claim is present, rules are as registered, power plans recompute."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from statsmodels.stats.power import TTestIndPower, TTestPower

from harness import stats as hs
from harness.claim.verdicts import Verdict, evaluate
from harness.registry import (
    CLAIMS,
    MULTIPLICITY_FAMILIES,
    P_BELOW,
    Kind,
    ci,
    ci_within,
    contrasts_above,
    family_of,
    get_claim,
    steps_at_least,
)

HEADLINE = {"rv_contraction", "v_patch_null", "kv_transfer", "alpha_monotone", "single_layer_fails"}
EXTENDED = {
    "reverse_patch_necessity", "kv_order_ablation", "control_random_null", "control_cross_baseline_null",
    "kv_transfer_specific",
    "geometry_transfers", "rv_behaviour_correlation", "rv_gap_fades_in_generation", "layer_quarter_localisation",
    "token_quarter_localisation", "level_rv_trend", "level_behaviour_trend", "attention_entropy_differs",
    "rv_survives_long_control", "rv_survives_repetition", "rv_survives_about_recursion",
    "donor_level_transfer_trend", "peak_zone_vs_half", "self_ref_token_patch", "donor_pr_predicts_transfer",
}
ANATOMY = {"cache_shapes_match_config", "cache_injection_equals_text", "rope_rerotation", "persona_signature"}
EXCHANGE = {
    "compressed_packet_fidelity", "partial_layer_fidelity", "projector_transfers_context", "confabulation_signature",
}  # issue 14
OWN_TEXT_SET = {"projector_transfers_context"}
"""Claims that read their own fixed text set, not the prompt bank: they need no bank group."""


def test_registry_holds_exactly_the_design_claims():
    assert set(CLAIMS) == HEADLINE | EXTENDED | ANATOMY | EXCHANGE
    assert {c.id for c in CLAIMS.values() if c.headline} == HEADLINE


def test_headline_rules_are_design_section_5():
    rv = get_claim("rv_contraction")
    assert rv.criteria == (ci("<", -1.0), P_BELOW) and rv.significance_level == 0.01 and MULTIPLICITY_FAMILIES[rv.family].method == "holm"
    vp = get_claim("v_patch_null")
    assert vp.kind is Kind.EQUIVALENCE and vp.criteria == (ci_within(-0.10, 0.10),)
    assert vp.significance_level == 0.05 and vp.ci_level == pytest.approx(1 - 2 * 0.05)
    kv = get_claim("kv_transfer")
    assert kv.criteria == (ci(">=", 0.80), P_BELOW)
    assert kv.alpha_test == 0.01 / 2  # the kv_transfer family holds kv_transfer and kv_transfer_specific (issue 10)
    am = get_claim("alpha_monotone")
    assert am.kind is Kind.TREND and am.criteria == (P_BELOW, steps_at_least(-am.delta)) and am.alpha_test == 0.01
    sl = get_claim("single_layer_fails")
    assert sl.criteria == (ci("<", 0.20),) and sl.ci_level == 0.95


def test_issue_10_specificity_order_ablation_and_reverse_contrast_rules():
    spec = get_claim("kv_transfer_specific")
    assert spec.criteria == (ci(">=", 0.50), P_BELOW) and spec.ci_level == 0.95 and spec.family == "kv_transfer"
    assert spec.version == 3 and not spec.headline
    order = get_claim("kv_order_ablation")
    assert order.kind is Kind.EQUIVALENCE and order.criteria == (ci_within(-0.20, 0.20),) and order.ci_level == 0.90
    assert "control_shuffled_null" in order.notes and "control_shuffled_null" not in CLAIMS
    rev = get_claim("reverse_patch_necessity")
    # issue 23: the random-KV contrast left the rule (its gibberish scores below any fluent continuation)
    assert rev.version == 5 and rev.criteria == (ci(">=", 0.50), P_BELOW, contrasts_above(0.0, ("recursive_donor",)))
    assert rev.primary == ci(">=", 0.50) and "every registered contrast" in rev.decision_text()
    with pytest.raises(ValueError, match="not first"):
        dataclasses.replace(get_claim("single_layer_fails"), criteria=(contrasts_above(0.0, ("x",)), ci("<", 0.2)))
    with pytest.raises(ValueError, match="distinct"):
        contrasts_above(0.0, ("x", "x"))


def test_every_behavioural_claim_moved_with_the_issue_10_score_and_decoding():
    from harness.registry.history import SCORE_AND_DECODING, changes_of

    for spec in CLAIMS.values():
        if spec.behaviour_score is not None and spec.version > 1 and spec.id not in ("kv_transfer_specific",
                                                                                     "kv_order_ablation"):
            assert any(SCORE_AND_DECODING in c.reason for c in changes_of(spec.id)), spec.id


def test_every_claim_the_score_decides_moved_with_the_issue_22_score_and_transfer_ratios_take_the_minimum_gap():
    """The content-labelled score moves every claim whose deciding estimate reads it (their last version step says
    so); the claims whose estimate is a ratio over the natural gap also name the minimum-gap rule; claims that only
    decode under the behavioural regime and decide on R_V did not move."""
    from harness.registry.history import CONTENT_SCORE, GAP_RATIO_CLAIMS, MINIMUM_GAP, SCORE_DECIDED_CLAIMS, changes_of

    for claim_id in SCORE_DECIDED_CLAIMS:
        last = next(c for c in reversed(changes_of(claim_id)) if CONTENT_SCORE in c.reason)
        assert last.date == "2026-12-07", claim_id
        assert (MINIMUM_GAP in last.reason) == (claim_id in GAP_RATIO_CLAIMS), claim_id
    for claim_id in ("geometry_transfers", "rv_gap_fades_in_generation"):
        assert all(CONTENT_SCORE not in c.reason for c in changes_of(claim_id)), claim_id
    assert set(GAP_RATIO_CLAIMS) <= set(SCORE_DECIDED_CLAIMS)


def test_families_are_consistent_and_alpha_test_is_bonferroni():
    for fam in MULTIPLICITY_FAMILIES.values():
        for member in fam.members:
            spec = get_claim(member)
            assert spec.family == fam.name and P_BELOW in spec.criteria
            assert spec.alpha_test == pytest.approx(fam.familywise_alpha / len(fam.members))
            assert family_of(member) is fam
    for spec in CLAIMS.values():
        assert (spec.alpha_test is None) == (P_BELOW not in spec.criteria)


def test_rv_contraction_power_recomputes_independently():
    parts = get_claim("rv_contraction").power.parts
    ci_n = TTestIndPower().solve_power(effect_size=0.8, alpha=0.025, power=0.8, alternative="larger")
    p_n = TTestIndPower().solve_power(effect_size=1.8, alpha=0.01 / 8, power=0.8, alternative="larger")
    assert parts[0].n == int(-(-ci_n * (1 + 1.8**2 / 8) // 1))
    assert parts[1].n == int(-(-p_n // 1))
    assert get_claim("rv_contraction").planned_n == max(parts[0].n, parts[1].n)


def test_equivalence_power_gives_joint_power():
    """Planned n for v_patch_null gives ≥ 0.8 probability that both TOST bounds hold at true T = 0."""
    spec = get_claim("v_patch_null")
    n = spec.planned_n
    each = TTestPower().power(effect_size=0.10 / 0.25, nobs=n, alpha=0.05, alternative="larger")
    assert 1 - 2 * (1 - each) >= 0.8


def test_every_claim_is_complete():
    for spec in CLAIMS.values():
        assert spec.version >= 1 and spec.statement and spec.estimator and spec.rule_summary()
        assert spec.planned_n >= 1 and (spec.required_groups or spec.id in OWN_TEXT_SET) and spec.n_unit
        assert isinstance(spec.threshold, float | tuple) and spec.comparator in {"<", "<=", ">", ">=", "within", "outside", "differs"}
        text = spec.decision_text()
        assert "PASS if" in text and str(spec.planned_n) in text
        if spec.behaviour_score is not None:
            assert spec.decoding is not None
        if spec.kind is not Kind.INVARIANT:
            assert spec.power.parts, spec.id


def test_specs_are_frozen_and_unknown_ids_name_the_known_ones():
    with pytest.raises(dataclasses.FrozenInstanceError):
        get_claim("rv_contraction").version = 2  # type: ignore[misc]
    with pytest.raises(KeyError, match="rv_contraction"):
        get_claim("no_such_claim")


def test_spec_validation_rejects_inconsistent_rules():
    base = get_claim("single_layer_fails")
    with pytest.raises(ValueError, match="not a member of a family"):
        dataclasses.replace(base, id="x", criteria=(ci("<", 0.2), P_BELOW))
    with pytest.raises(ValueError, match="ci_level"):
        dataclasses.replace(base, ci_level=None)
    with pytest.raises(ValueError, match="no p condition"):
        dataclasses.replace(base, family="behaviour")


def test_design_check_rv_contraction_reaches_planned_power_by_simulation():
    """At the design effect (g = −1.8) and the planned n, the full decision (bootstrap CI + Welch p) passes
    in at least ~80 % of simulated normal studies (150 sims; 0.72 is ~2.5 binomial SEs below 0.8)."""
    spec = get_claim("rv_contraction")
    n = spec.planned_n
    rng = np.random.default_rng(2024)
    sims = 150
    passes = 0
    for _ in range(sims):
        x, y = rng.normal(-1.8, 1.0, n), rng.normal(0.0, 1.0, n)
        ci = hs.bootstrap_ci(hs.hedges_g, x, y, n_resamples=499, method="percentile", rng=rng)
        result = evaluate(spec, model="sim", estimate=ci.estimate, ci_low=ci.low, ci_high=ci.high,
                          p_value=hs.welch_t(x, y, "less").p, n=n)
        passes += result.verdict is Verdict.PASS
    assert passes / sims >= 0.72


def test_every_version_above_one_has_its_reason_and_a_bump_without_one_is_refused():
    import dataclasses

    from harness import registry
    from harness.registry import changes_of

    for spec in CLAIMS.values():
        steps = changes_of(spec.id)
        assert spec.version == 1 + len(steps) and all(c.reason.strip() and c.date for c in steps)
    spec = CLAIMS["v_patch_null"]
    bumped = dataclasses.replace(spec, version=spec.version + 1)
    with pytest.raises(ValueError, match="history entry"):
        registry._build((bumped,))


def test_confabulation_signature_is_registered_as_a_difference_with_equivalence_as_its_failure():
    from harness.registry import ci_differs

    spec = get_claim("confabulation_signature")
    assert spec.criteria == (ci_differs(-0.5, 0.5), P_BELOW) and spec.ci_level == pytest.approx(0.90)
    assert spec.family == "exchange" and MULTIPLICITY_FAMILIES["exchange"].familywise_alpha == 0.01
    equivalence, difference = spec.power.parts
    assert equivalence.alpha == pytest.approx(0.05) and equivalence.power == pytest.approx(0.9)
    assert difference.alpha == pytest.approx(spec.alpha_test / 2)  # the p is two-sided
    assert spec.planned_n == max(equivalence.n, difference.n) > 20  # the bank's 20 pairs are too few
