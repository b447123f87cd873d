"""The run summary's decoding phrase (harness.report.summary.decoding_phrase): each regime names the claims that used
it, so a second regime (partial_layer_fidelity's plain greedy) is not read as the behavioural claims' own."""

from __future__ import annotations

from typing import Any

from harness.report.summary import NAMED_CLAIMS_AT_MOST, decoding_phrase, run_summary

MAIN, OTHER = "greedy, 48 new tokens", "greedy, 32 new tokens"


def rec(claim: str, model: str, decoding: str | None) -> dict[str, Any]:
    details = {"decoding": decoding} if decoding else {}
    return {"claim": claim, "model": model, "verdict": "PASS", "details": details}


def test_one_regime_is_named_alone() -> None:
    records = [rec("kv_transfer", "m", MAIN), rec("kv_transfer", "n", MAIN), rec("rv_contraction", "m", None)]
    assert decoding_phrase(records) == MAIN


def test_each_regime_names_its_claims_or_counts_them() -> None:
    many = [f"claim_{i}" for i in range(NAMED_CLAIMS_AT_MOST + 1)]
    records = [rec(c, m, MAIN) for c in many for m in ("m", "n")] + [rec("partial_layer_fidelity", "m", OTHER)]
    assert decoding_phrase(records) == f"{MAIN} ({len(many)} claims); {OTHER} (partial_layer_fidelity)"
    summary = run_summary(records, {"run_id": "r"})
    assert f"behavioural claims decoded {MAIN} ({len(many)} claims); {OTHER} (partial_layer_fidelity)." in summary
