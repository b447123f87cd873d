"""Cache anatomy in harness.engine.kvcache: export / inject, position offsets, RoPE re-rotation of a whole cache.

Toy models have near-uniform attention (random weights), so a wrong rotation barely moves their logits;
these tests therefore compare keys, where a wrong rotation is large, and compare logits where the identity
must hold. Logit-level sensitivity on real weights is in tests/engine/test_anatomy.py (slow)."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from harness.engine import kvcache
from harness.engine.patch_specs import KVPatchSpec
from harness.engine.tokens import encode, pad_id
from harness.models import LoadedModel

TEXT = "The river bends past the old mill where the children used to swim every summer afternoon before dinner"


def tokens(lm: LoadedModel) -> list[int]:
    ids = encode(lm.tokenizer, TEXT)
    assert len(ids) > 12
    return ids


def prefill(lm: LoadedModel, rows: list[list[int]], offset: int = 0) -> kvcache.Prefill:
    return kvcache.prefill(lm.model, rows, pad_id=pad_id(lm.tokenizer), position_offset=offset)


def next_logits(lm: LoadedModel, state: kvcache.Prefill, last: list[int]) -> torch.Tensor:
    return kvcache.DecodeState(state).step(lm.model, torch.tensor(last)).logits


def max_key_diff(a: kvcache.Prefill, b: kvcache.Prefill) -> list[float]:
    return [
        float((kvcache.layer_kv(a, i)[0].float() - kvcache.layer_kv(b, i)[0].float()).abs().max())
        for i in range(kvcache.num_layers(a))
    ]


# ------------------------------------------------------------------------------------------ export / inject


def test_injected_cache_is_bitwise_the_original_and_decodes_like_the_full_text(toy_model: LoadedModel) -> None:
    ids = tokens(toy_model)
    state = prefill(toy_model, [ids[:-1]])
    injected = kvcache.inject_kv(toy_model.model, kvcache.export_kv(state))
    assert kvcache.cache_hash(injected) == kvcache.cache_hash(state)
    assert kvcache.layer_lengths(injected) == kvcache.layer_lengths(state)
    with torch.no_grad():
        full = toy_model.model(torch.tensor([ids])).logits[0, -1].float()
    assert (next_logits(toy_model, injected, [ids[-1]])[0] - full).abs().max().item() <= 1e-5


def test_export_is_a_copy(toy_llama: LoadedModel) -> None:
    ids = tokens(toy_llama)
    state = prefill(toy_llama, [ids[:-1]])
    before = kvcache.cache_hash(state)
    snapshot = kvcache.export_kv(state)
    snapshot.keys[0].zero_()
    injected = kvcache.inject_kv(toy_llama.model, snapshot)
    injected_keys, _ = kvcache.layer_kv(injected, 0)
    assert kvcache.cache_hash(state) == before
    injected_keys.add_(1.0)
    assert torch.count_nonzero(snapshot.keys[0]) == 0, "the injected cache must not alias the snapshot"


def test_sliding_layers_need_their_count_of_positions_seen(toy_gemma3: LoadedModel) -> None:
    """Without restoring 'positions seen', a sliding layer past its window would claim its stored length."""
    ids = tokens(toy_gemma3)
    state = prefill(toy_gemma3, [ids[:-1]])
    snapshot = kvcache.export_kv(state)
    stored = tuple(int(k.shape[-2]) for k in snapshot.keys)
    assert stored != snapshot.seen, "the prompt must be longer than the toy window"
    with pytest.raises(kvcache.CacheError, match="disagree on their length"):
        kvcache.inject_kv(toy_gemma3.model, dataclasses.replace(snapshot, seen=stored))


def test_injecting_into_a_different_architecture_is_rejected(toy_llama: LoadedModel, toy_gemma3: LoadedModel) -> None:
    snapshot = kvcache.export_kv(prefill(toy_gemma3, [tokens(toy_gemma3)[:-1]]))
    with pytest.raises(kvcache.CacheError):
        kvcache.inject_kv(toy_llama.model, snapshot)


def test_layer_window_reads_the_cache_layer(toy_gemma3: LoadedModel, toy_llama: LoadedModel) -> None:
    state = prefill(toy_gemma3, [tokens(toy_gemma3)])
    for layer, kind in enumerate(toy_gemma3.shape.layer_types):
        expected = toy_gemma3.shape.sliding_window if kind == "sliding_attention" else None
        assert kvcache.layer_window(state, layer) == expected
    assert kvcache.layer_window(prefill(toy_llama, [tokens(toy_llama)]), 0) is None


# -------------------------------------------------------------------------------------- position offsets


def test_decoding_continues_at_the_offset_positions(toy_llama: LoadedModel) -> None:
    ids = tokens(toy_llama)
    state = prefill(toy_llama, [ids[:-1], ids[:-3]], offset=5)
    assert state.position_offset == 5
    decoder = kvcache.DecodeState(state)
    assert decoder.next_positions == (5 + len(ids) - 1, 5 + len(ids) - 3)
    assert kvcache.clone(state).position_offset == 5
    with pytest.raises(kvcache.CacheError, match="position_offset"):
        prefill(toy_llama, [ids], offset=-1)


def test_prefill_at_an_offset_equals_the_full_forward_at_those_positions(toy_model: LoadedModel) -> None:
    ids, offset = tokens(toy_model), 37
    with torch.no_grad():
        full = toy_model.model(
            torch.tensor([ids]), position_ids=torch.arange(offset, offset + len(ids))[None]
        ).logits[0, -1].float()
    logits = next_logits(toy_model, prefill(toy_model, [ids[:-1]], offset=offset), [ids[-1]])[0]
    assert (logits - full).abs().max().item() <= 1e-5


def test_patching_between_different_offsets_is_rejected(toy_llama: LoadedModel) -> None:
    ids = tokens(toy_llama)
    with pytest.raises(kvcache.CacheError, match="rotary phase"):
        kvcache.patch_kv(prefill(toy_llama, [ids]), prefill(toy_llama, [ids], offset=2), KVPatchSpec((0,)))


# ------------------------------------------------------------------------------------------- re-rotation


@pytest.mark.parametrize("delta", [1, 64, 256])
def test_moving_a_cache_equals_encoding_at_shifted_positions(toy_model: LoadedModel, delta: int) -> None:
    ids = tokens(toy_model)
    state = prefill(toy_model, [ids[:-1]])
    moved = kvcache.shift_positions(state, delta)
    encoded = prefill(toy_model, [ids[:-1]], offset=delta)
    assert moved.position_offset == delta and kvcache.layer_lengths(moved) == kvcache.layer_lengths(state)
    assert max(max_key_diff(moved, encoded)) <= 1e-4
    diff = next_logits(toy_model, moved, [ids[-1]]) - next_logits(toy_model, encoded, [ids[-1]])
    assert diff.abs().max().item() <= 1e-4
    for layer in range(kvcache.num_layers(state)):  # values do not move
        assert torch.equal(kvcache.layer_kv(moved, layer)[1], kvcache.layer_kv(state, layer)[1])


def test_a_wrong_shift_gives_large_key_differences(toy_model: LoadedModel) -> None:
    ids = tokens(toy_model)
    state = prefill(toy_model, [ids[:-1]])
    encoded = prefill(toy_model, [ids[:-1]], offset=64)
    assert min(max_key_diff(kvcache.shift_positions(state, 65), encoded)) > 1e-2
    assert min(max_key_diff(state, encoded)) > 1e-2, "unmoved keys must differ from shifted ones"


def test_each_gemma3_layer_turns_with_its_own_rotary_base(toy_gemma3: LoadedModel) -> None:
    """Rotating every layer with the global base (as if Gemma 3 had one base) breaks the sliding layers only."""
    ids = tokens(toy_gemma3)
    state = prefill(toy_gemma3, [ids[:-1]])
    kinds = toy_gemma3.shape.layer_types
    full_freq = state.rope_inv_freq[kinds.index("full_attention")]
    assert not torch.equal(full_freq, state.rope_inv_freq[kinds.index("sliding_attention")])
    one_base = dataclasses.replace(state, rope_inv_freq=tuple(full_freq for _ in kinds))
    encoded = prefill(toy_gemma3, [ids[:-1]], offset=64)
    wrong = max_key_diff(kvcache.shift_positions(one_base, 64), encoded)
    right = max_key_diff(kvcache.shift_positions(state, 64), encoded)
    for layer, kind in enumerate(kinds):
        assert right[layer] <= 1e-4
        assert (wrong[layer] > 1e-2) == (kind == "sliding_attention")


def test_shift_inputs_are_checked_and_never_mutated(toy_llama: LoadedModel) -> None:
    state = prefill(toy_llama, [tokens(toy_llama)])
    before = kvcache.cache_hash(state)
    kvcache.shift_positions(state, 3)
    assert kvcache.cache_hash(state) == before
    with pytest.raises(kvcache.CacheError, match="below 0"):
        kvcache.shift_positions(state, -1)
    with pytest.raises(kvcache.CacheError, match="rotary frequencies"):
        kvcache.shift_positions(dataclasses.replace(state, rope_inv_freq=()), 3)
