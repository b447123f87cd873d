"""Invariant tests of cache surgery (harness.engine.kvcache) on the tiny random Llama / Gemma 3 and, marked slow,
on the embedded models. Each test names the bug it would catch."""

from __future__ import annotations

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from transformers.models.llama.modeling_llama import repeat_kv

from fixtures.texts import TEXT_A, TEXT_B
from harness.engine import kvcache
from harness.engine.hooks import TraceDict
from harness.engine.kv_math import rotate_keys
from harness.engine.patch_specs import Alignment, Components, KVPatchSpec, PatchSpecError, Span
from harness.engine.tokens import encode, pad_id
from harness.models import LoadedModel, load_model
from harness.models.architectures import select_columns


def matched(lm: LoadedModel, a: str = TEXT_A, b: str = TEXT_B) -> tuple[list[int], list[int]]:
    """Two token lists cut to the same length (a length-matched recipient/donor pair)."""
    ra, rb = encode(lm.tokenizer, a), encode(lm.tokenizer, b)
    n = min(len(ra), len(rb))
    assert ra[:n] != rb[:n]
    return ra[:n], rb[:n]


def prefill(lm: LoadedModel, *rows: list[int]) -> kvcache.Prefill:
    return kvcache.prefill(lm.model, list(rows), pad_id=pad_id(lm.tokenizer))


def first_logits(lm: LoadedModel, state: kvcache.Prefill, last_tokens: list[int]) -> torch.Tensor:
    return kvcache.DecodeState(state).step(lm.model, torch.tensor(last_tokens)).logits


def all_layers(lm: LoadedModel) -> tuple[int, ...]:
    return tuple(range(lm.shape.n_layers))


def same_values(a: kvcache.Prefill, b: kvcache.Prefill) -> bool:
    """Every layer's keys and values equal as numbers (torch.equal: -0.0 == 0.0, unlike the byte hash)."""
    return kvcache.layer_lengths(a) == kvcache.layer_lengths(b) and all(
        torch.equal(x, y)
        for layer in range(kvcache.num_layers(a))
        for x, y in zip(kvcache.layer_kv(a, layer), kvcache.layer_kv(b, layer))
    )


def test_prefill_is_editable_and_every_layer_has_the_prompt_length(engine_lm: LoadedModel) -> None:
    rec, _ = matched(engine_lm)
    state = prefill(engine_lm, rec[:-1], rec[:-4])
    assert kvcache.layer_lengths(state) == (len(rec) - 1,) * engine_lm.shape.n_layers
    assert state.pads == (0, 3)
    keys, values = kvcache.layer_kv(state, 0)
    assert not keys.is_inference() and not keys.requires_grad and keys.dtype == engine_lm.model.dtype
    assert keys.shape[1] == engine_lm.shape.n_kv_heads and keys.shape[-1] == engine_lm.shape.head_dim


def test_sliding_layers_hold_only_their_window(toy_gemma3: LoadedModel) -> None:
    rec, _ = matched(toy_gemma3)
    window = toy_gemma3.shape.sliding_window
    assert len(rec) - 1 > window, "the prompt must be longer than the window to exercise eviction"
    state = prefill(toy_gemma3, rec[:-1])
    for layer, kind in enumerate(toy_gemma3.shape.layer_types):
        start, stop = kvcache.held_range(state, layer)
        assert stop == len(rec) - 1
        assert start == (stop - (window - 1) if kind == "sliding_attention" else 0)
        assert kvcache.layer_is_sliding(state, layer) == (kind == "sliding_attention")


def test_natural_continuation_from_the_prefix_cache_equals_the_full_forward(engine_lm: LoadedModel) -> None:
    """Feeding b_{n-1} at position n-1 after prefilling 0..n-2 (no duplicated last token, right positions)."""
    rec, _ = matched(engine_lm)
    logits = first_logits(engine_lm, prefill(engine_lm, rec[:-1]), [rec[-1]])
    with torch.no_grad():
        full = engine_lm.model(torch.tensor([rec], device=engine_lm.input_device)).logits[0, -1].float()
    assert (logits[0] - full).abs().max().item() <= 1e-4
    assert int(logits[0].argmax()) == int(full.argmax())


def test_alpha_zero_is_the_recipient_and_alpha_one_everywhere_is_the_donor_exactly(engine_lm: LoadedModel) -> None:
    """Exact endpoints of (1−α)·r + α·d (signed zeros aside: 1·(−0.0) + 0·d is +0.0)."""
    rec, don = matched(engine_lm)
    recipient, donor = prefill(engine_lm, rec[:-1]), prefill(engine_lm, don[:-1])
    zero, _ = kvcache.patch_kv(recipient, donor, KVPatchSpec(all_layers(engine_lm), alpha=0.0))
    one, report = kvcache.patch_kv(recipient, donor, KVPatchSpec(all_layers(engine_lm), alpha=1.0))
    assert same_values(zero, recipient) and not same_values(zero, donor)
    assert same_values(one, donor)
    # every position a layer holds was written; what is not applicable is exactly what the layer evicted
    for layer_report in report.layers:
        start, _ = kvcache.held_range(recipient, layer_report.layer)
        assert layer_report.applied[0] == tuple(range(start, len(rec) - 1))
        assert layer_report.not_applicable[0] == tuple(range(start))


def test_alpha_one_over_everything_equals_the_natural_spliced_run(engine_lm: LoadedModel) -> None:
    """α = 1, all layers, all positions ≡ donor tokens 0..n-2 then the recipient's last token."""
    rec, don = matched(engine_lm)
    patched, _ = kvcache.patch_kv(
        prefill(engine_lm, rec[:-1]), prefill(engine_lm, don[:-1]), KVPatchSpec(all_layers(engine_lm))
    )
    logits = first_logits(engine_lm, patched, [rec[-1]])[0]
    with torch.no_grad():
        spliced = engine_lm.model(torch.tensor([don[:-1] + [rec[-1]]], device=engine_lm.input_device)).logits[0, -1].float()
    assert (logits - spliced).abs().max().item() <= 1e-4


def test_alpha_is_continuous_at_one(engine_lm: LoadedModel) -> None:
    """Logits move by O(ε) when α leaves 1: linear scaling in ε, and a displacement ≤ 10·ε of the α 0→1 range.

    The issue's absolute criterion (max |Δlogit| ≤ 1e-2 at ε = 1e-3) is asserted on the toy models; on the
    embedded models the α 0→1 logit range is large enough that 1e-3 of it exceeds 1e-2 (see the report).
    """
    rec, don = matched(engine_lm)
    recipient, donor = prefill(engine_lm, rec[:-1]), prefill(engine_lm, don[:-1])
    out = {}
    for alpha in (0.0, 1.0 - 1e-2, 1.0 - 1e-3, 1.0):
        patched, _ = kvcache.patch_kv(recipient, donor, KVPatchSpec(all_layers(engine_lm), alpha=alpha))
        out[alpha] = first_logits(engine_lm, patched, [rec[-1]])[0]
    span = (out[0.0] - out[1.0]).abs().max().item()
    gap_3 = (out[1.0 - 1e-3] - out[1.0]).abs().max().item()
    gap_2 = (out[1.0 - 1e-2] - out[1.0]).abs().max().item()
    assert 0.0 < gap_3 <= 10 * 1e-3 * span
    assert 5.0 <= gap_2 / gap_3 <= 20.0
    if engine_lm.spec.source == "toy":
        assert gap_3 <= 1e-2


@settings(deadline=None, max_examples=12, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_self_patch_is_the_identity(toy_model: LoadedModel, data: st.DataObject) -> None:
    """Patching a prompt's cache with itself (any layers, span, α, components) changes no logit (batched, padded)."""
    n_layers = toy_model.shape.n_layers
    layers = data.draw(st.lists(st.integers(0, n_layers - 1), min_size=1, max_size=n_layers, unique=True))
    span = data.draw(st.sampled_from([Span.all(), Span.first_quarter(), Span.middle_half(), Span.last_quarter(), Span.at([0, 3, 7])]))
    alpha = data.draw(st.floats(0.0, 1.0))
    components = data.draw(st.sampled_from(list(Components)))
    spec = KVPatchSpec(tuple(layers), span=span, alpha=alpha, components=components)
    rec, other = matched(toy_model)
    rows = [rec[:-1], other[:-5]]
    state = prefill(toy_model, *rows)
    patched, _ = kvcache.patch_kv(state, prefill(toy_model, *rows), spec)
    last = [rec[-1], other[-5]]
    delta = (first_logits(toy_model, patched, last) - first_logits(toy_model, state, last)).abs().max().item()
    assert delta <= 1e-5


def test_mixing_is_float32_per_position_and_touches_only_the_spec(toy_llama: LoadedModel) -> None:
    rec, don = matched(toy_llama)
    recipient, donor = prefill(toy_llama, rec[:-1]), prefill(toy_llama, don[:-1])
    spec = KVPatchSpec((1,), span=Span.middle_half(), alpha=0.3)
    patched, report = kvcache.patch_kv(recipient, donor, spec)
    span = list(Span.middle_half().resolve(len(rec) - 1))
    assert report.requested == (tuple(span),) and report.layers[0].applied == (tuple(span),)
    for layer in range(toy_llama.shape.n_layers):
        for got, r, d in zip(kvcache.layer_kv(patched, layer), kvcache.layer_kv(recipient, layer), kvcache.layer_kv(donor, layer)):
            expected = r.clone()
            if layer == 1:
                expected[:, :, span] = torch.lerp(r[:, :, span].float(), d[:, :, span].float(), 0.3).to(r.dtype)
            assert torch.equal(got, expected)


def test_value_only_patch_leaves_keys(toy_llama: LoadedModel) -> None:
    rec, don = matched(toy_llama)
    recipient, donor = prefill(toy_llama, rec[:-1]), prefill(toy_llama, don[:-1])
    patched, _ = kvcache.patch_kv(recipient, donor, KVPatchSpec((2,), components=Components.V))
    assert torch.equal(kvcache.layer_kv(patched, 2)[0], kvcache.layer_kv(recipient, 2)[0])
    assert torch.equal(kvcache.layer_kv(patched, 2)[1], kvcache.layer_kv(donor, 2)[1])


def test_bfloat16_caches_stay_bfloat16_and_decode(toy_llama: LoadedModel) -> None:
    """Mixed values are cast back to the layer's dtype (fp32 injected into a bf16 eager model fails)."""
    lm = load_model("toy-llama", device="cpu", dtype="bfloat16")
    rec, don = matched(lm)
    recipient, donor = prefill(lm, rec[:-1]), prefill(lm, don[:-1])
    patched, _ = kvcache.patch_kv(recipient, donor, KVPatchSpec(all_layers(lm), alpha=0.5))
    keys, _ = kvcache.layer_kv(patched, 0)
    r, d = kvcache.layer_kv(recipient, 0)[0], kvcache.layer_kv(donor, 0)[0]
    assert keys.dtype == torch.bfloat16
    assert torch.equal(keys, (0.5 * r.float() + 0.5 * d.float()).to(torch.bfloat16))
    assert torch.isfinite(first_logits(lm, patched, [rec[-1]])).all()


def test_inputs_are_never_mutated_and_lengths_stay_equal(engine_lm: LoadedModel) -> None:
    rec, don = matched(engine_lm)
    recipient, donor = prefill(engine_lm, rec[:-1], rec[:-3]), prefill(engine_lm, don[:-1], don[:-3])
    before = (kvcache.cache_hash(recipient), kvcache.cache_hash(donor))
    patched, _ = kvcache.patch_kv(recipient, donor, KVPatchSpec(engine_lm.layers.patch_layers, span=Span.last_quarter(), alpha=0.5))
    patched_hash = kvcache.cache_hash(patched)
    assert kvcache.layer_lengths(patched) == (recipient.padded_length,) * engine_lm.shape.n_layers
    state = kvcache.DecodeState(patched)
    assert state.next_positions == (len(rec) - 1, len(rec) - 3) == patched.lengths
    for step in range(3):
        assert state.cache_length == patched.padded_length + step
        state.step(engine_lm.model, torch.tensor([rec[-1], rec[-3]]))
    assert state.next_positions == (len(rec) + 2, len(rec))
    assert (kvcache.cache_hash(recipient), kvcache.cache_hash(donor)) == before
    assert kvcache.cache_hash(patched) == patched_hash


@pytest.mark.parametrize("i_frac", [0.3, 0.6])
def test_token_range_from_the_first_difference_to_the_end_reproduces_the_donor(engine_lm: LoadedModel, i_frac: float) -> None:
    """[i, end) from a donor that differs from position i on reproduces the donor run; [i, j) with j < end does not."""
    rec, other = matched(engine_lm)
    i = int(i_frac * len(rec))
    don = rec[:i] + other[i:]
    recipient, donor = prefill(engine_lm, rec[:-1]), prefill(engine_lm, don[:-1])
    spec_to_end = KVPatchSpec(all_layers(engine_lm), span=Span.range(i))
    to_end, _ = kvcache.patch_kv(recipient, donor, spec_to_end)
    partial, _ = kvcache.patch_kv(recipient, donor, KVPatchSpec(all_layers(engine_lm), span=Span.range(i, len(rec) - 2)))
    donor_run = first_logits(engine_lm, donor, [rec[-1]])[0]
    assert (first_logits(engine_lm, to_end, [rec[-1]])[0] - donor_run).abs().max().item() <= 1e-5
    assert (first_logits(engine_lm, partial, [rec[-1]])[0] - donor_run).abs().max().item() > 1e-3


def test_v_proj_output_is_the_cached_value(engine_lm: LoadedModel) -> None:
    """The cached values are the value projection output reshaped to [batch, n_kv, seq, head_dim]."""
    rec, other = matched(engine_lm)
    g = engine_lm.shape
    paths = [engine_lm.path(layer, "v_proj") for layer in range(g.n_layers)]
    with TraceDict(engine_lm.model, paths) as traces:
        state = prefill(engine_lm, rec[:-1], other[:-3])
    for layer, path in enumerate(paths):
        out = select_columns(traces[path].output, engine_lm.v_columns)
        reshaped = out.view(out.shape[0], out.shape[1], g.n_kv_heads, g.head_dim).transpose(1, 2)
        start, stop = kvcache.held_range(state, layer)
        assert torch.equal(kvcache.layer_kv(state, layer)[1], reshaped[:, :, start:stop])


def test_query_head_reads_kv_head_h_div_group(engine_lm: LoadedModel) -> None:
    """Perturbing KV head j changes the attention of exactly the query heads repeat_kv maps to j."""
    g = engine_lm.shape
    reference = repeat_kv(torch.arange(g.n_kv_heads).view(1, g.n_kv_heads, 1, 1).float(), g.n_heads // g.n_kv_heads)
    expected = [int(x) for x in reference.view(-1)]
    assert expected == [h // (g.n_heads // g.n_kv_heads) for h in range(g.n_heads)]
    rec, _ = matched(engine_lm)
    state = prefill(engine_lm, rec[:-1])
    layer = g.n_layers - 1  # a full-attention layer in both families
    base = kvcache.DecodeState(state).step(engine_lm.model, torch.tensor([rec[-1]]), attentions=True).attentions[layer]
    keys, _ = kvcache.layer_kv(state, layer)
    for j in range(g.n_kv_heads):
        bumped = keys.clone()
        bumped[:, j, 0] += 5.0 * keys[:, j].std()
        probe = kvcache.replace_layer(state, layer, keys=bumped)
        attn = kvcache.DecodeState(probe).step(engine_lm.model, torch.tensor([rec[-1]]), attentions=True).attentions[layer]
        changed = [h for h in range(g.n_heads) if not torch.allclose(attn[0, h], base[0, h], atol=1e-7, rtol=0)]
        assert changed == [h for h in range(g.n_heads) if expected[h] == j]


def test_moving_a_key_by_delta_positions_equals_computing_it_there(engine_lm: LoadedModel) -> None:
    """Layer-0 keys depend only on (token, position): the key of token x at s moved by p − s is its key at p."""
    rec, _ = matched(engine_lm)
    tokens = rec[:12] + [rec[9]]  # token rec[9] at positions 9 and 12 (inside even a window of 8)
    state = prefill(engine_lm, tokens)
    keys, _ = kvcache.layer_kv(state, 0)
    start, _ = kvcache.held_range(state, 0)
    source, target = 9 - start, 12 - start
    assert source >= 0
    moved = rotate_keys(keys[:, :, source : source + 1], torch.tensor([3]), state.rope_inv_freq[0],
                        interleaved=state.rope_interleaved)
    torch.testing.assert_close(moved, keys[:, :, target : target + 1].float(), rtol=1e-4, atol=1e-4)
    assert (keys[:, :, source].float() - keys[:, :, target].float()).abs().max().item() > 1e-2


def test_sliding_layers_report_positions_they_no_longer_hold_with_unequal_lengths(toy_gemma3: LoadedModel) -> None:
    rec, other = matched(toy_gemma3)
    don = other[:14]
    recipient, donor = prefill(toy_gemma3, rec[:-1]), prefill(toy_gemma3, don)
    spec = KVPatchSpec(all_layers(toy_gemma3), alignment=Alignment.SHARED_PREFIX)
    patched, report = kvcache.patch_kv(recipient, donor, spec)
    window = toy_gemma3.shape.sliding_window
    r_start, d_start = len(rec) - 1 - (window - 1), len(don) - (window - 1)
    assert report.requested == (tuple(range(len(don))),)
    for entry in report.layers:
        if entry.sliding:
            applied = tuple(p for p in range(len(don)) if p >= r_start and p >= d_start)
        else:
            applied = tuple(range(len(don)))
        assert entry.applied == (applied,)
        assert entry.not_applicable == (tuple(p for p in range(len(don)) if p not in applied),)
        keys, _ = kvcache.layer_kv(patched, entry.layer)
        donor_keys, _ = kvcache.layer_kv(donor, entry.layer)
        r0, _ = kvcache.held_range(recipient, entry.layer)
        d0, _ = kvcache.held_range(donor, entry.layer)
        for p in applied:
            assert torch.equal(keys[:, :, p - r0], donor_keys[:, :, p - d0])
    assert report.not_applicable_for_row(0) == {e.layer: e.not_applicable[0] for e in report.layers if e.sliding}
    assert kvcache.layer_lengths(patched) == kvcache.layer_lengths(recipient)


def test_mismatched_inputs_are_rejected(toy_llama: LoadedModel, toy_gemma3: LoadedModel) -> None:
    rec, don = matched(toy_llama)
    recipient = prefill(toy_llama, rec[:-1])
    with pytest.raises(PatchSpecError, match="length_matched needs equal cached lengths"):
        kvcache.patch_kv(recipient, prefill(toy_llama, don[:-3]), KVPatchSpec((0,)))
    with pytest.raises(kvcache.CacheError, match="batch"):
        kvcache.patch_kv(recipient, prefill(toy_llama, don[:-1], don[:-1]), KVPatchSpec((0,)))
    with pytest.raises(PatchSpecError, match="layer 9 does not exist"):
        kvcache.patch_kv(recipient, prefill(toy_llama, don[:-1]), KVPatchSpec((9,)))
    with pytest.raises(kvcache.CacheError, match="cache layers"):
        kvcache.patch_kv(recipient, prefill(toy_gemma3, don[:-1]), KVPatchSpec((0,)))
    with pytest.raises(kvcache.CacheError, match="no per-layer `layers`"):
        kvcache.cache_hash(kvcache.Prefill(cache=object(), lengths=(1,), attention_mask=torch.ones(1, 1)))  # type: ignore[arg-type]
    with pytest.raises(kvcache.CacheError, match="one token per row"):
        kvcache.DecodeState(recipient).step(toy_llama.model, torch.tensor([1, 2]))


def test_patched_prefix_is_the_recipient_prefix_with_the_donor_patched_in(toy_llama: LoadedModel) -> None:
    """Catches the engine and the V replay drifting apart: both decode from this one prefix construction."""
    rec, don = matched(toy_llama)
    spec = KVPatchSpec(all_layers(toy_llama), alpha=0.5)
    built, report = kvcache.patched_prefix(toy_llama.model, [rec], [don], spec, pad_id=pad_id(toy_llama.tokenizer),
                                           row_keys=["p"])
    by_hand, _ = kvcache.patch_kv(prefill(toy_llama, rec[:-1]), prefill(toy_llama, don[:-1]), spec, row_keys=["p"])
    assert report is not None and built.lengths == (len(rec) - 1,) and same_values(built, by_hand)
    natural, none = kvcache.patched_prefix(toy_llama.model, [rec], None, None, pad_id=pad_id(toy_llama.tokenizer))
    assert none is None and same_values(natural, prefill(toy_llama, rec[:-1]))
    with pytest.raises(kvcache.CacheError, match="one donor row per recipient row"):
        kvcache.patched_prefix(toy_llama.model, [rec], None, spec, pad_id=pad_id(toy_llama.tokenizer))
    with pytest.raises(kvcache.CacheError, match="one-row, unpadded"):
        kvcache.teacher_force(toy_llama.model, prefill(toy_llama, rec[:-1], rec[:-3]), [rec[-1]])


def test_cache_keyword_is_feature_detected(toy_llama) -> None:
    """Issue 13: transformers 5.x names the forward's cache ``cache`` (``past_key_values`` deprecated, removed in
    5.40); 4.57 has only ``past_key_values``. The engine passes whichever the installed version's forward takes."""
    import inspect

    from harness.engine.kvcache import cache_argument

    class Old(torch.nn.Module):
        def forward(self, input_ids=None, past_key_values=None, use_cache=None):  # the 4.57 signature
            return past_key_values

    expected = "cache" if "cache" in inspect.signature(type(toy_llama.model).forward).parameters else "past_key_values"
    assert list(cache_argument(toy_llama.model, "C")) == [expected]
    assert cache_argument(Old(), "C") == {"past_key_values": "C"}
