"""Issue 28: a full disk while the measurement store writes an entry is one line; earlier entries stay, nothing
half-written is left, and a re-run computes only what is missing."""

from __future__ import annotations

import errno
import tempfile
from pathlib import Path

import pytest

from harness.runtime import measurement_store
from harness.runtime.measurement_store import MeasurementStore, StoreWriteError


def test_a_full_disk_is_one_line_and_keeps_finished_entries(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = MeasurementStore(tmp_path / "store", "readwrite")
    assert store.get_or_compute("kind", {"item": 1}, lambda: [1.0, 2.0]) == [1.0, 2.0]
    real_mkstemp = tempfile.mkstemp

    def full_disk(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(measurement_store.tempfile, "mkstemp", full_disk)
    with pytest.raises(StoreWriteError) as err:
        store.get_or_compute("kind", {"item": 2}, lambda: [3.0])
    message = str(err.value)
    assert "\n" not in message and "No space left on device" in message and "finished entries are intact" in message
    monkeypatch.setattr(measurement_store.tempfile, "mkstemp", real_mkstemp)
    assert not list((tmp_path / "store").rglob("*.tmp"))
    computed = []
    assert store.get_or_compute("kind", {"item": 1}, lambda: computed.append(1) or [9.0]) == [1.0, 2.0]  # kept
    assert store.get_or_compute("kind", {"item": 2}, lambda: computed.append(2) or [3.0]) == [3.0]
    assert computed == [2]  # only what was missing
