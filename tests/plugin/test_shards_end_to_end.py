"""Issue 25: a run split into shards, merged and reduced without the model gives the serial run's claims.json.

Claim tests on toy-llama, cold: a serial run; the same run as three shards (``--shard i/3``), each into its own store;
``python -m harness.store merge``; the reduce (``--claims-cache read`` on the merged store) with model loading made
impossible. Every value of claims.json outside timings, provenance and rule text must be equal (compare --exact). A
reduce of a store that lacks one shard fails that shard's claim tests in one line naming the shard.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from harness.report.compare import differences, load_records
from harness.runtime.shards import owner, work_item

REPO = Path(__file__).resolve().parents[2]
CLAIM_FILES = ("claims/test_kv_transfer_specific.py", "claims/test_rv_contraction.py",
               "claims/test_partial_layer_fidelity.py")
CLAIM_IDS = ("kv_transfer_specific", "rv_contraction", "partial_layer_fidelity")
N, SHARDS = 4, 3

FORBID_LOADING = '''
"""A plugin for the reduce: any attempt to load a model's weights fails the run."""
import harness.models.loading as loading
import harness.plugin.fixtures as fixtures


def _forbidden(*args, **kwargs):
    raise AssertionError("the reduce tried to load a model")


loading.load_model = _forbidden
fixtures.load_model = _forbidden
'''

pytestmark = pytest.mark.slow


def _pytest(tmp_path: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    env_path = f"{tmp_path / 'plugins'}"
    return subprocess.run(
        [sys.executable, "-m", "pytest", *(str(REPO / f) for f in CLAIM_FILES), f"--rootdir={REPO}", "-q",
         "-p", "no:cacheprovider", "--model", "toy-llama", f"--n={N}", *extra],
        cwd=REPO, capture_output=True, text=True, check=False,
        env={**_environment(), "PYTHONPATH": f"{REPO}:{env_path}"},
    )


def _environment() -> dict[str, str]:
    import os

    env = {k: v for k, v in os.environ.items() if k not in ("GITHUB_STEP_SUMMARY", "PYTEST_ADDOPTS")}
    return {**env, "MPLBACKEND": "Agg", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}


def _merge(sources: list[Path], into: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "harness.store", "merge", *map(str, sources), "--into", str(into)],
                          cwd=REPO, capture_output=True, text=True, check=False, env=_environment())


def test_three_shards_merged_and_reduced_without_weights_equal_the_serial_run(tmp_path: Path) -> None:
    (tmp_path / "plugins").mkdir()
    (tmp_path / "plugins" / "forbid_loading.py").write_text(FORBID_LOADING)
    serial = _pytest(tmp_path, f"--store={tmp_path / 'serial-store'}", f"--report-dir={tmp_path / 'serial'}",
                     "--verdicts-exit", "report")
    assert serial.returncode == 0, serial.stdout[-3000:] + serial.stderr[-3000:]
    owners = {owner(work_item(c, "toy-llama"), SHARDS) for c in CLAIM_IDS}
    assert len(owners) > 1, "the claim tests all fall in one shard: the test would not exercise the merge"
    for i in range(SHARDS):
        shard = _pytest(tmp_path, f"--shard={i}/{SHARDS}", f"--store={tmp_path / f'shard{i}'}")
        assert shard.returncode == 0, shard.stdout[-3000:] + shard.stderr[-3000:]
        assert not (tmp_path / f"shard{i}" / "report").exists()
    merged = _merge([tmp_path / f"shard{i}" for i in range(SHARDS)], tmp_path / "merged")
    assert merged.returncode == 0, merged.stderr
    again = _merge([tmp_path / f"shard{i}" for i in range(SHARDS)], tmp_path / "merged")
    assert " 0 copied" in again.stdout, again.stdout
    reduce = _pytest(tmp_path, "-p", "forbid_loading", "--claims-cache=read", f"--store={tmp_path / 'merged'}",
                     f"--report-dir={tmp_path / 'reduce'}", "--verdicts-exit", "report")
    assert reduce.returncode == 0, reduce.stdout[-3000:] + reduce.stderr[-3000:]
    records_a, records_b = load_records(tmp_path / "serial"), load_records(tmp_path / "reduce")
    assert sorted(records_a) == sorted(records_b) and len(records_a) == len(CLAIM_IDS)
    assert all(r["verdict"] in ("PASS", "FAIL", "INCONCLUSIVE") for r in records_b.values())
    assert [d for key in records_a for d in differences(records_a[key], records_b[key])] == []
    def load_times(run: str) -> list[object]:
        records = json.loads((tmp_path / run / "claims.json").read_text())["records"]
        return [r["details"]["timings"]["model_load_s"] for r in records]

    assert None not in load_times("serial") and set(load_times("reduce")) == {None}  # the skeleton: nothing loaded

    # a store that lacks one shard: that shard's claim tests fail in one line naming it
    missing = sorted(owners)[-1]
    partial = _merge([tmp_path / f"shard{i}" for i in range(SHARDS) if i != missing], tmp_path / "partial")
    assert partial.returncode == 0, partial.stderr
    reduce = _pytest(tmp_path, "-p", "forbid_loading", "--claims-cache=read", f"--store={tmp_path / 'partial'}",
                     f"--report-dir={tmp_path / 'partial-report'}", "--verdicts-exit", "report")
    lines = [line for line in reduce.stdout.splitlines() if "owed by shard" in line]
    owed = [c for c in CLAIM_IDS if owner(work_item(c, "toy-llama"), SHARDS) == missing]
    assert len(lines) >= len(owed), reduce.stdout[-3000:]
    assert all(f"owed by shard {missing}/{SHARDS} (has not recorded itself" in line for line in lines)
    assert "Traceback" not in reduce.stdout
