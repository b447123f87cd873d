"""harness.report.twin in the report files: the dagger of a PASS whose random-weight twin also PASSes (matrix, note,
tex), plain PASS otherwise, the per-claim twin table, the summary count and the twin columns of claims.csv/json."""

from __future__ import annotations

import csv
import json
import re
import sys
from pathlib import Path
from typing import Any

from harness.report.build import write_report
from harness.report.latex import claims_latex
from harness.registry import get_claim
from harness.report.markdown import claims_markdown, matrix_cell
from harness.report.twin import DAGGER_NOTE, TWIN_FIELDS, add_twin_fields, summary_sentence

sys.path.insert(0, str(Path(__file__).parent))
from test_report_build import HEADER, _record  # noqa: E402


def _entry(verdict: str, estimate: float | None = 0.9, mode: str = "passing") -> dict[str, Any]:
    low, high = (None, None) if estimate is None else (estimate - 0.1, estimate + 0.1)
    return {"mode": mode, "seed": 1, "weights": "random, test", "verdict": verdict, "estimate": estimate,
            "ci_low": low, "ci_high": high, "n": 190, "explanation": f"{verdict}: T = {estimate}",
            "also_passes": verdict == "PASS"}


def _records(twin_small: dict | None, twin_large: dict | None) -> list[dict[str, Any]]:
    """kv_transfer PASSes on both models; each gets the given twin entry (None: no twin ran)."""
    out = []
    for model, entry in (("m-small", twin_small), ("m-large", twin_large)):
        details = {"null_twin": entry} if entry is not None else {}
        out.append(_record("kv_transfer", model, details, estimate=0.95, ci_low=0.85, ci_high=0.99, p_value=1e-6,
                           n=get_claim("kv_transfer").planned_n))
    return out


def test_a_pass_whose_twin_passes_carries_the_dagger_and_the_note() -> None:
    records = add_twin_fields(_records(_entry("PASS"), _entry("FAIL", 0.05)))
    assert matrix_cell(records[0]) == "PASS† 0.950 [0.850, 0.990]"
    assert matrix_cell(records[1]) == "PASS 0.950 [0.850, 0.990]"  # the twin did not PASS: nothing added
    text = claims_markdown(records, HEADER, {})
    matrix = text.split("## Verdict matrix")[1].split("## Claims")[0]
    assert "| PASS† 0.950 [0.850, 0.990] " in matrix and "| PASS 0.950 [0.850, 0.990] " in matrix
    assert DAGGER_NOTE in matrix
    assert "Random-weight twin (--null-twin passing): 1 of 2 PASS cells also PASS on random weights." in text
    section = re.sub(" +", " ", text.split("### `kv_transfer`")[1])  # table cells padded to the column widths
    assert "| m-small | PASS | PASS | 0.900 [0.800, 1.00] | 190 | T = 0.9 |" in section
    assert "| m-large | PASS | FAIL | 0.0500 [-0.0500, 0.150] | 190 | T = 0.05 |" in section
    tex = claims_latex(records, HEADER)
    assert r"PASS\dag{} 0.950" in tex and r"\dag{} the same claim also PASSes" in tex and "tab:null-twin" in tex
    assert "†" not in tex


def test_without_twins_the_matrix_reads_plain_pass_and_no_note() -> None:
    records = add_twin_fields(_records(None, None))
    text = claims_markdown(records, HEADER, {})
    assert matrix_cell(records[0]) == "PASS 0.950 [0.850, 0.990]"
    assert "†" not in text and "Random-weight twin" not in text and "--null-twin" not in text
    assert "dag" not in claims_latex(records, HEADER)
    assert summary_sentence(records) == ""


def test_a_skipped_twin_counts_as_not_passing_and_reads_as_its_reason() -> None:
    records = add_twin_fields(_records(_entry("SKIPPED: no persona group", None, mode="all"), None))
    assert matrix_cell(records[0]) == "PASS 0.950 [0.850, 0.990]"
    assert summary_sentence(records) == (" Random-weight twin (--null-twin all): 0 of 1 PASS cell also PASSes on "
                                         "random weights.")
    assert records[0]["twin_verdict"] == "SKIPPED: no persona group" and records[0]["twin_estimate"] is None


def test_csv_and_json_carry_the_twin_columns_empty_without_a_twin(tmp_path: Path) -> None:
    write_report(_records(_entry("PASS"), None), HEADER, tmp_path)
    with (tmp_path / "claims.csv").open() as fh:
        rows = {row["model"]: row for row in csv.DictReader(fh)}
    assert [rows["m-small"][f] for f in TWIN_FIELDS] == ["PASS", "0.9", "0.8", "1.0"]
    assert [rows["m-large"][f] for f in TWIN_FIELDS] == ["", "", "", ""]
    records = {r["model"]: r for r in json.loads((tmp_path / "claims.json").read_text())["records"]}
    assert records["m-small"]["twin_verdict"] == "PASS" and records["m-small"]["twin_ci_high"] == 1.0
    assert all(records["m-large"][f] is None for f in TWIN_FIELDS)
