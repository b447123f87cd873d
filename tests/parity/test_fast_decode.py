"""The fast decode path against the eager reference (issue 27, :mod:`harness.engine.decode_path`).

On a tiny random-weight model of every architecture row (fp32, CPU, loaded through ``path:`` as in
``tests/engine/test_model_architectures.py``), natural and KV-patched: the same greedy tokens (up to a near-tie), first-step
logits within :data:`FAST_PATH_LOGIT_TOLERANCE` and the same captured V. Then the choices the plan makes (eager where
attention weights are read or the architecture needs it, dynamic cache where a sliding window could evict), a traced
(``torch.compile``) decode step, activation patches on the fast path, and the option's plumbing.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from harness.engine import decode_path, kvcache
from harness.engine.decode_path import (
    FAST_PATH_LOGIT_TOLERANCE,
    DecodePath,
    attention_implementation,
    plan_decode,
    resolve_decode_path,
    static_cache_supported,
)
from harness.engine.generation import CaptureSpec, GenerationRecord, generate
from harness.engine.patch_specs import ActivationPatchSpec, ActivationSite, KVPatchSpec, PatchMode
from harness.foundation.decoding import DecodingRegime
from harness.models import LoadedModel, load_model
from harness.models.architectures import ARCHITECTURES
from tests.engine.test_model_architectures import COMMON, FAMILY_CONFIGS, save_tiny, save_tiny_config, tiny_config
from tests.parity.test_generation import assert_same_up_to_near_tie, pair_requests

STEPS = 12


@pytest.fixture(scope="module", params=sorted(ARCHITECTURES))
def family_pair(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[LoadedModel, LoadedModel]:
    """(eager, fast) views of each family row's tiny model (the same module, two decode paths)."""
    directory = save_tiny(request.param, tmp_path_factory.mktemp(f"fast-{request.param}"))
    lm = load_model(f"path:{directory}", device="cpu")
    return lm, lm.with_decode_path("fast")


def _run_both(eager: LoadedModel, fast: LoadedModel, patch, capture: CaptureSpec) -> tuple[list[GenerationRecord], ...]:
    requests = pair_requests(eager, 3)
    kwargs = dict(decoding=DecodingRegime.greedy(STEPS), patch=patch, capture=capture, keep_first_logits=True,
                  batch_size=3)
    return generate(eager, requests, **kwargs), generate(fast, requests, **kwargs)


def _assert_parity(reference: list[GenerationRecord], fast: list[GenerationRecord]) -> None:
    for one, other in zip(reference, fast, strict=True):
        assert (one.first_logits - other.first_logits).abs().max().item() <= FAST_PATH_LOGIT_TOLERANCE
        near_tie = assert_same_up_to_near_tie(one, other)
        if not near_tie:
            for layer, values in one.v_captures.items():
                assert torch.allclose(values, other.v_captures[layer], atol=1e-5), f"V at layer {layer}"


@pytest.mark.parametrize("patched", [False, True], ids=["natural", "kv-patched"])
def test_fast_path_gives_the_eager_tokens_logits_and_values(family_pair, patched: bool) -> None:
    eager, fast = family_pair
    patch = KVPatchSpec(eager.layers.patch_layers) if patched else None
    capture = CaptureSpec(v_layers=(eager.layers.early, eager.layers.late))
    reference, quick = _run_both(eager, fast, patch, capture)
    assert reference[0].decode_plan == {"path": "eager", "attention": "eager", "static_cache": False,
                                        "compiled": False}
    plan = quick[0].decode_plan
    layout = eager.layout
    assert plan["path"] == "fast"
    assert plan["attention"] == ("eager" if layout.needs_eager_attention else "sdpa")
    shape = eager.shape
    short_window = "sliding_attention" in shape.layer_types and (shape.sliding_window or 0) <= 256  # tiny rows: 8
    assert plan["static_cache"] is (static_cache_supported() and not layout.needs_eager_attention and not short_window)
    _assert_parity(reference, quick)
    assert eager.model.config._attn_implementation == "eager"  # the fast path leaves the model as it found it


def test_a_sliding_model_whose_window_covers_the_run_decodes_into_a_static_cache(tmp_path: Path) -> None:
    """Gemma 3's sliding layers get a static sliding layer when the window exceeds prefill + new tokens."""
    config = tiny_config({**COMMON, **FAMILY_CONFIGS["gemma3"], "sliding_window": 512})
    lm = load_model(f"path:{save_tiny_config(config, tmp_path / 'gemma3-wide')}", device="cpu")
    for patch in (None, KVPatchSpec(lm.layers.patch_layers, alpha=0.5)):
        reference, quick = _run_both(lm, lm.with_decode_path("fast"), patch, CaptureSpec(v_layers=(1,)))
        assert quick[0].decode_plan["static_cache"] is static_cache_supported()
        _assert_parity(reference, quick)


@pytest.mark.parametrize("patch", [
    pytest.param(ActivationPatchSpec(ActivationSite.V_PROJ, 1, mode=PatchMode.PERSISTENT), id="v-persistent"),
    pytest.param(ActivationPatchSpec(ActivationSite.RESIDUAL, 2, mode=PatchMode.PERSISTENT), id="residual-persistent"),
])
def test_activation_patches_on_the_fast_path_equal_eager(toy_llama: LoadedModel, patch) -> None:
    reference, quick = _run_both(toy_llama, toy_llama.with_decode_path("fast"), patch, CaptureSpec(v_layers=(3,)))
    assert not quick[0].decode_plan["compiled"]  # hooks on the model: never compiled
    _assert_parity(reference, quick)
    for one, other in zip(reference, quick):
        assert one.intervention_counts == other.intervention_counts


def test_a_condition_that_reads_attention_weights_stays_eager(toy_llama: LoadedModel) -> None:
    capture = CaptureSpec(entropy_layers=(1,))
    reference, quick = _run_both(toy_llama, toy_llama.with_decode_path("fast"), None, capture)
    assert quick[0].decode_plan == {"path": "fast", "attention": "eager", "static_cache": False, "compiled": False}
    for one, other in zip(reference, quick):
        assert torch.equal(one.attention_entropy[1], other.attention_entropy[1])


@pytest.mark.skipif(not static_cache_supported(), reason="this transformers' static cache has no write index")
def test_the_compiled_decode_step_traces_and_gives_the_eager_tokens(toy_llama: LoadedModel,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """Dynamo traces the static-cache step (backend ``eager``: traced, not code-generated, so CPU-cheap)."""
    monkeypatch.setattr(decode_path, "CPU_COMPILE_BACKEND", "eager")
    monkeypatch.setattr(decode_path, "_COMPILED", type(decode_path._COMPILED)())
    reference, quick = _run_both(toy_llama, toy_llama.with_decode_path("fast"), None, CaptureSpec(v_layers=(1, 3)))
    assert quick[0].decode_plan == {"path": "fast", "attention": "sdpa", "static_cache": True, "compiled": True}
    assert toy_llama.model in decode_path._COMPILED
    _assert_parity(reference, quick)


@pytest.mark.skipif(not static_cache_supported(), reason="this transformers' static cache has no write index")
def test_a_compiler_failure_falls_back_to_the_plain_step_with_a_warning(toy_llama: LoadedModel,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    def failing_backend(graph, example_inputs):  # noqa: ANN001 - torch.compile's backend signature
        raise RuntimeError("no kernel for this shape")

    monkeypatch.setattr(decode_path, "CPU_COMPILE_BACKEND", failing_backend)
    monkeypatch.setattr(decode_path, "_COMPILED", type(decode_path._COMPILED)())
    monkeypatch.setattr(decode_path, "_UNCOMPILABLE", type(decode_path._UNCOMPILABLE)())
    with pytest.warns(RuntimeWarning, match="the compiled decode step failed"):
        reference, quick = _run_both(toy_llama, toy_llama.with_decode_path("fast"), None, CaptureSpec())
    assert quick[0].decode_plan["compiled"] is False and quick[0].decode_plan["static_cache"] is True
    _assert_parity(reference, quick)
    later = generate(toy_llama.with_decode_path("fast"), pair_requests(toy_llama, 1), decoding=DecodingRegime.greedy(2))
    assert later[0].decode_plan["compiled"] is False  # not tried again for this model


def test_the_plan_follows_its_rules(toy_llama: LoadedModel) -> None:
    model = toy_llama.model
    base = dict(needs_attention_weights=False, needs_eager_attention=False, hooked=False, total_length=40,
                sliding_windows=(None,) * 4)
    assert plan_decode(model, DecodePath.EAGER, **base).attention == "eager"
    fast = plan_decode(model, DecodePath.FAST, **base)
    assert fast.attention == "sdpa" and not fast.compiled  # CPU: not compiled
    if static_cache_supported():
        assert fast.static_cache_length == 64  # 40 rounded up to the bucket
        assert not plan_decode(model, DecodePath.FAST, **{**base, "sliding_windows": (64, None, None, None)}).static_cache
        assert plan_decode(model, DecodePath.FAST, **{**base, "sliding_windows": (65, None, None, None)}).static_cache
    assert plan_decode(model, DecodePath.FAST, **{**base, "needs_attention_weights": True}).attention == "eager"
    assert plan_decode(model, DecodePath.FAST, **{**base, "needs_eager_attention": True}).attention == "eager"


def test_the_option_resolves_by_device_and_names_its_choices() -> None:
    assert resolve_decode_path("auto", "cpu") is DecodePath.EAGER
    assert resolve_decode_path("auto", "cuda:0") is DecodePath.FAST
    assert resolve_decode_path("eager", "cuda") is DecodePath.EAGER
    assert resolve_decode_path("fast", "cpu") is DecodePath.FAST
    with pytest.raises(ValueError, match=r"^unknown decode path 'quick'; expected one of auto, eager, fast$"):
        resolve_decode_path("quick", "cpu")


def test_the_fast_path_is_part_of_the_identity_and_provenance(toy_llama: LoadedModel) -> None:
    """Fast-path continuations are cached apart from eager ones; an eager model's identity is what it was."""
    fast = toy_llama.with_decode_path("fast")
    assert "decode_path" not in toy_llama.identity
    assert fast.identity == {**toy_llama.identity, "decode_path": "fast"}
    assert fast.provenance["decode_path"] == "fast" and fast.model is toy_llama.model
    with pytest.raises(ValueError, match="unknown decode path"):
        toy_llama.with_decode_path("turbo")


def test_attention_implementation_is_restored_after_an_error(toy_llama: LoadedModel) -> None:
    with pytest.raises(RuntimeError, match="boom"):
        with attention_implementation(toy_llama.model, "sdpa"):
            assert toy_llama.model.config._attn_implementation == "sdpa"
            raise RuntimeError("boom")
    assert toy_llama.model.config._attn_implementation == "eager"


@pytest.mark.skipif(not static_cache_supported(), reason="this transformers' static cache has no write index")
def test_a_static_cache_refuses_what_it_cannot_hold(toy_llama: LoadedModel) -> None:
    state = kvcache.prefill(toy_llama.model, [[5, 6, 7, 8]], pad_id=0)
    with pytest.raises(kvcache.CacheError, match="cannot hold a 4-position prefill"):
        kvcache.DecodeState(state, static_cache_length=4, model=toy_llama.model)
    decoder = kvcache.DecodeState(state, static_cache_length=5, model=toy_llama.model)
    decoder.step(toy_llama.model, torch.tensor([9]))
    with pytest.raises(kvcache.CacheError, match="the static cache is full"):
        decoder.step(toy_llama.model, torch.tensor([10]))
    assert kvcache.layer_lengths(state) == (4, 4, 4, 4)  # the prefill it was filled from is untouched
