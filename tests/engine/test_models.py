"""Model registry, spec resolution, layer choices, load-time assertions and error messages."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from fixtures.models import load_embedded
from harness.models import (
    MODEL_REGISTRY,
    GPUUnavailableError,
    LoadedModel,
    ModelConfigMismatchError,
    ModelUnavailableError,
    UnknownModelError,
    check_loaded,
    default_layer_choice,
    load_model,
    resolve_device,
    resolve_spec,
)
from harness.models.architectures import ARCHITECTURES, layout_for_config, module_path, value_columns


def test_unknown_model_lists_known_names() -> None:
    with pytest.raises(UnknownModelError) as err:
        resolve_spec("nosuchmodel")
    assert "mistral7b" in str(err.value) and "smollm2-135m" in str(err.value)


def test_hf_and_path_references() -> None:
    spec = resolve_spec("hf:EleutherAI/pythia-160m@step1000")
    assert (spec.source, spec.location, spec.revision, spec.tier) == ("hf", "EleutherAI/pythia-160m", "step1000", "any")
    assert resolve_spec("hf:org/name").revision is None
    assert resolve_spec("path:/tmp/x").location == "/tmp/x"
    with pytest.raises(UnknownModelError):
        resolve_spec("hf:not-a-repo-id")


def test_every_registry_family_has_a_layout_row() -> None:
    for spec in MODEL_REGISTRY.values():
        assert spec.architecture in ARCHITECTURES, spec.name
        assert spec.attn_implementation == "eager" or not ARCHITECTURES[spec.architecture].needs_eager_attention


@pytest.mark.parametrize(
    ("n_layers", "early", "late", "first_patch"), [(32, 4, 27, 16), (30, 4, 25, 15), (18, 2, 15, 9), (4, 1, 3, 2)]
)
def test_default_layer_choice_depth_fractions(n_layers: int, early: int, late: int, first_patch: int) -> None:
    choice = default_layer_choice(n_layers)
    assert (choice.early, choice.late) == (early, late)
    assert choice.patch_layers == tuple(range(first_patch, n_layers))


def test_fused_qkv_value_columns() -> None:
    assert value_columns(ARCHITECTURES["phi3"], n_heads=40, n_kv_heads=10, head_dim=128) == tuple(range(6400, 7680))
    assert value_columns(ARCHITECTURES["llama"], n_heads=32, n_kv_heads=8, head_dim=128) == tuple(range(1024))
    assert module_path(ARCHITECTURES["phi3"], 3, "v_proj") == "model.layers.3.self_attn.qkv_proj"


def test_gpu_model_without_cuda_is_refused_with_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(GPUUnavailableError, match="mistral7b.*no CUDA GPU"):
        resolve_device("auto", resolve_spec("mistral7b"))
    assert resolve_device("auto", resolve_spec("smollm2-135m")) == "cpu"


def test_missing_hf_weights_give_one_clear_line(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelUnavailableError) as err:
        load_model("hf:nobody-here/no-model", device="cpu")
    message = str(err.value)
    assert "\n" not in message and str(tmp_path) in message and "huggingface-cli download nobody-here/no-model" in message


def test_gated_model_message_mentions_hf_token(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    from harness.models.loading import _unavailable_message

    assert "HF_TOKEN" in _unavailable_message(resolve_spec("llama3-8b"))
    assert "HF_TOKEN" not in _unavailable_message(resolve_spec("mistral7b"))


def test_toy_models_match_their_facts(toy_model: LoadedModel) -> None:
    g, e = toy_model.shape, toy_model.spec.expected
    assert (g.n_layers, g.n_heads, g.n_kv_heads, g.head_dim) == (e.n_layers, e.n_heads, e.n_kv_heads, e.head_dim)
    v = toy_model.model.get_submodule(toy_model.path(0, "v_proj"))
    assert v.out_features == g.v_width
    assert toy_model.layers.early < toy_model.layers.late < g.n_layers
    assert layout_for_config(toy_model.model.config).architecture == toy_model.spec.architecture


def test_toy_gemma3_has_sliding_and_full_layers(toy_gemma3: LoadedModel) -> None:
    assert toy_gemma3.shape.sliding_layers == (0, 1, 2, 3, 4)
    assert toy_gemma3.shape.sliding_window == 8


def test_config_mismatch_is_caught(toy_llama: LoadedModel) -> None:
    wrong = replace(toy_llama.spec, expected=replace(toy_llama.spec.expected, n_kv_heads=4))
    with pytest.raises(ModelConfigMismatchError, match="n_kv_heads = 2, expected 4"):
        check_loaded(wrong, toy_llama.model, toy_llama.shape, toy_llama.layout)


def test_toy_weights_are_deterministic(toy_llama: LoadedModel) -> None:
    again = load_model("toy-llama", device="cpu")
    for a, b in zip(toy_llama.model.parameters(), again.model.parameters()):
        assert torch.equal(a, b)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["smollm2-135m", "gemma3-270m"])
def test_embedded_models_load_offline_and_match_facts(name: str) -> None:
    lm = load_embedded(name)
    assert lm.shape.n_layers == lm.spec.expected.n_layers
    assert lm.provenance["gguf_sha256"] and lm.provenance["dtype"] == "float32"
    assert type(lm.model.get_submodule(lm.path(0, "v_proj"))) is torch.nn.Linear


@pytest.mark.slow
def test_converted_copy_equals_direct_gguf_load_and_reloads_fast(smollm2: LoadedModel) -> None:
    import time

    from transformers import AutoModelForCausalLM

    from harness.models.gguf import package_gguf

    started = time.perf_counter()
    again = load_model("smollm2-135m", device="cpu")
    reload_seconds = time.perf_counter() - started
    assert reload_seconds < 5, f"second load took {reload_seconds:.1f} s"
    gguf = package_gguf(smollm2.spec)
    direct = AutoModelForCausalLM.from_pretrained(
        str(gguf.parent),
        gguf_file=gguf.name,
        dtype=torch.float32,
        attn_implementation="eager",
    )
    ids = torch.as_tensor([smollm2.tokenizer("Observe the observer observing itself.")["input_ids"]])
    with torch.no_grad():
        assert torch.equal(again.model(ids).logits, direct(ids).logits)
    assert again.model.lm_head.weight.data_ptr() == again.model.model.embed_tokens.weight.data_ptr()


@pytest.mark.parametrize(
    ("name", "version", "refused"),
    [("gemma3-270m", "4.57.6", True), ("gemma3-270m", "5.0.0", False), ("smollm2-135m", "4.57.6", False)],
)
def test_gemma_gguf_tokenizer_is_refused_on_transformers_4(name: str, version: str, refused: bool) -> None:
    from harness.models import TokenizerConversionUnsupportedError, resolve_spec
    from harness.models.gguf import check_gguf_tokenizer_support

    spec = resolve_spec(name)
    if refused:
        with pytest.raises(TokenizerConversionUnsupportedError, match=r"transformers 4\.57\.6 .*needs transformers>=5"):
            check_gguf_tokenizer_support(spec, version)
    else:
        check_gguf_tokenizer_support(spec, version)
