"""Unit tests of the report pieces: identity, rows from reports, writers, figures."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from harness.claim.verdicts import evaluate
from harness.registry import get_claim
from harness.report.figures import write_figures
from harness.report.identity import Identity, clean_nodeid, from_nodeid, from_properties, model_from_callspec
from harness.report.numbers import fmt
from harness.report.provenance import command_line, run_id
from harness.report.rows import RowCollector, apply_multiplicity, first_error_line, skip_reason
from harness.report.tables import md_table
from harness.report.writers import terminal_table, write_json


# ---------------------------------------------------------------------------------------------- identity
def test_clean_nodeid_strips_only_the_group_suffix():
    assert clean_nodeid("claims/test_rv.py::test_rv_contraction[m1]@m1") == "claims/test_rv.py::test_rv_contraction[m1]"
    assert clean_nodeid("c.py::test_x[hf:org/name]@hf:org/name") == "c.py::test_x[hf:org/name]"
    assert clean_nodeid("c.py::test_x[a@b]") == "c.py::test_x[a@b]"


def test_identity_sources():
    assert from_properties([("claim_id", "kv_transfer"), ("claim_model", "m")]) == Identity("kv_transfer", "m")
    assert from_properties([("other", 1)]) is None
    assert from_nodeid("claims/t.py::test_kv_transfer[gemma3-270m]@gemma3-270m", ["kv_transfer"]) == Identity(
        "kv_transfer", "gemma3-270m")
    assert from_nodeid("claims/t.py::test_helper[m]", ["kv_transfer"]) is None
    assert model_from_callspec({"lm": "smollm2-135m", "alpha": 0.5}, "smollm2-135m-0.5") == "smollm2-135m"
    assert model_from_callspec({"lm": object()}, "toy") == "toy"


# --------------------------------------------------------------------------------------------------- rows
def _report(nodeid, when, outcome, props=(), longrepr=None, text=""):
    return SimpleNamespace(nodeid=nodeid, when=when, outcome=outcome, user_properties=list(props),
                           longrepr=longrepr, longreprtext=text, duration=0.5)


IDENT = [("claim_id", "rv_contraction"), ("claim_model", "m1")]


def _record(p=1e-6, model="m1", claim="rv_contraction"):
    spec = get_claim(claim)
    return evaluate(spec, model=model, estimate=-1.5, ci_low=-2.0, ci_high=-1.2, p_value=p, n=spec.planned_n).to_record()


def test_call_record_makes_the_row_even_when_the_test_failed():
    col = RowCollector()
    col.add(_report("t.py::test_rv_contraction[m1]", "setup", "passed", IDENT))
    rec = _record(p=0.9999)  # one-sided p ≥ 1 − α_test: the claimed direction is contradicted, FAIL
    col.add(_report("t.py::test_rv_contraction[m1]", "call", "failed", [*IDENT, ("claim_result", rec)],
                    text="E   AssertionError: FAIL"))
    col.add(_report("t.py::test_rv_contraction[m1]", "teardown", "passed", IDENT))
    (row,) = col.rows()
    assert row.result.verdict.value == "FAIL" and set(row.durations_s) == {"setup", "call", "teardown"}


def test_setup_error_skip_and_missing_record_rows():
    col = RowCollector()
    col.add(_report("a[m1]", "setup", "failed", IDENT, text="    def lm():\nE   ModelUnavailableError: no weights\nmore"))
    skip_ident = [("claim_id", "kv_transfer"), ("claim_model", "m1")]
    col.add(_report("b[m1]", "setup", "skipped", skip_ident, longrepr=("x.py", 3, "Skipped: no GPU")))
    none_ident = [("claim_id", "alpha_monotone"), ("claim_model", "m1")]
    col.add(_report("c[m1]", "call", "passed", none_ident))
    rows = {r.result.claim: r.result for r in col.rows()}
    assert rows["rv_contraction"].verdict.value == "ERROR"
    assert "ModelUnavailableError: no weights" in rows["rv_contraction"].explanation
    assert rows["kv_transfer"].verdict.value == "SKIPPED" and rows["kv_transfer"].explanation == "SKIPPED: no GPU"
    assert rows["alpha_monotone"].verdict.value == "ERROR" and "did not record" in rows["alpha_monotone"].explanation
    assert rows["kv_transfer"].rule == get_claim("kv_transfer").rule_summary()


def test_non_claim_reports_are_ignored_and_duplicates_are_errors():
    col = RowCollector()
    col.add(_report("tests/test_x.py::test_rv_contraction", "call", "passed"))
    assert col.rows() == []
    col.add(_report("one[m1]", "call", "passed", [*IDENT, ("claim_result", _record())]))
    col.add(_report("two[m1]", "call", "passed", [*IDENT, ("claim_result", _record())]))
    (row,) = col.rows()
    assert row.result.verdict.value == "ERROR" and "more than one test" in row.result.explanation


def test_crash_report_uses_identity_from_earlier_phase_or_nodeid():
    col = RowCollector()
    col.add(_report("t.py::test_kv_transfer[m2]@m2", "???", "failed", text="worker 'gw1' crashed while running"))
    col.add(_report("t.py::anything[m1]", "setup", "passed", IDENT))
    col.add(_report("t.py::anything[m1]", "???", "failed", text="worker 'gw0' crashed while running"))
    rows = {(r.result.claim, r.result.model): r.result for r in col.rows(["m1", "m2"])}
    assert rows[("kv_transfer", "m2")].verdict.value == "ERROR"
    assert "crashed" in rows[("rv_contraction", "m1")].explanation


def test_rows_sorted_by_registry_then_model_order():
    col = RowCollector()
    for claim, model in [("kv_transfer", "b"), ("rv_contraction", "b"), ("kv_transfer", "a"), ("rv_contraction", "a")]:
        col.add(_report(f"{claim}[{model}]", "call", "passed",
                        [("claim_id", claim), ("claim_model", model), ("claim_result", _record(model=model, claim=claim))]))
    order = [(r.result.claim, r.result.model) for r in col.rows(["b", "a"])]
    assert order == [("rv_contraction", "b"), ("rv_contraction", "a"), ("kv_transfer", "b"), ("kv_transfer", "a")]


def test_holm_within_family_per_model():
    col = RowCollector()
    col.add(_report("x[m1]", "call", "passed", [*IDENT, ("claim_result", _record(p=0.001))]))
    ident2 = [("claim_id", "rv_survives_repetition"), ("claim_model", "m1")]
    rec2 = evaluate(get_claim("rv_survives_repetition"), model="m1", estimate=-1.5, ci_low=-2.0, ci_high=-1.0,
                    p_value=0.004, n=100).to_record()
    col.add(_report("y[m1]", "call", "passed", [*ident2, ("claim_result", rec2)]))
    rows = col.rows()
    apply_multiplicity(rows)
    adj = {r.result.claim: r.result.p_adjusted for r in rows}
    # m = 8: Holm gives 8 × 0.001 and max(0.008, 7 × 0.004)
    assert adj == {"rv_contraction": pytest.approx(0.008), "rv_survives_repetition": pytest.approx(0.028)}
    assert "holm" in rows[0].p_adjust_method


def test_error_line_and_skip_reason_helpers():
    assert first_error_line("a\nE   ValueError: bad\nE   more") == "ValueError: bad"
    assert first_error_line("") == "unknown error"
    assert skip_reason(["p", 1, "Skipped: why"]) == "why"


# ------------------------------------------------------------------------------------------------ writers
def test_md_table_escapes_pipes_and_newlines():
    table = md_table(["a", "b"], [["x|y", "1\n2"]])
    assert "x\\|y" in table and "1 2" in table and table.count("\n") == 2
    assert md_table(["n"], [["007"]]).splitlines()[2] == "| 007 |"  # cells are text: no number parsing


def test_fmt_numbers():
    assert fmt(None) == "–" and fmt(float("nan")) == "–" and fmt(3) == "3"
    assert fmt(0.000012) == "1.20e-05" and fmt(3.2e-06) == "3.20e-06" and fmt(-1.23456) == "-1.23"
    assert fmt(1.0) == "1.00" and fmt(0.5) == "0.500" and fmt(123.4) == "123" and fmt(0.0246) == "0.0246"
    assert fmt(0.001) == "0.00100" and fmt(12345.0) == "1.23e+04" and fmt(0.0) == "0.00"


def test_terminal_table_aligns_models():
    lines = terminal_table([{"claim": "rv_contraction", "model": "m1", "verdict": "PASS"},
                            {"claim": "rv_contraction", "model": "m2", "verdict": "INCONCLUSIVE"}])
    assert lines[0].split() == ["claim", "m1", "m2"] and lines[1].split() == ["rv_contraction", "PASS", "INCONCLUSIVE"]


def test_json_is_strict(tmp_path: Path):
    write_json([{"claim": "c", "estimate": None}], {"run_id": "r", "path": Path("/x")}, tmp_path / "c.json")
    payload = json.loads((tmp_path / "c.json").read_text())
    assert payload["run"]["path"] == "/x" and payload["records"][0]["estimate"] is None


def test_command_line_and_run_id():
    import datetime as dt

    assert command_line(["/venv/bin/pytest", "claims/", "-n", "2"]) == "pytest claims/ -n 2"
    assert command_line(["/x/pytest/__main__.py", "-q"]) == "python -m pytest -q"
    assert run_id(dt.datetime(2025, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc), "abc1234") == "20250102T030405Z-abc1234"


# ------------------------------------------------------------------------------------------------ figures
def test_figures_only_for_claims_with_data(tmp_path: Path):
    recs = [
        {"claim": "alpha_monotone", "model": "m", "details": {"alpha_curve": {"alpha": [0, 0.5, 1],
                                                                              "estimate": [0.0, 0.4, 0.9]}}},
        {"claim": "kv_transfer", "model": "m", "details": {}},
    ]
    written = write_figures(recs, tmp_path)
    assert written == {"alpha_monotone": ["alpha_dose_response-alpha_monotone.png"]}
    assert (tmp_path / "alpha_dose_response-alpha_monotone.png").read_bytes()[:4] == b"\x89PNG"


def test_figure_data_errors_name_claim_and_model(tmp_path: Path):
    bad = [{"claim": "kv_transfer", "model": "m", "details": {"transfer_by_range": {"labels": ["Q1", "Q2"],
                                                                                  "estimate": [0.1]}}}]
    with pytest.raises(ValueError, match="kv_transfer × m .*unequal lengths"):
        write_figures(bad, tmp_path)
    with pytest.raises(ValueError, match="lack keys"):
        write_figures([{"claim": "c", "model": "m", "details": {"layer_sweep": {"layers": [1]}}}], tmp_path)
