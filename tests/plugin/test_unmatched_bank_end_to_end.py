"""Issue 11 item 7 acceptance on a toy model: a user bank with no equal-length recursive/baseline pairs yields a
row for every KV claim that pairs prompts (the registered unmatched variant), and each row states the variant
and the pairs' length differences. Random weights: the verdicts mean nothing, the rows and details do."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BANK = REPO / "tests" / "data" / "banks" / "unmatched.json"
KV_MODULES = ["claims/test_kv_transfer.py", "claims/test_reverse_patch.py", "claims/test_controls.py"]
# the main patch, the reverse roles and the cross-baseline donor (the other baseline of nearest length)
SELECT = "kv_transfer or reverse_patch or cross_baseline"
N = 4


def test_every_kv_claim_gets_a_row_on_a_bank_without_equal_lengths(pytester: pytest.Pytester,
                                                                   monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    monkeypatch.setenv("PYTHONPATH", str(REPO))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    out = tmp_path / "report"
    result = pytester.runpytest_subprocess(
        *(str(REPO / m) for m in KV_MODULES), f"--rootdir={REPO}", "-p", "no:cacheprovider", "--model", "toy-llama",
        "--n", str(N), "--claims-cache", "off", "--report-dir", str(out), "--prompt-bank", str(BANK), "-k", SELECT,
    )
    claims_json = out / "claims.json"
    assert claims_json.exists(), result.stdout.str()[-3000:]
    records = json.loads(claims_json.read_text())["records"]
    assert {r["claim"] for r in records} == {"kv_transfer", "reverse_patch_necessity", "control_cross_baseline_null"}, \
        result.stdout.str()[-3000:]
    for record in records:
        assert record["verdict"] in {"PASS", "FAIL", "INCONCLUSIVE"}, record["explanation"]
        assert record["n"] == N
        pairing = record["details"]["pairing"]
        assert pairing["design"].startswith("unmatched variant") and pairing["exact_pairs_available"] == 0
        assert set(pairing["length_difference"]) == set(record["details"]["pairs"])
        assert pairing["unequal_pairs"] > 0
