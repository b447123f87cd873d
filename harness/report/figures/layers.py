"""Effects along the layer stack: the R_V layer sweep and transfer by patched layer range.

- ``details["layer_sweep"]`` = ``{"layers", "depth_fraction", "estimate", "ci_low", "ci_high", "fixed_layer",
  "effect_label"}``: one line per model against depth (layer / number of layers, so models of different depth
  share the axis), 95 % CI band, each model's pre-registered layer dotted, the rule's bound dashed.
- ``details["transfer_by_range"]`` = ``{"labels", "estimate", "ci_low", "ci_high"}``: one panel per model,
  because each model's layer ranges are its own (the labels name that model's layers); transfer T with CI
  whiskers, T = 0 (recipient) and T = 1 (donor) as reference lines.
"""

from __future__ import annotations

from typing import Any

from matplotlib.figure import Figure

from harness.registry import CLAIMS
from harness.report.figures.labels import claim_title, two_line
from harness.report.figures.style import GREY, OKABE_ITO, ci_errors, n_text, legend_below, num, require


def _rule_bound(claim: str) -> float | None:
    """The bound of the claim's primary CI criterion (e.g. −1 for 'CI < −1'), None for other rule kinds."""
    spec = CLAIMS.get(claim)
    if spec is None or spec.primary.kind != "ci":
        return None
    return spec.primary.bound


def layer_sweep(fig: Figure, recs: list[dict[str, Any]], claim: str) -> None:
    """Effect against depth fraction, a line per model with its CI band and its pre-registered layer."""
    ax = fig.subplots()
    label = "effect size"
    for i, rec in enumerate(recs):
        data, model = rec["details"]["layer_sweep"], rec["model"]
        require(data, ("layers", "depth_fraction", "estimate"), "layer_sweep", claim, model)
        color = OKABE_ITO[i % len(OKABE_ITO)]
        x = num(data["depth_fraction"])
        words = [t for t in (n_text(rec),) if t]
        fixed = data.get("fixed_layer")
        if fixed is not None and fixed in data["layers"]:
            words.append(f"pre-registered late layer {fixed}: star")
        y = num(data["estimate"])
        ax.plot(x, y, marker="o", markersize=2.5, color=color,
                label=f"{model} ({'; '.join(words)})" if words else model)
        if "ci_low" in data and "ci_high" in data:
            ax.fill_between(x, num(data["ci_low"]), num(data["ci_high"]), alpha=0.2, color=color, linewidth=0)
        if fixed is not None and fixed in data["layers"]:  # a star on each model's own line: depths may coincide
            k = data["layers"].index(fixed)
            ax.plot([x[k]], [y[k]], marker="*", markersize=11, color=color, markeredgecolor="black",
                    markeredgewidth=0.6, linestyle="none", zorder=4)
        label = data.get("effect_label", label)
    ax.axhline(0.0, color="black", linewidth=0.6)
    bound = _rule_bound(claim)
    if bound is not None:
        ax.axhline(bound, color=GREY, linestyle="--", linewidth=0.9, label=f"rule bound {bound:g} (decides at the "
                   "starred layer only)")
    ax.set_xlabel("late layer's depth (layer index / number of layers)")
    ax.set_ylabel(label)
    ax.set_title(f"{claim_title(claim)}: layer sweep; band: 95% CI, star: each model's pre-registered late layer")
    legend_below(ax)


def transfer_by_layer_range(fig: Figure, recs: list[dict[str, Any]], claim: str) -> None:
    """Bars of T with CI whiskers per patched layer range, one panel per model with its own range labels."""
    axes = fig.subplots(1, len(recs), squeeze=False, sharey=True)[0]
    for ax, rec in zip(axes, recs):
        data, model = rec["details"]["transfer_by_range"], rec["model"]
        require(data, ("labels", "estimate"), "transfer_by_layer_range", claim, model)
        y = num(data["estimate"])
        x = list(range(len(y)))
        err = None
        if "ci_low" in data and "ci_high" in data:
            require(data, ("labels", "estimate", "ci_low", "ci_high"), "transfer_by_layer_range", claim, model)
            err = ci_errors(y, num(data["ci_low"]), num(data["ci_high"]))
        colors = [OKABE_ITO[0] if str(lab).startswith("Q") else OKABE_ITO[1] for lab in data["labels"]]
        ax.bar(x, y, width=0.65, yerr=err, capsize=3, color=colors, error_kw={"linewidth": 0.9})
        ax.axhline(0.0, color="black", linewidth=0.6)
        ax.axhline(1.0, color=GREY, linewidth=0.8, linestyle="--")
        ax.set_xticks(x, [two_line(str(lab)) for lab in data["labels"]])
        n = n_text(rec)
        ax.set_title(f"{model}\n{n}" if n else model)
        ax.set_xlabel("patched layers (this model's own indices)")
    axes[0].set_ylabel("transfer T (95% CI)\n0 = baseline recipient, 1 = recursive donor")
    fig.suptitle(f"{claim_title(claim)}: transfer by patched layer range")
