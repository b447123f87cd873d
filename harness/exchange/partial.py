"""Partial-layer cache transfer: a receiver decodes from a cache whose first (or last) ⌈f·L⌉ layers are the donor's
and whose other layers are its own (issue 14, item 2a).

Design. A donor text D and a receiver text R of the same token length n (an exact-length pair of the bank: D the
recursive prompt, R the baseline). Tokens ``0 … n−2`` of each are prefilled; the partial cache at fraction f is R's
cache with the chosen layers' K and V replaced by D's at every position (:func:`partial_spec`, a
:class:`~harness.engine.patch_specs.KVPatchSpec` at α = 1 run by :func:`harness.engine.kvcache.patch_kv` through
:func:`harness.engine.generation.generate`, the suite's one patching path). Decoding feeds R's last token at position
n − 1. At f = 1 the partial cache is D's own cache bit for bit (the reference, "full"); at f = 0 it is R's own
cache (the floor). Sliding-window layers keep their type, window and count of positions seen; positions they no
longer hold are skipped and reported by the patch (never the case for prompts shorter than the window).

Measures, per pair and condition (:func:`measure_partial_fidelity`):

- ``kl``: KL(P_full ‖ P_partial) in nats, P the next-token distribution of the first decode step (softmax of the
  raw logits, float64); 0 at f = 1 by construction.
- ``agreement``: share of the reference's greedy tokens (32 under the registered regime) that the partial run's
  greedy continuation matches position by position (a missing token counts as a mismatch); 1 at f = 1.

Summaries (:func:`fidelity_steps`, :func:`block_spearman`, :func:`mean_curve`, :func:`half_contrast`) turn the
per-pair tables into the claim's statistics; all bootstraps resample pairs.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from fractions import Fraction
from typing import Any

import numpy as np
import torch
from scipy import stats as sps

from harness.engine.generation import GenerationRequest, generate
from harness.engine.generation_records import GenerationRecord
from harness.engine.patch_specs import KVPatchSpec
from harness.foundation.decoding import DecodingRegime
from harness.foundation.serialize import to_builtin
from harness.models import LoadedModel
from harness.prompts.pairing import TransferPair
from harness.runtime.measurement_store import MeasurementStore, code_fingerprint
from harness.stats import ConfidenceInterval, bootstrap_ci, in_gap_units, page_trend, steps_as_bounds
from harness.transfer.disruption import next_token_kl

__all__ = [
    "FidelityTrend", "LayerEnd", "PartialFidelity", "block_spearman", "fidelity_steps", "fidelity_trend",
    "greedy_agreement", "half_contrast", "layer_count", "mean_curve", "measure_partial_fidelity", "partial_spec", "transferred_layers",
]


class LayerEnd(str, Enum):
    """Which end of the stack a partial transfer takes its layers from."""

    FIRST = "first"
    LAST = "last"


def layer_count(n_layers: int, fraction: float) -> int:
    """⌈fraction · n_layers⌉, computed exactly on the fraction's decimal value (so 0.1 · 30 is 3, not 4)."""
    if isinstance(n_layers, bool) or not isinstance(n_layers, int) or n_layers < 1:
        raise ValueError(f"n_layers must be a positive int, got {n_layers!r}")
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0.0 <= fraction <= 1.0:
        raise ValueError(f"fraction must be a number in [0, 1], got {fraction!r}")
    return math.ceil(Fraction(repr(float(fraction))) * n_layers)


def transferred_layers(n_layers: int, fraction: float, end: LayerEnd) -> tuple[int, ...]:
    """The layer indices a partial transfer of ``fraction`` takes from the donor: the first or the last
    ⌈fraction · n_layers⌉ layers (empty at 0, every layer at 1)."""
    k = layer_count(n_layers, fraction)
    if not isinstance(end, LayerEnd):
        raise ValueError(f"end must be a LayerEnd, got {end!r}")
    return tuple(range(k)) if end is LayerEnd.FIRST else tuple(range(n_layers - k, n_layers))


def partial_spec(layers: Sequence[int]) -> KVPatchSpec | None:
    """The KV patch that transfers ``layers`` whole (every position, K and V, α = 1); None for no layer (the
    receiver's own cache)."""
    return KVPatchSpec(layers=tuple(layers)) if len(layers) else None


def greedy_agreement(reference: Sequence[int], tokens: Sequence[int]) -> float:
    """Share of ``reference``'s tokens that ``tokens`` matches at the same position (a missing token is a mismatch);
    in [0, 1]."""
    if not reference:
        raise ValueError("greedy_agreement: the reference continuation is empty")
    same = sum(1 for a, b in zip(reference, tokens) if a == b)
    return same / len(reference)


@dataclass(frozen=True)
class PartialFidelity:
    """Per-pair fidelity of partial transfers on one model.

    ``kl[end]`` and ``agreement[end]`` are ``[pairs, fractions]`` float64 arrays (nats; share of the reference's
    tokens), columns in ``fractions`` order; the f = 0 and f = 1 columns are the same runs for both ends.
    ``layers[end][j]`` are the layers transferred at ``fractions[j]``. ``not_applicable_rows`` counts (condition,
    pair) runs in which a sliding-window layer could not take some donor position (0 for prompts inside the window).
    """

    pair_ids: tuple[str, ...]
    fractions: tuple[float, ...]
    n_layers: int
    layers: dict[LayerEnd, tuple[tuple[int, ...], ...]]
    kl: dict[LayerEnd, np.ndarray]
    agreement: dict[LayerEnd, np.ndarray]
    not_applicable_rows: int
    decoding: DecodingRegime


def measure_partial_fidelity(
    lm: LoadedModel, pairs: Sequence[TransferPair], *, decoding: DecodingRegime, fractions: Sequence[float],
    batch_size: int = 32, run_seed: int = 0, store: MeasurementStore | None = None,
) -> PartialFidelity:
    """Decode every pair (receiver = baseline, donor = recursive) from each distinct partial cache and compare with
    the full-cache run (see the module docstring). ``fractions`` must include 1 (the reference); each distinct layer
    set is decoded once, in batches of ``batch_size`` pairs from the first. The per-pair numbers are one ``store``
    entry (kind ``partial_fidelity``), keyed by the model, the pairs' token ids, the regime, the fractions, the batch
    size, the seed and this module's code. Raises ValueError for pairs of unequal length."""
    if not pairs:
        raise ValueError("measure_partial_fidelity: no pairs")
    unequal = [p.id for p in pairs if len(p.recursive_ids) != len(p.baseline_ids)]
    if unequal:
        raise ValueError(f"partial transfer needs donor and receiver of equal token length; unequal: {unequal[:3]}")
    fractions = tuple(float(f) for f in fractions)
    if 1.0 not in fractions or list(fractions) != sorted(set(fractions)):
        raise ValueError(f"fractions must be strictly increasing and include 1, got {fractions}")
    n_layers = lm.shape.n_layers
    layers = {end: tuple(transferred_layers(n_layers, f, end) for f in fractions) for end in LayerEnd}
    parts = {"model": lm.identity, "pairs": [[p.id, list(p.baseline_ids), list(p.recursive_ids)] for p in pairs],
             "decoding": to_builtin(decoding, nonfinite="keep"), "fractions": list(fractions), "batch_size": batch_size,
             "run_seed": run_seed, "code": code_fingerprint([sys.modules[__name__]])}
    stored = (store or MeasurementStore(mode="off")).get_or_compute(
        "partial_fidelity", parts, lambda: _decode_partial(lm, pairs, decoding, layers, batch_size, run_seed))
    return PartialFidelity(
        tuple(p.id for p in pairs), fractions, n_layers, layers,
        {end: np.asarray(stored["kl"][end.value], dtype=np.float64).reshape(len(pairs), len(fractions))
         for end in LayerEnd},
        {end: np.asarray(stored["agreement"][end.value], dtype=np.float64).reshape(len(pairs), len(fractions))
         for end in LayerEnd},
        stored["not_applicable_rows"], decoding)


def _decode_partial(lm: LoadedModel, pairs: Sequence[TransferPair], decoding: DecodingRegime,
                    layers: dict[LayerEnd, tuple[tuple[int, ...], ...]], batch_size: int,
                    run_seed: int) -> dict[str, Any]:
    """The per-pair KL and agreement of every partial cache against the full one, as builtins for the store."""
    n_layers = lm.shape.n_layers
    requests = [GenerationRequest(p.id, p.baseline_ids, p.recursive_ids) for p in pairs]
    runs: dict[tuple[int, ...], list[GenerationRecord]] = {}
    for chosen in dict.fromkeys(s for sets in layers.values() for s in sets):
        runs[chosen] = generate(lm, requests, decoding=decoding, patch=partial_spec(chosen), condition=f"layers{chosen}",
                                run_seed=run_seed, batch_size=batch_size, keep_first_logits=True)
    full = runs[tuple(range(n_layers))]
    reference_logits = torch.stack([r.first_logits for r in full])  # type: ignore[misc]
    kl, agreement = {}, {}
    for end, sets in layers.items():
        kl[end] = np.column_stack([next_token_kl(reference_logits, torch.stack([r.first_logits for r in runs[s]]))
                                   for s in sets])  # type: ignore[misc]
        agreement[end] = np.asarray([[greedy_agreement(ref.generated_ids, runs[s][i].generated_ids) for s in sets]
                                     for i, ref in enumerate(full)], dtype=np.float64)
    skipped = sum(1 for records in runs.values() for r in records if r.not_applicable)
    return {"kl": {end.value: kl[end].tolist() for end in LayerEnd},
            "agreement": {end.value: agreement[end].tolist() for end in LayerEnd}, "not_applicable_rows": skipped}


# ------------------------------------------------------------------------------------------- summaries


def _gap_step(upper: np.ndarray, lower: np.ndarray, full: np.ndarray, floor: np.ndarray) -> float:
    return in_gap_units(np.mean(upper - lower), full, floor)


def fidelity_steps(scores: np.ndarray, *, level: float, rng: int | np.random.Generator,
                   n_resamples: int = 9999) -> list[ConfidenceInterval]:
    """Adjacent steps of a fidelity score (higher = closer to the full cache; e.g. −KL) over ordered fractions, in
    floor units: step_k = mean(s_k+1 − s_k) / (mean s_last − mean s_first), 0 = the floor (first column), 1 = the
    full cache (last column); each with a paired BCa bootstrap CI over pairs (rows) that resamples numerator and
    denominator together. ``scores`` is ``[pairs ≥ 2, fractions ≥ 2]``."""
    arr = np.asarray(scores, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[0] < 2 or arr.shape[1] < 2:
        raise ValueError(f"fidelity_steps: need a (pairs ≥ 2) × (fractions ≥ 2) array, got shape {arr.shape}")
    gen = np.random.default_rng(rng)
    full, floor = arr[:, -1], arr[:, 0]
    return [bootstrap_ci(_gap_step, arr[:, k + 1], arr[:, k], full, floor, paired=True, level=level,
                         n_resamples=n_resamples, rng=gen) for k in range(arr.shape[1] - 1)]


def block_spearman(scores: np.ndarray) -> np.ndarray:
    """Per row, Spearman ρ between column order (the fractions) and the row's scores; 0 for a constant row (no
    ordering). ``[pairs]`` in [−1, 1]."""
    arr = np.asarray(scores, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[1] < 2:
        raise ValueError(f"block_spearman: need a (pairs × conditions ≥ 2) array, got shape {arr.shape}")
    order = np.arange(arr.shape[1], dtype=np.float64)
    return np.asarray([0.0 if np.all(row == row[0]) else float(sps.spearmanr(order, row).statistic) for row in arr])


def mean_curve(values: np.ndarray, *, level: float, rng: int | np.random.Generator) -> dict[str, list[float]]:
    """Column means of ``[pairs, fractions]`` values with BCa CIs over pairs: ``{"estimate", "ci_low", "ci_high"}``
    (a column constant over pairs, e.g. KL = 0 at f = 1, has no interval: NaN bounds)."""
    gen = np.random.default_rng(rng)
    cis = [bootstrap_ci(np.mean, col, level=level, rng=gen) for col in np.asarray(values, dtype=np.float64).T]
    return {"estimate": [c.estimate for c in cis], "ci_low": [c.low for c in cis], "ci_high": [c.high for c in cis]}


def half_contrast(first: np.ndarray, last: np.ndarray, *, level: float,
                  rng: int | np.random.Generator) -> dict[str, Any]:
    """Which half carries more: mean over pairs of ``last − first`` (per-pair values of one fidelity measure at
    f = 0.5, oriented so that higher = closer to the full cache) with a BCa CI over pairs; > 0 means the last
    layers carry more. ``{"estimate", "ci_low", "ci_high", "level", "n"}``."""
    diff = np.asarray(last, dtype=np.float64) - np.asarray(first, dtype=np.float64)
    if np.all(diff == diff[0]):
        low = high = float(diff[0])
    else:
        ci = bootstrap_ci(np.mean, diff, level=level, rng=rng)
        low, high = ci.low, ci.high
    return {"estimate": float(diff.mean()), "ci_low": low, "ci_high": high, "level": level, "n": int(diff.size)}


@dataclass(frozen=True)
class FidelityTrend:
    """The registered trend statistics of partial_layer_fidelity, over both layer ends.

    ``estimate``: the smaller of the two ends' mean within-pair Spearman ρ(fraction, score) (in [−1, 1]);
    ``p_value``: the larger of the two ends' Page's L p (intersection–union: small only when both ends rise);
    ``step_cis``: every adjacent step's CI in floor units, first-layer steps then last-layer steps;
    ``per_end``: ``{end: {"page_L", "page_p", "mean_rho", "steps", "step_cis"}}`` for the record.
    """

    estimate: float
    p_value: float
    step_cis: list[tuple[float, float]]
    per_end: dict[str, dict[str, Any]]


def fidelity_trend(scores: dict[LayerEnd, np.ndarray], *, level: float, rng: int | np.random.Generator,
                   n_resamples: int = 9999) -> FidelityTrend:
    """Page's L, mean block Spearman ρ and adjacent-step CIs (:func:`fidelity_steps`) of a fidelity score
    (``[pairs, fractions]`` per end, higher = closer to the full cache, e.g. −KL) for each layer end, combined as
    :class:`FidelityTrend` says. Both ends need the same shape, at least 2 pairs and 3 fractions."""
    if set(scores) != set(LayerEnd):
        raise ValueError(f"fidelity_trend needs scores for both layer ends, got {sorted(e.value for e in scores)}")
    shapes = {np.asarray(v).shape for v in scores.values()}
    if len(shapes) != 1:
        raise ValueError(f"fidelity_trend: the two ends' score tables differ in shape: {sorted(shapes)}")
    gen = np.random.default_rng(rng)
    per_end: dict[str, dict[str, Any]] = {}
    for end in LayerEnd:
        arr = np.asarray(scores[end], dtype=np.float64)
        page = page_trend(arr)
        steps = fidelity_steps(arr, level=level, rng=gen, n_resamples=n_resamples)
        per_end[end.value] = {"page_L": page.statistic, "page_p": page.p_value,
                              "mean_rho": float(block_spearman(arr).mean()), "steps": [c.estimate for c in steps],
                              "step_cis": steps_as_bounds(steps)}
    return FidelityTrend(
        estimate=min(e["mean_rho"] for e in per_end.values()),
        p_value=max(e["page_p"] for e in per_end.values()),
        step_cis=[tuple(b) for e in per_end.values() for b in e["step_cis"]],
        per_end=per_end,
    )
