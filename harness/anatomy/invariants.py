"""Cache invariants (DESIGN §5): shapes and bytes, re-injection, RoPE re-rotation.

Every cache operation goes through :mod:`harness.engine.kvcache`; this module only chooses inputs, compares
numbers and caches the raw results on disk (:func:`harness.anatomy.probes.stored_measurement`).

- **Shapes.** After prefilling one prompt of n tokens, layer i's K and V must be
  ``(1, n_kv_heads, tokens, head_dim)`` with ``tokens = n`` on full-attention layers and
  ``min(n, sliding_window − 1)`` on sliding layers (the next query attends to itself and the W − 1 keys
  before it, so that is all a sliding layer keeps), and ``n_kv_heads · head_dim · bytes(dtype)`` bytes per
  token, all read from the model config.
- **Injection.** Prefill tokens ``0…n−2``, take the cache apart (:func:`kvcache.export_kv`), build a fresh
  cache from the tensors (:func:`kvcache.inject_kv`), feed token ``n−1``: the logits must equal the last
  logits of one forward pass over the whole text. On a model with sliding-window layers one prompt is longer
  than the window by :data:`BEYOND_WINDOW_MARGIN` tokens (:func:`beyond_window_prompt`), so the injected
  sliding layers hold a cache whose oldest positions were evicted.
- **Re-rotation.** Prefill ``0…n−2`` at positions ``0…``, move the cache by Δ
  (:func:`kvcache.shift_positions`), feed token ``n−1`` at position ``n−1+Δ``; compare with prefilling the same
  tokens at positions ``Δ…`` and feeding the same token. A wrong rotation is recorded beside it (keys
  turned by Δ + 1 while decoding continues at the positions of a move by Δ): it shows how large the
  difference of a re-rotation by the wrong Δ is on the same data.

Logit differences are in logit units (max over the vocabulary); bytes are bytes.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from harness.anatomy.probes import prefill_rows, prompt_row, stored_measurement
from harness.engine import kvcache
from harness.engine.tokens import encode
from harness.models import LoadedModel, read_shape
from harness.prompts import Prompt
from harness.runtime.measurement_store import MeasurementStore

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
    shape = read_shape(config)  # KV heads and head_dim with the configs' fallbacks (GPT-NeoX names no KV heads)
    n_layers = int(config.num_hidden_layers)
    layer_types = tuple(getattr(config, "layer_types", None) or ["full_attention"] * n_layers)
    window = getattr(config, "sliding_window", None)
    dtype = next(model.parameters()).dtype
    return CacheFacts(
        n_layers, int(shape.n_kv_heads), int(shape.head_dim), layer_types,
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
    lm: LoadedModel, prompts: Sequence[Prompt], *, store: MeasurementStore | None = None
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
            state = prefill_rows(lm, [prompt_row(lm, prompt)])
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

    return stored_measurement(lm, "anatomy_shapes", prompts, {}, store, compute, __name__)


# ---------------------------------------------------------------------------------------------- injection


def injection_difference(lm: LoadedModel, ids: Sequence[int]) -> tuple[float, bool]:
    """(max |Δ logit| between decoding ``ids[-1]`` from a re-injected prefix cache and a full forward pass,
    whether the re-injected cache is bitwise equal to the original)."""
    state = prefill_rows(lm, [list(ids[:-1])])
    injected = kvcache.inject_kv(lm.model, kvcache.export_kv(state))
    logits = kvcache.next_token_logits(lm.model, injected, ids[-1])
    with torch.no_grad():
        full = lm.model(input_ids=torch.tensor([list(ids)], device=lm.input_device)).logits[0, -1].float()
    return float((logits - full.to(logits.device)).abs().max()), kvcache.cache_hash(injected) == kvcache.cache_hash(state)


BEYOND_WINDOW_MARGIN = 64
"""Tokens by which the injection check's long prompt exceeds a sliding window (fixed before any data)."""


def sliding_window(lm: LoadedModel) -> int | None:
    """The model config's ``sliding_window`` (tokens) when some layer slides, else None."""
    return lm.shape.sliding_window if lm.shape.sliding_layers else None


def beyond_window_prompt(lm: LoadedModel, pool: Sequence[Prompt], min_tokens: int) -> Prompt:
    """A prompt of at least ``min_tokens`` tokens: the texts of ``pool`` (in id order, cycling when one pass is
    not enough) joined by single spaces, cut after the first text that reaches the length. Deterministic: the
    same pool and tokenizer give the same prompt; its id says how many texts it joins.

    Raises:
        ValueError: ``pool`` is empty or holds only texts without tokens.
    """
    texts = [p.text for p in sorted(pool, key=lambda p: p.id)]
    if not texts or not any(encode(lm.tokenizer, t) for t in texts):
        raise ValueError("beyond_window_prompt needs a non-empty pool of prompts with tokens")
    joined: list[str] = []
    while len(encode(lm.tokenizer, " ".join(joined))) < min_tokens:
        joined.append(texts[len(joined) % len(texts)])
    group = pool[0].group
    return Prompt(id=f"long:{group}:{len(joined)}-joined", group=group, text=" ".join(joined))


def measure_injection(
    lm: LoadedModel, prompts: Sequence[Prompt], *, store: MeasurementStore | None = None
) -> dict[str, Any]:
    """Per prompt, :func:`injection_difference`: ``{"max_abs_logit_diff": {id: x}, "bitwise_equal": {id: bool},
    "tokens": {id: n}}`` (``tokens``: the prompt's token count, special tokens included)."""

    def compute() -> dict[str, Any]:
        diffs, equal, tokens = {}, {}, {}
        for prompt in prompts:
            ids = prompt_row(lm, prompt)
            diffs[prompt.id], equal[prompt.id] = injection_difference(lm, ids)
            tokens[prompt.id] = len(ids)
        return {"max_abs_logit_diff": diffs, "bitwise_equal": equal, "tokens": tokens}

    return stored_measurement(lm, "anatomy_injection", prompts, {}, store, compute, __name__)


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
    state = prefill_rows(lm, prefix)
    moved = kvcache.shift_positions(state, delta)
    encoded = prefill_rows(lm, prefix, position_offset=delta)
    wrong = dataclasses.replace(kvcache.shift_positions(state, delta + 1), position_offset=delta)
    reference = kvcache.next_token_logits(lm.model, encoded, last)
    keys, values = [], []
    for layer in range(kvcache.num_layers(state)):
        (km, vm), (ke, ve) = kvcache.layer_kv(moved, layer), kvcache.layer_kv(encoded, layer)
        keys.append(float((km.float() - ke.float()).abs().max()))
        values.append(float((vm.float() - ve.float()).abs().max()))
    return RerotationCheck(
        float((kvcache.next_token_logits(lm.model, moved, last) - reference).abs().max()),
        float((kvcache.next_token_logits(lm.model, wrong, last) - reference).abs().max()),
        tuple(keys),
        tuple(values),
    )


def measure_rerotation(
    lm: LoadedModel, prompts: Sequence[Prompt], deltas: Sequence[int], *, store: MeasurementStore | None = None
) -> dict[str, Any]:
    """For every prompt and Δ, :func:`rerotation_difference` as ``{"<id>|<Δ>": {field: value}}`` under ``"checks"``."""

    def compute() -> dict[str, Any]:
        checks = {}
        for prompt in prompts:
            ids = prompt_row(lm, prompt)
            for delta in deltas:
                c = rerotation_difference(lm, ids, delta)
                checks[f"{prompt.id}|{delta}"] = {
                    "max_abs_logit_diff": c.max_abs_logit_diff,
                    "wrong_delta_logit_diff": c.wrong_delta_logit_diff,
                    "key_diff_per_layer": list(c.key_diff_per_layer),
                    "value_diff_per_layer": list(c.value_diff_per_layer),
                }
        return {"checks": checks}

    return stored_measurement(lm, "anatomy_rerotation", prompts, {"deltas": list(deltas)}, store, compute, __name__)


def rerotation_summary(checks: dict[str, dict[str, Any]], deltas: Sequence[int], n_layers: int) -> dict[str, Any]:
    """The record's folds of :func:`measure_rerotation`'s checks (logit units): the max |Δ logit| per Δ over prompts,
    the wrong-Δ control's min over prompts per Δ, and the max key and value differences per layer over every check."""
    per_delta = {d: [c for key, c in checks.items() if key.endswith(f"|{d}")] for d in deltas}
    return {
        "max_abs_logit_diff_by_delta": {d: max(c["max_abs_logit_diff"] for c in cs) for d, cs in per_delta.items()},
        "wrong_delta_control": {
            "what": "keys re-rotated by Δ + 1 while decoding at the positions of a move by Δ, against the same "
                    "reference; min over prompts of max |Δ logit|",
            "min_abs_logit_diff_by_delta": {d: min(c["wrong_delta_logit_diff"] for c in cs)
                                            for d, cs in per_delta.items()},
        },
        "max_key_diff_per_layer": [max(c["key_diff_per_layer"][i] for c in checks.values()) for i in range(n_layers)],
        "max_value_diff_per_layer": [max(c["value_diff_per_layer"][i] for c in checks.values())
                                     for i in range(n_layers)],
    }


def injection_prompts(lm: LoadedModel, coverage: Sequence[Prompt], pool: Sequence[Prompt]) -> list[Prompt]:
    """The coverage prompts, plus on a model with sliding-window layers one prompt from ``pool``'s texts longer than
    the window by :data:`BEYOND_WINDOW_MARGIN` tokens (:func:`beyond_window_prompt`)."""
    window = sliding_window(lm)
    if window is None:
        return list(coverage)
    return [*coverage, beyond_window_prompt(lm, pool, window + BEYOND_WINDOW_MARGIN)]
