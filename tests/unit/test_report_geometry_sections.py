"""The layer-sweep table and the cross-model depth section of claims.md (harness.report.writers)."""

from __future__ import annotations

from harness.report.writers import claims_markdown, strongest_layer_index


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


def test_sweep_table_and_cross_model_section() -> None:
    records = [record("small", sweep([-0.2, -1.5, -0.9], 10)), record("deep", sweep([-0.4, -0.3, -2.0, -0.1], 20))]
    md = claims_markdown(records, {"run_id": "r"}, {})
    assert "**Layer sweep** (Hedges g of R_V" in md
    assert "| small | 3 | 0.3 | -1.5 | [-2, -1] | pre-registered (verdict), strongest |" in md
    assert "| small | 4 | 0.4 | -0.9 | [-1.4, -0.4] |  |" in md
    assert "| deep | 4 | 0.2 | -2 | [-2.5, -1.5] | strongest |" in md
    section = md.split("## Cross-model: depth of the strongest layer", 1)[1].split("## Verdict matrix", 1)[0]
    assert "| rv_contraction | small | 10 | 1 | 3 (0.3) | -1.5 | 3 (0.3) | -1.5 [-2, -1] |" in section
    assert "| rv_contraction | deep | 20 | 1 | 3 (0.15) | -0.3 | 4 (0.2) | -2 [-2.5, -1.5] |" in section


def test_a_sweep_without_the_effect_shows_no_strongest_layer() -> None:
    md = claims_markdown([record("m", sweep([0.4, 0.9], 10))], {"run_id": "r"}, {})
    assert "| rv_contraction | m | 10 | 1 | 3 (0.3) | 0.9 | – | – |" in md
    assert "strongest" not in md.split("**Layer sweep**", 1)[1].split("## Cross-model", 1)[0]


def test_no_sweep_no_section() -> None:
    rec = record("m", {})
    rec["details"] = {}
    md = claims_markdown([rec], {"run_id": "r"}, {})
    assert "Layer sweep" not in md and "Cross-model" not in md
