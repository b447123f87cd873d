"""The layer-sweep table and the cross-model depth section of claims.md (harness.report.sweeps)."""

from __future__ import annotations

from harness.report.markdown import claims_markdown
from harness.report.sweeps import strongest_layer_index


def sweep(estimates: list[float | None], n_layers: int, early: int = 1, fixed: int = 3) -> dict:
    layers = list(range(early + 1, early + 1 + len(estimates)))
    return {
        "layers": layers, "depth_fraction": [layer / n_layers for layer in layers], "estimate": estimates,
        "ci_low": [None if e is None else e - 0.5 for e in estimates],
        "ci_high": [None if e is None else e + 0.5 for e in estimates],
        "fixed_layer": fixed, "early_layer": early, "n_layers": n_layers, "effect_label": "Hedges g of R_V",
    }


def record(model: str, data: dict, claim: str = "rv_contraction") -> dict:
    return {"claim": claim, "version": 1, "model": model, "verdict": "FAIL", "estimate": -0.5, "ci_low": -1.0,
            "ci_high": 0.0, "n": 10, "planned_n": 36, "explanation": "FAIL: x", "details": {"layer_sweep": data}}


def test_strongest_layer_follows_the_claims_direction() -> None:
    data = sweep([-0.2, -1.5, 0.9, None], 8)
    assert strongest_layer_index("rv_contraction", data) == 1  # rule '<': most negative
    assert strongest_layer_index("persona_signature", data) == 2  # rule '>': largest
    assert strongest_layer_index("not_registered", data) == 1  # unknown: largest |estimate|
    assert strongest_layer_index("rv_contraction", sweep([None, None], 8)) is None
    assert strongest_layer_index("rv_contraction", sweep([0.8, 1.1], 8)) is None  # no layer contracts
    assert strongest_layer_index("persona_signature", sweep([-0.8, -1.1], 8)) is None


def row(md: str, *cells: str) -> bool:
    """Whether ``md`` has a table row with exactly these cells (tabulate pads cells with spaces)."""
    want = list(cells)
    return any([c.strip() for c in line.strip().strip("|").split("|")] == want
               for line in md.splitlines() if line.startswith("|"))


def test_sweep_table_and_cross_model_section() -> None:
    records = [record("small", sweep([-0.2, -1.5, -0.9], 10)), record("deep", sweep([-0.4, -0.3, -2.0, -0.1], 20))]
    md = claims_markdown(records, {"run_id": "r"}, {})
    assert "**Layer sweep** (Hedges g of R_V" in md
    assert row(md, "small", "3", "0.300", "-1.50", "[-2.00, -1.00]", "pre-registered (verdict), strongest")
    assert row(md, "small", "4", "0.400", "-0.900", "[-1.40, -0.400]", "")
    assert row(md, "deep", "4", "0.200", "-2.00", "[-2.50, -1.50]", "strongest")
    section = md.split("## Cross-model: depth of the strongest layer", 1)[1].split("## Notes", 1)[0]
    assert row(section, "rv_contraction", "small", "10", "1", "3 (0.300)", "-1.50", "3 (0.300)", "-1.50 [-2.00, -1.00]")
    assert row(section, "rv_contraction", "deep", "20", "1", "3 (0.150)", "-0.300", "4 (0.200)", "-2.00 [-2.50, -1.50]")


def test_a_sweep_without_the_effect_shows_no_strongest_layer() -> None:
    md = claims_markdown([record("m", sweep([0.4, 0.9], 10))], {"run_id": "r"}, {})
    assert row(md, "rv_contraction", "m", "10", "1", "3 (0.300)", "0.900", "–", "–")
    assert "strongest" not in md.split("**Layer sweep**", 1)[1].split("## Cross-model", 1)[0]


def test_no_sweep_no_section() -> None:
    rec = record("m", {})
    rec["details"] = {}
    md = claims_markdown([rec], {"run_id": "r"}, {})
    assert "Layer sweep" not in md and "Cross-model" not in md
