"""Packet storage formats (harness/exchange/packets/codecs.py): the int8 error bound, exact uncompressed storage,
16-bit range checks and bytes per token from config numbers."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from harness.exchange.packets.codecs import (
    INT8_LEVELS,
    STORAGE_FORMATS,
    config_packet_size,
    decode_tensor,
    encode_tensor,
    int8_error_bound,
)

FLOATS = st.floats(-1e4, 1e4, width=32, allow_nan=False, allow_infinity=False, allow_subnormal=False)
SHAPES = st.tuples(st.integers(1, 3), st.integers(1, 9), st.integers(1, 8))


@st.composite
def caches(draw: st.DrawFn) -> torch.Tensor:
    """A [heads, positions, head_dim] float32 tensor: bounded floats, sometimes a zero channel or an outlier."""
    x = torch.from_numpy(draw(arrays(np.float32, draw(SHAPES), elements=FLOATS)))
    if draw(st.booleans()):
        x[..., 0] = 0.0
    return x


@given(caches(), st.sampled_from([torch.float32, torch.bfloat16, torch.float16]))
def test_int8_error_is_within_half_a_scale_step(x: torch.Tensor, dtype: torch.dtype) -> None:
    x = x.to(dtype)
    stored = encode_tensor(x, "int8")
    decoded = decode_tensor(stored, "int8", dtype)
    assert decoded.dtype == dtype and decoded.shape == x.shape
    assert stored["data"].dtype == torch.int8 and int(stored["data"].abs().max()) <= INT8_LEVELS
    assert stored["scale"].shape == (x.shape[0], 1, x.shape[2])
    error = (x.to(torch.float64) - decoded.to(torch.float64)).abs()
    assert bool((error <= int8_error_bound(stored["scale"], decoded)).all())


@given(caches())
def test_int8_uses_the_full_range_and_zero_channels_decode_to_zero(x: torch.Tensor) -> None:
    stored = encode_tensor(x, "int8")
    amax = x.abs().amax(dim=1)
    assert torch.equal(stored["data"].abs().amax(dim=1) == INT8_LEVELS, amax > 0)
    decoded = decode_tensor(stored, "int8", x.dtype)
    assert bool((decoded.abs().amax(dim=1)[amax == 0] == 0).all())


@given(caches())
def test_int8_quantization_is_idempotent(x: torch.Tensor) -> None:
    once = encode_tensor(x, "int8")
    twice = encode_tensor(decode_tensor(once, "int8", x.dtype), "int8")
    assert torch.equal(once["data"], twice["data"])


@given(caches(), st.sampled_from([torch.float32, torch.bfloat16, torch.float16]))
def test_uncompressed_storage_is_bitwise(x: torch.Tensor, dtype: torch.dtype) -> None:
    x = x.to(dtype)
    back = decode_tensor(encode_tensor(x, "uncompressed"), "uncompressed", dtype)
    as_int = {4: torch.int32, 2: torch.int16}[dtype.itemsize]
    assert back.dtype == dtype and torch.equal(back.view(as_int), x.view(as_int))


@given(caches())
def test_sixteen_bit_formats_round_to_nearest(x: torch.Tensor) -> None:
    for storage, target in (("float16", torch.float16), ("bfloat16", torch.bfloat16)):
        back = decode_tensor(encode_tensor(x, storage), storage, torch.float32)  # type: ignore[arg-type]
        assert torch.equal(back, x.to(target).to(torch.float32))


def test_float16_refuses_values_beyond_its_range() -> None:
    x = torch.tensor([[[1.0, 7e4]]])
    with pytest.raises(ValueError, match="float16 cannot hold a value of magnitude 70000"):
        encode_tensor(x, "float16")
    assert torch.isfinite(decode_tensor(encode_tensor(x, "bfloat16"), "bfloat16", torch.float32)).all()


def test_bad_inputs_are_refused_with_one_line() -> None:
    with pytest.raises(ValueError, match="unknown packet storage format 'int4'"):
        encode_tensor(torch.zeros(1, 2, 3), "int4")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"\[n_kv_heads, positions, head_dim\], got shape \(2, 3\)"):
        encode_tensor(torch.zeros(2, 3), "int8")
    with pytest.raises(ValueError, match="at least one token"):
        config_packet_size(2, 1, 4, torch.float32, "int8").bytes_per_token(0)


@given(st.integers(1, 128), st.integers(1, 16), st.integers(1, 256), st.integers(1, 100_000),
       st.sampled_from([torch.float32, torch.bfloat16]))
def test_config_bytes_per_token(layers: int, kv_heads: int, head_dim: int, tokens: int, dtype: torch.dtype) -> None:
    sizes = {s: config_packet_size(layers, kv_heads, head_dim, dtype, s) for s in STORAGE_FORMATS}
    channels = layers * kv_heads * head_dim * 2
    assert sizes["uncompressed"].payload_bytes_per_token == channels * dtype.itemsize
    assert sizes["float16"].payload_bytes_per_token == sizes["bfloat16"].payload_bytes_per_token == channels * 2
    assert sizes["int8"].payload_bytes_per_token == channels and sizes["int8"].scale_bytes == channels * 4
    assert all(sizes[s].scale_bytes == 0 for s in STORAGE_FORMATS if s != "int8")
    assert sizes["int8"].bytes_per_token(tokens) == pytest.approx(channels + 4 * channels / tokens)
    if tokens > 4:
        assert sizes["int8"].bytes_per_token(tokens) < sizes["float16"].bytes_per_token(tokens)
