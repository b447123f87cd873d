"""Calibration: under label permutation (the null made true by construction) p-values are uniform.

Fixed, skewed data; each simulation permutes the labels (or swaps within pairs, or permutes within
blocks) and records the p-value of each main test. A KS test against U(0, 1) must give p > 0.01 over
500 simulations. Seeds are fixed, so the test is deterministic.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from scipy import stats as sps

from harness import stats as hs

SIMS = 500
KS_MIN_P = 0.01


def _ks_uniform_p(pvals: list[float]) -> float:
    return float(sps.kstest(np.asarray(pvals), "uniform").pvalue)


@pytest.fixture(scope="module")
def pooled() -> np.ndarray:
    return np.random.default_rng(100).lognormal(0.0, 0.8, 50)


TWO_SAMPLE: dict[str, Callable[[np.ndarray, np.ndarray], float]] = {
    "welch_t": lambda x, y: hs.welch_t(x, y).p,
    "mann_whitney": lambda x, y: hs.mann_whitney(x, y).p_value,
    "permutation_ind": lambda x, y: hs.permutation_test_ind(x, y, n_resamples=999, rng=1).p_value,
}


@pytest.mark.parametrize("name", sorted(TWO_SAMPLE))
def test_two_sample_tests_uniform_under_label_permutation(pooled, name):
    rng = np.random.default_rng(200)
    test = TWO_SAMPLE[name]
    pvals = []
    for _ in range(SIMS):
        perm = rng.permutation(pooled.size)
        pvals.append(test(pooled[perm[:25]], pooled[perm[25:]]))
    assert _ks_uniform_p(pvals) > KS_MIN_P


PAIRED: dict[str, Callable[[np.ndarray, np.ndarray], float]] = {
    "wilcoxon": lambda x, y: hs.wilcoxon_paired(x, y).p_value,
    "permutation_paired": lambda x, y: hs.permutation_test_paired(x, y, n_resamples=999, rng=2).p_value,
}


@pytest.mark.parametrize("name", sorted(PAIRED))
def test_paired_tests_uniform_under_within_pair_swaps(pooled, name):
    rng = np.random.default_rng(300)
    a, b = pooled[:25], pooled[25:]
    test = PAIRED[name]
    pvals = []
    for _ in range(SIMS):
        swap = rng.random(25) < 0.5
        pvals.append(test(np.where(swap, b, a), np.where(swap, a, b)))
    assert _ks_uniform_p(pvals) > KS_MIN_P


def test_spearman_uniform_under_permutation(pooled):
    rng = np.random.default_rng(400)
    x = np.arange(pooled.size, dtype=float)
    pvals = [hs.spearman(x, rng.permutation(pooled)).p_value for _ in range(SIMS)]
    assert _ks_uniform_p(pvals) > KS_MIN_P


def test_page_trend_uniform_under_within_block_permutation(pooled):
    rng = np.random.default_rng(500)
    blocks = pooled[:50].reshape(10, 5)
    # 30 blocks × 5 conditions, so the null distribution of L is fine-grained enough for a KS test.
    blocks = np.vstack([blocks, blocks * 1.3 + 0.1, blocks**0.5])
    pvals = [hs.page_trend(rng.permuted(blocks, axis=1)).p_value for _ in range(SIMS)]
    assert _ks_uniform_p(pvals) > KS_MIN_P
