"""kvclaims as an installed pytest plugin with user claims, run in subprocesses from a directory outside the
repository: no repository conftest, plugin autoloading off and the ``pytest11`` entry point's module named with
``-p`` (what an installed kvclaims loads), the repository on PYTHONPATH (this checkout's harness, not an installed
one). The fresh-virtual-environment check (``pip install <repo>``, then plain ``pytest <folder> --model toy-llama``)
is done by hand: docs/WRITING_CLAIMS.md."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    tomllib = pytest.importorskip("tomli")

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "docs" / "examples" / "user_claim"


def _entry_point_module() -> str:
    """The module of the ``kvclaims`` pytest11 entry point in pyproject.toml."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return project["entry-points"]["pytest11"]["kvclaims"]


@pytest.fixture
def outside(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    """A pytester directory outside the repository holding the documented example user claim, run as an installed
    kvclaims would be (see the module docstring)."""
    assert ROOT not in Path(pytester.path).resolve().parents
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    for file in EXAMPLE.iterdir():
        shutil.copy(file, pytester.path / file.name)
    return pytester


def _run(tester: pytest.Pytester, *args: str) -> pytest.RunResult:
    """A run as an installed kvclaims gets it; a listed plugin module imported before pytest registers it (pytest then
    warns in every run of the environment that it cannot rewrite its asserts) is an error here."""
    return tester.runpytest_subprocess("-p", _entry_point_module(), "-p", "no:cacheprovider",
                                       "-W", "error::pytest.PytestAssertRewriteWarning", *args)


def test_entry_point_names_the_plugins_the_repository_conftest_registers() -> None:
    import importlib

    module = importlib.import_module(_entry_point_module())
    conftest = (ROOT / "conftest.py").read_text()
    assert module.pytest_plugins and all(f'"{name}"' in conftest for name in module.pytest_plugins)


def test_list_claims_shows_the_user_claim_and_its_file(outside: pytest.Pytester) -> None:
    result = _run(outside, ".", "--list-claims")
    assert result.ret == pytest.ExitCode.OK, result.stderr.str()
    result.stdout.fnmatch_lines([
        "rv_contraction *",
        f"mid_stack_rv_contraction * v2 my_paper * n=39 * hedges_g: 95% CI < -0.5 and p < 0.05 (α 0.05/1)*"
        f"[[]user claim: {outside.path.resolve() / 'mid_stack_rv.claim.yaml'}[]]",
    ])


def test_a_bad_user_claim_is_a_one_line_usage_error_before_collection(outside: pytest.Pytester) -> None:
    claim_file = outside.path / "mid_stack_rv.claim.yaml"
    claim_file.write_text(claim_file.read_text().replace("version: 2\n", "version: 3\n", 1))
    result = _run(outside, ".", "--model", "toy-llama", "--collect-only")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: user claim {claim_file.resolve()}: version 3 needs one history entry per "
                                 "version above 1 (has versions [[]2[]]); add a history entry*"])


def test_entry_point_beside_the_repository_conftest_registers_each_plugin_once(outside: pytest.Pytester) -> None:
    outside.makeconftest((ROOT / "conftest.py").read_text().replace(', "fixtures.models"', ""))
    result = _run(outside, ".", "--model", "toy-llama", "--collect-only", "-q")
    assert result.ret == pytest.ExitCode.OK, result.stderr.str()
    result.stdout.fnmatch_lines(["*test_mid_stack_rv_contraction[[]toy-llama[]]*"])


def test_the_documented_user_claim_runs_on_toy_llama_and_is_reported(outside: pytest.Pytester, tmp_path: Path) -> None:
    out = tmp_path / "report"
    result = _run(outside, ".", "--model", "toy-llama", "--claims-cache", "off", f"--report-dir={out}")
    assert result.ret in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED), result.stderr.str()[-2000:]
    rows = [r for r in json.loads((out / "claims.json").read_text())["records"]
            if r["claim"] == "mid_stack_rv_contraction"]
    assert [(r["model"], r["version"]) for r in rows] == [("toy-llama", 2)]
    assert rows[0]["verdict"] in ("PASS", "FAIL", "INCONCLUSIVE") and rows[0]["n"] == 84
    assert "mid_stack_rv_contraction" in (out / "claims.md").read_text()
    assert "Version 2 (2026-12-01)" in (out / "methods.md").read_text()
