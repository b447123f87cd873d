"""Report figures: files (300-dpi PNG, PDF twin, same bytes twice), per-model facets, readable condition names,
paired designs drawn paired, the α curve in T units, n in every panel, forest rows by model size, and records
without figure data (model-free; synthetic records shaped like the claim modules' details)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import pytest
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.text import Text
from PIL import Image

from harness.registry import CLAIMS
from harness.report.figures import DPI, FIGURES, figure_file_names, write_figures
from harness.report.figures.forest import forest_rows
from harness.report.figures.labels import condition_label
from harness.report.figures.model_size import model_order, model_size, nominal_parameters


def _t(value: float | None, low: float | None, high: float | None, n: int = 12) -> dict[str, Any]:
    return {"T": value, "ci_low": low, "ci_high": high, "ci_level": 0.95, "gap": 0.2, "gap_ci": [0.1, 0.3],
            "undefined_reason": None, "n": n, "mean_patched": 0.1, "mean_recipient": 0.0, "mean_donor": 0.2}


def _record(claim: str, model: str, details: dict[str, Any] | None, **fields: Any) -> dict[str, Any]:
    rec = {"claim": claim, "model": model, "verdict": "INCONCLUSIVE", "estimate": 0.5, "ci_low": 0.2,
           "ci_high": 0.9, "n": 12, "details": details}
    return rec | fields


def _ranges(n_layers: int) -> dict[str, Any]:
    q = [(k * n_layers // 4, (k + 1) * n_layers // 4 - 1) for k in range(4)]
    labels = [f"Q{k + 1} (layers {lo}–{hi})" for k, (lo, hi) in enumerate(q)]
    labels.append(f"second half (layers {n_layers // 2}–{n_layers - 1})")
    return {"labels": labels, "estimate": [0.0, 0.1, 0.5, 0.2, 0.8], "ci_low": [-0.2, -0.1, 0.2, None, 0.4],
            "ci_high": [0.2, 0.3, 0.8, 0.5, 1.1]}


def _paired() -> dict[str, Any]:
    return {"natural_baseline": [0.7, None, 0.8, 0.75, 0.72], "natural_recursive": [0.6, 0.5, None, 0.62, 0.61],
            "kv_main": [0.65, 0.55, 0.7, 0.66, None]}


def _alpha() -> dict[str, Any]:
    return {"alpha_curve": {"alpha": [0.0, 0.25, 0.5, 0.75, 1.0], "estimate": [0.01, 0.02, 0.05, 0.09, 0.15],
                            "ci_low": [0.0] * 5, "ci_high": [0.2] * 5, "effect_label": "mean score"},
            "alpha_transfer": {"alpha": [0.0, 0.25, 0.5, 0.75, 1.0],
                               "transfer": [_t(0.0, None, None), _t(0.1, -0.1, 0.3), _t(0.3, 0.1, 0.5),
                                            _t(0.6, 0.3, 0.9), _t(0.9, 0.6, 1.2)]},
            "step_cis": [[-0.2, 0.3], [0.0, 0.4], [0.1, 0.5], [0.1, 0.6]],
            "step_estimates": [0.1, 0.2, 0.3, 0.3]}


def _records() -> list[dict[str, Any]]:
    """Two models of different depth, for every figure kind; internal condition names as the claims write them."""
    recs = []
    for model, n_layers in (("gemma3-270m", 18), ("smollm2-135m", 30)):
        recs += [
            _record("layer_quarter_localisation", model, {"transfer_by_range": _ranges(n_layers)}),
            _record("geometry_transfers", model, {"rv_per_pair": _paired(),
                                                  "rv_by_group": {"natural_baseline": [0.7, 0.75]}}),
            _record("rv_contraction", model, {
                "rv_by_group": {"recursive": [0.5, 0.6, 0.55], "baseline": [0.7, 0.8, None]},
                "layer_sweep": {"layers": [5, 6, 7], "depth_fraction": [5 / n_layers, 6 / n_layers, 7 / n_layers],
                                "estimate": [-1.2, -0.8, -0.1], "ci_low": [-1.5, -1.1, -0.4],
                                "ci_high": [-0.9, -0.5, 0.2], "fixed_layer": 6, "effect_label": "Hedges g"}},
                estimate=-0.8, ci_low=-1.1, ci_high=-0.5, verdict="FAIL"),
            _record("alpha_monotone", model, _alpha(), estimate=0.9, ci_low=None, ci_high=None),
            _record("kv_transfer", model, {}, verdict="PASS"),
        ]
    return recs


def _draw(kind: str, recs: list[dict[str, Any]], claim: str) -> Figure:
    how, order = FIGURES[kind], model_order(recs)
    mine = sorted((r for r in recs if r["claim"] == claim), key=lambda r: order.index(r["model"]))  # as write_figures
    chosen = how.select(mine, claim)
    fig = plt.figure(figsize=how.size(chosen, claim), layout="constrained")
    how.draw(fig, chosen, claim)
    fig.canvas.draw()
    return fig


def _texts(artist: Figure | Axes) -> list[str]:
    return [t.get_text() for t in artist.findobj(Text) if t.get_text() and t.get_visible()]


KINDS = [("transfer_by_layer_range", "layer_quarter_localisation"), ("rv_paired", "geometry_transfers"),
         ("rv_by_group", "rv_contraction"), ("layer_sweep", "rv_contraction"),
         ("alpha_dose_response", "alpha_monotone"), ("forest", "alpha_monotone"), ("forest", "rv_contraction"),
         ("forest", "kv_transfer")]


# ------------------------------------------------------------------------------------------------- files
def test_png_at_300_dpi_with_a_pdf_twin_and_the_same_bytes_twice(tmp_path: Path) -> None:
    recs = [r for r in _records() if r["claim"] in ("layer_quarter_localisation", "kv_transfer")]
    first, second = tmp_path / "a", tmp_path / "b"
    first.mkdir()
    second.mkdir()
    written = write_figures(recs, first)
    assert written == {"layer_quarter_localisation": ["transfer_by_layer_range-layer_quarter_localisation.png"],
                       "kv_transfer": ["forest-kv_transfer.png"]}
    assert plt.get_fignums() == []  # every figure closed
    write_figures(recs, second)
    for names in written.values():
        for png in names:
            with Image.open(first / png) as im:
                assert im.format == "PNG" and im.info["dpi"] == pytest.approx((DPI, DPI), abs=0.01)
            pdf = first / png.replace(".png", ".pdf")
            assert pdf.read_bytes()[:5] == b"%PDF-"
            assert b"CreationDate" not in pdf.read_bytes()
            for name in (png, pdf.name):
                assert (first / name).read_bytes() == (second / name).read_bytes(), name
    assert {p.name for p in first.iterdir()} <= figure_file_names(list(written))  # a reused folder clears them


def test_a_reused_report_folder_loses_old_pdf_twins_too(tmp_path: Path) -> None:
    from harness.report.files import clear_stale_report

    for name in ("forest-kv_transfer.pdf", "forest-kv_transfer.png", "mine.pdf", "forest-not_a_claim.pdf"):
        (tmp_path / name).write_bytes(b"x")
    clear_stale_report(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["forest-not_a_claim.pdf", "mine.pdf"]


# ------------------------------------------------------------------------------------------------ facets
def test_each_model_panel_carries_its_own_layer_ranges() -> None:
    fig = _draw("transfer_by_layer_range", _records(), "layer_quarter_localisation")
    try:
        axes = [ax for ax in fig.axes if ax.patches]
        assert [ax.get_title().splitlines()[0] for ax in axes] == ["smollm2-135m", "gemma3-270m"]  # by size
        ticks = [[t.get_text().replace("\n", " ") for t in ax.get_xticklabels()] for ax in axes]
        assert ticks[0] == _ranges(30)["labels"] and ticks[1] == _ranges(18)["labels"]
        assert ticks[0] != ticks[1]
    finally:
        plt.close(fig)


# ------------------------------------------------------------------------------------------------ labels
def test_every_catalogue_and_claim_condition_has_a_label_in_words() -> None:
    from harness.transfer.conditions import CATALOGUE

    claim_conditions = ["kv_layer_quarter_1", "kv_layer_quarter_4", "kv_tokens_first_quarter",
                        "kv_tokens_last_quarter", "kv_peak_zone", "kv_self_ref_tokens", "donor_L3"]
    for name in [*CATALOGUE, *claim_conditions]:
        label = condition_label(name)
        assert "_" not in label and label != name, (name, label)
    assert condition_label("kv_main") == "KV patch recursive→baseline, 2nd half of layers"
    assert condition_label("recursive (step 40)") == "recursive (step 40)"
    assert condition_label("some_new_thing") == "some new thing"


@pytest.mark.parametrize(("kind", "claim"), KINDS)
def test_no_internal_condition_name_in_any_text_and_n_in_every_panel(kind: str, claim: str) -> None:
    internal = re.compile(r"\b(kv_main|natural_baseline|natural_recursive|kv_alpha_\S+|kv_layer_quarter_\d)\b")
    fig = _draw(kind, _records(), claim)
    try:
        leaked = [t for t in _texts(fig) if internal.search(t)]
        assert not leaked, leaked
        panels = [ax for ax in fig.axes if ax.lines or ax.patches or ax.collections]
        assert panels
        for ax in panels:
            assert any("n = " in t for t in _texts(ax)), (kind, ax.get_title())
    finally:
        plt.close(fig)


# ----------------------------------------------------------------------------------------- paired, alpha
def test_paired_design_draws_one_line_per_complete_pair() -> None:
    fig = _draw("rv_paired", _records(), "geometry_transfers")
    try:
        slopes = fig.axes[0]
        per_pair = [line for line in slopes.lines if len(line.get_xdata()) == 3]
        assert len(per_pair) == 2  # pairs 0 and 3 have an R_V in all three conditions
        assert "n = 2 prompt pairs" in slopes.get_title()
        assert [t.get_text().replace("\n", " ") for t in slopes.get_xticklabels()] == [
            "baseline unpatched", "KV patch recursive→baseline", "recursive unpatched"]
    finally:
        plt.close(fig)


def test_alpha_curve_is_drawn_in_transfer_units() -> None:
    fig = _draw("alpha_dose_response", _records(), "alpha_monotone")
    try:
        ax = fig.axes[0]
        drawn = [list(container.lines[0].get_ydata()) for container in ax.containers]
        assert len(drawn) == 2 and all(y == [0.0, 0.1, 0.3, 0.6, 0.9] for y in drawn)  # T, not the raw score
        assert ax.get_ylabel().startswith("transfer T (95% CI")
    finally:
        plt.close(fig)


# ---------------------------------------------------------------------------------------------- forest
def test_nominal_sizes_from_names() -> None:
    assert nominal_parameters("smollm2-135m") == pytest.approx(135e6)
    assert nominal_parameters("qwen2.5-7b") == pytest.approx(7e9)
    assert nominal_parameters("Qwen/Qwen2.5-0.5B-Instruct") == pytest.approx(0.5e9)
    assert nominal_parameters("mixtral-8x7b") == pytest.approx(56e9)
    assert nominal_parameters("phi3-medium") is None
    assert model_size("phi3-medium").parameters is None  # registry location names no size either
    exact = [{"model": "x", "details": {"model_provenance": {"n_parameters": 1234567}}}]
    assert model_size("x", exact).parameters == 1234567 and model_size("x", exact).source == "exact"


def test_forest_rows_follow_parameter_count() -> None:
    models = ["llama3-70b", "mystery", "smollm2-135m", "custom", "qwen2.5-7b", "gemma3-270m"]
    recs = [_record("kv_transfer", m, {"model_provenance": {"n_parameters": 2e9}} if m == "custom" else {})
            for m in models]
    order = model_order(recs)
    assert order == ["smollm2-135m", "gemma3-270m", "custom", "qwen2.5-7b", "llama3-70b", "mystery"]
    rows = forest_rows(CLAIMS["kv_transfer"], sorted(recs, key=lambda r: order.index(r["model"])))
    assert [r.label.splitlines()[0] for r in rows] == order
    fig = _draw("forest", sorted(recs, key=lambda r: order.index(r["model"])), "kv_transfer")
    try:
        ax = fig.axes[0]
        top_to_bottom = sorted(zip(ax.get_yticks(), ax.get_yticklabels()), key=lambda p: -p[0])
        assert [lab.get_text().splitlines()[0] for _, lab in top_to_bottom] == order
        assert any(line.get_linestyle() == "--" and list(line.get_xdata()) == [0.8, 0.8] for line in ax.lines)
    finally:
        plt.close(fig)


def test_a_step_rule_gets_one_row_per_step() -> None:
    recs = [r for r in _records() if r["claim"] == "alpha_monotone"]
    rows = forest_rows(CLAIMS["alpha_monotone"], recs)
    assert len(rows) == 8 and rows[0].label.startswith("gemma3-270m") and rows[1].label == "α 0.25→0.5"
    assert (rows[0].low, rows[0].high) == (-0.2, 0.3)


# ------------------------------------------------------------------------------------------- robustness
def test_records_without_figure_data_give_no_figure_and_no_crash(tmp_path: Path) -> None:
    recs = [
        {"claim": "rv_contraction", "model": "m", "verdict": "ERROR", "estimate": None, "details": None},
        {"claim": "kv_transfer", "model": "m", "verdict": "SKIPPED", "estimate": None},
        {"claim": "alpha_monotone", "model": "m", "verdict": "NOT RUN", "estimate": None, "details": {}},
        {"claim": "v_patch_null", "model": "m", "verdict": "INCONCLUSIVE", "estimate": float("nan"), "details": {}},
        {"claim": "not_registered", "model": "m", "estimate": 1.0, "details": {"unrelated": [1, 2]}},
    ]
    assert write_figures(recs, tmp_path) == {}
    assert list(tmp_path.iterdir()) == []
    recs.append(_record("kv_transfer", "m2", None))
    assert write_figures(recs, tmp_path) == {"kv_transfer": ["forest-kv_transfer.png"]}


def test_forest_draws_an_undefined_estimate_hollow_and_says_so() -> None:
    """A record whose estimate is undefined (its explanation says so) is drawn with a hollow marker and a dotted CI,
    its note ends in "(undefined)" and the foot explains it; a defined one stays filled and solid."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    from harness.report.figures.forest import estimate_undefined, forest

    base = {"claim": "kv_transfer", "verdict": "INCONCLUSIVE", "estimate": 1.05, "ci_low": 0.43, "ci_high": 2.5,
            "n": 84, "planned_n": 187, "details": {}}
    undefined = base | {"model": "toy-llama", "explanation": "INCONCLUSIVE: transfer_ratio = 1.05; estimate undefined: "
                                                             "the natural gap reaches below the minimum"}
    defined = base | {"model": "toy-gemma3", "explanation": "INCONCLUSIVE: n = 84 < planned 187"}
    assert estimate_undefined(undefined) and not estimate_undefined(defined)
    fig = Figure()
    forest(fig, [undefined, defined], "kv_transfer")
    ax = fig.axes[0]
    faces = [line.get_markerfacecolor() for line in ax.lines if line.get_marker() not in (None, "None", "")]
    assert "white" in faces and any(f != "white" for f in faces)
    notes = [t.get_text() for t in ax.texts]
    assert sum(n.endswith("(undefined)") for n in notes) == 1
    assert "estimate undefined" in fig._supxlabel.get_text()
