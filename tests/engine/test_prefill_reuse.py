"""Prefill reuse (harness/engine/prefill_reuse.py): a repeated prefill is bit for bit the computed one, every caller gets its
own copy, hooks and training mode bypass the store, the budget bounds it, and generation gives identical records with
reuse on and off — including an activation patch run after a natural run of the same recipients."""

from __future__ import annotations

import pytest
import torch

from harness.engine import kvcache
from harness.engine.generation import CaptureSpec, GenerationRequest, generate
from harness.engine.hooks import TraceDict
from harness.engine.patch_specs import ActivationPatchSpec, ActivationSite, KVPatchSpec
from harness.engine.prefill_reuse import BUDGET_ENV, budget_bytes, prefill_bytes, reuse_stats, reused_prefill
from harness.engine.tokens import pad_id
from harness.foundation.decoding import DecodingRegime
from harness.models import LoadedModel

ROWS = [[5, 9, 13, 2, 7, 11], [3, 4, 8, 21]]


def _fresh_rows(offset: int) -> list[list[int]]:
    """Rows no other test prefilled (the store lives with the session-scoped model)."""
    return [[t + offset for t in r] for r in ROWS]


def test_a_repeated_prefill_is_the_computed_one_and_each_caller_gets_its_own_copy(toy_llama: LoadedModel) -> None:
    rows, pad = _fresh_rows(100), pad_id(toy_llama.tokenizer)
    before = reuse_stats(toy_llama.model)
    direct = kvcache.prefill(toy_llama.model, rows, pad_id=pad)
    first = reused_prefill(toy_llama.model, rows, pad_id=pad)
    second = reused_prefill(toy_llama.model, rows, pad_id=pad)
    after = reuse_stats(toy_llama.model)
    assert (after.misses - before.misses, after.hits - before.hits) == (1, 1)
    assert kvcache.cache_hash(first) == kvcache.cache_hash(second) == kvcache.cache_hash(direct)
    keys, _ = kvcache.layer_kv(first, 0)
    keys.add_(1.0)  # a caller mutating its copy must not reach the next caller
    assert kvcache.cache_hash(reused_prefill(toy_llama.model, rows, pad_id=pad)) == kvcache.cache_hash(direct)
    assert kvcache.layer_kv(second, 0)[0].data_ptr() != keys.data_ptr()


def test_other_rows_offsets_or_padding_are_other_prefills(toy_llama: LoadedModel) -> None:
    rows, pad = _fresh_rows(200), pad_id(toy_llama.tokenizer)
    base = reused_prefill(toy_llama.model, rows, pad_id=pad)
    for other in (reused_prefill(toy_llama.model, rows[::-1], pad_id=pad),
                  reused_prefill(toy_llama.model, rows, pad_id=pad, position_offset=3),
                  reused_prefill(toy_llama.model, rows[:1], pad_id=pad)):
        assert kvcache.cache_hash(other) != kvcache.cache_hash(base)
    shifted = reused_prefill(toy_llama.model, rows, pad_id=pad, position_offset=3)
    assert kvcache.cache_hash(shifted) == kvcache.cache_hash(kvcache.prefill(toy_llama.model, rows, pad_id=pad,
                                                                             position_offset=3))


def test_a_hook_bypasses_the_store(toy_llama: LoadedModel) -> None:
    rows, pad = _fresh_rows(300), pad_id(toy_llama.tokenizer)
    clean = reused_prefill(toy_llama.model, rows, pad_id=pad)
    path = toy_llama.path(0, "v_proj")
    before = reuse_stats(toy_llama.model)
    with TraceDict(toy_llama.model, [path], retain_output=False, edit_output=lambda out, _: out * 2.0):
        edited = reused_prefill(toy_llama.model, rows, pad_id=pad)
    assert reuse_stats(toy_llama.model).bypassed == before.bypassed + 1
    assert not torch.equal(kvcache.layer_kv(edited, 0)[1], kvcache.layer_kv(clean, 0)[1])
    assert kvcache.cache_hash(reused_prefill(toy_llama.model, rows, pad_id=pad)) == kvcache.cache_hash(clean)


def test_transformers_recording_hooks_do_not_bypass_the_store(toy_llama: LoadedModel) -> None:
    # bug: transformers 5.x leaves an output-capturing hook on every layer after the first forward that asks for
    # attentions, so a guard counting every hook turned reuse off for the rest of the run
    rows, pad = _fresh_rows(500), pad_id(toy_llama.tokenizer)
    state = kvcache.DecodeState(kvcache.prefill(toy_llama.model, rows, pad_id=pad))
    state.step(toy_llama.model, torch.tensor([r[-1] for r in rows]), attentions=True)
    before = reuse_stats(toy_llama.model)
    reused_prefill(toy_llama.model, rows, pad_id=pad)
    reused_prefill(toy_llama.model, rows, pad_id=pad)
    after = reuse_stats(toy_llama.model)
    assert (after.misses - before.misses, after.hits - before.hits, after.bypassed - before.bypassed) == (1, 1, 0)


def test_the_budget_bounds_the_store_and_zero_turns_it_off(toy_llama: LoadedModel,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    pad = pad_id(toy_llama.tokenizer)
    one = prefill_bytes(kvcache.prefill(toy_llama.model, _fresh_rows(400), pad_id=pad))
    monkeypatch.setenv(BUDGET_ENV, str(2.5 * one / (1 << 20)))  # room for two prefills of this size
    for k in range(4):
        reused_prefill(toy_llama.model, _fresh_rows(400 + k), pad_id=pad)
    assert reuse_stats(toy_llama.model).stored_bytes <= budget_bytes(toy_llama.model)
    hits = reuse_stats(toy_llama.model).hits
    reused_prefill(toy_llama.model, _fresh_rows(403), pad_id=pad)  # the most recent stays
    reused_prefill(toy_llama.model, _fresh_rows(400), pad_id=pad)  # the oldest went out first
    assert reuse_stats(toy_llama.model).hits == hits + 1
    monkeypatch.setenv(BUDGET_ENV, "0")
    bypassed = reuse_stats(toy_llama.model).bypassed
    reused_prefill(toy_llama.model, _fresh_rows(403), pad_id=pad)
    assert reuse_stats(toy_llama.model).bypassed == bypassed + 1 and reuse_stats(toy_llama.model).stored_bytes == 0
    monkeypatch.setenv(BUDGET_ENV, "lots")
    with pytest.raises(ValueError, match=f"{BUDGET_ENV}='lots' is not a number"):
        reused_prefill(toy_llama.model, _fresh_rows(403), pad_id=pad)


def _requests(lm: LoadedModel) -> list[GenerationRequest]:
    rows = [[(7 * i + 3 * j) % 50 + 2 for j in range(9 + i % 3)] for i in range(5)]
    donors = [[(5 * i + 11 * j) % 50 + 2 for j in range(len(r))] for i, r in enumerate(rows)]
    return [GenerationRequest(f"p{i}", tuple(r), tuple(d)) for i, (r, d) in enumerate(zip(rows, donors))]


def test_generation_gives_identical_records_with_reuse_on_and_off(toy_llama: LoadedModel,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """Natural, KV-patched and then activation-patched runs over the same recipients: with reuse, the second and
    third prefill of each recipient batch come from the store (or, under the activation patch's hook, bypass it);
    every record equals the one computed with reuse off."""
    lm, requests = toy_llama, _requests(toy_llama)
    natural = [GenerationRequest(r.pair_id, r.recipient_ids) for r in requests]
    decoding = DecodingRegime.greedy(max_new_tokens=6)
    kv = KVPatchSpec(layers=(1,))
    act = ActivationPatchSpec(site=ActivationSite.V_PROJ, layer=1)
    capture = CaptureSpec(v_layers=(0,))

    def run_all() -> list:
        out = []
        for patch, reqs in ((None, natural), (kv, requests), (None, natural), (act, requests)):
            out += generate(lm, reqs, decoding=decoding, patch=patch, capture=capture, batch_size=3,
                            keep_first_logits=True)
        return out

    monkeypatch.setenv(BUDGET_ENV, "0")
    reference = run_all()
    monkeypatch.setenv(BUDGET_ENV, "64")
    before = reuse_stats(lm.model)
    reused = run_all()
    assert reuse_stats(lm.model).hits > before.hits  # the repeated natural and recipient prefills were served
    n = len(requests)
    natural_logits, patched_logits = reference[2 * n:3 * n], reference[3 * n:]
    assert any(not torch.equal(a.first_logits, b.first_logits) for a, b in zip(natural_logits, patched_logits))
    for a, b in zip(reference, reused, strict=True):
        assert a.generated_ids == b.generated_ids and torch.equal(a.first_logits, b.first_logits)
        assert all(torch.equal(a.v_captures[k], b.v_captures[k]) for k in a.v_captures)
