"""R_V by prompt group or condition, one panel per model.

Two designs, told apart by the data a record holds:

- **independent groups** (``details["rv_by_group"] = {group: [R_V, ...]}``, e.g. recursive vs baseline prompts):
  every prompt's R_V as a dot, a box per group (median, quartiles, whiskers at 1.5 IQR), n per group.
- **paired conditions** (``details["rv_per_pair"] = {condition: [R_V per pair or null, ...]}``, lists aligned by
  pair, e.g. geometry_transfers: the baseline, the patched baseline and the recursive continuation of each pair):
  the pairs with an R_V in every condition, one grey line per pair across the conditions (natural baseline first,
  natural recursive last), the condition means in colour; and beside it each pair's difference from the natural
  baseline, the two quantities whose means form the claim's ratio.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from harness.report.figures.labels import claim_title, condition_label, two_line
from harness.report.figures.style import GREY, LIGHT_GREY, OKABE_ITO, n_unit, num

RV_AXIS = "R_V = PR(late) / PR(early)"
FIRST, LAST = "natural_baseline", "natural_recursive"


def _jitter(center: float, count: int) -> list[float]:
    """Deterministic horizontal spread for a strip of ``count`` dots around ``center``."""
    return [center + 0.14 * math.sin(7.3 * k) for k in range(count)]


def _groups_panel(ax: Axes, model: str, groups: dict[str, Any], first: bool) -> None:
    names = list(groups)
    data = [[v for v in num(groups[g]) if math.isfinite(v)] for g in names]
    positions = list(range(1, len(names) + 1))
    kept = [(p, d) for p, d in zip(positions, data) if d]
    if kept:
        ax.boxplot([d for _, d in kept], positions=[p for p, _ in kept], showfliers=False, widths=0.5,
                   medianprops={"color": "black"}, boxprops={"color": GREY}, whiskerprops={"color": GREY},
                   capprops={"color": GREY})
    for i, (pos, vals) in enumerate(zip(positions, data)):
        ax.scatter(_jitter(pos, len(vals)), vals, s=7, alpha=0.55, color=OKABE_ITO[i % len(OKABE_ITO)],
                   linewidths=0, zorder=3)
    ticks = [f"{two_line(condition_label(g))}\nn = {len(d)}" for g, d in zip(names, data)]
    ax.set_xticks(positions, ticks)
    ax.set_xlim(0.4, len(names) + 0.6)
    ax.set_title(model)
    if first:
        ax.set_ylabel(RV_AXIS)


def rv_by_group(fig: Figure, recs: list[dict[str, Any]], claim: str) -> None:
    """Independent groups: strip and box per group, one panel per model, n per group under each label."""
    axes = fig.subplots(1, len(recs), squeeze=False, sharey=True)[0]
    for i, (ax, rec) in enumerate(zip(axes, recs)):
        _groups_panel(ax, rec["model"], rec["details"]["rv_by_group"], first=i == 0)
    fig.suptitle(f"{claim_title(claim)}: R_V by prompt group; box: median and quartiles, dots: prompts")


def _paired_matrix(per_pair: dict[str, Any]) -> tuple[list[str], np.ndarray]:
    """Conditions in display order and the (pairs × conditions) R_V of the pairs finite in every condition."""
    names = sorted(per_pair, key=lambda c: (c != FIRST, c == LAST))
    lengths = {len(per_pair[c]) for c in names}
    if len(lengths) != 1:
        raise ValueError(f"rv_per_pair lists differ in length: { {c: len(per_pair[c]) for c in names} }")
    table = np.array([num(per_pair[c]) for c in names], dtype=float).T.reshape(-1, len(names))
    return names, table[np.isfinite(table).all(axis=1)]


def _slopes_panel(ax: Axes, model: str, names: list[str], table: np.ndarray, claim: str) -> None:
    x = np.arange(len(names))
    for row in table:
        ax.plot(x, row, color=LIGHT_GREY, linewidth=0.7, zorder=1)
    for i, name in enumerate(names):
        col = table[:, i]
        ax.scatter(np.full(col.size, x[i]), col, s=8, color=OKABE_ITO[i % len(OKABE_ITO)], zorder=2, linewidths=0)
        if col.size:
            ax.plot([x[i] - 0.18, x[i] + 0.18], [col.mean()] * 2, color=OKABE_ITO[i % len(OKABE_ITO)], linewidth=2.2,
                    zorder=3)
    ax.set_xticks(x, [condition_label(n, short=True) for n in names])
    ax.set_xlim(-0.5, len(names) - 0.5)
    ax.set_ylabel(RV_AXIS)
    ax.set_title(f"{model}: one line per pair\nn = {table.shape[0]} {n_unit(claim)}".rstrip())


def _differences_panel(ax: Axes, names: list[str], table: np.ndarray, claim: str) -> None:
    others = list(range(1, len(names)))
    for k, i in enumerate(others):
        diff = table[:, i] - table[:, 0]
        color = OKABE_ITO[i % len(OKABE_ITO)]
        ax.scatter(_jitter(k, diff.size), diff, s=8, color=color, alpha=0.7, linewidths=0, zorder=2)
        if diff.size:
            ax.plot([k - 0.25, k + 0.25], [diff.mean()] * 2, color=color, linewidth=2.2, zorder=3)
    ax.axhline(0.0, color="black", linewidth=0.6)
    ax.set_xticks(range(len(others)), [f"{condition_label(names[i], short=True)}\n− baseline" for i in others])
    ax.set_xlim(-0.6, len(others) - 0.4)
    ax.set_ylabel("paired difference in R_V")
    ax.set_title(f"difference from the unpatched baseline\nper pair (bar: mean), n = {table.shape[0]}")


def rv_paired(fig: Figure, recs: list[dict[str, Any]], claim: str) -> None:
    """Paired conditions: per-pair lines across conditions and paired differences, a row per model."""
    grid = fig.subplots(len(recs), 2, squeeze=False, gridspec_kw={"width_ratios": [3, 2]})
    for (left, right), rec in zip(grid, recs):
        names, table = _paired_matrix(rec["details"]["rv_per_pair"])
        _slopes_panel(left, rec["model"], names, table, claim)
        _differences_panel(right, names, table, claim)
    fig.suptitle(f"{claim_title(claim)}: R_V of the generated tokens, paired by prompt pair")
