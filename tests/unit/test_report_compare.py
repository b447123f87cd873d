"""harness.report.compare: a Markdown table of two runs' verdicts and estimates, matched by (claim, model) or by claim
(comparing models), the ``--fail-on`` tolerance, and one-line errors for inputs that cannot be compared."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from harness.report.compare import compare, main
from harness.report.fail_on import FailOn, FailOnError, Tolerance, parse_fail_on

REPO = Path(__file__).resolve().parents[2]

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
    row = _table_row(capsys.readouterr().out, "kv_transfer")
    assert row[2:4] == ["FAIL", "PASS"] and "**FAIL**: verdict changed" in row[-1]


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
    row = _table_row(capsys.readouterr().out, "kv_transfer", "toy-gemma3")
    assert row[2] == "–" and "only in B" in row[-1]


def _table_row(out: str, claim: str, model: str | None = None) -> list[str]:
    """The cells of the Markdown table row for ``claim`` (and ``model``, when given) in ``compare``'s output."""
    assert out.startswith("| claim"), out
    for line in out.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("|") and cells[0] == claim and (model is None or model in cells[1]):
            return cells
    raise AssertionError(f"no row for {claim} in:\n{out}")


def _model_run(tmp_path: Path, name: str, model: str, estimate: float, verdict: str = "FAIL") -> Path:
    return _run(tmp_path, name, copy.deepcopy(RECORD) | {"model": model, "estimate": estimate, "verdict": verdict})


def test_by_claim_matches_rows_across_models(tmp_path, capsys):
    small, other = _model_run(tmp_path, "a", "smollm2-135m", 0.4), _model_run(tmp_path, "b", "gemma3-270m", 0.5)
    assert compare(small, other) == 1  # by (claim, model) nothing matches: two rows in one run only
    assert "add --by claim" in capsys.readouterr().out
    assert compare(small, other, by="claim") == 0
    row = _table_row(capsys.readouterr().out, "kv_transfer")
    assert row[1] == "smollm2-135m → gemma3-270m" and row[4:8] == ["0.400", "0.500", "0.100", "+25.0%"]


def test_by_claim_on_one_run_of_two_models_needs_the_models_named(tmp_path, capsys):
    both = _run(tmp_path, "both", RECORD | {"model": "m1"}, RECORD | {"model": "m2", "verdict": "PASS"})
    assert main([str(both), str(both), "--by", "claim"]) == 2
    err = capsys.readouterr().err
    assert "run A holds kv_transfer for 2 models (m1, m2); pick one with --model-a" in err
    assert len(err.strip().splitlines()) == 1
    assert main([str(both), str(both), "--by", "claim", "--model-a", "m1", "--model-b", "m2"]) == 1
    assert _table_row(capsys.readouterr().out, "kv_transfer")[1:4] == ["m1 → m2", "FAIL", "PASS"]
    assert main([str(both), str(both), "--model-a", "m1", "--model-b", "m2"]) == 2
    assert "add --by claim" in capsys.readouterr().err
    assert main([str(both), str(both), "--by", "claim", "--model-a", "m3", "--model-b", "m2"]) == 2
    assert "run A has no record for model m3 (its models: m1, m2)" in capsys.readouterr().err


@pytest.mark.parametrize(("fail_on", "estimate_b", "status"), [
    ("verdict", 0.9, 0),             # the verdict is the same, any shift passes
    ("estimate:5%", 0.42 * 1.04, 0),
    ("estimate:5%", 0.42 * 1.06, 1),
    ("estimate:5%", 0.42 * 0.94, 1),
    ("estimate:0.1", 0.51, 0),
    ("estimate:0.1", 0.53, 1),
    ("estimate:5%", float("nan"), 1),  # defined in A, undefined in B: moved
    ("none", float("nan"), 0),
])
def test_fail_on_an_estimate_tolerance(tmp_path, capsys, fail_on, estimate_b, status):
    moved = copy.deepcopy(RECORD) | {"estimate": estimate_b}
    assert main([str(_run(tmp_path, "a", RECORD)), str(_run(tmp_path, "b", moved)), "--fail-on", fail_on]) == status
    notes = _table_row(capsys.readouterr().out, "kv_transfer")[-1]
    assert notes.startswith("**FAIL**") == bool(status)


def test_fail_on_none_reports_a_flipped_verdict_and_exits_0(tmp_path, capsys):
    flipped = copy.deepcopy(RECORD) | {"verdict": "PASS"}
    assert main([str(_run(tmp_path, "a", RECORD)), str(_run(tmp_path, "b", flipped)), "--fail-on", "none"]) == 0
    assert _table_row(capsys.readouterr().out, "kv_transfer")[-1] == "verdict changed"


@pytest.mark.parametrize(("make", "message"), [
    (lambda d: d / "absent", "absent does not exist"),
    (lambda d: d, "has no claims.json"),
    (lambda d: (d / "claims.json").write_text("{oops") and d, "not valid JSON (line 1"),
    (lambda d: (d / "claims.json").write_text('{"rows": []}') and d, "not a kvclaims claims.json"),
])
def test_missing_or_malformed_input_is_one_line_with_exit_2(tmp_path, make, message):
    bad = make(tmp_path)
    good = _run(tmp_path, "good", RECORD)
    result = subprocess.run([sys.executable, "-m", "harness.report", "compare", str(good), str(bad)], cwd=REPO,
                            capture_output=True, text=True, check=False, timeout=120)
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("error: ") and message in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr


@pytest.mark.parametrize("text", ["verdicts", "estimate:", "estimate:-1%", "estimate:five%", "estimate:inf"])
def test_a_bad_fail_on_is_a_one_line_usage_error(tmp_path, capsys, text):
    with pytest.raises(FailOnError):
        parse_fail_on(text)
    run = _run(tmp_path, "a", RECORD)
    assert main([str(run), str(run), "--fail-on", text]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


FINITE = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False).filter(lambda x: abs(x) > 1e-6)


@given(FINITE, st.floats(min_value=0.0, max_value=50.0), st.floats(min_value=0.0, max_value=100.0))
def test_a_relative_tolerance_fails_exactly_the_larger_moves(a, fraction_pct, tolerance_pct):
    if abs(fraction_pct - tolerance_pct) < 1e-6:
        return  # at the boundary float rounding decides
    b = a * (1 + fraction_pct / 100)
    assert Tolerance(tolerance_pct, relative=True).exceeded(a, b) == (fraction_pct > tolerance_pct)


@given(st.booleans(), st.one_of(st.none(), st.builds(Tolerance, st.sampled_from([0.0, 0.5, 5.0, 12.0]),
                                                     st.booleans())))
def test_fail_on_text_round_trips(verdict, estimate):
    fail_on = FailOn(verdict=verdict, estimate=estimate)
    assert parse_fail_on(str(fail_on)) == fail_on


@given(st.lists(st.tuples(st.sampled_from(["kv_transfer", "rv_contraction", "alpha_monotone"]),
                          st.sampled_from(["m1", "m2"]), st.sampled_from(["PASS", "FAIL", "INCONCLUSIVE"]),
                          st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=False))),
                min_size=1, max_size=6, unique_by=lambda t: t[:2]),
       st.sampled_from(["verdict", "estimate:0%", "estimate:0", "verdict,estimate:1%"]))
def test_a_run_against_itself_never_fails(tmp_path_factory, records, fail_on):
    folder = tmp_path_factory.mktemp("run")
    (folder / "claims.json").write_text(json.dumps({"records": [
        {"claim": c, "model": m, "verdict": v, "estimate": e} for c, m, v, e in records]}))
    assert compare(folder, folder, fail_on=parse_fail_on(fail_on)) == 0
