"""GPU sets for pytest-xdist workers, and the per-GPU memory budget of a model spread over a worker's set.

One node, many GPUs: each xdist worker ``gwI`` of ``W`` gets a disjoint slice of ``k`` GPUs of the caller's GPU list,
``gpus[I·k : (I+1)·k]``, by narrowing ``CUDA_VISIBLE_DEVICES`` in ``pytest_configure`` *before CUDA initialises* (the
CUDA driver reads the variable once, at initialisation). ``k`` is ``--gpus-per-worker`` or, by default, all GPUs ÷
workers (floor). A model larger than one GPU then spans its worker's set (``device_map`` with a ``max_memory`` budget
for each visible GPU, :func:`max_memory_budget`).

The caller's GPU list is ``CUDA_VISIBLE_DEVICES`` when set (indices or ``GPU-…`` UUIDs, passed through unchanged; an
empty value means no GPU), else the UUIDs of ``nvidia-smi -L`` (UUIDs, because nvidia-smi numbers GPUs in PCI order
and CUDA, by default, fastest first). Nothing here calls ``torch.cuda``.

More workers than GPUs with the default ``k`` (``tox -e tests -n 2`` on a one-GPU box) cannot give disjoint sets;
then each worker gets one GPU, worker ``I`` GPU ``I mod len(gpus)`` (shared), as before this module. An explicit
``--gpus-per-worker k`` with ``k × W`` above the GPU count is a usage error.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Callable, Mapping, MutableMapping, Sequence

_WORKER_ID = re.compile(r"^gw(\d+)$")
_SMI_UUID = re.compile(r"\(UUID:\s*(GPU-[0-9A-Za-z\-]+)\)")

GPU_MEMORY_FRACTION = 0.85
"""Share of each GPU's total memory that weights may take when a model is spread over GPUs (``max_memory``): the
rest is left for the KV caches and activations of generation batches, which ``--batch-size auto`` then sizes from
the memory still free. 15 % of an 80 GB H100 is 12 GB; Mistral-7B's bf16 KV cache takes 128 KiB per token
(32 layers × K and V × 8 heads × 128 × 2 bytes), so that holds about 90,000 cached tokens."""


class GPUAssignmentError(ValueError):
    """GPUs cannot be assigned as asked (more GPUs per worker × workers than there are GPUs, bad counts)."""


def worker_index(worker_id: str) -> int:
    """The number in an xdist worker id (``"gw3"`` → 3).

    Raises:
        ValueError: for anything that is not ``gw<N>``.
    """
    match = _WORKER_ID.match(worker_id)
    if match is None:
        raise ValueError(f"not an xdist worker id: {worker_id!r} (expected 'gw<N>')")
    return int(match.group(1))


def nvidia_smi_gpus() -> list[str]:
    """UUIDs of the GPUs ``nvidia-smi -L`` lists, in its order; empty when nvidia-smi is missing or fails."""
    try:
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=30, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return _SMI_UUID.findall(out)


def visible_gpus(environ: Mapping[str, str], list_gpus: Callable[[], list[str]] = nvidia_smi_gpus) -> list[str]:
    """The caller's GPU list: the entries of ``CUDA_VISIBLE_DEVICES`` when set (empty value: none), else
    ``list_gpus()`` (by default the UUIDs of ``nvidia-smi -L``)."""
    value = environ.get("CUDA_VISIBLE_DEVICES")
    if value is None:
        return list_gpus()
    return [entry.strip() for entry in value.split(",") if entry.strip()]


def default_gpus_per_worker(n_gpus: int, worker_count: int) -> int:
    """All GPUs ÷ workers, rounded down (0 when there are more workers than GPUs)."""
    if worker_count < 1 or n_gpus < 0:
        raise GPUAssignmentError(f"worker count {worker_count} and GPU count {n_gpus} must be >= 1 and >= 0")
    return n_gpus // worker_count


def worker_gpu_slice(gpus: Sequence[str], index: int, worker_count: int, per_worker: int) -> list[str]:
    """The GPUs of worker ``index`` of ``worker_count``: ``gpus[index·per_worker : (index+1)·per_worker]``.

    Slices of different workers are disjoint and together cover the first ``per_worker × worker_count`` GPUs.

    Raises:
        GPUAssignmentError: ``per_worker < 1``, ``index`` outside ``0..worker_count-1``, or ``per_worker ×
            worker_count`` above ``len(gpus)`` (the message names all three numbers).
    """
    if per_worker < 1:
        raise GPUAssignmentError(f"--gpus-per-worker must be at least 1, got {per_worker}")
    if worker_count < 1 or not 0 <= index < worker_count:
        raise GPUAssignmentError(f"worker index {index} is not in 0..{worker_count - 1}")
    if per_worker * worker_count > len(gpus):
        raise GPUAssignmentError(
            f"--gpus-per-worker {per_worker} × {worker_count} workers needs {per_worker * worker_count} GPUs, "
            f"{len(gpus)} visible ({','.join(gpus) or 'none'}); lower -n or --gpus-per-worker")
    return list(gpus[index * per_worker:(index + 1) * per_worker])


def worker_visible_devices(
    gpus: Sequence[str], index: int, worker_count: int, per_worker: int | None = None
) -> str | None:
    """The ``CUDA_VISIBLE_DEVICES`` value of worker ``index``: None (leave the environment alone) without GPUs;
    its :func:`worker_gpu_slice` for an explicit ``per_worker`` or when the default (all ÷ workers) is at least 1;
    otherwise (more workers than GPUs, no explicit count) the one shared GPU ``gpus[index mod len(gpus)]``.

    Raises:
        GPUAssignmentError: see :func:`worker_gpu_slice`.
    """
    if not gpus:
        return None
    if per_worker is None:
        per_worker = default_gpus_per_worker(len(gpus), worker_count)
        if per_worker == 0:
            return gpus[index % len(gpus)]
    return ",".join(worker_gpu_slice(gpus, index, worker_count, per_worker))


def pin_worker_gpus(
    worker_id: str, worker_count: int, per_worker: int | None,
    environ: MutableMapping[str, str] = os.environ, list_gpus: Callable[[], list[str]] = nvidia_smi_gpus,
) -> str | None:
    """Narrow ``environ["CUDA_VISIBLE_DEVICES"]`` to this worker's GPU set; returns the value set (None: unchanged).

    Call before anything initialises CUDA in the process (:func:`check_cuda_not_initialised`).

    Raises:
        GPUAssignmentError: see :func:`worker_gpu_slice`.
    """
    value = worker_visible_devices(visible_gpus(environ, list_gpus), worker_index(worker_id), worker_count, per_worker)
    if value is not None:
        environ["CUDA_VISIBLE_DEVICES"] = value
    return value


def cuda_initialised() -> bool:
    """Whether torch has initialised CUDA in this process (False when torch is not imported; imports nothing)."""
    import sys

    torch = sys.modules.get("torch")
    return bool(torch is not None and torch.cuda.is_initialized())


def max_memory_budget(total_bytes: Sequence[int], per_gpu_bytes: int | None = None) -> dict[int, int]:
    """``max_memory`` for accelerate: ``{visible GPU index: bytes the weights may take}``.

    ``per_gpu_bytes`` (``--model-args max_memory=``) caps every GPU, never above its total; without it each GPU gets
    :data:`GPU_MEMORY_FRACTION` of its ``total_bytes``.
    """
    if per_gpu_bytes is not None and per_gpu_bytes < 1:
        raise GPUAssignmentError(f"max_memory must be positive, got {per_gpu_bytes} bytes")
    return {i: min(total, per_gpu_bytes) if per_gpu_bytes is not None else int(total * GPU_MEMORY_FRACTION)
            for i, total in enumerate(total_bytes)}


def cuda_index(device: str) -> int | None:
    """N of ``cuda:N``; None for ``cpu``, ``cuda`` and ``auto``.

    Raises:
        ValueError: a device other than auto, cpu, cuda, cuda:N (one line naming them).
    """
    if device in ("auto", "cpu", "cuda"):
        return None
    head, _, number = device.partition(":")
    if head != "cuda" or not number.isdigit():
        raise ValueError(f"unknown device {device!r}; expected auto, cpu, cuda or cuda:N")
    return int(number)
