"""Layouts read off the module tree of a model whose ``model_type`` has no row in the architecture table.

A decoder-only ``*ForCausalLM`` built by transformers keeps its decoder layers in one ``nn.ModuleList`` of
``num_hidden_layers`` entries, its self-attention in one child of each layer, and q, k, v and o as ``nn.Linear``
children of that module (separate, or one fused q/k/v projection). This module finds those pieces by their
conventional names and reads heads, KV heads and head_dim from the config. What it finds is a *candidate*: where a
fused projection could hold V in more than one column order (``[q | k | v]`` blocks, or grouped per KV head) every
order is a candidate, and :mod:`harness.engine.layout_proof` keeps the one the engine invariants prove at load.

Refused here, before any probe, with one line naming what was found and why (:class:`LayoutInferenceError`):

- no ``nn.ModuleList`` of ``num_hidden_layers`` layers with an attention module, or a layer without one (hybrid
  recurrent / state-space stacks);
- no rotary position embedding (learned absolute positions such as GPT-2's, ALiBi): keys cannot be moved between
  positions, which the shuffled control and the cache anatomy checks need;
- facts a probe on short prompts cannot see: attention logit soft-capping, and a sliding window shorter than
  :data:`LONGEST_UNPROVEN_WINDOW` tokens (a window that long never evicts anything the suite's inputs hold, so
  the layers behave as full attention). Families with such facts need an explicit row.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from torch import nn

from harness.models.architectures import ArchitectureLayout, UnknownArchitectureError, ValueLayout
from harness.models.loaded import ModelShape, read_shape

__all__ = ["InferredLayouts", "LayoutInferenceError", "LayoutProver", "LONGEST_UNPROVEN_WINDOW", "infer_layouts",
           "register_layout_prover", "registered_layout_prover"]

ATTENTION_NAMES = ("self_attn", "attn", "attention", "self_attention")
"""Child names of a decoder layer that hold self-attention, in order of preference."""
SEPARATE_NAMES = (("q_proj", "k_proj", "v_proj"), ("query", "key", "value"), ("wq", "wk", "wv"), ("q", "k", "v"))
"""Name triples of separate q, k and v projections."""
FUSED_NAMES = ("qkv_proj", "query_key_value", "Wqkv", "W_pack", "wqkv", "qkv", "c_attn")
"""Names of one fused q/k/v projection."""
OUTPUT_NAMES = ("o_proj", "out_proj", "dense", "c_proj", "wo", "o", "out")
"""Names of the attention output projection."""
LONGEST_UNPROVEN_WINDOW = 4096
"""Tokens. A declared sliding window at least this long is accepted on an inferred layout: the suite's inputs
(prompt plus continuation) are far shorter, so nothing is ever evicted and the probe's checks cover those layers.
A shorter window changes which positions the cache holds, which a short probe cannot prove."""


class LayoutInferenceError(UnknownArchitectureError):
    """The module tree of a model without a row does not yield a layout the engine can use (one line)."""


@dataclass(frozen=True)
class InferredLayouts:
    """What was read off a module tree: the candidate layouts, in the order the proof tries them, and the words
    that say what was found (``model.layers`` (4) → ``self_attn`` → ``q_proj/k_proj/v_proj`` + ``o_proj`` ...)."""

    candidates: tuple[ArchitectureLayout, ...]
    found: str


LayoutProver = Callable[[nn.Module, Any, ModelShape, InferredLayouts], tuple[ArchitectureLayout, dict[str, Any]]]
"""Proves one of the candidates on the loaded model (model, tokenizer, shape, candidates) and returns it with its
provenance record, or raises an :class:`UnknownArchitectureError` subclass naming the invariant that failed."""

_PROVER: list[LayoutProver] = []


def register_layout_prover(prover: LayoutProver) -> None:
    """Make ``prover`` the one :func:`harness.models.loading.load_model` uses (``harness.engine.layout_proof``
    registers itself when imported: the engine imports this room, so this room cannot import it)."""
    _PROVER[:] = [prover]


def registered_layout_prover(model_type: str) -> LayoutProver:
    """The registered prover.

    Raises:
        LayoutInferenceError: none is registered (one line saying which import registers it).
    """
    if not _PROVER:
        raise LayoutInferenceError(
            f"model_type {model_type!r} has no row, and its inferred layout must be proven by the engine before use: "
            "import harness.engine.layout_proof (the pytest plugin does) before load_model")
    return _PROVER[0]


def _layer_lists(model: nn.Module, n_layers: int) -> list[tuple[str, nn.ModuleList]]:
    """Every ``nn.ModuleList`` of exactly ``n_layers`` entries, shortest path first."""
    lists = [(name, m) for name, m in model.named_modules() if isinstance(m, nn.ModuleList) and len(m) == n_layers]
    return sorted(lists, key=lambda item: (item[0].count("."), item[0]))


def _attention_name(layer: nn.Module) -> str | None:
    """The (dotted) name of a decoder layer's self-attention module: a child with a conventional name first, else
    the shallowest module (child or grandchild, DBRX's ``norm_attn_norm.attn``) whose own name is conventional or
    contains 'attn'/'attention' and that has q/k/v and output projections (so ``post_attention_layernorm`` is not it)."""
    children = dict(layer.named_children())
    for name in ATTENTION_NAMES:
        if name in children and _projections(children[name]) is not None:
            return name
    candidates = [
        (name.count("."), name) for name, module in layer.named_modules()
        if name and name.count(".") <= 1 and _projections(module) is not None
        and (name.rsplit(".", 1)[-1] in ATTENTION_NAMES or "attn" in name.lower() or "attention" in name.lower())
    ]
    if candidates:
        return min(candidates)[1]
    return next((name for name in ATTENTION_NAMES if name in children), None)


def _projections(attn: nn.Module) -> tuple[tuple[str, str, str, str], str] | None:
    """(q, k, v, o) names and ``separate``/``fused``, or None when no naming scheme matches."""
    children = dict(attn.named_children())
    output = next((name for name in OUTPUT_NAMES if name in children), None)
    if output is None:
        return None
    for q, k, v in SEPARATE_NAMES:
        if q in children and k in children and v in children:
            return (q, k, v, output), "separate"
    fused = next((name for name in FUSED_NAMES if name in children), None)
    if fused is not None:
        return (fused, fused, fused, output), "fused"
    return None


def _has_submodule(module: nn.Module, name: str) -> bool:
    try:
        module.get_submodule(name)
    except AttributeError:
        return False
    return True


def _config(model: nn.Module) -> Any:
    config = model.config
    getter = getattr(config, "get_text_config", None)
    return getter(decoder=True) if getter is not None else config


def _rotary(model: nn.Module) -> nn.Module | None:
    return next((m for name, m in model.named_modules() if name.endswith("rotary_emb")), None)


def _has_inverse_frequencies(rotary: nn.Module) -> bool:
    """Whether the rotary module keeps the ``inv_freq`` buffer (one, or one per layer type) the engine rotates with."""
    return hasattr(rotary, "inv_freq") or any(name.endswith("_inv_freq") for name, _ in rotary.named_buffers())


def infer_layouts(model: nn.Module) -> InferredLayouts:
    """The candidate layouts of a loaded ``*ForCausalLM`` whose ``model_type`` has no row (module docstring).

    Raises:
        LayoutInferenceError: one line naming the model_type, what the tree holds and why it cannot be used.
    """
    config = _config(model)
    model_type = getattr(model.config, "model_type", None)
    where = f"model_type {model_type!r} ({type(model).__name__}) has no row and its layout cannot be inferred"
    n_layers = getattr(config, "num_hidden_layers", None)
    if not isinstance(n_layers, int) or n_layers < 1:
        raise LayoutInferenceError(f"{where}: its config names no num_hidden_layers")
    lists = [(name, layers) for name, layers in _layer_lists(model, n_layers) if _attention_name(layers[0])]
    if not lists:
        raise LayoutInferenceError(
            f"{where}: no nn.ModuleList of its {n_layers} decoder layers holds an attention module "
            f"(children named {', '.join(ATTENTION_NAMES)} or containing 'attn')")
    layers_path, layers = lists[0]
    attn_name = _attention_name(layers[0])
    assert attn_name is not None
    without = [i for i, layer in enumerate(layers) if not _has_submodule(layer, attn_name)]
    if without:
        raise LayoutInferenceError(
            f"{where}: layers {without[:5]} of {layers_path} have no `{attn_name}` (a hybrid stack; the cache "
            "engine needs attention in every layer)")
    attn = layers[0].get_submodule(attn_name)
    found_projections = _projections(attn)
    attn_path = f"{layers_path}.0.{attn_name}"
    if found_projections is None:
        raise LayoutInferenceError(
            f"{where}: `{attn_path}` ({type(attn).__name__}) has children {sorted(dict(attn.named_children()))}, "
            "none of which is a known q/k/v (separate or fused) and output projection")
    names, kind = found_projections
    shape = read_shape(config)
    found = (f"layers `{layers_path}` ({n_layers}), attention `{attn_name}`, "
             + (f"q/k/v `{names[0]}`/`{names[1]}`/`{names[2]}`" if kind == "separate" else f"fused q/k/v `{names[0]}`")
             + f", output `{names[3]}`; {shape.n_heads} heads, {shape.n_kv_heads} KV heads, head_dim {shape.head_dim}")
    rotary = _rotary(model)
    if rotary is None:
        raise LayoutInferenceError(
            f"{where}: found {found}, but no rotary position embedding (`rotary_emb`): learned absolute positions "
            "or ALiBi leave keys that cannot be moved between positions, which the shuffled control and the cache "
            "anatomy checks need")
    if not _has_inverse_frequencies(rotary):
        raise LayoutInferenceError(
            f"{where}: found {found}, but its rotary embedding ({type(rotary).__name__}) keeps no `inv_freq` buffer, "
            "the frequencies the engine moves keys between positions with")
    for name in dict.fromkeys(names):
        module = getattr(attn, name)
        if not isinstance(module, nn.Linear):
            raise LayoutInferenceError(
                f"{where}: found {found}, but `{attn_path}.{name}` is {type(module).__name__}, not nn.Linear (the engine reads and "
                "writes V as columns of a linear layer's output)")
    if getattr(config, "attn_logit_softcapping", None) is not None:
        raise LayoutInferenceError(
            f"{where}: found {found}, but it soft-caps attention logits, a fact a probe cannot prove; it needs an "
            "explicit row in harness.models.architectures.ARCHITECTURES")
    if shape.sliding_layers and (shape.sliding_window or 0) < LONGEST_UNPROVEN_WINDOW:
        raise LayoutInferenceError(
            f"{where}: found {found}, but layers {list(shape.sliding_layers)[:5]} slide over a window of "
            f"{shape.sliding_window} tokens (< {LONGEST_UNPROVEN_WINDOW}), a fact a probe on short prompts cannot "
            "prove; it needs an explicit row in harness.models.architectures.ARCHITECTURES")
    value_layouts: tuple[ValueLayout, ...] = ("separate",) if kind == "separate" else ("qkv_blocks", "qkv_grouped")
    candidates = tuple(
        ArchitectureLayout(
            str(model_type), (str(model_type),), layers_path=layers_path, attn_name=attn_name, proj_names=names,
            value_layout=value_layout, sliding_window_possible=bool(shape.sliding_layers), inferred=True,
        )
        for value_layout in value_layouts
    )
    return InferredLayouts(candidates, found)
