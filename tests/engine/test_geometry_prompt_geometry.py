"""harness.geometry.prompt_geometry: per-prompt cached measurements, PR / entropy tables, group contrasts and the layer sweep."""

from __future__ import annotations

import numpy as np
import pytest

from harness.geometry import capture
from harness.geometry import prompt_geometry as geometry
from harness.geometry.capture import capture_v_windows, rv_per_prompt
from harness.models import LoadedModel
from harness.prompts import Prompt
from harness.runtime.measurement_store import MeasurementStore
from harness.stats import hedges_g, welch_t

TEXTS = [
    "Water boils at one hundred degrees Celsius at sea level, and lower on high mountains far away.",
    "The observer watches the act of observing, and then notices the noticing itself, again and again.",
    "Paris is the capital of France, a country in western Europe known for its long history and food.",
    "I attend to my own attention as it attends, and the attending folds back into the one who attends.",
]
WINDOW = 8


def prompts() -> list[Prompt]:
    return [Prompt(id=f"p{i}", group="baseline", text=t) for i, t in enumerate(TEXTS)]


class CountingCapture:
    """Wraps capture.capture_v_windows and records which prompt ids each call measured."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls: list[list[str]] = []
        original = capture.capture_v_windows

        def counting(lm, items, *args, **kwargs):  # noqa: ANN001, ANN202
            self.calls.append([pid for pid, _ in items])
            return original(lm, items, *args, **kwargs)

        monkeypatch.setattr(capture, "capture_v_windows", counting)


def test_table_matches_a_direct_capture(toy_model: LoadedModel) -> None:
    table = geometry.measure_rv(toy_model, prompts(), window=WINDOW)
    assert table.layers == tuple(range(toy_model.shape.n_layers))
    windows = capture_v_windows(toy_model, [(p.id, p.text) for p in prompts()], [1, 3], window=WINDOW)
    np.testing.assert_allclose(table.r_v(1, 3), rv_per_prompt(windows, 1, 3), rtol=1e-9)
    np.testing.assert_allclose(table.r_v(1, 3, "singular", centered=True),
                               rv_per_prompt(windows, 1, 3, "singular", centered=True), rtol=1e-9)
    assert len(table.head_pr["eigen"][1][0]) == toy_model.shape.n_kv_heads


def test_prompts_are_measured_in_work_units_and_stored_units_are_read_back(
    toy_llama: LoadedModel, tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Units of UNIT_PROMPTS prompts from the request's first: a request that starts with stored units reads them and
    measures only the rest; the same prompts cut into other units are other entries (measured in their own batch)."""
    monkeypatch.setattr(geometry, "UNIT_PROMPTS", 2)
    counter = CountingCapture(monkeypatch)
    cache = MeasurementStore(tmp_path)
    first = geometry.measure_rv(toy_llama, prompts()[:2], window=WINDOW, store=cache)
    both = geometry.measure_rv(toy_llama, prompts(), window=WINDOW, store=cache)
    again = geometry.measure_rv(toy_llama, prompts(), window=WINDOW, store=cache)
    assert counter.calls == [["p0", "p1"], ["p2", "p3"]]
    assert both.select(["p0", "p1"]).pr == first.pr
    assert again.pr == both.pr
    reversed_ = geometry.measure_rv(toy_llama, prompts()[::-1], window=WINDOW, store=cache)
    assert counter.calls[2:] == [["p3", "p2"], ["p1", "p0"]]
    np.testing.assert_allclose(reversed_.select(["p0", "p1", "p2", "p3"]).r_v(1, 3), both.r_v(1, 3), rtol=1e-5)
    assert len(list((tmp_path / geometry.CACHE_KIND).glob("*.json"))) == 2 * len(TEXTS)


def test_cache_modes_off_and_refresh_always_measure(toy_llama: LoadedModel, tmp_path, monkeypatch) -> None:
    counter = CountingCapture(monkeypatch)
    for mode in ("off", "off", "refresh", "refresh"):
        geometry.measure_rv(toy_llama, prompts()[:1], window=WINDOW, store=MeasurementStore(tmp_path, mode))
    assert len(counter.calls) == 4


def test_a_different_window_is_a_different_measurement(toy_llama: LoadedModel, tmp_path) -> None:
    cache = MeasurementStore(tmp_path)
    a = geometry.measure_rv(toy_llama, prompts()[:1], window=WINDOW, store=cache)
    b = geometry.measure_rv(toy_llama, prompts()[:1], window=WINDOW + 2, store=cache)
    assert a.pr != b.pr


def test_layer_selection_and_errors(toy_llama: LoadedModel) -> None:
    table = geometry.measure_rv(toy_llama, prompts()[:2], [3, 1], window=WINDOW)
    assert table.layers == (1, 3)
    with pytest.raises(KeyError, match="layer 2 was not measured"):
        table.r_v(2, 3)
    with pytest.raises(ValueError, match="cannot report layers"):
        geometry.measure_rv(toy_llama, prompts()[:2], [9], window=WINDOW)
    with pytest.raises(ValueError, match="no prompts"):
        geometry.measure_rv(toy_llama, [], window=WINDOW)


def test_entropy_table_matches_the_capture(toy_gemma3: LoadedModel) -> None:
    table = geometry.measure_attention_entropy(toy_gemma3, prompts(), [0, 5], window=WINDOW)
    windows = capture_v_windows(toy_gemma3, [(p.id, p.text) for p in prompts()], [5], window=WINDOW,
                                attention_entropy_layers=[0, 5])
    np.testing.assert_allclose(table.entropy[5], windows.entropy[5].numpy(), rtol=1e-6)
    np.testing.assert_allclose(table.mean_over_heads(0), windows.entropy[0].mean(1).numpy(), rtol=1e-6)
    assert table.head(5, 2) == [row[2] for row in table.entropy[5]]


def test_hedges_contrast_is_g_welch_and_a_seeded_ci() -> None:
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=20), rng.normal(size=25) + 1.0
    c = geometry.hedges_contrast(x, y, alternative="less", level=0.95, seed=7)
    assert c.estimate == pytest.approx(hedges_g(x, y))
    assert c.p_value == pytest.approx(welch_t(x, y, alternative="less").p)
    assert c.ci.low < c.estimate < c.ci.high
    again = geometry.hedges_contrast(x, y, alternative="less", level=0.95, seed=7)
    assert (again.ci.low, again.ci.high) == (c.ci.low, c.ci.high)


def synthetic_table(n_layers: int, n: int, seed: int) -> geometry.PRTable:
    """PRs where group 'r' contracts more with depth than group 'b' (an effect that grows with the layer)."""
    rng = np.random.default_rng(seed)
    ids = [f"r{i}" for i in range(n)] + [f"b{i}" for i in range(n)]
    pr = {layer: [float(10 - (1.0 * layer if i.startswith("r") else 0.0) + rng.normal(0, 0.5)) for i in ids]
          for layer in range(n_layers)}
    return geometry.PRTable(tuple(ids), tuple(range(n_layers)), 8, {"eigen": pr}, {})


def test_layer_sweep_format_and_the_fixed_layer_equals_the_verdict_contrast() -> None:
    table, n_layers, early, late = synthetic_table(6, 12, 0), 6, 1, 4
    r_ids, b_ids = [f"r{i}" for i in range(12)], [f"b{i}" for i in range(12)]
    sweep = geometry.rv_layer_sweep(table, r_ids, b_ids, early=early, fixed_late=late, n_layers=n_layers,
                                    level=0.95, seed=11)
    assert sweep["layers"] == [2, 3, 4, 5] and sweep["depth_fraction"] == [2 / 6, 3 / 6, 4 / 6, 5 / 6]
    assert {len(sweep[k]) for k in ("estimate", "ci_low", "ci_high")} == {4}
    assert sweep["fixed_layer"] == late and sweep["early_layer"] == early and sweep["n_layers"] == n_layers
    verdict = geometry.hedges_contrast(table.select(r_ids).r_v(early, late), table.select(b_ids).r_v(early, late),
                                       alternative="less", level=0.95, seed=11)
    i = sweep["layers"].index(late)
    assert (sweep["estimate"][i], sweep["ci_low"][i], sweep["ci_high"][i]) == (
        verdict.estimate, verdict.ci.low, verdict.ci.high)
    assert sweep["estimate"][-1] < sweep["estimate"][0] < 0, "the synthetic effect grows with depth"
    with pytest.raises(ValueError, match="no later layer"):
        geometry.rv_layer_sweep(table, r_ids, b_ids, early=5, fixed_late=5, n_layers=6, level=0.95, seed=0)
