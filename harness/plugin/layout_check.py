"""At start: every model whose layout must be inferred is loaded once and its layout proven before any claim runs.

A model without a row in the architecture table gets its layout from its module tree, proven by the engine
invariants on a load-time probe (:mod:`harness.engine.layout_proof`). Were that proof left to the first claim that
loads the model, a refusal would surface inside every claim test as an ERROR. Instead the controller (or the single
process of a serial run) loads each such model at start with the run's device, dtype and ``--model-args``, and a
refusal ends the run as a usage error (exit 4) with one line naming what was found and which invariant failed. The
loaded copy is released; each worker loads the model again, and its load runs the same probe.
"""

from __future__ import annotations

import gc

import pytest

import harness.engine.layout_proof  # noqa: F401 - registers the engine's layout prover with the loader
from harness.models import GPUUnavailableError, ModelArgs, ModelUnavailableError, resolve_spec
from harness.models.architectures import UnknownArchitectureError
from harness.models.model_args import ModelArgsError

__all__ = ["prove_inferred_layouts"]


def prove_inferred_layouts(models: list[str], *, device: str, dtype: str | None, model_args: ModelArgs | None) -> list[str]:
    """Load each of ``models`` that needs an inferred layout and prove it; return the one-line records of those
    proven (``<model>: layout inferred (proven at load): <what was found>``).

    A model that cannot be loaded for another reason (weights missing, no GPU) is left to the ``lm`` fixture,
    which reports it as it always has.

    Raises:
        pytest.UsageError: ``--model <name>: <the refusal>`` for a layout that cannot be inferred or proven.
    """
    from harness.models.loading import load_model, needs_inferred_layout

    proven: list[str] = []
    for name in models:
        if not needs_inferred_layout(resolve_spec(name)):
            continue
        try:
            loaded = load_model(name, device=device, dtype=dtype, model_args=model_args)
        except UnknownArchitectureError as exc:
            raise pytest.UsageError(f"--model {name}: {exc}") from None
        except (ModelUnavailableError, GPUUnavailableError, ModelArgsError):
            continue
        found = loaded.provenance.get("layout_proof", {}).get("found", loaded.layout.architecture)
        proven.append(f"{name}: layout {loaded.provenance.get('layout')}: {found}")
        del loaded
        gc.collect()
    return proven
