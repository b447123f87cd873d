"""Errors raised while resolving and loading a model."""

from __future__ import annotations


class UnknownModelError(ValueError):
    """The model name is neither a registry name nor an ``hf:``/``path:`` reference."""


class ModelUnavailableError(RuntimeError):
    """Weights are not present locally; the message says where we looked and how to provide them."""


class TokenizerConversionUnsupportedError(ModelUnavailableError):
    """This transformers release converts the model's GGUF tokenizer incorrectly; the message says which to use."""


class GPUUnavailableError(RuntimeError):
    """A GPU-tier model was requested on a machine without CUDA."""


class ModelConfigMismatchError(AssertionError):
    """The loaded config contradicts the registry's expected family facts."""
