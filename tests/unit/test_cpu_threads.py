"""harness.runtime.cpu_threads: the thread-count policy for a CPU other processes may be using."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from harness.runtime import cpu_threads
from harness.runtime.cpu_threads import _cpu_jiffies, idle_cores, thread_count

cores_st = st.integers(1, 256)
workers_st = st.integers(1, 64)
idle_st = st.one_of(st.none(), st.floats(0, 512, allow_nan=False))


@given(cores_st, workers_st, idle_st)
def test_thread_count_stays_between_one_and_the_share(cores: int, workers: int, idle: float | None) -> None:
    threads = thread_count(cores, workers, idle)
    assert 1 <= threads <= max(1, cores // workers)


@given(cores_st, workers_st, st.floats(0, 512, allow_nan=False), st.floats(0, 512, allow_nan=False))
def test_more_idle_cores_never_mean_fewer_threads(cores: int, workers: int, a: float, b: float) -> None:
    low, high = sorted((a, b))
    assert thread_count(cores, workers, low) <= thread_count(cores, workers, high)


@given(cores_st, workers_st)
def test_an_idle_machine_or_no_measurement_gives_the_whole_share(cores: int, workers: int) -> None:
    share = max(1, cores // workers)
    assert thread_count(cores, workers, None) == share == thread_count(cores, workers, float(cores))


def test_a_busy_core_is_not_given_a_thread() -> None:
    assert thread_count(2, 1, 1.1) == 1 and thread_count(2, 1, 0.0) == 1 and thread_count(2, 1, 1.6) == 2
    assert thread_count(8, 2, 3.0) == 3


@pytest.mark.parametrize("bad", [0, -1, True, 2.0])
def test_bad_core_or_worker_counts_are_refused(bad) -> None:
    with pytest.raises(ValueError, match="cores must be"):
        thread_count(bad)
    with pytest.raises(ValueError, match="workers must be"):
        thread_count(2, bad)


def test_a_negative_or_nan_idle_is_refused() -> None:
    for bad in (-0.5, float("nan")):
        with pytest.raises(ValueError, match="idle must be"):
            thread_count(2, 1, bad)


def test_jiffies_are_read_from_the_aggregate_line() -> None:
    text = "cpu  10 0 5 100 3 0 1 0 0 0\ncpu0 5 0 2 50 1 0 0 0 0 0\n"
    assert _cpu_jiffies(text) == (103, 119)
    with pytest.raises(ValueError, match="aggregate"):
        _cpu_jiffies("cpu0 1 2 3 4\n")


def test_idle_cores_is_a_share_of_the_cores_or_none(tmp_path, monkeypatch) -> None:
    measured = idle_cores(0.05, cores=2)
    assert measured is None or 0.0 <= measured <= 2.0
    monkeypatch.setattr(cpu_threads, "_PROC_STAT", tmp_path / "absent")
    assert idle_cores(0.01) is None
    with pytest.raises(ValueError, match="sample_s"):
        idle_cores(0)
