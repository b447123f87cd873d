"""Forest plot of a headline claim: one row per model, ordered by model size, estimate with CI, the rule's bound.

Rows are the models whose record holds a finite estimate, smallest model on top (sizes:
:mod:`harness.report.figures.model_size`); each row shows the estimate with its CI (the claim's CI level),
marked by verdict (colour and shape), and n and the verdict at the right. The bound of the decision rule is
drawn from the registry's criteria: a dashed line for ``CI < b`` / ``CI ≥ b`` with the passing side shaded,
the equivalence band for ``CI within (lo, hi)``, both lines for ``CI outside [lo, hi]``.

A trend claim decided on its adjacent steps (``steps_at_least``, e.g. alpha_monotone) has no main CI: its rows
are each model's steps T(α_k+1) − T(α_k) with their CIs (``details["step_cis"]``, ``details["step_estimates"]``)
against the bound −δ.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from matplotlib.axes import Axes
from matplotlib.figure import Figure

from harness.registry import CLAIMS, ClaimSpec
from harness.report.figures.model_size import model_size
from harness.report.figures.style import GREY, OKABE_ITO, VERDICT_STYLE, finite, n_text

EFFECT_AXIS: dict[str, str] = {
    "hedges_g": "Hedges g",
    "transfer_ratio": "transfer T (0 = baseline recipient, 1 = recursive donor)",
    "transfer_difference": "difference in transfer T",
    "geometry_transfer_ratio": "R_V transfer ratio",
    "spearman_rho": "Spearman ρ",
    "page_L_with_steps": "adjacent step T(α_k+1) − T(α_k)",
}
"""Registry ``effect_type`` → axis label; another type is shown with spaces for underscores."""
PASS_SHADE = OKABE_ITO[2]
SYMBOL = {"<=": "≤", ">=": "≥"}


@dataclass(frozen=True)
class Row:
    """One forest row: its label, estimate, CI (NaN when absent), the record and the right-hand note."""

    label: str
    estimate: float
    low: float
    high: float
    record: dict[str, Any]
    note: str


def _f(x: Any) -> float:
    return float(x) if finite(x) else math.nan


def _verdict(rec: dict[str, Any]) -> str:
    return str(rec.get("verdict") or "")


def estimate_undefined(rec: dict[str, Any]) -> bool:
    """Whether the record's estimate is undefined (e.g. T over a natural gap under the registered minimum): its
    explanation says "estimate undefined" (harness.claim.verdicts). Such a point is drawn hollow with a dotted CI at
    the would-be numbers the record keeps in ``details["undefined_estimate"]``."""
    return "estimate undefined" in str(rec.get("explanation") or "")


def _step_rows(rec: dict[str, Any], head: str) -> list[Row]:
    details = rec.get("details") or {}
    cis, ests = details.get("step_cis") or [], details.get("step_estimates") or []
    alphas = ((details.get("alpha_transfer") or {}).get("alpha")) or []
    rows = []
    for k, (ci, est) in enumerate(zip(cis, ests)):
        lo, hi = (ci or [None, None])[:2]
        step = f"α {alphas[k]:g}→{alphas[k + 1]:g}" if k + 1 < len(alphas) else f"step {k + 1}"
        note = "   ".join(t for t in (n_text(rec), _verdict(rec)) if t) if k == 0 else ""
        rows.append(Row(f"{head}\n{step}" if k == 0 else step, _f(est), _f(lo), _f(hi), rec, note))
    return [r for r in rows if math.isfinite(r.estimate)]


def forest_rows(spec: ClaimSpec, recs: list[dict[str, Any]]) -> list[Row]:
    """Rows top to bottom: models by increasing size, each its main estimate (or its steps for a step rule)."""
    rows: list[Row] = []
    for rec in recs:
        head = f"{rec['model']}\n{model_size(rec['model'], recs).label()}"
        if spec.primary.kind == "steps_at_least":
            rows += _step_rows(rec, head)
        else:
            numbers = (rec.get("details") or {}).get("undefined_estimate") or rec if estimate_undefined(rec) else rec
            if finite(numbers.get("estimate")):
                note = "   ".join(t for t in (n_text(rec), _verdict(rec)) if t)
                rows.append(Row(head, float(numbers["estimate"]), _f(numbers.get("ci_low")), _f(numbers.get("ci_high")),
                                rec, note))
    return rows


def _shade(ax: Axes, low: float, high: float, alpha: float) -> None:
    """Shade the x range (low, high), clipped to the current view, leaving the view unchanged."""
    left, right = ax.get_xlim()
    ax.axvspan(max(low, left), min(high, right), color=PASS_SHADE, alpha=alpha, linewidth=0)
    ax.set_xlim(left, right)


def _show_bounds(ax: Axes, spec: ClaimSpec) -> None:
    """Widen the x view so every bound of the primary criterion lies inside it with room on both sides (the shaded
    PASS side is seen, not cut at the axis)."""
    c = spec.primary
    bounds = [c.bound] if c.bound is not None else list(c.bounds or ())
    if not bounds:
        return
    left, right = ax.get_xlim()
    pad = 0.12 * (max(right, *bounds) - min(left, *bounds))
    ax.set_xlim(min(left, min(bounds) - pad), max(right, max(bounds) + pad))


def _draw_bound(ax: Axes, spec: ClaimSpec) -> str:
    """Draw the primary criterion's bound (after the rows, so the view already holds the data); returns its
    explanation for the figure's foot."""
    c = spec.primary
    if c.kind in ("ci", "steps_at_least", "value") and c.bound is not None:
        ax.axvline(c.bound, color="black", linestyle="--", linewidth=0.9)
        op = c.op or ">="
        _shade(ax, *((c.bound, math.inf) if op in (">", ">=") else (-math.inf, c.bound)), alpha=0.08)
        what = {"steps_at_least": "every step's CI", "value": "the value"}.get(c.kind, "the CI")
        return f"dashed: rule bound; PASS needs {what} {SYMBOL.get(op, op)} {c.bound:g} (shaded side)"
    if c.bounds is not None:
        lo, hi = c.bounds
        for b in (lo, hi):
            ax.axvline(b, color="black", linestyle="--", linewidth=0.9)
        if c.kind == "ci_differs":
            ax.axvline(0.0, color="black", linestyle=":", linewidth=0.9)
            _shade(ax, lo, hi, alpha=0.12)
            return (f"dotted: 0, dashed: equivalence band; PASS needs the CI to exclude 0, FAIL when it lies inside "
                    f"({lo:g}, {hi:g}) (shaded)")
        if c.kind == "ci_within":
            _shade(ax, lo, hi, alpha=0.12)
            return f"dashed: equivalence bounds; PASS needs the CI inside ({lo:g}, {hi:g}) (shaded)"
        return f"dashed: rule bounds; PASS needs the CI outside [{lo:g}, {hi:g}]"
    return ""


def rule_text(spec: ClaimSpec) -> str:
    """The rule in symbols without the effect type's internal name: 'rule: 95% CI ≥ 0.8 and p < 0.01 (α 0.01/1)'."""
    summary = spec.rule_summary()
    prefix = f"{spec.effect_type}: "
    return "rule: " + summary.removeprefix(prefix)


def forest(fig: Figure, recs: list[dict[str, Any]], claim: str) -> None:
    """The forest plot of ``claim`` over the models of ``recs`` (already in size order)."""
    spec = CLAIMS[claim]
    rows = forest_rows(spec, recs)
    ax = fig.subplots()
    ys = list(range(len(rows)))[::-1]
    for y, row in zip(ys, rows):
        color, marker = VERDICT_STYLE.get(_verdict(row.record), (GREY, "s"))
        undefined = estimate_undefined(row.record)
        if math.isfinite(row.low) and math.isfinite(row.high):
            ax.hlines(y, row.low, row.high, color=color, linewidth=1.6, linestyles="dotted" if undefined else "solid")
        ax.plot([row.estimate], [y], marker=marker, color=color, markersize=6, linestyle="none",
                markerfacecolor="white" if undefined else color)
        note = f"{row.note} (undefined)" if undefined and row.note else row.note
        ax.text(1.02, y, note, transform=ax.get_yaxis_transform(), va="center", ha="left", fontsize=7)
    ax.margins(x=0.08)
    ax.autoscale_view()
    _show_bounds(ax, spec)
    bound_text = _draw_bound(ax, spec)
    ax.set_yticks(ys, [r.label for r in rows])
    ax.set_ylim(-0.7, len(rows) - 0.3)
    level = f"{spec.ci_level:.0%} CI" if spec.ci_level is not None else "95% CI"
    ax.set_xlabel(f"{EFFECT_AXIS.get(spec.effect_type, spec.effect_type.replace('_', ' '))}, with {level}")
    ax.set_title(f"{spec.title}, models by size\n{rule_text(spec)}", loc="left")
    if any(estimate_undefined(r.record) for r in rows):
        bound_text = "\n".join(t for t in (bound_text, "hollow, dotted: estimate undefined (the record says why), "
                                                        "drawn for reference only") if t)
    if bound_text:
        fig.supxlabel(bound_text, fontsize=6.5, color=GREY)


def forest_records(recs: list[dict[str, Any]], claim: str) -> list[dict[str, Any]]:
    """The records a forest plot of ``claim`` can draw (a headline claim's records with at least one row)."""
    spec = CLAIMS.get(claim)
    if spec is None or not spec.headline:
        return []
    return [r for r in recs if forest_rows(spec, [r])]
