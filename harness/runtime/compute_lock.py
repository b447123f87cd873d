"""A compute-once lock: an exclusive ``fcntl.flock`` on a lock file, so two processes never compute the same item.

The measurement store (:meth:`harness.runtime.measurement_store.MeasurementStore.get_or_compute`) takes it per key around
"check the cache, compute, write": the second xdist worker asking for an item waits for the first and then reads its
entry instead of computing it again.

POSIX only (``fcntl``). A ``flock`` lock belongs to the open file description, so the kernel releases it when the
holding process dies, however it dies (a kill -9 included): a crashed holder never blocks the others. The lock file
itself is left in place (removing it while another process waits on it would let a third lock a new file).
Lock files on NFS are not supported (``flock`` there is local to a client on old kernels).
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from pathlib import Path

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]


class ComputeLockError(OSError):
    """The lock could not be taken: no ``fcntl`` on this platform, or the timeout passed while another held it."""


@contextlib.contextmanager
def compute_lock(path: Path, timeout_s: float | None = None, poll_s: float = 0.05) -> Iterator[float]:
    """Hold an exclusive lock on ``path`` (created with its parent directories) for the ``with`` block.

    Args:
        path: the lock file (for a cache entry ``<key>.json``: ``<key>.lock`` beside it).
        timeout_s: seconds to wait for another holder; None waits as long as it takes.
        poll_s: seconds between tries while waiting with a timeout.

    Yields:
        seconds spent waiting for the lock.

    Raises:
        ComputeLockError: on a platform without ``fcntl``, or when ``timeout_s`` passed (naming the file).
    """
    if fcntl is None:
        raise ComputeLockError("the compute-once lock needs fcntl.flock (POSIX); this platform has none")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    started = time.monotonic()
    try:
        if timeout_s is None:
            fcntl.flock(fd, fcntl.LOCK_EX)
        else:
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() - started >= timeout_s:
                        raise ComputeLockError(f"{path} is still locked after {timeout_s:g} s") from None
                    time.sleep(poll_s)
        try:
            yield time.monotonic() - started
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
