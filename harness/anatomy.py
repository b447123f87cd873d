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
  logits of one forward pass over the whole text. On a model with sliding-window layers one prompt is longer
  than the window by :data:`BEYOND_WINDOW_MARGIN` tokens (:func:`beyond_window_prompt`), so the injected
  sliding layers hold a cache whose oldest positions were evicted.
- **Re-rotation.** Prefill ``0…n−2`` at positions ``0…``, move the cache by Δ
  (:func:`kvcache.shift_positions`), feed token ``n−1`` at position ``n−1+Δ``; compare with prefilling the same
  tokens at positions ``Δ…`` and feeding the same token. A wrong rotation is recorded beside it (keys
  turned by Δ + 1 while decoding continues at the positions of a move by Δ): it shows how large the
  difference of a re-rotation by the wrong Δ is on the same data.
- **Persona signature.** Each item is a system prompt (one of several wordings of a persona) followed by a
  user prompt, as plain text with no chat template: ``encode(system + "\\n\\n") + encode(user, no special
  tokens)``, so the user turn starts at the same position under every persona and wording when the system
  prompts have equal token counts. Its feature is the cached V at one layer averaged over the user-turn
  positions. Persona identity is read back by nearest centroid (Euclidean) trained on other wordings and other
  user prompts (:func:`nearest_centroid_held_out`), and the same pipeline runs on a random-weight copy of the
  model (:func:`random_weight_copy`) and on token lengths alone: a random network's V still carries which
  tokens preceded, so only the margin over the copy is evidence of a learned persona representation.

Logit differences are in logit units (max over the vocabulary); bytes are bytes.
"""

from __future__ import annotations

import copy
import dataclasses
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from harness import kvcache
from harness.measurement_cache import MeasurementCache, code_fingerprint
from harness.models import LoadedModel, read_shape
from harness.prompts import Prompt
from harness.stats import permutation_test_paired, proportion_ci, t_interval
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
    lm: LoadedModel, prompts: Sequence[Prompt], *, cache: MeasurementCache | None = None
) -> dict[str, Any]:
    """Per prompt, :func:`injection_difference`: ``{"max_abs_logit_diff": {id: x}, "bitwise_equal": {id: bool},
    "tokens": {id: n}}`` (``tokens``: the prompt's token count, special tokens included)."""

    def compute() -> dict[str, Any]:
        diffs, equal, tokens = {}, {}, {}
        for prompt in prompts:
            ids = _row(lm, prompt)
            diffs[prompt.id], equal[prompt.id] = injection_difference(lm, ids)
            tokens[prompt.id] = len(ids)
        return {"max_abs_logit_diff": diffs, "bitwise_equal": equal, "tokens": tokens}

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


def random_weight_copy(lm: LoadedModel, seed: int) -> LoadedModel:
    """The same architecture with random weights: ``AutoModelForCausalLM.from_config(lm.model.config)`` after
    ``torch.manual_seed(seed)`` (in a forked RNG, so the caller's random state is untouched), on the model's input
    device and in its dtype, with the same tokenizer and layer choices. Its ``provenance["model"]`` names the
    seed, so its measurements are cached apart from the trained model's."""
    from transformers import AutoModelForCausalLM

    dtype = next(lm.model.parameters()).dtype
    device = lm.input_device
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(seed)
        with torch.device(device):
            model = AutoModelForCausalLM.from_config(
                copy.deepcopy(lm.model.config), dtype=dtype, attn_implementation=lm.spec.attn_implementation
            )
    model.eval()
    model.requires_grad_(False)
    provenance = {**lm.provenance, "model": f"{lm.name}:random-weights:{seed}",
                  "weights": f"random, from_config after torch.manual_seed({seed}) on {device}"}
    return dataclasses.replace(lm, model=model, provenance=provenance)


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
    lm: LoadedModel, prompts: Sequence[Prompt], layer: int, *, cache: MeasurementCache | None = None,
    random_weights_seed: int | None = None,
) -> dict[str, Any]:
    """:func:`persona_features` as builtins: ``{"features": [[...]], "system_tokens": [...], "user_tokens": [...],
    "evicted": [...]}``; with ``random_weights_seed``, measured on :func:`random_weight_copy` of ``lm`` (built only
    when the measurement is not cached yet)."""

    def compute() -> dict[str, Any]:
        model = lm if random_weights_seed is None else random_weight_copy(lm, random_weights_seed)
        feats, system_tokens, evicted = persona_features(model, prompts, layer)
        user_tokens = [len(lm.tokenizer(p.text, add_special_tokens=False)["input_ids"]) for p in prompts]
        return {"features": feats.tolist(), "system_tokens": system_tokens, "user_tokens": user_tokens,
                "evicted": evicted}

    params = {"layer": layer, "separator": SYSTEM_SEPARATOR, "random_weights_seed": random_weights_seed}
    return _cached(lm, "anatomy_persona", prompts, params, cache, compute)


def nearest_centroid_held_out(
    features: np.ndarray, labels: Sequence[str], factors: Sequence[Sequence[str]]
) -> list[str]:
    """Held-out nearest-centroid predictions (Euclidean), one per row, in row order.

    Each row carries a tuple of factor values (e.g. ``(wording, user)``). For each distinct tuple, its rows are
    predicted from class centroids computed only on the rows that share **no** factor value with it (no row of
    the same wording, none of the same user); a row gets the class of the nearest centroid (ties: the first
    class in sorted order). With one factor this is leave-one-group-out.

    Raises:
        ValueError: shapes disagree, or some class has no training row for some held-out tuple.
    """
    x = np.asarray(features, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] != len(labels) or len(labels) != len(factors):
        raise ValueError(f"need features [n, d] with n labels and n factor tuples, got {x.shape}, {len(labels)}, "
                         f"{len(factors)}")
    keys = [tuple(f) for f in factors]
    if len({len(k) for k in keys}) > 1 or not keys or not keys[0]:
        raise ValueError("every row needs the same, non-zero number of factor values")
    classes = sorted(set(labels))
    label_arr = np.asarray(labels)
    columns = [np.asarray([k[i] for k in keys]) for i in range(len(keys[0]))]
    predictions: list[str] = [""] * len(labels)
    for key in sorted(set(keys)):
        held_out = np.all([col == value for col, value in zip(columns, key)], axis=0)
        disjoint = np.all([col != value for col, value in zip(columns, key)], axis=0)
        centroids = []
        for c in classes:
            train = disjoint & (label_arr == c)
            if not train.any():
                raise ValueError(
                    f"class {c!r} has no row that shares no factor with {key!r}; its centroid is undefined"
                )
            centroids.append(x[train].mean(axis=0))
        distances = np.linalg.norm(x[held_out][:, None, :] - np.stack(centroids)[None, :, :], axis=-1)
        for row, choice in zip(np.flatnonzero(held_out), distances.argmin(axis=1)):
            predictions[row] = classes[int(choice)]
    return predictions


@dataclass(frozen=True)
class PersonaSignature:
    """Held-out persona identification by the trained model, random-weight copies of it and token lengths alone.

    Every item (persona × wording × user prompt) is predicted once, from centroids of items of *other* wordings
    and *other* user prompts (:func:`nearest_centroid_held_out` with factors ``(wording, user)``), so the
    system-prompt tokens of a test item never occur in its training set. ``predicted`` comes from the trained
    model's features, ``random_predicted`` (one tuple per copy) from the same pipeline on random-weight copies,
    ``length_predicted`` from the token-length features (system-segment and user token counts) alone.
    """

    labels: tuple[str, ...]
    wordings: tuple[str, ...]
    predicted: tuple[str, ...]
    random_predicted: tuple[tuple[str, ...], ...]
    length_predicted: tuple[str, ...]

    @property
    def n(self) -> int:
        """Items predicted."""
        return len(self.labels)

    @property
    def chance(self) -> float:
        """1 / number of personas."""
        return 1.0 / len(set(self.labels))

    @property
    def cells(self) -> list[tuple[str, str]]:
        """The (persona, wording) cells, sorted: the units the decision resamples (their items share one system
        prompt, so their predictions are not independent)."""
        return sorted(set(zip(self.labels, self.wordings)))

    def accuracy(self, predicted: Sequence[str]) -> float:
        """Fraction of items whose persona ``predicted`` names."""
        return float(np.mean([a == b for a, b in zip(predicted, self.labels)]))

    def cell_accuracy(self, predicted: Sequence[str]) -> np.ndarray:
        """Accuracy of ``predicted`` within each of :attr:`cells`, in that order (fraction of the cell's items)."""
        hits = np.array([a == b for a, b in zip(predicted, self.labels)], dtype=np.float64)
        keys = list(zip(self.labels, self.wordings))
        return np.array([hits[[k == cell for k in keys]].mean() for cell in self.cells])


def center_by(features: np.ndarray, groups: Sequence[str]) -> np.ndarray:
    """``features`` minus the mean row of its group (label-free: e.g. one user prompt's mean over every persona
    and wording, which removes what the user text alone puts into the features)."""
    x = np.asarray(features, dtype=np.float64)
    keys = np.asarray(groups)
    out = x.copy()
    for key in set(groups):
        rows = keys == key
        out[rows] -= x[rows].mean(axis=0)
    return out


def persona_signature(
    features: np.ndarray, random_features: Sequence[np.ndarray], length_features: np.ndarray, labels: Sequence[str],
    wordings: Sequence[str], users: Sequence[str],
) -> PersonaSignature:
    """The held-out predictions of :class:`PersonaSignature` on the same items (rows in the same order).

    Every feature set is first centred per user prompt (:func:`center_by`): in a balanced design each user
    prompt occurs under every persona and wording, so its mean carries no persona, while its offset from the
    other user prompts would otherwise move all items of a held-out user towards one centroid."""
    factors = list(zip(wordings, users))

    def predict(x: np.ndarray) -> tuple[str, ...]:
        return tuple(nearest_centroid_held_out(center_by(x, users), labels, factors))

    return PersonaSignature(
        tuple(labels), tuple(wordings), predict(features), tuple(predict(f) for f in random_features),
        predict(length_features),
    )


@dataclass(frozen=True)
class PersonaDecision:
    """The numbers the persona_signature rule judges (accuracies are fractions of items, in [0, 1]).

    Per (persona, wording) cell c: a_c = the model's accuracy, r_c = the mean accuracy of the random-weight
    copies, d_c = a_c − r_c. ``estimate`` = mean of d_c over cells (= the item-level accuracy difference when
    cells have equal sizes); ``ci`` its Student t interval over cells; ``p_value`` the intersection–union p of
    the two one-sided claims the rule needs, each an exact sign-flip permutation test over cells (Monte Carlo
    beyond 2^13 cells): a_c above chance 1/k, and a_c above r_c. The larger p keeps the level without
    correction.
    """

    estimate: float
    ci: tuple[float, float]
    p_value: float
    details: dict[str, Any]


def persona_decision(signature: PersonaSignature, ci_level: float, *, rng: int = 0) -> PersonaDecision:
    """The rule's inputs and the report's details from ``signature``: chance, the model's item accuracy with a
    Wilson CI (for reading only: the items of a cell share one system prompt and are not independent), each
    copy's accuracy, the length-only baseline, per-cell accuracies and both p-values. ``rng`` seeds the
    permutation test when it is not exact."""
    if len(signature.cells) < 2 or not signature.random_predicted:
        raise ValueError("persona_decision needs two or more (persona, wording) cells and one or more random copies")
    real = signature.cell_accuracy(signature.predicted)
    rand = np.stack([signature.cell_accuracy(p) for p in signature.random_predicted]).mean(axis=0)
    chance = np.full_like(real, signature.chance)
    above_chance = permutation_test_paired(real, chance, alternative="greater", rng=rng).p_value
    above_random = permutation_test_paired(real, rand, alternative="greater", rng=rng).p_value
    n, hits = signature.n, round(signature.accuracy(signature.predicted) * signature.n)
    details = {
        "chance": signature.chance,
        "cells": len(signature.cells),
        "accuracy": signature.accuracy(signature.predicted),
        "accuracy_wilson_ci_items": list(proportion_ci(hits, n, ci_level)),
        "random_weights_copies": len(signature.random_predicted),
        "random_weights_accuracy": [signature.accuracy(p) for p in signature.random_predicted],
        "length_only_accuracy": signature.accuracy(signature.length_predicted),
        "p_above_chance": above_chance, "p_above_random_weights": above_random,
        "cell_accuracy": {f"{c[0]}/{c[1]}": float(a) for c, a in zip(signature.cells, real)},
        "random_weights_cell_accuracy": {f"{c[0]}/{c[1]}": float(a) for c, a in zip(signature.cells, rand)},
        "confusion": {f"{a}->{b}": sum(x == a and y == b for x, y in zip(signature.labels, signature.predicted))
                      for a in sorted(set(signature.labels)) for b in sorted(set(signature.labels))},
    }
    return PersonaDecision(float((real - rand).mean()), t_interval(real - rand, ci_level),
                           max(above_chance, above_random), details)
