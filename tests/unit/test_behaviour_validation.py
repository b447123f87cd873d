"""Validation statistics of the behaviour score: AUROC, its bootstrap CI, proportions with CIs, the corpus split."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import mannwhitneyu

from harness.behaviour.corpus import split_of
from harness.behaviour.validation import auroc, bootstrap_auroc_ci, rate_with_ci
from harness.prompts import load_bank


def test_auroc_known_values() -> None:
    assert auroc([3, 4, 1, 2], [1, 1, 0, 0]) == 1.0
    assert auroc([1, 2, 3, 4], [1, 1, 0, 0]) == 0.0
    assert auroc([1, 1, 1, 1], [1, 0, 1, 0]) == 0.5
    assert auroc([2, 1, 2], [1, 0, 0]) == pytest.approx(0.75)


def test_auroc_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="need both classes"):
        auroc([1, 2], [1, 1])
    with pytest.raises(ValueError, match="labels must be 0/1"):
        auroc([1, 2], [1, 2])
    with pytest.raises(ValueError, match="equal length"):
        auroc([1, 2, 3], [1, 0])


scores_labels = st.integers(min_value=2, max_value=40).flatmap(
    lambda n: st.tuples(
        st.lists(st.integers(min_value=-5, max_value=5), min_size=n, max_size=n),
        st.lists(st.sampled_from([0, 1]), min_size=n, max_size=n).filter(lambda y: 0 < sum(y) < len(y)),
    )
)


@settings(deadline=None, max_examples=200)
@given(scores_labels)
def test_auroc_equals_mann_whitney_u_and_is_antisymmetric(data: tuple[list[int], list[int]]) -> None:
    s, y = np.array(data[0], dtype=float), np.array(data[1])
    value = auroc(s, y)
    u = mannwhitneyu(s[y == 1], s[y == 0]).statistic
    assert value == pytest.approx(u / ((y == 1).sum() * (y == 0).sum()))
    assert 0.0 <= value <= 1.0
    assert auroc(-s, y) == pytest.approx(1.0 - value)
    assert auroc(np.exp(s / 3), y) == pytest.approx(value)  # invariant to monotone transforms


def test_bootstrap_ci_brackets_and_is_reproducible() -> None:
    rng = np.random.default_rng(1)
    y = np.array([1] * 30 + [0] * 30)
    s = rng.normal(size=60) + y
    low, high = bootstrap_auroc_ci(s, y, n_boot=500, seed=3)
    assert 0.0 <= low <= auroc(s, y) <= high <= 1.0
    assert (low, high) == bootstrap_auroc_ci(s, y, n_boot=500, seed=3)
    assert bootstrap_auroc_ci(y.astype(float), y, n_boot=200) == (1.0, 1.0)


@settings(deadline=None, max_examples=100)
@given(st.integers(min_value=1, max_value=500).flatmap(lambda n: st.tuples(st.integers(0, n), st.just(n))))
def test_rate_ci_brackets_the_rate(kn: tuple[int, int]) -> None:
    k, n = kn
    r = rate_with_ci(k, n)
    assert r["rate"] == k / n and r["k"] == k and r["n"] == n
    assert 0.0 <= r["ci"][0] <= r["rate"] <= r["ci"][1] <= 1.0


def test_rate_of_nothing_is_undefined() -> None:
    assert rate_with_ci(0, 0)["rate"] is None


def test_split_is_fixed_and_roughly_balanced() -> None:
    bank = load_bank()
    assert split_of("rec-L1-01") == split_of("rec-L1-01")
    for group in ("recursive", "baseline"):
        held = sum(split_of(p.id) == "heldout" for p in bank.group(group))
        assert 0.3 <= held / len(bank.group(group)) <= 0.7, (group, held)
