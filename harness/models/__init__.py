"""Models: the registry (names -> specs), offline loading, and the loaded-model type.

Modules: :mod:`~harness.models.registry` (``ModelSpec`` rows, name groups, ``resolve_spec``),
:mod:`~harness.models.loading` (``load_model``, GGUF conversion cache, toy models, load-time checks),
:mod:`~harness.models.safety` (what is checked in a model directory before transformers reads it),
:mod:`~harness.models.loaded` (``LoadedModel``, ``ModelShape``, ``LayerChoice``),
:mod:`~harness.models.model_args` (``--model-args``, the dtype rule) and
:mod:`~harness.models.errors`. The public names are re-exported here.
"""

from harness.models.errors import (
    GPUUnavailableError,
    ModelConfigMismatchError,
    ModelDirectoryError,
    ModelUnavailableError,
    TokenizerConversionUnsupportedError,
    UnknownModelError,
    UnsafeModelError,
)
from harness.models.loaded import LayerChoice, LoadedModel, ModelShape, context_length, default_layer_choice, read_shape
from harness.models.loading import (
    TOY_TOKENIZER_DIR,
    check_loaded,
    load_model,
    package_gguf,
    parse_dtype,
    resolve_device,
    sha256_file,
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

__all__ = [
    "DEFAULT_MODEL", "EMBEDDED_MODELS", "MODEL_ALIASES", "MODEL_REGISTRY", "TOY_MODELS", "TOY_TOKENIZER_DIR",
    "ExpectedFacts", "GPUUnavailableError", "LayerChoice", "LoadedModel", "ModelConfigMismatchError",
    "ModelArgs", "ModelArgsError", "ModelDirectoryError", "ModelShape", "ModelSpec", "ModelUnavailableError", "TokenizerConversionUnsupportedError",
    "UnknownModelError", "UnsafeModelError",
    "check_loaded", "context_length", "default_layer_choice", "load_model", "package_gguf", "parse_dtype", "parse_model_args", "read_shape",
    "resolve_device", "resolve_dtype", "resolve_spec", "sha256_file",
]
