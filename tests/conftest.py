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
