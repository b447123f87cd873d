"""Unit and property tests for the immutable patch specs and the control helpers (harness.engine.patch_specs)."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.engine.kv_math import norm_matched_gaussian, rotate_keys, shuffle_permutation
from harness.engine.patch_specs import (
    ActivationPatchSpec,
    ActivationSite,
    Alignment,
    Control,
    ControlKind,
    KVPatchSpec,
    PatchSpecError,
    Span,
    assign_roles,
    check_alignment,
)


@given(n=st.integers(min_value=4, max_value=4000))
@settings(deadline=None)
def test_fraction_spans_partition_the_shared_positions(n: int) -> None:
    first, middle, last = (Span.first_quarter().resolve(n), Span.middle_half().resolve(n), Span.last_quarter().resolve(n))
    assert first + middle + last == tuple(range(n))
    assert len(first) == len(last) == n // 4
    assert Span.all().resolve(n) == tuple(range(n))


@pytest.mark.parametrize("n,expected", [(4, ((0,), (1, 2), (3,))), (10, ((0, 1), tuple(range(2, 8)), (8, 9)))])
def test_fraction_spans_examples(n: int, expected: tuple) -> None:
    assert (Span.first_quarter().resolve(n), Span.middle_half().resolve(n), Span.last_quarter().resolve(n)) == expected


def test_empty_or_out_of_range_spans_are_rejected() -> None:
    with pytest.raises(PatchSpecError, match="first_quarter is empty for 3"):
        Span.first_quarter().resolve(3)
    with pytest.raises(PatchSpecError, match="exceeds the 5 shared"):
        Span.range(2, 9).resolve(5)
    with pytest.raises(PatchSpecError, match="outside the 5 shared"):
        Span.at([1, 5]).resolve(5)
    with pytest.raises(PatchSpecError, match="empty"):
        Span.range(3, 3)
    with pytest.raises(PatchSpecError, match="strictly increasing"):
        Span.at([2, 1])
    with pytest.raises(PatchSpecError, match=">= 0"):
        Span.at([-1])
    assert Span.range(2).resolve(5) == (2, 3, 4)
    assert Span.range(1, 3).resolve(5) == (1, 2)


@pytest.mark.parametrize("alpha", [-0.1, 1.0001, float("nan"), float("inf"), True, "1"])
def test_alpha_outside_unit_interval_is_rejected(alpha: object) -> None:
    with pytest.raises(PatchSpecError, match="alpha"):
        KVPatchSpec(layers=(0,), alpha=alpha)


@pytest.mark.parametrize("layers,message", [((), "non-empty"), ((1, 1), "duplicates"), ((-1,), ">= 0"), ((0.5,), "int")])
def test_bad_layers_are_rejected(layers: tuple, message: str) -> None:
    with pytest.raises(PatchSpecError, match=message):
        KVPatchSpec(layers=layers)


def test_spec_is_frozen_normalised_and_checked_against_the_model() -> None:
    spec = KVPatchSpec(layers=[3, 1, 2], alpha=1)
    assert spec.layers == (1, 2, 3) and isinstance(spec.alpha, float)
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.alpha = 0.5  # type: ignore[misc]
    spec.check_layers(4)
    with pytest.raises(PatchSpecError, match="layer 3 does not exist: the model has 3 layers"):
        spec.check_layers(3)
    with pytest.raises(PatchSpecError, match="span must be a Span"):
        KVPatchSpec(layers=(0,), span="all")  # type: ignore[arg-type]
    with pytest.raises(PatchSpecError, match="site must be"):
        ActivationPatchSpec(site="v", layer=0)  # type: ignore[arg-type]
    with pytest.raises(PatchSpecError, match="layer 5 does not exist"):
        ActivationPatchSpec(site=ActivationSite.V_PROJ, layer=5).check_layers(5)


def test_alignment_checks() -> None:
    check_alignment(Alignment.LENGTH_MATCHED, 7, 7)
    check_alignment(Alignment.SHARED_PREFIX, 7, 4)
    with pytest.raises(PatchSpecError, match="equal token counts, got recipient 7 and donor 6"):
        check_alignment(Alignment.LENGTH_MATCHED, 7, 6)
    with pytest.raises(PatchSpecError, match="at least 2"):
        check_alignment(Alignment.SHARED_PREFIX, 1, 4)


@given(n=st.integers(min_value=2, max_value=300), seed=st.integers(min_value=0, max_value=2**63 - 1))
@settings(deadline=None)
def test_shuffle_is_a_seeded_derangement(n: int, seed: int) -> None:
    perm = shuffle_permutation(n, seed)
    assert sorted(perm) == list(range(n))
    assert all(p != i for i, p in enumerate(perm))
    assert shuffle_permutation(n, seed) == perm


def test_shuffle_needs_two_positions() -> None:
    with pytest.raises(PatchSpecError, match="at least 2"):
        shuffle_permutation(1, 0)


@given(
    shape=st.tuples(st.integers(1, 4), st.integers(1, 9), st.integers(1, 32)),
    scale=st.floats(min_value=1e-3, max_value=1e3),
    seed=st.integers(min_value=0, max_value=2**32),
)
@settings(deadline=None)
def test_norm_matched_gaussian_matches_norms_per_vector(shape: tuple[int, int, int], scale: float, seed: int) -> None:
    reference = torch.randn(shape, generator=torch.Generator().manual_seed(seed)) * scale
    noise = norm_matched_gaussian(reference, seed + 1)
    torch.testing.assert_close(noise.norm(dim=-1), reference.norm(dim=-1), rtol=1e-5, atol=0)
    if shape[-1] > 1:
        assert not torch.allclose(noise, reference)
    torch.testing.assert_close(noise, norm_matched_gaussian(reference, seed + 1), rtol=0, atol=0)


@given(
    a=st.integers(-300, 300),
    b=st.integers(-300, 300),
    half=st.integers(1, 16),
    seed=st.integers(0, 2**32),
)
@settings(deadline=None)
def test_rotate_keys_composes_preserves_norms_and_zero_is_identity(a: int, b: int, half: int, seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    keys = torch.randn(2, 3, 2 * half, generator=g)
    inv_freq = 1.0 / (10000.0 ** (torch.arange(half, dtype=torch.float32) / half))
    def move(k: torch.Tensor, d: int) -> torch.Tensor:
        return rotate_keys(k, torch.full((3,), d), inv_freq)
    torch.testing.assert_close(move(move(keys, a), b), move(keys, a + b), rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(move(keys, a).norm(dim=-1), keys.norm(dim=-1), rtol=1e-5, atol=1e-5)
    assert torch.equal(move(keys, 0), keys)


def test_roles_per_control() -> None:
    assert assign_roles(None, recursive="R", baseline="B") == ("B", "R")
    assert assign_roles(Control(ControlKind.SHUFFLED), recursive="R", baseline="B") == ("B", "R")
    assert assign_roles(Control(ControlKind.REVERSE), recursive="R", baseline="B") == ("R", "B")
    assert assign_roles(Control(ControlKind.CROSS_BASELINE), recursive="R", baseline="B", other_baseline="C") == ("B", "C")
    with pytest.raises(PatchSpecError, match="needs other_baseline"):
        assign_roles(Control(ControlKind.CROSS_BASELINE), recursive="R", baseline="B")
    with pytest.raises(PatchSpecError, match="must differ"):
        assign_roles(Control(ControlKind.CROSS_BASELINE), recursive="R", baseline="B", other_baseline="B")
