"""Root conftest: registers the suite's pytest plugins (options and model fixtures, report, test fixtures)."""

pytest_plugins = ["harness.plugin", "harness.report.plugin", "fixtures.models"]
