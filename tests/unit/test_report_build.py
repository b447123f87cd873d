"""write_report and ``python -m harness.report rebuild|compare``: every report file from the records, a rebuild that
reproduces them byte for byte without a model (or torch), samples kept out of claims.json and merged back."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from harness.claim.verdicts import evaluate
from harness.registry import get_claim
from harness.report.__main__ import main
from harness.report.build import write_report
from harness.report.rebuild import load_run

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "reports" / "example-embedded-cpu"
REPRODUCED = ("claims.md", "claims.csv", "claims.json", "claims.tex", "methods.md", "examples.md", "samples.jsonl")


def _sample(pair: str, text: str, score: float) -> dict:
    empty = not text
    return {"pair": pair, "recipient": f"b-{pair}", "donor": f"a-{pair}", "sample": 0, "text": text,
            "n_tokens": 1 if empty else 12, "stopped_at_eos": empty, "empty": empty, "degenerate": False,
            "score": score, "scores": {"embedding_gated": score, "n_words": 0 if empty else 9}}


def _record(claim: str, model: str, details: dict | None = None, **numbers: float) -> dict:
    spec = get_claim(claim)
    rec = evaluate(spec, model=model, details=details or {}, **numbers).to_record()
    rec.update(family=spec.family, p_adjust_method=None, test=f"claims/x.py::test_{claim}[{model}]",
               run={"worker": "main", "durations_s": {"call": 1.0}})
    return rec


def records() -> list[dict]:
    """Two models; headline claims with and without CI, a behavioural record with samples, two engine checks."""
    samples = {"natural_baseline": [_sample("p1", "", 0.0), _sample("p2", "The capital is Paris.", 0.01)],
               "kv_main": [_sample("p1", "I notice myself noticing.", 0.4), _sample("p2", "", 0.0)]}
    conditions = {name: {"n_continuations": 2, "empty_share": 0.5,
                         "condition": {"recipient": "baseline", "donor": None if name == "natural_baseline" else
                                       "recursive", "intervention": "none" if name == "natural_baseline" else "kv"}}
                  for name in samples}
    out = []
    for model, t in (("m-small", 0.72), ("m-large", 0.95)):
        out += [
            _record("rv_contraction", model, estimate=-1.5, ci_low=-2.0, ci_high=-1.2, p_value=3.2e-6, n=84),
            _record("kv_transfer", model, {"samples": samples, "conditions": conditions, "decoding": "greedy"},
                    estimate=t, ci_low=t - 0.11, ci_high=t + 0.08, p_value=1.18e-5,
                    n=get_claim("kv_transfer").planned_n),
            _record("alpha_monotone", model, estimate=0.658, p_value=0.0113, step_cis=[(-0.05, 0.2)] * 4, n=20),
            _record("cache_shapes_match_config", model, estimate=0, n=8),
            _record("rope_rerotation", model, estimate=4.45e-5, n=8),
        ]
    return out


HEADER = {"run_id": "20260101T000000Z-abc1234", "date_utc": "2026-01-01T00:00:00+00:00", "synthetic": False,
          "git": {"sha": "abc1234" * 5, "short": "abc1234", "dirty": False}, "seed": 0,
          "prompt_bank_sha256": "f" * 64, "prompt_bank": {"groups": {"baseline": 60, "recursive": 60}},
          "models": {"m-small": {"source": "test", "dtype": "float32", "device": "cpu", "sha256": "1" * 64}},
          "packages": {"python": "3.11", "pandas": "2.2"}, "command": "pytest claims/",
          "status": {"complete": True, "label": "complete", "exit_status": 1, "exit_status_name": "TESTS_FAILED",
                     "selected_claim_tests": 10, "not_run": 0}}


@pytest.fixture
def report(tmp_path: Path) -> Path:
    out = tmp_path / "run"
    write_report(records(), HEADER, out)
    return out


def test_rebuild_reproduces_every_text_file_byte_for_byte(report: Path, tmp_path: Path) -> None:
    assert main(["rebuild", str(report), "--out", str(tmp_path / "again")]) == 0
    for name in REPRODUCED:
        assert (tmp_path / "again" / name).read_bytes() == (report / name).read_bytes(), name
    assert (tmp_path / "again" / "alpha_dose_response-alpha_monotone.png").exists() is False  # no curve data


def test_samples_leave_claims_json_and_come_back_on_load(report: Path) -> None:
    payload = json.loads((report / "claims.json").read_text())
    assert all("samples" not in r["details"] for r in payload["records"])
    rows = [json.loads(line) for line in (report / "samples.jsonl").read_text().splitlines()]
    assert len(rows) == 8 and {r["condition"] for r in rows} == {"natural_baseline", "kv_main"}
    assert rows[1] == {"claim": "kv_transfer", "model": "m-small", "condition": "natural_baseline",
                       **_sample("p2", "The capital is Paris.", 0.01)}
    loaded, header = load_run(report)
    assert header == json.loads(json.dumps(HEADER))
    by_key = {(r["claim"], r["model"]): r for r in loaded}
    assert by_key[("kv_transfer", "m-large")]["details"]["samples"] == records()[6]["details"]["samples"]


def test_claims_md_puts_the_matrix_first_and_the_engine_checks_apart(report: Path) -> None:
    md = (report / "claims.md").read_text()
    lines = md.splitlines()
    start = lines.index("## Verdict matrix")
    table = [ln for ln in lines[start + 1:] if ln.startswith("|")][:5]
    assert start < 40 and lines.index(table[-1]) < 40
    assert [c.strip() for c in table[0].strip("|").split("|")] == ["claim", "effect", "m-small", "m-large"]
    assert [c.strip() for c in table[2].strip("|").split("|")][:3] == ["rv_contraction", "g (95% CI)",
                                                                       "PASS -1.50 [-2.00, -1.20]"]
    assert "PASS 0.950 [0.840, 1.03]" in table[3] and "ΔT" in table[4]
    matrix = md.split("## Claims", 1)[0]
    assert "cache_shapes_match_config" not in matrix and "rope_rerotation" not in matrix
    assert "Claim verdicts (claim × model): 3 PASS, 1 FAIL, 2 INCONCLUSIVE. Engine checks: 4 of 4 hold." in md
    engine = md.split("## Engine checks", 1)[1]
    assert "`rope_rerotation`" in engine and "4.45e-05" in engine and "| 0 " in engine  # a count stays an int
    assert "```" not in md and "DESIGN" not in md


def test_examples_md_shows_only_non_empty_continuations_with_the_empty_count(report: Path) -> None:
    text = (report / "examples.md").read_text()
    assert "1 of 2 continuations empty; showing 1 non-empty." in text
    blocks = text.split("```text\n")[1:]
    assert blocks and all(block.split("```", 1)[0].strip() for block in blocks)  # no empty code block
    assert "I notice myself noticing." in text and "pair p1, 12 tokens, score 0.400" in text


def test_csv_and_json_name_the_statistic_of_every_estimate(report: Path) -> None:
    header, *rows = (report / "claims.csv").read_text().splitlines()
    assert header.startswith("claim,version,model,verdict,inconclusive_reason,effect_type,effect_label,effect_units,"
                             "effect_direction,")
    payload = json.loads((report / "claims.json").read_text())
    effects = {r["claim"]: (r["effect_type"], r["effect_direction"]) for r in payload["records"]}
    assert effects["rv_contraction"] == ("hedges_g", "less")
    assert effects["alpha_monotone"] == ("transfer_difference", "increasing")
    assert effects["rope_rerotation"] == ("max_abs_logit_diff", "less")
    assert len(rows) == 10


def test_rebuild_of_an_old_report_adds_the_effect_fields_and_is_stable(tmp_path: Path) -> None:
    """The committed example (claims.json of the writers before this one): rebuilt, then rebuilt again, identical."""
    shutil.copy(EXAMPLE / "claims.json", tmp_path / "claims.json")
    assert main(["rebuild", str(tmp_path), "--out", str(tmp_path / "one")]) == 0
    assert main(["rebuild", str(tmp_path / "one"), "--out", str(tmp_path / "two")]) == 0
    for name in ("claims.md", "claims.csv", "claims.json", "claims.tex", "methods.md", "examples.md"):
        assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "two" / name).read_bytes(), name
    lines = (tmp_path / "one" / "claims.md").read_text().splitlines()
    matrix_rows = [i for i, ln in enumerate(lines) if ln.startswith("| persona_signature")]
    assert matrix_rows and matrix_rows[0] < 40  # the last claim row of the matrix
    assert "```text\n\n```" not in (tmp_path / "one" / "examples.md").read_text()


def test_committed_example_is_reproduced_by_a_rebuild(tmp_path: Path) -> None:
    if not (EXAMPLE / "claims.tex").exists():
        pytest.skip("the committed example predates the current writers (no claims.tex): regenerate it with a run")
    for f in EXAMPLE.iterdir():
        shutil.copy(f, tmp_path / f.name)
    assert main(["rebuild", str(tmp_path)]) == 0
    for name in ("claims.md", "claims.csv", "claims.json", "claims.tex"):
        assert (tmp_path / name).read_bytes() == (EXAMPLE / name).read_bytes(), name


def test_compare_a_run_with_itself_and_with_a_flipped_verdict(report: Path, tmp_path: Path, capsys) -> None:
    assert main(["compare", str(report), str(report), "--exact"]) == 0
    capsys.readouterr()
    flipped = tmp_path / "flipped"
    shutil.copytree(report, flipped)
    payload = json.loads((flipped / "claims.json").read_text())
    payload["records"][0]["verdict"] = "FAIL"
    (flipped / "claims.json").write_text(json.dumps(payload))
    assert main(["compare", str(report), str(flipped)]) != 0
    row = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("| rv_contraction ")
               and "| m-small " in line)
    assert [c.strip() for c in row.strip("|").split("|")][2:4] == ["PASS", "FAIL"] and "verdict changed" in row
    rows = (flipped / "samples.jsonl").read_text().replace("I notice myself", "You notice yourself")
    (flipped / "samples.jsonl").write_text(rows)
    payload["records"][0]["verdict"] = "PASS"
    (flipped / "claims.json").write_text(json.dumps(payload))
    assert main(["compare", str(report), str(flipped)]) == 0
    assert main(["compare", str(report), str(flipped), "--exact"]) == 1  # a changed continuation is a measured value


def test_rebuild_and_compare_run_without_torch(report: Path, tmp_path: Path) -> None:
    """The report path imports no torch at module level and loads no model: a GPU run's report rebuilds anywhere."""
    code = ("import sys\n"
            "from harness.report.__main__ import main\n"
            f"assert main(['rebuild', {str(report)!r}, '--out', {str(tmp_path / 'cli')!r}]) == 0\n"
            f"assert main(['compare', {str(report)!r}, {str(tmp_path / 'cli')!r}, '--exact']) == 0\n"
            "loaded = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'transformers'))\n"
            "assert not loaded, loaded\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=300,
                          check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert (tmp_path / "cli" / "claims.md").read_bytes() == (report / "claims.md").read_bytes()


def test_examples_show_each_continuation_with_its_score_and_the_prompts_it_came_from() -> None:
    """A reader can audit a high score at a glance: the score in the heading, the recipient's and the donor's prompt
    (clipped) under the text; a record without prompts (older runs) still renders."""
    from harness.report.examples import PROMPT_CHARS, record_examples

    sample = {"pair": "p1", "recipient": "base-1", "donor": "rec-1", "sample": 0, "text": "I watch the watching.",
              "n_tokens": 6, "empty": False, "degenerate": False, "score": 0.93}
    rec = {"claim": "kv_transfer", "model": "m", "details": {
        "samples": {"kv_main": [sample]}, "conditions": {"kv_main": {"condition": {"recipient": "baseline"}}},
        "prompts": {"base-1": "Explain how kettles boil water.", "rec-1": "Notice the noticing " * 40}}}
    lines = record_examples(rec)
    text = "\n".join(lines)
    assert "pair p1, 6 tokens, score 0.930" in text
    assert "> recipient prompt `base-1`: Explain how kettles boil water." in text
    donor = next(line for line in lines if line.startswith("> donor prompt `rec-1`: "))
    assert donor.endswith("…") and len(donor.split(": ", 1)[1]) == PROMPT_CHARS
    del rec["details"]["prompts"]
    assert not any(line.startswith(">") for line in record_examples(rec))
