"""Issue 13 acceptance: a revision series of two local checkpoints yields the training-dynamics table and figure.

Two tiny random-weight GPT-NeoX (Pythia-layout) models, drawn with different seeds, are saved as
``<tmp>/ckpts/step1000`` and ``<tmp>/ckpts/step8000`` and run through the real claim modules, plugins and report
with ``--model path:…/step1000,path:…/step8000``, as a user runs them (pytester subprocess). Random weights: the
verdicts mean nothing; the test checks that both checkpoints stay distinct rows, that each row names its checkpoint,
and that claims.md lines them up by step with the figure beside it.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.report.numbers import estimate_with_ci
from tests.engine.test_model_architectures import save_tiny

REPO = Path(__file__).resolve().parents[2]
STEPS = (1000, 8000)


@pytest.fixture
def checkpoints(tmp_path: Path) -> list[Path]:
    """Two checkpoints of one "run": same architecture, different random weights, step-named directories."""
    directories = []
    for seed, step in enumerate(STEPS, start=1):
        directory = tmp_path / "ckpts" / f"step{step}"
        directory.mkdir(parents=True)
        directories.append(save_tiny("gpt_neox", directory, seed=seed))
    return directories


def test_two_local_checkpoints_give_the_training_dynamics_table_and_figure(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, checkpoints: list[Path]
) -> None:
    monkeypatch.setenv("PYTHONPATH", str(REPO))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    out = tmp_path / "report"
    models = [f"path:{d}" for d in reversed(checkpoints)]  # given out of order: the view sorts by step
    result = pytester.runpytest_subprocess(
        str(REPO / "claims/test_rv_contraction.py"), str(REPO / "claims/test_cache_anatomy.py"),
        "-k", "rv_contraction or injection", f"--rootdir={REPO}", "-p", "no:cacheprovider",
        "--model", ",".join(models), "--n", "6", "--claims-cache", "off", "--report-dir", str(out),
    )
    claims_json = out / "claims.json"
    assert claims_json.exists(), result.stdout.str()[-3000:] + result.stderr.str()[-3000:]
    payload = json.loads(claims_json.read_text())

    rv = {r["model"]: r for r in payload["records"] if r["claim"] == "rv_contraction"}
    assert set(rv) == set(models)  # two checkpoints of one run: two rows
    assert rv[models[0]]["estimate"] != rv[models[1]]["estimate"]  # different weights, measured apart
    for model, step in zip(reversed(models), STEPS):
        checkpoint = payload["run"]["models"][model]["checkpoint"]
        assert checkpoint == {"series": f"path:{checkpoints[0].parent}", "label": f"step{step}", "step": step}

    markdown = (out / "claims.md").read_text()
    section = markdown[markdown.index("## Training dynamics"):markdown.index("## Claims")]
    header = next(line for line in section.splitlines() if line.startswith("| claim"))
    assert [cell.strip() for cell in header.strip("|").split("|")] == ["claim", "step 1000", "step 8000"]
    row = next(line for line in section.splitlines() if line.startswith("| `rv_contraction`"))
    cells = [cell.strip() for cell in row.strip("|").split("|")][1:]
    for cell, model in zip(cells, reversed(models)):
        assert cell == f"{estimate_with_ci(rv[model])} {rv[model]['verdict'][0]}"  # estimate [CI] verdict letter
    assert "cache_injection_equals_text" not in section  # an engine check, reported apart
    assert "![training_dynamics.png](training_dynamics.png)" in section
    assert (out / "training_dynamics.png").stat().st_size > 0 and (out / "training_dynamics.pdf").exists()
