"""Verdict logic: one test per branch, plus records that survive xdist (builtin-only)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from harness.claim.verdicts import ClaimResult, Verdict, evaluate, record_claim
from harness.foundation.serialize import to_builtin
from harness.registry import get_claim

RV = get_claim("rv_contraction")  # ci("<", -1.0) and p < 0.00125, planned n 36
N = RV.planned_n


def _rv(**kw):
    args = {"model": "toy", "estimate": -1.5, "ci_low": -2.0, "ci_high": -1.2, "p_value": 1e-6, "n": N} | kw
    return evaluate(RV, **args)


def test_pass_when_every_condition_holds():
    r = _rv()
    assert r.verdict is Verdict.PASS and r.passed
    assert r.explanation.startswith("PASS") and "below -1" in r.explanation


def test_fail_when_ci_lies_on_the_wrong_side():
    r = _rv(estimate=-0.4, ci_low=-0.9, ci_high=0.1, p_value=1e-6)
    assert r.verdict is Verdict.FAIL and "at or above -1" in r.explanation


def test_p_not_below_alpha_test_alone_is_inconclusive_not_fail():
    r = _rv(p_value=0.002)  # CI clears -1, p below 0.01 but not below α/m = 0.00125: undecided, not a failure
    assert r.verdict is Verdict.INCONCLUSIVE and "0.002 ≥ 0.00125" in r.explanation
    assert "not contradicted" in r.explanation and "other criteria: met: 95% CI [-2, -1.2] lies below -1" in r.explanation


def test_rv_survives_long_control_straddling_ci_with_p_above_alpha_is_inconclusive():
    """The committed SmolLM2 numbers of issue 11 item 1 (g = −0.69, CI [−1.12, −0.23], p = 0.0018 vs
    α_test 0.00125): FAIL under the old logic, INCONCLUSIVE now; the same numbers against rv_contraction's −1 too."""
    for claim in ("rv_survives_long_control", "rv_contraction"):
        spec = get_claim(claim)
        r = evaluate(spec, model="SmolLM2", estimate=-0.69, ci_low=-1.12, ci_high=-0.23, p_value=0.0018,
                     n=spec.planned_n)
        assert r.verdict is Verdict.INCONCLUSIVE, r.explanation
        assert "straddles" in r.explanation and "p = 0.0018 ≥ 0.00125" in r.explanation


def test_contradicted_direction_fails_even_when_ci_straddles():
    spec = get_claim("alpha_monotone")  # Page's L one-sided for an increasing trend
    steps = [(-0.2, 0.1)] * 4  # every step CI straddles −δ
    r = evaluate(spec, model="toy", estimate=-0.5, p_value=0.9995, step_cis=steps, n=spec.planned_n)
    assert r.verdict is Verdict.FAIL and "contradict the claimed direction (above" in r.explanation
    r = evaluate(spec, model="toy", estimate=-0.5, p_value=0.98, step_cis=steps, n=spec.planned_n)
    assert r.verdict is Verdict.INCONCLUSIVE  # 1 − p = 0.02 > α_test = 0.01: not significant the other way


def test_two_sided_p_near_one_never_fails():
    spec = get_claim("attention_entropy_differs")  # ci_outside, two-sided p: no claimed direction
    r = evaluate(spec, model="toy", estimate=0.0, ci_low=-0.6, ci_high=0.6, p_value=0.9999, n=spec.planned_n)
    assert r.verdict is Verdict.INCONCLUSIVE and "(not significant)" in r.explanation


def test_inconclusive_when_ci_straddles_threshold():
    r = _rv(estimate=-1.1, ci_low=-1.5, ci_high=-0.7)
    assert r.verdict is Verdict.INCONCLUSIVE and "straddles -1" in r.explanation


def test_inconclusive_when_n_below_planned_even_if_rule_passes():
    r = _rv(n=N - 1)
    assert r.verdict is Verdict.INCONCLUSIVE
    assert f"underpowered: n = {N - 1} < planned {N}" in r.explanation and "rule alone would say: PASS" in r.explanation
    assert r.inconclusive_reason == "underpowered"


def test_inconclusive_when_estimate_undefined():
    kv = get_claim("kv_transfer")
    r = evaluate(kv, model="toy", estimate=1.2, ci_low=0.9, ci_high=1.5, p_value=1e-4, n=kv.planned_n,
                 undefined_reason="denominator CI includes 0")
    assert r.verdict is Verdict.INCONCLUSIVE and "denominator CI includes 0" in r.explanation


def test_nan_ci_is_inconclusive_not_pass():
    r = _rv(ci_low=float("nan"), ci_high=float("nan"))
    assert r.verdict is Verdict.INCONCLUSIVE and "CI undefined" in r.explanation


@pytest.mark.parametrize(
    ("low", "high", "verdict"),
    [(-0.05, 0.08, Verdict.PASS), (0.12, 0.30, Verdict.FAIL), (0.05, 0.15, Verdict.INCONCLUSIVE),
     (-0.30, -0.10, Verdict.FAIL)],
)
def test_equivalence_branches(low, high, verdict):
    spec = get_claim("v_patch_null")
    r = evaluate(spec, model="toy", estimate=(low + high) / 2, ci_low=low, ci_high=high, n=spec.planned_n)
    assert r.verdict is verdict
    assert r.ci_level == 0.90


@pytest.mark.parametrize(
    ("low", "high", "verdict"),
    [(0.6, 1.4, Verdict.PASS), (-1.6, -0.7, Verdict.PASS), (-0.3, 0.4, Verdict.FAIL), (0.3, 0.9, Verdict.INCONCLUSIVE)],
)
def test_outside_margin_branches(low, high, verdict):
    spec = get_claim("attention_entropy_differs")
    r = evaluate(spec, model="toy", estimate=(low + high) / 2, ci_low=low, ci_high=high, p_value=1e-5,
                 n=spec.planned_n)
    assert r.verdict is verdict


@pytest.mark.parametrize(
    ("steps", "p", "verdict"),
    [([(0.05, 0.3)] * 4, 0.001, Verdict.PASS),
     ([(0.05, 0.3), (-0.4, -0.15), (0.1, 0.2), (0.0, 0.1)], 0.001, Verdict.FAIL),
     ([(0.05, 0.3), (-0.2, 0.1), (0.1, 0.2), (0.0, 0.1)], 0.001, Verdict.INCONCLUSIVE),
     ([(0.05, 0.3)] * 4, 0.2, Verdict.INCONCLUSIVE), ([(0.05, 0.3)] * 4, 0.9999, Verdict.FAIL)],
)
def test_trend_with_steps_branches(steps, p, verdict):
    spec = get_claim("alpha_monotone")
    r = evaluate(spec, model="toy", estimate=0.9, p_value=p, step_cis=steps, n=spec.planned_n)
    assert r.verdict is verdict
    assert r.details["step_cis"] == [list(s) for s in steps]


def test_trend_without_steps_is_an_error():
    spec = get_claim("alpha_monotone")
    with pytest.raises(ValueError, match="adjacent-step CIs"):
        evaluate(spec, model="toy", estimate=0.9, p_value=0.001, n=spec.planned_n)


@pytest.mark.parametrize(("value", "verdict"), [(3e-5, Verdict.PASS), (2e-3, Verdict.FAIL)])
def test_invariant_branches(value, verdict):
    spec = get_claim("cache_injection_equals_text")
    assert evaluate(spec, model="toy", estimate=value, n=spec.planned_n).verdict is verdict


def test_invalid_numbers_are_rejected_with_names():
    with pytest.raises(ValueError, match="ci_low .* exceeds ci_high"):
        _rv(ci_low=-1.0, ci_high=-2.0)
    with pytest.raises(ValueError, match="p_value must be in"):
        _rv(p_value=1.5)
    with pytest.raises(ValueError, match="model name"):
        _rv(model="")


def test_record_is_builtin_only_and_round_trips():
    r = evaluate(RV, model="toy", estimate=np.float32(-1.5), ci_low=np.float64(-2.0), ci_high=-1.2,
                 p_value=np.float64(1e-6), n=np.int64(N),
                 details={"groups": {"recursive": np.arange(3, dtype=np.float32)}, "k": (np.int32(1), 2.0),
                          "missing": float("nan"), "verdict_enum": Verdict.PASS})
    rec = r.to_record()

    def walk(x):
        assert type(x) in (dict, list, str, int, float, bool, type(None)), type(x)
        if isinstance(x, dict):
            [walk(v) for v in x.values()]
        elif isinstance(x, list):
            [walk(v) for v in x]

    walk(rec)
    assert rec["verdict"] == "PASS" and rec["details"]["missing"] is None
    json.dumps(rec, allow_nan=False)
    back = ClaimResult.from_record(rec)
    assert back.verdict is Verdict.PASS and math.isclose(back.estimate, -1.5) and back.n == N


def test_record_claim_records_one_property():
    seen = []
    record_claim(lambda name, value: seen.append((name, value)), _rv())
    assert len(seen) == 1 and seen[0][0] == "claim_result" and seen[0][1]["claim"] == "rv_contraction"


def test_to_builtin_refuses_unknown_objects():
    with pytest.raises(TypeError, match="object"):
        to_builtin(object(), nonfinite="null")
