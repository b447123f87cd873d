"""Training curves of the cross-model cache projectors, one panel per receiver model.

Reads ``details["training_curves"]`` = ``{projector name: {"loss": [mean batch loss per step, nats/token], "seconds",
"from_cache", "key", "gates"}}`` (the claim ``projector_transfers_context`` writes it; names ``projected`` and
``mismatched_pairs``) and, when present, ``details["mean_loss_nats_per_token"]`` (held-out mean loss per condition),
whose ``none`` and ``own`` values are drawn as horizontal reference lines. Each curve is drawn raw (thin, faint) and
as a running mean over :data:`SMOOTH` steps (bold). Training losses are on the training texts; the reference lines
are held-out means, so they are read as levels, not as the same quantity.
"""

from __future__ import annotations

from typing import Any

from matplotlib.figure import Figure

from harness.report.figures.labels import claim_title
from harness.report.figures.style import GREY, LIGHT_GREY, OKABE_ITO, finite, legend_below, num, require

__all__ = ["CURVE_LABELS", "LEVEL_LABELS", "SMOOTH", "running_mean", "training_curve", "training_curve_size"]

SMOOTH = 10
"""Steps in the running mean of a drawn curve."""
CURVE_LABELS: dict[str, str] = {"projected": "projector (matched pairs)",
                                "mismatched_pairs": "baseline projector (mismatched pairs)"}
LEVEL_LABELS: dict[str, str] = {"none": "held-out mean, no context", "own": "held-out mean, own context cache"}


def running_mean(values: list[float], window: int) -> list[float]:
    """The mean of each value and the up to ``window − 1`` values before it (same length as ``values``)."""
    if window < 1:
        raise ValueError(f"running_mean: window must be ≥ 1, got {window}")
    out, total = [], 0.0
    for i, v in enumerate(values):
        total += v
        if i >= window:
            total -= values[i - window]
        out.append(total / min(i + 1, window))
    return out


def training_curve(fig: Figure, recs: list[dict[str, Any]], claim: str) -> None:
    """One panel per record (receiver model): every projector's loss per training step."""
    axes = fig.subplots(1, len(recs), squeeze=False)[0]
    for ax, rec in zip(axes, recs):
        model = str(rec["model"])
        details = rec["details"]
        curves = details["training_curves"]
        for i, (name, data) in enumerate(curves.items()):
            require(data, ("loss",), "training_curve", claim, model)
            loss = num(data["loss"])
            steps = list(range(1, len(loss) + 1))
            colour = OKABE_ITO[i % len(OKABE_ITO)]
            ax.plot(steps, loss, color=colour, linewidth=0.5, alpha=0.35)
            seconds = data.get("seconds")
            took = f", {seconds:.0f} s" if finite(seconds) else ""
            ax.plot(steps, running_mean(loss, SMOOTH), color=colour, linewidth=1.4,
                    label=f"{CURVE_LABELS.get(name, name.replace('_', ' '))} ({len(loss)} steps{took})")
        levels = details.get("mean_loss_nats_per_token") or {}
        for name, style in (("none", (GREY, "--")), ("own", (LIGHT_GREY, ":"))):
            if finite(levels.get(name)):
                ax.axhline(float(levels[name]), color=style[0], linestyle=style[1], linewidth=0.9,
                           label=LEVEL_LABELS[name])
        sharer = (details.get("sharer") or {}).get("model", "sharer")
        ax.set_title(f"{sharer} → {model}")
        ax.set_xlabel("training step")
        ax.set_ylabel("continuation loss (nats/token)")
        legend_below(ax)
    fig.suptitle(f"{claim_title(claim)}: projector training loss per step (bold: mean of {SMOOTH} steps)")


def training_curve_size(recs: list[dict[str, Any]], claim: str) -> tuple[float, float]:
    """Figure size in inches: 4.2 wide per receiver model, 4.4 high (the legends sit under the panels)."""
    return max(4.2 * len(recs), 5.0), 4.4
