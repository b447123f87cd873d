"""The α dose-response curve in transfer units, one line per model.

Reads ``details["alpha_transfer"]`` = ``{"alpha": [...], "transfer": [T description per α]}`` (each entry as
:meth:`harness.transfer.estimate.TransferResult.describe` writes it: ``T``, ``ci_low``, ``ci_high``,
``ci_level``, ``n``, ``undefined_reason``): the T the claim's table reports, T(α) = mean(s(B⊕_α A) − s(B)) /
(mean s(A) − mean s(B)), with its BCa CI over pairs. T(0) = 0 by construction and has no interval.
A record that holds only ``details["alpha_curve"]`` (the raw mean score per α) is drawn in score units, and
the axis says so.
"""

from __future__ import annotations

import math
from typing import Any

from matplotlib.axes import Axes
from matplotlib.figure import Figure

from harness.report.figures.labels import claim_title
from harness.report.figures.style import GREY, OKABE_ITO, ci_errors, n_text, legend_below, num, require


def _t_series(data: dict[str, Any], claim: str, model: str) -> tuple[list[float], list[float], list[float],
                                                                     list[float], float | None]:
    """α, T, CI low, CI high per α (NaN where missing) and the CI level."""
    require(data, ("alpha", "transfer"), "alpha_dose_response", claim, model)
    rows = [t or {} for t in data["transfer"]]
    level = next((t.get("ci_level") for t in rows if t.get("ci_level") is not None), None)
    return (num(data["alpha"]), num([t.get("T") for t in rows]), num([t.get("ci_low") for t in rows]),
            num([t.get("ci_high") for t in rows]), level)


def _dodge(i: int, count: int) -> float:
    """Horizontal offset of model ``i`` of ``count`` so that overlapping whiskers stay apart (in α units)."""
    return (i - (count - 1) / 2) * 0.018


def _t_panel(ax: Axes, recs: list[dict[str, Any]], claim: str) -> None:
    level = None
    for i, rec in enumerate(recs):
        model = rec["model"]
        alpha, t, lo, hi, lvl = _t_series(rec["details"]["alpha_transfer"], claim, model)
        level = level or lvl
        x = [a + _dodge(i, len(recs)) for a in alpha]
        n = n_text(rec, next((d.get("n") for d in rec["details"]["alpha_transfer"]["transfer"] if d), None))
        undefined = {d.get("undefined_reason") for d in rec["details"]["alpha_transfer"]["transfer"] if d} - {None}
        label = f"{model} ({n})" if n else model
        if undefined:
            label += "; T undefined at some α"
        ax.errorbar(x, t, yerr=ci_errors(t, lo, hi), marker="o", markersize=3.5, capsize=2.5, linewidth=1.2,
                    color=OKABE_ITO[i % len(OKABE_ITO)], label=label)
    ax.axhline(1.0, color=GREY, linewidth=0.8, linestyle="--", label="T = 1: recursive donor, unpatched")
    ax.axhline(0.0, color="black", linewidth=0.6, label="T = 0: baseline recipient, unpatched")
    share = f"{level:.0%} " if isinstance(level, float) and math.isfinite(level) else ""
    ax.set_ylabel(f"transfer T ({share}CI over pairs)")
    ax.set_title(f"{claim_title(claim)}: T at each mixing weight, whiskers: {share}CI")


def _score_panel(ax: Axes, recs: list[dict[str, Any]], claim: str) -> None:
    label = "mean behaviour score"
    for i, rec in enumerate(recs):
        data, model = rec["details"]["alpha_curve"], rec["model"]
        require(data, ("alpha", "estimate"), "alpha_dose_response", claim, model)
        y = num(data["estimate"])
        err = ci_errors(y, num(data["ci_low"]), num(data["ci_high"])) if "ci_low" in data and "ci_high" in data \
            else None
        n = n_text(rec)
        ax.errorbar(num(data["alpha"]), y, yerr=err, marker="o", markersize=3.5, capsize=2.5,
                    color=OKABE_ITO[i % len(OKABE_ITO)], label=f"{model} ({n})" if n else model)
        label = data.get("effect_label", label)
    ax.set_ylabel(f"{label}\n(raw score: this record holds no T per α)")
    ax.set_title(claim_title(claim))


def alpha_dose_response(fig: Figure, recs: list[dict[str, Any]], claim: str) -> None:
    """T against α per model with CI whiskers (raw score only for records without T per α)."""
    ax = fig.subplots()
    with_t = [r for r in recs if "alpha_transfer" in r["details"]]
    if with_t:
        _t_panel(ax, with_t, claim)
    else:
        _score_panel(ax, recs, claim)
    ax.set_xlabel("mixing weight α of the 2nd-half KV patch (0 = recipient's cache, 1 = donor's)")
    ax.set_xticks([0.0, 0.25, 0.5, 0.75, 1.0])
    legend_below(ax)
