"""Under ``-n 2 --dist loadgroup`` every model's claim tests run on one worker (harness.runtime.xdist_scheduling)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from harness.runtime.xdist_scheduling import model_of_nodeid

REPO = Path(__file__).resolve().parents[2]


def test_model_is_read_from_the_parameter_id() -> None:
    models = ["smollm2-135m", "gemma3-270m", "toy-llama"]
    assert model_of_nodeid("claims/test_a.py::test_x[smollm2-135m]", models) == "smollm2-135m"
    assert model_of_nodeid("claims/test_a.py::test_x[gemma3-270m-0.5]", models) == "gemma3-270m"
    assert model_of_nodeid("claims/test_a.py::test_x[1-toy-llama]", models) == "toy-llama"
    assert model_of_nodeid("tests/unit/test_b.py::test_y", models) is None
    assert model_of_nodeid("tests/unit/test_b.py::test_y[other]", models) is None


def test_each_model_runs_on_one_worker(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "claims/test_cache_anatomy.py", "-k", "shapes or rerotation",
         "--model", "toy-llama,toy-gemma3", "-n", "2", "--dist", "loadgroup", "-v", "-p", "no:cacheprovider",
         "--report-dir", str(tmp_path / "report")],
        cwd=REPO, capture_output=True, text=True, timeout=600, check=False,
    )
    rows = re.findall(r"^\[(gw\d)\] .*?\[(toy-llama|toy-gemma3)\]", result.stdout, flags=re.M)
    assert len(rows) == 4, result.stdout[-3000:]
    workers = {model: {gw for gw, m in rows if m == model} for model in ("toy-llama", "toy-gemma3")}
    assert all(len(w) == 1 for w in workers.values()), workers
    assert workers["toy-llama"] != workers["toy-gemma3"]
