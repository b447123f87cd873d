"""--model-args, --device cuda:N and --gpus-per-worker through pytest: usage errors, GPU sets per xdist worker
(a fake GPU list in CUDA_VISIBLE_DEVICES; no GPU is touched), model args reaching the lm fixture."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

RECORD_WORKER_GPUS = """
import os


def pytest_sessionstart(session):
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    # each worker notes the GPU set it was given (only where the test asked for it: an in-process run inside an
    # outer xdist worker inherits PYTEST_XDIST_WORKER)
    if worker is not None and "GPU_SETS_DIR" in os.environ:
        out = os.path.join(os.environ["GPU_SETS_DIR"], worker)
        with open(out, "w") as fh:
            fh.write(os.environ.get("CUDA_VISIBLE_DEVICES", "<unset>"))
"""

LAYERS_TEST = """
def test_layers(lm):
    assert (lm.layers.early, lm.layers.late, lm.layers.patch_layers) == (0, 2, (1, 2, 3))
    assert lm.provenance["model_args"] == {"early": 0, "late": 2, "patch": [1, 2, 3]}
"""


@pytest.fixture
def suite(pytester: pytest.Pytester) -> pytest.Pytester:
    """A pytester dir wired to the harness's plugin, recording each xdist worker's CUDA_VISIBLE_DEVICES."""
    pytester.makeconftest(
        f"import sys; sys.path.insert(0, {str(ROOT)!r})\n"
        "pytest_plugins = ['harness.plugin', 'fixtures.models']\n" + RECORD_WORKER_GPUS
    )
    pytester.makepyfile(test_plain="def test_a():\n    pass\n\ndef test_b():\n    pass\n")
    return pytester


def worker_sets(directory: Path) -> dict[str, str]:
    return {path.name: path.read_text() for path in sorted(directory.iterdir())}


def test_each_worker_gets_its_own_gpu_set(suite: pytest.Pytester, monkeypatch: pytest.MonkeyPatch,
                                          tmp_path: Path) -> None:
    """Two workers, two GPUs each out of five listed: disjoint slices in the caller's order (the default k, all GPUs ÷
    workers, and the round-robin fallback are covered by tests/unit/test_gpu_assignment.py)."""
    sets = tmp_path / "sets"
    sets.mkdir()
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3,5,7,9,GPU-e")
    monkeypatch.setenv("GPU_SETS_DIR", str(sets))
    result = suite.runpytest_subprocess("-p", "xdist", "-n", "2", "--gpus-per-worker", "2", "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()[-2000:]
    assert worker_sets(sets) == {"gw0": "3,5", "gw1": "7,9"}


@pytest.mark.parametrize(("args", "message"), [
    (("--model-args", "colour=red"), "*--model-args: unknown model argument 'colour'; allowed keys: dtype, revision,"
                                     " device_map, max_memory, attn_implementation, early, late, patch*"),
    (("--model-args", "revision=main"), "*--model-args revision= applies to hf models only; toy-llama is a toy*"),
    (("--model-args", "late=4"), "*--model-args late: layer 4 does not exist in toy-llama (4 layers, 0..3)*"),
    (("--model-args", "dtype=fp16", "--dtype", "bf16"), "*--dtype bfloat16 and --model-args dtype=float16 disagree*"),
    (("--model-args", "max_memory=10GiB", "--device", "cpu"), "*device_map=/max_memory= apply on CUDA only*"),
    (("--device", "gpu"), "*--device: invalid device 'gpu' (auto, cpu, cuda or cuda:N)*"),
    (("--gpus-per-worker", "0"), "*--gpus-per-worker: invalid count '0' (a positive int)*"),
    (("-p", "xdist", "-n", "2", "--gpus-per-worker", "2"),
     "*--gpus-per-worker 2 × 2 workers needs 4 GPUs, 3 visible (0,1,2)*"),
])
def test_bad_options_are_one_line_usage_errors(suite: pytest.Pytester, monkeypatch: pytest.MonkeyPatch,
                                               args: tuple[str, ...], message: str) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1,2")  # a fake list; restored after the test
    result = suite.runpytest("--model", "toy-llama", "-p", "no:cacheprovider", *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])


@pytest.mark.parametrize("device", ["cuda", "cuda:1"])
def test_device_cuda_without_cuda_is_a_usage_error(suite: pytest.Pytester, device: str) -> None:
    """Otherwise every model test would skip and the run end green with nothing measured."""
    import torch

    if torch.cuda.is_available():
        pytest.skip("a CUDA GPU is present")
    result = suite.runpytest("--model", "toy-llama", "--device", device, "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*--device {device}: no CUDA GPU is available (torch.cuda.is_available() is False)*"])


def test_model_args_reach_the_model_fixture(suite: pytest.Pytester) -> None:
    suite.makepyfile(test_layers=LAYERS_TEST)
    result = suite.runpytest("--model", "toy-llama", "--model-args", "early=0,late=2,patch=1-3", "-k", "layers",
                             "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)


class FakeConfig:
    """The few config attributes pin_gpus reads: options by dest, and workerinput on an xdist worker."""

    def __init__(self, workers: int, per_worker: int | None, workerid: str | None = None) -> None:
        self.options = {"device": "auto", "gpus_per_worker": per_worker, "dist": "load" if workers else "no",
                        "tx": ["popen"] * workers}
        if workerid is not None:
            self.workerinput = {"workerid": workerid, "workercount": workers}

    def getoption(self, name: str, default: object = None) -> object:
        return self.options.get(name, default)


def test_pin_gpus_on_controller_and_worker(monkeypatch: pytest.MonkeyPatch) -> None:
    from harness.runtime.worker_policy import pin_gpus

    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1,2,3,4")
    assert pin_gpus(FakeConfig(2, None)) == 2  # type: ignore[arg-type]  # controller: 5 ÷ 2, environment untouched
    assert pin_gpus(FakeConfig(6, None)) == 1  # type: ignore[arg-type]  # more workers than GPUs: one, shared
    with pytest.raises(pytest.UsageError, match="--gpus-per-worker: --gpus-per-worker 3 × 2 workers needs 6 GPUs"):
        pin_gpus(FakeConfig(2, 3))  # type: ignore[arg-type]
    assert os.environ["CUDA_VISIBLE_DEVICES"] == "0,1,2,3,4"
    assert pin_gpus(FakeConfig(2, None, workerid="gw1")) == 2  # type: ignore[arg-type]
    assert os.environ["CUDA_VISIBLE_DEVICES"] == "2,3"
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1,2")
    assert pin_gpus(FakeConfig(0, 2)) is None  # type: ignore[arg-type]  # no xdist: this process takes the first 2
    assert os.environ["CUDA_VISIBLE_DEVICES"] == "0,1"


def test_cuda_n_must_be_inside_each_workers_set() -> None:
    from harness.runtime.worker_policy import check_device_option

    check_device_option("cuda:3", lambda: True, lambda: 4)
    with pytest.raises(pytest.UsageError, match=r"--device cuda:4: only 4 GPU\(s\) visible \(indices from 0\)"):
        check_device_option("cuda:4", lambda: True, lambda: 4)
    with pytest.raises(pytest.UsageError, match=r"--device cuda:2: only 2 GPU\(s\) visible per worker"):
        check_device_option("cuda:2", lambda: True, lambda: 8, per_worker=2)
    with pytest.raises(pytest.UsageError, match="--device cuda:0: no CUDA GPU is available"):
        check_device_option("cuda:0", lambda: False, lambda: 0)
