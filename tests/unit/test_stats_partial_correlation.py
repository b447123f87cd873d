"""Partial Spearman ρ(x, y | z): agrees with the textbook formula on rank correlations, removes a length confound,
and its p and CI behave (issue 11, item 6: recursion level is confounded with prompt length)."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats as sps

from harness.stats import partial_rank_correlation, partial_spearman, rank_correlation


def _textbook(x: np.ndarray, y: np.ndarray, z: np.ndarray) -> float:
    """r_xy·z = (r_xy − r_xz r_yz) / √((1 − r_xz²)(1 − r_yz²)) with Spearman r's."""
    rxy, rxz, ryz = (sps.spearmanr(a, b).statistic for a, b in ((x, y), (x, z), (y, z)))
    return (rxy - rxz * ryz) / math.sqrt((1 - rxz**2) * (1 - ryz**2))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 20), st.integers(0, 20), st.integers(0, 20)), min_size=6, max_size=30))
def test_partial_spearman_equals_the_textbook_formula(rows: list[tuple[int, int, int]]) -> None:
    x, y, z = (np.asarray(c, dtype=np.float64) for c in zip(*rows))
    if any(np.all(a == a[0]) for a in (x, y, z)):
        return
    rxz, ryz = sps.spearmanr(x, z).statistic, sps.spearmanr(y, z).statistic
    if max(abs(rxz), abs(ryz)) > 0.999:
        return
    assert math.isclose(partial_spearman(x, y, z), _textbook(x, y, z), abs_tol=1e-9)


def test_a_pure_length_confound_is_removed() -> None:
    rng = np.random.default_rng(0)
    length = rng.integers(20, 45, size=60).astype(float)
    level = np.clip(np.round((length - 20) / 5 + rng.normal(0, 0.4, 60)), 1, 5)  # long prompts have high levels
    outcome = -0.05 * length + rng.normal(0, 0.1, 60)  # depends on length only
    plain = rank_correlation(level, outcome, alternative="less", level=0.95, rng=1, n_resamples=999)
    partial = partial_rank_correlation(level, outcome, length, alternative="less", level=0.95, rng=1,
                                       n_resamples=999)
    assert plain.rho < -0.6 and plain.p_value < 1e-6  # the confound fakes a strong trend
    assert abs(partial.rho) < 0.3 and partial.p_value > 0.01
    assert partial.ci_low < partial.rho < partial.ci_high


def test_a_real_trend_survives_the_covariate() -> None:
    rng = np.random.default_rng(1)
    length = rng.integers(20, 45, size=60).astype(float)
    level = rng.integers(1, 6, size=60).astype(float)
    outcome = -0.3 * level + 0.01 * length + rng.normal(0, 0.2, 60)
    partial = partial_rank_correlation(level, outcome, length, alternative="less", level=0.95, rng=2,
                                       n_resamples=999)
    assert partial.rho < -0.7 and partial.p_value < 1e-6 and partial.ci_high < -0.5
    greater = partial_rank_correlation(level, outcome, length, alternative="greater", level=0.95, rng=2,
                                       n_resamples=999)
    assert math.isclose(greater.p_value, 1 - partial.p_value, abs_tol=1e-12)


def test_undefined_when_the_covariate_explains_x() -> None:
    length = np.arange(10, dtype=float)
    result = partial_rank_correlation(length * 2, np.sin(length), length, alternative="less", level=0.95, rng=0)
    assert math.isnan(result.rho) and result.p_value is None and "covariate" in result.undefined_reason
    short = partial_rank_correlation([1, 2, 3], [1, 2, 3], [3, 1, 2], alternative="less", level=0.95, rng=0)
    assert short.undefined_reason and math.isnan(short.rho)
