"""Cache surgery: the only module in the project that touches ``DynamicCache`` (DESIGN §4.3).

Everything here works on transformers 4.57.x and 5.x by feature detection: a cache must expose
``cache.layers`` whose items have ``keys``/``values`` tensors of shape
``[batch, n_kv_heads, stored, head_dim]`` and ``get_seq_length()``. Sliding-window layers
(``is_sliding``) store only their last ``stored`` positions; their ``get_seq_length()`` is the total
number of positions seen.

Coordinates. A batch is left-padded: row ``b`` with ``n_b`` tokens in a batch padded to ``L`` has
``pad_b = L − n_b`` pad slots, and token position ``p`` sits at padded index ``pad_b + p``. A layer
whose total length is ``L`` and that stores ``s`` slots holds padded indices ``[L − s, L)``.

Invariants enforced here:

- prefill runs under ``torch.no_grad()`` (not ``inference_mode``) with explicit ``position_ids``
  (``cumsum(mask) − 1``, from ``harness.engine.tokens.left_pad``) and a full attention mask, into an
  explicit ``DynamicCache``;
- nothing mutates a :class:`Prefill` handed in: patching returns a deep copy, decoding clones;
- mixing is ``(1−α)·recipient + α·donor`` in float32, cast back to each layer's own dtype and
  device, the same code for every α;
- every continuation decodes from :func:`patched_prefix` (recipient tokens ``0 … n−2``, the donor's
  first ``min(n, m) − 1`` tokens patched in per the spec), the generation engine and the V replay alike;
- a patch never changes any layer's length; positions a sliding layer no longer holds (in the
  recipient or the donor) are skipped and listed as not applicable in the :class:`PatchReport`.

Cache anatomy (DESIGN §5): :func:`export_kv` / :func:`inject_kv` take a cache apart into plain tensors
and build a fresh cache from them (restoring each sliding layer's count of positions seen, which the
stored tensors alone do not carry); :func:`shift_positions` moves a whole cache to positions shifted by
Δ by re-rotating every stored key with its own layer's rotary frequencies (Gemma 3: local base on
sliding layers, global base on full layers). A :class:`Prefill` records its ``position_offset`` (token
``p`` of a row sits at logical position ``position_offset + p``), and decoding continues from there.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import inspect
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, NamedTuple, Protocol

import torch
from transformers import DynamicCache

from harness.engine.kv_math import norm_matched_gaussian, rotate_keys, shuffle_permutation
from harness.engine.patch_specs import Alignment, Components, ControlKind, KVPatchSpec, PatchSpecError
from harness.engine.tokens import left_pad
from harness.foundation.seeds import derive_seed

__all__ = [
    "CacheError",
    "DecodeState",
    "KVSnapshot",
    "LayerPatchReport",
    "PatchReport",
    "Prefill",
    "StepOutput",
    "cache_argument",
    "cache_hash",
    "clone",
    "export_kv",
    "held_range",
    "inject_kv",
    "input_device",
    "layer_is_sliding",
    "layer_kv",
    "layer_lengths",
    "layer_window",
    "logits_after",
    "next_token_logits",
    "num_layers",
    "patch_kv",
    "patched_prefix",
    "prefill",
    "replace_layer",
    "rope_interleaved",
    "rope_inv_freq",
    "set_rope_interleaved",
    "shift_positions",
    "teacher_force",
]


class CacheError(RuntimeError):
    """A cache does not have the structure this module needs, or two caches do not fit together."""


@dataclass(frozen=True)
class Prefill:
    """A prefilled KV cache for a left-padded batch, with its bookkeeping.

    ``lengths[b]`` is the number of tokens of row ``b`` in the cache; ``attention_mask`` is
    ``[batch, padded_length]`` (1 = real token) on the model's input device. ``rope_inv_freq[i]`` is
    layer ``i``'s rotary inverse frequencies (float32, CPU), used to move keys between positions, with the pairing
    ``rope_interleaved`` (:func:`rope_interleaved`).
    ``position_offset``: token ``p`` of a row sits at logical (rotary) position ``position_offset + p``.
    Treat it as read-only: every function of this module returns new caches.
    """

    cache: DynamicCache
    lengths: tuple[int, ...]
    attention_mask: torch.Tensor
    rope_inv_freq: tuple[torch.Tensor, ...] = ()
    position_offset: int = 0
    rope_interleaved: bool = False

    @property
    def batch_size(self) -> int:
        return len(self.lengths)

    @property
    def padded_length(self) -> int:
        return int(self.attention_mask.shape[1])

    @property
    def pads(self) -> tuple[int, ...]:
        """Left-pad slots per row."""
        return tuple(self.padded_length - n for n in self.lengths)


def input_device(model: torch.nn.Module) -> torch.device:
    """Device of the input embeddings (where token ids and masks must go, also under ``device_map``)."""
    return model.get_input_embeddings().weight.device


def rope_inv_freq(model: torch.nn.Module) -> tuple[torch.Tensor, ...]:
    """Each decoder layer's rotary inverse frequencies ``[head_dim/2]`` (float32, CPU), by feature detection.

    transformers 5.x keeps one buffer per layer type on ``rotary_emb`` (``sliding_attention_inv_freq``,
    ``full_attention_inv_freq``); 4.57 Gemma 3 has a separate ``rotary_emb_local`` for sliding layers;
    other models have one ``rotary_emb.inv_freq``.
    """
    config = model.config.get_text_config(decoder=True)
    layer_types = getattr(config, "layer_types", None) or ["full_attention"] * config.num_hidden_layers
    modules = dict(model.named_modules())
    rotary = next((m for name, m in modules.items() if name.endswith("rotary_emb")), None)
    local = next((m for name, m in modules.items() if name.endswith("rotary_emb_local")), None)
    if rotary is None:
        raise CacheError(f"{type(model).__name__} has no `rotary_emb` module; keys cannot be moved between positions")

    def lookup(layer_type: str) -> torch.Tensor:
        per_type = getattr(rotary, f"{layer_type}_inv_freq", None)
        if per_type is not None:
            return per_type
        if layer_type == "sliding_attention" and local is not None:
            return local.inv_freq
        return rotary.inv_freq

    return tuple(lookup(t).detach().to("cpu", torch.float32) for t in layer_types)


_INTERLEAVED: weakref.WeakKeyDictionary[torch.nn.Module, bool] = weakref.WeakKeyDictionary()


def rope_interleaved(model: torch.nn.Module) -> bool:
    """Whether the model's rotary embedding pairs dimension ``2i`` with ``2i + 1`` (Cohere) rather than ``i`` with
    ``i + rotary_dim/2`` (transformers' ``rotate_half``, every row of the architecture table), read off the cosines
    its ``rotary_emb`` module gives for position 1 (interleaved: each cosine repeated twice in a row). A module that
    cannot be called with ``(x, position_ids)`` counts as half-split. Some models (Helium) pair dimensions inside
    their attention, not in ``rotary_emb``; an inferred layout's load-time probe tries both pairings on real keys and
    records the one that holds (:func:`set_rope_interleaved`, :mod:`harness.engine.layout_proof`). Memoised per model.
    """
    if model in _INTERLEAVED:
        return _INTERLEAVED[model]
    rotary = next((m for name, m in model.named_modules() if name.endswith("rotary_emb")), None)
    interleaved = False
    if rotary is not None:
        buffer = next(iter(rotary.buffers()), None)
        device = buffer.device if buffer is not None else torch.device("cpu")
        try:
            with torch.no_grad():
                cos, _ = rotary(torch.zeros(1, 1, 1, device=device), torch.ones(1, 1, dtype=torch.long, device=device))
        except Exception:  # noqa: BLE001 - a rotary module with another signature: half-split, as documented
            cos = None
        if isinstance(cos, torch.Tensor) and cos.shape[-1] >= 4:
            cos = cos.reshape(-1, cos.shape[-1]).float()[0]
            half = cos.shape[-1] // 2
            interleaved = not torch.equal(cos[:half], cos[half:]) and torch.equal(cos[0::2], cos[1::2])
    _INTERLEAVED[model] = interleaved
    return interleaved


def set_rope_interleaved(model: torch.nn.Module, interleaved: bool) -> None:
    """Record the rotary pairing a probe proved for ``model`` (what :func:`rope_interleaved` returns from now on)."""
    _INTERLEAVED[model] = interleaved


def _layers(cache: DynamicCache) -> list:
    layers = getattr(cache, "layers", None)
    if layers is None:
        raise CacheError(
            f"{type(cache).__name__} has no per-layer `layers` list; this harness needs the layered "
            "cache API of transformers >= 4.56"
        )
    for i, layer in enumerate(layers):
        if getattr(layer, "keys", None) is None or getattr(layer, "values", None) is None:
            raise CacheError(f"cache layer {i} ({type(layer).__name__}) holds no keys/values")
    return layers


def num_layers(prefill_: Prefill) -> int:
    """Number of cache layers."""
    return len(_layers(prefill_.cache))


def layer_kv(prefill_: Prefill, layer: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Read-only ``(keys, values)`` of a layer, ``[batch, n_kv_heads, stored, head_dim]`` (keys post-RoPE)."""
    entry = _layers(prefill_.cache)[layer]
    return entry.keys, entry.values


def layer_is_sliding(prefill_: Prefill, layer: int) -> bool:
    """Whether the layer is a sliding-window layer that evicts old positions."""
    return bool(getattr(_layers(prefill_.cache)[layer], "is_sliding", False))


def _total_length(layer_obj) -> int:
    return int(layer_obj.get_seq_length())


def held_range(prefill_: Prefill, layer: int) -> tuple[int, int]:
    """Padded indices ``[start, stop)`` the layer still stores (``stop`` = its total length)."""
    entry = _layers(prefill_.cache)[layer]
    total = _total_length(entry)
    return total - int(entry.keys.shape[-2]), total


def layer_window(prefill_: Prefill, layer: int) -> int | None:
    """The sliding window (tokens) a sliding layer declares; None for a full-attention layer."""
    entry = _layers(prefill_.cache)[layer]
    return int(entry.sliding_window) if getattr(entry, "is_sliding", False) else None


def layer_lengths(prefill_: Prefill) -> tuple[int, ...]:
    """Total length (positions seen, padded coordinates) of every layer; all equal in a sound cache."""
    return tuple(_total_length(entry) for entry in _layers(prefill_.cache))


def _tensor_bytes(t: torch.Tensor) -> bytes:
    flat = t.detach().to("cpu").contiguous().reshape(-1)
    return flat.view(torch.uint8).numpy().tobytes()


def cache_hash(prefill_: Prefill) -> str:
    """sha256 hex digest of the cache content: per layer its type, total length, key/value shapes, dtypes and bytes,
    plus the row lengths and attention mask. Equal hashes mean bitwise-equal caches."""
    h = hashlib.sha256()
    h.update(repr(prefill_.lengths).encode())
    h.update(_tensor_bytes(prefill_.attention_mask))
    for entry in _layers(prefill_.cache):
        h.update(f"{type(entry).__name__}|{_total_length(entry)}".encode())
        for t in (entry.keys, entry.values):
            h.update(f"{tuple(t.shape)}|{t.dtype}".encode())
            h.update(_tensor_bytes(t))
    return h.hexdigest()



@functools.cache
def _cache_parameter(forward_owner: type) -> str:
    parameters = inspect.signature(forward_owner.forward).parameters
    return "cache" if "cache" in parameters else "past_key_values"


def cache_argument(model: torch.nn.Module, cache: Any) -> dict[str, Any]:
    """The keyword that hands ``cache`` to ``model``'s forward: ``cache`` where the installed transformers names it
    so (5.x; ``past_key_values`` is deprecated there and removed in 5.40), else ``past_key_values`` (4.57)."""
    return {_cache_parameter(type(model)): cache}

def prefill(
    model: torch.nn.Module, rows: Sequence[Sequence[int]], *, pad_id: int, position_offset: int = 0
) -> Prefill:
    """Run the model over token rows (left-padded by ``harness.engine.tokens.left_pad``) and return the filled cache.

    Runs under ``torch.no_grad()`` (cache tensors stay editable and deep-copyable) into an explicit
    ``DynamicCache(config=model.config)``, so sliding-window layers get their own layer type.
    ``position_offset`` encodes every row at positions shifted by that many (token ``p`` at
    ``position_offset + p``); attention masks and sliding windows do not depend on it.
    """
    if not rows or any(len(r) < 1 for r in rows):
        raise CacheError("prefill needs at least one row and every row needs at least one token")
    if position_offset < 0:
        raise CacheError(f"position_offset must be >= 0, got {position_offset}")
    if model.training:
        raise CacheError("model is in training mode (dropout active); call model.eval() first")
    batch = left_pad(rows, pad_id).to(input_device(model))
    cache = DynamicCache(config=model.config)
    with torch.no_grad():
        model(
            input_ids=batch.input_ids,
            attention_mask=batch.attention_mask,
            position_ids=batch.position_ids + position_offset,
            **cache_argument(model, cache),
            use_cache=True,
            logits_to_keep=1,
        )
    result = Prefill(
        cache=cache,
        lengths=tuple(len(r) for r in rows),
        attention_mask=batch.attention_mask,
        rope_inv_freq=rope_inv_freq(model),
        position_offset=position_offset,
        rope_interleaved=rope_interleaved(model),
    )
    _check_equal_lengths(result)
    return result


def _check_equal_lengths(prefill_: Prefill) -> None:
    lengths = layer_lengths(prefill_)
    if len(set(lengths)) != 1 or lengths[0] != prefill_.padded_length:
        raise CacheError(
            f"cache layers disagree on their length: {lengths} (expected {prefill_.padded_length} everywhere)"
        )


def clone(prefill_: Prefill) -> Prefill:
    """A deep copy: the copy's tensors share no storage with the original."""
    return Prefill(
        cache=copy.deepcopy(prefill_.cache),
        lengths=prefill_.lengths,
        attention_mask=prefill_.attention_mask.clone(),
        rope_inv_freq=prefill_.rope_inv_freq,
        position_offset=prefill_.position_offset,
        rope_interleaved=prefill_.rope_interleaved,
    )


def replace_layer(
    prefill_: Prefill, layer: int, *, keys: torch.Tensor | None = None, values: torch.Tensor | None = None
) -> Prefill:
    """A copy of the cache with one layer's stored keys and/or values replaced (same shape; cast to the layer's dtype/device)."""
    out = clone(prefill_)
    entry = _layers(out.cache)[layer]
    for name, new in (("keys", keys), ("values", values)):
        if new is None:
            continue
        old = getattr(entry, name)
        if tuple(new.shape) != tuple(old.shape):
            raise CacheError(f"layer {layer} {name}: shape {tuple(new.shape)} != cached {tuple(old.shape)}")
        setattr(entry, name, new.detach().to(device=old.device, dtype=old.dtype).clone())
    return out


@dataclass(frozen=True)
class LayerPatchReport:
    """What a patch did at one layer: per row, the positions written and the requested positions the
    layer no longer holds in the recipient or the donor (sliding-window eviction)."""

    layer: int
    sliding: bool
    applied: tuple[tuple[int, ...], ...]
    not_applicable: tuple[tuple[int, ...], ...]


@dataclass(frozen=True)
class PatchReport:
    """Per row: the span positions requested and the donor position each reads; plus one entry per patched layer."""

    requested: tuple[tuple[int, ...], ...]
    sources: tuple[tuple[int, ...], ...]
    layers: tuple[LayerPatchReport, ...] = field(default_factory=tuple)

    def not_applicable_for_row(self, row: int) -> dict[int, tuple[int, ...]]:
        """``{layer: positions}`` for the layers where some requested position of ``row`` could not be patched."""
        return {r.layer: r.not_applicable[row] for r in self.layers if r.not_applicable[row]}


def _check_compatible(recipient: Prefill, donor: Prefill, spec: KVPatchSpec) -> None:
    if recipient.batch_size != donor.batch_size:
        raise CacheError(f"recipient batch {recipient.batch_size} != donor batch {donor.batch_size}")
    if recipient.position_offset != donor.position_offset:
        raise CacheError(
            f"recipient positions start at {recipient.position_offset}, donor positions at {donor.position_offset}; "
            "patched keys would carry the wrong rotary phase"
        )
    rec_layers, don_layers = _layers(recipient.cache), _layers(donor.cache)
    if len(rec_layers) != len(don_layers):
        raise CacheError(f"recipient has {len(rec_layers)} cache layers, donor {len(don_layers)}")
    spec.check_layers(len(rec_layers))
    for i, (r, d) in enumerate(zip(rec_layers, don_layers)):
        same_kind = type(r) is type(d) and getattr(r, "sliding_window", None) == getattr(d, "sliding_window", None)
        if not same_kind or r.keys.shape[1] != d.keys.shape[1] or r.keys.shape[-1] != d.keys.shape[-1]:
            raise CacheError(f"cache layer {i} differs in type or shape between recipient and donor")
    if spec.alignment is Alignment.LENGTH_MATCHED and recipient.lengths != donor.lengths:
        raise PatchSpecError(
            f"alignment=length_matched needs equal cached lengths, got recipient {recipient.lengths} "
            f"and donor {donor.lengths}"
        )


def _row_plan(spec: KVPatchSpec, n_rec: int, n_don: int, row_key: str | None) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(target positions, donor source positions) for one row."""
    positions = spec.span.resolve(min(n_rec, n_don))
    if spec.control is not None and spec.control.kind is ControlKind.SHUFFLED:
        perm = shuffle_permutation(len(positions), derive_seed(spec.control.seed, row_key, "shuffle"))
        return positions, tuple(positions[i] for i in perm)
    return positions, positions


def _mix(
    current: torch.Tensor, donor_part: torch.Tensor, alpha: float
) -> torch.Tensor:
    """``(1−α)·current + α·donor`` in float32, cast back to ``current``'s dtype (same code for every α).

    Computed with ``torch.lerp`` (``a + α(b − a)`` for α < 0.5, ``b − (1 − α)(b − a)`` otherwise), which is
    exact at α = 0 (the recipient), at α = 1 (the donor) and when donor == recipient at any α (self-patch is
    the identity to the bit); the textbook two-product form is off by an ulp there.
    """
    donor32 = donor_part.to(device=current.device, dtype=torch.float32)
    return torch.lerp(current.float(), donor32, alpha).to(current.dtype)


def patch_kv(
    recipient: Prefill, donor: Prefill, spec: KVPatchSpec, *, row_keys: Sequence[str] | None = None
) -> tuple[Prefill, PatchReport]:
    """A patched copy of ``recipient``: at ``spec.layers`` × span positions, K/V ← (1−α)·recipient + α·donor.

    The donor entry for target position ``p`` is the donor's position ``p`` (or, for the shuffled
    control, its permuted source ``s``, with the key re-rotated by ``p − s`` positions).

    Rows are paired (recipient row ``b`` with donor row ``b``). ``row_keys`` (one per row, e.g. the
    pair id) seed the shuffled and random controls, so a row's control draw does not depend on
    batch composition; they are required for those controls. Neither input is modified.
    """
    _check_compatible(recipient, donor, spec)
    control = spec.control
    if control is not None and control.transforms_donor and (row_keys is None or len(row_keys) != recipient.batch_size):
        raise PatchSpecError(f"the {control.kind.value} control needs one row key per row")
    keys = list(row_keys) if row_keys is not None else [None] * recipient.batch_size
    plans = [_row_plan(spec, nr, nd, k) for nr, nd, k in zip(recipient.lengths, donor.lengths, keys)]
    out = clone(recipient)
    rec_layers, don_layers = _layers(out.cache), _layers(donor.cache)
    names = {Components.KV: ("keys", "values"), Components.K: ("keys",), Components.V: ("values",)}[spec.components]
    reports = []
    for layer in spec.layers:
        r_lo, r_hi = held_range(out, layer)
        d_lo, d_hi = held_range(donor, layer)
        new = {name: getattr(rec_layers[layer], name).clone() for name in names}
        applied, skipped = [], []
        for b, (targets, sources) in enumerate(plans):
            pad_r, pad_d = out.pads[b], donor.pads[b]
            ok = [
                (p, s)
                for p, s in zip(targets, sources)
                if r_lo <= pad_r + p < r_hi and d_lo <= pad_d + s < d_hi
            ]
            done = tuple(p for p, _ in ok)
            applied.append(done)
            skipped.append(tuple(p for p in targets if p not in done))
            if not ok:
                continue
            tgt = torch.tensor([pad_r + p - r_lo for p, _ in ok])
            src = torch.tensor([pad_d + s - d_lo for _, s in ok])
            for name in names:
                store = new[name]
                donor_part = getattr(don_layers[layer], name)[b][:, src.to(getattr(don_layers[layer], name).device)]
                if control is not None and control.kind is ControlKind.RANDOM_NORM_MATCHED:
                    donor_part = norm_matched_gaussian(donor_part, derive_seed(control.seed, keys[b], layer, name))
                elif name == "keys" and any(p != s for p, s in ok):
                    delta = torch.tensor([p - s for p, s in ok])
                    donor_part = rotate_keys(donor_part, delta, out.rope_inv_freq[layer],
                                             interleaved=out.rope_interleaved)
                idx = tgt.to(store.device)
                store[b][:, idx] = _mix(store[b][:, idx], donor_part, spec.alpha)
        for name in names:
            setattr(rec_layers[layer], name, new[name])
        reports.append(
            LayerPatchReport(
                layer=layer,
                sliding=layer_is_sliding(out, layer),
                applied=tuple(applied),
                not_applicable=tuple(skipped),
            )
        )
    _check_equal_lengths(out)
    report = PatchReport(
        requested=tuple(p for p, _ in plans), sources=tuple(s for _, s in plans), layers=tuple(reports)
    )
    return out, report


class PrefillFunction(Protocol):
    """What :func:`patched_prefix` calls to prefill token rows: :func:`prefill`'s signature."""

    def __call__(self, model: torch.nn.Module, rows: Sequence[Sequence[int]], *, pad_id: int) -> Prefill: ...


def patched_prefix(
    model: torch.nn.Module,
    recipients: Sequence[Sequence[int]],
    donors: Sequence[Sequence[int]] | None,
    spec: KVPatchSpec | None,
    *,
    pad_id: int,
    row_keys: Sequence[str] | None = None,
    prefill_with: PrefillFunction | None = None,
) -> tuple[Prefill, PatchReport | None]:
    """The cache a continuation decodes from: the one place the (patched) recipient prefix is built.

    Each recipient row's tokens ``0 … n−2`` are prefilled (left-padded batch; the last prompt token is fed by
    the first decode step). With a ``spec``, each donor row's first ``min(n, m) − 1`` tokens (m = donor tokens;
    ``n − 1`` for a length-matched pair) are prefilled as well and patched in by :func:`patch_kv` over those
    shared positions ``0 … min(n, m) − 2`` (``row_keys`` seed the controls); a shorter donor's own last token,
    like the recipient's, is never cached. The report is None without a spec. ``prefill_with`` computes the two
    prefills (default :func:`prefill`; the generation engine passes :func:`harness.engine.prefill_reuse.reused_prefill`,
    which returns the same bits).
    """
    run_prefill = prefill_with or prefill
    prefixes = [r[:-1] for r in recipients]
    recipient = run_prefill(model, prefixes, pad_id=pad_id)
    if spec is None:
        return recipient, None
    if donors is None or len(donors) != len(recipients):
        raise CacheError("patched_prefix: a KV patch needs one donor row per recipient row")
    donor = run_prefill(model, [d[: min(len(r), len(d)) - 1] for r, d in zip(recipients, donors)], pad_id=pad_id)
    return patch_kv(recipient, donor, spec, row_keys=row_keys)


def teacher_force(model: torch.nn.Module, prefill_: Prefill, tokens: Sequence[int]) -> None:
    """Feed ``tokens`` in one teacher-forced forward of the model's base (no LM head) over a clone of a one-row,
    unpadded prefill, at logical positions ``position_offset + n …`` (``n`` = tokens in the cache).

    Row ``i`` of that forward is what a decode loop computes when it feeds ``tokens[i]`` (causal attention);
    hooks read it (e.g. a ``TraceDict`` with ``stop=True`` around the call). ``prefill_`` is not touched.
    """
    if prefill_.batch_size != 1 or prefill_.pads != (0,):
        raise CacheError(f"teacher_force needs a one-row, unpadded prefill, got lengths {prefill_.lengths}")
    state = clone(prefill_)
    device = input_device(model)
    start = prefill_.position_offset + prefill_.lengths[0]
    with torch.no_grad():
        model.base_model(
            input_ids=torch.tensor([list(tokens)], dtype=torch.long, device=device),
            attention_mask=torch.ones((1, prefill_.padded_length + len(tokens)), dtype=torch.long, device=device),
            position_ids=torch.arange(start, start + len(tokens), device=device)[None],
            **cache_argument(model.base_model, state.cache),
            use_cache=True,
        )


def shift_positions(prefill_: Prefill, delta: int) -> Prefill:
    """A copy of the cache moved by ``delta`` positions: every stored key re-rotated by ``delta``, values unchanged.

    Each layer uses its own rotary frequencies (``prefill_.rope_inv_freq[layer]``), so Gemma 3's sliding
    layers turn with the local base and its full layers with the global base. Sliding layers re-rotate
    the positions they still hold. With rotary attention depending only on relative positions, the
    result is the cache that encoding the same tokens at positions shifted by ``delta`` gives (up to
    floating-point error); ``position_offset`` grows by ``delta`` so decoding continues at the new
    positions. Keys are rotated in float32 and cast back to each layer's dtype. This needs rotary
    frequencies that do not depend on the sequence length (default, linear, llama3 and YaRN scaling);
    dynamic-NTK and LongRoPE change them with the length and are not covered.

    Raises:
        CacheError: the prefill carries no rotary frequencies for some layer, or the shift would move
            the first position below 0.
    """
    n = num_layers(prefill_)
    if len(prefill_.rope_inv_freq) != n:
        raise CacheError(
            f"the prefill carries rotary frequencies for {len(prefill_.rope_inv_freq)} of its {n} layers; "
            "keys cannot be re-rotated"
        )
    if prefill_.position_offset + delta < 0:
        raise CacheError(f"shifting positions starting at {prefill_.position_offset} by {delta} goes below 0")
    out = clone(prefill_)
    for layer, entry in enumerate(_layers(out.cache)):
        keys = entry.keys
        steps = torch.full((keys.shape[-2],), delta, dtype=torch.long)
        entry.keys = rotate_keys(keys, steps, prefill_.rope_inv_freq[layer],
                                 interleaved=prefill_.rope_interleaved).to(keys.dtype)
    return replace(out, position_offset=prefill_.position_offset + delta)


@dataclass(frozen=True)
class KVSnapshot:
    """A cache taken apart into plain tensors (what one would save to disk), with its bookkeeping.

    ``keys[i]`` / ``values[i]``: layer i's stored ``[batch, n_kv_heads, stored, head_dim]`` tensors (keys
    post-RoPE); ``seen[i]``: the number of (padded) positions layer i has seen, which exceeds ``stored``
    on a sliding layer past its window; ``layer_types[i]``: the cache layer's class name.
    """

    keys: tuple[torch.Tensor, ...]
    values: tuple[torch.Tensor, ...]
    seen: tuple[int, ...]
    layer_types: tuple[str, ...]
    lengths: tuple[int, ...]
    attention_mask: torch.Tensor
    rope_inv_freq: tuple[torch.Tensor, ...]
    position_offset: int
    rope_interleaved: bool = False


def export_kv(prefill_: Prefill) -> KVSnapshot:
    """Detached copies of every layer's stored keys and values, with the counts of positions seen."""
    entries = _layers(prefill_.cache)
    return KVSnapshot(
        keys=tuple(e.keys.detach().clone() for e in entries),
        values=tuple(e.values.detach().clone() for e in entries),
        seen=tuple(_total_length(e) for e in entries),
        layer_types=tuple(type(e).__name__ for e in entries),
        lengths=prefill_.lengths,
        attention_mask=prefill_.attention_mask.clone(),
        rope_inv_freq=prefill_.rope_inv_freq,
        position_offset=prefill_.position_offset,
        rope_interleaved=prefill_.rope_interleaved,
    )


def inject_kv(model: torch.nn.Module, snapshot: KVSnapshot) -> Prefill:
    """A fresh ``DynamicCache(config=model.config)`` filled with the snapshot's tensors, ready to decode from.

    Each layer gets the stored tensors through its own ``update``; a sliding layer's count of positions
    seen is then restored from the snapshot (the tensors alone would make it the stored length, and the
    next token would get the wrong mask and window). Tensors keep the snapshot's dtype and device, so
    a snapshot exported from the same model fits as it is.

    Raises:
        CacheError: the model's cache layout (number or types of layers) differs from the snapshot's, or a
            full-attention layer would hold fewer positions than it has seen.
    """
    n_layers = model.config.get_text_config(decoder=True).num_hidden_layers
    if len(snapshot.keys) != n_layers:
        raise CacheError(f"the snapshot has {len(snapshot.keys)} layers, the model {n_layers}")
    data = [(k.clone(), v.clone()) for k, v in zip(snapshot.keys, snapshot.values)]
    cache = DynamicCache(ddp_cache_data=data, config=model.config)
    entries = _layers(cache)
    types = tuple(type(e).__name__ for e in entries)
    if types != snapshot.layer_types:
        raise CacheError(f"the model's cache layers {types} differ from the snapshot's {snapshot.layer_types}")
    for i, (entry, seen) in enumerate(zip(entries, snapshot.seen)):
        if hasattr(entry, "cumulative_length"):
            entry.cumulative_length = seen
        elif _total_length(entry) != seen:
            raise CacheError(f"layer {i} holds {_total_length(entry)} positions but the snapshot saw {seen}")
    result = Prefill(
        cache=cache,
        lengths=snapshot.lengths,
        attention_mask=snapshot.attention_mask.clone(),
        rope_inv_freq=snapshot.rope_inv_freq,
        position_offset=snapshot.position_offset,
        rope_interleaved=snapshot.rope_interleaved,
    )
    _check_equal_lengths(result)
    return result


def logits_after(model: torch.nn.Module, snapshot: KVSnapshot | None, tokens: Sequence[int]) -> torch.Tensor:
    """Next-token logits ``[len(tokens), vocab]`` (float32) of feeding ``tokens`` after the one-row, unpadded cache
    that ``snapshot`` holds (a fresh cache is injected, so the snapshot is never touched), at logical positions
    ``position_offset + n …``; with ``snapshot`` None, a plain forward from position 0 without a cache.

    Autograd follows the caller: under grad mode, gradients flow from the logits back into the snapshot's tensors
    (how a cache projector is trained through a frozen model); wrap the call in ``torch.no_grad()`` to measure.
    """
    if not tokens:
        raise CacheError("logits_after needs at least one token")
    device = input_device(model)
    ids = torch.tensor([list(tokens)], dtype=torch.long, device=device)
    if snapshot is None:
        positions = torch.arange(len(tokens), device=device)[None]
        out = model(input_ids=ids, attention_mask=torch.ones_like(ids), position_ids=positions, use_cache=False)
        return out.logits[0].float()
    if len(snapshot.lengths) != 1 or int(snapshot.attention_mask.shape[1]) != snapshot.lengths[0]:
        raise CacheError(f"logits_after needs a one-row, unpadded snapshot, got lengths {snapshot.lengths}")
    state = inject_kv(model, snapshot)
    start = snapshot.position_offset + snapshot.lengths[0]
    mask = torch.ones((1, snapshot.lengths[0] + len(tokens)), dtype=torch.long, device=device)
    out = model(
        input_ids=ids, attention_mask=mask, position_ids=torch.arange(start, start + len(tokens), device=device)[None],
        **cache_argument(model, state.cache), use_cache=True,
    )
    return out.logits[0].float()


class StepOutput(NamedTuple):
    """One decode step: next-token logits ``[batch, vocab]`` (float32) and, when asked, per-layer attention probabilities."""

    logits: torch.Tensor
    attentions: tuple[torch.Tensor, ...] | None


class DecodeState:
    """Continues decoding from a prefilled cache, one token per row per step.

    Owns a private copy of the prefill (the input is never touched). Step ``t`` feeds one token per
    row at logical position ``position_offset + lengths[b] + t`` with a full-length attention mask; the first step of
    a recipient prefilled with tokens ``0 … n−2`` therefore feeds ``b_{n−1}`` at position ``n−1``.

    With ``static_cache_length`` > 0 (the fast path, :mod:`harness.engine.decode_path`) the copy is a preallocated
    ``StaticCache`` of that many positions filled with the prefill's keys and values; the attention mask keeps that
    length from the first step (unfilled slots 0), so every step has the same shapes and a compiled ``forward``
    (given as ``forward``, :func:`harness.engine.decode_path.compiled_forward`) is reused. The prefill must hold every position in every layer (no eviction) and leave
    room for the steps.
    """

    def __init__(self, prefill_: Prefill, *, static_cache_length: int = 0, model: torch.nn.Module | None = None,
                 forward: Callable[..., Any] | None = None) -> None:
        _check_equal_lengths(prefill_)
        self._forward = forward
        self._filled = prefill_.padded_length
        self._positions = torch.tensor(
            [n + prefill_.position_offset for n in prefill_.lengths], dtype=torch.long,
            device=prefill_.attention_mask.device,
        )
        if static_cache_length:
            if model is None:
                raise CacheError("a static-cache DecodeState needs the model (its config shapes the cache)")
            self._cache = static_copy(prefill_, model, static_cache_length)
            self._mask = torch.zeros((prefill_.batch_size, static_cache_length), dtype=prefill_.attention_mask.dtype,
                                     device=prefill_.attention_mask.device)
            self._mask[:, : self._filled] = prefill_.attention_mask
            self._state = None
        else:
            self._state = clone(prefill_)
            self._cache = self._state.cache
            self._mask = self._state.attention_mask
        self._batch = prefill_.batch_size
        self.steps = 0

    @property
    def next_positions(self) -> tuple[int, ...]:
        """Logical position each row's next fed token will occupy."""
        return tuple(int(p) for p in self._positions)

    @property
    def cache_length(self) -> int:
        """Current total length of every layer (padded coordinates); checked equal across layers."""
        if self._state is None:
            return self._filled
        lengths = set(layer_lengths(self._state))
        if len(lengths) != 1:
            raise CacheError(f"cache layers disagree on their length during decoding: {sorted(lengths)}")
        return lengths.pop()

    def last_values(self, layer: int) -> torch.Tensor:
        """The values the last step wrote into ``layer``'s cache, ``[batch, n_kv_heads · head_dim]`` (KV heads in
        order): the fed token's V, read without a hook."""
        values = _layers(self._cache)[layer].values[:, :, self._filled - 1, :]
        return values.reshape(values.shape[0], -1)

    def step(self, model: torch.nn.Module, tokens: torch.Tensor, *, attentions: bool = False) -> StepOutput:
        """Feed ``tokens`` (shape ``[batch]``) and return the next-token logits ``[batch, vocab]`` (float32, a
        tensor of its own).

        With ``attentions=True`` also returns the eager attention probabilities of this step, one
        ``[batch, n_heads, 1, kv]`` tensor per layer (query heads; ``kv`` = what the layer attends to).
        """
        if tokens.shape != (self._batch,):
            raise CacheError(f"expected one token per row ({self._batch}), got shape {tuple(tokens.shape)}")
        device = self._mask.device
        if self._state is None:
            if self._filled >= self._mask.shape[1]:
                raise CacheError(f"the static cache is full ({self._mask.shape[1]} positions)")
            self._mask[:, self._filled] = 1
        else:
            self._mask = torch.cat([self._mask, torch.ones_like(self._mask[:, :1])], dim=1)
        inputs = dict(input_ids=tokens.to(device)[:, None], attention_mask=self._mask,
                      position_ids=self._positions[:, None], **cache_argument(model, self._cache), use_cache=True,
                      output_attentions=attentions)
        with torch.no_grad():
            out = (self._forward or model)(**inputs)
        self._positions = self._positions + 1
        self._filled += 1
        self.steps += 1
        probs = None
        if attentions:
            probs = tuple(out.attentions)
            if any(p is None for p in probs):
                raise CacheError("the model returned no attention weights; load it with attn_implementation='eager'")
        return StepOutput(out.logits[:, -1, :].to(torch.float32, copy=True), probs)


def static_copy(prefill_: Prefill, model: torch.nn.Module, length: int) -> Any:
    """A ``StaticCache`` of ``length`` positions holding the prefill's keys and values (each layer on its own
    layer's device and dtype), its write index just past them.

    Raises:
        CacheError: a layer no longer holds every position (sliding eviction) or ``length`` leaves no room.
    """
    from transformers import StaticCache

    if length <= prefill_.padded_length:
        raise CacheError(f"a static cache of {length} positions cannot hold a {prefill_.padded_length}-position prefill"
                         " and decode after it")
    static = StaticCache(config=model.config, max_cache_len=length)
    for index, (source, target) in enumerate(zip(_layers(prefill_.cache), static.layers)):
        if source.keys.shape[-2] != prefill_.padded_length:
            raise CacheError(f"layer {index} holds {source.keys.shape[-2]} of {prefill_.padded_length} positions "
                             "(sliding window); a static cache needs them all")
        target.update(source.keys.clone(), source.values.clone())
    return static


def next_token_logits(model: torch.nn.Module, state: Prefill, token: int) -> torch.Tensor:
    """Next-token logits ``[vocab]`` (float32) after feeding ``token`` to the one-row cache ``state``: one
    :class:`DecodeState` step on a private clone, so ``state`` is never touched."""
    return DecodeState(state).step(model, torch.tensor([token])).logits[0]
