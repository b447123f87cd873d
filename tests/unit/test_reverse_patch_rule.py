"""reverse_patch_necessity v5 through the real estimation and decision path (harness.claim.steps.transfer_result →
harness.transfer → harness.claim.verdicts.evaluate) on hand-made scores: it must FAIL when every patched condition scores 0
(any foreign cache removes as much as the baseline donor), and PASS when only the baseline donor removes, also when
random K/V produces gibberish that the score puts at 0 (v4 could never PASS then: its rule needed A⊕B to beat it)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from harness import transfer as tr
from harness.claim.context import ClaimContext, RunSettings
from harness.claim.steps import paired_p, transfer_result
from harness.claim.verdicts import Verdict
from harness.registry import get_claim
from harness.runtime.measurement_store import MeasurementStore
from tests.unit.test_transfer_estimate import _run

SPEC = get_claim("reverse_patch_necessity")
N = SPEC.planned_n + 2


def _claim(recorded: list) -> ClaimContext:
    """A ClaimContext around a stand-in model and bank (what behaviour_details reads), recording into ``recorded``."""
    lm = SimpleNamespace(name="hand-made", provenance={"source": "none"},
                         layers=SimpleNamespace(early=0, late=1, patch_layers=(1,)))
    settings = RunSettings(seed=0, n_cap=None, window=16, report_dir=None, device="cpu", dtype=None)
    bank = SimpleNamespace(content_hash="x", get=lambda prompt_id: SimpleNamespace(text=f"prompt {prompt_id}"))
    return ClaimContext(SPEC, lm, bank, settings,  # type: ignore[arg-type]
                        MeasurementStore(mode="off"), lambda k, v: recorded.append((k, v)))


def _result(a: np.ndarray, b: np.ndarray, rev: np.ndarray, rec_donor: np.ndarray, rand: np.ndarray):
    from claims.test_reverse_patch import CONTRASTS, REPORTED

    runs = {c.name: _run(c, list(s)) for c, s in (
        (tr.NATURAL_RECURSIVE, a), (tr.NATURAL_BASELINE, b), (tr.REVERSE, rev),
        (CONTRASTS["recursive_donor"], rec_donor), (REPORTED["random_kv"], rand))}
    p, note = paired_p(runs[tr.REVERSE.name].scores(), runs[tr.NATURAL_RECURSIVE.name].scores(), "less")
    return transfer_result(_claim([]), runs, tr.REVERSE, tr.NATURAL_RECURSIVE, tr.NATURAL_BASELINE, p_value=p,
                           p_note=note, contrasts=CONTRASTS, reported_contrasts=REPORTED)


@pytest.fixture(scope="module")
def natural() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(7)
    return rng.uniform(0.6, 0.95, N), rng.uniform(0.0, 0.2, N)  # A recursive (high), B baseline (low)


def test_every_patched_score_zero_fails(natural):
    a, b = natural
    zeros = np.zeros(N)
    result = _result(a, b, zeros, zeros, zeros)
    assert result.estimate > 1.0 and result.ci_low >= 0.5 and result.p_value < SPEC.alpha_test  # T_rev alone passes
    assert result.verdict is Verdict.FAIL, result.explanation
    assert result.details["contrast_cis"] == {"recursive_donor": [0.0, 0.0]}
    assert "recursive_donor 95% CI [0, 0]" in result.explanation


def test_only_the_baseline_donor_removing_recursion_passes(natural):
    a, b = natural
    rng = np.random.default_rng(8)
    rev = np.clip(b + rng.normal(0.0, 0.03, N), 0, 1)  # A⊕B ≈ B
    rec_donor = np.clip(a + rng.normal(0.0, 0.03, N), 0, 1)  # A⊕A' ≈ A
    rand = np.clip(a - 0.05 + rng.normal(0.0, 0.03, N), 0, 1)  # A⊕R ≈ A
    result = _result(a, b, rev, rec_donor, rand)
    assert result.verdict is Verdict.PASS, result.explanation
    contrasts = result.details["contrasts"]
    assert set(contrasts) == {"recursive_donor", "random_kv"}
    assert contrasts["recursive_donor"]["deciding"] and not contrasts["random_kv"]["deciding"]
    assert all(c["ci_low"] > 0.5 for c in contrasts.values())
    assert contrasts["recursive_donor"]["T_of_condition"]["T"] == pytest.approx(
        (rec_donor.mean() - a.mean()) / (b.mean() - a.mean()))


def test_gibberish_from_random_kv_scoring_zero_does_not_block_a_pass(natural):
    """The issue-23 case: random K/V makes gibberish the score puts at 0.000–0.005, below any fluent continuation.
    The baseline donor removes the recursion and the same-length recursive donor does not: the claim's statement
    holds, and v5 PASSes although A⊕B (fluent, ≈ B) scores above A⊕R."""
    a, b = natural
    rng = np.random.default_rng(9)
    rev = np.clip(b + rng.normal(0.0, 0.03, N), 0, 1)
    rec_donor = np.clip(a + rng.normal(0.0, 0.03, N), 0, 1)
    gibberish = rng.uniform(0.0, 0.005, N)
    result = _result(a, b, rev, rec_donor, gibberish)
    assert result.verdict is Verdict.PASS, result.explanation
    random_contrast = result.details["contrasts"]["random_kv"]
    assert random_contrast["ci_high"] < 0 and not random_contrast["deciding"]  # A⊕R "removes more": reported only


def test_the_claim_module_runs_the_registered_contrasts():
    from claims.test_reverse_patch import CONTRASTS, REPORTED

    assert tuple(CONTRASTS) == SPEC.criteria[2].names
    assert CONTRASTS["recursive_donor"] is tr.REVERSE_RECURSIVE_DONOR and REPORTED["random_kv"] is tr.REVERSE_RANDOM
