"""How a cache packet stores one K or V tensor: the storage formats, int8 quantization and bytes per token.

Formats (:data:`STORAGE_FORMATS`):

- ``uncompressed``: the cache's own dtype, bit for bit (a packet read back is the cache it was made from);
- ``float16`` / ``bfloat16``: a cast to 16 bits (round to nearest); ``float16`` refuses a tensor with a value
  beyond its finite range (65504) instead of writing ``inf``;
- ``int8``: symmetric per-channel int8. A channel is one (KV head, head-dim index) of one layer's K or V; its scale
  is ``s = max |x| / 127`` over the positions the packet holds (float32), ``q = round(x / s)`` in ``[-127, 127]``
  and ``x̂ = q · s`` cast back to the cache dtype. Rounding to the nearest multiple of ``s`` moves no element by more
  than ``s / 2``; the cast back adds at most half a unit in the last place of the cache dtype
  (:func:`int8_error_bound`). An all-zero channel has scale 0 and decodes to exact zeros.

A tensor here is one layer's ``[n_kv_heads, positions, head_dim]`` K or V of a single sequence. Bytes are bytes;
scales are float32, one per channel per packet, so their cost per token falls with the packet's length.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

__all__ = [
    "INT8_LEVELS", "STORAGE_FORMATS", "PacketSize", "StorageFormat", "config_packet_size", "decode_tensor",
    "encode_tensor", "int8_error_bound",
]

StorageFormat = Literal["uncompressed", "float16", "bfloat16", "int8"]
STORAGE_FORMATS: tuple[StorageFormat, ...] = ("uncompressed", "float16", "bfloat16", "int8")
"""Every storage format a packet can use."""
INT8_LEVELS = 127
"""Largest |q| of the symmetric int8 code (−128 is unused, so the code is symmetric about 0)."""
SCALE_DTYPE = torch.float32
"""dtype of the int8 scales as stored."""
_CAST = {"float16": torch.float16, "bfloat16": torch.bfloat16}


def _check_format(storage: str) -> None:
    if storage not in STORAGE_FORMATS:
        raise ValueError(f"unknown packet storage format {storage!r}; known: {', '.join(STORAGE_FORMATS)}")


def encode_tensor(x: torch.Tensor, storage: StorageFormat) -> dict[str, torch.Tensor]:
    """``x`` (``[n_kv_heads, positions, head_dim]``, any float dtype) as stored: ``{"data": …}`` plus, for int8,
    ``{"scale": [n_kv_heads, 1, head_dim] float32}``. Raises ValueError on an unknown format, a non-3-D tensor, or a
    value a 16-bit format cannot hold."""
    _check_format(storage)
    if x.ndim != 3:
        raise ValueError(f"a packet tensor is [n_kv_heads, positions, head_dim], got shape {tuple(x.shape)}")
    x = x.detach().to("cpu")
    if storage == "uncompressed":
        return {"data": x.clone().contiguous()}
    if storage in _CAST:
        target = _CAST[storage]
        largest = float(x.abs().max()) if x.numel() else 0.0
        if largest > torch.finfo(target).max:
            raise ValueError(f"{storage} cannot hold a value of magnitude {largest:.6g} "
                             f"(its largest finite value is {torch.finfo(target).max:.6g})")
        return {"data": x.to(target).contiguous()}
    wide = x.to(torch.float64)
    amax = wide.abs().amax(dim=1, keepdim=True) if x.shape[1] else torch.zeros(x.shape[0], 1, x.shape[2],
                                                                                dtype=torch.float64)
    scale = (amax / INT8_LEVELS).to(SCALE_DTYPE)
    safe = torch.where(scale > 0, scale, torch.ones_like(scale)).to(torch.float64)
    q = torch.round(wide / safe).clamp(-INT8_LEVELS, INT8_LEVELS).to(torch.int8)
    return {"data": q.contiguous(), "scale": scale.contiguous()}


def decode_tensor(stored: dict[str, torch.Tensor], storage: StorageFormat, dtype: torch.dtype) -> torch.Tensor:
    """The tensor :func:`encode_tensor` stored, back in the cache ``dtype`` (a copy)."""
    _check_format(storage)
    data = stored["data"]
    if storage != "int8":
        return data.to(dtype).clone()
    return (data.to(torch.float64) * stored["scale"].to(torch.float64)).to(dtype)


def int8_error_bound(scale: torch.Tensor, decoded: torch.Tensor) -> torch.Tensor:
    """Per element, the largest |x − x̂| int8 storage allows: ``scale / 2`` (rounding to the nearest level; the
    quotient ``x / scale`` is formed in float64, whose own rounding adds a relative 2⁻⁴⁰ here) plus half a unit in
    the last place of ``decoded``'s dtype at |x̂| (the cast back), plus that dtype's smallest normal times its
    epsilon (cover for subnormal results). Same units as the cache; shape of ``decoded``."""
    info = torch.finfo(decoded.dtype)
    half_step = scale.to(torch.float64) / 2 * (1 + 2.0 ** -40)
    cast = decoded.to(torch.float64).abs() * info.eps / 2 + info.smallest_normal * info.eps
    return half_step + cast


@dataclass(frozen=True)
class PacketSize:
    """Bytes of a full packet of one sequence (every layer, K and V), tensor data only (no header).

    ``payload_bytes_per_token``: bytes each token adds (layers × KV heads × head dim × 2 × bytes per element);
    ``scale_bytes``: fixed bytes per packet (int8 scales: layers × KV heads × head dim × 2 × 4; 0 otherwise).
    """

    storage: StorageFormat
    payload_bytes_per_token: int
    scale_bytes: int

    def bytes_per_token(self, tokens: int) -> float:
        """Bytes per token of a packet holding ``tokens`` positions on every layer (scales shared among them)."""
        if tokens < 1:
            raise ValueError(f"bytes per token needs at least one token, got {tokens}")
        return self.payload_bytes_per_token + self.scale_bytes / tokens


def config_packet_size(n_layers: int, n_kv_heads: int, head_dim: int, cache_dtype: torch.dtype,
                       storage: StorageFormat) -> PacketSize:
    """:class:`PacketSize` of a ``storage`` packet from config numbers alone (no weights): ``uncompressed`` keeps
    ``cache_dtype``'s element size. Sliding-window layers are counted at every position (true up to the window)."""
    _check_format(storage)
    if min(n_layers, n_kv_heads, head_dim) < 1:
        raise ValueError(f"layers, KV heads and head dim must be ≥ 1, got {n_layers}, {n_kv_heads}, {head_dim}")
    channels = n_layers * n_kv_heads * head_dim * 2
    element = {"uncompressed": torch.empty((), dtype=cache_dtype).element_size(), "float16": 2, "bfloat16": 2,
               "int8": 1}[storage]
    scales = channels * torch.empty((), dtype=SCALE_DTYPE).element_size() if storage == "int8" else 0
    return PacketSize(storage, channels * element, scales)
