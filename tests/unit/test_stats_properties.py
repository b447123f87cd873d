"""Metamorphic and property tests of harness.stats (hypothesis), plus bootstrap clustering and errors."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from harness import stats as hs

finite = st.floats(min_value=-100, max_value=100, allow_nan=False, allow_infinity=False, allow_subnormal=False,
                   width=32)
sample = hnp.arrays(np.float32, st.integers(3, 20), elements=finite).map(lambda a: a.astype(np.float64))


def _spread(a: np.ndarray) -> bool:
    return float(np.std(a)) > 1e-3 * (1.0 + float(np.max(np.abs(a))))


@settings(deadline=None, max_examples=60)
@given(sample, sample, st.floats(0.1, 10), st.floats(-50, 50))
@example(np.array([0.0, 1.0, 2.0]), np.array([5.0, 6.0, 8.0]), 1.0, 0.0)
def test_effect_sizes_antisymmetric_and_affine_invariant(x, y, scale, shift):
    assume(_spread(x) and _spread(y))
    g = hs.hedges_g(x, y)
    assert hs.hedges_g(y, x) == pytest.approx(-g, rel=1e-9, abs=1e-9)
    assert hs.hedges_g(scale * x + shift, scale * y + shift) == pytest.approx(g, rel=1e-6, abs=1e-6)
    assert hs.hedges_g(-x, -y) == pytest.approx(-g, rel=1e-9, abs=1e-9)
    # J < 1 shrinks d toward zero
    assert abs(g) <= abs(hs.cohens_d(x, y)) + 1e-12


@settings(deadline=None, max_examples=60)
@given(sample, st.floats(0.1, 10))
def test_paired_dz_scale_invariant_and_sign(x, scale):
    y = x[::-1].copy()
    d = x - y
    assume(float(np.std(d)) > 1e-3)
    dz = hs.paired_dz(x, y)
    assert hs.paired_dz(scale * x, scale * y) == pytest.approx(dz, rel=1e-6, abs=1e-9)
    assert hs.paired_dz(y, x) == pytest.approx(-dz, rel=1e-9, abs=1e-12)


@settings(deadline=None, max_examples=30)
@given(hnp.arrays(np.float64, st.integers(1, 12), elements=st.floats(0, 1)), st.integers(0, 6))
def test_adjusted_p_bounds_and_order(p, extra):
    m = p.size + extra
    holm = hs.holm(p, m)
    bh = hs.benjamini_hochberg(p, m)
    assert np.all(holm >= p - 1e-15) and np.all(holm <= 1.0)
    assert np.all(bh >= p - 1e-15) and np.all(bh <= holm + 1e-12)
    order = np.argsort(p, kind="stable")
    assert np.all(np.diff(holm[order]) >= -1e-15)


def test_hedges_and_dz_reject_constant_samples():
    with pytest.raises(ValueError, match="constant"):
        hs.cohens_d([1.0, 1.0, 1.0], [2.0, 2.0])
    with pytest.raises(ValueError, match="constant"):
        hs.paired_dz([1.0, 2.0, 3.0], [0.0, 1.0, 2.0])
    with pytest.raises(ValueError, match="NaN"):
        hs.hedges_g([1.0, np.nan], [1.0, 2.0])
    with pytest.raises(ValueError, match="equal length"):
        hs.paired_dz([1.0, 2.0, 3.0], [1.0, 2.0])
    with pytest.raises(ValueError, match="alternative"):
        hs.welch_t([1.0, 2.0], [3.0, 4.0], "bigger")


# ----------------------------------------------------------------------------------------- bootstrap


def _mean_diff(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.mean(a) - np.mean(b))


def test_singleton_clusters_equal_paired_resampling():
    rng = np.random.default_rng(1)
    a, b = rng.normal(1, 1, 15), rng.normal(0, 1, 15)
    paired = hs.bootstrap_ci(_mean_diff, a, b, paired=True, n_resamples=999, rng=5)
    clustered = hs.bootstrap_ci(_mean_diff, a, b, paired=True, clusters=np.arange(15), n_resamples=999, rng=5)
    assert (paired.low, paired.high) == pytest.approx((clustered.low, clustered.high), abs=1e-12)


@pytest.mark.parametrize("method", ["percentile", "BCa"])
def test_cluster_bootstrap_ignores_within_cluster_duplication(method):
    """Repeating each cluster's rows leaves cluster-level means, hence the cluster bootstrap, unchanged."""
    rng = np.random.default_rng(2)
    a, b = rng.normal(0.5, 1, 12), rng.normal(0, 1, 12)
    base = hs.bootstrap_ci(_mean_diff, a, b, paired=True, clusters=np.arange(12), method=method,
                           n_resamples=999, rng=9)
    reps = 3
    dup = hs.bootstrap_ci(_mean_diff, np.repeat(a, reps), np.repeat(b, reps), paired=True,
                          clusters=np.repeat(np.arange(12), reps), method=method, n_resamples=999, rng=9)
    assert (dup.low, dup.high) == pytest.approx((base.low, base.high), abs=1e-12)
    assert dup.n_units == (12,)
    naive = hs.bootstrap_ci(_mean_diff, np.repeat(a, reps), np.repeat(b, reps), paired=True, method=method,
                            n_resamples=999, rng=9)
    # ignoring the clustering pretends to have 3× the data and gives a narrower interval
    assert naive.high - naive.low < 0.75 * (base.high - base.low)


def test_independent_clustered_bootstrap_per_sample_labels():
    rng = np.random.default_rng(3)
    x, y = rng.normal(0, 1, 10), rng.normal(1, 1, 8)
    ci = hs.bootstrap_ci(_mean_diff, np.repeat(x, 2), np.repeat(y, 2),
                         clusters=(np.repeat(np.arange(10), 2), np.repeat(np.arange(8), 2)),
                         method="percentile", n_resamples=999, rng=4)
    ref = hs.bootstrap_ci(_mean_diff, x, y, method="percentile", n_resamples=999, rng=4)
    assert (ci.low, ci.high) == pytest.approx((ref.low, ref.high), abs=1e-12)
    assert ci.n_units == (10, 8)


def test_degenerate_bootstrap_gives_nan_not_a_point():
    ci = hs.bootstrap_ci(lambda a: 1.0, np.arange(6.0), n_resamples=200, rng=0)
    assert ci.degenerate and np.isnan(ci.low) and np.isnan(ci.high)


def test_bootstrap_rejects_bad_input():
    with pytest.raises(ValueError, match="method"):
        hs.bootstrap_ci(np.mean, np.arange(5.0), method="basic", rng=0)
    with pytest.raises(ValueError, match="equal lengths"):
        hs.bootstrap_ci(_mean_diff, np.arange(5.0), np.arange(4.0), paired=True, rng=0)
    with pytest.raises(ValueError, match="cluster label per row"):
        hs.bootstrap_ci(np.mean, np.arange(5.0), paired=True, clusters=[0, 1], rng=0)
    with pytest.raises(ValueError, match="NaN"):
        hs.bootstrap_ci(np.mean, np.array([1.0, np.nan, 2.0]), rng=0)


def test_bootstrap_coverage_of_a_mean_is_near_nominal():
    """Percentile CIs of a normal mean cover the truth near 95 % (200 sims; binomial band)."""
    rng = np.random.default_rng(12)
    hits = 0
    sims = 200
    for _ in range(sims):
        data = rng.normal(3.0, 2.0, 40)
        ci = hs.bootstrap_ci(np.mean, data, method="percentile", n_resamples=499, rng=rng)
        hits += ci.low <= 3.0 <= ci.high
    assert 0.88 <= hits / sims <= 0.99


def test_power_solver_matches_statsmodels_and_grows_with_stricter_alpha():
    from statsmodels.stats.power import TTestIndPower

    ref = TTestIndPower().solve_power(effect_size=0.8, alpha=0.025, power=0.8, alternative="larger")
    assert hs.solve_n("two-sample-t", 0.8, 0.025, 0.8) == int(np.ceil(ref))
    assert hs.solve_n("one-sample-t", 0.5, 0.001, 0.8) > hs.solve_n("one-sample-t", 0.5, 0.01, 0.8)
    with pytest.raises(ValueError, match="positive"):
        hs.solve_n("one-sample-t", 0.0, 0.05, 0.8)


def test_a_single_cluster_gives_no_interval_instead_of_an_error() -> None:
    """Every pair in one cluster (e.g. all share a donor prompt): nothing to resample, so the CI is undefined (NaN,
    degenerate) and the estimate stands; the claim then reads INCONCLUSIVE instead of erroring."""
    from harness.stats import bootstrap_ci

    x = np.array([0.1, 0.4, 0.3])
    ci = bootstrap_ci(lambda a: float(np.mean(a)), x, paired=True, clusters=[7, 7, 7], level=0.95, rng=0,
                      n_resamples=99)
    assert ci.estimate == pytest.approx(np.mean(x)) and ci.degenerate
    assert np.isnan(ci.low) and np.isnan(ci.high)
