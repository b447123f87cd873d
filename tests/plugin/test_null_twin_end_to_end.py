"""``--null-twin`` end to end on the tiny random Llama, in a subprocess: the claim tests re-run on a random-weight
copy of the model, the twin's outcome in the record and the report, and a bad value refused.

Two claims, picked for being cheap on toy-llama and for their verdicts there: compressed_packet_fidelity PASSes
(an int8 packet keeps the next-token distribution of any weights), attention_entropy_differs does not. The test
checks that both outcomes occurred, so it cannot pass vacuously if they ever change."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

from harness.foundation.seeds import derive_seed

REPO = Path(__file__).resolve().parents[2]
MODULES = ["claims/test_compressed_packet_fidelity.py", "claims/test_attention_entropy.py"]
RULE_VERDICTS = {"PASS", "FAIL", "INCONCLUSIVE"}


def _run(report: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest", *MODULES, "--model", "toy-llama", "--n", "40", "--claims-cache", "off",
         "--report-dir", str(report), "-q", "-p", "no:cacheprovider", *extra],
        cwd=REPO, capture_output=True, text=True, timeout=600,
    )


def _records(report: Path) -> dict[str, dict]:
    return {r["claim"]: r for r in json.loads((report / "claims.json").read_text())["records"]}


@pytest.mark.parametrize("mode", ["passing", "all"])
def test_null_twin_runs_for_the_cells_its_mode_names(tmp_path: Path, mode: str) -> None:
    report = tmp_path / "report"
    run = _run(report, "--null-twin" if mode == "passing" else "--null-twin=all")
    assert run.returncode in (0, 1), run.stdout[-3000:] + run.stderr[-3000:]
    records = _records(report)
    assert set(records) == {"compressed_packet_fidelity", "attention_entropy_differs"}
    verdicts = {claim: rec["verdict"] for claim, rec in records.items()}
    assert "PASS" in verdicts.values() and set(verdicts.values()) - {"PASS"}, verdicts  # both kinds of cell ran
    for claim, rec in records.items():
        entry = rec["details"].get("null_twin")
        if rec["verdict"] != "PASS" and mode == "passing":
            assert entry is None and rec["twin_verdict"] is None, (claim, entry)
            continue
        assert entry is not None, claim
        assert entry["mode"] == mode and entry["seed"] == derive_seed(0, "null-twin", "toy-llama")
        assert entry["weights"] == f"random, from_config after torch.manual_seed({entry['seed']}) on cpu"
        assert entry["verdict"] in RULE_VERDICTS, entry  # the twin ran to a verdict, not a skip or an error
        assert entry["also_passes"] is (entry["verdict"] == "PASS") and entry["n"] == rec["n"]
        assert entry["estimate"] != rec["estimate"]  # measured on other weights
        assert rec["twin_verdict"] == entry["verdict"] and rec["twin_estimate"] == entry["estimate"]
    text = (report / "claims.md").read_text()
    assert f"Random-weight twin (--null-twin {mode}): " in text
    with (report / "claims.csv").open() as fh:
        rows = {row["claim"]: row for row in csv.DictReader(fh)}
    assert rows["compressed_packet_fidelity"]["twin_verdict"] == records["compressed_packet_fidelity"]["twin_verdict"]


def test_a_bad_null_twin_value_is_a_one_line_usage_error(tmp_path: Path) -> None:
    run = _run(tmp_path / "report", "--null-twin=sometimes")
    assert run.returncode == 4, run.stdout[-2000:] + run.stderr[-2000:]
    assert "--null-twin: invalid value 'sometimes' (passing or all" in run.stderr
