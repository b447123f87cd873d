"""Held-out evaluation of a cache projector: the receiver's continuation loss under each cache condition, and the
summary the claim ``projector_transfers_context`` is decided on.

Conditions of the cache before a held-out text's continuation (losses in nats/token,
:func:`~harness.exchange.projector.model.continuation_nll`):

- ``none``: only the receiver's own special prefix (no cache at all for a receiver whose tokenizer adds none);
- ``own``: the receiver's own cache of the context (the ceiling);
- ``projected``: the projector applied to the sharer's cache of the context;
- ``shuffled_sharer``: the same projector applied to the sharer cache of another held-out text's context (a fixed
  derangement σ of the texts; the cache has that text's length);
- ``random_sharer``: the same projector applied to Gaussian sharer K/V with the norms of the real ones per layer,
  KV head and position (:func:`harness.engine.kv_math.norm_matched_gaussian`);
- ``mismatched_pairs``: the projector trained on mismatched (context, continuation) pairs, applied to the context.
"""

from __future__ import annotations

import math

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from harness.engine.kv_math import norm_matched_gaussian
from harness.exchange.projector.model import (
    CacheProjector,
    SharerContext,
    continuation_nll,
    projected_snapshot,
    receiver_frame,
    receiver_own_snapshot,
    sharer_context,
)
from harness.exchange.projector.texts import ProjectorText
from harness.exchange.projector.training import continuation_ids, derangement
from harness.foundation.seeds import derive_seed
from harness.models import LoadedModel
from harness.runtime.progress import ProgressMeter
from harness.stats.bootstrap import bootstrap_ci

__all__ = ["BASELINE_CONDITIONS", "CONDITIONS", "ProjectorSummary", "gap_closed", "heldout_losses", "random_sharer_features",
           "summarize_losses"]

BASELINE_CONDITIONS: tuple[str, ...] = ("shuffled_sharer", "random_sharer", "mismatched_pairs")
"""The baselines each projected loss is contrasted with (L_baseline − L_projected, nats/token); the registry's
projector claim names which of them it registers (:data:`harness.registry.exchange_claims.PROJECTOR_BASELINES`,
a subset checked by tests/engine/test_projector.py)."""

CONDITIONS: tuple[str, ...] = ("none", "own", "projected", *BASELINE_CONDITIONS)
"""Every condition :func:`heldout_losses` measures, in this order."""


def random_sharer_features(context: SharerContext, n_kv_heads: int, seed: int) -> torch.Tensor:
    """Gaussian stand-ins for ``context.features`` with the norm of every (layer, position, key or value, head)
    vector kept (rotation keeps a key's norm, so the un-rotated keys' norms are the stored keys' norms)."""
    feats = context.features
    s, n, width2 = feats.shape
    heads = 2 * n_kv_heads
    return norm_matched_gaussian(feats.reshape(s, n, heads, width2 // heads), seed).reshape(s, n, width2)


def heldout_losses(sharer: LoadedModel, receiver: LoadedModel, projector: CacheProjector,
                   mismatched: CacheProjector, texts: Sequence[ProjectorText], seed: int) -> dict[str, list[float]]:
    """``{condition: [loss per text]}`` (nats/token, text order) for every condition of :data:`CONDITIONS`."""
    if len(texts) < 2:
        raise ValueError(f"held-out evaluation needs at least 2 texts, got {len(texts)}")
    frame = receiver_frame(receiver)
    contexts = [sharer_context(sharer, receiver, t.context) for t in texts]
    sigma = derangement(len(texts), derive_seed(seed, "shuffled_sharer"))
    losses: dict[str, list[float]] = {c: [] for c in CONDITIONS}
    meter = ProgressMeter(f"{receiver.name} projector from {sharer.name}: held-out", len(texts), "texts")
    with torch.no_grad():
        for i, (text, ctx) in enumerate(zip(texts, contexts)):
            cont = list(continuation_ids(receiver, text.continuation))
            noise = random_sharer_features(ctx, sharer.shape.n_kv_heads, derive_seed(seed, "random_sharer", text.id))
            snapshots = {
                "none": frame.prefix,
                "own": receiver_own_snapshot(receiver, ctx.receiver),
                "projected": projected_snapshot(projector, frame, ctx.features),
                "shuffled_sharer": projected_snapshot(projector, frame, contexts[sigma[i]].features),
                "random_sharer": projected_snapshot(projector, frame, noise),
                "mismatched_pairs": projected_snapshot(mismatched, frame, ctx.features),
            }
            for name in CONDITIONS:
                losses[name].append(float(continuation_nll(receiver, snapshots[name], cont)))
            if (i + 1) % 8 == 0 or i + 1 == len(texts):
                meter.advance(8 if (i + 1) % 8 == 0 else (i + 1) % 8)
    return losses


def gap_closed(l_none: Sequence[float], l_projected: Sequence[float], l_own: Sequence[float]) -> list[float | None]:
    """Per text (L_none − L_projected) / (L_none − L_own): 0 = no better than no context, 1 = as good as the
    receiver's own cache; None where the own cache does not help (L_none − L_own ≤ 0: the ratio has no meaning) or
    where the gap is so small that the ratio overflows (a subnormal L_none − L_own)."""
    if not len(l_none) == len(l_projected) == len(l_own):
        raise ValueError("gap_closed: the three loss lists differ in length")
    ratios = [(a - p) / (a - o) if a - o > 0 else None for a, p, o in zip(l_none, l_projected, l_own)]
    return [r if r is not None and math.isfinite(r) else None for r in ratios]


@dataclass(frozen=True)
class ProjectorSummary:
    """The decision numbers: ``estimate`` = mean(L_none − L_projected) with its CI, ``contrasts`` =
    ``{baseline: (mean(L_baseline − L_projected), low, high)}`` and ``details`` for the record (nats/token)."""

    estimate: float
    ci: tuple[float, float]
    contrasts: dict[str, tuple[float, float, float]]
    details: dict[str, Any]


def _mean_ci(values: np.ndarray, level: float, rng: int) -> tuple[float, float, float]:
    ci = bootstrap_ci(np.mean, values, level=level, rng=rng)
    return float(ci.estimate), float(ci.low), float(ci.high)


def summarize_losses(losses: Mapping[str, Sequence[float]], level: float, seed: int) -> ProjectorSummary:
    """Estimate, CI and contrasts from per-text losses (BCa bootstrap over texts at ``level``), plus the gap closed
    (mean of the per-text ratios where defined, with its CI, and the ratio of the mean gains) for the details."""
    missing = [c for c in CONDITIONS if c not in losses]
    if missing:
        raise ValueError(f"summarize_losses: no losses for {', '.join(missing)}")
    arr = {c: np.asarray(losses[c], dtype=np.float64) for c in CONDITIONS}
    if len({a.size for a in arr.values()}) != 1:
        raise ValueError("summarize_losses: conditions have different numbers of texts")
    gain = arr["none"] - arr["projected"]
    estimate, low, high = _mean_ci(gain, level, derive_seed(seed, "estimate"))
    contrasts = {b: _mean_ci(arr[b] - arr["projected"], level, derive_seed(seed, b)) for b in BASELINE_CONDITIONS}
    ratios = [r for r in gap_closed(arr["none"], arr["projected"], arr["own"]) if r is not None]
    own_gain = arr["none"] - arr["own"]
    gap = {"defined_texts": len(ratios), "texts": int(gain.size),
           "ratio_of_means": float(gain.mean() / own_gain.mean()) if own_gain.mean() > 0 else None}
    if len(ratios) >= 2:
        mean, lo, hi = _mean_ci(np.asarray(ratios), level, derive_seed(seed, "gap_closed"))
        gap |= {"mean": mean, "ci_low": lo, "ci_high": hi}
    details = {
        "mean_loss_nats_per_token": {c: float(a.mean()) for c, a in arr.items()},
        "own_gain": _mean_ci(own_gain, level, derive_seed(seed, "own_gain")),
        "gap_closed": gap,
        "losses_per_text": {c: [float(x) for x in a] for c, a in arr.items()},
    }
    return ProjectorSummary(estimate, (low, high), {b: c for b, c in contrasts.items()}, details)
