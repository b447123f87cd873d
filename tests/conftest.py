"""Shared test configuration: hypothesis profiles (HYPOTHESIS_PROFILE=dev|ci|thorough) and the default prompt bank."""

import os

import pytest
from hypothesis import HealthCheck, settings

from harness.prompts import PromptBank, load_bank

pytest_plugins = ["pytester"]

settings.register_profile("dev", max_examples=25, deadline=None)
settings.register_profile(
    "ci", deadline=None, derandomize=True, database=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("thorough", max_examples=1000, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))


@pytest.fixture(scope="session")
def bank() -> PromptBank:
    """The shipped default prompt bank (read-only)."""
    return load_bank()


@pytest.fixture
def pytester(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    """pytest's ``pytester`` with the installed kvclaims entry point off in the runs it starts (``-p no:kvclaims``):
    those runs register the suite's plugins through their own conftest, or stand in for them, and the entry point
    (:mod:`harness.plugin.pytest_entry`) would add them to every one; tests/plugin/test_user_claims.py loads it by
    module name where it is wanted. (pytester clears ``PYTEST_ADDOPTS`` itself, so this is set after it.)"""
    monkeypatch.setenv("PYTEST_ADDOPTS", "-p no:kvclaims")
    return pytester
