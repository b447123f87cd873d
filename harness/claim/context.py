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
seeds by hand, and the record-then-assert order, so no claim can forget to record a FAIL.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
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
            (:func:`harness.transfer.runner.auto_batch_size`).
    """

    seed: int
    n_cap: int | None
    window: int
    report_dir: Path | None
    device: str
    dtype: str | None
    batch_size: int | str = "auto"


@dataclass(frozen=True)
class ClaimContext:
    """One registered claim on one model: everything its test needs, and how its result leaves the test.

    Attributes:
        spec: the registered claim (rule, α, planned n, decoding regime, required groups).
        lm: the model under test (session-scoped, read-only).
        bank: the prompt bank of the run.
        settings: the run-wide settings.
        store: the on-disk measurement store of raw per-item measurements.
        record_property: pytest's ``record_property`` of the test (the report reads it).
    """

    spec: ClaimSpec
    lm: LoadedModel
    bank: PromptBank
    settings: RunSettings
    store: MeasurementStore
    record_property: Callable[[str, Any], None]

    @property
    def seed(self) -> int:
        """This claim's seed on this model: ``derive_seed(run seed, claim id, model name)`` (bootstrap, controls)."""
        return derive_seed(self.settings.seed, self.spec.id, self.lm.name)

    def evaluate(self, **measured: Any) -> ClaimResult:
        """The verdict of this claim on this model: :func:`harness.claim.verdicts.evaluate` with the spec and model."""
        from harness.claim.verdicts import evaluate

        return evaluate(self.spec, model=self.lm.name, **measured)

    def conclude(self, result: ClaimResult) -> None:
        """Record ``result`` for the report, then end the test: pass on PASS, else fail with its explanation."""
        from harness.claim.verdicts import assert_pass, record_claim

        record_claim(self.record_property, result)
        assert_pass(result)
