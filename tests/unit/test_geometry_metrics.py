"""Participation ratio, R_V and the content window: properties (hypothesis) and edge cases."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import example, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from scipy.stats import ortho_group

from harness.geometry.metrics import (
    DegenerateWindowError,
    PromptTooShortError,
    content_window,
    participation_ratio,
    per_head_pr,
    r_v,
)

KINDS = ("eigen", "singular")
finite = st.floats(-10, 10, width=32, allow_nan=False, allow_infinity=False, allow_subnormal=False)
matrices = hnp.arrays(np.float32, hnp.array_shapes(min_dims=2, max_dims=2, min_side=2, max_side=12), elements=finite)


def nonzero(x: np.ndarray) -> bool:
    return float(np.abs(x.astype(np.float64)).sum()) > 1e-3


def eigen_pr_reference(x: np.ndarray) -> float:
    lam = np.linalg.eigvalsh(x.astype(np.float64).T @ x.astype(np.float64))
    lam = np.clip(lam, 0, None)
    return lam.sum() ** 2 / (lam**2).sum()


@settings(deadline=None)
@given(st.integers(2, 10), st.integers(2, 10), st.integers(0, 2**31 - 1), st.sampled_from(KINDS))
def test_rank_one_matrix_has_pr_one(t: int, d: int, seed: int, kind: str) -> None:
    rng = np.random.default_rng(seed)
    x = np.outer(rng.normal(size=t) + 3, rng.normal(size=d) + 3)
    assert participation_ratio(x, kind) == pytest.approx(1.0, abs=1e-9)


@settings(deadline=None)
@given(st.integers(1, 8), st.integers(0, 2**31 - 1), st.floats(0.1, 100), st.sampled_from(KINDS))
def test_k_orthogonal_equal_norm_rows_have_pr_k(k: int, seed: int, norm: float, kind: str) -> None:
    q = ortho_group.rvs(12, random_state=seed)[:k] * norm  # k orthonormal rows, scaled
    assert participation_ratio(q, kind) == pytest.approx(k, rel=1e-9)


@settings(deadline=None)
@given(matrices, st.sampled_from(KINDS), st.booleans())
def test_pr_bounds(x: np.ndarray, kind: str, centered: bool) -> None:
    y = x - x.mean(0) if centered else x
    if not nonzero(y):
        return
    pr = participation_ratio(x, kind, centered=centered)
    assert 1 - 1e-9 <= pr <= min(x.shape) + 1e-9


@settings(deadline=None)
@given(matrices, st.floats(1e-3, 1e3), st.integers(0, 2**31 - 1), st.sampled_from(KINDS))
def test_pr_invariant_to_scale_row_permutation_and_rotation(x: np.ndarray, c: float, seed: int, kind: str) -> None:
    if not nonzero(x):
        return
    x64 = x.astype(np.float64)
    base = participation_ratio(x64, kind)
    rng = np.random.default_rng(seed)
    rotation = ortho_group.rvs(x.shape[1], random_state=seed) if x.shape[1] > 1 else np.eye(1)
    assert participation_ratio(c * x64, kind) == pytest.approx(base, rel=1e-7)
    assert participation_ratio(x64[rng.permutation(x.shape[0])], kind) == pytest.approx(base, rel=1e-7)
    assert participation_ratio(x64 @ rotation, kind) == pytest.approx(base, rel=1e-7)


@settings(deadline=None)
@given(matrices)
@example(np.eye(3, dtype=np.float32))
def test_eigen_pr_equals_direct_eigenvalue_computation(x: np.ndarray) -> None:
    if not nonzero(x):
        return
    assert participation_ratio(x, "eigen") == pytest.approx(eigen_pr_reference(x), rel=1e-6)


@settings(deadline=None)
@given(matrices)
def test_singular_pr_equals_its_definition(x: np.ndarray) -> None:
    if not nonzero(x):
        return
    s = np.linalg.svd(x.astype(np.float64), compute_uv=False)
    assert participation_ratio(x, "singular") == pytest.approx(s.sum() ** 2 / (s**2).sum(), rel=1e-9)


def test_centering_removes_the_mean_direction() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(16, 32)) * 0.1 + 5.0  # a dominant shared mean direction
    assert participation_ratio(x) < 1.1
    assert participation_ratio(x, centered=True) > 5


def test_torch_and_numpy_inputs_agree() -> None:
    x = torch.randn(16, 24, generator=torch.Generator().manual_seed(1))
    assert participation_ratio(x) == pytest.approx(participation_ratio(x.numpy()), rel=1e-6)


@pytest.mark.parametrize("bad", [np.zeros((4, 4)), np.full((4, 4), np.nan), np.array([[1.0, np.inf], [0, 1]])])
def test_degenerate_windows_raise(bad: np.ndarray) -> None:
    with pytest.raises(DegenerateWindowError):
        participation_ratio(bad)


def test_unknown_kind_and_bad_shape_raise() -> None:
    with pytest.raises(ValueError, match="unknown PR kind"):
        participation_ratio(np.eye(3), "trace")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="2-D"):
        participation_ratio(np.ones(3))


def test_r_v_is_late_over_early() -> None:
    early = np.eye(4)  # PR 4
    late = np.outer(np.ones(4), np.arange(1, 5))  # PR 1
    assert r_v(early, late) == pytest.approx(0.25)
    with pytest.raises(ValueError, match="differ in shape"):
        r_v(np.eye(4), np.eye(3))


def test_per_head_pr_splits_columns_by_kv_head() -> None:
    head0 = np.eye(4)  # PR 4
    head1 = np.outer(np.ones(4), np.ones(4))  # PR 1
    assert per_head_pr(np.hstack([head0, head1]), n_kv_heads=2, head_dim=4) == pytest.approx([4.0, 1.0])
    with pytest.raises(ValueError, match="n_kv_heads"):
        per_head_pr(np.eye(4), n_kv_heads=2, head_dim=4)


def test_content_window_excludes_specials_and_takes_the_last_w() -> None:
    ids = [1] + list(range(100, 120))  # BOS then 20 content tokens
    assert content_window(ids, {1}, window=16) == list(range(5, 21))
    with_special_inside = [1, 100, 101, 2] + list(range(200, 216))
    assert 3 not in content_window(with_special_inside, {1, 2}, window=16)


def test_content_window_rejects_short_prompts_by_id() -> None:
    ids = [1] + list(range(100, 116))  # 16 content tokens: needs 17
    with pytest.raises(PromptTooShortError, match="'short-one'.*16 content tokens"):
        content_window(ids, {1}, window=16, prompt_id="short-one")
