"""The installed pytest plugin (``pytest11`` entry point ``kvclaims`` in pyproject.toml): what the repository's root
``conftest.py`` registers, for any directory once kvclaims is installed. Both name the plugins by module, so in the
repository, where both run, each registers once (pytest skips a module already registered under its name).
``-p no:kvclaims`` turns it off."""

pytest_plugins = [
    "harness.plugin.hooks", "harness.plugin.scale_out", "harness.plugin.ray_executor", "harness.plugin.fixtures",
    "harness.report.plugin",
]
"""The plugin's modules by their own names, never the ``harness.plugin`` package: loading this entry module imports
that package, and pytest warns in every run ("cannot be rewritten") about a listed module that is already imported."""
