"""Recognising an out-of-memory error, whatever raised it: torch's ``OutOfMemoryError`` (CUDA), Python's
``MemoryError`` (host RAM), or a ``RuntimeError`` whose message says "out of memory" (some kernels and backends raise
that instead)."""

from __future__ import annotations

import torch

__all__ = ["is_out_of_memory"]


def is_out_of_memory(exc: BaseException) -> bool:
    """Whether ``exc`` reports that memory ran out (the caller may retry smaller, and must not mistake it for
    another failure)."""
    return isinstance(exc, (torch.OutOfMemoryError, MemoryError)) or "out of memory" in str(exc).lower()
