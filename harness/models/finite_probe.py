"""A forward pass at load that refuses a model whose hidden states or logits are not finite.

A checkpoint with one NaN in a weight, or a dtype that overflows (fp16 on some Gemma-family models), gives NaN or
±inf activations from some layer on; every number the suite then computes from it is meaningless, and decoding from
NaN logits picks token 0 forever. :func:`check_finite` runs the model once over a short probe text with
``output_hidden_states=True`` and raises :class:`NonFiniteModelError` naming the first layer whose output is not
finite (or the embeddings, or the logits), in one line.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from harness.models.errors import ModelUnavailableError

__all__ = ["FINITE_PROBE_TEXT", "NonFiniteModelError", "check_finite"]

FINITE_PROBE_TEXT = "The river bends twice before it reaches the old mill, and the water turns green under the trees."
"""The probe text (any ordinary sentence would do)."""


class NonFiniteModelError(ModelUnavailableError):
    """The model's activations or logits are not finite on the load-time probe (one line)."""


def _first_bad(tensor: torch.Tensor) -> str | None:
    if bool(torch.isfinite(tensor).all()):
        return None
    return "NaN" if bool(torch.isnan(tensor).any()) else "±inf"


def check_finite(model: nn.Module, tokenizer: Any, name: str) -> None:
    """One forward pass over :data:`FINITE_PROBE_TEXT`; silent when every hidden state and logit is finite.

    Raises:
        NonFiniteModelError: ``<name>: … not finite from <where> on (<NaN|±inf>) …`` naming the embeddings, the first
            decoder layer (0-based) whose output is not finite, or the logits.
    """
    ids = torch.tensor([list(tokenizer(FINITE_PROBE_TEXT)["input_ids"])])
    device = model.get_input_embeddings().weight.device
    with torch.no_grad():
        out = model(input_ids=ids.to(device), output_hidden_states=True, use_cache=False)
    hidden = out.hidden_states or ()
    dtype = next(model.parameters()).dtype
    for index, state in enumerate(hidden):
        kind = _first_bad(state)
        if kind is not None:
            where = "the input embeddings" if index == 0 else f"the output of decoder layer {index - 1}"
            raise NonFiniteModelError(
                f"{name}: activations are not finite ({kind}) from {where} on, on a {ids.shape[1]}-token probe in "
                f"{str(dtype).removeprefix('torch.')}: a broken checkpoint (a NaN or inf in its weights) or a dtype "
                "that overflows (try --dtype bf16 or fp32); refused before any measurement")
    kind = _first_bad(out.logits)
    if kind is not None:
        raise NonFiniteModelError(f"{name}: the logits are not finite ({kind}) on a {ids.shape[1]}-token probe "
                                  "although every hidden state is: the output head's weights are broken; refused")
