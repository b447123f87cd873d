"""Runtime layer: where and how work runs, never what it measures (docs/ARCHITECTURE.md).

- :mod:`harness.runtime.storage`: the suite's on-disk root (``KVCLAIMS_CACHE``);
- :mod:`harness.runtime.measurement_store`: the content-addressed on-disk store of raw measurements, computed once
  per key across processes, and the code fingerprint that keys it;
- :mod:`harness.runtime.compute_lock`: the compute-once lock (``fcntl.flock`` per key);
- :mod:`harness.runtime.progress`: progress lines a user can see;
- :mod:`harness.runtime.termination`: SIGTERM handled like Ctrl-C (a preempted run writes its report);
- :mod:`harness.runtime.cpu_threads`, :mod:`harness.runtime.gpu_assignment`, :mod:`harness.runtime.worker_policy`:
  threads and GPUs per xdist worker;
- :mod:`harness.runtime.xdist_scheduling`: one xdist work unit per model.
"""
