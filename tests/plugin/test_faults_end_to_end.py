"""Issue 28 end to end: faults found before any claim runs end the run as a usage error (exit 4), in one line."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.engine.test_finite_probe import save_broken_llama

REPO = Path(__file__).resolve().parents[2]


def _run(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, *args: str) -> pytest.RunResult:
    monkeypatch.setenv("PYTHONPATH", str(REPO))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    return pytester.runpytest_subprocess(f"--rootdir={REPO}", "-p", "no:cacheprovider", "--claims-cache", "off",
                                         str(REPO / "claims/test_rv_contraction.py"), *args)


def _one_error_line(result: pytest.RunResult) -> str:
    errors = [line for line in result.stderr.lines if line.startswith("ERROR:")]
    assert len(errors) == 1, result.stdout.str()[-2000:] + result.stderr.str()[-2000:]
    return errors[0]


def test_a_nan_checkpoint_is_refused_at_start_with_exit_4(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch,
                                                            tmp_path: Path) -> None:
    directory = save_broken_llama(tmp_path / "broken", layer=1)
    result = _run(pytester, monkeypatch, "--model", f"path:{directory}", "--report-dir", str(tmp_path / "report"))
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    line = _one_error_line(result)
    assert f"--model path:{directory}: path:{directory}: activations are not finite (NaN) from the output of " \
           "decoder layer 1" in line
    assert not (tmp_path / "report").exists()


def test_a_report_dir_that_refuses_files_is_refused_at_start(pytester: pytest.Pytester,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    result = _run(pytester, monkeypatch, "--model", "toy-llama", "--report-dir", "/proc/kvclaims-report")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert _one_error_line(result).startswith("ERROR: --report-dir: /proc/kvclaims-report")
