"""The tensor arithmetic behind KV patches and their controls (DESIGN §4.3-4.4), apart from the specs that say
what to patch (:mod:`harness.engine.patch_specs`) and the cache code that applies it (:mod:`harness.engine.kvcache`):
the shuffled control's seeded derangement, the RoPE re-rotation of moved keys, and the norm-matched Gaussian of
the random control."""

from __future__ import annotations

import torch

from harness.engine.patch_specs import PatchSpecError

__all__ = ["norm_matched_gaussian", "rotate_keys", "shuffle_permutation"]


def shuffle_permutation(n: int, seed: int) -> tuple[int, ...]:
    """A seeded derangement of ``range(n)``: ``perm[i] != i`` for every ``i`` (needs ``n >= 2``).

    Drawn uniformly among derangements by rejection from uniform permutations (about e draws).
    """
    if n < 2:
        raise PatchSpecError(f"the shuffled control needs a span of at least 2 positions, got {n}")
    generator = torch.Generator().manual_seed(seed)
    identity = torch.arange(n)
    while True:
        perm = torch.randperm(n, generator=generator)
        if not bool((perm == identity).any()):
            return tuple(int(i) for i in perm)


def rotate_keys(keys: torch.Tensor, delta: torch.Tensor, inv_freq: torch.Tensor, *, interleaved: bool = False) -> torch.Tensor:
    """Move post-RoPE keys by ``delta`` positions: rotary rotation by angle ``delta · inv_freq`` (float32).

    ``keys`` is ``[..., S, head_dim]``, ``delta`` ``[S]`` (target − source position), ``inv_freq``
    ``[rotary_dim/2]``. Uses the half-split pairing of transformers' ``rotate_half`` (dimension ``i``
    rotates with ``i + rotary_dim/2``); rotations compose, so a key computed at position ``s`` and moved
    by ``p − s`` equals the key the same pre-RoPE vector gets at position ``p``.

    Partial rotary (GPT-NeoX ``rotary_pct``, ``partial_rotary_factor``): when ``rotary_dim = 2·len(inv_freq)`` is
    less than ``head_dim``, only the leading ``rotary_dim`` features turn and the rest pass through unchanged, as in
    transformers' ``apply_rotary_pos_emb`` (``k[..., :rotary_dim]`` rotated, ``k[..., rotary_dim:]`` kept).

    ``interleaved``: the pairing of Cohere-style rotary (GPT-J's ``rotate_every_two``): dimension ``2i`` rotates with
    ``2i + 1`` (:func:`harness.engine.kvcache.rope_interleaved` tells which pairing a model uses).

    Raises:
        ValueError: ``inv_freq`` covers more features than ``head_dim`` (2·len(inv_freq) > head_dim).
    """
    rotary_dim = 2 * inv_freq.shape[-1]
    if rotary_dim > keys.shape[-1]:
        raise ValueError(f"rotary frequencies cover {rotary_dim} features but keys have head_dim {keys.shape[-1]}")
    if rotary_dim < keys.shape[-1]:
        k = keys.float()
        turned = rotate_keys(k[..., :rotary_dim], delta, inv_freq, interleaved=interleaved)
        return torch.cat([turned, k[..., rotary_dim:]], dim=-1)
    angles = delta.to(torch.float32)[:, None] * inv_freq.to(torch.float32)[None, :]
    if interleaved:
        cos = angles.cos().repeat_interleave(2, dim=-1).to(keys.device)
        sin = angles.sin().repeat_interleave(2, dim=-1).to(keys.device)
        k = keys.float()
        rotated_pairs = torch.stack([-k[..., 1::2], k[..., 0::2]], dim=-1).flatten(-2)
        return k * cos + rotated_pairs * sin
    cos = torch.cat([angles.cos(), angles.cos()], dim=-1).to(keys.device)
    sin = torch.cat([angles.sin(), angles.sin()], dim=-1).to(keys.device)
    k = keys.float()
    half = k.shape[-1] // 2
    rotated_half = torch.cat([-k[..., half:], k[..., :half]], dim=-1)
    return k * cos + rotated_half * sin


def norm_matched_gaussian(reference: torch.Tensor, seed: int) -> torch.Tensor:
    """Gaussian vectors (float32, on ``reference``'s device) with the norms of ``reference``'s last-dim vectors.

    Each vector along the last axis gets an isotropic Gaussian direction scaled to the Euclidean
    norm of the matching ``reference`` vector; the draw is fixed by ``seed``.
    """
    generator = torch.Generator().manual_seed(seed)
    noise = torch.randn(reference.shape, generator=generator, dtype=torch.float32)
    target = reference.detach().float().cpu().norm(dim=-1, keepdim=True)
    scaled = noise * (target / noise.norm(dim=-1, keepdim=True))
    return scaled.to(reference.device)
