"""Value-space geometry (DESIGN §4.1-4.2), one module per concept:

- :mod:`harness.geometry.metrics`: participation ratio, R_V (the one ratio, :func:`~harness.geometry.metrics.rv_from_pr`),
  per-KV-head PR, the content-token window, attention entropy;
- :mod:`harness.geometry.capture`: batched clean-prefill capture of V windows (and attention entropy);
- :mod:`harness.geometry.prompt_geometry`: per-prompt PR / R_V / entropy tables, cached, and group contrasts;
- :mod:`harness.geometry.replay`: V on a continuation's generated tokens, replayed over its own (patched)
  prefix cache, and the R_V measured on it;
- :mod:`harness.geometry.cache_pr`: PR of the V a donor's prefix cache holds.
"""
