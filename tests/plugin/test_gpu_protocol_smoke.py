"""The GPU protocol script end to end on CPU with toy-llama (issue 27's smoke test): the decode benchmark on both
paths, one claims run on the fast path, and the JSON and markdown it writes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_the_protocol_runs_end_to_end_on_a_toy_model(tmp_path: Path) -> None:
    out = tmp_path / "protocol"
    finished = subprocess.run(
        [sys.executable, "-m", "benchmarks.gpu_protocol", "--model", "toy-llama", "--quick", "--out", str(out),
         "--batch", "4", "--tokens", "6", "--limit", "4", "-k", "rv_contraction or kv_transfer_specific"],
        cwd=REPO, capture_output=True, text=True, timeout=600,
    )
    assert finished.returncode == 0, finished.stdout[-3000:] + finished.stderr[-3000:]
    result = json.loads((out / "protocol.json").read_text())
    paths = result["decode"]["paths"]
    assert paths["eager"]["plan"]["attention"] == "eager" and paths["fast"]["plan"]["attention"] == "sdpa"
    for measured in paths.values():
        assert measured["ms_per_step"] > 0 and measured["decode_tokens_per_s"] > 0
        assert measured["roofline_fraction_nominal"] is None  # no nominal bandwidth on a CPU
        assert 0 < measured["roofline_fraction_measured"]
    assert result["decode"]["batch"] == 4 and result["decode"]["fast_over_eager_speedup"] > 0
    claims = result["claims"]["fast"]
    assert claims["exit_status"] == 0 and "--decode-path=fast" in claims["command"]
    assert {row["claim"] for row in claims["claims"]} == {"rv_contraction", "kv_transfer_specific"}
    assert all(row["verdict"] in ("PASS", "FAIL", "INCONCLUSIVE") and row["seconds"] > 0 for row in claims["claims"])
    report = json.loads((out / "claims-fast" / "claims.json").read_text())
    assert report["run"]["options"]["decode_path"] == "fast"
    assert report["run"]["models"]["toy-llama"]["decode_path"] == "fast"
    table = (out / "protocol.md").read_text()
    assert "| fast" in table and "roofline" in table and "test_rv_contraction[toy-llama]" in table
