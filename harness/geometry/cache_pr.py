"""Participation ratio of the V a donor's prefix cache holds (DESIGN §4.1, §4.3).

The donor's prefix cache is what a KV patch copies from; its PR at one layer is read from the cache tensor
itself (:mod:`harness.engine.kvcache`), not from a ``v_proj`` hook. PR is the eigenvalue participation ratio,
uncentred (:func:`harness.geometry.metrics.participation_ratio`): dimensionless, 1 ≤ PR ≤ window. Values are
stored in the :class:`~harness.runtime.measurement_store.MeasurementStore`, keyed by everything that determines them.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

import torch

from harness.engine import kvcache
from harness.engine.tokens import pad_id, special_ids
from harness.geometry import metrics
from harness.geometry.metrics import participation_ratio
from harness.models import LoadedModel
from harness.prompts.pairing import PairRole, TransferPair
from harness.runtime.measurement_store import MeasurementStore, code_fingerprint

__all__ = ["donor_cache_pr"]


def _cache_pr(lm: LoadedModel, donor_ids: Sequence[int], layer: int, window: int) -> float:
    """PR of the last ``window`` content positions of the donor's prefix cache (tokens 0 … n−2) at ``layer``."""
    prefix = list(donor_ids[:-1])
    prefilled, _ = kvcache.patched_prefix(lm.model, [donor_ids], None, None, pad_id=pad_id(lm.tokenizer))
    values = kvcache.layer_kv(prefilled, layer)[1][0]  # [n_kv_heads, stored, head_dim]
    lo, hi = kvcache.held_range(prefilled, layer)
    rows = values.permute(1, 0, 2).reshape(values.shape[1], -1)  # [stored, n_kv_heads·head_dim], v_proj layout
    specials = special_ids(lm.tokenizer)
    held = [p for p in range(lo, hi) if prefix[p] not in specials]
    if len(held) < window:
        raise metrics.PromptTooShortError(
            f"the donor's cached prefix holds {len(held)} content positions at layer {layer}; the window needs {window}"
        )
    chosen = torch.tensor([p - lo for p in held[-window:]])
    return participation_ratio(rows.index_select(0, chosen))


def donor_cache_pr(
    lm: LoadedModel,
    pairs: Sequence[TransferPair],
    layer: int,
    *,
    window: int = metrics.DEFAULT_WINDOW,
    role: PairRole = PairRole.RECURSIVE,
    store: MeasurementStore | None = None,
) -> list[float]:
    """Per pair, the eigenvalue PR (uncentred) of the V held in the donor's prefix cache at ``layer``.

    The donor's prefix cache is what a KV patch copies from: tokens ``0 … n−2`` (the engine never caches the
    last prompt token). The window is its last ``window`` content (non-special) positions, read from the
    cache tensor itself (``[n_kv_heads, positions, head_dim]``, laid out as ``v_proj``'s columns).
    Dimensionless, 1 ≤ PR ≤ window.
    """
    if not 0 <= layer < lm.shape.n_layers:
        raise ValueError(f"donor_cache_pr: {lm.name} has {lm.shape.n_layers} layers, not {layer}")
    store = store or MeasurementStore(mode="off")
    code = code_fingerprint([sys.modules[__name__]])
    out = []
    for pair in pairs:
        ids = pair.prompt(role)[1]
        parts = {"model": lm.identity, "ids": list(ids), "layer": layer, "window": window, "code": code}
        out.append(float(store.get_or_compute("donor_cache_pr", parts, lambda: _cache_pr(lm, ids, layer, window))))
    return out
