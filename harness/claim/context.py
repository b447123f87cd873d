"""What a claim test receives: the run-wide settings and one claim's context (spec, model, bank, measurement
store, seed).

A claim module marks its test with ``@pytest.mark.claim("<id>")`` and requests the ``claim`` fixture
(:mod:`harness.plugin.fixtures`), which builds a :class:`ClaimContext` for that claim on the model under test::

    pytestmark = pytest.mark.claim("kv_transfer")

    def test_kv_transfer(claim: ClaimContext) -> None:
        runs = run_conditions(claim, (NATURAL_BASELINE, NATURAL_RECURSIVE, KV_MAIN))
        result = transfer_result(claim, runs, KV_MAIN, NATURAL_BASELINE, NATURAL_RECURSIVE)
        claim.conclude(result)   # record for the report, then pass / fail with the verdict's one-line reason

The context owns the per-claim seed (``derive_seed(run seed, claim id, model name)``), so no claim derives
seeds by hand, and the record-then-assert order, so no claim can forget to record a FAIL. Under ``--null-twin``
:meth:`ClaimContext.conclude` also re-runs the test on the model's random-weight twin and puts its outcome into the
record before recording it (:mod:`harness.claim.null_twin`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.foundation.seeds import derive_seed

if TYPE_CHECKING:
    from harness.claim.verdicts import ClaimResult
    from harness.models import LoadedModel
    from harness.prompts import PromptBank
    from harness.registry import ClaimSpec
    from harness.runtime.measurement_store import MeasurementStore


@dataclass(frozen=True)
class RunSettings:
    """Run-wide settings every claim reads, from the command line.

    Attributes:
        seed: the run seed; every seed of the run is derived from it with sha256 (:mod:`harness.foundation.seeds`).
        n_cap: ``--n``, a cap on prompts (or pairs) per condition; None without a cap.
        window: ``--window``, the V window W in content tokens.
        report_dir: ``--report-dir`` (None: ``reports/<run-id>/``).
        device: ``--device`` (``auto``, ``cpu``, ``cuda`` or ``cuda:N``).
        dtype: ``--dtype`` override, or None for the registry's dtype.
        batch_size: ``--batch-size``, continuations per generation batch, or ``"auto"``
            (:data:`harness.transfer.runner.AUTO_BATCH_SIZE`; it fixes the work units, :func:`harness.transfer.runner.unit_pairs`).
        null_twin: ``--null-twin``: ``"passing"`` (re-run each PASS on the model's random-weight twin), ``"all"``
            (each cell with a verdict) or None (off; :mod:`harness.claim.null_twin`).
        shard: ``--shard i/N``: this process measures its share of the claim tests and decides no verdict
            (:mod:`harness.runtime.shards`); None in a whole run.
        decode_path: ``--decode-path`` (``auto``, ``eager`` or ``fast``; :mod:`harness.engine.decode_path`).
    """

    seed: int
    n_cap: int | None
    window: int
    report_dir: Path | None
    device: str
    dtype: str | None
    batch_size: int | str = "auto"
    shard: str | None = None
    null_twin: str | None = None
    decode_path: str = "auto"


@dataclass(frozen=True)
class ClaimContext:
    """One registered claim on one model: everything its test needs, and how its result leaves the test.

    Attributes:
        spec: the registered claim (rule, α, planned n, decoding regime, required groups).
        lm: the model under test (session-scoped, read-only).
        bank: the prompt bank of the run.
        settings: the run-wide settings.
        store: the on-disk measurement store of raw per-item measurements.
        record_property: pytest's ``record_property`` of the test (the report reads it); on a twin, the capture of
            :func:`harness.claim.null_twin.run_twin`.
        rerun: runs the same test function with the given context as its ``claim`` (and the test's other fixture
            values); None where nothing can re-run it (then ``--null-twin`` records an ERROR twin).
        twin_model: the model's random-weight twin, built on first call and shared by the run's claims on this model
            (:func:`harness.plugin.fixtures.null_twin_model`); None where there is none.
        is_twin: True for the context of a twin run: its :meth:`conclude` only records, into the capture.
    """

    spec: ClaimSpec
    lm: LoadedModel
    bank: PromptBank
    settings: RunSettings
    store: MeasurementStore
    record_property: Callable[[str, Any], None]
    rerun: Callable[[ClaimContext], None] | None = field(default=None, repr=False, compare=False)
    twin_model: Callable[[], LoadedModel] | None = field(default=None, repr=False, compare=False)
    is_twin: bool = False

    @property
    def seed(self) -> int:
        """This claim's seed on this model: ``derive_seed(run seed, claim id, model name)`` (bootstrap, controls)."""
        return derive_seed(self.settings.seed, self.spec.id, self.lm.name)

    def evaluate(self, **measured: Any) -> ClaimResult:
        """The verdict of this claim on this model: :func:`harness.claim.verdicts.evaluate` with the spec and model."""
        from harness.claim.verdicts import evaluate

        return evaluate(self.spec, model=self.lm.name, **measured)

    def conclude(self, result: ClaimResult) -> None:
        """Record ``result`` for the report, then end the test: pass on PASS, else fail with its explanation.

        Under ``--null-twin`` (when :func:`~harness.claim.null_twin.twin_due`), first re-run the test on the model's
        random-weight twin and add its outcome to ``result``'s details (``null_twin``); the twin cannot change the
        verdict. On a twin's context this only records ``result`` into the twin's capture: no assert, no twin."""
        from harness.claim.null_twin import null_twin_seed, run_twin, twin_due, with_twin
        from harness.claim.verdicts import assert_pass, record_claim

        if self.is_twin:
            record_claim(self.record_property, result)
            return
        if self.settings.shard is not None:
            import pytest

            pytest.skip(f"shard {self.settings.shard}: measured into this shard's store; the verdict is the reduce's "
                        "(--claims-cache read on the merged store)")
        mode = self.settings.null_twin
        if mode is not None and twin_due(mode, self.spec, result):
            seed = null_twin_seed(self.settings.seed, self.lm.name)
            result = with_twin(result, run_twin(mode, seed, self._twin_model, self._rerun_on))
        record_claim(self.record_property, result)
        assert_pass(result)

    def _twin_model(self) -> LoadedModel:
        if self.twin_model is None:
            raise RuntimeError("this claim context has no random-weight twin (twin_model is None)")
        return self.twin_model()

    def _rerun_on(self, twin: LoadedModel, capture: Callable[[str, Any], None]) -> None:
        """Run this context's test again with ``twin`` as the model, its result going to ``capture``."""
        if self.rerun is None:
            raise RuntimeError("this claim context cannot re-run its test (rerun is None)")
        self.rerun(replace(self, lm=twin, record_property=capture, rerun=None, twin_model=None, is_twin=True))
