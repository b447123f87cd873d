"""Report figures, each drawn only when some claim's records carry its data.

One figure per (kind, claim), written as ``<kind>-<claim>.png`` (300 dpi) and a vector ``<kind>-<claim>.pdf``
twin, with every model whose record carries the data: one panel per model wherever the models' layers or
prompts differ, models ordered by size (:mod:`~harness.report.figures.model_size`), condition and group names as
words (:mod:`~harness.report.figures.labels`), n in every panel, the Okabe–Ito colour-blind-safe palette
(:mod:`~harness.report.figures.style`). Records without the data (ERROR, SKIPPED, NOT RUN rows, claims that
record none) are passed over; a claim with no drawable record gets no figure.

Kinds (the ``details`` keys each reads are documented in :mod:`harness.report` and the kind's module):

- ``rv_by_group``: R_V per prompt group (:mod:`~harness.report.figures.groups`); drawn paired, one line per
  pair, when the record holds ``rv_per_pair`` (a paired design such as geometry_transfers).
- ``layer_sweep``, ``transfer_by_layer_range`` (:mod:`~harness.report.figures.layers`).
- ``alpha_dose_response``: T against α with CIs (:mod:`~harness.report.figures.alpha`).
- ``partial_fidelity``: partial-layer transfer fidelity (agreement and KL) against the transferred share of
  layers, first-layers and last-layers lines (:mod:`~harness.report.figures.fidelity`).
- ``forest``: each headline claim (registry ``headline``), a row per model (:mod:`~harness.report.figures.forest`).

Run figures (:data:`RUN_FIGURES`, one file ``<kind>.png`` per run, across claims; :func:`write_run_figures`):

- ``training_dynamics``: each claim's estimate against training step when the run holds a revision series
  (:mod:`~harness.report.figures.training_dynamics`).
- ``training_curve``: a cross-model projector's training loss per step, a panel per receiver model
  (:mod:`~harness.report.figures.training_curve`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
from matplotlib.figure import Figure

from harness.registry import CLAIMS
from harness.report.figures.alpha import alpha_dose_response
from harness.report.figures.fidelity import partial_fidelity
from harness.report.figures.forest import forest, forest_records, forest_rows
from harness.report.figures.groups import rv_by_group, rv_paired
from harness.report.figures.labels import condition_label
from harness.report.figures.layers import layer_sweep, transfer_by_layer_range
from harness.report.figures.model_size import model_order, model_size
from harness.report.figures.style import DPI, FIGURE_EXTENSIONS, mark_synthetic, report_style, save_figure
from harness.report.figures.training_curve import training_curve, training_curve_size
from harness.report.figures.training_dynamics import figure_size, panel_claims, plotted_series, training_dynamics
from harness.report.training_dynamics import run_series

__all__ = ["DPI", "FIGURES", "FIGURE_EXTENSIONS", "RUN_FIGURES", "FigureKind", "RunFigureKind", "condition_label",
           "figure_file_names", "model_order", "model_size", "write_figures", "write_run_figures"]

Records = list[dict[str, Any]]


def _details(rec: dict[str, Any]) -> dict[str, Any]:
    details = rec.get("details")
    return details if isinstance(details, dict) else {}


def _with(key: str) -> Callable[[Records, str], Records]:
    return lambda recs, claim: [r for r in recs if _details(r).get(key)]


def _rv_groups(recs: Records, claim: str) -> Records:
    return [r for r in recs if _details(r).get("rv_by_group") and not _details(r).get("rv_per_pair")]


def _rv_pairs(recs: Records, claim: str) -> Records:
    return [r for r in recs if _details(r).get("rv_per_pair")]


def _alpha(recs: Records, claim: str) -> Records:
    return [r for r in recs if _details(r).get("alpha_transfer") or _details(r).get("alpha_curve")]


@dataclass(frozen=True)
class FigureKind:
    """How one kind of figure is drawn: which records it takes, the drawing function, its size in inches."""

    select: Callable[[Records, str], Records]
    draw: Callable[[Figure, Records, str], None]
    size: Callable[[Records, str], tuple[float, float]]


def _forest_size(recs: Records, claim: str) -> tuple[float, float]:
    return 6.5, 1.6 + 0.5 * len(forest_rows(CLAIMS[claim], recs))


FIGURES: dict[str, FigureKind] = {
    "rv_by_group": FigureKind(_rv_groups, rv_by_group, lambda recs, _: (max(3.4 * len(recs), 4.5), 3.6)),
    "rv_paired": FigureKind(_rv_pairs, rv_paired, lambda recs, _: (7.0, 3.3 * len(recs) + 0.5)),
    "layer_sweep": FigureKind(_with("layer_sweep"), layer_sweep, lambda recs, _: (6.5, 4.6)),
    "alpha_dose_response": FigureKind(_alpha, alpha_dose_response, lambda recs, _: (6.5, 4.6)),
    "transfer_by_layer_range": FigureKind(_with("transfer_by_range"), transfer_by_layer_range,
                                          lambda recs, _: (max(4.2 * len(recs), 5.0), 3.8)),
    "partial_fidelity": FigureKind(_with("fidelity_curves"), partial_fidelity,
                                   lambda recs, _: (8.6, 3.2 * len(recs) + 0.7)),
    "forest": FigureKind(forest_records, forest, _forest_size),
    "training_curve": FigureKind(_with("training_curves"), training_curve, training_curve_size),
}
"""Figure kind (the file name's prefix) → which records it draws, how, and at what size (inches)."""


@dataclass(frozen=True)
class RunFigureKind:
    """A figure drawn once per run from all its records: whether the records support it, how, at what size."""

    drawable: Callable[[Records], bool]
    draw: Callable[[Figure, Records], None]
    size: Callable[[Records], tuple[float, float]]


def _has_dynamics(recs: Records) -> bool:
    return bool(panel_claims(recs, plotted_series(run_series(recs)[0])))


RUN_FIGURES: dict[str, RunFigureKind] = {
    "training_dynamics": RunFigureKind(_has_dynamics, training_dynamics, figure_size),
}
"""Run figure kind (the file name's stem) → whether the records support it, how it is drawn, its size (inches)."""


def figure_file_names(claims: Sequence[str]) -> set[str]:
    """Every file name a report can write for ``claims`` (each kind, PNG and PDF) and every run figure, for clearing
    a reused folder."""
    per_claim = {f"{kind}-{claim}{ext}" for kind in FIGURES for claim in claims for ext in FIGURE_EXTENSIONS}
    return per_claim | {f"{kind}{ext}" for kind in RUN_FIGURES for ext in FIGURE_EXTENSIONS}


def write_run_figures(records: Sequence[dict[str, Any]], out_dir: Path) -> list[str]:
    """Draw every run figure the records support into ``out_dir`` (PNG and PDF twin); returns the PNG file names."""
    written: list[str] = []
    recs = list(records)
    with report_style():
        for kind, how in RUN_FIGURES.items():
            if not how.drawable(recs):
                continue
            fig = plt.figure(figsize=how.size(recs), layout="constrained")
            try:
                how.draw(fig, recs)
                if any(_details(r).get("synthetic") for r in recs):
                    mark_synthetic(fig)
                written.append(save_figure(fig, out_dir, kind))
            finally:
                plt.close(fig)
    return written


def write_figures(records: Sequence[dict[str, Any]], out_dir: Path) -> dict[str, list[str]]:
    """Draw every figure some claim's records support into ``out_dir``; returns ``{claim: [PNG file names]}``.

    Each PNG has a PDF twin of the same stem beside it (not listed). Figures are closed after saving.
    Raises ValueError naming the claim and model when a record's figure data are malformed (keys missing,
    lists of unequal length).
    """
    written: dict[str, list[str]] = {}
    order = model_order(records)
    claims = list(dict.fromkeys(r["claim"] for r in records))
    with report_style():
        for claim in claims:
            recs = sorted((r for r in records if r["claim"] == claim), key=lambda r: order.index(str(r.get("model"))))
            for kind, how in FIGURES.items():
                chosen = how.select(recs, claim)
                if not chosen:
                    continue
                fig = plt.figure(figsize=how.size(chosen, claim), layout="constrained")
                try:
                    how.draw(fig, chosen, claim)
                    if any(_details(r).get("synthetic") for r in recs):
                        mark_synthetic(fig)
                    written.setdefault(claim, []).append(save_figure(fig, out_dir, f"{kind}-{claim}"))
                finally:
                    plt.close(fig)
    return written
