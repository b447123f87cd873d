"""The confabulation-signature statistics (:mod:`harness.exchange.confabulation`) and its rule (``ci_differs``).

References are written independently: statsmodels OLS with pair fixed effects for the adjusted difference and its
p, the normal equations for residualisation, and the rule's wording for ``ci_differs``.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import statsmodels.api as sm
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.claim.verdicts import Verdict, evaluate
from harness.exchange.confabulation import (
    DegenerateDesignError,
    PairCovariates,
    adjusted_contrast,
    adjusted_difference,
    adjusted_hedges_g,
    mean_word_zipf,
    residual_hedges_g,
    residualize,
)
from harness.registry import ci_differs, get_claim
from harness.stats import hedges_g


def _design(seed: int, n: int, effect: float = 0.0) -> tuple[np.ndarray, np.ndarray, PairCovariates, PairCovariates]:
    """n pairs: a pair level, covariates with slopes, a confabulation shift ``effect`` and noise."""
    rng = np.random.default_rng(seed)
    pair_level = rng.normal(0.0, 1.0, n)
    tg, tc = rng.integers(20, 30, n).astype(float), rng.integers(20, 34, n).astype(float)
    zg, zc = rng.normal(6.0, 0.2, n), rng.normal(5.8, 0.2, n)
    yg = pair_level + 0.05 * tg - 0.4 * zg + rng.normal(0, 0.5, n)
    yc = pair_level + 0.05 * tc - 0.4 * zc + effect + rng.normal(0, 0.5, n)
    return yc, yg, PairCovariates.of(tc, zc), PairCovariates.of(tg, zg)


seeds = st.integers(0, 2**31 - 1)
pair_counts = st.integers(5, 30)


@settings(max_examples=60, deadline=None)
@given(seeds, pair_counts)
def test_adjusted_difference_is_the_group_coefficient_of_a_pair_fixed_effects_ols(seed, n):
    yc, yg, cc, cg = _design(seed, n, effect=0.3)
    d = adjusted_difference(yc, yg, cc, cg)
    y = np.concatenate([yc, yg])
    pair_dummies = np.vstack([np.eye(n), np.eye(n)])
    group = np.concatenate([np.ones(n), np.zeros(n)])
    x = np.column_stack([group, np.concatenate([cc.tokens, cg.tokens]), np.concatenate([cc.zipf, cg.zipf]),
                         pair_dummies])
    fit = sm.OLS(y, x).fit()
    assert d.beta == pytest.approx(fit.params[0], abs=1e-9)
    assert d.se == pytest.approx(fit.bse[0], rel=1e-7)
    assert d.p_value == pytest.approx(fit.pvalues[0], rel=1e-6, abs=1e-12)
    assert d.df == int(fit.df_resid) == n - 3
    assert (d.slope_tokens, d.slope_zipf) == pytest.approx((fit.params[1], fit.params[2]), abs=1e-9)


@settings(max_examples=60, deadline=None)
@given(seeds, pair_counts, st.floats(-3, 3), st.floats(-3, 3), st.floats(-5, 5))
def test_what_the_covariates_or_the_pair_explain_does_not_move_the_adjusted_difference(seed, n, a, b, shift):
    yc, yg, cc, cg = _design(seed, n)
    rng = np.random.default_rng(seed + 1)
    pair = rng.normal(0, 2, yc.size)
    before = adjusted_difference(yc, yg, cc, cg).beta
    after = adjusted_difference(yc + a * cc.tokens + b * cc.zipf + pair + shift,
                                yg + a * cg.tokens + b * cg.zipf + pair + shift, cc, cg).beta
    assert after == pytest.approx(before, abs=1e-7)
    # a constant added to the confabulation side only is exactly the adjusted difference it adds
    assert adjusted_difference(yc + shift, yg, cc, cg).beta == pytest.approx(before + shift, abs=1e-7)


@settings(max_examples=60, deadline=None)
@given(seeds, pair_counts, st.floats(0.01, 100), st.floats(-10, 10))
def test_adjusted_g_is_antisymmetric_and_invariant_to_rescaling_the_statistic(seed, n, scale, offset):
    yc, yg, cc, cg = _design(seed, n, effect=0.4)
    g = adjusted_hedges_g(yc, yg, cc, cg)
    assert adjusted_hedges_g(yg, yc, cg, cc) == pytest.approx(-g, rel=1e-9, abs=1e-12)
    assert adjusted_hedges_g(scale * yc + offset, scale * yg + offset, cc, cg) == pytest.approx(g, rel=1e-7, abs=1e-9)
    assert math.copysign(1.0, g) == math.copysign(1.0, adjusted_difference(yc, yg, cc, cg).beta)


def test_adjusted_g_recovers_a_known_shift_in_within_group_sd_units():
    rng = np.random.default_rng(0)
    n = 4000
    tg, tc = rng.integers(20, 30, n).astype(float), rng.integers(22, 34, n).astype(float)
    zg, zc = rng.normal(6.0, 0.2, n), rng.normal(5.8, 0.2, n)
    yg = 0.1 * tg + rng.normal(0, 1.0, n)
    yc = 0.1 * tc + 0.5 + rng.normal(0, 1.0, n)  # true shift 0.5 in noise-SD units, covariates add spread to s_w
    g = adjusted_hedges_g(yc, yg, PairCovariates.of(tc, zc), PairCovariates.of(tg, zg))
    s_w = math.sqrt(1.0 + 0.1**2 * np.var(np.concatenate([tg, tc])))
    assert g == pytest.approx(0.5 / s_w, abs=0.06)


def test_p_values_are_calibrated_under_no_difference():
    ps = np.array([adjusted_difference(*_design(seed, 15)).p_value for seed in range(400)])
    assert np.mean(ps < 0.05) == pytest.approx(0.05, abs=0.03)
    assert np.mean(ps < 0.5) == pytest.approx(0.5, abs=0.08)


def test_bootstrap_ci_is_seeded_and_covers_its_estimate():
    yc, yg, cc, cg = _design(3, 20, effect=1.0)
    a = adjusted_contrast(yc, yg, cc, cg, level=0.90, seed=7, n_resamples=999)
    b = adjusted_contrast(yc, yg, cc, cg, level=0.90, seed=7, n_resamples=999)
    assert (a.ci.low, a.ci.high) == (b.ci.low, b.ci.high)
    assert a.ci.low < a.estimate < a.ci.high and a.n_pairs == 20
    assert a.estimate == pytest.approx(adjusted_hedges_g(yc, yg, cc, cg))


def test_unidentified_designs_and_bad_input_raise_one_line_errors():
    yc, yg, cc, cg = _design(1, 10)
    with pytest.raises(DegenerateDesignError, match="at least 4"):
        adjusted_difference(yc[:3], yg[:3], PairCovariates.of(cc.tokens[:3], cc.zipf[:3]),
                            PairCovariates.of(cg.tokens[:3], cg.zipf[:3]))
    same = PairCovariates.of(cg.tokens + 2.0, cg.zipf - 0.1)  # constant differences: collinear with the intercept
    with pytest.raises(DegenerateDesignError, match="collinear"):
        adjusted_difference(yc, yg, same, cg)
    with pytest.raises(ValueError, match="one value per pair"):
        adjusted_difference(yc[:-1], yg, cc, cg)
    with pytest.raises(ValueError, match="one covariate row per pair"):
        adjusted_difference(yc[:-1], yg[:-1], cc, cg)
    with pytest.raises(ValueError, match="finite"):
        adjusted_difference(np.where(np.arange(10) == 0, np.nan, yc), yg, cc, cg)
    with pytest.raises(DegenerateDesignError, match="constant"):
        adjusted_hedges_g(np.ones(10), np.ones(10), cc, cg)
    with pytest.raises(ValueError, match="equal length"):
        PairCovariates.of([1.0, 2.0], [1.0])


@settings(max_examples=80, deadline=None)
@given(seeds, st.integers(6, 40), st.integers(1, 3), st.floats(-3, 3), st.floats(-3, 3))
def test_residuals_are_orthogonal_to_the_design_and_ignore_what_it_explains(seed, n, k, a, b):
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 1, (n, k))
    y = rng.normal(0, 1, n)
    r = residualize(y, x)
    design = np.column_stack([np.ones(n), x])
    assert np.abs(design.T @ r).max() < 1e-8 * max(1.0, np.abs(y).sum())
    explained = a + b * x[:, 0]
    np.testing.assert_allclose(residualize(y + explained, x), r, atol=1e-8)
    np.testing.assert_allclose(residualize(r, x), r, atol=1e-8)  # idempotent


def test_residualize_refuses_bad_shapes_and_too_few_values():
    with pytest.raises(ValueError, match="n × k"):
        residualize(np.ones(5), np.ones((4, 2)))
    with pytest.raises(ValueError, match="residual left"):
        residualize(np.arange(3.0), np.arange(6.0).reshape(3, 2))


def test_residual_g_is_hedges_g_of_pooled_residuals_and_zero_when_covariates_explain_the_groups():
    yc, yg, cc, cg = _design(5, 20, effect=0.8)
    y = np.concatenate([yc, yg])
    x = np.column_stack([np.concatenate([cc.tokens, cg.tokens]), np.concatenate([cc.zipf, cg.zipf])])
    beta, *_ = np.linalg.lstsq(np.column_stack([np.ones(40), x]), y, rcond=None)
    r = y - np.column_stack([np.ones(40), x]) @ beta
    assert residual_hedges_g(yc, yg, cc, cg) == pytest.approx(hedges_g(r[:20], r[20:]))
    exact_c, exact_g = 0.3 * cc.tokens - cc.zipf, 0.3 * cg.tokens - cg.zipf
    assert residual_hedges_g(exact_c + 1e-3 * np.sin(np.arange(20)), exact_g, cc, cg) == pytest.approx(0, abs=0.5)


def test_mean_word_zipf_reads_real_frequencies():
    assert mean_word_zipf("veridium pellingford varessia") == 0.0  # invented words are unknown
    common, rare = mean_word_zipf("the water of the sea"), mean_word_zipf("the veridium of the sea")
    assert 4.0 < rare < common < 8.0
    with pytest.raises(ValueError, match="no words"):
        mean_word_zipf(" ,.; ")


# -------------------------------------------------------------------------------- the ci_differs rule


def _rule_state(low: float, high: float, band: tuple[float, float]) -> str:
    """The rule's words: inside the open band → not met (equivalence); else excluding 0 → met; else undecided."""
    if band[0] < low and high < band[1]:
        return "not met"
    if high < 0 or low > 0:
        return "met"
    return "undecided"


edges = st.sampled_from([-0.5, -0.2, 0.0, 0.2, 0.5, -1e-9, 1e-9, 0.5 + 1e-9, -0.5 - 1e-9, 1.3, -2.0])


@settings(max_examples=400, deadline=None)
@given(edges, edges, st.sampled_from([0.0, 0.001, 0.5, 1.0]), st.sampled_from([0, 0, 1, -1]))
def test_ci_differs_verdicts_follow_its_words(a, b, p, n_offset):
    spec = get_claim("confabulation_signature")
    low, high = min(a, b), max(a, b)
    n = spec.planned_n + n_offset
    result = evaluate(spec, model="toy", estimate=(low + high) / 2, ci_low=low, ci_high=high, p_value=p, n=n)
    state = _rule_state(low, high, (-0.5, 0.5))
    p_met = p < spec.alpha_test
    if n < spec.planned_n:
        expected = Verdict.INCONCLUSIVE
    elif state == "not met":
        expected = Verdict.FAIL  # equivalence, whatever p says
    elif state == "met" and p_met:
        expected = Verdict.PASS
    else:
        expected = Verdict.INCONCLUSIVE  # a large two-sided p never fails a non-directional claim by itself
    assert result.verdict is expected, result.explanation


def test_ci_differs_needs_a_band_around_zero():
    for band in ((0.0, 0.5), (-0.5, 0.0), (0.2, 0.5), (0.5, -0.5)):
        with pytest.raises(ValueError, match="around 0"):
            ci_differs(*band)
    assert "excludes 0" in get_claim("confabulation_signature").decision_text()


def test_the_forest_figure_draws_zero_and_the_equivalence_band_of_a_ci_differs_rule():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from harness.report.figures.forest import forest

    recs = [{"claim": "confabulation_signature", "model": m, "verdict": "INCONCLUSIVE", "estimate": g,
             "ci_low": g - 0.6, "ci_high": g + 0.6, "n": 20, "details": {}}
            for m, g in (("smollm2-135m", 0.1), ("gemma3-270m", 0.2))]
    fig = plt.figure()
    try:
        forest(fig, recs, "confabulation_signature")
        ax = fig.axes[0]
        xs = {float(line.get_xdata()[0]) for line in ax.lines if line.get_linestyle() in ("--", ":")}
        assert {0.0, -0.5, 0.5} <= xs
    finally:
        plt.close(fig)


def test_paired_contrast_is_the_manipulation_as_designed_and_comes_out_both_ways():
    """Version 2's estimate: g = J · mean(confab − grounded) / s_w with a BCa CI and the paired t p. A shift of the
    confabulation side PASSes the rule's "differ" part, no shift lands inside the ±0.5 band (FAIL), whatever the
    covariates: the manipulation is not adjusted away."""
    from scipy import stats as sps

    from harness.exchange.confabulation import paired_contrast
    from harness.stats.effect_sizes import hedges_correction, pooled_sd

    rng = np.random.default_rng(3)
    grounded = rng.normal(1.0, 0.1, 40)
    shifted = grounded + 0.12 + rng.normal(0.0, 0.02, 40)
    c = paired_contrast(shifted, grounded, level=0.90, seed=1)
    expected = hedges_correction(78) * float(np.mean(shifted - grounded)) / pooled_sd(shifted, grounded)
    assert c.estimate == pytest.approx(expected) and c.ci.low <= c.estimate <= c.ci.high
    assert c.p_value == pytest.approx(sps.ttest_rel(shifted, grounded).pvalue) and c.ci.low > 0.5
    same = grounded + rng.normal(0.0, 0.01, 40)
    null = paired_contrast(same, grounded, level=0.90, seed=1)
    assert -0.5 < null.ci.low and null.ci.high < 0.5
    with pytest.raises(DegenerateDesignError, match="at least 4"):
        paired_contrast(shifted[:3], grounded[:3], level=0.90, seed=1)
