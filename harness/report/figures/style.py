"""Shared look and plumbing of the report figures: palette, fonts, resolution, file writing, n text, data checks.

Every figure is written twice, ``<stem>.png`` at :data:`DPI` and a vector ``<stem>.pdf`` beside it, with fixed
metadata (no creation date), so the same records give the same bytes.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib import cycler
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.text import Text

from harness.registry import CLAIMS
from harness.report.figures.labels import typeset_symbols

DPI = 300
"""Resolution of the PNG files (dots per inch); the PDF twins are vector graphics."""
FIGURE_EXTENSIONS: tuple[str, ...] = (".png", ".pdf")
"""The files written per figure: the PNG that claims.md embeds and its vector PDF twin."""

OKABE_ITO: tuple[str, ...] = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000")
"""Okabe & Ito (2008) colour-blind-safe palette: blue, orange, bluish green, vermillion, reddish purple, sky blue,
yellow, black. Every colour a figure uses comes from here (or a grey)."""
GREY = "#7f7f7f"
LIGHT_GREY = "#c8c8c8"
VERDICT_STYLE: dict[str, tuple[str, str]] = {
    "PASS": (OKABE_ITO[2], "o"),
    "FAIL": (OKABE_ITO[3], "X"),
    "INCONCLUSIVE": (OKABE_ITO[1], "D"),
}
"""verdict → (colour, marker): colour and shape both differ, so the verdict reads in greyscale too."""

RC: dict[str, Any] = {
    "font.size": 8,
    "axes.titlesize": 8.5,
    "axes.labelsize": 8,
    "xtick.labelsize": 7,
    "ytick.labelsize": 7,
    "legend.fontsize": 7,
    "figure.titlesize": 9.5,
    "axes.prop_cycle": cycler(color=list(OKABE_ITO)),
    "axes.spines.top": False,
    "axes.spines.right": False,
    "pdf.fonttype": 42,  # TrueType in the PDF: the text stays text (searchable, editable)
    "svg.hashsalt": "kvclaims",
}
"""Matplotlib settings applied while the report draws (a context: the caller's settings are left alone)."""

SYNTHETIC_MARK = "SYNTHETIC DATA\nnot a measurement"


@contextmanager
def report_style() -> Iterator[None]:
    """Matplotlib's defaults plus :data:`RC`, for the duration of the block."""
    defaults = {k: v for k, v in matplotlib.rcParamsDefault.items() if k != "backend"}
    with plt.rc_context(rc={**defaults, **RC}):
        yield


def save_figure(fig: Figure, out_dir: Path, stem: str) -> str:
    """Write ``fig`` as ``<stem>.png`` (:data:`DPI`) and ``<stem>.pdf`` into ``out_dir``; returns the PNG's name.

    No timestamp enters either file: the PNG carries none by default and the PDF's creation date is dropped.
    """
    typeset_figure_text(fig)
    png = f"{stem}.png"
    fig.savefig(out_dir / png, dpi=DPI, metadata={"Software": "matplotlib"})
    fig.savefig(out_dir / f"{stem}.pdf", metadata={"CreationDate": None, "Creator": "kvclaims report"})
    return png


def typeset_figure_text(fig: Figure) -> None:
    """Every text of ``fig`` (titles, axis labels, ticks, legends) with R_V and ρ_partial as math
    (:func:`harness.report.figures.labels.typeset_symbols`)."""
    for text in fig.findobj(Text):
        words = text.get_text()
        typeset = typeset_symbols(words)
        if typeset != words:
            text.set_text(typeset)


def legend_below(ax: Axes, ncols: int = 1) -> None:
    """The legend of ``ax`` under its x-axis label, outside the data (constrained layout makes room): a legend
    inside the axes covers data wherever the data happen to be."""
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.14), ncols=ncols, frameon=False)


def mark_synthetic(fig: Figure) -> None:
    """A large diagonal watermark on figures drawn from fabricated data."""
    fig.text(0.5, 0.5, SYNTHETIC_MARK, ha="center", va="center", fontsize=26, color="red", alpha=0.25,
             rotation=20, transform=fig.transFigure)


def num(values: Sequence[Any]) -> list[float]:
    """Floats, with None (a JSON null, e.g. an undefined CI bound) as NaN."""
    return [float(v) if v is not None else math.nan for v in values]


def finite(x: Any) -> bool:
    """True for a real, finite number (not None, NaN or ±inf)."""
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def require(data: dict[str, Any], keys: Sequence[str], kind: str, claim: str, model: str) -> None:
    """Raise ValueError naming the claim and model when ``data`` lacks ``keys`` or its lists differ in length."""
    missing = [k for k in keys if k not in data]
    if missing:
        raise ValueError(f"figure {kind}: details of {claim} × {model} lack keys {missing}")
    lengths = {k: len(data[k]) for k in keys if isinstance(data[k], list)}
    if len(set(lengths.values())) > 1:
        raise ValueError(f"figure {kind}: details of {claim} × {model} have unequal lengths {lengths}")


def n_unit(claim: str) -> str:
    """What n counts for ``claim`` (the registry's ``n_unit``, e.g. 'prompt pairs'); '' for an unknown claim."""
    spec = CLAIMS.get(claim)
    return spec.n_unit if spec is not None else ""


def n_text(record: dict[str, Any], n: Any = None) -> str:
    """'n = 52 prompt pairs' for a record (or an explicit ``n``); '' when the record holds no n."""
    n = record.get("n") if n is None else n
    if not isinstance(n, int) or isinstance(n, bool):
        return ""
    unit = n_unit(str(record.get("claim", "")))
    return f"n = {n} {unit}".rstrip()


def ci_errors(y: Sequence[float], low: Sequence[float], high: Sequence[float]) -> list[list[float]]:
    """Error-bar lengths (below, above) for ``errorbar``/``bar``; a missing bound gives a zero-length arm (NaN
    estimates stay NaN and are not drawn)."""
    below = [yi - lo if math.isfinite(lo) else 0.0 for yi, lo in zip(y, low)]
    above = [hi - yi if math.isfinite(hi) else 0.0 for yi, hi in zip(y, high)]
    return [below, above]
