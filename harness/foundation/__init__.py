"""Foundation layer: building blocks that import nothing else of the harness (docs/ARCHITECTURE.md).

- :mod:`harness.foundation.seeds`: sha256-derived seeds;
- :mod:`harness.foundation.serialize`: JSON builtins with an explicit NaN policy, the float32 array codec;
- :mod:`harness.foundation.decoding`: the decoding regime type (greedy, greedy with penalty, sampling);
- :mod:`harness.foundation.nonfinite`: the error of numbers that stopped being finite;
- :mod:`harness.foundation.behavioural_regime`: the registered behavioural regime (its decoding and the name of
  its score), the one room both the registry and the behaviour score's validation read.
"""
