"""Hook lifecycle: paths resolved up front, hooks removed after normal exit and after exceptions."""

from __future__ import annotations

import pytest
import torch

from harness.engine.hooks import Trace, TraceDict, UnknownModulePathError, active_forward_hooks
from harness.models import LoadedModel


def ids(lm: LoadedModel) -> torch.Tensor:
    return torch.as_tensor([lm.tokenizer("The observer observes the observing.")["input_ids"]], device=lm.input_device)


def test_hooks_removed_after_normal_exit(toy_llama: LoadedModel) -> None:
    paths = [toy_llama.path(i, "v_proj") for i in range(toy_llama.shape.n_layers)]
    with TraceDict(toy_llama.model, paths) as traces:
        assert active_forward_hooks(toy_llama.model) == len(paths)
        toy_llama.model(ids(toy_llama))
    assert active_forward_hooks(toy_llama.model) == 0
    assert all(t.output is not None and t.calls == 1 for t in traces.values())


def test_hooks_removed_after_exception(toy_llama: LoadedModel) -> None:
    def explode(output: torch.Tensor, path: str) -> torch.Tensor:
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        with TraceDict(toy_llama.model, [toy_llama.path(1, "v_proj")], edit_output=explode):
            toy_llama.model(ids(toy_llama))
    assert active_forward_hooks(toy_llama.model) == 0


def test_unknown_path_names_it_and_registers_nothing(toy_llama: LoadedModel) -> None:
    good = toy_llama.path(0, "v_proj")
    with pytest.raises(UnknownModulePathError, match="model.layers.99.self_attn.v_proj"):
        TraceDict(toy_llama.model, [good, "model.layers.99.self_attn.v_proj"])
    assert active_forward_hooks(toy_llama.model) == 0


def test_edit_output_changes_the_forward_and_tuple_outputs_are_handled(toy_llama: LoadedModel) -> None:
    x = ids(toy_llama)
    with torch.no_grad():
        clean = toy_llama.model(x).logits
        with Trace(toy_llama.model, toy_llama.path(1, "v_proj"), edit_output=lambda o, p: o * 0):
            zeroed = toy_llama.model(x).logits
        # a decoder layer may return a tuple (older transformers) or a tensor: both must round-trip unchanged
        with Trace(toy_llama.model, toy_llama.path(1, "layer"), edit_output=lambda o, p: o) as layer_trace:
            same = toy_llama.model(x).logits
    assert not torch.allclose(clean, zeroed)
    assert torch.equal(clean, same)
    assert layer_trace.output is not None and layer_trace.output.shape[-1] == 64


def test_retain_all_keeps_one_output_per_call(toy_llama: LoadedModel) -> None:
    with Trace(toy_llama.model, toy_llama.path(0, "v_proj"), retain_all=True) as trace:
        with torch.no_grad():
            toy_llama.model(ids(toy_llama))
            toy_llama.model(ids(toy_llama))
    assert trace.calls == 2 and len(trace.outputs) == 2


def test_stop_cuts_the_forward_after_the_last_path(toy_llama: LoadedModel) -> None:
    late = toy_llama.path(3, "v_proj")
    out = "never assigned"
    with Trace(toy_llama.model, late, retain_all=True) as witness:
        with TraceDict(toy_llama.model, [toy_llama.path(0, "v_proj"), toy_llama.path(1, "v_proj")], stop=True) as traces:
            out = toy_llama.model(ids(toy_llama))
    assert out == "never assigned"  # the with-block swallowed StopForward; the call never returned
    assert traces[toy_llama.path(1, "v_proj")].output is not None
    assert witness.calls == 0  # layer 3 never ran
    assert active_forward_hooks(toy_llama.model) == 0
