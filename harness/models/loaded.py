"""The loaded-model type: a module with its tokenizer, architecture layout, head shape and layer choices.

``ModelShape`` is the head layout read from the loaded config (layers, heads, KV heads, head_dim, sliding
windows); ``LayerChoice`` the pre-registered early/late/patch layers (DESIGN §3).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from harness.models.architectures import ArchitectureLayout, module_path, value_columns
from harness.models.registry import ModelSpec

EARLY_DEPTH_FRACTION = 0.125
"""Default early layer as a fraction of depth (DESIGN §3): layer floor(0.125·L + 0.5)."""
LATE_DEPTH_FRACTION = 0.84
"""Default late layer as a fraction of depth (layer 27 of Mistral-7B's 32, as in the seed work)."""


@dataclass(frozen=True)
class ModelShape:
    """Head layout read from the loaded config.

    ``layer_types[i]`` is ``full_attention`` or ``sliding_attention``; ``sliding_window`` is in tokens.
    Query head ``h`` reads KV head ``h // (n_heads // n_kv_heads)``.
    """

    n_layers: int
    n_heads: int
    n_kv_heads: int
    head_dim: int
    layer_types: tuple[str, ...]
    sliding_window: int | None

    @property
    def v_width(self) -> int:
        """Width of the value projection output: ``n_kv_heads * head_dim`` features."""
        return self.n_kv_heads * self.head_dim

    @property
    def sliding_layers(self) -> tuple[int, ...]:
        """Indices of sliding-window layers."""
        return tuple(i for i, t in enumerate(self.layer_types) if t == "sliding_attention")


def context_length(config: Any) -> int | None:
    """The longest input the model was built for: ``max_position_embeddings`` (or ``n_positions``/``n_ctx``) of
    its (text) config; None when the config names none."""
    text_config = getattr(config, "text_config", None) or config
    for key in ("max_position_embeddings", "n_positions", "n_ctx"):
        value = getattr(text_config, key, None)
        if isinstance(value, int) and value > 0:
            return value
    return None


def read_shape(config: Any) -> ModelShape:
    """Head layout from a (text) config; KV heads from ``num_key_value_heads`` (or Falcon's ``num_kv_heads`` on
    transformers 4.x), else one per query head; ``head_dim`` falls back to hidden_size // num_attention_heads."""
    n_layers = config.num_hidden_layers
    n_heads = config.num_attention_heads
    n_kv = getattr(config, "num_key_value_heads", None) or getattr(config, "num_kv_heads", None) or n_heads
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // n_heads
    window = getattr(config, "sliding_window", None)
    layer_types = getattr(config, "layer_types", None)
    if layer_types is None:
        kind = "sliding_attention" if window else "full_attention"
        layer_types = [kind] * n_layers
    return ModelShape(n_layers, n_heads, n_kv, head_dim, tuple(layer_types), window)



@dataclass(frozen=True)
class LayerChoice:
    """Pre-registered layer choices (0-based): early and late for R_V, the KV patch set."""

    early: int
    late: int
    patch_layers: tuple[int, ...]


def default_layer_choice(n_layers: int) -> LayerChoice:
    """Depth-fraction defaults: early ≈ 12.5 %, late ≈ 84 %, patch set = second half of the stack."""
    early = math.floor(EARLY_DEPTH_FRACTION * n_layers + 0.5)
    late = min(n_layers - 1, math.floor(LATE_DEPTH_FRACTION * n_layers + 0.5))
    return LayerChoice(early, late, tuple(range(n_layers // 2, n_layers)))


@dataclass
class LoadedModel:
    """A model ready for measurement. Read-only by convention: claims must not modify it."""

    name: str
    spec: ModelSpec
    model: nn.Module
    tokenizer: Any
    layout: ArchitectureLayout
    shape: ModelShape
    layers: LayerChoice
    input_device: torch.device
    provenance: dict[str, Any]
    decode_path: str = "eager"
    """How generation runs (``--decode-path``, :mod:`harness.engine.decode_path`): ``eager`` (the reference) or
    ``fast`` (SDPA, static cache, compiled step where allowed). Set with :meth:`with_decode_path`."""

    def with_decode_path(self, path: str) -> LoadedModel:
        """The same model generating on ``path`` (``eager`` or ``fast``), recorded in its provenance and, when not
        eager, in its :attr:`identity` (the fast path's continuations are cached apart from the reference's)."""
        if path not in ("eager", "fast"):
            raise ValueError(f"unknown decode path {path!r}; expected eager or fast")
        return dataclasses.replace(self, decode_path=path, provenance={**self.provenance, "decode_path": path})

    def path(self, layer: int, role: str) -> str:
        """Dotted module path of ``role`` at ``layer`` (see ``harness.models.architectures.module_path``)."""
        return module_path(self.layout, layer, role)  # type: ignore[arg-type]

    @property
    def identity(self) -> dict[str, Any]:
        """What determines this model's numbers: name, source, weights hash or revision, dtype, device, the
        ``--model-args`` given (only when some were, so the keys of default loads stay what they were) and, for a
        ``path:`` model, the fingerprint of its folder's files (an overwritten checkpoint is another model)."""
        keys = ("model", "source", "location", "gguf_sha256", "revision", "dtype", "device", "attn_implementation")
        identity = {k: self.provenance.get(k) for k in keys}
        if self.provenance.get("model_args"):
            identity["model_args"] = self.provenance["model_args"]
        if self.provenance.get("weights_files"):  # path: models (harness.models.directory_identity)
            identity["weights_files"] = self.provenance["weights_files"]
        if self.spec.toy_config is not None:
            identity["toy_config"] = self.spec.toy_config
        if self.decode_path != "eager":
            identity["decode_path"] = self.decode_path
        return identity

    @property
    def v_columns(self) -> tuple[int, ...]:
        """Column indices of the value-projection output that hold V, in cache order (``n_kv_heads · head_dim``
        of them; see ``harness.models.architectures.value_columns``)."""
        g = self.shape
        return value_columns(self.layout, g.n_heads, g.n_kv_heads, g.head_dim)
