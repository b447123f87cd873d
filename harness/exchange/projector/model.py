"""A cross-model cache projector: the sharer model's K/V of a context, mapped into the receiver model's cache.

Design (issue 14, item 3; smoke scale):

- **Layers.** Receiver layer ``l`` reads sharer layer ``round(l · (S − 1) / (R − 1))`` (depth-proportional;
  :func:`layer_map`), S and R the layer counts.
- **Tokens.** The context is tokenized by each model's own tokenizer; each receiver content token reads the sharer
  token covering its last character (:mod:`harness.exchange.alignment`). Special tokens the receiver's tokenizer puts
  first (Gemma's BOS) keep the receiver's *own* K/V: at position 0 they have seen nothing but themselves, so they
  carry no context, and a receiver without them would lose its attention sink.
- **RoPE.** Keys are projected *un-rotated*: the sharer's stored keys are turned back by their own positions with the
  sharer layer's rotary frequencies (:func:`harness.engine.kv_math.rotate_keys` with −p), projected, then rotated to the
  receiver token's position with the receiver layer's frequencies. The projector thus never has to learn two
  position codes, and a receiver position gets exactly the phase its own keys would have there. Values carry no
  position and are projected as they are.
- **Map.** Per receiver layer: input x = [un-rotated sharer key; sharer value] of the mapped sharer layer (all KV
  heads, ``2 · n_kv_s · head_dim_s`` features), standardized with fixed per-feature means and SDs of the training
  contexts; output key (pre-RoPE) and value, ``n_kv_r · head_dim_r`` features each::

      k_l = b^k_l + g_l · W^k_l x̂,   v_l = b^v_l + g_l · W^v_l x̂,   g_l = sigmoid(a_l) ∈ (0, 1)

  The biases start at the receiver's own mean key (pre-RoPE) and value of the training contexts and the weights at 0,
  so the untrained projector gives every context the same, context-free mean cache; the learned gate ``g_l`` is the
  layer's share of sharer-dependent signal (C2C's per-layer gate, reduced to a scalar), reported after training.

Only :mod:`harness.engine.kvcache` touches the cache: the projector returns a :class:`~harness.engine.kvcache.KVSnapshot` and the
receiver is scored through :func:`harness.engine.kvcache.logits_after`. Training: :mod:`harness.exchange.projector.training`;
command line: ``python -m harness.exchange.projector.cli train --sharer gemma3-270m --receiver smollm2-135m``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from harness.engine import kvcache
from harness.engine.kv_math import rotate_keys
from harness.engine.tokens import pad_id
from harness.exchange.alignment import TokenizedText, align_by_last_character, tokenize_with_spans
from harness.models import LoadedModel

__all__ = [
    "CacheGeometry", "CacheProjector", "ReceiverFrame", "SharerContext", "continuation_nll", "layer_map",
    "projected_snapshot", "receiver_frame", "receiver_own_snapshot", "sharer_context",
]


@dataclass(frozen=True)
class CacheGeometry:
    """A model's cache layout: layers, KV heads and head_dim (features per head)."""

    n_layers: int
    n_kv_heads: int
    head_dim: int

    @classmethod
    def of(cls, lm: LoadedModel) -> CacheGeometry:
        """The geometry of a loaded model."""
        return cls(lm.shape.n_layers, lm.shape.n_kv_heads, lm.shape.head_dim)

    @property
    def width(self) -> int:
        """Features of one layer's key (or value) at one position: ``n_kv_heads · head_dim``."""
        return self.n_kv_heads * self.head_dim


def layer_map(sharer_layers: int, receiver_layers: int) -> tuple[int, ...]:
    """The sharer layer each receiver layer reads: ``round(l · (S − 1) / (R − 1))`` (first to first, last to last)."""
    if sharer_layers < 1 or receiver_layers < 1:
        raise ValueError(f"layer_map: layer counts must be ≥ 1, got {sharer_layers} and {receiver_layers}")
    if receiver_layers == 1:
        return (sharer_layers - 1,)
    return tuple(round(l * (sharer_layers - 1) / (receiver_layers - 1)) for l in range(receiver_layers))


class CacheProjector(nn.Module):
    """Per receiver layer, a gated linear map from the mapped sharer layer's [un-rotated key; value] to the
    receiver's (pre-RoPE) key and value (the formula is in the module docstring).

    Buffers ``input_mean`` / ``input_scale`` ``[R, 2·width_s]`` standardize the input; parameters ``weight_k``,
    ``weight_v`` ``[R, 2·width_s, width_r]``, ``bias_k``, ``bias_v`` ``[R, width_r]`` and ``gate_logit`` ``[R]``.
    """

    def __init__(self, sharer: CacheGeometry, receiver: CacheGeometry) -> None:
        super().__init__()
        self.sharer, self.receiver = sharer, receiver
        self.layers = layer_map(sharer.n_layers, receiver.n_layers)
        r, d_in, d_out = receiver.n_layers, 2 * sharer.width, receiver.width
        self.register_buffer("input_mean", torch.zeros(r, d_in))
        self.register_buffer("input_scale", torch.ones(r, d_in))
        self.weight_k = nn.Parameter(torch.zeros(r, d_in, d_out))
        self.weight_v = nn.Parameter(torch.zeros(r, d_in, d_out))
        self.bias_k = nn.Parameter(torch.zeros(r, d_out))
        self.bias_v = nn.Parameter(torch.zeros(r, d_out))
        self.gate_logit = nn.Parameter(torch.zeros(r))

    @property
    def gates(self) -> list[float]:
        """The per-layer gates g_l = sigmoid(a_l), in (0, 1)."""
        return [float(g) for g in torch.sigmoid(self.gate_logit.detach())]

    def forward(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``features`` ``[S, n, 2·width_s]`` (every sharer layer's [un-rotated key; value] at n aligned tokens) →
        receiver keys (pre-RoPE) and values, each ``[R, n, width_r]``."""
        if features.ndim != 3 or features.shape[0] != self.sharer.n_layers or features.shape[2] != 2 * self.sharer.width:
            raise ValueError(f"projector input must be [{self.sharer.n_layers}, n, {2 * self.sharer.width}], "
                             f"got {tuple(features.shape)}")
        x = (features[list(self.layers)] - self.input_mean[:, None]) / self.input_scale[:, None]
        gate = torch.sigmoid(self.gate_logit)[:, None, None]
        keys = self.bias_k[:, None] + gate * torch.bmm(x, self.weight_k)
        values = self.bias_v[:, None] + gate * torch.bmm(x, self.weight_v)
        return keys, values


@dataclass(frozen=True)
class SharerContext:
    """The sharer's cache of a context, ready to project: ``features`` ``[S, n_r, 2·width_s]`` (every sharer layer's
    [un-rotated key; value] at the sharer token aligned to each of the receiver's n_r content tokens),
    ``receiver`` (the context under the receiver's tokenizer) and ``alignment`` (sharer content index per receiver
    content token)."""

    features: torch.Tensor
    receiver: TokenizedText
    alignment: tuple[int, ...]


def _unrotated_features(lm: LoadedModel, text: TokenizedText) -> torch.Tensor:
    """``[S, n_content, 2·width]``: each layer's keys turned back to position 0 and values, content tokens only."""
    pre = kvcache.prefill(lm.model, [list(text.ids)], pad_id=pad_id(lm.tokenizer))
    snap = kvcache.export_kv(pre)
    n = len(text.ids)
    positions = torch.arange(n)
    layers = []
    for layer, (k, v) in enumerate(zip(snap.keys, snap.values)):
        if k.shape[-2] != n:
            raise ValueError(f"{lm.name} layer {layer} holds {k.shape[-2]} of the context's {n} positions (sliding "
                             "window shorter than the context); contexts must fit every window")
        k0 = rotate_keys(k[0].float().cpu(), -positions, snap.rope_inv_freq[layer])      # [n_kv, n, hd]
        v0 = v[0].float().cpu()
        both = torch.cat([k0.transpose(0, 1).reshape(n, -1), v0.transpose(0, 1).reshape(n, -1)], dim=-1)
        layers.append(both[text.n_special:])
    return torch.stack(layers)


def sharer_context(sharer: LoadedModel, receiver: LoadedModel, context: str) -> SharerContext:
    """The sharer's K/V of ``context`` aligned to the receiver's tokens of the same text (no gradients)."""
    r_text = tokenize_with_spans(receiver.tokenizer, context)
    s_text = tokenize_with_spans(sharer.tokenizer, context)
    alignment = align_by_last_character(r_text.spans, s_text.spans)
    with torch.no_grad():
        feats = _unrotated_features(sharer, s_text)
    return SharerContext(features=feats[:, list(alignment)], receiver=r_text, alignment=alignment)


@dataclass(frozen=True)
class ReceiverFrame:
    """What every projected cache of one receiver shares: the layer classes of its cache, its rotary frequencies and
    the own K/V of its special prefix (``prefix`` None when its tokenizer adds no special tokens)."""

    layer_types: tuple[str, ...]
    rope_inv_freq: tuple[torch.Tensor, ...]
    prefix: kvcache.KVSnapshot | None
    n_special: int
    sliding_window: int | None
    device: torch.device


def receiver_frame(receiver: LoadedModel) -> ReceiverFrame:
    """The receiver's frame, read from a prefill of its special prefix (or of one token when it has none)."""
    probe = tokenize_with_spans(receiver.tokenizer, "a")
    rows = list(probe.ids[:probe.n_special]) or list(probe.ids[:1])
    snap = kvcache.export_kv(kvcache.prefill(receiver.model, [rows], pad_id=pad_id(receiver.tokenizer)))
    return ReceiverFrame(layer_types=snap.layer_types, rope_inv_freq=snap.rope_inv_freq,
                         prefix=snap if probe.n_special else None, n_special=probe.n_special,
                         sliding_window=receiver.shape.sliding_window, device=kvcache.input_device(receiver.model))


def projected_snapshot(projector: CacheProjector, frame: ReceiverFrame, features: torch.Tensor) -> kvcache.KVSnapshot:
    """The receiver cache of a context: its own special prefix, then the projected K/V of the ``features``'
    n content tokens with keys rotated to positions ``n_special …``, on the receiver's device. Differentiable in the
    projector's parameters (which stay on the CPU: smoke scale)."""
    keys_pre, values = projector(features)
    r, n, _ = keys_pre.shape
    total = frame.n_special + n
    if frame.sliding_window is not None and total >= frame.sliding_window:
        raise ValueError(f"a projected context of {total} tokens does not fit the receiver's sliding window "
                         f"{frame.sliding_window}")
    heads, hd = projector.receiver.n_kv_heads, projector.receiver.head_dim
    positions = torch.arange(frame.n_special, total)
    out_k, out_v = [], []
    for layer in range(r):
        k = keys_pre[layer].reshape(n, heads, hd).transpose(0, 1)
        k = rotate_keys(k, positions, frame.rope_inv_freq[layer])[None].to(frame.device)
        v = values[layer].reshape(n, heads, hd).transpose(0, 1)[None].to(frame.device)
        if frame.prefix is not None:
            k = torch.cat([frame.prefix.keys[layer].float(), k], dim=-2)
            v = torch.cat([frame.prefix.values[layer].float(), v], dim=-2)
        out_k.append(k)
        out_v.append(v)
    return kvcache.KVSnapshot(
        keys=tuple(out_k), values=tuple(out_v), seen=(total,) * r, layer_types=frame.layer_types, lengths=(total,),
        attention_mask=torch.ones((1, total), dtype=torch.long, device=frame.device), rope_inv_freq=frame.rope_inv_freq, position_offset=0,
    )


def receiver_own_snapshot(receiver: LoadedModel, context: TokenizedText) -> kvcache.KVSnapshot:
    """The receiver's own cache of the context (all its tokens, special prefix included)."""
    return kvcache.export_kv(kvcache.prefill(receiver.model, [list(context.ids)], pad_id=pad_id(receiver.tokenizer)))


def continuation_nll(receiver: LoadedModel, snapshot: kvcache.KVSnapshot | None, continuation: list[int]) -> torch.Tensor:
    """Mean NLL (nats/token) of continuation tokens 2…m given the cache in ``snapshot`` (None: no cache) and the
    continuation tokens before each: tokens 1…m−1 are fed, the first is fed and not scored (its prediction would
    come from the context's last position, which the cache holds but does not re-run). A 0-d tensor; differentiable
    in the snapshot's tensors under grad mode."""
    if len(continuation) < 2:
        raise ValueError(f"a continuation needs at least 2 tokens to score one, got {len(continuation)}")
    logits = kvcache.logits_after(receiver.model, snapshot, continuation[:-1])
    targets = torch.tensor(continuation[1:], dtype=torch.long, device=logits.device)
    return F.cross_entropy(logits, targets)
