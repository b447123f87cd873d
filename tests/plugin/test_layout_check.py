"""The start-time load of local checkpoints (:mod:`harness.plugin.layout_check`): a serial run hands its copy of the
first model to the ``lm`` fixture instead of loading it twice, and never keeps more than one copy."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.plugin import layout_check
from harness.plugin.layout_check import check_models_at_start, take_kept
from tests.engine.test_model_architectures import save_tiny


@pytest.fixture
def checkpoints(tmp_path: Path) -> list[str]:
    return [f"path:{save_tiny('llama', tmp_path / 'a')}", f"path:{save_tiny('qwen2', tmp_path / 'b')}"]


def test_a_serial_run_keeps_the_first_models_copy_for_the_fixture_once(checkpoints: list[str]) -> None:
    first, second = sorted(checkpoints)
    check_models_at_start(checkpoints, device="cpu", dtype=None, model_args=None, keep_first=True)
    assert len(layout_check._KEPT) == 1  # only the first model's copy stays resident
    assert take_kept(first, device="cpu", dtype="float32", model_args=None) is None  # another dtype: not that load
    check_models_at_start(checkpoints, device="cpu", dtype=None, model_args=None, keep_first=True)
    kept = take_kept(first, device="cpu", dtype=None, model_args=None)
    assert kept is not None and kept.name == first
    assert take_kept(first, device="cpu", dtype=None, model_args=None) is None  # handed over once


def test_asking_for_another_model_releases_the_kept_copy(checkpoints: list[str]) -> None:
    first, second = sorted(checkpoints)
    check_models_at_start(checkpoints, device="cpu", dtype=None, model_args=None, keep_first=True)
    assert take_kept(second, device="cpu", dtype=None, model_args=None) is None
    assert not layout_check._KEPT


def test_under_xdist_nothing_is_kept(checkpoints: list[str]) -> None:
    check_models_at_start(checkpoints, device="cpu", dtype=None, model_args=None)
    assert not layout_check._KEPT
