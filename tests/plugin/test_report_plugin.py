"""The report plugin end to end, in pytester subprocesses (with and without pytest-xdist).

The inner suite is synthetic: fabricated numbers, computed with harness.stats, for two models named
``synthetic-demo`` and ``synthetic-demo-b``, every record marked ``details["synthetic"] = True``. It covers
PASS, FAIL, INCONCLUSIVE (underpowered), SKIPPED and ERROR rows and the data of every figure kind.

Set ``CLAIMS_EXAMPLE_DIR=reports/example-synthetic`` to write the example report there (see that README).
"""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
from pathlib import Path

import pytest

from harness.registry import get_claim

REPO = Path(__file__).resolve().parents[2]

INNER_CONFTEST = '''
import pytest

pytest_plugins = ["harness.report.plugin"]


def pytest_addoption(parser):
    # the harness's own plugin defines these in the real suite; the report plugin only reads them
    parser.addoption("--model", default="synthetic-demo,synthetic-demo-b")
    parser.addoption("--report-dir", dest="report_dir", default=None)
    parser.addoption("--seed", type=int, default=0)
    parser.addoption("--verdicts-exit", dest="verdicts_exit", default="strict", choices=("strict", "report"))


def pytest_generate_tests(metafunc):
    if "lm" in metafunc.fixturenames:
        models = [m for m in metafunc.config.getoption("model").split(",") if m]
        params = [pytest.param(m, id=m, marks=pytest.mark.xdist_group(m)) for m in sorted(models)]
        metafunc.parametrize("lm", params, indirect=True, scope="session")


@pytest.fixture(scope="session")
def lm(request):
    return request.param


@pytest.fixture
def weights_missing(lm):
    raise RuntimeError(f"synthetic setup failure: no weights for {lm}")
'''

INNER_TESTS = '''
"""SYNTHETIC claim tests: fabricated data that exercise the report plumbing; not a measurement."""
import sys
import zlib

import numpy as np
import pytest

from harness import stats as hs
from harness.registry import get_claim
from harness.claim.verdicts import assert_pass, evaluate, record_claim

PROVENANCE = {"source": "synthetic: no model loaded", "revision": None, "sha256": None, "dtype": "float32",
              "device": "cpu"}


def rng_for(lm, claim):
    return np.random.default_rng(zlib.crc32(f"{lm}/{claim}".encode()))


def finish(record_property, claim, lm, details, **numbers):
    base = {"synthetic": True, "model_provenance": PROVENANCE, "prompt_bank_sha256": "synthetic-bank"}
    result = evaluate(get_claim(claim), model=lm, details=base | details, **numbers)
    record_claim(record_property, result)
    print(f"progress-bar noise for {claim}", file=sys.stderr)  # captured output of a verdict is not shown
    assert_pass(result)


def ratio(num_a, num_b, den_a, den_b):
    return (np.mean(num_a) - np.mean(num_b)) / (np.mean(den_a) - np.mean(den_b))


@pytest.mark.claim("rv_contraction")
def test_rv_contraction(lm, record_property):
    rng = rng_for(lm, "rv_contraction")
    rec, base = rng.normal(0.55, 0.08, 40), rng.normal(0.75, 0.08, 40)
    ci = hs.bootstrap_ci(hs.hedges_g, rec, base, n_resamples=999, rng=rng)
    depth = np.linspace(0.0, 1.0, 30)
    effect = -2.2 * np.exp(-((depth - 0.8) / 0.2) ** 2) + rng.normal(0, 0.05, 30)
    sweep = {"layers": list(range(30)), "depth_fraction": depth.tolist(), "estimate": effect.tolist(),
             "ci_low": (effect - 0.4).tolist(), "ci_high": (effect + 0.4).tolist(), "fixed_layer": 25,
             "effect_label": "Hedges g (synthetic)"}
    finish(record_property, "rv_contraction", lm, {"rv_by_group": {"recursive": rec.tolist(),
           "baseline": base.tolist()}, "layer_sweep": sweep},
           estimate=ci.estimate, ci_low=ci.low, ci_high=ci.high, p_value=hs.welch_t(rec, base, "less").p, n=40)


@pytest.mark.claim("kv_transfer")
def test_kv_transfer(lm, record_property):
    rng = rng_for(lm, "kv_transfer")
    true_t = 1.0 if lm == "synthetic-demo" else 0.4
    b = rng.normal(0.1, 0.1, 60)
    a = b + rng.normal(0.6, 0.1, 60)
    patched = b + true_t * (a - b) + rng.normal(0, 0.05, 60)
    ci = hs.bootstrap_ci(lambda p, b_, a_: ratio(p, b_, a_, b_), patched, b, a, paired=True, n_resamples=999,
                         rng=rng)
    quarters = {"labels": ["Q1", "Q2", "Q3", "Q4", "second half"], "estimate": [0.05, 0.1, 0.5, 0.6, ci.estimate],
                "ci_low": [-0.05, 0.0, 0.35, 0.45, ci.low], "ci_high": [0.15, 0.2, 0.65, 0.75, ci.high]}
    examples = {
        "baseline (natural)": ["[synthetic] The capital of France is Paris, a city on the Seine."],
        "recursive (natural)": ["[synthetic] I notice myself noticing the act of noticing."],
        "patched (baseline ⊕ recursive KV)": ["[synthetic] Paris is where I find myself observing the observer."],
        "control: shuffled": ["[synthetic] The capital of France is Paris, known for its museums."],
    }
    finish(record_property, "kv_transfer", lm, {"transfer_by_range": quarters, "examples": examples},
           estimate=ci.estimate, ci_low=ci.low, ci_high=ci.high,
           p_value=hs.wilcoxon_paired(patched, b, "greater").p_value, n=get_claim("kv_transfer").planned_n)


@pytest.mark.claim("alpha_monotone")
def test_alpha_monotone(lm, record_property):
    rng = rng_for(lm, "alpha_monotone")
    alphas = np.array([0.0, 0.25, 0.5, 0.75, 1.0])
    scores = alphas[None, :] + rng.normal(0, 0.1, (30, 5))
    steps = [hs.bootstrap_ci(lambda hi, lo: float(np.mean(hi - lo)), scores[:, k + 1], scores[:, k], paired=True,
                             n_resamples=999, rng=rng) for k in range(4)]
    means = scores.mean(axis=0)
    sem = scores.std(axis=0, ddof=1) / np.sqrt(30)
    curve = {"alpha": alphas.tolist(), "estimate": means.tolist(), "ci_low": (means - 1.96 * sem).tolist(),
             "ci_high": (means + 1.96 * sem).tolist(), "effect_label": "transfer T (synthetic)"}
    finish(record_property, "alpha_monotone", lm, {"alpha_curve": curve}, estimate=float(means[-1] - means[0]),
           p_value=hs.page_trend(scores).p_value, step_cis=[(s.low, s.high) for s in steps],
           n=get_claim("alpha_monotone").planned_n)


@pytest.mark.claim("v_patch_null")
def test_v_patch_null(lm, record_property):
    rng = rng_for(lm, "v_patch_null")
    t = rng.normal(0.0, 0.2, 30)
    ci = hs.bootstrap_ci(np.mean, t, level=0.90, n_resamples=999, rng=rng)
    finish(record_property, "v_patch_null", lm, {}, estimate=ci.estimate, ci_low=ci.low, ci_high=ci.high, n=30)


@pytest.mark.claim("persona_signature")
def test_persona_signature(lm, record_property):
    pytest.skip("prompt bank has no 'persona' group")


@pytest.mark.claim("geometry_transfers")
def test_geometry_transfers(lm, weights_missing, record_property):
    raise AssertionError("not reached: the fixture errors")
'''

CRASH_TESTS = '''
import os
import pytest


@pytest.mark.claim("rope_rerotation")
def test_rope_rerotation(lm):
    os._exit(3)
'''

VOLATILE_HEADER = {"date_utc", "timings", "workers", "command", "invocation_args", "run_id"}


def _setup(pytester: pytest.Pytester, tests: str = INNER_TESTS) -> None:
    pytester.makeconftest(INNER_CONFTEST)
    pytester.makepyfile(test_synthetic_claims=tests)
    os.environ.setdefault("MPLBACKEND", "Agg")


def _run(pytester: pytest.Pytester, out: Path, *args: str) -> tuple[pytest.RunResult, dict]:
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--report-dir", str(out), *args)
    return result, json.loads((out / "claims.json").read_text())


def _stable(payload: dict) -> dict:
    payload = copy.deepcopy(payload)
    for rec in payload["records"]:
        rec.pop("run")
    for key in VOLATILE_HEADER:
        payload["run"].pop(key)
    return payload


@pytest.fixture
def inner_env(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    monkeypatch.setenv("PYTHONPATH", str(REPO))
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    return pytester


def test_serial_and_xdist_runs_give_identical_reports(inner_env: pytest.Pytester, tmp_path: Path):
    _setup(inner_env)
    serial, a = _run(inner_env, tmp_path / "n0", "-n", "0")
    parallel, b = _run(inner_env, tmp_path / "n2", "-n", "2", "--dist", "loadgroup")
    assert _stable(a) == _stable(b)
    assert {r["run"]["worker"] for r in b["records"]} <= {"gw0", "gw1"}
    assert {r["run"]["worker"] for r in a["records"]} == {"main"}
    assert set(b["run"]["workers"]) == {"gw0", "gw1"}
    for run in (serial, parallel):  # a FAIL verdict is a result: one line with its explanation, no traceback
        out = run.stdout.str()
        assert "kv_transfer [synthetic-demo-b] FAIL: transfer_ratio" in out
        assert "raise ClaimNotPassed" not in out and "assert_pass(result)" not in out
        assert "progress-bar noise for kv_transfer" not in out

    rows = {(r["claim"], r["model"]): r for r in a["records"]}
    assert [(r["claim"], r["model"]) for r in a["records"]][:4] == [
        ("rv_contraction", "synthetic-demo"), ("rv_contraction", "synthetic-demo-b"),
        ("v_patch_null", "synthetic-demo"), ("v_patch_null", "synthetic-demo-b")]  # registry × model order
    assert rows[("rv_contraction", "synthetic-demo")]["verdict"] == "PASS"
    assert rows[("kv_transfer", "synthetic-demo-b")]["verdict"] == "FAIL"  # a failing claim keeps its row
    assert rows[("v_patch_null", "synthetic-demo")]["verdict"] == "INCONCLUSIVE"
    assert f"n = 30 < planned {get_claim('v_patch_null').planned_n}" in rows[("v_patch_null", "synthetic-demo")]["explanation"]
    skipped = rows[("persona_signature", "synthetic-demo")]
    assert skipped["verdict"] == "SKIPPED" and "no 'persona' group" in skipped["explanation"]
    errored = rows[("geometry_transfers", "synthetic-demo-b")]
    assert errored["verdict"] == "ERROR" and "synthetic setup failure" in errored["explanation"]
    assert len(a["records"]) == 12

    rv = rows[("rv_contraction", "synthetic-demo")]
    assert rv["p_adjusted"] == pytest.approx(min(1.0, 8 * rv["p_value"]))  # Holm, one present of m = 8
    assert rv["family"] == "geometry" and rv["details"]["synthetic"] is True
    assert a["run"]["synthetic"] is True and a["run"]["prompt_bank_sha256"] == "synthetic-bank"
    assert a["run"]["seed"] == 0 and a["run"]["models"]["synthetic-demo"]["device"] == "cpu"

    for res in (serial, parallel):
        res.assert_outcomes(passed=5, failed=3, skipped=2, errors=2)
        text = res.stdout.str()
        assert "claim verdicts" in text and "INCONCLUSIVE" in text
        assert res.stdout.lines[-1].startswith("=") and "3 failed, 5 passed, 2 skipped, 2 errors" in res.stdout.lines[-1]
    md = (tmp_path / "n0" / "claims.md").read_text()
    assert "## Verdict matrix" in md and "Synthetic data" in md and "## Examples" not in md
    assert md.count(f"### `rv_contraction` v{get_claim('rv_contraction').version}") == 1
    examples = (tmp_path / "n0" / "examples.md").read_text()
    assert "## `kv_transfer` × `synthetic-demo`" in examples and "I notice myself noticing" in examples
    assert "\\label{tab:matrix}" in (tmp_path / "n2" / "claims.tex").read_text()
    assert "## Claims: estimators, decision rules, planned n" in (tmp_path / "n2" / "methods.md").read_text()
    for png in ("rv_by_group-rv_contraction.png", "layer_sweep-rv_contraction.png",
                "alpha_dose_response-alpha_monotone.png", "transfer_by_layer_range-kv_transfer.png"):
        assert (tmp_path / "n2" / png).stat().st_size > 5000
        assert f"]({png})" in md
    csv_lines = (tmp_path / "n0" / "claims.csv").read_text().splitlines()
    assert len(csv_lines) == 13 and csv_lines[0].startswith("claim,version,model,verdict,inconclusive_reason,effect_type")


def test_worker_crash_still_gives_an_error_row(inner_env: pytest.Pytester, tmp_path: Path):
    _setup(inner_env, CRASH_TESTS)
    result, payload = _run(inner_env, tmp_path / "crash", "-n", "2", "--dist", "loadgroup", "--max-worker-restart", "0")
    rows = {r["model"]: r for r in payload["records"]}
    assert set(rows) == {"synthetic-demo", "synthetic-demo-b"}
    assert all(r["claim"] == "rope_rerotation" and r["verdict"] == "ERROR" for r in rows.values())
    assert any("crashed" in r["explanation"] for r in rows.values())
    assert result.ret != 0


def test_unknown_claim_id_is_a_usage_error(inner_env: pytest.Pytester, tmp_path: Path):
    _setup(inner_env, "import pytest\n\n@pytest.mark.claim('no_such_claim')\ndef test_x(lm):\n    pass\n")
    result = inner_env.runpytest_subprocess("-p", "no:cacheprovider", "--report-dir", str(tmp_path / "u"))
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "no_such_claim" in result.stderr.str() and "rv_contraction" in result.stderr.str()


def test_standalone_without_harness_options(inner_env: pytest.Pytester):
    """No --model/--report-dir/--seed defined: the report goes to reports/<run-id>/ under the rootdir."""
    inner_env.makeconftest('pytest_plugins = ["harness.report.plugin"]\n')
    inner_env.makepyfile(test_one='''
import pytest
from harness.registry import get_claim
from harness.claim.verdicts import evaluate, record_claim

@pytest.mark.claim("cache_shapes_match_config")
def test_cache_shapes_match_config(record_property):
    r = evaluate(get_claim("cache_shapes_match_config"), model="toy", estimate=0, n=8)
    record_claim(record_property, r)
''')
    result = inner_env.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    reports = list((inner_env.path / "reports").glob("*/claims.json"))
    assert len(reports) == 1 and reports[0].parent.name.endswith("-nogit")
    record = json.loads(reports[0].read_text())["records"][0]
    assert record["verdict"] == "PASS" and record["model"] == "toy" and record["run"]["worker"] == "main"


def test_no_claim_tests_writes_nothing(inner_env: pytest.Pytester):
    inner_env.makeconftest('pytest_plugins = ["harness.report.plugin"]\n')
    inner_env.makepyfile(test_plain="def test_plain():\n    assert True\n")
    result = inner_env.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    assert not (inner_env.path / "reports").exists()
    assert "claim verdicts" not in result.stdout.str()


@pytest.mark.skipif(not os.environ.get("CLAIMS_EXAMPLE_DIR"), reason="set CLAIMS_EXAMPLE_DIR to write the example")
def test_write_example_report(inner_env: pytest.Pytester, tmp_path: Path):
    target = REPO / os.environ["CLAIMS_EXAMPLE_DIR"]
    _setup(inner_env)
    _run(inner_env, tmp_path / "example", "-n", "2", "--dist", "loadgroup")
    target.mkdir(parents=True, exist_ok=True)
    for f in (tmp_path / "example").iterdir():
        shutil.copy2(f, target / f.name)


@pytest.mark.parametrize("workers", [("-n", "0"), ("-n", "2", "--dist", "loadgroup")], ids=["serial", "xdist"])
def test_a_run_stopped_by_x_says_stopped_with_not_run_rows(inner_env: pytest.Pytester, tmp_path: Path,
                                                           workers: tuple[str, ...]):
    """``-x`` stops at the first non-passing claim: the report names the stop and the claims that did not run."""
    _setup(inner_env)
    result, payload = _run(inner_env, tmp_path / "x", "-x", *workers)
    status = payload["run"]["status"]
    assert status["complete"] is False and status["label"] == "STOPPED" and status["interrupted"] is False
    # under xdist each worker may fail once before the controller stops them
    assert re.search(r"stopping after \d+ failures", status["stopped"])
    assert status["selected_claim_tests"] == 12 and len(payload["records"]) == 12
    not_run = [r for r in payload["records"] if r["verdict"] == "NOT RUN"]
    assert len(not_run) == status["not_run"] > 0
    assert all("the session stopped before this test ran" in r["explanation"] for r in not_run)
    assert all(r["p_adjusted"] is None for r in not_run)
    md = (tmp_path / "x" / "claims.md").read_text()
    assert "STOPPED: this report is incomplete" in md and f"{status['not_run']} NOT RUN" in md
    assert "claim verdicts: STOPPED, report incomplete" in result.stdout.str()


def test_a_complete_run_says_complete(inner_env: pytest.Pytester, tmp_path: Path):
    _setup(inner_env)
    result, payload = _run(inner_env, tmp_path / "ok", "-n", "0", "-k", "rv_contraction")
    assert payload["run"]["status"] == {
        "complete": True, "label": "complete", "exit_status": 0, "exit_status_name": "OK", "interrupted": False,
        "stopped": None, "selected_claim_tests": 2, "not_run": 0}
    assert "Run status: complete: all 2 selected claim tests reported (exit status 0 OK)" in (
        tmp_path / "ok" / "claims.md").read_text()
    assert "run: complete" in result.stdout.str()


def test_verdicts_exit_report_exits_zero_once_a_complete_report_is_written(inner_env: pytest.Pytester, tmp_path: Path):
    """Issue 13: ``--verdicts-exit report`` (tox -e claims) ends 0 with FAIL verdicts in a complete report; strict, the
    default, keeps pytest's status (a replication check); an incomplete report never turns into exit 0."""
    _setup(inner_env)
    strict, _ = _run(inner_env, tmp_path / "strict", "-k", "kv_transfer")
    assert strict.ret == pytest.ExitCode.TESTS_FAILED
    report, payload = _run(inner_env, tmp_path / "report", "-k", "kv_transfer", "--verdicts-exit", "report")
    assert report.ret == pytest.ExitCode.OK
    assert any(r["verdict"] == "FAIL" for r in payload["records"]) and payload["run"]["status"]["complete"]
    report.stdout.fnmatch_lines(["report: *", "--verdicts-exit report: exit 0 (pytest's own status: TESTS_FAILED)"])
    # the summary (claims.md, claims.tex, the terminal) says exit 0 under the mode, not pytest's TESTS_FAILED
    assert payload["run"]["status"]["verdicts_exit"] == "report"
    summary = next(p for p in (tmp_path / "report" / "claims.md").read_text(encoding="utf-8").split("\n\n")
                   if p.startswith("Run "))
    assert "exit status 0 under --verdicts-exit report" in summary and "TESTS_FAILED" not in summary
    assert "TESTS_FAILED" not in (tmp_path / "report" / "claims.tex").read_text(encoding="utf-8")
    stopped, payload = _run(inner_env, tmp_path / "stopped", "-x", "--verdicts-exit", "report")
    assert not payload["run"]["status"]["complete"] and stopped.ret != pytest.ExitCode.OK


@pytest.mark.parametrize("mode", ["strict", "report"])
def test_an_error_is_not_a_verdict_and_fails_the_run_in_every_mode(inner_env: pytest.Pytester, tmp_path: Path,
                                                                   mode: str):
    """Issue 28: a claim test that ends in ERROR (here: weights missing at setup) makes the run exit non-zero even
    under ``--verdicts-exit report``, and the terminal says which and why."""
    _setup(inner_env)
    result, payload = _run(inner_env, tmp_path / mode, "-k", "geometry_transfers or kv_transfer", "--verdicts-exit", mode)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    assert payload["run"]["status"]["complete"] and any(r["verdict"] == "ERROR" for r in payload["records"])
    assert "verdicts_exit" not in payload["run"]["status"]  # the run did not exit 0: its status says TESTS_FAILED
    result.stdout.fnmatch_lines(["2 claim test(s) ended in ERROR, which is not a verdict, so the run fails under every "
                                 "--verdicts-exit mode: geometry_transfers [[]synthetic-demo[]]: *synthetic setup failure*"])


SLOW_TESTS = INNER_TESTS + '''

@pytest.mark.claim("rope_rerotation")
def test_rope_rerotation(lm, tmp_path_factory):
    import os, time
    marker = os.environ["SIGTERM_MARKER"]
    open(marker, "a").write(lm + "\\n")  # the run is under way: the outer test may send its signal now
    time.sleep(60)
'''


@pytest.mark.parametrize("workers", ["0", "2"])
def test_sigterm_writes_the_report_marked_interrupted_by_the_signal(inner_env: pytest.Pytester, tmp_path: Path,
                                                                      workers: str):
    """Issue 28: a scheduler's SIGTERM mid-run ends the run like Ctrl-C: a report marked INTERRUPTED (SIGTERM) with
    the claims that reported kept and the rest NOT RUN; exit status 2 (pytest's INTERRUPTED)."""
    import signal
    import subprocess
    import sys
    import time

    _setup(inner_env, SLOW_TESTS)
    marker = tmp_path / "started"
    out = tmp_path / "report"
    env = {**os.environ, "SIGTERM_MARKER": str(marker), "MPLBACKEND": "Agg"}
    process = subprocess.Popen(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--report-dir", str(out), "-n", workers,
         "-k", "rv_contraction or rope_rerotation"],
        cwd=inner_env.path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 120
    while not marker.exists() and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.2)
    assert marker.exists(), process.communicate()[0][-3000:]
    process.send_signal(signal.SIGTERM)
    output, _ = process.communicate(timeout=120)
    assert process.returncode == pytest.ExitCode.INTERRUPTED, output[-3000:]
    payload = json.loads((out / "claims.json").read_text())
    status = payload["run"]["status"]
    assert status["label"] == "INTERRUPTED" and status["signal"] == "SIGTERM" and not status["complete"], status
    verdicts = {(r["claim"], r["model"]): r["verdict"] for r in payload["records"]}
    assert "NOT RUN" in verdicts.values(), verdicts
    assert "Run status: **INTERRUPTED** (SIGTERM;" in (out / "claims.md").read_text()


NON_FINITE_TESTS = '''
import pytest

from harness.foundation.nonfinite import NonFiniteError


@pytest.mark.claim("kv_transfer")
def test_kv_transfer(lm):
    raise NonFiniteError(f"{lm} kv_main: the logits are not finite at decode step 3 (pairs p1); nothing is decoded")
'''


def test_a_condition_that_ran_into_non_finite_numbers_is_inconclusive_by_data(inner_env: pytest.Pytester,
                                                                               tmp_path: Path):
    """Issue 28: a claim whose measurement stopped on non-finite numbers is INCONCLUSIVE (by data) with that one line,
    not an ERROR and not a number computed from NaN."""
    _setup(inner_env, NON_FINITE_TESTS)
    result, payload = _run(inner_env, tmp_path / "nan", "--verdicts-exit", "report")
    rows = {r["model"]: r for r in payload["records"]}
    assert {r["verdict"] for r in rows.values()} == {"INCONCLUSIVE"}
    row = rows["synthetic-demo"]
    assert row["inconclusive_reason"] == "data" and row["estimate"] is None
    assert row["explanation"] == ("INCONCLUSIVE: numbers not finite: synthetic-demo kv_main: the logits are not finite "
                                  "at decode step 3 (pairs p1); nothing is decoded")
    assert result.ret == pytest.ExitCode.OK and "Traceback" not in result.stdout.str()


FULL_DISK_CONFTEST = INNER_CONFTEST + '''

def pytest_configure(config):
    import errno
    import harness.report.figures as figures

    def full_disk(records, out_dir):
        raise OSError(errno.ENOSPC, "No space left on device", str(out_dir / "forest-kv_transfer.png"))

    figures.write_figures = full_disk
'''


def test_a_full_disk_while_writing_the_report_is_one_line_and_keeps_the_previous_one(inner_env: pytest.Pytester,
                                                                                      tmp_path: Path):
    """Issue 28 (a patched writer standing in for a full file system): one line naming the directory, the file and
    the reason, exit non-zero even under --verdicts-exit report, no traceback, the previous report intact."""
    _setup(inner_env)
    out = tmp_path / "report"
    _run(inner_env, out, "-k", "kv_transfer", "--verdicts-exit", "report")
    before = (out / "claims.json").read_text()
    inner_env.makeconftest(FULL_DISK_CONFTEST)
    result = inner_env.runpytest_subprocess("-p", "no:cacheprovider", f"--report-dir={out}", "-k", "kv_transfer",
                                            "--verdicts-exit", "report")  # one word: an existing path moves rootdir
    assert result.ret != pytest.ExitCode.OK
    result.stdout.fnmatch_lines([f"kvclaims: the report could not be written into {out} (forest-kv_transfer.png): "
                                 "No space left on device; the directory holds what it held before"])
    assert "Traceback" not in result.stdout.str() + result.stderr.str()
    assert (out / "claims.json").read_text() == before
    assert not [p for p in out.iterdir() if p.name.startswith(".claims-staging-")]


@pytest.fixture
def small_tmpfs(tmp_path: Path):  # type: ignore[no-untyped-def]
    """A 1 MiB tmpfs mounted under ``tmp_path`` (root only, where the platform allows mounts), else a skip."""
    import subprocess

    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)], capture_output=True,
                          text=True, check=False) if os.geteuid() == 0 else None
    if done is None or done.returncode != 0:
        pytest.skip("cannot mount a small tmpfs here (needs root and mount privileges); the patched-writer test covers it")
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=False)


def test_a_really_full_file_system_is_one_line_and_leaves_nothing_half_written(inner_env: pytest.Pytester,
                                                                                small_tmpfs: Path):
    """Issue 28 on a real full file system: a 1 MiB tmpfs filled to its last few KiB takes the start-time probe
    but not the report (figures are larger): one line, exit non-zero, no staging directory, no partial file."""
    _setup(inner_env)
    (small_tmpfs / "filler").write_bytes(b"\0" * (1024 - 32) * 1024)  # leave 32 KiB: the probe fits, the report not
    out = small_tmpfs / "report"
    result = inner_env.runpytest_subprocess("-p", "no:cacheprovider", f"--report-dir={out}", "-k", "kv_transfer",
                                            "--verdicts-exit", "report")
    assert result.ret != pytest.ExitCode.OK
    result.stdout.fnmatch_lines([f"kvclaims: the report could not be written into {out}*No space left on device; "
                                 "the directory holds what it held before"])
    assert "Traceback" not in result.stdout.str() + result.stderr.str()
    assert not out.exists() or not [p for p in out.iterdir() if p.name != "filler"]
