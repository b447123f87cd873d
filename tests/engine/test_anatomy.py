"""harness.anatomy.invariants: shape checks, injection (also beyond a sliding window), re-rotation, persona features, held-out
nearest centroid.

Each check is shown to pass on correct code and to fail when the thing it checks is wrong."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.anatomy import invariants, persona
from harness.engine import kvcache
from harness.engine.tokens import encode, pad_id
from harness.models import LoadedModel
from harness.prompts import Prompt
from harness.runtime.measurement_store import MeasurementStore

TEXTS = [
    "The river bends past the old mill where the children used to swim every summer afternoon before dinner",
    "Paris is the capital of France, a country in western Europe known for its long history and food.",
]
SYSTEMS = {
    "a": "You are a careful librarian who answers briefly.",
    "b": "You are a cheerful pirate who answers briefly.",
}
USERS = ["Where can I find books about birds?", "How long does bread take to bake?", "What is a comet made of?"]


def bank_prompts() -> list[Prompt]:
    return [Prompt(id=f"t{i}", group="baseline", text=t) for i, t in enumerate(TEXTS)]


def persona_prompts() -> list[Prompt]:
    return [
        Prompt(id=f"p-{name}-{j}", group="persona", text=user, tags=(f"persona:{name}",), system=system)
        for name, system in SYSTEMS.items()
        for j, user in enumerate(USERS)
    ]


# ------------------------------------------------------------------------------------------------ shapes


def test_config_facts_match_the_registry_geometry(toy_model: LoadedModel) -> None:
    facts = invariants.cache_facts(toy_model.model)
    g = toy_model.shape
    assert (facts.n_layers, facts.n_kv_heads, facts.head_dim) == (g.n_layers, g.n_kv_heads, g.head_dim)
    assert facts.layer_types == g.layer_types and facts.sliding_window == g.sliding_window
    assert facts.bytes_per_element == 4 and facts.bytes_per_token == 4 * g.n_kv_heads * g.head_dim


def test_a_correct_cache_has_no_mismatch_and_a_wrong_config_is_caught(toy_gemma3: LoadedModel) -> None:
    ids = encode(toy_gemma3.tokenizer, TEXTS[0])
    state = kvcache.prefill(toy_gemma3.model, [ids], pad_id=pad_id(toy_gemma3.tokenizer))
    facts = invariants.cache_facts(toy_gemma3.model)
    assert len(ids) > facts.sliding_window, "the prompt must exceed the toy window"
    assert invariants.cache_shape_mismatches(facts, state) == []
    n_entries = 2 * facts.n_layers
    n_sliding = 2 * sum(t == "sliding_attention" for t in facts.layer_types)
    assert len(invariants.cache_shape_mismatches(dataclasses.replace(facts, n_kv_heads=2), state)) == n_entries
    assert len(invariants.cache_shape_mismatches(dataclasses.replace(facts, bytes_per_element=2), state)) == n_entries
    assert len(invariants.cache_shape_mismatches(dataclasses.replace(facts, sliding_window=4), state)) == n_sliding
    no_window = dataclasses.replace(facts, layer_types=("full_attention",) * facts.n_layers)
    assert len(invariants.cache_shape_mismatches(no_window, state)) == n_sliding
    with pytest.raises(ValueError, match="one row at a time"):
        invariants.cache_shape_mismatches(facts, kvcache.prefill(toy_gemma3.model, [ids, ids], pad_id=0))


def test_measure_cache_shapes_counts_and_caches(toy_gemma3: LoadedModel, tmp_path) -> None:
    cache = MeasurementStore(tmp_path)
    shapes = invariants.measure_cache_shapes(toy_gemma3, bank_prompts(), store=cache)
    assert shapes["mismatches"] == [] and shapes["per_prompt"] == {"t0": 0, "t1": 0}
    g = toy_gemma3.shape
    assert shapes["kv_bytes_per_token"] == [shapes["config_kv_bytes_per_token"]] == [2 * g.n_layers * g.v_width * 4]
    assert shapes["sliding_layers"] == list(g.sliding_layers)
    assert invariants.measure_cache_shapes(toy_gemma3, bank_prompts(), store=MeasurementStore(tmp_path, "read")) == shapes
    assert len(list((tmp_path / "anatomy_shapes").glob("*.json"))) == 1


# ------------------------------------------------------------------------------------- injection, rotation


def test_injection_difference_is_tiny_and_bitwise_equal(toy_model: LoadedModel) -> None:
    diff, equal = invariants.injection_difference(toy_model, encode(toy_model.tokenizer, TEXTS[0]))
    assert equal and 0.0 <= diff <= 1e-5


def test_rerotation_difference_is_tiny_per_layer(toy_model: LoadedModel) -> None:
    check = invariants.rerotation_difference(toy_model, encode(toy_model.tokenizer, TEXTS[0]), 64)
    assert check.max_abs_logit_diff <= 1e-4
    assert len(check.key_diff_per_layer) == toy_model.shape.n_layers
    assert max(check.key_diff_per_layer) <= 1e-4 and max(check.value_diff_per_layer) <= 1e-4
    # a rotation by the wrong Δ is visible even through a random model's near-uniform attention
    assert check.wrong_delta_logit_diff > 1000 * max(check.max_abs_logit_diff, 1e-7)
    with pytest.raises(ValueError, match="positive"):
        invariants.rerotation_difference(toy_model, encode(toy_model.tokenizer, TEXTS[0]), 0)


@pytest.mark.slow
def test_a_wrong_shift_moves_real_logits(smollm2: LoadedModel) -> None:
    """On trained weights the check has power: moving by Δ + 1 instead of Δ changes the logits by far more than 1e-3."""
    check = invariants.rerotation_difference(smollm2, encode(smollm2.tokenizer, TEXTS[0]), 64)
    assert check.max_abs_logit_diff <= 1e-3
    assert check.wrong_delta_logit_diff > 1e-1


def test_measure_rerotation_keys_every_prompt_and_delta(toy_llama: LoadedModel) -> None:
    checks = invariants.measure_rerotation(toy_llama, bank_prompts(), (1, 5))["checks"]
    assert sorted(checks) == ["t0|1", "t0|5", "t1|1", "t1|5"]
    assert all(len(c["key_diff_per_layer"]) == toy_llama.shape.n_layers for c in checks.values())


# ---------------------------------------------------------------------------------------------- personas


def test_persona_tokens_split_at_the_system_boundary(toy_llama: LoadedModel) -> None:
    ids, n_system = persona.persona_tokens(toy_llama.tokenizer, SYSTEMS["a"], USERS[0])
    assert ids[:n_system] == encode(toy_llama.tokenizer, SYSTEMS["a"] + persona.SYSTEM_SEPARATOR)
    assert ids[n_system:] == toy_llama.tokenizer(USERS[0], add_special_tokens=False)["input_ids"]


def test_persona_features_are_the_mean_cached_v_over_the_user_turn(toy_llama: LoadedModel) -> None:
    prompts = persona_prompts()
    layer = toy_llama.layers.late
    feats, system_tokens, evicted = persona.persona_features(toy_llama, prompts, layer, batch_size=4)
    assert feats.shape == (len(prompts), toy_llama.shape.v_width) and evicted == [0] * len(prompts)
    ids, n_system = persona.persona_tokens(toy_llama.tokenizer, prompts[4].system, prompts[4].text)
    assert system_tokens[4] == n_system
    alone = kvcache.prefill(toy_llama.model, [ids], pad_id=pad_id(toy_llama.tokenizer))
    values = kvcache.layer_kv(alone, layer)[1][0, :, n_system:]  # [n_kv, T, head_dim]
    expected = values.permute(1, 0, 2).reshape(values.shape[1], -1).mean(0).double().numpy()
    np.testing.assert_allclose(feats[4], expected, rtol=1e-4, atol=1e-5)


def test_persona_features_skip_positions_a_sliding_layer_evicted(toy_gemma3: LoadedModel) -> None:
    prompts = persona_prompts()[:2]
    _, system_tokens, evicted = persona.persona_features(toy_gemma3, prompts, 0)
    window = toy_gemma3.shape.sliding_window
    for prompt, n_system, gone in zip(prompts, system_tokens, evicted):
        ids, _ = persona.persona_tokens(toy_gemma3.tokenizer, prompt.system, prompt.text)
        assert gone == max(0, (len(ids) - n_system) - (window - 1))


# ------------------------------------------------------------------------------------ nearest centroid


def one_factor(groups: list[str]) -> list[tuple[str]]:
    return [(g,) for g in groups]


def test_nearest_centroid_never_uses_the_held_out_group() -> None:
    """Group A's rows sit where group B puts the *other* class: only a leaky classifier gets A right."""
    feats = np.array([[0.0, 0.0], [10.0, 0.0], [10.0, 0.0], [0.0, 0.0]])
    labels, groups = ["a", "b", "a", "b"], ["A", "A", "B", "B"]
    assert persona.nearest_centroid_held_out(feats, labels, one_factor(groups)) == ["b", "a", "b", "a"]


def test_held_out_training_shares_no_factor_with_the_test_cell() -> None:
    """The test cell (w1, u1) is predicted from the (w2, u2) rows only, where the classes sit the other way round;
    a readout that also trained on the same wording (w1, u2) or the same user (w2, u1) would get row 0 right."""
    feats = np.array([[1.0], [4.0], [1.0], [4.0], [1.0], [4.0], [-9.0], [9.0]])
    labels = ["a", "b"] * 4
    factors = [("w1", "u1")] * 2 + [("w1", "u2")] * 2 + [("w2", "u1")] * 2 + [("w2", "u2")] * 2
    assert persona.nearest_centroid_held_out(feats, labels, factors)[:2] == ["b", "b"]
    leaky = [("w1", "u1")] * 2 + [("x", "y")] * 6  # leave only the cell out
    assert persona.nearest_centroid_held_out(feats, labels, leaky)[:2] == ["a", "b"]


@settings(deadline=None)
@given(
    n_groups=st.integers(2, 6),
    n_classes=st.integers(2, 4),
    seed=st.integers(0, 2**32 - 1),
    shift=st.floats(-100, 100, allow_nan=False),
)
def test_separated_classes_are_recovered_and_translation_does_not_matter(
    n_groups: int, n_classes: int, seed: int, shift: float
) -> None:
    rng = np.random.default_rng(seed)
    labels = [f"c{c}" for _ in range(n_groups) for c in range(n_classes)]
    groups = one_factor([f"g{g}" for g in range(n_groups) for _ in range(n_classes)])
    centres = rng.normal(size=(n_classes, 5)) * 100
    feats = np.stack([centres[int(lab[1:])] + rng.normal(size=5) * 0.01 for lab in labels])
    predicted = persona.nearest_centroid_held_out(feats, labels, groups)
    assert predicted == labels
    assert persona.nearest_centroid_held_out(feats + shift, labels, groups) == predicted


def test_nearest_centroid_rejects_bad_input() -> None:
    feats = np.zeros((4, 2))
    with pytest.raises(ValueError, match="shares no factor"):
        persona.nearest_centroid_held_out(feats, ["a", "b", "a", "b"], one_factor(["g"] * 4))
    with pytest.raises(ValueError, match="shares no factor"):
        persona.nearest_centroid_held_out(feats, ["a", "b", "b", "b"], one_factor(["g", "g", "h", "h"]))
    with pytest.raises(ValueError, match="features"):
        persona.nearest_centroid_held_out(feats, ["a", "b"], one_factor(["g", "h"]))
    with pytest.raises(ValueError, match="same, non-zero number"):
        persona.nearest_centroid_held_out(feats, ["a", "b", "a", "b"], [("g",), ("g", "h"), ("h",), ("h",)])


def test_center_by_removes_each_group_mean() -> None:
    feats = np.array([[1.0, 2.0], [3.0, 6.0], [10.0, 0.0], [14.0, 0.0]])
    centred = persona.center_by(feats, ["u", "u", "v", "v"])
    assert np.allclose(centred, [[-1.0, -2.0], [1.0, 2.0], [-2.0, 0.0], [2.0, 0.0]])


# ------------------------------------------------------------------------------------ beyond the window


def test_beyond_window_prompt_is_long_enough_and_deterministic(toy_gemma3: LoadedModel) -> None:
    pool = bank_prompts()
    window = invariants.sliding_window(toy_gemma3)
    assert window == toy_gemma3.model.config.sliding_window == 8
    long = invariants.beyond_window_prompt(toy_gemma3, pool, window + invariants.BEYOND_WINDOW_MARGIN)
    assert len(encode(toy_gemma3.tokenizer, long.text)) >= window + invariants.BEYOND_WINDOW_MARGIN
    assert long.text.startswith(TEXTS[0]) and TEXTS[1] in long.text  # joined in id order, cycling
    assert invariants.beyond_window_prompt(toy_gemma3, list(reversed(pool)), window + 64) == long
    with pytest.raises(ValueError, match="non-empty pool"):
        invariants.beyond_window_prompt(toy_gemma3, [], 10)


def test_a_model_without_sliding_layers_has_no_window(toy_llama: LoadedModel) -> None:
    assert invariants.sliding_window(toy_llama) is None


def test_injection_beyond_the_window_equals_the_text_path(toy_gemma3: LoadedModel) -> None:
    """A prompt far past the window: the sliding layers' injected caches hold only the last W − 1 positions."""
    long = invariants.beyond_window_prompt(toy_gemma3, bank_prompts(), 8 + invariants.BEYOND_WINDOW_MARGIN)
    ids = encode(toy_gemma3.tokenizer, long.text)
    state = kvcache.prefill(toy_gemma3.model, [ids[:-1]], pad_id=pad_id(toy_gemma3.tokenizer))
    sliding = toy_gemma3.shape.sliding_layers[0]
    assert kvcache.layer_kv(state, sliding)[0].shape[-2] == 7 < len(ids) - 1  # eviction happened
    diff, equal = invariants.injection_difference(toy_gemma3, ids)
    assert diff <= 1e-4 and equal
    measured = invariants.measure_injection(toy_gemma3, [long])
    assert measured["tokens"] == {long.id: len(ids)}


def test_config_facts_of_a_config_without_kv_heads_match_its_cache() -> None:
    """GPT-NeoX configs name no ``num_key_value_heads`` (every head has its own K/V): the facts fall back to the
    attention heads, and a real prefill of such a model has exactly the implied shapes."""
    from transformers import GPTNeoXConfig, GPTNeoXForCausalLM

    torch.manual_seed(0)
    config = GPTNeoXConfig(vocab_size=64, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                           intermediate_size=64, rotary_pct=0.25)
    model = GPTNeoXForCausalLM(config).eval()
    facts = invariants.cache_facts(model)
    assert (facts.n_kv_heads, facts.head_dim) == (4, 8)
    state = kvcache.prefill(model, [[1, 2, 3, 4, 5]], pad_id=0)
    assert invariants.cache_shape_mismatches(facts, state) == []
