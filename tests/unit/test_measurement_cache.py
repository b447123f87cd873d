"""harness.measurement_cache.code_fingerprint: hashes code (not docstrings or comments) and follows imports."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness import kvcache
from harness.geometry import prompt_geometry as geometry
from harness.measurement_cache import clear_fingerprint_cache, code_fingerprint

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
