"""Threads and GPUs for this process of a pytest run: the CPU-thread share of an xdist worker, the GPU set pinned
before CUDA starts, and the ``--device`` check on the controller. Called from the plugin's ``pytest_configure``
(:mod:`harness.plugin.hooks`); the pure assignment rules are in :mod:`harness.runtime.cpu_threads` and
:mod:`harness.runtime.gpu_assignment`."""

from __future__ import annotations

import os
from collections.abc import Callable

import pytest

from harness.runtime.gpu_assignment import (
    GPUAssignmentError,
    cuda_index,
    cuda_initialised,
    default_gpus_per_worker,
    nvidia_smi_gpus,
    pin_worker_gpus,
    visible_gpus,
    worker_gpu_slice,
)

__all__ = ["check_device_option", "pin_gpus", "share_cpu_threads_among_workers", "xdist_worker_count"]


def share_cpu_threads_among_workers(worker_count: str | None) -> int | None:
    """Give torch as many intra-op threads as this process's share of the cores that are idle now; returns the count.

    The share is ``cores // workers`` in an xdist worker, all cores otherwise; it is capped at the cores measured
    idle over 0.2 s (:func:`harness.runtime.cpu_threads.idle_cores`), at least 1. Oversubscribed OpenMP threads spin
    against other processes: on the shared 2-core machine with 2 busy background processes, decode-shaped work
    with torch's default 2 threads ran 3.7× and 17× slower than without them (two runs), with this policy 2.0× and
    1.2× (benchmarks/bench_loaded_cpu.py). It also sets ``OMP_WAIT_POLICY=PASSIVE``
    in the environment when unset, so processes started afterwards (xdist workers, subprocesses) sleep instead of
    spin while waiting; this process's own OpenMP has read its setting already. An explicit ``OMP_NUM_THREADS``
    wins (and leaves the wait policy alone).
    """
    if os.environ.get("OMP_NUM_THREADS"):
        return None
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    import torch

    from harness.runtime.cpu_threads import idle_cores, thread_count

    cores, workers = os.cpu_count() or 1, max(1, int(worker_count)) if worker_count else 1
    threads = thread_count(cores, workers, idle_cores() if cores // workers > 1 else None)
    torch.set_num_threads(threads)
    return threads


def check_device_option(
    device: str, cuda_available: Callable[[], bool] | None = None, device_count: Callable[[], int] | None = None,
    per_worker: int | None = None,
) -> None:
    """Refuse ``--device cuda`` on a machine without CUDA (otherwise every model test would skip and the run end
    green with nothing measured).

    Called on the controller only (after :func:`pin_gpus`): in an xdist worker, asking CUDA before the worker's GPU
    set is pinned would fix the visible devices too early. ``cuda:N`` must name a GPU that exists, and under xdist
    one inside each worker's set (``per_worker`` GPUs, when known).

    Raises:
        pytest.UsageError: naming the option and the missing GPU.
    """
    if not device.startswith("cuda"):
        return
    if cuda_available is None or device_count is None:
        import torch

        cuda_available = cuda_available or torch.cuda.is_available
        device_count = device_count or torch.cuda.device_count
    if not cuda_available():
        raise pytest.UsageError(
            f"--device {device}: no CUDA GPU is available (torch.cuda.is_available() is False); "
            "run on a CUDA machine or use --device auto or cpu"
        )
    index = cuda_index(device)
    visible = per_worker if per_worker is not None else device_count()
    if index is not None and index >= visible:
        raise pytest.UsageError(f"--device {device}: only {visible} GPU(s) visible"
                                + (" per worker" if per_worker is not None else "") + " (indices from 0)")


def xdist_worker_count(config: pytest.Config) -> int:
    """Workers pytest-xdist will start (0 without xdist); read on the controller after xdist resolved ``-n``."""
    if config.getoption("dist", default="no") == "no":
        return 0
    return len(config.getoption("tx", default=None) or [])


def pin_gpus(config: pytest.Config, list_gpus: Callable[[], list[str]] = nvidia_smi_gpus) -> int | None:
    """Give this process its GPU set (:mod:`harness.runtime.gpu_assignment`) before anything initialises CUDA; returns how
    many GPUs each xdist worker sees (None without xdist, without GPUs or with ``--device cpu``).

    - An xdist worker (``config.workerinput``) narrows ``CUDA_VISIBLE_DEVICES`` to its slice.
    - The controller of an xdist run checks ``--gpus-per-worker`` × workers against the GPU count (a usage error,
      before any worker starts) and leaves its own environment alone.
    - A run without xdist with ``--gpus-per-worker k`` uses the first k GPUs.
    Nothing is pinned with ``--device cpu``.

    Raises:
        pytest.UsageError: the GPU sets do not fit, or CUDA was initialised before a set could be pinned.
    """
    if config.getoption("device") == "cpu":
        return None
    per_worker = config.getoption("gpus_per_worker")
    workerinput = getattr(config, "workerinput", None)
    try:
        if workerinput is not None:
            _refuse_initialised_cuda(str(workerinput["workerid"]))
            value = pin_worker_gpus(str(workerinput["workerid"]), int(workerinput["workercount"]), per_worker,
                                    list_gpus=list_gpus)
            return len(value.split(",")) if value is not None else None
        workers = xdist_worker_count(config)
        if workers:
            gpus = visible_gpus(os.environ, list_gpus)
            if per_worker is not None:
                worker_gpu_slice(gpus, 0, workers, per_worker)
                return per_worker
            return max(1, default_gpus_per_worker(len(gpus), workers)) if gpus else None
        if per_worker is not None:
            _refuse_initialised_cuda("controller")
            pin_worker_gpus("gw0", 1, per_worker, list_gpus=list_gpus)
    except GPUAssignmentError as exc:
        raise pytest.UsageError(f"--gpus-per-worker: {exc}") from None
    return None


def _refuse_initialised_cuda(who: str) -> None:
    if cuda_initialised():
        raise pytest.UsageError(f"{who}: CUDA was initialised before its GPU set was pinned; do not touch CUDA at "
                                "import time in conftest files or plugins")
