"""Root conftest: registers the suite's pytest plugins (options, model fixtures, report)."""

pytest_plugins = ["harness.pytest_plugin", "fixtures.models"]
