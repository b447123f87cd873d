"""Per-prompt prefill geometry (DESIGN §4.1-4.2), cached on disk one prompt at a time.

One clean batched prefill per batch of prompts captures, at **every** layer, the V window (last W content
tokens) and, for eager-attention models, each query head's attention entropy over the window's query
positions. From these it stores, per prompt, the PR of the window at every layer (concatenated V and per
KV head; ``eigen`` and ``singular`` kinds, uncentred and centred) and the entropies. Each prompt is one
cache entry keyed by the model's identity, the prompt's id and text, W and the code that computes it, so
claims that share prompts (rv_contraction, the confound claims, level_rv_trend, attention_entropy_differs)
share one forward pass per prompt, and re-runs cost nothing.

Units: PR is dimensionless (an effective number of dimensions, 1 ≤ PR ≤ W); R_V = PR(late) / PR(early);
entropy is in nats (0 = all attention on one key; ln k = uniform over k keys).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from harness.geometry import capture, metrics
from harness.geometry.metrics import PRKind, participation_ratio, per_head_pr, rv_from_pr
from harness.models import LoadedModel
from harness.prompts import Prompt
from harness.runtime.measurement_store import MeasurementStore, code_fingerprint
from harness.stats import ConfidenceInterval, bootstrap_ci, hedges_g, welch_t

PR_VARIANTS: tuple[tuple[PRKind, bool], ...] = (("eigen", False), ("eigen", True), ("singular", False), ("singular", True))
CACHE_KIND = "prompt_geometry"
"""Measurement-store kind of the per-prompt entries."""


def variant_name(kind: PRKind, centered: bool) -> str:
    """Key of a PR variant, e.g. ``eigen`` or ``eigen-centered``."""
    return f"{kind}-centered" if centered else kind


@dataclass(frozen=True)
class PRTable:
    """PR of every prompt at a set of layers.

    ``pr[variant][layer][i]`` is the PR of prompt ``prompt_ids[i]`` at ``layer`` (concatenated KV heads);
    ``head_pr[variant][layer][i][h]`` the PR of KV head h alone.
    """

    prompt_ids: tuple[str, ...]
    layers: tuple[int, ...]
    window: int
    pr: dict[str, dict[int, list[float]]]
    head_pr: dict[str, dict[int, list[list[float]]]]

    def r_v(self, early: int, late: int, kind: PRKind = "eigen", centered: bool = False) -> list[float]:
        """R_V = PR(late)/PR(early) per prompt, in ``prompt_ids`` order."""
        table = self.pr[variant_name(kind, centered)]
        for layer in (early, late):
            if layer not in table:
                raise KeyError(f"layer {layer} was not measured (layers: {list(self.layers)})")
        return [rv_from_pr(ev, lt) for ev, lt in zip(table[early], table[late])]

    def select(self, ids: Sequence[str]) -> PRTable:
        """The rows of ``ids`` (in that order)."""
        index = [self.prompt_ids.index(i) for i in ids]
        return PRTable(
            tuple(ids),
            self.layers,
            self.window,
            {v: {layer: [rows[i] for i in index] for layer, rows in t.items()} for v, t in self.pr.items()},
            {v: {layer: [rows[i] for i in index] for layer, rows in t.items()} for v, t in self.head_pr.items()},
        )


@dataclass(frozen=True)
class EntropyTable:
    """Attention entropy (nats) of every prompt at a set of layers.

    ``entropy[layer][i][h]`` is query head h's entropy at ``layer`` for prompt ``prompt_ids[i]``, averaged over
    the W window query positions.
    """

    prompt_ids: tuple[str, ...]
    layers: tuple[int, ...]
    window: int
    entropy: dict[int, list[list[float]]]

    def mean_over_heads(self, layer: int) -> list[float]:
        """Per prompt, the entropy at ``layer`` averaged over its query heads (nats)."""
        return [float(np.mean(heads)) for heads in self.entropy[layer]]

    def head(self, layer: int, h: int) -> list[float]:
        """Per prompt, query head h's entropy at ``layer`` (nats)."""
        return [heads[h] for heads in self.entropy[layer]]


UNIT_PROMPTS = 8
"""Prompts per work unit: one batched prefill (:meth:`MeasurementStore.get_or_compute_units`)."""


def _code() -> str:
    return code_fingerprint([sys.modules[__name__]])


def _parts(lm: LoadedModel, prompt: Prompt, window: int, code: str) -> dict[str, Any]:
    attention = getattr(lm.model.config, "_attn_implementation", None)  # as running now, not as loaded
    return {"model": lm.identity, "attention": attention, "prompt": [prompt.id, prompt.text], "window": window,
            "code": code}


def has_eager_attention(lm: LoadedModel) -> bool:
    """Whether the model's attention modules return their probabilities (eager attention)."""
    return getattr(lm.model.config, "_attn_implementation", None) == "eager"


def _compute(lm: LoadedModel, prompts: Sequence[Prompt], window: int) -> list[dict[str, Any]]:
    layers = list(range(lm.shape.n_layers))
    windows = capture.capture_v_windows(
        lm, [(p.id, p.text) for p in prompts], layers, window=window, batch_size=len(prompts),
        attention_entropy_layers=layers if has_eager_attention(lm) else (),
    )
    g = lm.shape
    records = []
    for i in range(len(prompts)):
        pr: dict[str, list[float]] = {}
        head: dict[str, list[list[float]]] = {}
        for kind, centered in PR_VARIANTS:
            name = variant_name(kind, centered)
            pr[name] = [participation_ratio(windows.values[layer][i], kind, centered=centered) for layer in layers]
            head[name] = [
                per_head_pr(windows.values[layer][i], g.n_kv_heads, g.head_dim, kind, centered=centered)
                for layer in layers
            ]
        entropy = None
        if windows.entropy is not None:
            entropy = [[float(x) for x in windows.entropy[layer][i]] for layer in layers]
        records.append({"pr": pr, "head_pr": head, "entropy": entropy})
    return records


def measure_prompts(
    lm: LoadedModel,
    prompts: Sequence[Prompt],
    *,
    window: int = metrics.DEFAULT_WINDOW,
    store: MeasurementStore | None = None,
) -> list[dict[str, Any]]:
    """Per prompt, ``{"pr": {variant: [PR per layer]}, "head_pr": {variant: [[PR per KV head] per layer]},
    "entropy": [[nats per query head] per layer] or None}`` at every layer of the model.

    Measured in work units of :data:`UNIT_PROMPTS` prompts from the first, one batched prefill each; units already
    in ``store`` are read back.

    Raises:
        PromptTooShortError: a prompt has fewer than ``window + 1`` content tokens (named in the message).
    """
    store = store or MeasurementStore(mode="off")
    code = _code()
    return store.get_or_compute_units(
        CACHE_KIND, [_parts(lm, prompt, window, code) for prompt in prompts],
        lambda indices: _compute(lm, [prompts[i] for i in indices], window), unit_size=UNIT_PROMPTS)


def _check_layers(lm: LoadedModel, layers: Sequence[int] | None) -> tuple[int, ...]:
    chosen = tuple(sorted(set(layers if layers is not None else range(lm.shape.n_layers))))
    bad = [layer for layer in chosen if not 0 <= layer < lm.shape.n_layers]
    if bad:
        raise ValueError(f"{lm.name} has {lm.shape.n_layers} layers; cannot report layers {bad}")
    return chosen


def measure_rv(
    lm: LoadedModel,
    prompts: Sequence[Prompt],
    layers: Sequence[int] | None = None,
    *,
    window: int = metrics.DEFAULT_WINDOW,
    store: MeasurementStore | None = None,
) -> PRTable:
    """PR of each prompt's last-W-content-token V window at ``layers`` (default: every layer).

    Raises:
        PromptTooShortError: a prompt has fewer than ``window + 1`` content tokens (named in the message).
    """
    chosen = _check_layers(lm, layers)
    if not prompts:
        raise ValueError("measure_rv: no prompts given")
    records = measure_prompts(lm, prompts, window=window, store=store)
    variants = [variant_name(kind, centered) for kind, centered in PR_VARIANTS]
    return PRTable(
        tuple(p.id for p in prompts),
        chosen,
        window,
        {v: {layer: [r["pr"][v][layer] for r in records] for layer in chosen} for v in variants},
        {v: {layer: [r["head_pr"][v][layer] for r in records] for layer in chosen} for v in variants},
    )


def measure_attention_entropy(
    lm: LoadedModel,
    prompts: Sequence[Prompt],
    layers: Sequence[int] | None = None,
    *,
    window: int = metrics.DEFAULT_WINDOW,
    store: MeasurementStore | None = None,
) -> EntropyTable:
    """Per prompt and query head, the attention entropy (nats) averaged over the window's query positions.

    Raises:
        AttentionWeightsUnavailableError: the model does not run eager attention.
    """
    if not has_eager_attention(lm):
        raise capture.AttentionWeightsUnavailableError(
            f"{lm.name} runs {getattr(lm.model.config, '_attn_implementation', None)!r} attention; attention "
            "entropy needs attn_implementation='eager'"
        )
    chosen = _check_layers(lm, layers)
    if not prompts:
        raise ValueError("measure_attention_entropy: no prompts given")
    records = measure_prompts(lm, prompts, window=window, store=store)
    if any(r["entropy"] is None for r in records):
        raise capture.AttentionWeightsUnavailableError(f"{lm.name}: a cached measurement holds no attention entropy")
    return EntropyTable(
        tuple(p.id for p in prompts), chosen, window, {layer: [r["entropy"][layer] for r in records] for layer in chosen}
    )


@dataclass(frozen=True)
class GroupContrast:
    """Hedges g of a per-prompt measure between two independent prompt groups (``first`` − ``second``).

    ``ci``: BCa bootstrap interval resampling prompts within each group; ``p_value``: Welch t with the
    stated ``alternative`` (``less``: first lower). ``first`` / ``second`` are the measured values.
    """

    estimate: float
    ci: ConfidenceInterval
    p_value: float
    first: np.ndarray
    second: np.ndarray


def hedges_contrast(
    first: Sequence[float], second: Sequence[float], *, alternative: str, level: float, seed: int
) -> GroupContrast:
    """Hedges g (first − second), its BCa CI at ``level`` (seeded) and the Welch t p-value."""
    x, y = np.asarray(first, dtype=np.float64), np.asarray(second, dtype=np.float64)
    ci = bootstrap_ci(hedges_g, x, y, level=level, rng=seed)
    return GroupContrast(hedges_g(x, y), ci, welch_t(x, y, alternative=alternative).p, x, y)


def rv_layer_sweep(
    table: PRTable,
    first: Sequence[str],
    second: Sequence[str],
    *,
    early: int,
    fixed_late: int,
    n_layers: int,
    level: float,
    seed: int,
) -> dict[str, Any]:
    """Hedges g of R_V (``first`` − ``second`` prompt ids) with the early layer fixed and the late layer swept.

    Every layer after ``early`` is a candidate late layer; R_V = PR(late)/PR(early) (eigen, uncentred). Each g
    gets a BCa bootstrap CI at ``level`` resampling prompts within each group, with the same ``seed`` at every
    layer (common random numbers, so the intervals are comparable across layers and the fixed layer's
    interval equals the verdict's when the verdict uses the same seed). Depth fraction = layer / n_layers.

    Returns the ``details["layer_sweep"]`` dict documented in :mod:`harness.report`, plus ``early_layer``
    and ``n_layers``.
    """
    if not 0 <= early < n_layers - 1:
        raise ValueError(f"early layer {early} leaves no later layer to sweep in a {n_layers}-layer model")
    layers = list(range(early + 1, n_layers))
    a, b = table.select(first), table.select(second)
    estimate, low, high = [], [], []
    for late in layers:
        c = hedges_contrast(a.r_v(early, late), b.r_v(early, late), alternative="less", level=level, seed=seed)
        estimate.append(c.estimate)
        low.append(c.ci.low)
        high.append(c.ci.high)
    return {
        "layers": layers,
        "depth_fraction": [layer / n_layers for layer in layers],
        "estimate": estimate,
        "ci_low": low,
        "ci_high": high,
        "fixed_layer": fixed_late,
        "early_layer": early,
        "n_layers": n_layers,
        "effect_label": "Hedges g of R_V, early layer fixed",
    }
