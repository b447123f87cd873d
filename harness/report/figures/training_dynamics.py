"""Training dynamics: each claim's effect against training step, one panel per claim, one line per revision series.

Drawn when the run holds a revision series (:func:`harness.report.training_dynamics.run_series`) and some claim
(engine checks apart) has a finite estimate on one of its checkpoints. A series numbered in the order given (its
names give no steps) is drawn only when no series of the run names steps: positions are not steps. Each point is a
checkpoint's estimate with its CI as whiskers and its verdict letter beside it; the x axis is the training step, logarithmic when the steps span
more than :data:`LOG_X_SPAN` (symmetric-log when a step 0 checkpoint is among them, so it stays on the axis).
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Sequence
from typing import Any

from matplotlib.figure import Figure

from harness.models.revisions import RevisionSeries
from harness.registry import CLAIMS
from harness.report.figures.labels import claim_title
from harness.report.figures.style import GREY, OKABE_ITO, ci_errors, n_text, num
from harness.report.summary import claim_order
from harness.report.training_dynamics import claim_records, has_estimate, run_series, verdict_letter

LOG_X_SPAN = 10.0
"""Largest / smallest positive training step above which the x axis is logarithmic."""
PANEL_INCHES = (4.2, 3.2)
"""Width and height of one panel (inches)."""
MAX_COLUMNS = 3
"""Panels per row of the figure."""
AXIS_LABEL_CHARACTERS = 42
"""Line width (characters) of the wrapped effect label on the y axis."""


def x_scale(steps: Sequence[int]) -> tuple[str, dict[str, float]]:
    """Matplotlib x scale for these training steps: ``("log", {})`` when the positive steps span more than
    :data:`LOG_X_SPAN` (``("symlog", {"linthresh": smallest positive step})`` when step 0 is among them),
    else ``("linear", {})``."""
    positive = [s for s in steps if s > 0]
    if not positive or max(positive) / min(positive) <= LOG_X_SPAN:
        return "linear", {}
    if any(s <= 0 for s in steps):
        return "symlog", {"linthresh": float(min(positive))}
    return "log", {}


def plotted_series(series: Sequence[RevisionSeries]) -> list[RevisionSeries]:
    """The series the figure draws on one step axis: those whose steps come from their names when there are any
    (a series numbered in the order given has positions, not steps, and stays in the table only), else all."""
    named = [s for s in series if s.step_source == "name"]
    return named or list(series)


def panel_claims(records: Sequence[dict[str, Any]], series: Sequence[RevisionSeries]) -> list[str]:
    """Claims (engine checks apart) with a finite estimate on some checkpoint of some series, in record order."""
    members = {m for s in series for m in s.models}
    return claim_order([r for r in claim_records(records) if r["model"] in members and has_estimate(r)])


def figure_size(records: Sequence[dict[str, Any]]) -> tuple[float, float]:
    """The figure's size in inches: :data:`PANEL_INCHES` per panel, :data:`MAX_COLUMNS` panels per row."""
    count = max(1, len(panel_claims(records, plotted_series(run_series(records)[0]))))
    columns = min(count, MAX_COLUMNS)
    rows = math.ceil(count / columns)
    return PANEL_INCHES[0] * columns, PANEL_INCHES[1] * rows + 0.4


def _effect_axis_label(claim: str) -> str:
    spec = CLAIMS.get(claim)
    if spec is None:
        return "estimate"
    return textwrap.fill(f"{spec.effect.symbol}, in {spec.effect.units}", AXIS_LABEL_CHARACTERS)


def training_dynamics(fig: Figure, records: Sequence[dict[str, Any]]) -> None:
    """Draw every panel (see the module docstring) into ``fig``.

    Raises:
        ValueError: the records hold no series or no claim with an estimate on a checkpoint.
    """
    series = plotted_series(run_series(records)[0])
    claims = panel_claims(records, series)
    if not claims:
        raise ValueError("figure training_dynamics: no revision series with an estimate on a checkpoint")
    by_key = {(r["claim"], r["model"]): r for r in claim_records(records)}
    columns = min(len(claims), MAX_COLUMNS)
    axes = fig.subplots(math.ceil(len(claims) / columns), columns, squeeze=False).ravel()
    scale, scale_args = x_scale([m.step for s in series for m in s.members])
    by_order = all(s.step_source == "order" for s in series)
    for ax, claim in zip(axes, claims):
        n_texts = []
        for i, s in enumerate(series):
            points = [(m.step, by_key[(claim, m.model)]) for m in s.members
                      if (claim, m.model) in by_key and has_estimate(by_key[(claim, m.model)])]
            if not points:
                continue
            steps = [float(step) for step, _ in points]
            y = num([rec["estimate"] for _, rec in points])
            low, high = num([rec.get("ci_low") for _, rec in points]), num([rec.get("ci_high") for _, rec in points])
            colour = OKABE_ITO[i % len(OKABE_ITO)]
            ax.errorbar(steps, y, yerr=ci_errors(y, low, high), marker="o", markersize=3.5, capsize=2.5,
                        linewidth=1.2, color=colour, label=s.name)
            for x, yi, (_, rec) in zip(steps, y, points):
                ax.annotate(verdict_letter(str(rec.get("verdict"))), (x, yi), textcoords="offset points",
                            xytext=(4, 4), fontsize=6.5, color=colour)
            n_texts += [t for _, rec in points if (t := n_text(rec))]
        ax.axhline(0.0, color=GREY, linewidth=0.6)
        ax.set_xscale(scale, **scale_args)
        ax.margins(x=0.08)
        if scale == "symlog":  # no negative steps: the axis starts just left of step 0
            ax.set_xlim(left=-0.5 * scale_args["linthresh"])
        ax.set_title(claim_title(claim))
        ax.set_ylabel(_effect_axis_label(claim))
        ax.set_xlabel("checkpoint (order given on --model)" if by_order else "training step")
        level = next((r.get("ci_level") for (c, _), r in by_key.items() if c == claim and r.get("ci_level")), None)
        notes = list(dict.fromkeys(n_texts))
        if level:
            notes.append(f"whiskers: {level:.0%} CI")
        ax.text(0.01, 0.01, "; ".join(notes), transform=ax.transAxes, fontsize=6, color=GREY, va="bottom")
        ax.legend(loc="best", fontsize=6)
    for ax in axes[len(claims):]:
        ax.set_visible(False)
    fig.suptitle("Training dynamics (letter: verdict)")
