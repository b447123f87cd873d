"""The layer-sweep table of a claim section and the cross-model "depth of the strongest layer" section of claims.md.

A record's ``details["layer_sweep"]`` (see :mod:`harness.report`) holds the estimate at each swept late layer; the
verdict uses the pre-registered layer only, and the strongest layer is chosen after seeing the data (it describes
where the effect peaks, it is not a test).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from harness.registry import CLAIMS
from harness.report.numbers import MISSING, fmt, fmt_ci
from harness.report.tables import md_table


def sweep_of(rec: dict[str, Any]) -> dict[str, Any] | None:
    """The record's layer sweep, or None when it has none (or no layers)."""
    sweep = (rec.get("details") or {}).get("layer_sweep")
    return sweep if sweep and sweep.get("layers") else None


def strongest_layer_index(claim: str, sweep: dict[str, Any]) -> int | None:
    """Index into ``sweep["layers"]`` of the strongest effect in the claim's direction: the most negative
    estimate below 0 for a claim whose rule is '<' (e.g. R_V contraction), the largest above 0 for '>', else the
    largest |estimate|. None when no finite estimate lies on the claim's side of 0."""
    values = [(i, float(v)) for i, v in enumerate(sweep.get("estimate") or []) if v is not None and math.isfinite(v)]
    spec = CLAIMS.get(claim)
    op = spec.comparator if spec is not None else None
    if op in ("<", "<="):
        below = [iv for iv in values if iv[1] < 0]
        return min(below, key=lambda iv: iv[1])[0] if below else None
    if op in (">", ">="):
        above = [iv for iv in values if iv[1] > 0]
        return max(above, key=lambda iv: iv[1])[0] if above else None
    return max(values, key=lambda iv: abs(iv[1]))[0] if values else None


def _at(sweep: dict[str, Any], key: str, i: int) -> Any:
    values = sweep.get(key) or []
    return values[i] if i < len(values) else None


def _ci_at(sweep: dict[str, Any], i: int) -> str:
    return fmt_ci(_at(sweep, "ci_low", i), _at(sweep, "ci_high", i))


def layer_sweep_table(recs: Sequence[dict[str, Any]]) -> list[str]:
    """The layer sweep as Markdown lines: one row per (model, late layer); the verdict's layer and the strongest
    marked. Empty when no record has a sweep."""
    rows = []
    label = None
    for rec in recs:
        sweep = sweep_of(rec)
        if sweep is None:
            continue
        label = label or sweep.get("effect_label")
        best = strongest_layer_index(rec["claim"], sweep)
        for i, layer in enumerate(sweep["layers"]):
            marks = [m for m, on in (("pre-registered (verdict)", layer == sweep.get("fixed_layer")),
                                     ("strongest", i == best)) if on]
            rows.append([rec["model"], fmt(layer), fmt(_at(sweep, "depth_fraction", i)),
                         fmt(_at(sweep, "estimate", i)), _ci_at(sweep, i), ", ".join(marks)])
    if not rows:
        return []
    return [(f"**Layer sweep** ({label or 'effect size'}; late layer swept, depth = layer / number of layers). "
            "Reported beside the verdict, which uses the pre-registered layer only."), "",
            md_table(["model", "late layer", "depth", "estimate", "CI", "note"], rows), ""]


def cross_model_depth(records: Sequence[dict[str, Any]]) -> list[str]:
    """Per claim with a layer sweep and per model: where the strongest layer sits, as a fraction of depth (Markdown
    lines with their heading; empty when no record has a sweep)."""
    rows = []
    for rec in records:
        sweep = sweep_of(rec)
        if sweep is None:
            continue
        best = strongest_layer_index(rec["claim"], sweep)
        fixed = sweep.get("fixed_layer")
        fixed_i = sweep["layers"].index(fixed) if fixed in sweep["layers"] else None
        rows.append([
            rec["claim"], rec["model"], fmt(sweep.get("n_layers")), fmt(sweep.get("early_layer")),
            MISSING if fixed_i is None else f"{fixed} ({fmt(_at(sweep, 'depth_fraction', fixed_i))})",
            MISSING if fixed_i is None else fmt(_at(sweep, "estimate", fixed_i)),
            MISSING if best is None else f"{sweep['layers'][best]} ({fmt(_at(sweep, 'depth_fraction', best))})",
            MISSING if best is None else f"{fmt(_at(sweep, 'estimate', best))} {_ci_at(sweep, best)}",
        ])
    if not rows:
        return []
    return ["## Cross-model: depth of the strongest layer", "",
            ("Per model, the late layer with the strongest effect in the claim's direction (layer sweep, early layer "
            "fixed) and its depth fraction (layer / number of layers), beside the pre-registered layer; '–' when no "
            "layer shows the effect in the claim's direction. The strongest layer is chosen after seeing the data: it "
            "describes where the effect peaks, it is not a test."), "",
            md_table(["claim", "model", "layers", "early layer", "pre-registered late layer (depth)", "estimate there",
                      "strongest layer (depth)", "estimate there [CI]"], rows), ""]
