"""harness.claim.null_twin through ClaimContext.conclude, with fake models and test bodies (no torch model): when a
twin runs, what its entry holds, and that nothing the twin does changes the main verdict or record."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import replace
from types import SimpleNamespace
from typing import Any

import pytest

from harness.claim.context import ClaimContext, RunSettings
from harness.claim.null_twin import ENTRY_KEYS, null_twin_seed
from harness.claim.verdicts import PROPERTY_NAME, ClaimNotPassed, ClaimResult
from harness.registry import get_claim

CLAIM = "compressed_packet_fidelity"  # rule: 95% CI < 0.01 (no p), planned n 34
PASSING = {"estimate": 0.001, "ci_low": 0.0005, "ci_high": 0.002, "n": 34}
FAILING = {"estimate": 0.5, "ci_low": 0.3, "ci_high": 0.7, "n": 34}


def _model(name: str, weights: str | None = None) -> Any:
    return SimpleNamespace(name=name, provenance={"model": name, **({"weights": weights} if weights else {})})


def _context(mode: str | None, rerun: Callable[[ClaimContext], None] | None, claim: str = CLAIM
             ) -> tuple[ClaimContext, list[dict[str, Any]], list[Any]]:
    """A context on a fake model; returns it, the main records it recorded and the twins it built."""
    recorded: list[dict[str, Any]] = []
    built: list[Any] = []

    def twin() -> Any:
        built.append(_model("m", weights="random, test"))
        return built[-1]

    context = ClaimContext(
        spec=get_claim(claim), lm=_model("m"), bank=None, settings=RunSettings(  # type: ignore[arg-type]
            seed=7, n_cap=None, window=16, report_dir=None, device="cpu", dtype=None, null_twin=mode),
        store=None, record_property=lambda name, value: recorded.append(value) if name == PROPERTY_NAME else None,  # type: ignore[arg-type]
        rerun=rerun, twin_model=twin,
    )
    return context, recorded, built


def _concluding(**numbers: float) -> Callable[[ClaimContext], None]:
    """A claim test body that measures ``numbers`` on whatever model it gets and concludes."""
    def body(claim: ClaimContext) -> None:
        claim.conclude(claim.evaluate(**numbers))
    return body


def _result(context: ClaimContext, **numbers: float) -> ClaimResult:
    return context.evaluate(**numbers)


def test_a_pass_gets_its_twin_entry_before_it_is_recorded() -> None:
    twins: list[ClaimContext] = []

    def body(claim: ClaimContext) -> None:
        twins.append(claim)
        claim.conclude(claim.evaluate(**PASSING))

    context, recorded, built = _context("passing", body)
    context.conclude(_result(context, **PASSING))  # PASS: no assertion error
    (record,) = recorded
    entry = record["details"]["null_twin"]
    assert set(entry) == set(ENTRY_KEYS)
    assert entry["verdict"] == "PASS" and entry["also_passes"] is True and entry["mode"] == "passing"
    assert entry["seed"] == null_twin_seed(7, "m") and entry["weights"] == "random, test"
    assert (entry["estimate"], entry["ci_low"], entry["ci_high"], entry["n"]) == (0.001, 0.0005, 0.002, 34)
    assert len(built) == 1 and twins[0].is_twin and twins[0].lm is built[0] and twins[0].rerun is None
    assert twins[0].seed == context.seed  # the claim's seed is the trained model's: only the weights differ


def test_a_twin_that_fails_its_rule_is_recorded_and_leaves_the_pass_alone() -> None:
    context, recorded, _ = _context("passing", _concluding(estimate=math.nan, ci_low=math.nan, ci_high=0.2, n=34))
    context.conclude(_result(context, **PASSING))
    entry = recorded[0]["details"]["null_twin"]
    assert recorded[0]["verdict"] == "PASS"
    assert entry["verdict"] == "INCONCLUSIVE" and entry["also_passes"] is False
    assert entry["estimate"] is None and entry["ci_low"] is None and entry["ci_high"] == 0.2  # NaN becomes None
    assert entry["explanation"].startswith("INCONCLUSIVE: ")


@pytest.mark.parametrize(("raise_", "verdict"), [
    (lambda: (_ for _ in ()).throw(RuntimeError("twin\nexploded")), "ERROR: RuntimeError: twin exploded"),
    (lambda: pytest.skip("no persona group"), "SKIPPED: no persona group"),
    (lambda: pytest.fail("prompt too long", pytrace=False), "ERROR: prompt too long"),
    (lambda: None, "ERROR: the test ended on the twin without a claim result"),
])
def test_a_twin_that_raises_or_skips_does_not_change_the_main_verdict(raise_: Callable[[], None], verdict: str) -> None:
    context, recorded, _ = _context("passing", lambda claim: raise_())
    context.conclude(_result(context, **PASSING))
    (record,) = recorded
    assert record["verdict"] == "PASS"
    entry = record["details"]["null_twin"]
    assert entry["verdict"] == verdict and entry["also_passes"] is False and entry["estimate"] is None


def test_a_fail_and_a_twin_that_raises_still_fails_with_its_own_explanation() -> None:
    context, recorded, _ = _context("all", lambda claim: (_ for _ in ()).throw(ValueError("boom")))
    result = _result(context, **FAILING)
    with pytest.raises(ClaimNotPassed, match="FAIL: mean_kl_nats"):
        context.conclude(result)
    assert recorded[0]["verdict"] == "FAIL" and recorded[0]["explanation"] == result.explanation
    assert recorded[0]["details"]["null_twin"]["verdict"] == "ERROR: ValueError: boom"


def test_a_model_that_cannot_build_its_twin_gives_an_error_entry() -> None:
    context, recorded, _ = _context("passing", _concluding(**PASSING))

    def broken() -> Any:
        raise RuntimeError("no room for a second model")

    replace(context, twin_model=broken).conclude(_result(context, **PASSING))
    entry = recorded[0]["details"]["null_twin"]
    assert entry["verdict"] == "ERROR: RuntimeError: no room for a second model" and entry["weights"] is None


def test_passing_mode_runs_no_twin_for_a_fail_and_all_mode_does() -> None:
    calls: list[ClaimContext] = []

    def body(claim: ClaimContext) -> None:
        calls.append(claim)
        claim.conclude(claim.evaluate(**FAILING))

    context, recorded, _ = _context("passing", body)
    with pytest.raises(ClaimNotPassed):
        context.conclude(_result(context, **FAILING))
    assert not calls and "null_twin" not in recorded[0]["details"]
    context, recorded, _ = _context("all", body)
    with pytest.raises(ClaimNotPassed):
        context.conclude(_result(context, **FAILING))
    assert len(calls) == 1 and recorded[0]["details"]["null_twin"]["verdict"] == "FAIL"
    assert recorded[0]["details"]["null_twin"]["mode"] == "all"


def test_without_the_option_nothing_reruns_and_the_record_has_no_twin_key() -> None:
    calls: list[ClaimContext] = []
    context, recorded, built = _context(None, calls.append)
    context.conclude(_result(context, **PASSING))
    assert not calls and not built and "null_twin" not in recorded[0]["details"]


def test_engine_checks_get_a_twin_too() -> None:
    """Every PASS gets its twin (issue 23), engine checks included: on them the twin is expected to PASS as well."""
    calls: list[ClaimContext] = []
    context, recorded, _ = _context("passing", calls.append, claim="cache_shapes_match_config")
    context.conclude(context.evaluate(estimate=0, n=8))
    assert len(calls) == 1 and "null_twin" in recorded[0]["details"]


def test_a_twin_context_only_captures() -> None:
    captured: list[tuple[str, Any]] = []
    context, _, _ = _context("all", None)
    twin = replace(context, record_property=lambda name, value: captured.append((name, value)), is_twin=True)
    twin.conclude(_result(context, **FAILING))  # no ClaimNotPassed, no twin of the twin
    assert [name for name, _ in captured] == [PROPERTY_NAME]
    assert "null_twin" not in captured[0][1]["details"]
