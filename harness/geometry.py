"""R_V measurements over prompt groups (DESIGN §4.1-4.2), cached on disk per model and prompt set.

``measure_rv`` captures V at a set of layers in one clean batched prefill per prompt batch and returns,
for every prompt, the PR at each captured layer (concatenated V, and per KV head) in both PR kinds,
uncentred and centred, so every R_V variant (any early/late pair among the captured layers) is derived
without another forward pass. Values are dimensionless PRs; R_V = PR(late) / PR(early).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from harness import capture, metrics
from harness.measurement_cache import MeasurementCache, code_fingerprint
from harness.metrics import PRKind, per_head_pr, participation_ratio
from harness.models import LoadedModel
from harness.prompts import Prompt

PR_VARIANTS: tuple[tuple[PRKind, bool], ...] = (("eigen", False), ("eigen", True), ("singular", False), ("singular", True))


def variant_name(kind: PRKind, centered: bool) -> str:
    """Key of a PR variant, e.g. ``eigen`` or ``eigen-centered``."""
    return f"{kind}-centered" if centered else kind


@dataclass(frozen=True)
class PRTable:
    """PR of every prompt at every captured layer.

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
        return [lt / ev for ev, lt in zip(table[early], table[late])]

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


def _compute(lm: LoadedModel, prompts: Sequence[Prompt], layers: Sequence[int], window: int) -> dict[str, Any]:
    windows = capture.capture_v_windows(lm, [(p.id, p.text) for p in prompts], layers, window=window)
    g = lm.geometry
    pr: dict[str, dict[str, list[float]]] = {}
    head: dict[str, dict[str, list[list[float]]]] = {}
    for kind, centered in PR_VARIANTS:
        name = variant_name(kind, centered)
        pr[name] = {
            str(layer): [participation_ratio(x, kind, centered=centered) for x in windows.values[layer]]
            for layer in layers
        }
        head[name] = {
            str(layer): [per_head_pr(x, g.n_kv_heads, g.head_dim, kind, centered=centered) for x in windows.values[layer]]
            for layer in layers
        }
    return {"pr": pr, "head_pr": head}


def measure_rv(
    lm: LoadedModel,
    prompts: Sequence[Prompt],
    layers: Sequence[int] | None = None,
    *,
    window: int = metrics.DEFAULT_WINDOW,
    cache: MeasurementCache | None = None,
) -> PRTable:
    """PR of each prompt's last-W-content-token V window at ``layers`` (default: the model's early and late).

    Raises:
        PromptTooShortError: a prompt has fewer than ``window + 1`` content tokens (named in the message).
    """
    layers = tuple(sorted(set(layers if layers is not None else (lm.layers.early, lm.layers.late))))
    cache = cache or MeasurementCache(mode="off")
    parts = {
        "model": lm.identity,
        "prompts": [[p.id, p.text] for p in prompts],
        "layers": list(layers),
        "window": window,
        "code": code_fingerprint([capture, metrics]),
    }
    raw = cache.get_or_compute("pr_table", parts, lambda: _compute(lm, prompts, layers, window))
    return PRTable(
        tuple(p.id for p in prompts),
        layers,
        window,
        {v: {int(layer): rows for layer, rows in t.items()} for v, t in raw["pr"].items()},
        {v: {int(layer): rows for layer, rows in t.items()} for v, t in raw["head_pr"].items()},
    )
