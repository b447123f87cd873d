"""Issue 15, item 2: a run's numbers do not depend on how it is parallelised.

The behavioural claims rank and average embedding scores; before the scores were computed text by text on one
thread, ``-n 2`` (each worker scoring its own batches with one thread) and a serial run (two threads, other
batch neighbours) differed in the 8th digit and flipped exact rank ties (``donor_level_transfer_trend`` changed
sign). Here the same claims run cold (no measurement store) three ways on toy-llama, and claims.json must agree
on every value outside timings and provenance.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.report.compare import differences, load_records

REPO = Path(__file__).resolve().parents[2]
CLAIM_FILES = ("claims/test_level_trends_behaviour.py",)  # ranks of scores: where tied scores flipped a sign
N = 6

pytestmark = pytest.mark.slow


def _run(pytester: pytest.Pytester, out: Path, *extra: str) -> dict:
    result = pytester.runpytest_subprocess(
        *(str(REPO / f) for f in CLAIM_FILES), f"--rootdir={REPO}", "-p", "no:cacheprovider", "--model", "toy-llama",
        "--n", str(N), "--claims-cache", "off", "--report-dir", str(out), *extra,
    )
    claims_json = out / "claims.json"
    assert claims_json.exists(), result.stdout.str()[-3000:] + result.stderr.str()[-3000:]
    return json.loads(claims_json.read_text())


def _measured_differences(a: Path, b: Path) -> list[tuple[str, object, object]]:
    """Every differing value of the two runs' records outside timings, provenance and rule text."""
    records_a, records_b = load_records(a), load_records(b)
    assert records_a.keys() == records_b.keys()
    return [(f"{key}: {path}", x, y) for key in records_a for path, x, y in differences(records_a[key], records_b[key])]


def test_serial_xdist_and_one_thread_give_identical_claims(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch,
                                                           tmp_path: Path) -> None:
    monkeypatch.setenv("PYTHONPATH", str(REPO))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    serial = _run(pytester, tmp_path / "serial")
    xdist = _run(pytester, tmp_path / "xdist", "-n", "2")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    one_thread = _run(pytester, tmp_path / "one-thread")

    behavioural = [r for r in serial["records"] if (r.get("details") or {}).get("conditions")]
    assert behavioural, "no behavioural record ran: the test would compare nothing"
    assert any(r["estimate"] is not None for r in serial["records"])
    assert _measured_differences(tmp_path / "serial", tmp_path / "xdist") == []
    assert _measured_differences(tmp_path / "serial", tmp_path / "one-thread") == []
    # the thread counts are recorded: two workers with one torch thread each, and the controller's environment
    assert {w.get("torch_threads") for w in xdist["run"]["workers"].values()} == {1}
    assert len(xdist["run"]["workers"]) == 2
    assert one_thread["run"]["threads"]["OMP_NUM_THREADS"] == "1"
    assert serial["run"]["threads"]["torch_intra_op"] is not None
