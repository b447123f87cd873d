"""Issue 28: a checkpoint whose activations are not finite is refused at load, naming the first layer."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from harness.models import load_model
from harness.models.finite_probe import NonFiniteModelError
from tests.engine.test_model_architectures import save_tiny


def save_broken_llama(out: Path, layer: int = 2) -> Path:
    """A tiny random Llama saved with one NaN in layer ``layer``'s value projection."""
    from safetensors.torch import load_file, save_file

    directory = save_tiny("llama", out)
    weights = directory / "model.safetensors"
    state = load_file(str(weights))
    key = f"model.layers.{layer}.self_attn.v_proj.weight"
    state[key][0, 0] = torch.nan
    save_file(state, str(weights), metadata={"format": "pt"})
    return directory


def test_one_nan_in_a_value_projection_is_refused_naming_its_layer(tmp_path: Path) -> None:
    directory = save_broken_llama(tmp_path / "broken", layer=2)
    with pytest.raises(NonFiniteModelError) as err:
        load_model(f"path:{directory}", device="cpu")
    message = str(err.value)
    assert "\n" not in message
    assert f"path:{directory}: activations are not finite (NaN) from the output of decoder layer 2 on" in message


def test_a_healthy_model_passes(tmp_path: Path) -> None:
    assert load_model(f"path:{save_tiny('llama', tmp_path / 'ok')}", device="cpu").shape.n_layers == 4


def test_decoding_stops_on_logits_that_turn_non_finite(toy_llama) -> None:  # type: ignore[no-untyped-def]
    """A decode step whose logits are NaN (here: made so by a hook from the third step on) stops the condition with
    one line naming model, condition, step and pairs; nothing is decoded from NaN."""
    from harness.engine.generation import NonFiniteLogitsError, generate
    from harness.foundation.decoding import DecodingRegime
    from harness.foundation.nonfinite import NonFiniteError
    from tests.parity.test_generation import bank_requests

    calls = {"n": 0}

    def poison(module: torch.nn.Module, inputs: object, output: torch.Tensor) -> torch.Tensor:
        calls["n"] += 1
        return output.masked_fill(torch.ones_like(output, dtype=torch.bool), float("nan")) if calls["n"] >= 3 else output

    handle = toy_llama.model.get_output_embeddings().register_forward_hook(poison)
    try:
        with pytest.raises(NonFiniteLogitsError) as err:
            generate(toy_llama, bank_requests(toy_llama, limit=2), decoding=DecodingRegime.greedy(8), condition="kv_main")
    finally:
        handle.remove()
    message = str(err.value)
    assert isinstance(err.value, NonFiniteError) and "\n" not in message
    assert message.startswith("toy-llama kv_main: the logits are not finite at decode step ")
