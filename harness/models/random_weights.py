"""Random-weight copies of a loaded model: the same architecture, tokenizer and layer choices with weights drawn
from the config's initialisation, the baseline that separates what training put into a measurement from what the
architecture and the tokens alone produce."""

from __future__ import annotations

import copy
import dataclasses

import torch

from harness.models.loaded import LoadedModel

__all__ = ["random_weight_copy"]


def random_weight_copy(lm: LoadedModel, seed: int) -> LoadedModel:
    """The same architecture with random weights: ``AutoModelForCausalLM.from_config(lm.model.config)`` after
    ``torch.manual_seed(seed)`` (in a forked RNG, so the caller's random state is untouched), on the model's input
    device and in its dtype, with the same tokenizer and layer choices. Its ``provenance["model"]`` names the
    seed, so its measurements are cached apart from the trained model's."""
    from transformers import AutoModelForCausalLM

    dtype = next(lm.model.parameters()).dtype
    device = lm.input_device
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(seed)
        with torch.device(device):
            model = AutoModelForCausalLM.from_config(
                copy.deepcopy(lm.model.config), dtype=dtype, attn_implementation=lm.spec.attn_implementation
            )
    model.eval()
    model.requires_grad_(False)
    provenance = {**lm.provenance, "model": f"{lm.name}:random-weights:{seed}",
                  "weights": f"random, from_config after torch.manual_seed({seed}) on {device}"}
    return dataclasses.replace(lm, model=model, provenance=provenance)
