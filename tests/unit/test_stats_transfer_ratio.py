"""Transfer T (DESIGN §4.8), adjacent-step CIs and proportion helpers."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats as sps

from harness import stats as hs


def _pairs(gap: float, t: float, n: int = 30, seed: int = 0):
    rng = np.random.default_rng(seed)
    recipient = rng.normal(0.1, 0.1, n)
    donor = recipient + rng.normal(gap, 0.1, n)
    patched = recipient + t * (donor - recipient) + rng.normal(0, 0.05, n)
    return patched, recipient, donor


def test_transfer_estimate_is_the_ratio_of_mean_differences():
    patched, recipient, donor = _pairs(0.6, 0.7)
    res = hs.transfer_ci(patched, recipient, donor, n_resamples=999, rng=1)
    expected = (patched.mean() - recipient.mean()) / (donor.mean() - recipient.mean())
    assert res.estimate == pytest.approx(expected, abs=1e-12)
    assert res.undefined_reason is None and res.ci.low < res.estimate < res.ci.high
    assert res.denominator.low > 0


def test_transfer_endpoints():
    _, recipient, donor = _pairs(0.6, 0.0)
    assert hs.transfer_ci(donor, recipient, donor, n_resamples=199, rng=0).estimate == pytest.approx(1.0)
    assert hs.transfer_ci(recipient, recipient, donor, n_resamples=199, rng=0).estimate == pytest.approx(0.0)


def test_transfer_undefined_when_gap_ci_includes_zero():
    patched, recipient, donor = _pairs(0.0, 0.5, seed=3)
    res = hs.transfer_ci(patched, recipient, donor, n_resamples=999, rng=2)
    assert res.undefined_reason is not None and "includes 0" in res.undefined_reason


@settings(deadline=None, max_examples=15)
@given(st.floats(0.2, 5.0), st.floats(-3.0, 3.0), st.booleans())
def test_transfer_is_invariant_to_affine_rescoring(scale, shift, flip):
    patched, recipient, donor = _pairs(0.5, 0.6, n=12, seed=4)
    a = -scale if flip else scale
    base = hs.transfer_ci(patched, recipient, donor, method="percentile", n_resamples=199, rng=5)
    moved = hs.transfer_ci(a * patched + shift, a * recipient + shift, a * donor + shift, method="percentile",
                           n_resamples=199, rng=5)
    assert (moved.estimate, moved.ci.low, moved.ci.high) == pytest.approx(
        (base.estimate, base.ci.low, base.ci.high), rel=1e-7, abs=1e-9)


def test_adjacent_step_cis():
    rng = np.random.default_rng(6)
    scores = np.linspace(0, 1, 5)[None, :] + rng.normal(0, 0.05, (20, 5))
    cis = hs.adjacent_step_cis(scores, n_resamples=499, rng=7)
    assert len(cis) == 4 and all(0.1 < c.estimate < 0.4 for c in cis)
    assert hs.steps_as_bounds(cis) == [(c.low, c.high) for c in cis]
    with pytest.raises(ValueError, match="pairs × conditions"):
        hs.adjacent_step_cis(np.arange(5.0), rng=0)


def test_wilson_and_clopper_pearson_match_formulas():
    k, n, level = 13, 40, 0.95
    z = sps.norm.ppf(1 - (1 - level) / 2)
    centre = (k + z * z / 2) / (n + z * z)
    half = z / (n + z * z) * math.sqrt(k * (n - k) / n + z * z / 4)
    assert hs.proportion_ci(k, n, level) == pytest.approx((centre - half, centre + half), abs=1e-10)
    cp = (sps.beta.ppf(0.025, k, n - k + 1), sps.beta.ppf(0.975, k + 1, n - k))
    assert hs.proportion_ci(k, n, level, "clopper-pearson") == pytest.approx(cp, abs=1e-10)


def test_binomial_test_matches_binomial_tail():
    res = hs.binomial_test(17, 40, 0.25, "greater")
    assert res.p_value == pytest.approx(sps.binom.sf(16, 40, 0.25), abs=1e-10)
    assert res.statistic == pytest.approx(17 / 40)
    with pytest.raises(ValueError, match="successes"):
        hs.binomial_test(41, 40, 0.25)


@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_a_gap_closer_to_zero_than_the_minimum_leaves_transfer_undefined_and_a_wide_one_does_not(sign):
    """Both ways: a natural gap of 0.05 ± small noise excludes 0 (defined with no minimum) but lies under a minimum of
    0.10 (undefined, with the minimum named); a gap of 0.6 is defined under the same minimum, in either direction."""
    patched, recipient, donor = (sign * x for x in _pairs(0.05, 0.5, n=60, seed=8))
    recipient, donor = recipient, recipient + sign * (0.05 + np.random.default_rng(9).normal(0, 0.005, 60))
    without = hs.transfer_ci(patched, recipient, donor, n_resamples=499, rng=1)
    assert without.undefined_reason is None
    small = hs.transfer_ci(patched, recipient, donor, n_resamples=499, rng=1, min_gap=0.10)
    assert small.undefined_reason is not None and "registered minimum gap 0.1" in small.undefined_reason
    patched, recipient, donor = (sign * x for x in _pairs(0.6, 0.5, n=30, seed=10))
    assert hs.transfer_ci(patched, recipient, donor, n_resamples=499, rng=1, min_gap=0.10).undefined_reason is None
    with pytest.raises(ValueError, match="min_gap"):
        hs.transfer_ci(patched, recipient, donor, n_resamples=99, rng=1, min_gap=-0.1)
