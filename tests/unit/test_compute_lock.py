"""The compute-once lock (harness.runtime.compute_lock) and MeasurementStore.get_or_compute across processes.

Two processes asking for one key compute it exactly once (computations counted through a file), a holder killed with
SIGKILL releases the lock with its process, and the refresh mode recomputes a stale entry once. POSIX only.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
from pathlib import Path

import pytest

from harness.runtime.compute_lock import ComputeLockError, compute_lock
from harness.runtime.measurement_store import MeasurementStore, measurement_key

pytestmark = pytest.mark.skipif(os.name != "posix", reason="the compute-once lock is fcntl.flock (POSIX only)")
CTX = multiprocessing.get_context("fork")  # children inherit the imported harness and torch: no re-import
PARTS = {"what": "an item", "n": 3}
HOLD_S = 1.0
"""Seconds a computation holds the lock: long enough that the other process, started at the same moment, asks while
it is held even on a loaded machine."""


def _count_and_return(counter: Path, value: int, hold_s: float):  # type: ignore[no-untyped-def]
    def compute() -> int:
        with counter.open("a") as fh:  # one line per computation, appended by whichever process computes
            fh.write(f"{os.getpid()}\n")
        time.sleep(hold_s)
        return value
    return compute


def _ask(root: str, mode: str, counter: str, value: int, hold_s: float, start, out: str) -> None:  # type: ignore[no-untyped-def]
    start.wait()
    got = MeasurementStore(Path(root), mode=mode).get_or_compute("item", PARTS, _count_and_return(Path(counter), value, hold_s))
    Path(out).write_text(str(got))


def _hold_forever(lock: str, holding) -> None:  # type: ignore[no-untyped-def]
    with compute_lock(Path(lock)):
        holding.set()
        time.sleep(600)


def _run_together(procs: list, start) -> list[int | None]:  # type: ignore[no-untyped-def]
    """Start the processes, release them at once through ``start``, wait (30 s each at most); their exit codes."""
    for proc in procs:
        proc.start()
    start.set()
    for proc in procs:
        proc.join(30)
    return [proc.exitcode for proc in procs]


def _lines(path: Path) -> list[str]:
    return path.read_text().split() if path.exists() else []


def test_two_processes_compute_one_key_once(tmp_path: Path) -> None:
    counter, start = tmp_path / "computations.txt", CTX.Event()
    procs = [CTX.Process(target=_ask, args=(str(tmp_path / "cache"), "readwrite", str(counter), 7 + i, HOLD_S, start,
                                            str(tmp_path / f"out{i}"))) for i in range(2)]
    # both ask at once; the first to lock computes for HOLD_S while the other waits
    assert _run_together(procs, start) == [0, 0]
    assert len(_lines(counter)) == 1
    results = {(tmp_path / f"out{i}").read_text() for i in range(2)}
    assert len(results) == 1  # the waiter read the computer's value, not its own 7 or 8 computed again


def test_without_the_lock_both_processes_would_compute(tmp_path: Path) -> None:
    """The control of the test above: read mode takes no lock, and both processes compute (so the count can fail)."""
    counter, start = tmp_path / "computations.txt", CTX.Event()
    procs = [CTX.Process(target=_ask, args=(str(tmp_path / "cache"), "read", str(counter), i, 0.3, start,
                                            str(tmp_path / f"out{i}"))) for i in range(2)]
    _run_together(procs, start)
    assert len(_lines(counter)) == 2


def test_a_killed_holder_releases_the_lock(tmp_path: Path) -> None:
    cache = MeasurementStore(tmp_path / "cache")
    holding, start = CTX.Event(), CTX.Event()
    lock = cache.lock_path("item", measurement_key({"kind": "item", **PARTS}))
    holder = CTX.Process(target=_hold_forever, args=(str(lock), holding))
    holder.start()
    assert holding.wait(20)
    counter = tmp_path / "computations.txt"
    waiter = CTX.Process(target=_ask, args=(str(cache.root), "readwrite", str(counter), 5, 0.0, start,
                                            str(tmp_path / "out")))
    waiter.start()
    start.set()
    waiter.join(1.0)
    assert waiter.is_alive() and not _lines(counter)  # the holder's lock really blocks it
    os.kill(holder.pid, signal.SIGKILL)  # no cleanup runs: the kernel releases the flock with the process
    holder.join(10)
    waiter.join(20)
    assert waiter.exitcode == 0 and (tmp_path / "out").read_text() == "5" and len(_lines(counter)) == 1


def test_timeout_names_the_locked_file(tmp_path: Path) -> None:
    holding = CTX.Event()
    lock = tmp_path / "k.lock"
    holder = CTX.Process(target=_hold_forever, args=(str(lock), holding))
    holder.start()
    try:
        assert holding.wait(20)
        with pytest.raises(ComputeLockError, match=r"k\.lock is still locked after 0\.2 s"):
            with compute_lock(lock, timeout_s=0.2):
                pass
    finally:
        os.kill(holder.pid, signal.SIGKILL)
        holder.join(10)
    with compute_lock(lock, timeout_s=5) as waited:
        assert waited >= 0.0


def test_refresh_recomputes_a_stale_entry_once(tmp_path: Path) -> None:
    cache = MeasurementStore(tmp_path / "cache")
    counter = tmp_path / "computations.txt"
    assert cache.get_or_compute("item", PARTS, _count_and_return(counter, 1, 0.0)) == 1
    refresh = MeasurementStore(tmp_path / "cache", mode="refresh")
    assert refresh.get_or_compute("item", PARTS, _count_and_return(counter, 2, 0.0)) == 2  # stale: recomputed
    assert cache.get_or_compute("item", PARTS, _count_and_return(counter, 3, 0.0)) == 2  # the refreshed entry
    assert len(_lines(counter)) == 2


def test_two_refreshing_processes_compute_once(tmp_path: Path) -> None:
    cache = MeasurementStore(tmp_path / "cache")
    counter = tmp_path / "computations.txt"
    cache.get_or_compute("item", PARTS, _count_and_return(counter, 0, 0.0))  # a stale entry from an earlier run
    time.sleep(0.05)
    start = CTX.Event()
    procs = [CTX.Process(target=_ask, args=(str(cache.root), "refresh", str(counter), 7 + i, HOLD_S, start,
                                            str(tmp_path / f"out{i}"))) for i in range(2)]
    assert _run_together(procs, start) == [0, 0]
    assert len(_lines(counter)) == 2  # the earlier run's computation and one refresh
    assert {(tmp_path / f"out{i}").read_text() for i in range(2)} <= {"7", "8"}
    assert len({(tmp_path / f"out{i}").read_text() for i in range(2)}) == 1


def _hold_and_store(root: str, names: list[str], counter: str, start, holding) -> None:  # type: ignore[no-untyped-def]
    """Hold the locks of several items, compute them outside get_or_compute (as batched generation does), store each."""
    cache = MeasurementStore(Path(root))
    start.wait()
    with cache.holding("item", [{"name": n} for n in names]):
        holding.set()
        time.sleep(HOLD_S)
        for name in names:  # a held key takes no second lock in this process: this must not block
            cache.get_or_compute("item", {"name": name}, _count_and_return(Path(counter), f"{name} by holder", 0.0))


def _ask_named(root: str, name: str, counter: str, out: str) -> None:
    got = MeasurementStore(Path(root)).get_or_compute("item", {"name": name}, _count_and_return(Path(counter), "asker", 0))
    Path(out).write_text(got)


def test_a_held_batch_is_read_by_others_not_recomputed(tmp_path: Path) -> None:
    counter, start, holding = tmp_path / "computations.txt", CTX.Event(), CTX.Event()
    root = str(tmp_path / "cache")
    holder = CTX.Process(target=_hold_and_store, args=(root, ["b", "a"], str(counter), start, holding))
    holder.start()
    start.set()
    assert holding.wait(20)
    asker = CTX.Process(target=_ask_named, args=(root, "b", str(counter), str(tmp_path / "out")))
    asker.start()
    asker.join(30)
    holder.join(30)
    assert (holder.exitcode, asker.exitcode) == (0, 0)
    assert (tmp_path / "out").read_text() == "b by holder" and len(_lines(counter)) == 2


def test_overlapping_held_batches_do_not_deadlock(tmp_path: Path) -> None:
    """Locks are taken in key order, so two processes holding {a, b}, listed in opposite orders, both finish (taken
    in list order, each could hold its first and wait for its second forever)."""
    counter, start = tmp_path / "computations.txt", CTX.Event()
    root = str(tmp_path / "cache")
    procs = [CTX.Process(target=_hold_and_store, args=(root, names, str(counter), start, CTX.Event()))
             for names in (["a", "b"], ["b", "a"])]
    assert _run_together(procs, start) == [0, 0]
    assert len(_lines(counter)) == 2  # computed by whichever held them first; the other read them


def test_held_locks_are_taken_in_one_global_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The order that makes overlapping batches deadlock-free: by key, whatever order the caller lists the items in
    (the two-process test above passes either way when one process takes both locks before the other starts)."""
    import harness.runtime.measurement_store as module

    taken: list[str] = []
    real = module.compute_lock

    def recording(path: Path, *args, **kwargs):  # type: ignore[no-untyped-def]
        taken.append(path.stem)
        return real(path, *args, **kwargs)

    monkeypatch.setattr(module, "compute_lock", recording)
    cache = MeasurementStore(tmp_path / "cache")
    names = sorted("abcd", key=lambda n: measurement_key({"kind": "item", "name": n}), reverse=True)  # against key order
    with cache.holding("item", [{"name": n} for n in names]):
        assert len(taken) == 4
        cache.get_or_compute("item", {"name": "a"}, lambda: 1)  # held: no second lock
    assert taken == sorted(taken) and len(taken) == 4
    with MeasurementStore(tmp_path / "cache", mode="read").holding("item", [{"name": "x"}]):
        pass
    assert len(taken) == 4  # read mode never writes, so it takes no lock
