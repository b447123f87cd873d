"""Deterministic seeds derived with sha256 (never ``hash()`` or a node id), stable across processes."""

from __future__ import annotations

import hashlib


def derive_seed(run_seed: int, *parts: object) -> int:
    """A 63-bit seed from the run seed and any labels, e.g. ``derive_seed(0, "rv_contraction", "smollm2-135m")``.

    The same inputs give the same seed on every machine and in every xdist worker.
    """
    text = "\x1f".join([str(run_seed), *(str(p) for p in parts)])
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big") >> 1
