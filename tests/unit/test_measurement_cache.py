"""harness.runtime.measurement_store.code_fingerprint: hashes code (not docstrings or comments) and follows imports."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.engine import kvcache
from harness.geometry import prompt_geometry as geometry
from harness.runtime.measurement_store import (
    MeasurementStore,
    MissingMeasurementError,
    clear_fingerprint_cache,
    code_fingerprint,
)

BASE = '''"""Base module: the docstring."""

# a comment
SCALE = 2


def double(x):
    """Double ``x``."""
    return SCALE * x
'''

TOP = '''"""Top module: imports the base module relatively and a non-package module."""

import math

from .base import double


class Thing:
    """A class with a docstring."""

    def value(self):
        """The value."""
        return double(math.pi)  # a trailing comment


def lazy():
    from fpkg import other  # a function-level import is followed too
    return other.ANSWER
'''

OTHER = "ANSWER = 42\n"
UNRELATED = "NOTHING = 0\n"


@pytest.fixture()
def fpkg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A temporary package ``fpkg`` (top -> base, top -> other; unrelated is imported by nobody)."""
    root = tmp_path / "fpkg"
    root.mkdir()
    for name, text in (("__init__", ""), ("base", BASE), ("top", TOP), ("other", OTHER), ("unrelated", UNRELATED)):
        (root / f"{name}.py").write_text(text)
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.invalidate_caches()
    clear_fingerprint_cache()
    yield root
    for name in [m for m in sys.modules if m == "fpkg" or m.startswith("fpkg.")]:
        del sys.modules[name]
    clear_fingerprint_cache()


def _fingerprint() -> str:
    clear_fingerprint_cache()
    return code_fingerprint([importlib.import_module("fpkg.top")], package="fpkg")


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


def test_docstring_and_comment_edits_leave_the_fingerprint_unchanged(fpkg: Path) -> None:
    before = _fingerprint()
    _edit(fpkg / "top.py", "A class with a docstring.", "A reworded class docstring.")
    _edit(fpkg / "top.py", '"""The value."""', '"""The value, now documented at length."""')
    _edit(fpkg / "top.py", "# a trailing comment", "# another comment")
    _edit(fpkg / "base.py", '"""Base module: the docstring."""', '"""Base module: reworded."""')
    _edit(fpkg / "base.py", "# a comment", "# a different comment\n# over two lines")
    _edit(fpkg / "base.py", '"""Double ``x``."""', '"""Twice ``x``."""')
    assert _fingerprint() == before


def test_code_edits_change_the_fingerprint(fpkg: Path) -> None:
    before = _fingerprint()
    _edit(fpkg / "top.py", "return double(math.pi)", "return double(math.e)")
    assert _fingerprint() != before


def test_dependency_edits_change_the_fingerprint(fpkg: Path) -> None:
    before = _fingerprint()
    _edit(fpkg / "base.py", "SCALE = 2", "SCALE = 3")
    after_base = _fingerprint()
    assert after_base != before
    _edit(fpkg / "other.py", "ANSWER = 42", "ANSWER = 43")  # reached through a function-level import
    assert _fingerprint() != after_base


def test_modules_outside_the_closure_do_not_count(fpkg: Path) -> None:
    before = _fingerprint()
    _edit(fpkg / "unrelated.py", "NOTHING = 0", "NOTHING = 1")
    assert _fingerprint() == before


def test_functions_and_classes_stand_for_their_module(fpkg: Path) -> None:
    top = importlib.import_module("fpkg.top")
    assert code_fingerprint([top.Thing], package="fpkg") == code_fingerprint([top], package="fpkg")
    assert code_fingerprint([top.lazy, top.Thing], package="fpkg") == code_fingerprint([top], package="fpkg")


def test_fingerprint_is_order_free_and_cached() -> None:
    assert code_fingerprint([geometry, kvcache]) == code_fingerprint([kvcache, geometry])
    assert code_fingerprint([geometry]) != code_fingerprint([kvcache])
    assert code_fingerprint([geometry.measure_rv]) == code_fingerprint([geometry])


# ------------------------------------------------------------------------------- entry integrity (issue 15)

CORRUPTIONS = {
    "empty": b"",
    "truncated": None,  # the first half of a sound entry, as a crash before the data reached the disk leaves it
    "not_json": b"\x00\x01binary garbage",
    "wrong_shape": b"{}",
    "bare_value": b"[1.0, 2.0]",
    "other_key": None,
    "bad_sha": None,
}


@pytest.mark.parametrize("corruption", list(CORRUPTIONS))
def test_a_corrupt_entry_is_moved_aside_warned_about_and_recomputed(
        corruption: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import json
    import warnings

    from harness.runtime.measurement_store import CorruptCacheEntryWarning, MeasurementStore, measurement_key

    monkeypatch.setenv("KVCLAIMS_CACHE", str(tmp_path))
    cache = MeasurementStore()
    assert cache.root == tmp_path / "measurements"
    parts = {"what": "rv", "prompts": ["a", "b"]}
    calls: list[int] = []

    def compute() -> list[float]:
        calls.append(1)
        return [1.0, 2.0]

    assert cache.get_or_compute("rv", parts, compute) == [1.0, 2.0]
    key = measurement_key({"kind": "rv", **parts})
    target = cache.path("rv", key)
    sound = target.read_bytes()
    entry = json.loads(sound)
    bad = {
        "truncated": sound[: len(sound) // 2],
        "other_key": json.dumps({**entry, "key": "0" * 64}).encode(),
        "bad_sha": json.dumps({**entry, "value": [1.0, 3.0]}).encode(),
    }.get(corruption, CORRUPTIONS[corruption])
    target.write_bytes(bad)

    with pytest.warns(CorruptCacheEntryWarning, match=f"{target} is corrupt .*moved aside to .*corrupt/{key}\\."):
        assert cache.get_or_compute("rv", parts, compute) == [1.0, 2.0]
    assert len(calls) == 2  # recomputed, not a JSONDecodeError
    aside = list((tmp_path / "measurements" / "rv" / "corrupt").glob(f"{key}.*.json"))
    assert len(aside) == 1 and aside[0].read_bytes() == bad  # kept for inspection
    assert target.read_bytes() != bad
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the rewritten entry is sound: read back without a warning or a compute
        assert cache.get_or_compute("rv", parts, compute) == [1.0, 2.0]
    assert len(calls) == 2


def test_read_mode_warns_about_a_corrupt_entry_and_leaves_it(tmp_path: Path) -> None:
    from harness.runtime.measurement_store import CorruptCacheEntryWarning, MeasurementStore, measurement_key

    cache = MeasurementStore(tmp_path, "read")
    target = cache.path("rv", measurement_key({"kind": "rv", "x": 1}))
    target.parent.mkdir(parents=True)
    target.write_bytes(b"")
    with pytest.warns(CorruptCacheEntryWarning, match="left in place"):
        assert cache.get_or_compute("rv", {"x": 1}, lambda: 5) == 5
    assert target.read_bytes() == b"" and not (tmp_path / "rv" / "corrupt").exists()


def test_entries_are_written_with_their_key_and_sha256_and_fsynced(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    import json
    import os

    from harness.runtime.measurement_store import MeasurementStore, canonical_json, measurement_key

    order: list[str] = []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(os, "fsync", lambda fd: (order.append("fsync"), real_fsync(fd))[1])
    monkeypatch.setattr(os, "replace", lambda a, b: (order.append("replace"), real_replace(a, b))[1])
    cache = MeasurementStore(tmp_path)
    cache.get_or_compute("k", {"p": 1}, lambda: {"a": [1, 2]})
    assert order == ["fsync", "replace"]
    key = measurement_key({"kind": "k", "p": 1})  # the key scheme is unchanged: file name = sha256 of the parts
    entry = json.loads(cache.path("k", key).read_text())
    import hashlib
    assert entry == {"format": 1, "key": key, "value": {"a": [1, 2]},
                     "sha256": hashlib.sha256(canonical_json({"a": [1, 2]}).encode()).hexdigest()}
    assert [p.name for p in (tmp_path / "k").iterdir() if p.suffix != ".lock"] == [f"{key}.json"]


# ------------------------------------------------------------------------------------------------ work units


def test_units_are_runs_of_the_request_and_a_unit_is_computed_whole(tmp_path: Path) -> None:
    store = MeasurementStore(tmp_path, "readwrite")
    calls: list[list[int]] = []
    items = [{"item": i} for i in range(5)]

    def compute(indices: list[int]) -> list[int]:
        calls.append(indices)
        return [items[i]["item"] * 10 for i in indices]

    assert store.get_or_compute_units("k", items, compute, unit_size=2) == [0, 10, 20, 30, 40]
    assert calls == [[0, 1], [2, 3], [4]]
    assert store.get_or_compute_units("k", items, compute, unit_size=2) == [0, 10, 20, 30, 40]
    assert len(calls) == 3  # all read back
    store.get_or_compute_units("k", items[1:3], compute, unit_size=2)
    assert calls[3:] == [[0, 1]]  # items 1 and 2 in one unit: another key than either was stored under


def test_a_store_that_may_not_compute_names_what_it_lacks(tmp_path: Path) -> None:
    MeasurementStore(tmp_path, "readwrite").get_or_compute_units("k", [{"a": 1}], lambda ix: [1], unit_size=1)
    reader = MeasurementStore(tmp_path, "read", compute=False)
    assert reader.get_or_compute_units("k", [{"a": 1}], lambda ix: [2], unit_size=1) == [1]
    with pytest.raises(MissingMeasurementError, match=r"holds no k entry [0-9a-f]{16}…"):
        reader.get_or_compute_units("k", [{"a": 2}], lambda ix: [2], unit_size=1)
    with pytest.raises(MissingMeasurementError):
        reader.get_or_compute("other", {"a": 1}, lambda: 3)
    with pytest.raises(ValueError, match="reads only"):
        MeasurementStore(tmp_path, "readwrite", compute=False)
