"""How many intra-op threads torch should run on a CPU that other processes may be using.

torch's OpenMP threads wait for each other at the end of every parallel region by spinning. When another
process holds one of the cores, a spinning thread burns its slice waiting for a thread that is not running,
and a 2-thread decode on a 2-core machine under a load of about 4 runs several times slower than one thread
would (benchmarks/bench_loaded_cpu.py measures it). The policy here: as many threads as cores are actually
idle when it is asked (sampled from ``/proc/stat``), never more than this process's share of the cores and
never fewer than one.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

__all__ = ["idle_cores", "thread_count"]

_PROC_STAT = Path("/proc/stat")


def _cpu_jiffies(text: str) -> tuple[int, int]:
    """(idle + iowait, total) jiffies of the aggregate ``cpu`` line of a ``/proc/stat`` text."""
    for line in text.splitlines():
        fields = line.split()
        if fields and fields[0] == "cpu":
            counts = [int(x) for x in fields[1:]]
            if len(counts) < 4:
                break
            idle = counts[3] + (counts[4] if len(counts) > 4 else 0)
            return idle, sum(counts[:8])  # guest time is already counted in user/nice
    raise ValueError("no aggregate 'cpu' line with at least 4 counters in /proc/stat")


def idle_cores(sample_s: float = 0.2, cores: int | None = None) -> float | None:
    """Cores left idle by every process on the machine over the next ``sample_s`` seconds (0 … ``cores``).

    Measured as the idle share of all CPU time in two ``/proc/stat`` readings ``sample_s`` seconds apart, times
    the number of cores. Returns None where ``/proc/stat`` cannot be read (not Linux) or no time passed.
    """
    if sample_s <= 0:
        raise ValueError(f"sample_s must be > 0 seconds, got {sample_s!r}")
    cores = cores or os.cpu_count() or 1
    try:
        idle0, total0 = _cpu_jiffies(_PROC_STAT.read_text())
        time.sleep(sample_s)
        idle1, total1 = _cpu_jiffies(_PROC_STAT.read_text())
    except (OSError, ValueError):
        return None
    if total1 <= total0:
        return None
    return cores * min(1.0, max(0.0, (idle1 - idle0) / (total1 - total0)))


def thread_count(cores: int, workers: int = 1, idle: float | None = None) -> int:
    """Intra-op threads for one of ``workers`` processes sharing ``cores`` cores, ``idle`` of them now idle.

    The share is ``cores // workers`` (at least 1); with a measured ``idle`` (cores, a float), it is further capped
    at ``idle`` rounded to the nearest whole core, so no thread is started for a core another process holds.
    Never below 1.
    """
    if isinstance(cores, bool) or not isinstance(cores, int) or cores < 1:
        raise ValueError(f"cores must be a positive int, got {cores!r}")
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be a positive int, got {workers!r}")
    share = max(1, cores // workers)
    if idle is None:
        return share
    if not idle >= 0:
        raise ValueError(f"idle must be a number of cores >= 0, got {idle!r}")
    return max(1, min(share, int(idle + 0.5)))
