"""Engine layer: hooking a loaded model, building and patching KV caches, decoding (docs/ARCHITECTURE.md).

- :mod:`harness.engine.tokens`: tokenisation and left-padded batches;
- :mod:`harness.engine.hooks`: context-managed forward hooks, always removed;
- :mod:`harness.engine.patch_specs`: immutable KV and activation patch specs and their controls (§4.3-4.5);
- :mod:`harness.engine.kv_math`: the tensor arithmetic of patches and controls (RoPE re-rotation, shuffles,
  norm-matched Gaussians);
- :mod:`harness.engine.kvcache`: the only ``DynamicCache`` code (prefill, patched prefixes, clone, export/inject);
- :mod:`harness.engine.prefill_reuse`: reuse of identical prefills within a process;
- :mod:`harness.engine.interventions`: V- and residual-stream patching;
- :mod:`harness.engine.attention`: attention entropy of captured attention probabilities;
- :mod:`harness.engine.generation`: the decode loop; :mod:`harness.engine.generation_records`: its records;
- :mod:`harness.engine.layout_proof`: the load-time proof of an inferred layout (registered with the loader).
"""
