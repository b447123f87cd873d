"""Issue 13: progress a user can see — a line per batch of continuations in the terminal output of a claims run,
serial and under pytest-xdist (where workers print nothing of their own), past pytest's output capture."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from harness.runtime.progress import ProgressMeter, set_sink

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("workers", [(), ("-n", "2")], ids=["serial", "xdist"])
def test_progress_lines_appear_in_the_terminal(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch,
                                               tmp_path: Path, workers: tuple[str, ...]) -> None:
    monkeypatch.setenv("PYTHONPATH", str(REPO))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    result = pytester.runpytest_subprocess(
        str(REPO / "claims" / "test_kv_transfer.py"), f"--rootdir={REPO}", "-p", "no:cacheprovider",
        "--model", "toy-llama", "--limit", "3", "--claims-cache", "off", "--report-dir", str(tmp_path / "r"), *workers,
    )
    err = result.stderr.str()
    lines = [ln for ln in err.splitlines() if "[kvclaims] toy-llama" in ln]
    assert any(re.search(r"toy-llama natural_baseline: 3/3 continuations, .* tok/s, done in", ln) for ln in lines), err
    assert any("toy-llama kv_main: 3/3 continuations" in ln for ln in lines), err
    if workers:
        assert all(re.match(r"\[gw\d\] \[kvclaims\]", ln) for ln in lines), lines


def test_meter_counts_rate_and_eta() -> None:
    seen: list[str] = []
    set_sink(seen.append)
    try:
        meter = ProgressMeter("m cond", 4, "continuations")
        meter.started -= 10.0  # ten seconds ago
        first = meter.advance(1, 100)
        last = meter.advance(3, 300)
    finally:
        set_sink(None)
    assert seen == [first, last]
    assert first.startswith("[kvclaims] m cond: 1/4 continuations, 100 tokens, ") and "ETA 0:00:3" in first
    assert re.search(r"4/4 continuations, 400 tokens, \d+\.\d tok/s, done in 0:00:1\d", last)
