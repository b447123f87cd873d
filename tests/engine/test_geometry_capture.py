"""V capture: batched equals single, windows exclude specials, short prompts rejected, V is v_proj output."""

from __future__ import annotations

import pytest
import torch

from harness.engine.hooks import active_forward_hooks
from harness.geometry.capture import capture_v_windows, rv_per_prompt
from harness.geometry.metrics import PromptTooShortError
from harness.models import LoadedModel

PROMPTS = [
    ("short-ish", "Water boils at one hundred degrees Celsius at sea level, and lower on high mountains."),
    ("longer", "The observer watches the act of observing, and then notices the noticing itself, again and "
     "again, as attention turns back upon attention and the watcher becomes the watched."),
    ("mid", "Paris is the capital of France, a country in western Europe known for its long history and food."),
]


def test_batched_equals_single(toy_model: LoadedModel) -> None:
    layers = [toy_model.layers.early, toy_model.layers.late]
    batched = capture_v_windows(toy_model, PROMPTS, layers, window=8, batch_size=3)
    for i, prompt in enumerate(PROMPTS):
        single = capture_v_windows(toy_model, [prompt], layers, window=8)
        for layer in layers:
            torch.testing.assert_close(batched.values[layer][i], single.values[layer][0], atol=1e-5, rtol=1e-5)
    assert active_forward_hooks(toy_model.model) == 0


def test_window_shape_and_rv_finite(toy_llama: LoadedModel) -> None:
    w = capture_v_windows(toy_llama, PROMPTS, [1, 3], window=8)
    assert w.values[1].shape == (3, 8, toy_llama.shape.v_width)
    assert all(0 < r < 10 for r in rv_per_prompt(w, 1, 3))


def test_captured_v_is_the_v_proj_output_at_the_window(toy_llama: LoadedModel) -> None:
    text = PROMPTS[1][1]
    ids = torch.as_tensor([toy_llama.tokenizer(text)["input_ids"]], device=toy_llama.input_device)
    with torch.no_grad():
        hidden = toy_llama.model(ids, output_hidden_states=True).hidden_states[2]  # input of layer 2
        layer = toy_llama.model.model.layers[2]
        expected = layer.self_attn.v_proj(layer.input_layernorm(hidden))[0, -8:]
    got = capture_v_windows(toy_llama, [("p", text)], [2], window=8).values[2][0]
    torch.testing.assert_close(got, expected.cpu(), atol=1e-6, rtol=1e-6)


def test_short_prompt_rejected_by_id_before_any_forward(toy_llama: LoadedModel) -> None:
    with pytest.raises(PromptTooShortError, match="'tiny'"):
        capture_v_windows(toy_llama, [PROMPTS[0], ("tiny", "Too short.")], [1], window=16)


def test_bos_is_excluded_from_the_window(toy_gemma3: LoadedModel) -> None:
    # toy models use SmolLM2's tokenizer (no BOS), so check the rule through positions: first content index > 0
    # when a special token is present at position 0.
    from harness.engine.tokens import special_ids
    from harness.geometry.metrics import content_window

    bos = toy_gemma3.tokenizer.bos_token_id
    ids = [bos] + toy_gemma3.tokenizer(PROMPTS[0][1])["input_ids"]
    assert 0 not in content_window(ids, special_ids(toy_gemma3.tokenizer), window=len(ids) - 2)


def test_unknown_layer_rejected(toy_llama: LoadedModel) -> None:
    with pytest.raises(ValueError, match="has 4 layers"):
        capture_v_windows(toy_llama, PROMPTS, [7])
