"""Issue 24 end to end: models without a row through the real plugin (pytester subprocesses).

- A model whose layout cannot be inferred or proven is refused at start: exit 4 (usage error), one line naming
  what was found and why, before any claim runs.
- Tiny random-weight models of families without a row (granite, starcoder2, stablelm, gemma, cohere, helium and a
  mixture of experts, olmoe) run ``rv_contraction`` and ``kv_transfer`` through ``path:`` in one run, each with a
  report row, and the report's run details say their layout was inferred and proven at load.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.engine.test_inferred_layouts import INFERRED_FAMILIES
from tests.engine.test_model_architectures import COMMON, save_tiny_config, tiny_config

REPO = Path(__file__).resolve().parents[2]
ACCEPTANCE_FAMILIES = ("granite", "starcoder2", "stablelm", "gemma", "cohere", "helium", "olmoe")


def _run(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, *args: str) -> pytest.RunResult:
    monkeypatch.setenv("PYTHONPATH", str(REPO))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    return pytester.runpytest_subprocess(f"--rootdir={REPO}", "-p", "no:cacheprovider", "--claims-cache", "off", *args)


def test_a_model_whose_layout_cannot_be_inferred_is_refused_at_start_with_exit_4(
        pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    directory = save_tiny_config(tiny_config(dict(model_type="gpt2", vocab_size=49152, n_embd=64, n_layer=2, n_head=4,
                                                  n_positions=256)), tmp_path / "tiny-gpt2")
    result = _run(pytester, monkeypatch, str(REPO / "claims/test_rv_contraction.py"), "--model", f"path:{directory}",
                  "--report-dir", str(tmp_path / "report"))
    assert result.ret == 4, result.stdout.str()[-2000:] + result.stderr.str()[-2000:]
    errors = [line for line in result.stderr.lines if line.startswith("ERROR:")]
    assert len(errors) == 1, result.stderr.str()
    assert f"--model path:{directory}: model_type 'gpt2'" in errors[0] and "learned absolute positions" in errors[0]
    assert "passed" not in result.stdout.str() and not (tmp_path / "report" / "claims.json").exists()


@pytest.mark.slow
def test_families_without_a_row_yield_rv_contraction_and_kv_transfer_rows(
        pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    names = [f"path:{save_tiny_config(tiny_config({**COMMON, **INFERRED_FAMILIES[f]}), tmp_path / f)}"
             for f in ACCEPTANCE_FAMILIES]
    out = tmp_path / "report"
    result = _run(pytester, monkeypatch, str(REPO / "claims/test_rv_contraction.py"),
                  str(REPO / "claims/test_kv_transfer.py"), "--model", ",".join(names), "--n", "4",
                  "--report-dir", str(out), "--verdicts-exit", "report")
    assert (out / "claims.json").exists(), result.stdout.str()[-3000:] + result.stderr.str()[-3000:]
    records = json.loads((out / "claims.json").read_text())["records"]
    for name in names:
        rows = {r["claim"]: r for r in records if r["model"] == name}
        assert {"rv_contraction", "kv_transfer"} <= set(rows), (name, result.stdout.str()[-3000:])
        assert all(rows[c]["verdict"] in ("PASS", "FAIL", "INCONCLUSIVE") for c in ("rv_contraction", "kv_transfer"))
    proven = [line for line in result.stderr.lines if "layout inferred (proven at load)" in line]
    assert len(proven) == len(names), result.stderr.str()[-3000:]
    details = (out / "claims.md").read_text()
    assert details.count("(inferred (proven at load))") == len(names)
