"""Prefill attention entropy (harness.geometry.capture): equals the entropy of the model's own attention probabilities
at the window's query positions, batched = single, hooks removed, clear error without eager attention."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.engine.attention import attention_entropy
from harness.geometry import prompt_geometry as geometry
from harness.geometry.capture import AttentionWeightsUnavailableError, capture_v_windows
from harness.models import LoadedModel, load_model
from harness.prompts import Prompt

PROMPTS = [
    ("a", "The observer watches the act of observing, and then notices the noticing itself, again and again"),
    ("b", "Paris is the capital of France, a country in western Europe known for its long history and food."),
    ("c", "Water boils at one hundred degrees Celsius at sea level."),
]
WINDOW = 8


def all_forward_hooks(model: torch.nn.Module) -> int:
    return sum(len(m._forward_hooks) for m in model.modules())


def test_entropy_is_that_of_the_models_attention_at_the_window(toy_model: LoadedModel) -> None:
    layers = list(range(toy_model.shape.n_layers))
    hooks_before = all_forward_hooks(toy_model.model)
    got = capture_v_windows(toy_model, PROMPTS, [toy_model.layers.late], window=WINDOW, attention_entropy_layers=layers)
    assert all_forward_hooks(toy_model.model) == hooks_before
    for i, (_, text) in enumerate(PROMPTS):
        ids = torch.tensor([toy_model.tokenizer(text)["input_ids"]], device=toy_model.input_device)
        with torch.no_grad():
            attentions = toy_model.model(ids, output_attentions=True).attentions
        for layer in layers:
            expected = attention_entropy(attentions[layer][0, :, -WINDOW:, :]).mean(dim=1).cpu()
            torch.testing.assert_close(got.entropy[layer][i], expected, rtol=1e-5, atol=1e-5)


def test_entropy_is_bounded_by_the_keys_each_query_sees(toy_gemma3: LoadedModel) -> None:
    """0 ≤ H ≤ ln(keys visible): the last window query sees all tokens on full layers, at most W on sliding ones."""
    got = capture_v_windows(toy_gemma3, PROMPTS[:1], [0], window=WINDOW, attention_entropy_layers=[0, 5])
    n_tokens = len(toy_gemma3.tokenizer(PROMPTS[0][1])["input_ids"])
    window = toy_gemma3.shape.sliding_window
    assert (got.entropy[0] >= 0).all() and (got.entropy[0] <= math.log(window) + 1e-5).all()
    assert (got.entropy[5] <= math.log(n_tokens) + 1e-5).all()
    assert got.entropy[5].mean() > math.log(window), "the full layer attends beyond the sliding window"


def test_batched_entropy_equals_single(toy_gemma3: LoadedModel) -> None:
    batched = capture_v_windows(toy_gemma3, PROMPTS, [5], window=WINDOW, attention_entropy_layers=[2, 5], batch_size=3)
    for i, prompt in enumerate(PROMPTS):
        single = capture_v_windows(toy_gemma3, [prompt], [5], window=WINDOW, attention_entropy_layers=[2, 5])
        for layer in (2, 5):
            torch.testing.assert_close(batched.entropy[layer][i], single.entropy[layer][0], rtol=1e-5, atol=1e-5)


def test_entropy_at_or_past_the_deepest_v_layer_is_still_recorded(toy_llama: LoadedModel) -> None:
    """The early stop after the deepest v_proj must not cut off an attention module that finishes later."""
    got = capture_v_windows(toy_llama, PROMPTS[:1], [1], window=WINDOW, attention_entropy_layers=[1, 3])
    assert got.entropy[1].shape == got.entropy[3].shape == (1, toy_llama.shape.n_heads)
    assert capture_v_windows(toy_llama, PROMPTS[:1], [1], window=WINDOW).entropy is None


def test_without_eager_attention_entropy_is_refused() -> None:
    lm = load_model("toy-llama", device="cpu")  # a private instance: the fixture model stays eager
    lm.model.set_attn_implementation("sdpa")
    hooks_before = all_forward_hooks(lm.model)
    with pytest.raises(AttentionWeightsUnavailableError, match="eager"):
        capture_v_windows(lm, PROMPTS[:1], [1], window=WINDOW, attention_entropy_layers=[1])
    assert all_forward_hooks(lm.model) == hooks_before
    with pytest.raises(AttentionWeightsUnavailableError, match="eager"):
        geometry.measure_attention_entropy(lm, [Prompt(id="a", group="baseline", text=PROMPTS[0][1])], window=WINDOW)


@settings(deadline=None)
@given(
    logits=st.lists(st.floats(-20, 20, allow_nan=False, allow_infinity=False, width=32), min_size=1, max_size=40),
    seed=st.integers(0, 2**16),
)
def test_attention_entropy_bounds_and_permutation_invariance(logits: list[float], seed: int) -> None:
    probs = torch.softmax(torch.tensor(logits, dtype=torch.float32), dim=0)
    h = float(attention_entropy(probs))
    assert -1e-5 <= h <= math.log(len(logits)) + 1e-4
    perm = torch.randperm(len(logits), generator=torch.Generator().manual_seed(seed))
    assert float(attention_entropy(probs[perm])) == pytest.approx(h, abs=1e-5)
    padded = torch.cat([probs, torch.zeros(3)])  # masked keys (probability 0) add nothing
    assert float(attention_entropy(padded)) == pytest.approx(h, abs=1e-6)
