"""GPU pinning for pytest-xdist workers: one entry of the caller's ``CUDA_VISIBLE_DEVICES`` per worker.

Workers inherit the caller's environment. Before CUDA initialises, each worker narrows
``CUDA_VISIBLE_DEVICES`` to the entry at index (worker number mod number of entries), so worker ``gw2``
with a caller list ``"0,1,3"`` sees only GPU 3, and ``gw3`` wraps around to GPU 0. Size ``-n`` to the
number of listed GPUs to get one model per GPU; ``-n 0`` (or ``-n 1``) is the single-GPU setup.
"""

from __future__ import annotations

import re

_WORKER_ID = re.compile(r"^gw(\d+)$")


def worker_index(worker_id: str) -> int:
    """The number in an xdist worker id (``"gw3"`` → 3); raises ValueError for anything else."""
    match = _WORKER_ID.match(worker_id)
    if match is None:
        raise ValueError(f"not an xdist worker id: {worker_id!r} (expected 'gw<N>')")
    return int(match.group(1))


def pinned_visible_devices(caller_visible: str | None, worker_id: str) -> str | None:
    """The ``CUDA_VISIBLE_DEVICES`` value for ``worker_id`` given the caller's value.

    Returns None (leave the environment alone) when the caller set nothing or an empty list, so a
    CPU-only run is unaffected. Entries may be indices or GPU UUIDs; they are passed through unchanged.
    """
    if caller_visible is None:
        return None
    entries = [e.strip() for e in caller_visible.split(",") if e.strip()]
    if not entries:
        return None
    return entries[worker_index(worker_id) % len(entries)]
