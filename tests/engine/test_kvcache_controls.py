"""Control conditions applied to caches (DESIGN §4.4): each does what it says and differs from the main condition."""

from __future__ import annotations

import pytest
import torch

from harness.engine import kvcache
from harness.engine.kv_math import rotate_keys, shuffle_permutation
from harness.engine.patch_specs import Control, ControlKind, KVPatchSpec, PatchSpecError, Span, assign_roles
from harness.engine.tokens import encode, pad_id
from harness.foundation.seeds import derive_seed
from harness.models import LoadedModel
from harness.prompts import load_bank


def bank_rows(lm: LoadedModel) -> dict[str, list[int]]:
    """Real prompts from the starter bank, all cut to one common length (length-matched by construction)."""
    bank = load_bank()
    chosen = {"recursive": bank.group("recursive")[0], "baseline": bank.group("baseline")[0],
              "other_baseline": bank.group("baseline")[1], "other_recursive": bank.group("recursive")[1]}
    rows = {name: encode(lm.tokenizer, p.text) for name, p in chosen.items()}
    n = min(len(r) for r in rows.values())
    return {name: r[:n] for name, r in rows.items()}


def run(lm: LoadedModel, recipient: list[int], donor: list[int], spec: KVPatchSpec, key: str = "pair-0") -> tuple[kvcache.Prefill, torch.Tensor]:
    pid = pad_id(lm.tokenizer)
    patched, _ = kvcache.patch_kv(
        kvcache.prefill(lm.model, [recipient[:-1]], pad_id=pid),
        kvcache.prefill(lm.model, [donor[:-1]], pad_id=pid),
        spec,
        row_keys=[key],
    )
    logits = kvcache.DecodeState(patched).step(lm.model, torch.tensor([recipient[-1]])).logits[0]
    return patched, logits


def test_each_control_differs_from_the_main_condition_on_bank_prompts(engine_lm: LoadedModel) -> None:
    rows = bank_rows(engine_lm)
    layers = engine_lm.layers.patch_layers
    main_rec, main_don = assign_roles(None, recursive=rows["recursive"], baseline=rows["baseline"])
    main_cache, main_logits = run(engine_lm, main_rec, main_don, KVPatchSpec(layers))
    for kind in ControlKind:
        control = Control(kind, seed=7)
        rec, don = assign_roles(control, recursive=rows["recursive"], baseline=rows["baseline"],
                                other_baseline=rows["other_baseline"], other_recursive=rows["other_recursive"])
        cache, logits = run(engine_lm, rec, don, KVPatchSpec(layers, control=control))
        assert kvcache.cache_hash(cache) != kvcache.cache_hash(main_cache), kind
        assert (logits - main_logits).abs().max().item() > 1e-3, kind


def test_shuffle_uses_one_derangement_for_keys_values_and_layers(engine_lm: LoadedModel) -> None:
    """Target p gets donor position perm(p): values as they are, keys moved to p's RoPE phase."""
    rows = bank_rows(engine_lm)
    rec, don = rows["baseline"], rows["recursive"]
    spec = KVPatchSpec(engine_lm.layers.patch_layers, span=Span.middle_half(), control=Control(ControlKind.SHUFFLED, seed=3))
    patched, _ = run(engine_lm, rec, don, spec, key="pair-9")
    donor = kvcache.prefill(engine_lm.model, [don[:-1]], pad_id=pad_id(engine_lm.tokenizer))
    span = Span.middle_half().resolve(len(rec) - 1)
    perm = shuffle_permutation(len(span), derive_seed(3, "pair-9", "shuffle"))
    checked = 0
    for layer in spec.layers:
        r0, _ = kvcache.held_range(patched, layer)
        d0, _ = kvcache.held_range(donor, layer)
        (keys, values), (donor_keys, donor_values) = kvcache.layer_kv(patched, layer), kvcache.layer_kv(donor, layer)
        for i, p in enumerate(span):
            source = span[perm[i]]
            if p >= r0 and source >= d0:
                assert torch.equal(values[:, :, p - r0], donor_values[:, :, source - d0])
                moved = rotate_keys(donor_keys[:, :, source - d0 : source - d0 + 1], torch.tensor([p - source]), donor.rope_inv_freq[layer])
                torch.testing.assert_close(keys[:, :, p - r0 : p - r0 + 1], moved.to(keys.dtype), rtol=1e-5, atol=1e-5)
                checked += 1
    assert checked > 0


def test_joint_kv_permutation_without_rerotation_would_equal_main(toy_llama: LoadedModel) -> None:
    """Why the shuffled control re-rotates keys: permuting K and V together is invisible to decode queries."""
    rows = bank_rows(toy_llama)
    rec, don = rows["baseline"], rows["recursive"]
    main_cache, main_logits = run(toy_llama, rec, don, KVPatchSpec(toy_llama.layers.patch_layers))
    perm = torch.tensor(shuffle_permutation(len(rec) - 1, 0))
    naive = main_cache
    for layer in toy_llama.layers.patch_layers:
        keys, values = kvcache.layer_kv(main_cache, layer)
        naive = kvcache.replace_layer(naive, layer, keys=keys[:, :, perm], values=values[:, :, perm])
    naive_logits = kvcache.DecodeState(naive).step(toy_llama.model, torch.tensor([rec[-1]])).logits[0]
    assert (naive_logits - main_logits).abs().max().item() <= 1e-5
    _, shuffled_logits = run(toy_llama, rec, don, KVPatchSpec(toy_llama.layers.patch_layers, control=Control(ControlKind.SHUFFLED)))
    assert (shuffled_logits - main_logits).abs().max().item() > 1e-3


def test_random_control_matches_donor_norms_per_layer_head_and_position(engine_lm: LoadedModel) -> None:
    rows = bank_rows(engine_lm)
    rec, don = rows["baseline"], rows["recursive"]
    spec = KVPatchSpec(engine_lm.layers.patch_layers, control=Control(ControlKind.RANDOM_NORM_MATCHED, seed=5))
    patched, _ = run(engine_lm, rec, don, spec)
    again, _ = run(engine_lm, rec, don, spec)
    other_pair, _ = run(engine_lm, rec, don, spec, key="pair-1")
    donor = kvcache.prefill(engine_lm.model, [don[:-1]], pad_id=pad_id(engine_lm.tokenizer))
    assert kvcache.cache_hash(patched) == kvcache.cache_hash(again)
    assert kvcache.cache_hash(patched) != kvcache.cache_hash(other_pair)
    for layer in spec.layers:
        for got, ref in zip(kvcache.layer_kv(patched, layer), kvcache.layer_kv(donor, layer)):
            torch.testing.assert_close(got.float().norm(dim=-1), ref.float().norm(dim=-1), rtol=1e-5, atol=1e-6)
            cosine = torch.nn.functional.cosine_similarity(got.float(), ref.float(), dim=-1)
            assert cosine.abs().max().item() < 0.9


def test_control_draws_do_not_depend_on_batch_composition(toy_gemma3: LoadedModel) -> None:
    rows = bank_rows(toy_gemma3)
    rec, don = rows["baseline"], rows["recursive"]
    pid = pad_id(toy_gemma3.tokenizer)
    for kind in (ControlKind.SHUFFLED, ControlKind.RANDOM_NORM_MATCHED):
        spec = KVPatchSpec(toy_gemma3.layers.patch_layers, control=Control(kind, seed=1))
        single, _ = kvcache.patch_kv(
            kvcache.prefill(toy_gemma3.model, [rec[:-1]], pad_id=pid), kvcache.prefill(toy_gemma3.model, [don[:-1]], pad_id=pid), spec, row_keys=["p"]
        )
        batched, _ = kvcache.patch_kv(
            kvcache.prefill(toy_gemma3.model, [rows["other_baseline"][:-1], rec[:-1]], pad_id=pid),
            kvcache.prefill(toy_gemma3.model, [don[:-1], don[:-1]], pad_id=pid),
            spec,
            row_keys=["q", "p"],
        )
        for layer in spec.layers:
            for a, b in zip(kvcache.layer_kv(single, layer), kvcache.layer_kv(batched, layer)):
                torch.testing.assert_close(a[0], b[1], rtol=1e-5, atol=1e-5)


def test_tensor_controls_need_row_keys(toy_llama: LoadedModel) -> None:
    rows = bank_rows(toy_llama)
    pid = pad_id(toy_llama.tokenizer)
    state = kvcache.prefill(toy_llama.model, [rows["baseline"][:-1]], pad_id=pid)
    with pytest.raises(PatchSpecError, match="needs one row key per row"):
        kvcache.patch_kv(state, state, KVPatchSpec((0,), control=Control(ControlKind.SHUFFLED)))
