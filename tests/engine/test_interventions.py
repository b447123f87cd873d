"""V-patching and residual-stream patching (harness.engine.interventions): where the patch lands, that it is live on
decode steps when persistent (and only then), and exact equivalences with KV patches."""

from __future__ import annotations

import pytest
import torch

from fixtures.texts import TEXT_A, TEXT_B
from harness.engine import kvcache
from harness.engine.generation import CapturePoint, CaptureSpec, GenerationRequest, generate
from harness.engine.hooks import TraceDict
from harness.engine.interventions import ActivationPatcher, capture_donor_activations, site_columns, site_path
from harness.engine.patch_specs import (
    ActivationPatchSpec,
    ActivationSite,
    Components,
    DecodeSource,
    KVPatchSpec,
    PatchMode,
    PatchSpecError,
    Span,
)
from harness.engine.tokens import encode, pad_id
from harness.foundation.decoding import DecodingRegime
from harness.models import LoadedModel


def pair(lm: LoadedModel) -> GenerationRequest:
    a, b = encode(lm.tokenizer, TEXT_A), encode(lm.tokenizer, TEXT_B)
    n = min(len(a), len(b))
    return GenerationRequest("pair-0", a[:n], b[:n])


def first(lm: LoadedModel, request: GenerationRequest, patch=None, tokens: int = 1):
    return generate(lm, [request], decoding=DecodingRegime.greedy(tokens), patch=patch, keep_first_logits=True)[0]


@pytest.mark.parametrize("site", list(ActivationSite))
def test_persistent_patches_change_decode_steps_and_prefill_only_patches_do_not(engine_lm: LoadedModel, site: ActivationSite) -> None:
    request = pair(engine_lm)
    layer = engine_lm.layers.late
    counts = {}
    for mode in PatchMode:
        spec = ActivationPatchSpec(site, layer, mode=mode)
        record = generate(engine_lm, [request], decoding=DecodingRegime.greedy(6), patch=spec)[0]
        counts[mode] = record.intervention_counts
    width = engine_lm.shape.v_width if site is ActivationSite.V_PROJ else engine_lm.model.config.hidden_size
    assert counts[PatchMode.PREFILL_ONLY]["decode"] == 0
    assert counts[PatchMode.PREFILL_ONLY]["prefill"] == counts[PatchMode.PERSISTENT]["prefill"] > 0
    # every decode step (6 tokens -> 6 fed tokens) rewrote the new position's activation almost everywhere
    assert counts[PatchMode.PERSISTENT]["decode"] >= 0.9 * 6 * width


def test_prefill_only_hook_still_sees_decode_steps(toy_llama: LoadedModel) -> None:
    """The hook is live during cached decoding (the seed's persistent hooks never fired there)."""
    request = pair(toy_llama)
    spec = ActivationPatchSpec(ActivationSite.V_PROJ, 1)
    donor = capture_donor_activations(toy_llama, [request.donor_ids], spec.site, spec.layer)
    patcher = ActivationPatcher(spec, donor, [len(request.recipient_ids) - 1], site_columns(toy_llama, spec.site))
    with TraceDict(toy_llama.model, [site_path(toy_llama, spec.site, spec.layer)], retain_output=False, edit_output=patcher):
        state = kvcache.prefill(toy_llama.model, [request.recipient_ids[:-1]], pad_id=pad_id(toy_llama.tokenizer))
        patcher.set_phase("decode")
        decode = kvcache.DecodeState(state)
        for _ in range(3):
            decode.step(toy_llama.model, torch.tensor([request.recipient_ids[-1]]))
    assert patcher.counts.calls == {"prefill": 1, "decode": 3}


def test_v_patch_lands_in_the_cache_of_its_layer_only(engine_lm: LoadedModel) -> None:
    """After a prefill V patch at layer L: layer L's cached values at the span are the donor's V; layers < L untouched."""
    request = pair(engine_lm)
    g = engine_lm.shape
    layer = engine_lm.layers.late
    spec = ActivationPatchSpec(ActivationSite.V_PROJ, layer, span=Span.last_quarter())
    pid = pad_id(engine_lm.tokenizer)
    donor = capture_donor_activations(engine_lm, [request.donor_ids], spec.site, layer)
    patcher = ActivationPatcher(spec, donor, [len(request.recipient_ids) - 1], site_columns(engine_lm, spec.site))
    with TraceDict(engine_lm.model, [site_path(engine_lm, spec.site, layer)], retain_output=False, edit_output=patcher):
        patched = kvcache.prefill(engine_lm.model, [request.recipient_ids[:-1]], pad_id=pid)
    clean = kvcache.prefill(engine_lm.model, [request.recipient_ids[:-1]], pad_id=pid)
    start, _ = kvcache.held_range(patched, layer)
    span = [p for p in Span.last_quarter().resolve(len(request.recipient_ids) - 1) if p >= start]
    expected = donor.rows[0][span].view(len(span), g.n_kv_heads, g.head_dim).transpose(0, 1)
    assert torch.equal(kvcache.layer_kv(patched, layer)[1][0][:, [p - start for p in span]], expected)
    for lower in range(layer):
        assert all(torch.equal(a, b) for a, b in zip(kvcache.layer_kv(patched, lower), kvcache.layer_kv(clean, lower)))


def test_v_patch_at_the_last_layer_equals_a_value_only_cache_patch(engine_lm: LoadedModel) -> None:
    """At the last layer nothing downstream reads the prefix, so hook and cache V-patching must agree."""
    request = pair(engine_lm)
    last = engine_lm.shape.n_layers - 1
    hook = first(engine_lm, request, ActivationPatchSpec(ActivationSite.V_PROJ, last))
    cache = first(engine_lm, request, KVPatchSpec((last,), components=Components.V))
    natural = first(engine_lm, request)
    assert (hook.first_logits - cache.first_logits).abs().max().item() <= 1e-5
    assert (hook.first_logits - natural.first_logits).abs().max().item() > 1e-4


def test_residual_patch_at_l_equals_kv_patch_of_all_later_layers(engine_lm: LoadedModel) -> None:
    """Prefix residuals after layer L set every later layer's K/V; layers ≤ L keep the recipient's."""
    request = pair(engine_lm)
    layer = engine_lm.shape.n_layers // 2
    residual = first(engine_lm, request, ActivationPatchSpec(ActivationSite.RESIDUAL, layer), tokens=4)
    kv = first(engine_lm, request, KVPatchSpec(tuple(range(layer + 1, engine_lm.shape.n_layers))), tokens=4)
    assert (residual.first_logits - kv.first_logits).abs().max().item() <= 1e-4
    assert residual.generated_ids == kv.generated_ids


def test_persistent_residual_patch_of_the_last_token_gives_the_donor_next_token_logits(engine_lm: LoadedModel) -> None:
    """Prefix and decode position both carry the donor's residual after L: step 0 must be the donor's own next step."""
    request = pair(engine_lm)
    spec = ActivationPatchSpec(ActivationSite.RESIDUAL, engine_lm.shape.n_layers // 2, mode=PatchMode.PERSISTENT)
    patched = first(engine_lm, request, spec)
    with torch.no_grad():
        donor_next = engine_lm.model(torch.tensor([list(request.donor_ids)], device=engine_lm.input_device)).logits[0, -1].float()
    assert (patched.first_logits - donor_next.cpu()).abs().max().item() <= 1e-4


def test_span_mean_decode_source_differs_from_donor_last(toy_llama: LoadedModel) -> None:
    request = pair(toy_llama)
    base = dict(site=ActivationSite.V_PROJ, layer=2, mode=PatchMode.PERSISTENT)
    last = first(toy_llama, request, ActivationPatchSpec(**base))
    mean = first(toy_llama, request, ActivationPatchSpec(**base, decode_source=DecodeSource.DONOR_SPAN_MEAN))
    assert (last.first_logits - mean.first_logits).abs().max().item() > 1e-4


def test_mismatched_donor_activations_are_rejected(toy_llama: LoadedModel) -> None:
    request = pair(toy_llama)
    donor = capture_donor_activations(toy_llama, [request.donor_ids], ActivationSite.V_PROJ, 1)
    with pytest.raises(PatchSpecError, match="donor activations are from v_proj layer 1"):
        ActivationPatcher(ActivationPatchSpec(ActivationSite.V_PROJ, 2), donor, [5], slice(None))
    with pytest.raises(PatchSpecError, match="1 donor rows for 2 recipients"):
        ActivationPatcher(ActivationPatchSpec(ActivationSite.V_PROJ, 1), donor, [5, 5], slice(None))


def test_capture_at_the_v_patch_site_is_refused_unless_explicit(toy_llama: LoadedModel) -> None:
    request = pair(toy_llama)
    spec = ActivationPatchSpec(ActivationSite.V_PROJ, 2, mode=PatchMode.PERSISTENT)
    with pytest.raises(PatchSpecError, match="not a downstream measurement"):
        generate(toy_llama, [request], patch=spec, capture=CaptureSpec(v_layers=(2,)))
    donor = capture_donor_activations(toy_llama, [request.donor_ids], spec.site, 2)
    natural = generate(toy_llama, [request], decoding=DecodingRegime.greedy(2), capture=CaptureSpec(v_layers=(2,)))[0]
    records = {
        point: generate(
            toy_llama, [request], decoding=DecodingRegime.greedy(2), patch=spec,
            capture=CaptureSpec(v_layers=(2,), capture_point=point, allow_patch_site=True),
        )[0]
        for point in CapturePoint
    }
    # after the patch the captured V at every decode step is the donor's last-token V
    assert torch.equal(records[CapturePoint.AFTER_PATCH].v_captures[2].cpu(), donor.rows[0][-1].cpu().expand(2, -1))
    # before it, step 0 is the clean V of the recipient's last token (the prefix patch at layer 2 does not reach it)
    torch.testing.assert_close(records[CapturePoint.BEFORE_PATCH].v_captures[2][0], natural.v_captures[2][0])


@pytest.mark.parametrize(("recipient_tokens", "donor_tokens", "expected"), [
    (10, 10, tuple(range(9))),  # equal lengths: every prefix position 0 … n−2
    (10, 6, tuple(range(5))),  # shorter donor: its own prefix 0 … m−2, never its last token
    (6, 10, tuple(range(5))),  # longer donor: the recipient's prefix 0 … n−2
])
def test_activation_patch_positions_are_the_shared_prefix(recipient_tokens, donor_tokens, expected):
    """Unmatched pairs (issue 11, item 7): a V patch writes positions 0 … min(n, m) − 2, as a KV patch does."""
    from harness.engine.interventions import DonorActivations

    spec = ActivationPatchSpec(ActivationSite.V_PROJ, 1)
    donor = DonorActivations(ActivationSite.V_PROJ, 1, (torch.zeros(donor_tokens, 4),))
    patcher = ActivationPatcher(spec, donor, [recipient_tokens - 1], slice(0, 4))
    assert patcher.positions == (expected,)
