"""The random-weight twin of a claim (``--null-twin``): the same claim test re-run on a random-weight copy of the
model, so a reader can tell a PASS about what training put into the model from one the architecture, the tokenizer
and the prompts alone earn.

With ``--null-twin`` (``passing``) every claim × model cell whose verdict is PASS runs its test a second time on the
model's twin; with ``--null-twin all`` every cell with a verdict does. The twin is
:func:`harness.models.random_weights.random_weight_copy` of the model with the seed
``derive_seed(run seed, "null-twin", model name)``: one twin per model and run (the same for every claim), built
when first needed and freed with the model (:func:`harness.plugin.fixtures.null_twin_model`). Its measurements are
cached apart from the trained model's: its ``provenance["model"]`` names the seed, and every measurement store key
holds :attr:`~harness.models.LoadedModel.identity`, which includes it. The claim seed, prompts, decoding and rule
are the trained model's.

The twin's outcome goes into the main record, before it is recorded, as ``details["null_twin"]``
(:func:`twin_entry`). Nothing the twin does (a skip, a failure, an exception) changes the main verdict: it becomes
the twin's verdict text instead. Engine checks (deterministic invariants) get a twin like every claim: they must hold
on any weights, so their twin is expected to PASS too (the dagger then says, correctly, that the PASS is not about
training), and a twin that does not PASS points at an engine path that depends on the weights.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pytest

from harness.claim.verdicts import PROPERTY_NAME, ClaimResult, Verdict
from harness.foundation.seeds import derive_seed

if TYPE_CHECKING:
    from harness.models import LoadedModel
    from harness.registry import ClaimSpec

NULL_TWIN_MODES: tuple[str, ...] = ("passing", "all")
"""``--null-twin`` values: ``passing`` (the twin of every PASS cell; what a bare ``--null-twin`` means) or ``all``
(the twin of every cell with a verdict)."""
DETAILS_KEY = "null_twin"
"""The key of the twin's entry in a record's ``details``."""
ENTRY_KEYS: tuple[str, ...] = ("mode", "seed", "weights", "verdict", "estimate", "ci_low", "ci_high", "n",
                               "explanation", "also_passes")
"""The fields of a twin entry (:func:`twin_entry`)."""

Capture = Callable[[str, Any], None]
"""A ``record_property`` stand-in that keeps what the twin's test records."""


def null_twin_seed(run_seed: int, model: str) -> int:
    """The twin's weight seed: ``derive_seed(run_seed, "null-twin", model)`` (one twin per model and run)."""
    return derive_seed(run_seed, "null-twin", model)


def build_null_twin(lm: LoadedModel, run_seed: int) -> LoadedModel:
    """The twin of ``lm``: :func:`~harness.models.random_weights.random_weight_copy` with :func:`null_twin_seed`, with
    the rotary pairing proven on ``lm`` (an inferred layout's, :mod:`harness.engine.layout_proof`): the same
    architecture pairs its dimensions the same way whatever its weights."""
    from harness.engine.kvcache import rope_interleaved, set_rope_interleaved
    from harness.models.random_weights import random_weight_copy

    twin = random_weight_copy(lm, null_twin_seed(run_seed, lm.name))
    set_rope_interleaved(twin.model, rope_interleaved(lm.model))
    return twin


def twin_due(mode: str | None, spec: ClaimSpec, result: ClaimResult) -> bool:
    """Whether ``result`` gets a twin under ``--null-twin mode``: never without the option; under ``passing`` only a
    PASS; under ``all`` any verdict (``spec`` is kept for claim-specific exceptions; none is registered)."""
    if mode is None:
        return False
    return mode == "all" or result.verdict is Verdict.PASS


def run_twin(mode: str, seed: int, build: Callable[[], LoadedModel],
             rerun_on: Callable[[LoadedModel, Capture], None]) -> dict[str, Any]:
    """Build the twin (``build``), re-run the claim test on it (``rerun_on(twin, capture)``) and return its entry
    (:func:`twin_entry`). A skip, a ``pytest.fail`` or any exception, building included, becomes the verdict text
    ``SKIPPED: <reason>`` or ``ERROR: <one line>``; a test that ends without concluding is an ERROR too."""
    captured: list[dict[str, Any]] = []

    def capture(name: str, value: Any) -> None:
        if name == PROPERTY_NAME:
            captured.append(value)

    weights: str | None = None
    try:
        twin = build()
        weights = twin.provenance.get("weights")
        rerun_on(twin, capture)
    except pytest.skip.Exception as exc:
        return twin_entry(mode, seed, weights, None, f"SKIPPED: {_one_line(exc.msg)}")
    except pytest.fail.Exception as exc:
        return twin_entry(mode, seed, weights, None, f"ERROR: {_one_line(exc.msg)}")
    except Exception as exc:  # noqa: BLE001 - a twin's failure, whatever it is, must not touch the main verdict
        return twin_entry(mode, seed, weights, None, f"ERROR: {type(exc).__name__}: {_one_line(str(exc))}")
    if not captured:
        return twin_entry(mode, seed, weights, None, "ERROR: the test ended on the twin without a claim result")
    return twin_entry(mode, seed, weights, captured[0])  # the first conclude ends a non-PASS test


def twin_entry(mode: str, seed: int, weights: str | None, record: dict[str, Any] | None,
               problem: str | None = None) -> dict[str, Any]:
    """``details["null_twin"]`` of a main record: ``mode`` (``passing`` or ``all``), ``seed`` (the twin's weight
    seed), ``weights`` (how its weights were drawn), ``verdict`` (PASS, FAIL, INCONCLUSIVE, or ``SKIPPED: …`` /
    ``ERROR: …`` when the twin gave none), ``estimate``, ``ci_low``, ``ci_high`` (the twin's statistic and CI, in the
    claim's estimator units; None when undefined or absent), ``n`` (its n in the claim's n unit), ``explanation`` (the
    twin verdict's one line) and ``also_passes`` (True when the twin's verdict is PASS too). ``record`` is the twin's
    recorded claim result (:meth:`ClaimResult.to_record`), None with ``problem`` (the verdict text) instead."""
    rec = record or {}
    verdict = problem if record is None else str(rec.get("verdict"))
    return {
        "mode": mode, "seed": seed, "weights": weights, "verdict": verdict,
        "estimate": _finite_or_none(rec.get("estimate")), "ci_low": _finite_or_none(rec.get("ci_low")),
        "ci_high": _finite_or_none(rec.get("ci_high")), "n": rec.get("n"),
        "explanation": rec.get("explanation") if record is not None else problem,
        "also_passes": verdict == Verdict.PASS.value,
    }


def with_twin(result: ClaimResult, entry: dict[str, Any]) -> ClaimResult:
    """A copy of ``result`` whose details hold the twin ``entry`` under :data:`DETAILS_KEY` (``result`` unchanged)."""
    return dataclasses.replace(result, details={**result.details, DETAILS_KEY: entry})


def _finite_or_none(x: Any) -> float | int | None:
    if x is None or isinstance(x, bool):
        return None
    if isinstance(x, int):
        return x
    value = float(x)
    return value if math.isfinite(value) else None


def _one_line(text: Any, limit: int = 240) -> str:
    line = " ".join(str(text or "").split()) or "no reason given"
    return line if len(line) <= limit else line[: limit - 1] + "…"
