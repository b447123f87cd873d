"""The pytest interface: model selection errors, GPU skips, prompt-bank errors (run in subprocesses)."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

CLAIM_LIKE = """
def test_needs_model(lm):
    assert lm.shape.n_layers > 0
"""


@pytest.fixture
def suite(pytester: pytest.Pytester) -> pytest.Pytester:
    """A pytester dir wired to the suite's plugins, with one model-parametrized test."""
    pytester.makeconftest(
        f"import sys; sys.path.insert(0, {str(ROOT)!r})\n"
        "pytest_plugins = ['harness.plugin', 'fixtures.models']\n"
    )
    pytester.makepyfile(test_claim_like=CLAIM_LIKE)
    return pytester


def test_unknown_model_is_a_usage_error_listing_known_names(suite: pytest.Pytester) -> None:
    result = suite.runpytest_subprocess("--model", "nosuchmodel")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*unknown model 'nosuchmodel'*Known names:*mistral7b*smollm2-135m*"])


def test_gpu_model_without_cuda_skips_with_reason_and_exits_zero(suite: pytest.Pytester) -> None:
    result = suite.runpytest_subprocess(
        "-m", "gpu", "--model", "mistral7b", "-rs", "-p", "no:randomly", "--device", "auto",
        "-o", "addopts=",
    )
    # CUDA is absent on CPU CI; where a GPU exists this test is not meaningful
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    assert result.ret == pytest.ExitCode.OK
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*mistral7b is a GPU-tier model and no CUDA GPU is available*"])


def test_models_are_parametrized_sorted_with_one_xdist_group_each(suite: pytest.Pytester) -> None:
    result = suite.runpytest_subprocess("--model", "toy-llama,toy-gemma3", "--model", "toy-llama", "--collect-only", "-q")
    result.stdout.fnmatch_lines(["*test_needs_model[[]toy-gemma3[]]*", "*test_needs_model[[]toy-llama[]]*"])
    assert result.stdout.str().count("test_needs_model[") == 2  # de-duplicated


def test_malformed_prompt_bank_names_file_and_problem(suite: pytest.Pytester, tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"prompts": [{"id": "a", "group": "recursive", "text": ""}]}')
    # one word: an existing path as its own argument would move pytest's rootdir away from the suite's conftest
    result = suite.runpytest_subprocess("--model", "toy-llama", f"--prompt-bank={bad}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*--prompt-bank: {bad}: prompt 'a': empty text*"])


def test_a_prompt_too_short_for_the_window_is_a_usage_error_at_start(suite: pytest.Pytester, tmp_path: Path) -> None:
    """A user bank prompt with fewer than W + 1 content tokens stops the run before any claim, naming the prompt, the
    counts and the tokenizer; a smaller --window accepts it."""
    bank = tmp_path / "short.json"
    bank.write_text('{"prompts": [{"id": "tiny", "group": "baseline", "text": "Water boils at one hundred degrees."}]}')
    result = suite.runpytest_subprocess("--model", "toy-llama", f"--prompt-bank={bank}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*--prompt-bank: {bank}: prompt 'tiny': too short for the window: * content tokens "
                                 "< W + 1 = 17 (tokenized for toy-llama; or lower --window)*"])
    assert suite.runpytest_subprocess("--model", "toy-llama", f"--prompt-bank={bank}", "--window", "4").ret == 0


def test_toy_model_runs_through_the_fixture(suite: pytest.Pytester) -> None:
    result = suite.runpytest_subprocess("--model", "toy-llama,toy-gemma3", "-p", "xdist", "-n", "2", "--dist", "loadgroup")
    result.assert_outcomes(passed=2)


def test_threads_follow_the_share_and_the_idle_cores(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    import torch

    from harness.runtime import cpu_threads
    from harness.runtime.worker_policy import share_cpu_threads_among_workers

    before = torch.get_num_threads()
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    cores = os.cpu_count() or 1
    try:
        monkeypatch.setattr(cpu_threads, "idle_cores", lambda *a, **k: float(cores))
        assert share_cpu_threads_among_workers(None) == cores == torch.get_num_threads()  # idle machine: every core
        assert os.environ["OMP_WAIT_POLICY"] == "PASSIVE"  # for the processes started from here on
        expected = max(1, cores // 64)
        assert share_cpu_threads_among_workers("64") == expected == torch.get_num_threads()
        monkeypatch.setattr(cpu_threads, "idle_cores", lambda *a, **k: 0.0)
        assert share_cpu_threads_among_workers(None) == 1 == torch.get_num_threads()  # every core busy: one thread
        monkeypatch.setenv("OMP_NUM_THREADS", "3")
        monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")
        torch.set_num_threads(before)
        assert share_cpu_threads_among_workers("64") is None and torch.get_num_threads() == before  # user's choice wins
        assert os.environ["OMP_WAIT_POLICY"] == "ACTIVE"
    finally:
        torch.set_num_threads(before)


def test_report_dir_that_is_a_file_fails_at_start(suite: pytest.Pytester) -> None:
    target = suite.path / "report.txt"
    target.write_text("")
    result = suite.runpytest_subprocess("--model", "toy-llama", "--report-dir", str(target), "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*--report-dir: {target} is a file, not a directory*"])
    assert "passed" not in result.stdout.str()


def test_reused_report_dir_loses_only_the_suites_old_files_at_start(suite: pytest.Pytester) -> None:
    out = suite.path / "out"
    out.mkdir()
    for name in ("claims.md", "claims.json", "rv_by_group-rv_contraction.png", "mine.png"):
        (out / name).write_text("old")
    result = suite.runpytest_subprocess("--model", "toy-llama", "--report-dir", str(out), "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    assert sorted(p.name for p in out.iterdir()) == ["mine.png"]


def test_dtype_outside_the_choices_is_a_usage_error_naming_them(suite: pytest.Pytester) -> None:
    result = suite.runpytest_subprocess("--model", "toy-llama", "--dtype", "float8", "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--dtype: invalid choice 'float8' (choose from float32, fp32, bfloat16, bf16*"])


def test_dtype_aliases_and_limit() -> None:
    from harness.plugin.hooks import dtype_choice

    assert [dtype_choice(v) for v in ("bf16", "BF16", "fp16", "fp32", "float32")] == [
        "bfloat16", "bfloat16", "float16", "float32", "float32"]


def test_batch_size_is_a_positive_int_or_auto(suite: pytest.Pytester) -> None:
    import argparse

    from harness.plugin.hooks import batch_size_choice

    assert [batch_size_choice(v) for v in ("auto", "AUTO", "16", " 1 ")] == ["auto", "auto", 16, 1]
    for bad in ("0", "-4", "big", "1.5"):
        with pytest.raises(argparse.ArgumentTypeError, match="a positive int or auto"):
            batch_size_choice(bad)
    result = suite.runpytest_subprocess("--model", "toy-llama", "--batch-size", "zero", "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--batch-size: invalid batch size 'zero' (a positive int or auto)*"])


def test_limit_and_its_old_name_n_cap_the_prompts(suite: pytest.Pytester) -> None:
    suite.makepyfile(test_cap="def test_cap(request):\n    assert request.config.getoption('n_cap') == 3\n")
    for flag in ("--limit", "--n"):
        result = suite.runpytest_subprocess("--model", "toy-llama", flag, "3", "-p", "no:cacheprovider", "-k", "cap")
        assert result.ret == pytest.ExitCode.OK, result.stdout.str()[-2000:]


def test_random_weight_models_never_join_the_gpu_alias() -> None:
    from harness.models.registry import MODEL_ALIASES, MODEL_REGISTRY

    assert "random-mistral7b" in MODEL_REGISTRY and MODEL_REGISTRY["random-mistral7b"].tier == "gpu"
    assert MODEL_ALIASES["gpu"] and not [m for m in MODEL_ALIASES["gpu"] if m.startswith("random-")]


def test_list_models_and_claims_print_and_exit(suite: pytest.Pytester) -> None:
    from harness.registry import CLAIMS

    models = suite.runpytest_subprocess("--list-models")
    assert models.ret == pytest.ExitCode.OK
    models.stdout.fnmatch_lines(["smollm2-135m *cpu*", "alias gpu: *mistral7b*", "also: hf:*"])
    claims = suite.runpytest_subprocess("--list-claims")
    assert claims.ret == pytest.ExitCode.OK
    out = claims.stdout.str()
    assert all(f"{cid} " in out for cid in CLAIMS) and "collected" not in out
