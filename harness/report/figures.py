"""Report figures (PNG, matplotlib Agg), each drawn only when some claim's records carry its data.

One file per (figure kind, claim): ``<kind>-<claim>.png``, with every model that carries the key.
The ``details`` keys each kind reads are documented in :mod:`harness.report`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

DPI = 110
SYNTHETIC_MARK = "SYNTHETIC DATA\nnot a measurement"


def _num(values: Sequence[Any]) -> list[float]:
    return [float(v) if v is not None else math.nan for v in values]


def _require(data: dict[str, Any], keys: Sequence[str], kind: str, claim: str, model: str) -> None:
    missing = [k for k in keys if k not in data]
    if missing:
        raise ValueError(f"figure {kind}: details of {claim} × {model} lack keys {missing}")
    lengths = {k: len(data[k]) for k in keys if isinstance(data[k], list)}
    if len(set(lengths.values())) > 1:
        raise ValueError(f"figure {kind}: details of {claim} × {model} have unequal lengths {lengths}")


def rv_by_group(fig: Figure, per_model: dict[str, dict[str, Any]], claim: str) -> None:
    """Strip plot with box per group, one panel per model: ``details["rv_by_group"] = {group: [R_V, ...]}``."""
    axes = fig.subplots(1, len(per_model), squeeze=False)[0]
    for ax, (model, groups) in zip(axes, per_model.items()):
        names = list(groups)
        data = [_num(groups[g]) for g in names]
        ax.boxplot(data, showfliers=False, widths=0.5)
        ax.set_xticks(range(1, len(names) + 1), names)
        for i, vals in enumerate(data, start=1):
            jitter = [i + 0.12 * math.sin(7.3 * k) for k in range(len(vals))]
            ax.scatter(jitter, vals, s=10, alpha=0.6)
        ax.set_title(model)
        ax.set_ylabel("R_V = PR(late) / PR(early)")
        ax.set_xlabel("prompt group")
    fig.suptitle(f"R_V by prompt group ({claim})")


def _line_with_band(ax: Axes, x: list[float], data: dict[str, Any], label: str) -> None:
    y = _num(data["estimate"])
    line = ax.plot(x, y, marker="o", label=label)[0]
    if "ci_low" in data and "ci_high" in data:
        ax.fill_between(x, _num(data["ci_low"]), _num(data["ci_high"]), alpha=0.2, color=line.get_color())


def layer_sweep(fig: Figure, per_model: dict[str, dict[str, Any]], claim: str) -> None:
    """Effect size against depth fraction, a line per model: ``details["layer_sweep"]``."""
    ax = fig.subplots()
    for model, data in per_model.items():
        _require(data, ("layers", "depth_fraction", "estimate"), "layer_sweep", claim, model)
        x = _num(data["depth_fraction"])
        _line_with_band(ax, x, data, model)
        fixed = data.get("fixed_layer")
        if fixed is not None and fixed in data["layers"]:
            ax.axvline(x[data["layers"].index(fixed)], linestyle=":", color="grey")
    ax.axhline(0.0, color="black", linewidth=0.6)
    ax.set_xlabel("layer depth (fraction of the stack)")
    ax.set_ylabel(next(iter(per_model.values())).get("effect_label", "effect size"))
    ax.set_title(f"Layer sweep ({claim}); dotted: pre-registered layer")
    ax.legend()


def alpha_dose_response(fig: Figure, per_model: dict[str, dict[str, Any]], claim: str) -> None:
    """Behaviour against mixing weight α, a line per model: ``details["alpha_curve"]``."""
    ax = fig.subplots()
    for model, data in per_model.items():
        _require(data, ("alpha", "estimate"), "alpha_dose_response", claim, model)
        _line_with_band(ax, _num(data["alpha"]), data, model)
    ax.set_xlabel("mixing weight α (0 = recipient cache, 1 = donor cache)")
    ax.set_ylabel(next(iter(per_model.values())).get("effect_label", "transfer T"))
    ax.set_title(f"α dose-response ({claim}); band: 95% CI")
    ax.legend()


def transfer_by_layer_range(fig: Figure, per_model: dict[str, dict[str, Any]], claim: str) -> None:
    """Grouped bars with CI whiskers, one bar group per layer range: ``details["transfer_by_range"]``."""
    ax = fig.subplots()
    models = list(per_model)
    width = 0.8 / max(len(models), 1)
    for j, model in enumerate(models):
        data = per_model[model]
        _require(data, ("labels", "estimate"), "transfer_by_layer_range", claim, model)
        y = _num(data["estimate"])
        x = [i + (j - (len(models) - 1) / 2) * width for i in range(len(y))]
        err = None
        if "ci_low" in data and "ci_high" in data:
            err = [[yi - lo for yi, lo in zip(y, _num(data["ci_low"]))],
                   [hi - yi for yi, hi in zip(y, _num(data["ci_high"]))]]
        ax.bar(x, y, width=width, yerr=err, capsize=3, label=model)
        ax.set_xticks(range(len(y)), data["labels"])
    ax.axhline(0.0, color="black", linewidth=0.6)
    ax.set_xlabel("patched layer range")
    ax.set_ylabel("transfer T (95% CI)")
    ax.set_title(f"Transfer by layer range ({claim})")
    ax.legend()


FIGURES: dict[str, tuple[str, Callable[[Figure, dict[str, dict[str, Any]], str], None]]] = {
    "rv_by_group": ("rv_by_group", rv_by_group),
    "layer_sweep": ("layer_sweep", layer_sweep),
    "alpha_dose_response": ("alpha_curve", alpha_dose_response),
    "transfer_by_layer_range": ("transfer_by_range", transfer_by_layer_range),
}
"""figure kind → (details key it reads, drawing function)."""


def write_figures(records: Sequence[dict[str, Any]], out_dir: Path) -> dict[str, list[str]]:
    """Draw every figure some claim's records support; returns ``{claim: [file names]}``."""
    written: dict[str, list[str]] = {}
    claims = list(dict.fromkeys(r["claim"] for r in records))
    for claim in claims:
        recs = [r for r in records if r["claim"] == claim]
        for kind, (key, draw) in FIGURES.items():
            per_model = {r["model"]: r["details"][key] for r in recs if key in (r.get("details") or {})}
            if not per_model:
                continue
            width = 4.2 * len(per_model) if kind == "rv_by_group" else 7.0
            fig = plt.figure(figsize=(max(width, 5.0), 4.2), layout="constrained")
            try:
                draw(fig, per_model, claim)
                if any((r.get("details") or {}).get("synthetic") for r in recs):
                    fig.text(0.5, 0.5, SYNTHETIC_MARK, ha="center", va="center", fontsize=26, color="red",
                             alpha=0.25, rotation=20, transform=fig.transFigure)
                name = f"{kind}-{claim}.png"
                fig.savefig(out_dir / name, dpi=DPI)
            finally:
                plt.close(fig)
            written.setdefault(claim, []).append(name)
    return written
