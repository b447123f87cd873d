"""Partial-layer transfer fidelity against the transferred share of layers, one row of panels per model.

Reads ``details["fidelity_curves"]`` = ``{"fractions": [f...], "n_layers": L, "ci_level": level, "kl": {"first":
curve, "last": curve}, "agreement": {"first": curve, "last": curve}}`` with ``curve`` = ``{"estimate", "ci_low",
"ci_high"}`` (one value per fraction: the mean over pairs and its bootstrap CI over pairs; a missing bound is
null), optionally ``"half_contrast": {"kl": {...}, "agreement": {...}}`` (last-half minus first-half fidelity at
f = 0.5, :func:`harness.exchange.partial.half_contrast`), written into the panel titles. Left panel: greedy
agreement with the full-cache continuation (share of its tokens); right panel: KL(full ‖ partial) of the next-token
distribution in nats. Two lines per panel: the first ⌈f·L⌉ layers transferred, and the last ⌈f·L⌉.
"""

from __future__ import annotations

import math
from typing import Any

from matplotlib.axes import Axes
from matplotlib.figure import Figure

from harness.report.figures.labels import claim_title
from harness.report.figures.style import GREY, OKABE_ITO, ci_errors, finite, n_text, num, require

ENDS: tuple[tuple[str, str], ...] = (("first", "first ⌈f·L⌉ layers"), ("last", "last ⌈f·L⌉ layers"))
"""The two layer ends, as details keys and as legend words."""
MEASURES: tuple[tuple[str, str], ...] = (
    ("agreement", "greedy agreement with the full cache\n(share of its tokens)"),
    ("kl", "KL(full ‖ partial), next token (nats)"),
)
"""The two panels: details key and y-axis label."""


def _contrast_words(data: dict[str, Any], measure: str) -> str:
    """'last − first half at 50 %: 0.12 [0.05, 0.2]' for a panel title ('KL: first − last half', KL(first half) −
    KL(last half), on the KL panel: the record's contrast is on −KL), '' when the record has no contrast; > 0 = the last half carries more."""
    c = (data.get("half_contrast") or {}).get(measure)
    if not c or not finite(c.get("estimate")):
        return ""
    lo, hi = c.get("ci_low"), c.get("ci_high")
    ci = f" [{lo:.3g}, {hi:.3g}]" if finite(lo) and finite(hi) else ""
    words = "KL: first − last half" if measure == "kl" else "last − first half"
    return f"\n{words} at 50 %: {c['estimate']:.3g}{ci}"


def _panel(ax: Axes, data: dict[str, Any], measure: str, label: str, claim: str, model: str) -> None:
    x = [100.0 * f for f in num(data["fractions"])]
    for i, (end, words) in enumerate(ENDS):
        curve = data[measure].get(end) if isinstance(data[measure], dict) else None
        if curve is None:
            raise ValueError(f"figure partial_fidelity: details of {claim} × {model} lack {measure}.{end}")
        require(curve, ("estimate", "ci_low", "ci_high"), "partial_fidelity", claim, model)
        if len(curve["estimate"]) != len(x):
            raise ValueError(f"figure partial_fidelity: details of {claim} × {model} have {len(curve['estimate'])} "
                             f"{measure}.{end} values for {len(x)} fractions")
        y = num(curve["estimate"])
        dodge = (i - 0.5) * 1.2
        ax.errorbar([v + dodge for v in x], y, yerr=ci_errors(y, num(curve["ci_low"]), num(curve["ci_high"])),
                    marker="o" if end == "first" else "s", markersize=3.5, capsize=2.5, linewidth=1.2,
                    color=OKABE_ITO[i], label=words)
    ax.axhline(1.0 if measure == "agreement" else 0.0, color=GREY, linewidth=0.8, linestyle="--")
    ax.set_ylim(0.0, 1.05 if measure == "agreement" else max(ax.get_ylim()[1], 0.05))  # both measures start at 0
    ax.set_xticks(x, [f"{v:g}" for v in x])
    ax.set_xlabel("donor layers transferred (% of the stack)")
    ax.set_ylabel(label)


def partial_fidelity(fig: Figure, recs: list[dict[str, Any]], claim: str) -> None:
    """Agreement and KL against the transferred share, first-layers and last-layers lines with CI whiskers,
    one row per model."""
    axes = fig.subplots(len(recs), len(MEASURES), squeeze=False)
    level = None
    for row, rec in zip(axes, recs):
        data, model = rec["details"]["fidelity_curves"], rec["model"]
        require(data, ("fractions", "kl", "agreement"), "partial_fidelity", claim, model)
        level = level or data.get("ci_level")
        n = n_text(rec)
        layers = f", L = {data['n_layers']}" if data.get("n_layers") else ""
        for ax, (measure, label) in zip(row, MEASURES):
            _panel(ax, data, measure, label, claim, model)
            ax.set_title(f"{model}{layers} ({n}){_contrast_words(data, measure)}" if n else f"{model}{layers}")
    axes[0][0].legend(loc="best")
    share = f"{level:.0%} " if isinstance(level, float) and math.isfinite(level) else ""
    fig.suptitle(f"{claim_title(claim)}\n0 % = receiver's own cache, 100 % = full donor "
                 f"cache; whiskers: {share}CI over pairs")
