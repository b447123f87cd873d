"""Issue 11 item 7 acceptance on a toy model: a user bank with no equal-length recursive/baseline pairs yields a
row for every KV claim that pairs prompts (the registered unmatched variant), and each row states the variant
and the pairs' length differences. Random weights: the verdicts mean nothing, the rows and details do."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BANK = REPO / "tests" / "data" / "banks" / "unmatched.json"
PAIRED_CLAIMS = {
    "kv_transfer", "v_patch_null", "alpha_monotone", "single_layer_fails", "rv_gap_fades_in_generation",
    "geometry_transfers", "rv_behaviour_correlation", "reverse_patch_necessity", "kv_order_ablation",
    "kv_transfer_specific",
    "control_random_null", "control_cross_baseline_null", "layer_quarter_localisation", "token_quarter_localisation",
    "peak_zone_vs_half", "self_ref_token_patch", "donor_pr_predicts_transfer",
}
"""Every claim that pairs a recursive with a baseline prompt; the level trends need recursion levels, which this
bank (like many researchers' banks) does not have, and are SKIPPED for that reason, not for lack of pairs."""
N = 4
PAIRED_FILES = [
    "test_kv_transfer.py", "test_v_patch_null.py", "test_alpha_monotone.py", "test_single_layer_fails.py",
    "test_rv_gap_fades.py", "test_geometry_transfers.py", "test_rv_behaviour_correlation.py", "test_reverse_patch.py",
    "test_controls.py", "test_localisation.py", "test_self_ref_tokens.py", "test_donor_pr.py",
    "test_level_trends_behaviour.py", "test_order_ablation.py", "test_kv_transfer_specific.py",
]


def test_every_kv_claim_gets_a_row_on_a_bank_without_equal_lengths(pytester: pytest.Pytester,
                                                                   monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    monkeypatch.setenv("PYTHONPATH", str(REPO))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    monkeypatch.setenv("KVCLAIMS_CACHE", str(tmp_path / "cache"))  # a private cache: the natural runs are shared
    out = tmp_path / "report"
    result = pytester.runpytest_subprocess(
        *(str(REPO / "claims" / f) for f in PAIRED_FILES), f"--rootdir={REPO}", "-p", "no:cacheprovider",
        "--model", "toy-llama", "--n", str(N), "--report-dir", str(out), "--prompt-bank", str(BANK),
    )
    claims_json = out / "claims.json"
    assert claims_json.exists(), result.stdout.str()[-3000:]
    records = {r["claim"]: r for r in json.loads(claims_json.read_text())["records"]}
    for claim in sorted(PAIRED_CLAIMS):
        record = records[claim]
        assert record["verdict"] in {"PASS", "FAIL", "INCONCLUSIVE"}, (claim, record["explanation"])
        pairing = record["details"]["pairing"]
        assert pairing["design"].startswith("unmatched variant") and pairing["exact_pairs_available"] == 0, claim
        assert set(pairing["length_difference"]) == set(record["details"].get("pairs") or pairing["length_difference"])
        assert pairing["unequal_pairs"] > 0, claim
    for claim in ("level_behaviour_trend", "donor_level_transfer_trend"):
        assert "recursion level" in records[claim]["explanation"], records[claim]["explanation"]
    assert records["kv_transfer"]["n"] == N
