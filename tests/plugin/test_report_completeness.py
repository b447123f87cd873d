"""A report says whether it is complete (issue 15): an interrupted or stopped run's report says so, in claims.md,
claims.json's ``run.status`` and the terminal, with a NOT RUN row per selected claim test that never reported; the
same command run again completes it.

The interrupted run is real: three cache-anatomy claims on the tiny random ``toy-llama``, in a pytester subprocess,
with a plugin that raises KeyboardInterrupt (as Ctrl-C does) when the second claim test starts.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
ANATOMY = "claims/test_cache_anatomy.py"
ANATOMY_CLAIMS = ("cache_shapes_match_config", "cache_injection_equals_text", "rope_rerotation")

CTRL_C_PLUGIN = '''
"""Press Ctrl-C when the second claim test starts (after the first one reported its call phase)."""
import pytest

calls = []


def pytest_runtest_logreport(report):
    if report.when == "call":
        calls.append(report.nodeid)


def pytest_runtest_setup(item):
    if calls:
        raise KeyboardInterrupt
'''


@pytest.fixture
def env(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.Pytester:
    monkeypatch.setenv("PYTHONPATH", f"{REPO}:{pytester.path}")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.setenv("KVCLAIMS_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    return pytester


def _anatomy(pytester: pytest.Pytester, out: Path, *extra: str) -> tuple[pytest.RunResult, dict, str]:
    result = pytester.runpytest_subprocess(
        str(REPO / ANATOMY), f"--rootdir={REPO}", "-p", "no:cacheprovider", "--model", "toy-llama", "--n", "2",
        "--claims-cache", "off", "--report-dir", str(out), "-k", " or ".join(ANATOMY_CLAIMS), *extra)
    claims_json = out / "claims.json"
    assert claims_json.exists(), result.stdout.str()[-3000:] + result.stderr.str()[-3000:]
    return result, json.loads(claims_json.read_text()), (out / "claims.md").read_text()


def test_interrupted_run_says_so_with_not_run_rows_and_a_rerun_completes_it(env: pytest.Pytester, tmp_path: Path):
    env.makepyfile(ctrl_c_after_first_claim=CTRL_C_PLUGIN)
    out = tmp_path / "report"
    result, payload, md = _anatomy(env, out, "-p", "ctrl_c_after_first_claim")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    status = payload["run"]["status"]
    assert status["interrupted"] is True and status["complete"] is False and status["label"] == "INTERRUPTED"
    assert status["exit_status"] == 2 and status["exit_status_name"] == "INTERRUPTED"
    assert status["selected_claim_tests"] == 3 and status["not_run"] == 2
    verdicts = {r["claim"]: r["verdict"] for r in payload["records"]}
    assert set(verdicts) == set(ANATOMY_CLAIMS)
    ran = [c for c, v in verdicts.items() if v != "NOT RUN"]
    assert len(ran) == 1 and verdicts[ran[0]] in {"PASS", "FAIL", "INCONCLUSIVE"}
    not_run = [r for r in payload["records"] if r["verdict"] == "NOT RUN"]
    assert all("interrupted before this test ran" in r["explanation"] and r["model"] == "toy-llama" for r in not_run)
    assert "INTERRUPTED: this report is incomplete" in md and "2 NOT RUN" in md
    assert re.search(r"\| NOT RUN +\|", md)  # an engine-check row (table cells are padded)
    assert "claim verdicts: INTERRUPTED, report incomplete" in result.stdout.str()
    assert "run: INTERRUPTED (KeyboardInterrupt" in result.stdout.str()

    rerun, payload, md = _anatomy(env, out)  # the same command without the interruption
    assert payload["run"]["status"]["complete"] is True and payload["run"]["status"]["not_run"] == 0
    assert "NOT RUN" not in {r["verdict"] for r in payload["records"]} and len(payload["records"]) == 3
    assert "this report is incomplete" not in md and "Run status: complete: all 3 selected claim tests reported" in md
    assert "claim verdicts: " not in rerun.stdout.str() and "run: complete" in rerun.stdout.str()
