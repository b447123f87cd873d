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
    """The loaded config contradicts the registry's expected architecture facts."""


class ModelDirectoryError(ModelUnavailableError):
    """A model directory is missing or broken: no directory, no or unparseable ``config.json``, no weights, no
    tokenizer. The message names the directory (or file) and what to do."""


class UnsafeModelError(ModelUnavailableError):
    """A model directory would need code to run: custom architecture code (``auto_map``) or pickle-only weights
    (``*.bin``). The suite refuses both; the message names the file and the fix."""


class ModelReferenceError(UnknownModelError):
    """An ``hf:`` reference or a revision series on ``--model`` is malformed (an empty revision, a series mixing
    named steps and none, two checkpoints with one step); the message says which and how to write it."""


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (its type name when the message is empty), for one-line errors."""
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__
