"""The wheel's contents as pyproject.toml declares them: every harness package, the default prompt bank (``prompts/``
as ``harness/prompts/shipped/``) with every one of its files, and the ``pytest11`` entry point."""

from __future__ import annotations

import fnmatch
import tomllib
from pathlib import Path

from setuptools import find_packages

REPO = Path(__file__).resolve().parents[2]
SETUPTOOLS = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]


def test_every_harness_package_is_in_the_wheel() -> None:
    """A new room (sub-package) left out of the explicit package list would be missing from an installed kvclaims."""
    found = set(find_packages(where=str(REPO), include=["harness*"]))
    assert set(SETUPTOOLS["packages"]) == found | {"harness.prompts.shipped"}


def test_every_file_of_the_prompt_bank_ships() -> None:
    assert SETUPTOOLS["package-dir"] == {"harness.prompts.shipped": "prompts"}
    patterns = SETUPTOOLS["package-data"]["harness.prompts.shipped"]
    bank = REPO / "prompts"
    files = [p.relative_to(bank).as_posix() for p in bank.rglob("*") if p.is_file()]
    assert files
    unshipped = [f for f in files if not any(fnmatch.fnmatch(f, pattern) for pattern in patterns)]
    assert not unshipped, f"prompts/ files no package-data pattern ships: {unshipped}"


def test_the_plugin_is_a_pytest11_entry_point() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert project["entry-points"]["pytest11"] == {"kvclaims": "harness.plugin.pytest_entry"}
