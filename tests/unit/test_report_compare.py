"""harness.report.compare: verdict changes and value differences between two runs' claims.json."""

from __future__ import annotations

import copy
import json
from pathlib import Path

from harness.report.compare import compare, main

RECORD = {
    "claim": "kv_transfer", "model": "toy-llama", "verdict": "FAIL", "estimate": 0.42, "ci_low": 0.1, "ci_high": 0.7,
    "p_value": float("nan"), "rule": "T: 95% CI > 0.8", "explanation": "CI below 0.8",
    "details": {"timings": {"model_load_s": 1.0}, "model_provenance": {"sha256": "a"}, "pairs": ["p1", "p2"]},
    "run": {"durations_s": {"call": 3.0}},
}


def _run(tmp_path: Path, name: str, *records: dict) -> Path:
    folder = tmp_path / name
    folder.mkdir()
    (folder / "claims.json").write_text(json.dumps({"run": {"started": name}, "records": list(records)}))
    return folder


def test_a_run_against_itself_is_identical_even_in_exact_mode(tmp_path, capsys):
    run = _run(tmp_path, "a", RECORD)
    assert compare(run, run, exact=True) == 0
    assert "0 verdict change(s), 0 estimate shift(s), 0 differing value(s)" in capsys.readouterr().out


def test_timings_provenance_and_rule_text_are_not_compared(tmp_path):
    other = copy.deepcopy(RECORD)
    other["details"]["timings"]["model_load_s"] = 9.0
    other["details"]["model_provenance"]["sha256"] = "b"
    other["rule"], other["explanation"], other["run"]["durations_s"]["call"] = "other words", "other", 1.0
    assert compare(_run(tmp_path, "a", RECORD), _run(tmp_path, "b", other), exact=True) == 0


def test_a_flipped_verdict_fails(tmp_path, capsys):
    flipped = copy.deepcopy(RECORD) | {"verdict": "PASS"}
    assert main([str(_run(tmp_path, "a", RECORD)), str(_run(tmp_path, "b", flipped) / "claims.json")]) == 1
    assert "verdict kv_transfer @ toy-llama: FAIL -> PASS" in capsys.readouterr().out


def test_a_shifted_number_fails_only_in_exact_mode(tmp_path):
    shifted = copy.deepcopy(RECORD)
    shifted["details"]["pairs"] = ["p1", "p3"]
    shifted["ci_high"] = 0.71
    a, b = _run(tmp_path, "a", RECORD), _run(tmp_path, "b", shifted)
    assert compare(a, b) == 0
    assert compare(a, b, exact=True) == 1


def test_a_row_in_one_run_only_fails(tmp_path, capsys):
    other_model = copy.deepcopy(RECORD) | {"model": "toy-gemma3"}
    assert compare(_run(tmp_path, "a", RECORD), _run(tmp_path, "b", RECORD, other_model)) == 1
    assert "only in B: kv_transfer @ toy-gemma3" in capsys.readouterr().out
