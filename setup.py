"""Build script beside pyproject.toml (which holds everything else, the bank's file patterns included) for the one
thing pyproject cannot say: the default prompt bank, ``prompts/`` at the repository root, ships inside the wheel as
``harness/prompts/shipped/``, so an installed kvclaims runs claims outside the repository
(:data:`harness.prompts.loading.DEFAULT_BANK_DIR`)."""

from setuptools import find_packages, setup

setup(
    packages=[*find_packages(include=["harness*"]), "harness.prompts.shipped"],
    package_dir={"harness.prompts.shipped": "prompts"},
)
