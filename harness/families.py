"""Per-family module layout, as data.

Adding a family means adding a row to ``FAMILIES``; no other code branches on the family. Each row says
where the decoder layers live, what the attention sub-modules are called, how the value projection is
laid out (a separate ``v_proj`` or a slice of a fused ``qkv_proj``), and which attention facts the loader
must assert (sliding windows, logit soft-capping that forces eager attention).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

ModuleRole = Literal["layer", "attn", "q_proj", "k_proj", "v_proj", "o_proj"]


@dataclass(frozen=True)
class FamilyLayout:
    """Where the pieces of one architecture family live inside a ``*ForCausalLM`` module tree.

    Attributes:
        family: short family name used by the model registry (``llama``, ``gemma3`` ...).
        model_types: values of ``config.model_type`` that belong to this family.
        layers_path: dotted path of the ``nn.ModuleList`` of decoder layers.
        attn_name: attribute of a decoder layer holding self-attention.
        proj_names: attribute names (relative to the attention module) of q, k, v and o projections.
            For fused projections q, k and v name the same module.
        fused_qkv: True when q, k and v come out of one linear layer concatenated as [q | k | v]
            along the last dimension (Phi-3). Value capture then slices the fused output.
        sliding_window_possible: the family may declare sliding-window layers (checked at load time).
        needs_eager_attention: SDPA silently drops something this family needs (Gemma 2 soft-capping).
        value_is_projection_output: True when the cached values equal the value projection output
            reshaped (no value norm between them). A family with a ``v_norm`` must set False.
    """

    family: str
    model_types: tuple[str, ...]
    layers_path: str = "model.layers"
    attn_name: str = "self_attn"
    proj_names: tuple[str, str, str, str] = ("q_proj", "k_proj", "v_proj", "o_proj")
    fused_qkv: bool = False
    sliding_window_possible: bool = False
    needs_eager_attention: bool = False
    value_is_projection_output: bool = True


FAMILIES: dict[str, FamilyLayout] = {
    row.family: row
    for row in (
        FamilyLayout("llama", ("llama",)),
        FamilyLayout("mistral", ("mistral",), sliding_window_possible=True),
        FamilyLayout("mixtral", ("mixtral",), sliding_window_possible=True),
        FamilyLayout("qwen2", ("qwen2",), sliding_window_possible=True),
        FamilyLayout("qwen3", ("qwen3",), sliding_window_possible=True),
        FamilyLayout(
            "gemma2", ("gemma2",), sliding_window_possible=True, needs_eager_attention=True
        ),
        FamilyLayout("gemma3", ("gemma3_text", "gemma3"), sliding_window_possible=True),
        FamilyLayout(
            "phi3",
            ("phi3",),
            proj_names=("qkv_proj", "qkv_proj", "qkv_proj", "o_proj"),
            fused_qkv=True,
            sliding_window_possible=True,
        ),
    )
}


class UnknownFamilyError(ValueError):
    """Raised when a config's ``model_type`` is not in the family table."""


def layout_for_config(config: Any) -> FamilyLayout:
    """Return the family row whose ``model_types`` contains ``config.model_type``."""
    model_type = getattr(config, "model_type", None)
    for layout in FAMILIES.values():
        if model_type in layout.model_types:
            return layout
    known = sorted(t for layout in FAMILIES.values() for t in layout.model_types)
    raise UnknownFamilyError(
        f"model_type {model_type!r} has no row in harness.families.FAMILIES (known: {', '.join(known)}); "
        "add a FamilyLayout row for it"
    )


def module_path(layout: FamilyLayout, layer: int, role: ModuleRole) -> str:
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


def value_slice(layout: FamilyLayout, n_heads: int, n_kv_heads: int, head_dim: int) -> slice:
    """Columns of the value-projection module's output that hold V (width ``n_kv_heads * head_dim``).

    For a separate ``v_proj`` this is all columns; for a fused ``[q | k | v]`` projection it is the last block.
    """
    kv_width = n_kv_heads * head_dim
    if not layout.fused_qkv:
        return slice(0, kv_width)
    start = n_heads * head_dim + kv_width
    return slice(start, start + kv_width)
