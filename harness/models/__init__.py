"""Models: the registry (names -> specs), offline loading, and the loaded-model type.

Modules: :mod:`~harness.models.registry` (``ModelSpec`` rows, name groups, ``resolve_spec``),
:mod:`~harness.models.loading` (``load_model``, toy models, load-time checks), :mod:`~harness.models.gguf`
(GGUF packages and their converted-copy cache),
:mod:`~harness.models.safety` (what is checked in a model directory before transformers reads it),
:mod:`~harness.models.revisions` (revision series: checkpoints of one training run and their steps),
:mod:`~harness.models.loaded` (``LoadedModel``, ``ModelShape``, ``LayerChoice``),
:mod:`~harness.models.model_args` (``--model-args``, the dtype rule) and
:mod:`~harness.models.errors`. The public names are re-exported here
(those of ``loaded`` and ``loading``, which import torch, on first use).
"""

import importlib
from typing import TYPE_CHECKING, Any

from harness.models.errors import (
    GPUUnavailableError,
    ModelConfigMismatchError,
    ModelDirectoryError,
    ModelReferenceError,
    ModelUnavailableError,
    TokenizerConversionUnsupportedError,
    UnknownModelError,
    UnsafeModelError,
)
from harness.models.model_args import ModelArgs, ModelArgsError, parse_model_args, resolve_dtype
from harness.models.registry import (
    DEFAULT_MODEL,
    EMBEDDED_MODELS,
    MODEL_ALIASES,
    MODEL_REGISTRY,
    TOY_MODELS,
    ExpectedFacts,
    ModelSpec,
    resolve_spec,
)
from harness.models.revisions import (
    Checkpoint,
    RevisionSeries,
    SeriesMember,
    check_series,
    checkpoint_of,
    checkpoint_provenance,
    find_series,
)

_TORCH_MODULES: dict[str, tuple[str, ...]] = {
    "harness.models.loaded": (
        "LayerChoice", "LoadedModel", "ModelShape", "context_length", "default_layer_choice", "read_shape",
    ),
    "harness.models.loading": (
        "TOY_TOKENIZER_DIR", "check_loaded", "load_model", "parse_dtype", "resolve_device",
    ),
    "harness.models.gguf": ("package_gguf", "sha256_file"),
}
"""Names re-exported from the modules that import torch, imported on first use (PEP 562), so the report path
(which reads model names through :mod:`~harness.models.revisions`) imports no torch."""
_LAZY_NAMES = {name: module for module, names in _TORCH_MODULES.items() for name in names}


def __getattr__(name: str) -> Any:
    module = _LAZY_NAMES.get(name)
    if module is None:
        raise AttributeError(f"module 'harness.models' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__all__ = [
    "DEFAULT_MODEL", "EMBEDDED_MODELS", "MODEL_ALIASES", "MODEL_REGISTRY", "TOY_MODELS", "TOY_TOKENIZER_DIR",
    "Checkpoint", "ExpectedFacts", "GPUUnavailableError", "LayerChoice", "LoadedModel", "ModelConfigMismatchError",
    "ModelArgs", "ModelArgsError", "ModelDirectoryError", "ModelReferenceError", "ModelShape", "ModelSpec", "ModelUnavailableError",
    "RevisionSeries", "SeriesMember", "TokenizerConversionUnsupportedError", "UnknownModelError", "UnsafeModelError",
    "check_loaded", "check_series", "checkpoint_of", "checkpoint_provenance", "context_length",
    "default_layer_choice", "find_series", "load_model", "package_gguf", "parse_dtype", "parse_model_args",
    "read_shape", "resolve_device", "resolve_dtype", "resolve_spec", "sha256_file",
]

if TYPE_CHECKING:
    from harness.models.gguf import package_gguf, sha256_file
    from harness.models.loaded import (
        LayerChoice,
        LoadedModel,
        ModelShape,
        context_length,
        default_layer_choice,
        read_shape,
    )
    from harness.models.loading import TOY_TOKENIZER_DIR, check_loaded, load_model, parse_dtype, resolve_device
