"""At start: every model whose layout must be inferred, and every local checkpoint, is loaded once before any claim.

A model without a row in the architecture table gets its layout from its module tree, proven by the engine
invariants on a load-time probe (:mod:`harness.engine.layout_proof`); every load runs a forward pass that refuses
activations that are not finite (:mod:`harness.models.finite_probe`). Were those checks left to the first claim
that loads the model, a refusal would surface inside every claim test as an ERROR. Instead the controller (or the
single process of a serial run) loads each such model at start with the run's device, dtype and ``--model-args``:
models without a row, and the local checkpoints a training run writes and breaks (``path:``, ``gguf:``). A refusal
ends the run as a usage error (exit 4) with one line. Under xdist the loaded copy is released and each worker loads
the model again, its load running the same checks (a registry or ``hf:`` model whose activations are not finite, e.g.
fp16 overflow on a GPU, is refused there: one line in each of its claim tests, and the run fails). In a serial run the
first model's copy is kept for the ``lm`` fixture (:func:`take_kept`), so a local checkpoint is loaded once, and never
more than one start-time copy stays resident.

A process that serves many pytest sessions with one loaded model (a Ray actor of ``--executor ray``,
:mod:`harness.plugin.ray_executor`) registers it with :func:`keep_resident`; the ``lm`` fixture of every session in
that process takes it from :func:`resident` (never handed over, never released) instead of loading the model again,
and nothing at start loads it either.
"""

from __future__ import annotations

import gc

import pytest

import harness.engine.layout_proof  # noqa: F401 - registers the engine's layout prover with the loader
from harness.models import GPUUnavailableError, LoadedModel, ModelArgs, ModelUnavailableError, resolve_spec
from harness.models.architectures import UnknownArchitectureError
from harness.models.finite_probe import NonFiniteModelError
from harness.models.model_args import ModelArgsError

__all__ = ["LOCAL_CHECKPOINTS", "check_models_at_start", "keep_resident", "resident", "take_kept"]

LOCAL_CHECKPOINTS = ("path", "gguf-file")
"""Sources loaded at start whatever their layout: local checkpoints, where broken weights come from."""


_KEPT: dict[tuple[str, str, str | None, str], LoadedModel] = {}
"""The start-time copy a serial run keeps for its ``lm`` fixture (at most one), by :func:`_load_key`."""


_RESIDENT: dict[tuple[str, str, str | None, str], LoadedModel] = {}
"""Models a long-lived process holds for all its sessions (:func:`keep_resident`), by :func:`_load_key`."""


def _load_key(name: str, device: str, dtype: str | None, model_args: ModelArgs | None) -> tuple[str, str, str | None, str]:
    return name, device, dtype, repr(model_args)


def take_kept(name: str, *, device: str, dtype: str | None, model_args: ModelArgs | None) -> LoadedModel | None:
    """The copy of ``name`` loaded at start with the same device, dtype and ``--model-args``, handed over once (None
    when there is none). Asking for another model releases a kept copy first, so the process never holds two."""
    key = _load_key(name, device, dtype, model_args)
    kept = _KEPT.pop(key, None)
    if kept is None and _KEPT:
        _KEPT.clear()
        gc.collect()
    return kept


def keep_resident(loaded: LoadedModel, name: str, *, device: str, dtype: str | None,
                  model_args: ModelArgs | None) -> None:
    """Hold ``loaded`` (``name`` loaded with these options) for every later session of this process."""
    _RESIDENT[_load_key(name, device, dtype, model_args)] = loaded


def resident(name: str, *, device: str, dtype: str | None, model_args: ModelArgs | None) -> LoadedModel | None:
    """The model :func:`keep_resident` holds for ``name`` and these options (it stays held), or None."""
    return _RESIDENT.get(_load_key(name, device, dtype, model_args))


def check_models_at_start(models: list[str], *, device: str, dtype: str | None, model_args: ModelArgs | None,
                          keep_first: bool = False) -> list[str]:
    """Load each of ``models`` that needs an inferred layout or is a local checkpoint, proving its layout and its
    finite activations; return one line for each inferred or proven layout
    (``<model>: layout inferred (proven at load): <what was found>``). With ``keep_first`` (a serial run) the copy of
    the first model in ``sorted`` order (the order the models are parametrized in) is kept for :func:`take_kept`.

    A model that cannot be loaded for another reason (weights missing, no GPU) is left to the ``lm`` fixture,
    which reports it as it always has.

    Raises:
        pytest.UsageError: ``--model <name>: <the refusal>`` for a layout that cannot be inferred or proven, or
            activations that are not finite.
    """
    from harness.models.loading import load_model, needs_inferred_layout

    proven: list[str] = []
    for name in models:
        spec = resolve_spec(name)
        if not (needs_inferred_layout(spec) or spec.source in LOCAL_CHECKPOINTS):
            continue
        try:
            loaded = load_model(name, device=device, dtype=dtype, model_args=model_args)
        except (UnknownArchitectureError, NonFiniteModelError) as exc:
            raise pytest.UsageError(f"--model {name}: {exc}") from None
        except (ModelUnavailableError, GPUUnavailableError, ModelArgsError):
            continue
        if loaded.provenance.get("layout"):
            found = loaded.provenance.get("layout_proof", {}).get("found", loaded.layout.architecture)
            proven.append(f"{name}: layout {loaded.provenance.get('layout')}: {found}")
        if keep_first and name == min(models):
            _KEPT[_load_key(name, device, dtype, model_args)] = loaded
        del loaded
        gc.collect()
    return proven
