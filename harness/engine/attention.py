"""Attention entropy of captured attention probabilities (DESIGN §4.2): the engine records it at every decode step
when a capture asks for it (:mod:`harness.engine.generation`), and :mod:`harness.geometry` measures it at prefill."""

from __future__ import annotations

import torch

__all__ = ["attention_entropy"]


def attention_entropy(probs: torch.Tensor) -> torch.Tensor:
    """Entropy in nats of attention distributions along the last axis.

    ``probs`` holds attention probabilities (each row sums to 1 over keys); zero-probability keys (masked or
    evicted) contribute 0. Result: one value per row, in [0, log(number of keys with p > 0)], float32.
    """
    p = probs.float()
    return -(p * torch.where(p > 0, p.log(), torch.zeros_like(p))).sum(dim=-1)
