"""harness.stats agrees with scipy / statsmodels or with brute-force enumeration, to 1e-10."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy import stats as sps
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.weightstats import ttest_ind as sm_ttest_ind

from harness import stats as hs

TOL = 1e-10


@pytest.fixture(scope="module")
def samples() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(20240601)
    return rng.normal(0.0, 1.0, 23), rng.gamma(2.0, 1.5, 17)


def test_cohens_d_matches_pooled_t(samples):
    x, y = samples
    t = sps.ttest_ind(x, y, equal_var=True).statistic
    assert hs.cohens_d(x, y) == pytest.approx(t * math.sqrt(1 / x.size + 1 / y.size), abs=TOL)


def test_hedges_g_is_exact_j_times_d(samples):
    x, y = samples
    df = x.size + y.size - 2
    j_exact = math.gamma(df / 2) / (math.sqrt(df / 2) * math.gamma((df - 1) / 2))
    assert hs.hedges_g(x, y) == pytest.approx(j_exact * hs.cohens_d(x, y), abs=TOL)
    # the familiar approximation is close but not what we compute
    assert hs.hedges_correction(df) == pytest.approx(1 - 3 / (4 * df - 1), abs=1e-4)


def test_paired_dz_matches_paired_t(samples):
    x, _ = samples
    y = x * 0.5 + np.linspace(0, 1, x.size)
    t = sps.ttest_rel(x, y).statistic
    assert hs.paired_dz(x, y) == pytest.approx(t / math.sqrt(x.size), abs=TOL)


@pytest.mark.parametrize("alternative", ["two-sided", "less", "greater"])
def test_welch_t_matches_scipy_and_statsmodels(samples, alternative):
    x, y = samples
    t, df, p = hs.welch_t(x, y, alternative)
    ref = sps.ttest_ind(x, y, equal_var=False, alternative=alternative)
    sm_alt = {"two-sided": "two-sided", "less": "smaller", "greater": "larger"}[alternative]
    sm_t, sm_p, sm_df = sm_ttest_ind(x, y, usevar="unequal", alternative=sm_alt)
    assert (t, df, p) == pytest.approx((ref.statistic, ref.df, ref.pvalue), abs=TOL)
    assert (t, df, p) == pytest.approx((sm_t, sm_df, sm_p), abs=TOL)


def _u_of_x(x: np.ndarray, y: np.ndarray) -> float:
    return float(sum((xi > yj) + 0.5 * (xi == yj) for xi in x for yj in y))


def test_mann_whitney_exact_matches_enumeration():
    x = np.array([1.1, 3.4, 2.2, 5.0, 0.3])
    y = np.array([4.1, 6.2, 2.9, 7.7, 5.5, 3.8])
    pooled = np.concatenate([x, y])
    u_obs = _u_of_x(x, y)
    us = []
    for idx in itertools.combinations(range(pooled.size), x.size):
        mask = np.zeros(pooled.size, bool)
        mask[list(idx)] = True
        us.append(_u_of_x(pooled[mask], pooled[~mask]))
    us_arr = np.array(us)
    p_less = np.mean(us_arr <= u_obs)
    res = hs.mann_whitney(x, y, "less")
    assert res.statistic == pytest.approx(u_obs, abs=TOL)
    assert res.p_value == pytest.approx(p_less, abs=TOL)


def test_wilcoxon_exact_matches_sign_enumeration():
    d = np.array([0.5, -1.2, 2.3, 3.1, -0.4, 1.7, 2.8, 0.9])
    ranks = sps.rankdata(np.abs(d))
    w_plus_obs = ranks[d > 0].sum()
    w_plus = [ranks[np.array(s) > 0].sum() for s in itertools.product([-1, 1], repeat=d.size)]
    p_greater = np.mean(np.array(w_plus) >= w_plus_obs)
    res = hs.wilcoxon_paired(d, np.zeros_like(d), "greater")
    assert res.p_value == pytest.approx(p_greater, abs=TOL)


def test_permutation_tests_exact_match_enumeration():
    x = np.array([2.0, 3.5, 4.1, 1.9, 5.2])
    y = np.array([1.0, 0.4, 2.2, 1.5])
    pooled = np.concatenate([x, y])
    obs = x.mean() - y.mean()
    diffs = []
    for idx in itertools.combinations(range(pooled.size), x.size):
        mask = np.zeros(pooled.size, bool)
        mask[list(idx)] = True
        diffs.append(pooled[mask].mean() - pooled[~mask].mean())
    p_ref = np.mean(np.array(diffs) >= obs - 1e-12)
    res = hs.permutation_test_ind(x, y, alternative="greater", rng=0)
    assert res.statistic == pytest.approx(obs, abs=TOL)
    assert res.p_value == pytest.approx(p_ref, abs=TOL)

    a = np.array([1.2, 2.5, 0.3, 4.4, 2.2, 1.9])
    b = np.array([1.0, 1.1, 0.9, 2.0, 2.5, 0.1])
    d = a - b
    flips = [np.mean(d * np.array(s)) for s in itertools.product([-1, 1], repeat=d.size)]
    p_pair = np.mean(np.array(flips) >= d.mean() - 1e-12)
    assert hs.permutation_test_paired(a, b, alternative="greater", rng=0).p_value == pytest.approx(p_pair, abs=TOL)


def test_tost_matches_two_one_sided_t_tests(samples):
    x, _ = samples
    y = x + np.random.default_rng(3).normal(0.05, 0.3, x.size)
    res = hs.tost_paired(x, y, -0.2, 0.2)
    d = x - y
    p_lo = sps.ttest_1samp(d, -0.2, alternative="greater").pvalue
    p_hi = sps.ttest_1samp(d, 0.2, alternative="less").pvalue
    assert (res.p_lower, res.p_upper, res.p_value) == pytest.approx((p_lo, p_hi, max(p_lo, p_hi)), abs=TOL)

    x2, y2 = samples
    r2 = hs.tost_ind(x2, y2, -1.0, 1.0)
    p_lo2 = sps.ttest_ind(x2 + 1.0, y2, equal_var=False, alternative="greater").pvalue
    p_hi2 = sps.ttest_ind(x2 - 1.0, y2, equal_var=False, alternative="less").pvalue
    assert (r2.p_lower, r2.p_upper) == pytest.approx((p_lo2, p_hi2), abs=TOL)


def test_page_trend_statistic_matches_definition():
    rng = np.random.default_rng(7)
    data = rng.normal(size=(9, 5)) + 0.3 * np.arange(5)
    ranks = np.apply_along_axis(sps.rankdata, 1, data)
    l_ref = float(np.sum(ranks.sum(axis=0) * np.arange(1, 6)))
    res = hs.page_trend(data)
    assert res.statistic == pytest.approx(l_ref, abs=TOL)
    assert res.p_value == pytest.approx(sps.page_trend_test(data).pvalue, abs=TOL)


def test_spearman_is_pearson_of_ranks(samples):
    x, _ = samples
    y = x**3 + np.random.default_rng(5).normal(0, 0.5, x.size)
    rho = hs.spearman(x, y).statistic
    assert rho == pytest.approx(sps.pearsonr(sps.rankdata(x), sps.rankdata(y)).statistic, abs=TOL)


def _holm_by_definition(p: np.ndarray) -> np.ndarray:
    m = p.size
    order = np.argsort(p)
    adj = np.empty(m)
    running = 0.0
    for i, k in enumerate(order):
        running = max(running, min(1.0, (m - i) * p[k]))
        adj[k] = running
    return adj


def test_holm_and_bh_match_references():
    p = np.array([0.001, 0.04, 0.03, 0.2, 0.0001, 0.5])
    assert hs.holm(p) == pytest.approx(_holm_by_definition(p), abs=TOL)
    assert hs.benjamini_hochberg(p) == pytest.approx(multipletests(p, method="fdr_bh")[1], abs=TOL)


def test_fixed_family_size_treats_missing_as_one():
    p = np.array([0.001, 0.02])
    padded = np.array([0.001, 0.02, 1.0, 1.0, 1.0])
    assert hs.holm(p, family_size=5) == pytest.approx(_holm_by_definition(padded)[:2], abs=TOL)
    assert hs.benjamini_hochberg(p, 5) == pytest.approx(multipletests(padded, method="fdr_bh")[1][:2], abs=TOL)
    with pytest.raises(ValueError, match="family_size"):
        hs.holm(p, family_size=1)


def test_bootstrap_wraps_scipy_unchanged_for_independent_samples(samples):
    x, y = samples
    ci = hs.bootstrap_ci(hs.hedges_g, x, y, method="percentile", n_resamples=2000, rng=11)
    ref = sps.bootstrap((x, y), hs.hedges_g, vectorized=False, method="percentile", n_resamples=2000,
                        rng=np.random.default_rng(11))
    # same generator, same draws: our unit-index indirection must not change the resamples
    assert (ci.low, ci.high) == pytest.approx((ref.confidence_interval.low, ref.confidence_interval.high), abs=TOL)
    assert ci.estimate == pytest.approx(hs.hedges_g(x, y), abs=TOL)
    assert ci.n_units == (x.size, y.size)
