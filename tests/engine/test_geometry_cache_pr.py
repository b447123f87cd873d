"""harness.geometry.cache_pr.donor_cache_pr: the PR of the V held in a donor's prefix cache."""

from __future__ import annotations

import math

import pytest
import torch

from harness.engine.hooks import TraceDict
from harness.geometry.cache_pr import donor_cache_pr
from harness.geometry.metrics import PromptTooShortError, participation_ratio
from harness.models.architectures import select_columns
from harness.prompts.pairing import select_pairs


@torch.no_grad()
def test_donor_cache_pr_is_the_pr_of_the_prefix_v(toy_llama, bank):
    pairs = select_pairs(toy_llama, bank, 3)
    layer = toy_llama.layers.late
    got = donor_cache_pr(toy_llama, pairs, layer, window=16)
    path = toy_llama.path(layer, "v_proj")
    for pair, value in zip(pairs, got):
        prefix = list(pair.recursive_ids[:-1])
        with TraceDict(toy_llama.model, [path]) as traces:
            toy_llama.model(input_ids=torch.tensor([prefix]))
        rows = select_columns(traces[path].output[0], toy_llama.v_columns)[-16:]
        assert math.isclose(value, participation_ratio(rows), rel_tol=1e-5)
        assert 1.0 <= value <= 16.0


def test_donor_cache_pr_refuses_a_window_a_sliding_layer_no_longer_holds(toy_gemma3, bank):
    pairs = select_pairs(toy_gemma3, bank, 1)
    with pytest.raises(PromptTooShortError, match=r"holds \d content positions at layer 0; the window needs 16"):
        donor_cache_pr(toy_gemma3, pairs, 0, window=16)
