"""harness.stats.correlation.rank_correlation: Spearman ρ with a joint-resampling BCa CI."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from harness.stats import rank_correlation


@given(st.lists(st.floats(-100, 100, allow_nan=False, allow_subnormal=False), min_size=5, max_size=30, unique=True))
def test_rank_correlation_of_a_monotone_transform_is_one(xs):
    x = np.asarray(xs)
    corr = rank_correlation(x, x + x**3, alternative="greater", level=0.95, rng=0, n_resamples=199)
    assert corr.undefined_reason is None and math.isclose(corr.rho, 1.0)
    assert corr.p_value is not None and 0.0 <= corr.p_value <= 1.0
    flipped = rank_correlation(x, -x, alternative="less", level=0.95, rng=0, n_resamples=199)
    assert math.isclose(flipped.rho, -1.0) and flipped.p_value < 0.5


def test_rank_correlation_of_a_constant_sample_is_undefined_with_the_reason():
    corr = rank_correlation([1, 2, 3, 4], [0.0, 0.0, 0.0, 0.0], alternative="less", level=0.95, rng=0)
    assert math.isnan(corr.rho) and corr.p_value is None and "constant" in corr.undefined_reason
