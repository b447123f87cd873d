"""GPU tier: the engine on CUDA in bf16 with a random-weight model of Mistral-7B's exact shape.

Skipped without CUDA (CI has none); run on a GPU box with ``pytest tests/gpu/test_gpu_tier.py -m gpu``. These check
what CPU tests cannot: bf16 caches on the GPU, fp32 mixing cast back to bf16, device placement of every cache
layer, and that batching and patch identities survive bf16 kernels.
"""

from __future__ import annotations

import pytest
import torch

from harness.engine import kvcache
from harness.engine.generation import GenerationRequest, generate
from harness.engine.patch_specs import KVPatchSpec
from harness.engine.tokens import encode, pad_id
from harness.foundation.decoding import DecodingRegime
from harness.geometry.capture import capture_v_windows
from harness.models import LoadedModel, load_model

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (none available)"),
]

TEXTS = [
    "The observer watches the act of observing, and then notices the noticing itself, again and again, as "
    "attention turns back upon attention.",
    "Paris is the capital of France, a country in western Europe known for its long history, its food and its wine.",
    "Water boils at one hundred degrees Celsius at sea level, and at lower temperatures on high mountains.",
]


@pytest.fixture(scope="module")
def big() -> LoadedModel:
    return load_model("random-mistral7b", device="cuda")


def test_loads_in_bf16_on_cuda_with_the_real_shape(big: LoadedModel) -> None:
    g = big.shape
    assert (g.n_layers, g.n_heads, g.n_kv_heads, g.head_dim) == (32, 32, 8, 128)
    assert next(big.model.parameters()).dtype == torch.bfloat16
    assert big.input_device.type == "cuda"


def test_cache_layers_are_bf16_on_their_device_and_self_patch_keeps_them(big: LoadedModel) -> None:
    ids = encode(big.tokenizer, TEXTS[0])
    state = kvcache.prefill(big.model, [ids[:-1]], pad_id=pad_id(big.tokenizer))
    patched, _ = kvcache.patch_kv(state, kvcache.clone(state), KVPatchSpec(tuple(range(32)), alpha=0.5))
    for layer in range(32):
        k, v = kvcache.layer_kv(patched, layer)
        assert k.dtype == torch.bfloat16 and k.device.type == "cuda"
        k0, v0 = kvcache.layer_kv(state, layer)
        assert torch.equal(k, k0) and torch.equal(v, v0)  # fp32 mix of x with x, cast back, is x


def test_self_patch_generation_equals_natural_in_bf16(big: LoadedModel) -> None:
    requests = [GenerationRequest(f"p{i}", tuple(encode(big.tokenizer, t)), tuple(encode(big.tokenizer, t))) for i, t in enumerate(TEXTS)]
    decoding = DecodingRegime.greedy(16)
    natural = generate(big, requests, decoding=decoding, batch_size=3)
    patched = generate(big, requests, decoding=decoding, patch=KVPatchSpec(tuple(range(16, 32))), batch_size=3)
    assert [r.generated_ids for r in natural] == [r.generated_ids for r in patched]


def test_batched_first_step_close_to_single_in_bf16(big: LoadedModel) -> None:
    requests = [GenerationRequest(f"p{i}", tuple(encode(big.tokenizer, t))) for i, t in enumerate(TEXTS)]
    decoding = DecodingRegime.greedy(1)
    batched = generate(big, requests, decoding=decoding, batch_size=3, keep_first_logits=True)
    for request, record in zip(requests, batched):
        single = generate(big, [request], decoding=decoding, batch_size=1, keep_first_logits=True)[0]
        a, b = torch.as_tensor(record.first_logits), torch.as_tensor(single.first_logits)
        # bf16 keeps ~3 significant digits and a different batch shape changes the kernels' reduction order;
        # on an H100 the relative difference was 4.3-4.9 % in bf16 and 7e-6 in fp32 for these prompts (the fp32
        # test below rules out a padding or position bug). A missing mask or wrong position gives O(1)
        # differences, which this bound still catches; the greedy choice must agree unless the top-2 gap is
        # inside the observed difference.
        relative = ((a - b).abs().max() / b.abs().max()).item()
        assert relative < 0.10, f"{request.pair_id}: bf16 batched vs single first-step logits differ by {relative:.3%}"
        top2 = b.topk(2).values
        assert a.argmax() == b.argmax() or (top2[0] - top2[1]).item() <= (a - b).abs().max().item()


def test_v_capture_runs_on_cuda(big: LoadedModel) -> None:
    windows = capture_v_windows(big, [(f"p{i}", t) for i, t in enumerate(TEXTS)], [4, 27], window=16)
    assert windows.values[27].shape == (3, 16, 1024) and torch.isfinite(windows.values[27]).all()


def test_batched_first_step_matches_single_in_fp32_on_cuda() -> None:
    """The same random Mistral-7B shape in fp32 on CUDA: batching must agree to fp32 precision.

    Separates kernel-order rounding in bf16 (tolerated above) from a padding or position bug (caught here).
    """
    lm = load_model("random-mistral7b", device="cuda", dtype="float32")
    try:
        requests = [GenerationRequest(f"p{i}", tuple(encode(lm.tokenizer, t))) for i, t in enumerate(TEXTS)]
        decoding = DecodingRegime.greedy(1)
        batched = generate(lm, requests, decoding=decoding, batch_size=3, keep_first_logits=True)
        for request, record in zip(requests, batched):
            single = generate(lm, [request], decoding=decoding, batch_size=1, keep_first_logits=True)[0]
            a, b = torch.as_tensor(record.first_logits), torch.as_tensor(single.first_logits)
            relative = ((a - b).abs().max() / b.abs().max()).item()
            assert relative < 1e-4, f"{request.pair_id}: fp32 batched vs single first-step logits differ by {relative:.2e}"
    finally:
        del lm
        torch.cuda.empty_cache()


def test_fast_compiled_decode_equals_eager_on_cuda_in_fp32() -> None:
    """The fast path with its real compiler (inductor, CUDA graphs) gives the eager tokens and first-step logits
    within the fast-path tolerance, on a float32 toy model on the GPU (bf16 rounding would hide nothing here)."""
    from harness.engine.decode_path import FAST_PATH_LOGIT_TOLERANCE

    lm = load_model("toy-llama", device="cuda", dtype="float32")
    requests = [GenerationRequest(f"t{i}", tuple(encode(lm.tokenizer, t))[: 20 - 2 * i], tuple(encode(lm.tokenizer, TEXTS[0]))[: 20 - 2 * i])
                for i, t in enumerate(TEXTS)]
    decoding = DecodingRegime(max_new_tokens=16, stop_at_eos=False)
    for patch in (None, KVPatchSpec(lm.layers.patch_layers)):
        kwargs = dict(decoding=decoding, patch=patch, keep_first_logits=True, batch_size=len(requests))
        reference = generate(lm, requests, **kwargs)
        fast = generate(lm.with_decode_path("fast"), requests, **kwargs)
        assert fast[0].decode_plan == {"path": "fast", "attention": "sdpa", "static_cache": True, "compiled": True}
        for one, other in zip(reference, fast):
            assert (one.first_logits - other.first_logits).abs().max().item() <= FAST_PATH_LOGIT_TOLERANCE
            assert one.generated_ids == other.generated_ids or min(one.top2_gaps) < 1e-4
