"""Per-architecture module layout, as data (the model architectures the engine knows: llama, gemma3, ...).

Adding an architecture means adding a row to ``ARCHITECTURES``; no other code branches on the architecture. Each row says
where the decoder layers live, what the attention sub-modules are called, how the value projection is
laid out (a separate ``v_proj``, the last block of a fused ``[q | k | v]`` projection, or per head inside a
fused ``[head, (q, k, v), head_dim]`` projection), and which attention facts the loader must assert (sliding
windows, logit soft-capping that forces eager attention).

V columns are a tuple of column indices of the value-projection module's output, in cache order (KV head
major, then ``head_dim``): ``select_columns(output, columns)`` reshaped to ``[..., n_kv_heads, head_dim]`` is
exactly what the KV cache stores as values for those tokens (for rows with ``value_is_projection_output``).

A model_type without a row is not refused for that alone: its layout is inferred from its module tree
(:mod:`harness.models.layout_inference`) and proven by the engine invariants at load (:mod:`harness.engine.layout_proof`).
Rows stay for the families whose facts a probe cannot see (sliding windows, soft-capping), and win over inference.

A new row needs: the ``model_type`` values, ``layers_path``, ``attn_name``, ``proj_names``, the
``value_layout`` of the value projection, and the sliding-window / eager-attention facts; then the architecture
acceptance test (``tests/engine/test_model_architectures.py``) must pass on a tiny random model of it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import nn

ModuleRole = Literal["layer", "attn", "q_proj", "k_proj", "v_proj", "o_proj"]
ValueLayout = Literal["separate", "qkv_blocks", "qkv_per_head", "qkv_grouped"]
"""How V sits in the value-projection module's output (see :func:`value_columns`)."""


@dataclass(frozen=True)
class ArchitectureLayout:
    """Where the pieces of one model architecture live inside a ``*ForCausalLM`` module tree.

    Attributes:
        architecture: short architecture name used by the model registry (``llama``, ``gemma3`` ...).
        model_types: values of ``config.model_type`` that belong to this architecture.
        layers_path: dotted path of the ``nn.ModuleList`` of decoder layers.
        attn_name: attribute of a decoder layer holding self-attention.
        proj_names: attribute names (relative to the attention module) of q, k, v and o projections.
            For fused projections q, k and v name the same module.
        value_layout: ``separate`` (a ``v_proj`` whose whole output is V); ``qkv_blocks`` (one linear layer
            whose output is ``[q | k | v]`` blocks, Phi-3: V is the last ``n_kv·head_dim`` columns);
            ``qkv_per_head`` (one linear layer whose output is ``[head, (q, k, v), head_dim]``, GPT-NeoX: V of
            head h is columns ``h·3·head_dim + 2·head_dim … + head_dim``; needs n_kv_heads == n_heads);
            ``qkv_grouped`` (one linear layer whose output is, per KV head, that head's r = n_heads / n_kv_heads
            queries, then its key, then its value, each ``head_dim`` wide: Falcon's grouped layout; with r = 1 it
            is ``qkv_per_head``).
        sliding_window_possible: the architecture may declare sliding-window layers (checked at load time).
        needs_eager_attention: SDPA silently drops something this architecture needs (Gemma 2 soft-capping).
        value_is_projection_output: True when the cached values equal the value projection output
            reshaped (no value norm between them). An architecture with a ``v_norm`` must set False.
        inferred: the layout was read off the module tree of a model whose ``model_type`` has no row
            (:mod:`harness.models.layout_inference`) and proven on a probe at load
            (:mod:`harness.engine.layout_proof`); ``architecture`` is then the model_type.
    """

    architecture: str
    model_types: tuple[str, ...]
    layers_path: str = "model.layers"
    attn_name: str = "self_attn"
    proj_names: tuple[str, str, str, str] = ("q_proj", "k_proj", "v_proj", "o_proj")
    value_layout: ValueLayout = "separate"
    sliding_window_possible: bool = False
    needs_eager_attention: bool = False
    value_is_projection_output: bool = True
    inferred: bool = False


ARCHITECTURES: dict[str, ArchitectureLayout] = {
    row.architecture: row
    for row in (
        ArchitectureLayout("llama", ("llama",)),
        ArchitectureLayout("mistral", ("mistral",), sliding_window_possible=True),
        ArchitectureLayout("mixtral", ("mixtral",), sliding_window_possible=True),
        ArchitectureLayout("qwen2", ("qwen2",), sliding_window_possible=True),
        ArchitectureLayout("qwen3", ("qwen3",), sliding_window_possible=True),
        ArchitectureLayout(
            "gemma2", ("gemma2",), sliding_window_possible=True, needs_eager_attention=True
        ),
        ArchitectureLayout("gemma3", ("gemma3_text", "gemma3"), sliding_window_possible=True),
        ArchitectureLayout(
            "phi3",
            ("phi3",),
            proj_names=("qkv_proj", "qkv_proj", "qkv_proj", "o_proj"),
            value_layout="qkv_blocks",
            sliding_window_possible=True,
        ),
        # Pythia: partial rotary (rotary_pct of head_dim, rotated half-split, the rest passes through)
        ArchitectureLayout(
            "gpt_neox",
            ("gpt_neox",),
            layers_path="gpt_neox.layers",
            attn_name="attention",
            proj_names=("query_key_value", "query_key_value", "query_key_value", "dense"),
            value_layout="qkv_per_head",
        ),
        # OLMo 2: q_norm/k_norm act on queries and keys only; V is the plain v_proj output
        ArchitectureLayout("olmo2", ("olmo2",)),
    )
}


class UnknownArchitectureError(ValueError):
    """Raised when a config's ``model_type`` is not in the architecture table, or a row's modules are not in the model."""


def _how_to_add_a_row() -> str:
    return (
        "add a ArchitectureLayout row to harness.models.architectures.ARCHITECTURES (model_types, layers_path, attn_name, proj_names, "
        "value_layout, sliding/eager facts) and run tests/engine/test_model_architectures.py on a tiny model of it"
    )


def layout_for_config(config: Any) -> ArchitectureLayout:
    """Return the architecture row whose ``model_types`` contains ``config.model_type``.

    Raises:
        UnknownArchitectureError: one line naming the model_type, the known ones and how to add a row.
    """
    model_type = getattr(config, "model_type", None)
    for layout in ARCHITECTURES.values():
        if model_type in layout.model_types:
            return layout
    known = sorted(t for layout in ARCHITECTURES.values() for t in layout.model_types)
    raise UnknownArchitectureError(
        f"model_type {model_type!r} has no row in harness.models.architectures.ARCHITECTURES (known: {', '.join(known)}); "
        + _how_to_add_a_row()
    )


def row_for_config(config: Any) -> ArchitectureLayout | None:
    """The architecture row of ``config.model_type``, or None when it has none (its layout is then inferred from
    the module tree and proven at load: :mod:`harness.models.layout_inference`, :mod:`harness.engine.layout_proof`)."""
    try:
        return layout_for_config(config)
    except UnknownArchitectureError:
        return None


def missing_module(layout: ArchitectureLayout, model: nn.Module) -> str | None:
    """The first module path of ``layout`` (layer 0: layer, attention, q/k/v/o projections) absent from ``model``,
    or None when all are there."""
    names = {name for name, _ in model.named_modules()}
    roles: tuple[ModuleRole, ...] = ("layer", "attn", "q_proj", "k_proj", "v_proj", "o_proj")
    return next((p for p in (module_path(layout, 0, r) for r in roles) if p not in names), None)


def layout_for_model(model: nn.Module) -> ArchitectureLayout:
    """The architecture row of a loaded ``*ForCausalLM`` module, checked against its module tree.

    Raises:
        UnknownArchitectureError: one line naming the model_type and, for an unknown model_type, which module of the
            default (Llama-style) layout its tree lacks; for a known row, which of the row's modules is missing.
    """
    config = model.config
    model_type = getattr(config, "model_type", None)
    try:
        layout = layout_for_config(config)
    except UnknownArchitectureError as exc:
        absent = missing_module(ArchitectureLayout("default", ()), model)
        found = f"its module tree has no `{absent}`" if absent else "its module tree looks Llama-style, but that is not checked"
        raise UnknownArchitectureError(f"{exc.args[0].split(';')[0]}; {found}; {_how_to_add_a_row()}") from None
    absent = missing_module(layout, model)
    if absent is not None:
        raise UnknownArchitectureError(
            f"model_type {model_type!r} ({type(model).__name__}): the {layout.architecture} row names `{absent}`, which "
            f"this model does not have; fix the row in harness.models.architectures.ARCHITECTURES"
        )
    return layout


def module_path(layout: ArchitectureLayout, layer: int, role: ModuleRole) -> str:
    """Dotted module path of ``role`` in decoder layer ``layer`` (0-based), e.g. ``model.layers.3.self_attn.v_proj``."""
    if layer < 0:
        raise ValueError(f"layer index must be >= 0, got {layer}")
    base = f"{layout.layers_path}.{layer}"
    if role == "layer":
        return base
    attn = f"{base}.{layout.attn_name}"
    if role == "attn":
        return attn
    index = {"q_proj": 0, "k_proj": 1, "v_proj": 2, "o_proj": 3}.get(role)
    if index is None:
        raise ValueError(f"unknown role {role!r}; expected one of layer, attn, q_proj, k_proj, v_proj, o_proj")
    return f"{attn}.{layout.proj_names[index]}"


def value_columns(layout: ArchitectureLayout, n_heads: int, n_kv_heads: int, head_dim: int) -> tuple[int, ...]:
    """Column indices of the value-projection module's output that hold V, in cache order (KV head, then head_dim).

    ``n_kv_heads · head_dim`` indices. ``separate``: ``0 … n_kv·head_dim − 1``; ``qkv_blocks`` (``[q | k | v]``):
    the last block, after ``n_heads·head_dim`` query and ``n_kv·head_dim`` key columns; ``qkv_per_head``
    (``[head, (q, k, v), head_dim]``): for head h the third ``head_dim`` of its ``3·head_dim`` columns.

    Raises:
        ValueError: ``qkv_per_head`` with grouped KV heads (n_kv_heads != n_heads), a layout this table does not know.
    """
    kv_width = n_kv_heads * head_dim
    if layout.value_layout == "separate":
        return tuple(range(kv_width))
    if layout.value_layout == "qkv_blocks":
        start = n_heads * head_dim + kv_width
        return tuple(range(start, start + kv_width))
    if layout.value_layout == "qkv_per_head":
        if n_kv_heads != n_heads:
            raise ValueError(
                f"{layout.architecture}: a per-head fused qkv layout needs n_kv_heads == n_heads, got {n_kv_heads} and {n_heads}"
            )
        return tuple(h * 3 * head_dim + 2 * head_dim + j for h in range(n_heads) for j in range(head_dim))
    if layout.value_layout == "qkv_grouped":
        if n_heads % n_kv_heads:
            raise ValueError(f"{layout.architecture}: n_heads {n_heads} is not a multiple of n_kv_heads {n_kv_heads}")
        group = (n_heads // n_kv_heads + 2) * head_dim  # r queries, one key, one value
        value_start = group - head_dim
        return tuple(g * group + value_start + j for g in range(n_kv_heads) for j in range(head_dim))
    raise ValueError(f"{layout.architecture}: unknown value_layout {layout.value_layout!r}")


def select_columns(output: torch.Tensor, columns: tuple[int, ...] | None) -> torch.Tensor:
    """``output[..., columns]`` (a copy, in the order of ``columns``); ``None`` selects every column (``output`` itself)."""
    if columns is None:
        return output
    return output.index_select(-1, torch.as_tensor(columns, dtype=torch.long, device=output.device))
