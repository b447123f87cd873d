"""Cache anatomy (DESIGN §4.8): :mod:`harness.anatomy.invariants` (cache shapes, injection ≡ text,
RoPE re-rotation) and :mod:`harness.anatomy.persona` (the persona signature experiment and its design checks)."""
