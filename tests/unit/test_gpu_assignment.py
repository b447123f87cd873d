"""GPU sets per xdist worker (harness.runtime.gpu_assignment): disjoint slices, the default k, errors, max_memory budgets."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.runtime.gpu_assignment import (
    GPU_MEMORY_FRACTION,
    GPUAssignmentError,
    default_gpus_per_worker,
    max_memory_budget,
    pin_worker_gpus,
    visible_gpus,
    worker_gpu_slice,
    worker_index,
    worker_visible_devices,
)

GPU_LISTS = st.lists(st.integers(0, 31).map(str) | st.uuids().map(lambda u: f"GPU-{u}"), min_size=1, max_size=16,
                     unique=True)


@settings(deadline=None, max_examples=100)
@given(GPU_LISTS, st.integers(1, 16), st.integers(1, 16))
def test_slices_are_disjoint_within_range_or_refused(gpus: list[str], workers: int, per_worker: int) -> None:
    if per_worker * workers > len(gpus):
        with pytest.raises(GPUAssignmentError, match=f"needs {per_worker * workers} GPUs, {len(gpus)} visible"):
            worker_gpu_slice(gpus, 0, workers, per_worker)
        return
    slices = [worker_gpu_slice(gpus, i, workers, per_worker) for i in range(workers)]
    flat = [gpu for piece in slices for gpu in piece]
    assert all(len(piece) == per_worker for piece in slices)
    assert len(set(flat)) == len(flat)  # disjoint
    assert set(flat) <= set(gpus)  # within the caller's list
    assert flat == gpus[: per_worker * workers]  # in the caller's order


@settings(deadline=None, max_examples=100)
@given(GPU_LISTS, st.integers(1, 20))
def test_default_sets_are_disjoint_when_gpus_suffice_else_shared_round_robin(gpus: list[str], workers: int) -> None:
    values = [worker_visible_devices(gpus, i, workers) for i in range(workers)]
    k = default_gpus_per_worker(len(gpus), workers)
    assert k == len(gpus) // workers
    if k >= 1:
        sets = [v.split(",") for v in values]  # type: ignore[union-attr]
        assert all(len(s) == k for s in sets)
        flat = [g for s in sets for g in s]
        assert len(set(flat)) == len(flat) and set(flat) <= set(gpus)
    else:  # more workers than GPUs: one shared GPU each, every GPU used
        assert values == [gpus[i % len(gpus)] for i in range(workers)]


def test_examples() -> None:
    gpus = ["0", "1", "2", "3", "4", "5", "6", "7"]
    assert worker_visible_devices(gpus, 1, 2) == "4,5,6,7"
    assert worker_visible_devices(gpus, 2, 3) == "4,5"  # 8 ÷ 3 = 2 each; GPUs 6 and 7 stay idle
    assert worker_visible_devices(gpus, 3, 4, per_worker=1) == "3"
    assert worker_visible_devices(["0", "1"], 2, 3) == "0"  # more workers than GPUs: shared
    assert worker_visible_devices([], 0, 2) is None
    with pytest.raises(GPUAssignmentError, match="--gpus-per-worker 2 × 3 workers needs 6 GPUs, 4 visible"):
        worker_visible_devices(gpus[:4], 0, 3, per_worker=2)
    with pytest.raises(GPUAssignmentError, match="at least 1"):
        worker_gpu_slice(gpus, 0, 2, 0)
    with pytest.raises(GPUAssignmentError, match="worker index 2 is not in 0..1"):
        worker_gpu_slice(gpus, 2, 2, 1)


def test_visible_gpus_prefer_the_callers_list() -> None:
    def smi() -> list[str]:
        return ["GPU-a", "GPU-b"]

    assert visible_gpus({"CUDA_VISIBLE_DEVICES": " 2, 5 ,"}, smi) == ["2", "5"]
    assert visible_gpus({"CUDA_VISIBLE_DEVICES": ""}, smi) == []  # an empty list hides every GPU
    assert visible_gpus({}, smi) == ["GPU-a", "GPU-b"]


def test_pin_worker_gpus_narrows_the_environment() -> None:
    env = {"CUDA_VISIBLE_DEVICES": "0,1,2,3"}
    assert pin_worker_gpus("gw1", 2, None, env) == "2,3" and env["CUDA_VISIBLE_DEVICES"] == "2,3"
    env = {}
    assert pin_worker_gpus("gw0", 2, 1, env, list_gpus=lambda: ["GPU-a", "GPU-b", "GPU-c"]) == "GPU-a"
    assert env == {"CUDA_VISIBLE_DEVICES": "GPU-a"}
    env = {}
    assert pin_worker_gpus("gw0", 2, None, env, list_gpus=list) is None and env == {}  # no GPU: untouched


def test_worker_index() -> None:
    assert worker_index("gw12") == 12
    with pytest.raises(ValueError, match="xdist worker id"):
        worker_index("master")


@settings(deadline=None, max_examples=100)
@given(st.lists(st.integers(1, 2**40), min_size=1, max_size=8), st.none() | st.integers(1, 2**41))
def test_max_memory_budget_never_exceeds_a_gpu(totals: list[int], cap: int | None) -> None:
    budget = max_memory_budget(totals, cap)
    assert sorted(budget) == list(range(len(totals)))
    for i, total in enumerate(totals):
        assert 0 <= budget[i] <= total
        assert budget[i] == (min(total, cap) if cap is not None else int(total * GPU_MEMORY_FRACTION))
