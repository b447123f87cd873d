"""Cache-anatomy measurements (DESIGN §5): shapes and bytes, re-injection, RoPE re-rotation, persona signatures.

Every cache operation goes through :mod:`harness.kvcache`; this module only chooses inputs, compares
numbers and caches the raw results on disk (:class:`~harness.measurement_cache.MeasurementCache`).

- **Shapes.** After prefilling one prompt of n tokens, layer i's K and V must be
  ``(1, n_kv_heads, tokens, head_dim)`` with ``tokens = n`` on full-attention layers and
  ``min(n, sliding_window − 1)`` on sliding layers (the next query attends to itself and the W − 1 keys
  before it, so that is all a sliding layer keeps), and ``n_kv_heads · head_dim · bytes(dtype)`` bytes per
  token, all read from the model config.
- **Injection.** Prefill tokens ``0…n−2``, take the cache apart (:func:`kvcache.export_kv`), build a fresh
  cache from the tensors (:func:`kvcache.inject_kv`), feed token ``n−1``: the logits must equal the last
  logits of one forward pass over the whole text.
- **Re-rotation.** Prefill ``0…n−2`` at positions ``0…``, move the cache by Δ
  (:func:`kvcache.shift_positions`), feed token ``n−1`` at position ``n−1+Δ``; compare with prefilling the same
  tokens at positions ``Δ…`` and feeding the same token. A wrong rotation is recorded beside it (keys
  turned by Δ + 1 while decoding continues at the positions of a move by Δ): it shows how large the
  difference of a re-rotation by the wrong Δ is on the same data.
- **Persona signature.** Each item is a system prompt followed by a user prompt, as plain text with no chat
  template: ``encode(system + "\\n\\n") + encode(user, no special tokens)``, so the user turn starts at the
  same position under every persona when the system prompts have equal token counts. Its feature is the
  cached V at one layer averaged over the user-turn positions; persona identity is read back by
  leave-one-user-prompt-out nearest-centroid classification (Euclidean).

Logit differences are in logit units (max over the vocabulary); bytes are bytes.
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from harness import kvcache
from harness.measurement_cache import MeasurementCache, code_fingerprint
from harness.models import LoadedModel
from harness.prompts import Prompt
from harness.tokens import encode, pad_id

SYSTEM_SEPARATOR = "\n\n"
"""Text between a persona's system prompt and the user prompt (part of the system segment)."""


def _cached(
    lm: LoadedModel, kind: str, prompts: Sequence[Prompt], params: dict[str, Any], cache: MeasurementCache | None,
    compute: Callable[[], Any],
) -> Any:
    parts = {
        "model": lm.identity,
        "prompts": [[p.id, p.text, p.system] for p in prompts],
        "params": params,
        "code": code_fingerprint([sys.modules[__name__]]),
    }
    return (cache or MeasurementCache(mode="off")).get_or_compute(kind, parts, compute)


def _row(lm: LoadedModel, prompt: Prompt) -> list[int]:
    ids = encode(lm.tokenizer, prompt.text)
    if len(ids) < 2:
        raise ValueError(f"prompt {prompt.id!r} has {len(ids)} token(s); the anatomy checks need at least 2")
    return ids


def _prefill(lm: LoadedModel, rows: Sequence[Sequence[int]], position_offset: int = 0) -> kvcache.Prefill:
    return kvcache.prefill(lm.model, rows, pad_id=pad_id(lm.tokenizer), position_offset=position_offset)


def _next_logits(lm: LoadedModel, state: kvcache.Prefill, token: int) -> torch.Tensor:
    return kvcache.DecodeState(state).step(lm.model, torch.tensor([token])).logits[0]


# ------------------------------------------------------------------------------------------------- shapes


@dataclass(frozen=True)
class CacheFacts:
    """What the model config says the cache must look like."""

    n_layers: int
    n_kv_heads: int
    head_dim: int
    layer_types: tuple[str, ...]
    sliding_window: int | None
    bytes_per_element: int

    def stored_tokens(self, layer: int, n_tokens: int) -> int:
        """Positions layer ``layer`` keeps after a prefill of ``n_tokens``."""
        if self.layer_types[layer] == "sliding_attention" and self.sliding_window is not None:
            return min(n_tokens, self.sliding_window - 1)
        return n_tokens

    @property
    def bytes_per_token(self) -> int:
        """Bytes one token occupies in one layer's K (or V) tensor."""
        return self.n_kv_heads * self.head_dim * self.bytes_per_element


def cache_facts(model: torch.nn.Module) -> CacheFacts:
    """The cache layout implied by ``model.config`` (text config) and the model's parameter dtype."""
    config = model.config.get_text_config(decoder=True)
    n_layers = int(config.num_hidden_layers)
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
    layer_types = tuple(getattr(config, "layer_types", None) or ["full_attention"] * n_layers)
    window = getattr(config, "sliding_window", None)
    dtype = next(model.parameters()).dtype
    return CacheFacts(
        n_layers, int(config.num_key_value_heads), int(head_dim), layer_types,
        int(window) if window is not None and "sliding_attention" in layer_types else None,
        torch.empty((), dtype=dtype).element_size(),
    )


def cache_shape_mismatches(facts: CacheFacts, state: kvcache.Prefill) -> list[str]:
    """One line per (layer, K|V) entry of a single-row prefill whose shape or bytes per token differ from ``facts``."""
    if state.batch_size != 1:
        raise ValueError(f"cache_shape_mismatches checks one row at a time, got a batch of {state.batch_size}")
    n_tokens = state.lengths[0]
    problems = []
    if kvcache.num_layers(state) != facts.n_layers:
        problems.append(f"cache has {kvcache.num_layers(state)} layers, config {facts.n_layers}")
    for layer in range(min(kvcache.num_layers(state), facts.n_layers)):
        expected = (1, facts.n_kv_heads, facts.stored_tokens(layer, n_tokens), facts.head_dim)
        for name, tensor in zip("KV", kvcache.layer_kv(state, layer)):
            shape = tuple(tensor.shape)
            per_token = tensor.numel() * tensor.element_size() // max(shape[0] * shape[2], 1)
            if shape != expected or per_token != facts.bytes_per_token:
                problems.append(
                    f"layer {layer} {name}: shape {shape}, {per_token} B/token; config implies {expected}, "
                    f"{facts.bytes_per_token} B/token"
                )
    return problems


def measure_cache_shapes(
    lm: LoadedModel, prompts: Sequence[Prompt], *, cache: MeasurementCache | None = None
) -> dict[str, Any]:
    """Prefill each prompt alone and compare every layer's K and V with the config.

    Returns ``{"mismatches": [line, ...], "per_prompt": {id: count}, "kv_bytes_per_token": [int, ...],
    "config_kv_bytes_per_token": int, "sliding_layers": [...], "sliding_window": int | None}``: bytes one
    token occupies over all layers, K and V (the distinct values seen over the prompts; one value when
    every prompt agrees), and what the config implies.
    """

    def compute() -> dict[str, Any]:
        facts = cache_facts(lm.model)
        mismatches: list[str] = []
        per_prompt: dict[str, int] = {}
        measured_total: set[int] = set()
        for prompt in prompts:
            state = _prefill(lm, [_row(lm, prompt)])
            found = cache_shape_mismatches(facts, state)
            per_prompt[prompt.id] = len(found)
            mismatches += [f"{prompt.id}: {line}" for line in found]
            measured_total.add(sum(
                t.numel() * t.element_size() // (t.shape[0] * t.shape[2])
                for layer in range(kvcache.num_layers(state))
                for t in kvcache.layer_kv(state, layer)
            ))
        return {
            "mismatches": mismatches,
            "per_prompt": per_prompt,
            "kv_bytes_per_token": sorted(measured_total),
            "config_kv_bytes_per_token": 2 * facts.n_layers * facts.bytes_per_token,
            "sliding_layers": [i for i, t in enumerate(facts.layer_types) if t == "sliding_attention"],
            "sliding_window": facts.sliding_window,
        }

    return _cached(lm, "anatomy_shapes", prompts, {}, cache, compute)


# ---------------------------------------------------------------------------------------------- injection


def injection_difference(lm: LoadedModel, ids: Sequence[int]) -> tuple[float, bool]:
    """(max |Δ logit| between decoding ``ids[-1]`` from a re-injected prefix cache and a full forward pass,
    whether the re-injected cache is bitwise equal to the original)."""
    state = _prefill(lm, [list(ids[:-1])])
    injected = kvcache.inject_kv(lm.model, kvcache.export_kv(state))
    logits = _next_logits(lm, injected, ids[-1])
    with torch.no_grad():
        full = lm.model(input_ids=torch.tensor([list(ids)], device=lm.input_device)).logits[0, -1].float()
    return float((logits - full.to(logits.device)).abs().max()), kvcache.cache_hash(injected) == kvcache.cache_hash(state)


def measure_injection(
    lm: LoadedModel, prompts: Sequence[Prompt], *, cache: MeasurementCache | None = None
) -> dict[str, Any]:
    """Per prompt, :func:`injection_difference`: ``{"max_abs_logit_diff": {id: x}, "bitwise_equal": {id: bool}}``."""

    def compute() -> dict[str, Any]:
        diffs, equal = {}, {}
        for prompt in prompts:
            diffs[prompt.id], equal[prompt.id] = injection_difference(lm, _row(lm, prompt))
        return {"max_abs_logit_diff": diffs, "bitwise_equal": equal}

    return _cached(lm, "anatomy_injection", prompts, {}, cache, compute)


# --------------------------------------------------------------------------------------------- re-rotation


@dataclass(frozen=True)
class RerotationCheck:
    """One prompt and shift Δ: logit and per-layer key/value differences (see the module docstring)."""

    max_abs_logit_diff: float
    wrong_delta_logit_diff: float
    key_diff_per_layer: tuple[float, ...]
    value_diff_per_layer: tuple[float, ...]


def rerotation_difference(lm: LoadedModel, ids: Sequence[int], delta: int) -> RerotationCheck:
    """Compare a cache moved by ``delta`` with one encoded at positions shifted by ``delta`` (prefix ``ids[:-1]``)."""
    if delta < 1:
        raise ValueError(f"delta must be a positive number of positions, got {delta}")
    prefix, last = [list(ids[:-1])], ids[-1]
    state = _prefill(lm, prefix)
    moved = kvcache.shift_positions(state, delta)
    encoded = _prefill(lm, prefix, position_offset=delta)
    wrong = dataclasses.replace(kvcache.shift_positions(state, delta + 1), position_offset=delta)
    reference = _next_logits(lm, encoded, last)
    keys, values = [], []
    for layer in range(kvcache.num_layers(state)):
        (km, vm), (ke, ve) = kvcache.layer_kv(moved, layer), kvcache.layer_kv(encoded, layer)
        keys.append(float((km.float() - ke.float()).abs().max()))
        values.append(float((vm.float() - ve.float()).abs().max()))
    return RerotationCheck(
        float((_next_logits(lm, moved, last) - reference).abs().max()),
        float((_next_logits(lm, wrong, last) - reference).abs().max()),
        tuple(keys),
        tuple(values),
    )


def measure_rerotation(
    lm: LoadedModel, prompts: Sequence[Prompt], deltas: Sequence[int], *, cache: MeasurementCache | None = None
) -> dict[str, Any]:
    """For every prompt and Δ, :func:`rerotation_difference` as ``{"<id>|<Δ>": {field: value}}`` under ``"checks"``."""

    def compute() -> dict[str, Any]:
        checks = {}
        for prompt in prompts:
            ids = _row(lm, prompt)
            for delta in deltas:
                c = rerotation_difference(lm, ids, delta)
                checks[f"{prompt.id}|{delta}"] = {
                    "max_abs_logit_diff": c.max_abs_logit_diff,
                    "wrong_delta_logit_diff": c.wrong_delta_logit_diff,
                    "key_diff_per_layer": list(c.key_diff_per_layer),
                    "value_diff_per_layer": list(c.value_diff_per_layer),
                }
        return {"checks": checks}

    return _cached(lm, "anatomy_rerotation", prompts, {"deltas": list(deltas)}, cache, compute)


# ------------------------------------------------------------------------------------------------ personas


def persona_tokens(tokenizer: Any, system: str, user: str) -> tuple[list[int], int]:
    """Token ids of ``system + SYSTEM_SEPARATOR`` (with the tokenizer's special tokens) then ``user`` (without),
    and the number of system-segment tokens (the user turn starts there)."""
    head = encode(tokenizer, system + SYSTEM_SEPARATOR)
    tail = list(tokenizer(user, add_special_tokens=False)["input_ids"])
    if not tail:
        raise ValueError(f"user prompt {user[:40]!r} has no tokens")
    return head + tail, len(head)


def persona_features(
    lm: LoadedModel, prompts: Sequence[Prompt], layer: int, *, batch_size: int = 8
) -> tuple[np.ndarray, list[int], list[int]]:
    """Per prompt, the cached V at ``layer`` averaged over the user-turn positions (``[n, n_kv_heads·head_dim]``).

    Also returns each prompt's system-segment token count and the number of user-turn positions the layer
    no longer held (sliding-window eviction; those are left out of the mean).
    """
    if any(p.system is None for p in prompts):
        raise ValueError("persona_features needs prompts with a system prompt")
    rows = [persona_tokens(lm.tokenizer, p.system or "", p.text) for p in prompts]
    features, evicted = [], []
    for start in range(0, len(rows), batch_size):
        chunk = rows[start : start + batch_size]
        state = _prefill(lm, [ids for ids, _ in chunk])
        _, values = kvcache.layer_kv(state, layer)
        held_from, _ = kvcache.held_range(state, layer)
        for b, (ids, n_system) in enumerate(chunk):
            slots = [state.pads[b] + p - held_from for p in range(n_system, len(ids))]
            kept = [s for s in slots if s >= 0]
            evicted.append(len(slots) - len(kept))
            if not kept:
                raise ValueError(f"layer {layer} holds none of prompt {prompts[start + b].id!r}'s user-turn positions")
            v = values[b][:, kept, :].float()  # [n_kv, T, head_dim]
            features.append(v.permute(1, 0, 2).reshape(len(kept), -1).mean(dim=0).cpu().numpy())
    return np.stack(features).astype(np.float64), [n for _, n in rows], evicted


def measure_persona_features(
    lm: LoadedModel, prompts: Sequence[Prompt], layer: int, *, cache: MeasurementCache | None = None
) -> dict[str, Any]:
    """:func:`persona_features` as builtins: ``{"features": [[...]], "system_tokens": [...], "evicted": [...]}``."""

    def compute() -> dict[str, Any]:
        feats, system_tokens, evicted = persona_features(lm, prompts, layer)
        return {"features": feats.tolist(), "system_tokens": system_tokens, "evicted": evicted}

    return _cached(lm, "anatomy_persona", prompts, {"layer": layer, "separator": SYSTEM_SEPARATOR}, cache, compute)


def nearest_centroid_loo(features: np.ndarray, labels: Sequence[str], groups: Sequence[str]) -> list[str]:
    """Leave-one-group-out nearest-centroid predictions (Euclidean), one per row, in row order.

    For each group g, the class centroids are the means of the rows of the other groups; every row of g is
    assigned the class of the nearest centroid (ties: the first class in sorted order).

    Raises:
        ValueError: shapes disagree, fewer than two groups, or some class has no row outside a group.
    """
    x = np.asarray(features, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] != len(labels) or len(labels) != len(groups):
        raise ValueError(f"need features [n, d] with n labels and n groups, got {x.shape}, {len(labels)}, {len(groups)}")
    classes = sorted(set(labels))
    label_arr, group_arr = np.asarray(labels), np.asarray(groups)
    if len(set(groups)) < 2:
        raise ValueError("leave-one-group-out needs at least two groups")
    predictions: list[str] = [""] * len(labels)
    for group in sorted(set(groups)):
        held_out = group_arr == group
        centroids = []
        for c in classes:
            train = (~held_out) & (label_arr == c)
            if not train.any():
                raise ValueError(f"class {c!r} has no row outside group {group!r}; its centroid is undefined")
            centroids.append(x[train].mean(axis=0))
        distances = np.linalg.norm(x[held_out][:, None, :] - np.stack(centroids)[None, :, :], axis=-1)
        for row, choice in zip(np.flatnonzero(held_out), distances.argmin(axis=1)):
            predictions[row] = classes[int(choice)]
    return predictions
