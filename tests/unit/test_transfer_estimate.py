"""Transfer T and its step CIs on hand-made condition runs (no model): the formula, pairing, undefined gaps."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from harness import transfer as tr
from harness.behaviour import BehaviourScore
from harness.claim.verdicts import Verdict, evaluate
from harness.registry import get_claim

FLOATS = st.floats(0.0, 1.0, width=32, allow_nan=False, allow_infinity=False, allow_subnormal=False)


def _score(s: float, degenerate: bool, n_words: int) -> BehaviourScore:
    """Hand-made scores: the registered score (classifier_gated) and the embedding scores all equal ``s``."""
    return BehaviourScore(classifier_p=s, classifier_gated=s, recursive=s >= 0.5, lexicon_raw=0.0, lexicon_gated=0.0,
                          embedding_raw=s, embedding_gated=s, embedding_margin=s, distinct_2=1.0, repeat_share=0.0,
                          degenerate=degenerate, n_words=n_words)


def _run(condition: tr.Condition, scores, pair_ids=None, degenerate=None, n_words=None, donors=None) -> tr.ConditionRun:
    pair_ids = pair_ids or [f"p{i}" for i in range(len(scores))]
    degenerate = degenerate or [False] * len(scores)
    n_words = n_words or [2] * len(scores)
    donors = donors or [None] * len(scores)
    outcomes = tuple(
        tr.PairOutcome(
            pair_id=pid, condition=condition.name, recipient_id=f"base-{pid}", donor_id=donor, first_position=10,
            samples=(tr.Continuation(0, f"text {pid}", (1, 2), False, 1.0,
                                     _score(float(s), bool(d), w)),),
        )
        for pid, s, d, w, donor in zip(pair_ids, scores, degenerate, n_words, donors)
    )
    return tr.ConditionRun(condition, "hand-made", outcomes)


def _formula(p, b, a) -> float:
    return (np.mean(p) - np.mean(b)) / (np.mean(a) - np.mean(b))


def test_transfer_equals_the_formula_on_hand_made_scores():
    b = [0.0, 0.1, 0.05, 0.0, 0.2, 0.1]
    a = [0.6, 0.5, 0.7, 0.4, 0.8, 0.6]
    p = [0.3, 0.2, 0.5, 0.1, 0.4, 0.3]
    res = tr.estimate_transfer(_run(tr.KV_MAIN, p), _run(tr.NATURAL_BASELINE, b), _run(tr.NATURAL_RECURSIVE, a),
                      level=0.95, rng=0, n_resamples=999)
    assert res.estimate == pytest.approx(_formula(p, b, a))
    assert res.undefined_reason is None and res.n == 6
    assert res.ci.low <= res.estimate <= res.ci.high
    assert res.gap.low > 0
    assert (res.patched_mean, res.recipient_mean, res.donor_mean) == pytest.approx((np.mean(p), np.mean(b), np.mean(a)))


@given(st.lists(st.tuples(FLOATS, FLOATS, FLOATS), min_size=3, max_size=12))
def test_transfer_point_estimate_is_the_ratio_of_mean_differences(rows):
    p, b, a = (list(col) for col in zip(*rows))
    gap = np.mean(a) - np.mean(b)
    res = tr.estimate_transfer(_run(tr.KV_MAIN, p), _run(tr.NATURAL_BASELINE, b), _run(tr.NATURAL_RECURSIVE, a),
                      level=0.9, rng=1, n_resamples=199)
    if gap == 0:
        assert np.isnan(res.estimate) and res.undefined_reason is not None
    else:
        assert res.estimate == pytest.approx(_formula(p, b, a), rel=1e-9, abs=1e-12)


def test_patched_equal_to_donor_gives_one_and_to_recipient_gives_zero():
    b, a = [0.0, 0.1, 0.2, 0.1], [0.5, 0.7, 0.6, 0.9]
    kw = dict(level=0.95, rng=0, n_resamples=499)
    assert tr.estimate_transfer(_run(tr.KV_MAIN, a), _run(tr.NATURAL_BASELINE, b), _run(tr.NATURAL_RECURSIVE, a), **kw).estimate == pytest.approx(1.0)
    assert tr.estimate_transfer(_run(tr.KV_MAIN, b), _run(tr.NATURAL_BASELINE, b), _run(tr.NATURAL_RECURSIVE, a), **kw).estimate == 0.0


def test_undefined_denominator_makes_the_claim_inconclusive():
    b = [0.0, 0.3, 0.1, 0.4, 0.2, 0.0]
    a = [0.3, 0.0, 0.4, 0.1, 0.0, 0.2]  # natural gap ≈ 0 with a CI around 0
    p = [0.5, 0.6, 0.4, 0.5, 0.6, 0.5]
    res = tr.estimate_transfer(_run(tr.KV_MAIN, p), _run(tr.NATURAL_BASELINE, b), _run(tr.NATURAL_RECURSIVE, a),
                      level=0.95, rng=0, n_resamples=999)
    assert res.undefined_reason is not None and "includes 0" in res.undefined_reason
    spec = get_claim("kv_transfer")
    result = evaluate(spec, model="hand-made", estimate=res.estimate, ci_low=res.ci.low, ci_high=res.ci.high,
                      p_value=0.0001, n=spec.planned_n, undefined_reason=res.undefined_reason)
    assert result.verdict is Verdict.INCONCLUSIVE and "undefined" in result.explanation


def test_all_zero_scores_are_undefined_not_an_error():
    zeros = [0.0] * 5
    res = tr.estimate_transfer(_run(tr.KV_MAIN, zeros), _run(tr.NATURAL_BASELINE, zeros), _run(tr.NATURAL_RECURSIVE, zeros),
                      level=0.95, rng=0, n_resamples=199)
    assert res.undefined_reason is not None and np.isnan(res.estimate)


def test_transfer_is_paired_by_pair_id():
    b = _run(tr.NATURAL_BASELINE, [0.0, 0.1, 0.2], ["x", "y", "z"])
    a = _run(tr.NATURAL_RECURSIVE, [0.5, 0.6, 0.7], ["x", "y", "z"])
    shuffled = _run(tr.KV_MAIN, [0.3, 0.3, 0.3], ["y", "x", "z"])
    with pytest.raises(ValueError, match="different pairs"):
        tr.estimate_transfer(shuffled, b, a, level=0.95, rng=0)
    with pytest.raises(ValueError, match="at least 2 pairs"):
        tr.estimate_transfer(_run(tr.KV_MAIN, [0.1]), _run(tr.NATURAL_BASELINE, [0.0]), _run(tr.NATURAL_RECURSIVE, [0.5]),
                    level=0.95, rng=0)


@given(st.lists(st.tuples(FLOATS, FLOATS, FLOATS, FLOATS), min_size=3, max_size=10))
def test_step_estimates_are_mean_steps_over_the_gap_and_sum_to_the_total(rows):
    b, mid, top, a = (list(col) for col in zip(*rows))
    gap = np.mean(a) - np.mean(b)
    ladder = [_run(tr.NATURAL_BASELINE, b), _run(tr.kv_alpha(0.5), mid), _run(tr.KV_MAIN, top)]
    steps = tr.transfer_step_cis(ladder, ladder[0], _run(tr.NATURAL_RECURSIVE, a), level=0.95, rng=0,
                                 n_resamples=99)
    if gap == 0:
        assert all(np.isnan(s.estimate) for s in steps)
        return
    assert steps[0].estimate == pytest.approx((np.mean(mid) - np.mean(b)) / gap, rel=1e-9, abs=1e-9)
    assert sum(s.estimate for s in steps) == pytest.approx(_formula(top, b, a), rel=1e-9, abs=1e-9)


def test_run_summaries_count_degenerate_and_empty_continuations_and_give_examples():
    run = _run(tr.KV_MAIN, [0.0, 0.5, 0.2, 0.1], degenerate=[True, False, True, False], n_words=[0, 5, 5, 5])
    assert run.degenerate_share == 0.5 and run.empty_share == 0.25
    assert run.examples(2) == ["text p0", "text p1"]
    summary = run.summary()
    assert summary["mean_score"] == pytest.approx(0.2) and summary["n_pairs"] == 4
    assert summary["n_continuations"] == 4 and summary["degenerate_share"] == 0.5 and summary["empty_share"] == 0.25


def test_pairs_sharing_a_prompt_are_bootstrapped_as_one_cluster():
    b = _run(tr.NATURAL_BASELINE, [0.0, 0.1, 0.0, 0.2])
    a = _run(tr.NATURAL_RECURSIVE, [0.5, 0.6, 0.7, 0.8])
    own = _run(tr.KV_MAIN, [0.3, 0.2, 0.4, 0.3], donors=["rec-p0", "rec-p1", "rec-p2", "rec-p3"])
    assert tr.prompt_clusters(own, b, a) is None  # no prompt recurs: plain paired bootstrap
    cross = _run(tr.CROSS_BASELINE, [0.0, 0.1, 0.0, 0.1], donors=["base-p1", "base-p0", "base-p3", "x"])
    labels = tr.prompt_clusters(cross, b, a)
    assert labels is not None and labels[0] == labels[1] and labels[2] == labels[3] and labels[0] != labels[2]
    res = tr.estimate_transfer(cross, b, a, level=0.9, rng=0, n_resamples=199)
    assert res.ci.n_units == (2,)


def test_transfer_difference_is_the_difference_of_ts_and_exactly_zero_differences_give_the_point_zero():
    b = [0.0, 0.1, 0.05, 0.0, 0.2, 0.1]
    a = [0.6, 0.5, 0.7, 0.4, 0.8, 0.6]
    up, low = [0.5, 0.4, 0.6, 0.3, 0.7, 0.5], [0.1, 0.2, 0.1, 0.0, 0.3, 0.2]
    nb, na = _run(tr.NATURAL_BASELINE, b), _run(tr.NATURAL_RECURSIVE, a)
    d = tr.transfer_difference(_run(tr.KV_MAIN, up), _run(tr.CROSS_BASELINE, low), nb, na, level=0.95, rng=0,
                               n_resamples=999)
    assert d.estimate == pytest.approx(_formula(up, b, a) - _formula(low, b, a))
    assert d.low <= d.estimate <= d.high and not d.degenerate
    same = tr.transfer_difference(_run(tr.KV_MAIN, low), _run(tr.ORDER_ABLATION, low), nb, na, level=0.9, rng=0,
                                  n_resamples=199)
    assert (same.estimate, same.low, same.high, same.degenerate) == (0.0, 0.0, 0.0, False)
    spec = get_claim("kv_order_ablation")  # identical T(main) and T(order-ablated) on every pair: equivalent
    assert evaluate(spec, model="hand-made", estimate=0.0, ci_low=same.low, ci_high=same.high,
                    n=spec.planned_n).verdict is Verdict.PASS


def test_registered_score_with_no_natural_behaviour_to_transfer_is_inconclusive():
    """A model whose natural recursive continuations score barely above its baselines (gap 0.04, CI clear of 0 but
    under the registered minimum) gets no T for the registered score, and the claim is INCONCLUSIVE with that reason;
    the same numbers as another measure (no minimum) give a defined T."""
    from harness.foundation.behavioural_regime import MIN_NATURAL_GAP

    rng = np.random.default_rng(3)
    b = list(rng.uniform(0.0, 0.02, 40))
    a = [x + 0.04 + rng.normal(0, 0.002) for x in b]
    p = [x + 0.02 for x in b]
    runs = _run(tr.KV_MAIN, p), _run(tr.NATURAL_BASELINE, b), _run(tr.NATURAL_RECURSIVE, a)
    res = tr.estimate_transfer(*runs, level=0.95, rng=0, n_resamples=499)
    assert MIN_NATURAL_GAP == 0.10 and res.gap.low > 0
    assert res.undefined_reason is not None and "no behaviour to transfer" in res.undefined_reason
    spec = get_claim("kv_transfer")
    result = evaluate(spec, model="hand-made", estimate=res.estimate, ci_low=res.ci.low, ci_high=res.ci.high,
                      p_value=0.0001, n=spec.planned_n, undefined_reason=res.undefined_reason)
    assert result.verdict is Verdict.INCONCLUSIVE and "no behaviour to transfer" in result.explanation
    assert tr.estimate_transfer(*runs, level=0.95, rng=0, n_resamples=499, measure="classifier_p").undefined_reason is None
