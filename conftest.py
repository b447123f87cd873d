"""Root conftest: registers the suite's pytest plugins (options and model fixtures, report, test fixtures).

An installed kvclaims registers the first three through its ``pytest11`` entry point as well
(:mod:`harness.plugin.pytest_entry`); both name the same modules, so each is registered once."""

pytest_plugins = [
    "harness.plugin.hooks", "harness.plugin.scale_out", "harness.plugin.ray_executor", "harness.plugin.fixtures",
    "harness.report.plugin",
    "fixtures.models",
]
