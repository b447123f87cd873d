"""Property tests: :func:`harness.claim.verdicts.evaluate` against a reference statement of the three-valued rule.

The reference is written from DESIGN §5 and the rule-language docs, not from ``harness.claim.verdicts``: every CI
criterion is a claimed *region* of the real line (a union of intervals) and its complement; a closed CI is
"met" when it lies inside one piece of the region, "clearly not met" when it lies inside one piece of the
complement, "undecided" otherwise; a contrasts criterion claims the open region above its bound for every named
contrast's CI (clearly not met when any lies in the closed complement). A p criterion is met when p < α_test, clearly not met only when the claim
is directional and p ≥ 1 − α_test, undecided otherwise. PASS: all met; FAIL: any clearly not met; INCONCLUSIVE:
otherwise, or whenever the estimate is undefined or n < planned n.
"""

from __future__ import annotations

import dataclasses
import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.claim.verdicts import Verdict, evaluate
from harness.registry import (
    CLAIMS,
    P_BELOW,
    ClaimSpec,
    ci,
    ci_differs,
    ci_outside,
    ci_within,
    contrasts_above,
    get_claim,
    value,
)

INF = math.inf
MET, NOT_MET, UNDECIDED = "met", "not met", "undecided"

# ------------------------------------------------------------------------------- the reference statement

# A piece of the line: (low end, high end, low end included, high end included).
Piece = tuple[float, float, bool, bool]


def _regions(kind: str, op: str | None, bound: float | None, bounds: tuple[float, float] | None
             ) -> tuple[list[Piece], list[Piece]]:
    """(claimed region, its complement) of a CI or value criterion, as lists of pieces."""
    if kind in ("ci", "value"):
        b = bound
        return {
            "<": ([(-INF, b, False, False)], [(b, INF, True, False)]),
            "<=": ([(-INF, b, False, True)], [(b, INF, False, False)]),
            ">": ([(b, INF, False, False)], [(-INF, b, False, True)]),
            ">=": ([(b, INF, True, False)], [(-INF, b, False, False)]),
        }[op]
    lo, hi = bounds
    inside, ends = [(lo, hi, False, False)], [(-INF, lo, False, True), (hi, INF, True, False)]
    outside, middle = [(-INF, lo, False, False), (hi, INF, False, False)], [(lo, hi, True, True)]
    return (inside, ends) if kind == "ci_within" else (outside, middle)


def _in_piece(x: float, piece: Piece) -> bool:
    a, b, a_in, b_in = piece
    return (x > a or (a_in and x == a)) and (x < b or (b_in and x == b))


def _interval_state(low: float | None, high: float | None, region: list[Piece], complement: list[Piece]) -> str:
    if low is None or high is None or math.isnan(low) or math.isnan(high):
        return UNDECIDED
    if any(_in_piece(low, p) and _in_piece(high, p) for p in region):
        return MET
    if any(_in_piece(low, p) and _in_piece(high, p) for p in complement):
        return NOT_MET
    return UNDECIDED


def reference_verdict(spec: ClaimSpec, *, estimate, ci_low, ci_high, p_value, step_cis, n, undefined,
                      contrast_cis=None) -> str:
    """The verdict the rule states, from the spec's criteria and the measured numbers."""
    states = []
    primary = next(c for c in spec.criteria if c.kind != "p_below")
    directional = primary.kind == "steps_at_least" or (primary.kind == "ci" and primary.op is not None)
    for c in spec.criteria:
        if c.kind in ("ci", "ci_within", "ci_outside"):
            states.append(_interval_state(ci_low, ci_high, *_regions(c.kind, c.op, c.bound, c.bounds)))
        elif c.kind == "ci_differs":  # inside the open band: not met (equivalence), before "excludes 0": met
            lo, hi = c.bounds
            band = _interval_state(ci_low, ci_high, [(lo, hi, False, False)], [])
            beside_zero = _interval_state(ci_low, ci_high, [(-INF, 0.0, False, False), (0.0, INF, False, False)], [])
            states.append(NOT_MET if band == MET else MET if beside_zero == MET else UNDECIDED)
        elif c.kind == "value":
            if estimate is None or math.isnan(estimate):
                states.append(UNDECIDED)
            else:
                region, _ = _regions("value", c.op, c.bound, None)
                states.append(MET if any(_in_piece(estimate, p) for p in region) else NOT_MET)
        elif c.kind == "steps_at_least":
            at_least = ([(c.bound, INF, True, False)], [(-INF, c.bound, False, False)])
            each = [_interval_state(lo, hi, *at_least) for lo, hi in step_cis]
            states.append(NOT_MET if NOT_MET in each else UNDECIDED if UNDECIDED in each else MET)
        elif c.kind == "contrasts_above":
            above = ([(c.bound, INF, False, False)], [(-INF, c.bound, False, True)])
            each = [_interval_state(*contrast_cis[name], *above) for name in c.names]
            states.append(NOT_MET if NOT_MET in each else UNDECIDED if UNDECIDED in each else MET)
        else:  # the p criterion
            if p_value is None or math.isnan(p_value):
                states.append(UNDECIDED)
            elif p_value < spec.alpha_test:
                states.append(MET)
            elif directional and p_value >= 1 - spec.alpha_test:
                states.append(NOT_MET)
            else:
                states.append(UNDECIDED)
    if undefined or n < spec.planned_n:
        return "INCONCLUSIVE"
    if all(s == MET for s in states):
        return "PASS"
    return "FAIL" if NOT_MET in states else "INCONCLUSIVE"


# ------------------------------------------------------------------------------------------- strategies

OPS = ("<", "<=", ">", ">=")


@st.composite
def specs(draw) -> ClaimSpec:
    """A registered claim, or a registered one with a random rule of the same shape (every comparator)."""
    choice = draw(st.integers(0, 4))
    if choice == 0:
        return draw(st.sampled_from(list(CLAIMS.values())))
    bound = draw(st.sampled_from([-1.0, -0.3, 0.0, 0.25, 0.8]))
    if choice == 1:  # directional CI rule with a p criterion
        return dataclasses.replace(get_claim("rv_contraction"), criteria=(ci(draw(st.sampled_from(OPS)), bound),
                                                                          P_BELOW))
    if choice == 2:  # CI-only rule of any kind, no p criterion
        a, b = sorted(draw(st.lists(st.sampled_from([-0.5, -0.1, 0.0, 0.1, 0.5]), min_size=2, max_size=2,
                                    unique=True)))
        rules = [ci(draw(st.sampled_from(OPS)), bound), ci_within(a, b), ci_outside(a, b)]
        crit = draw(st.sampled_from(rules + ([ci_differs(a, b)] if a < 0 < b else [])))
        return dataclasses.replace(get_claim("single_layer_fails"), criteria=(crit,))
    if choice == 3:
        return dataclasses.replace(get_claim("cache_injection_equals_text"),
                                   criteria=(value(draw(st.sampled_from(OPS)), bound),))
    names = tuple(draw(st.lists(st.sampled_from(["a", "b", "c"]), min_size=1, max_size=3, unique=True)))
    return dataclasses.replace(get_claim("reverse_patch_necessity"),  # a main CI rule, p, and contrasts
                               criteria=(ci(draw(st.sampled_from(OPS)), bound), P_BELOW,
                                         contrasts_above(draw(st.sampled_from([0.0, 0.25, -0.3])), names)))


def _edges(spec: ClaimSpec) -> list[float]:
    """Every bound of the rule (equality at a bound is where off-by-one comparisons hide), and 0."""
    out = [0.0]
    for c in spec.criteria:
        out += [c.bound] if c.bound is not None else []
        out += list(c.bounds) if c.bounds is not None else []
    return out


def _number(draw, spec: ClaimSpec) -> float:
    """Mostly a bound exactly or just beside it, sometimes any value, rarely NaN."""
    pick = draw(st.integers(0, 9))
    if pick == 0:
        return math.nan
    if pick >= 8:
        return draw(st.floats(-3.0, 3.0))
    edge = draw(st.sampled_from(_edges(spec)))
    return edge if pick <= 4 else edge + draw(st.sampled_from([-0.2, -1e-9, 1e-9, 0.2]))


def _interval(draw, spec: ClaimSpec) -> tuple[float, float]:
    a, b = _number(draw, spec), _number(draw, spec)
    if math.isnan(a) or math.isnan(b):
        return a, b
    return min(a, b), max(a, b)


def _p(draw, spec: ClaimSpec) -> float | None:
    """Mostly α_test, 1 − α_test or a value beside them (the rule's edges), sometimes any p, rarely undefined."""
    a = spec.alpha_test or 0.01
    pick = draw(st.integers(0, 9))
    if pick <= 1:
        return None if pick == 0 else math.nan
    if pick >= 7:
        return draw(st.floats(0.0, 1.0))
    return draw(st.sampled_from([0.0, a / 2, a, a + 1e-12, 0.0018, 0.5, 1 - a - 1e-6, 1 - a, 1 - a / 2, 1.0]))


# ----------------------------------------------------------------------------------------------- properties


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_evaluate_agrees_with_the_reference_statement(data):
    spec = data.draw(specs())
    low, high = _interval(data.draw, spec)
    steps = None
    if any(c.kind == "steps_at_least" for c in spec.criteria):
        steps = [_interval(data.draw, spec) for _ in range(data.draw(st.integers(1, 5)))]
    contrasts = None
    for c in spec.criteria:
        if c.kind == "contrasts_above":
            contrasts = {name: _interval(data.draw, spec) for name in c.names}
    estimate = _number(data.draw, spec)
    p = _p(data.draw, spec)
    n = max(0, spec.planned_n + data.draw(st.sampled_from([0, 0, 0, 1, 5, -1, -2])))
    undefined = data.draw(st.sampled_from([None] * 7 + ["denominator CI includes 0"]))
    result = evaluate(spec, model="toy", estimate=estimate, ci_low=low, ci_high=high, p_value=p, n=n,
                      step_cis=steps, contrast_cis=contrasts, undefined_reason=undefined)
    expected = reference_verdict(spec, estimate=estimate, ci_low=low, ci_high=high, p_value=p, step_cis=steps,
                                 n=n, undefined=undefined, contrast_cis=contrasts)
    assert result.verdict.value == expected, (spec.criteria, result.explanation)
    assert result.explanation.startswith(f"{expected}: ")


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_p_at_or_above_alpha_alone_never_fails(data):
    """A directional claim whose CI is not wholly outside its region and whose p lies in [α_test, 1 − α_test)
    is never FAIL (DESIGN §5: p ≥ α with a straddling CI is INCONCLUSIVE)."""
    spec = dataclasses.replace(get_claim("rv_contraction"),
                               criteria=(ci(data.draw(st.sampled_from(OPS)), -1.0), P_BELOW))
    a = spec.alpha_test
    p = data.draw(st.floats(a, 1 - a, exclude_max=True))
    low = data.draw(st.floats(-3.0, -1.0, exclude_max=True))  # the CI strictly straddles the bound −1, so the CI
    high = data.draw(st.floats(-1.0, 3.0, exclude_min=True))  # criterion is undecided whatever the comparator
    r = evaluate(spec, model="toy", estimate=(low + high) / 2, ci_low=low, ci_high=high, p_value=p,
                 n=spec.planned_n)
    assert r.verdict is not Verdict.FAIL, r.explanation
    assert r.verdict is Verdict.INCONCLUSIVE and "straddles -1" in r.explanation


def test_reference_statement_on_hand_worked_cases():
    """The reference itself, checked by hand, so the property test cannot agree with a wrong twin."""
    rv = get_claim("rv_contraction")  # 95% CI < −1 and p < 0.00125, directional ("below")
    n = rv.planned_n

    def ref(low, high, p, **kw):
        return reference_verdict(rv, estimate=None, ci_low=low, ci_high=high, p_value=p, step_cis=None,
                                 **({"n": n, "undefined": None} | kw))

    assert ref(-1.12, -0.23, 0.0018) == "INCONCLUSIVE"  # straddles, p ≥ α: undecided
    assert ref(-2.0, -1.2, 1e-6) == "PASS"
    assert ref(-0.9, 0.1, 1e-6) == "FAIL"  # wholly above −1
    assert ref(-1.0, 0.1, 1e-6) == "FAIL"  # touching −1 from above is not below −1
    assert ref(-2.0, 0.5, 0.9999) == "FAIL"  # one-sided p ≥ 1 − α: the other direction is significant
    assert ref(-2.0, -1.2, 1e-6, n=n - 1) == "INCONCLUSIVE"
    assert ref(-2.0, -1.2, 1e-6, undefined="x") == "INCONCLUSIVE"
    v = get_claim("v_patch_null")  # 90% CI inside (−0.1, 0.1), no p
    assert reference_verdict(v, estimate=0.0, ci_low=0.1, ci_high=0.3, p_value=None, step_cis=None,
                             n=v.planned_n, undefined=None) == "FAIL"
    assert reference_verdict(v, estimate=0.0, ci_low=0.05, ci_high=0.15, p_value=None, step_cis=None,
                             n=v.planned_n, undefined=None) == "INCONCLUSIVE"


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_one_contrast_at_or_below_its_bound_fails_and_all_above_with_a_met_rule_pass(data):
    """With the main CI and p met: every contrast CI wholly above the bound → PASS; any contrast CI wholly at or
    below it → FAIL, whatever the others; otherwise INCONCLUSIVE."""
    spec = get_claim("reverse_patch_necessity")
    bound = spec.criteria[2].bound
    names = spec.criteria[2].names
    cis = {}
    for name in names:
        where = data.draw(st.sampled_from(["above", "below", "straddles"]))
        lo = data.draw(st.floats(-2.0, 2.0))
        width = data.draw(st.floats(0.0, 1.0))
        if where == "above":
            lo = bound + abs(lo) + 1e-9
        elif where == "below":
            lo = bound - abs(lo) - width
        else:
            lo, width = bound - abs(lo) - 1e-9, abs(lo) + 2e-9 + width
        cis[name] = (lo, lo + width)
    r = evaluate(spec, model="toy", estimate=0.9, ci_low=0.7, ci_high=1.1, p_value=spec.alpha_test / 2,
                 n=spec.planned_n, contrast_cis=cis)
    highs = [hi for _, hi in cis.values()]
    lows = [lo for lo, _ in cis.values()]
    if any(h <= bound for h in highs):
        assert r.verdict is Verdict.FAIL, r.explanation
    elif all(lo > bound for lo in lows):
        assert r.verdict is Verdict.PASS, r.explanation
    else:
        assert r.verdict is Verdict.INCONCLUSIVE, r.explanation
    assert r.details["contrast_cis"] == {k: list(v) for k, v in cis.items()}


def test_contrasts_on_hand_worked_cases_and_missing_contrasts_are_refused():
    spec = get_claim("reverse_patch_necessity")  # 95% CI ≥ 0.5, p, every contrast CI > 0
    ok = {"model": "toy", "estimate": 0.9, "ci_low": 0.7, "ci_high": 1.1, "p_value": 1e-6, "n": spec.planned_n}
    assert evaluate(spec, **ok, contrast_cis={"recursive_donor": (0.1, 0.5), "random_kv": (0.2, 0.9)}).passed
    touching = evaluate(spec, **ok, contrast_cis={"recursive_donor": (0.0, 0.5), "random_kv": (0.2, 0.9)})
    assert touching.verdict is Verdict.INCONCLUSIVE  # a lower bound at 0 is not above 0
    at_zero = evaluate(spec, **ok, contrast_cis={"recursive_donor": (-0.4, 0.0), "random_kv": (0.2, 0.9)})
    assert at_zero.verdict is Verdict.FAIL and "recursive_donor 95% CI [-0.4, 0]" in at_zero.explanation
    nan = evaluate(spec, **ok, contrast_cis={"recursive_donor": (math.nan, 0.5), "random_kv": (0.2, 0.9)})
    assert nan.verdict is Verdict.INCONCLUSIVE
    with pytest.raises(ValueError, match="recursive_donor"):
        evaluate(spec, **ok, contrast_cis={"random_kv": (0.1, 0.5)})
