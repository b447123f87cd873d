"""The pytest plugin (registered by the root ``conftest.py``, or the ``pytest11`` entry point of an installed kvclaims,
:mod:`harness.plugin.pytest_entry`): :mod:`harness.plugin.hooks` (options, model
parametrization, session hooks) and :mod:`harness.plugin.fixtures` (``lm``, ``prompt_bank``, ``run_settings``,
``measurement_store``, ``claim``)."""

pytest_plugins = ["harness.plugin.hooks", "harness.plugin.fixtures"]
