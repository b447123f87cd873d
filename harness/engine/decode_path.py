"""How a condition's prefill and decode steps run: the eager reference path or the fast path (DESIGN §4.6, §8).

Two paths give the same continuations (tokens equal, first-step logits within :data:`FAST_PATH_LOGIT_TOLERANCE` in
fp32; ``tests/parity/test_fast_decode.py`` on a tiny model of every architecture row, patched and unpatched):

- ``eager``: the model's loaded attention implementation (``eager`` for every registry model), a growing
  ``DynamicCache``, one Python-level forward per step. The reference every invariant test runs.
- ``fast``: SDPA attention (or the implementation the model was loaded with, when that is not eager: e.g.
  ``--model-args attn_implementation=flash_attention_2``); a preallocated ``StaticCache`` filled from the (patched)
  prefill where the installed transformers' static layers keep their own write index and no sliding-window layer
  could evict a position the decode needs; and, on CUDA with a static cache and no hook on the model,
  the decode step compiled with ``torch.compile(mode="reduce-overhead")`` (CUDA graphs). The cache length is
  rounded up to a multiple of :data:`STATIC_LENGTH_BUCKET` so batches of different prompt lengths share one graph.

A condition that reads attention probabilities (attention-entropy capture) always runs eager, as does an
architecture whose SDPA path drops something it needs (``needs_eager_attention``, Gemma 2's soft-capping), so the
path is chosen per condition: :func:`plan_decode`. The run-wide choice is ``--decode-path``
(:func:`resolve_decode_path`: ``auto`` is fast on CUDA and eager elsewhere, where the fast path does not pay); it
becomes part of the model's identity (measurement-store keys) and provenance, and each stored condition records the
plan it ran with (:meth:`DecodePlan.as_record`).
"""

from __future__ import annotations

import contextlib
import warnings
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from enum import Enum
from typing import Any

import torch

from harness.foundation.out_of_memory import is_out_of_memory

__all__ = [
    "DECODE_PATH_CHOICES",
    "DecodePath",
    "DecodePlan",
    "FAST_PATH_LOGIT_TOLERANCE",
    "STATIC_LENGTH_BUCKET",
    "attention_implementation",
    "compiled_forward",
    "still_compiled",
    "plan_decode",
    "resolve_decode_path",
    "static_cache_supported",
]

FAST_PATH_LOGIT_TOLERANCE = 1e-4
"""Largest |Δ logit| allowed between the fast and the eager path at the first decode step in float32 (same scale as
the batched ≡ single tolerance: both differ from eager only in the order of floating-point reductions)."""

STATIC_LENGTH_BUCKET = 64
"""A static cache is allocated for ``prefill + new tokens`` rounded up to a multiple of this many positions, so a
compiled decode step is reused across batches whose prompt lengths differ (the unused slots are masked)."""


CPU_COMPILE_BACKEND: str | Callable[..., Any] | None = None
"""Off CUDA the decode step is not compiled (it does not pay); a test sets this to ``"eager"`` (dynamo traces the
step and runs it uncompiled) to check on CPU that the fast path's step is traceable and gives the same tokens."""


class DecodePath(str, Enum):
    """The run-wide decode path (``--decode-path``)."""

    EAGER = "eager"
    FAST = "fast"


DECODE_PATH_CHOICES: tuple[str, ...] = ("auto", DecodePath.EAGER.value, DecodePath.FAST.value)
"""``--decode-path`` values: ``auto`` resolves by device (:func:`resolve_decode_path`)."""


def resolve_decode_path(choice: str, device: str | torch.device) -> DecodePath:
    """The path ``--decode-path choice`` means on ``device``: ``auto`` is fast on CUDA and eager elsewhere (on CPU
    SDPA and a static cache change little, and a compiled step does not pay back its compile time).

    Raises:
        ValueError: ``choice`` is not one of :data:`DECODE_PATH_CHOICES` (one line naming them).
    """
    if choice not in DECODE_PATH_CHOICES:
        raise ValueError(f"unknown decode path {choice!r}; expected one of {', '.join(DECODE_PATH_CHOICES)}")
    if choice != "auto":
        return DecodePath(choice)
    return DecodePath.FAST if torch.device(device).type == "cuda" else DecodePath.EAGER


@dataclass(frozen=True)
class DecodePlan:
    """How one generation batch runs.

    ``attention``: the attention implementation of its prefill and decode (transformers' names);
    ``static_cache_length``: positions of the preallocated cache it decodes into (0: a growing ``DynamicCache``);
    ``compiled``: the decode step is a ``torch.compile``d forward (CUDA graphs).
    """

    path: DecodePath
    attention: str
    static_cache_length: int = 0
    compiled: bool = False

    @property
    def static_cache(self) -> bool:
        return self.static_cache_length > 0

    def as_record(self) -> dict[str, Any]:
        """The plan as stored beside a condition's continuations (provenance; the length is batch-dependent)."""
        return {"path": self.path.value, "attention": self.attention, "static_cache": self.static_cache,
                "compiled": self.compiled}


def static_cache_supported() -> bool:
    """Whether the installed transformers' static cache layers keep their own write index (``cumulative_length``,
    transformers 5.x), so a static cache can be filled from a prefill and decoded into with explicit position ids.
    On 4.57 a static layer infers its length from non-zero key slots, which a zero-ablation patch would corrupt, so
    the fast path keeps a dynamic cache there."""
    try:
        from transformers.cache_utils import StaticLayer
    except ImportError:
        return False
    return hasattr(StaticLayer(max_cache_len=1), "cumulative_length")


def _bucketed(length: int) -> int:
    return -(-length // STATIC_LENGTH_BUCKET) * STATIC_LENGTH_BUCKET


def plan_decode(
    model: torch.nn.Module,
    path: DecodePath,
    *,
    needs_attention_weights: bool,
    needs_eager_attention: bool,
    hooked: bool,
    total_length: int,
    sliding_windows: tuple[int | None, ...],
) -> DecodePlan:
    """The plan of one batch under ``path``.

    ``needs_attention_weights``: the condition captures attention probabilities (only eager returns them);
    ``needs_eager_attention``: the architecture's SDPA path is wrong for it; ``hooked``: forward hooks will be on the
    model during decoding (activation patches, V capture; a compiled step would re-trace each time they change);
    ``total_length``: padded prefill length + new tokens; ``sliding_windows``: each cache layer's window (None for
    full attention). A static cache is used only when every sliding layer's window exceeds the bucketed length, so
    no layer could evict a position (the dynamic cache's eviction is what the patches are checked against).
    """
    loaded = str(getattr(model.config, "_attn_implementation", None) or "eager")
    if path is DecodePath.EAGER or needs_attention_weights or needs_eager_attention:
        return DecodePlan(DecodePath.EAGER if path is DecodePath.EAGER else path, loaded)
    attention = loaded if loaded != "eager" else "sdpa"
    length = _bucketed(total_length)
    fits = all(window is None or length < window for window in sliding_windows)
    if not (static_cache_supported() and fits):
        return DecodePlan(path, attention)
    on_cuda = next(model.parameters()).device.type == "cuda"
    compiled = not hooked and (on_cuda or CPU_COMPILE_BACKEND is not None) and model not in _UNCOMPILABLE
    return DecodePlan(path, attention, static_cache_length=length, compiled=compiled)


def _configs(model: torch.nn.Module) -> list[Any]:
    """Every distinct config object the model's modules read their attention implementation from."""
    seen: dict[int, Any] = {}
    for module in model.modules():
        config = getattr(module, "config", None)
        if config is not None and hasattr(config, "_attn_implementation"):
            seen.setdefault(id(config), config)
    return list(seen.values())


@contextlib.contextmanager
def attention_implementation(model: torch.nn.Module, name: str) -> Iterator[None]:
    """Run ``model`` with attention implementation ``name`` inside the block and restore what it had after (also
    after an error). transformers reads ``config._attn_implementation`` at every forward (attention kernel and mask
    format), so switching it switches both."""
    configs = _configs(model)
    before = [config._attn_implementation for config in configs]
    if all(b == name for b in before):
        yield
        return
    try:
        for config in configs:
            config._attn_implementation = name
        yield
    finally:
        for config, value in zip(configs, before):
            config._attn_implementation = value


_COMPILED: weakref.WeakKeyDictionary[torch.nn.Module, Callable[..., Any]] = weakref.WeakKeyDictionary()
_UNCOMPILABLE: weakref.WeakSet[torch.nn.Module] = weakref.WeakSet()


def compiled_forward(model: torch.nn.Module) -> Callable[..., Any]:
    """``model``'s forward for the fast path's decode step: compiled once per model, on CUDA with inductor and
    ``mode="reduce-overhead"`` (CUDA graphs), elsewhere with :data:`CPU_COMPILE_BACKEND`. Shapes are dynamo's default
    (a dimension that changes between calls, the batch size or the bucketed cache length, becomes symbolic after one
    recompile; CUDA graphs are recorded per concrete shape). A compiler failure (raised while tracing or compiling,
    before anything runs) is not the run's failure: the call is repeated with the plain forward, and the model is
    not compiled again in this process (:func:`still_compiled`; one warning). Out of memory is raised as it is."""

    def forward(**inputs: Any) -> Any:
        if model in _UNCOMPILABLE:
            return model(**inputs)
        try:
            return _compiled(model)(**inputs)
        except Exception as exc:  # noqa: BLE001 - any compiler failure, whatever its class
            if is_out_of_memory(exc):
                raise
            _mark_uncompilable(model, exc)
            return model(**inputs)

    return forward


def still_compiled(model: torch.nn.Module) -> bool:
    """Whether ``model``'s decode step is still compiled (no compiler failure in this process)."""
    return model not in _UNCOMPILABLE


def _compiled(model: torch.nn.Module) -> Callable[..., Any]:
    on_cuda = next(model.parameters()).device.type == "cuda"
    backend = "inductor" if on_cuda else (CPU_COMPILE_BACKEND or "inductor")
    compiled = _COMPILED.get(model)
    if compiled is None:
        options: dict[str, Any] = {"mode": "reduce-overhead"} if backend == "inductor" else {}
        compiled = torch.compile(model.forward, backend=backend, **options)
        _COMPILED[model] = compiled
    return compiled


def _mark_uncompilable(model: torch.nn.Module, error: BaseException) -> None:
    """Stop compiling ``model``'s decode step for the rest of the process after ``error`` (a compiler failure): the
    step is run uncompiled instead (same numbers; a warning says why, once)."""
    if model not in _UNCOMPILABLE:
        _UNCOMPILABLE.add(model)
        _COMPILED.pop(model, None)
        warnings.warn(f"the compiled decode step failed ({type(error).__name__}: {str(error).splitlines()[0][:200] if str(error) else ''}); "
                      "this model decodes uncompiled from here on (same numbers, slower)", RuntimeWarning, stacklevel=2)
