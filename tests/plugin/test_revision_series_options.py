"""``--model`` with a revision series: a malformed series stops the run with one line before anything loads; two
revisions of one model are two parameters with an xdist group each (run in subprocesses, collection only)."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PYTHIA = "hf:EleutherAI/pythia-160m"


@pytest.fixture
def suite(pytester: pytest.Pytester) -> pytest.Pytester:
    """A pytester dir wired to the suite's plugin, one model-parametrized test, and each item's xdist groups printed
    at collection."""
    pytester.makeconftest(
        f"import sys; sys.path.insert(0, {str(ROOT)!r})\n"
        "pytest_plugins = ['harness.plugin']\n"
        "def pytest_collection_modifyitems(items):\n"
        "    for item in items:\n"
        "        print('GROUPS', item.name, [m.args[0] for m in item.iter_markers('xdist_group')])\n"
    )
    pytester.makepyfile(test_claim_like="def test_needs_model(lm):\n    pass\n")
    return pytester


@pytest.mark.parametrize(("models", "line"), [
    (f"{PYTHIA}@step1000,{PYTHIA}@main", f"*--model: revision series {PYTHIA}: main names no training step*"),
    (f"{PYTHIA}@", "*--model: model '*@': empty revision after '@'*"),
])
def test_a_malformed_series_is_a_one_line_usage_error(suite: pytest.Pytester, models: str, line: str) -> None:
    result = suite.runpytest_subprocess("--model", models, "--collect-only")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([line])


def test_two_revisions_are_two_parameters_with_their_own_xdist_group(suite: pytest.Pytester) -> None:
    a, b = f"{PYTHIA}@step8000", f"{PYTHIA}@step1000"
    result = suite.runpytest_subprocess("--model", f"{a},{b}", "--collect-only", "-q", "-s")
    assert result.ret == pytest.ExitCode.OK, result.stderr.str()
    groups = [line for line in result.stdout.lines if line.startswith("GROUPS ")]
    assert groups == [f"GROUPS test_needs_model[{b}] ['{b}']", f"GROUPS test_needs_model[{a}] ['{a}']"]
