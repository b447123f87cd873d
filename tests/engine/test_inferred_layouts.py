"""Issue 24: any decoder-only model: a layout inferred from the module tree and proven by the engine invariants at load.

Tiny random-weight models of families without a row in ``ARCHITECTURES`` are saved with ``save_pretrained`` and loaded
through ``path:``. Each must load with an inferred layout proven at load, and then pass the same engine invariant tests
the family rows pass (run here again from the test suite, independently of the load-time probe). Models whose layout
cannot be proven are refused with one line: learned absolute positions (GPT-2), a short sliding window, a V that the
attention transforms before caching (a model registered in this test), a wrong V column order for a fused projection.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from harness.engine import kvcache
from harness.engine.kv_math import rotate_keys
from harness.models import LoadedModel, load_model
from harness.models.architectures import ARCHITECTURES, UnknownArchitectureError
from harness.models.layout_inference import InferredLayouts, LayoutInferenceError, infer_layouts
from harness.engine.layout_proof import LayoutProofError, prove_layout
from harness.models.loading import needs_inferred_layout
from harness.models.registry import resolve_spec
from tests.engine import test_model_architectures as family_tests
from tests.engine.test_model_architectures import COMMON, save_tiny_config, tiny_config

INFERRED_FAMILIES: dict[str, dict[str, Any]] = {
    "granite": dict(model_type="granite"),
    "starcoder2": dict(model_type="starcoder2", sliding_window=None),
    "stablelm": dict(model_type="stablelm"),  # partial rotary (a quarter of head_dim)
    "gemma": dict(model_type="gemma"),
    "cohere": dict(model_type="cohere"),  # rotary pairs interleaved, read off rotary_emb
    "helium": dict(model_type="helium"),  # rotary pairs interleaved inside attention: found by the probe
    "olmoe": dict(model_type="olmoe", num_experts=4, num_experts_per_tok=2),  # mixture of experts
    "falcon": dict(model_type="falcon", new_decoder_architecture=True, num_kv_heads=2, num_key_value_heads=None,
                   head_dim=None),  # fused query_key_value grouped per KV head
    "persimmon": dict(model_type="persimmon", num_key_value_heads=None),  # fused per head, no GQA
}
"""Families without a row, one tiny config each (``None`` drops a shared field the family's config does not take)."""
EXPECTED_VALUE_LAYOUT = {"falcon": "qkv_grouped", "persimmon": "qkv_grouped"}
"""The V column order the proof must pick for the fused families (the others have a separate ``v_proj``)."""


def test_no_inferred_family_has_a_row() -> None:
    rows = {t for layout in ARCHITECTURES.values() for t in layout.model_types}
    assert not rows & {fields["model_type"] for fields in INFERRED_FAMILIES.values()}


@pytest.fixture(scope="module", params=sorted(INFERRED_FAMILIES))
def inferred_lm(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> LoadedModel:
    import transformers

    if request.param == "falcon" and int(transformers.__version__.split(".")[0]) < 5:
        pytest.skip("transformers 4.x Falcon caches K and V broadcast to every query head, not per KV head as its "
                    "config says; the probe refuses it (captured V ≠ cached V)")
    directory = save_tiny_config(tiny_config({**COMMON, **INFERRED_FAMILIES[request.param]}),
                                 tmp_path_factory.mktemp(f"tiny-{request.param}"))
    assert needs_inferred_layout(resolve_spec(f"path:{directory}"))
    return load_model(f"path:{directory}", device="cpu")


def test_loads_with_a_layout_inferred_and_proven_at_load(inferred_lm: LoadedModel) -> None:
    family = inferred_lm.model.config.model_type
    assert inferred_lm.layout.inferred and inferred_lm.layout.architecture == family
    assert inferred_lm.provenance["layout"] == "inferred (proven at load)"
    proof = inferred_lm.provenance["layout_proof"]
    assert proof["value_layout"] == EXPECTED_VALUE_LAYOUT.get(family, "separate")
    assert len(proof["checks"]) == 6 and proof["checks"][-1].startswith("key re-rotation")
    assert inferred_lm.provenance["family"] == family


def test_the_family_invariants_hold_on_the_inferred_layout(inferred_lm: LoadedModel) -> None:
    """The engine invariant tests of the family rows, run again by the test suite on the proven layout."""
    family_tests.test_captured_v_equals_cached_v(inferred_lm)
    family_tests.test_v_patch_lands_in_its_layers_cached_values_only(inferred_lm)
    family_tests.test_self_patch_changes_no_logit(inferred_lm)
    family_tests.test_alpha_endpoints_are_recipient_and_donor(inferred_lm)
    family_tests.test_batched_generation_equals_single(inferred_lm)
    family_tests.test_moving_keys_equals_computing_them_there(inferred_lm)


def test_interleaved_rotary_pairs_are_found_for_cohere_and_helium(inferred_lm: LoadedModel) -> None:
    interleaved = inferred_lm.model.config.model_type in ("cohere", "helium")
    assert kvcache.rope_interleaved(inferred_lm.model) is interleaved
    assert ("interleaved" in inferred_lm.provenance["layout_proof"]["checks"][-1]) is interleaved


# ------------------------------------------------------------------------------------------------ refusals


def _load_refusal(fields: dict[str, Any], tmp_path: Path) -> str:
    directory = save_tiny_config(tiny_config(fields), tmp_path / str(fields["model_type"]))
    with pytest.raises(UnknownArchitectureError) as err:
        load_model(f"path:{directory}", device="cpu")
    message = str(err.value)
    assert "\n" not in message
    return message


def test_gpt2_is_refused_in_one_line_naming_its_absolute_positions(tmp_path: Path) -> None:
    message = _load_refusal(dict(model_type="gpt2", vocab_size=49152, n_embd=64, n_layer=2, n_head=4, n_positions=256),
                            tmp_path)
    assert "'gpt2'" in message and "`transformer.h` (2)" in message and "fused q/k/v `c_attn`" in message
    assert "no rotary position embedding" in message and "learned absolute positions" in message


def test_a_short_sliding_window_needs_a_row(tmp_path: Path) -> None:
    message = _load_refusal({**COMMON, "model_type": "starcoder2", "sliding_window": 8}, tmp_path)
    assert "window of 8 tokens" in message and "needs an explicit row" in message


def test_a_long_sliding_window_is_accepted(tmp_path: Path) -> None:
    directory = save_tiny_config(tiny_config({**COMMON, "model_type": "starcoder2", "sliding_window": 4096}), tmp_path / "sc2")
    assert load_model(f"path:{directory}", device="cpu").layout.inferred


def test_a_layer_without_rotary_is_refused_naming_it(tmp_path: Path) -> None:
    """SmolLM3 leaves rotary out of every fourth layer (NoPE): re-rotating that layer's keys would be wrong."""
    message = _load_refusal({**COMMON, "model_type": "smollm3", "pad_token_id": 0}, tmp_path)
    assert "key re-rotation failed" in message and "at layer 3" in message and "either rotary pairing" in message


def test_a_wrong_fused_column_order_is_refused_by_the_probe(tmp_path: Path) -> None:
    """Persimmon's fused projection is per head; offered only the [q | k | v] block reading, the probe refuses."""
    lm = load_model(f"path:{save_tiny_config(tiny_config({**COMMON, **INFERRED_FAMILIES['persimmon']}), tmp_path / 'p')}",
                    device="cpu")
    candidates = infer_layouts(lm.model)
    assert [c.value_layout for c in candidates.candidates] == ["qkv_blocks", "qkv_grouped"]
    with pytest.raises(LayoutProofError, match=r"refused by the load-time probe: qkv_blocks: captured V ≠ cached V"):
        prove_layout(lm.model, lm.tokenizer, lm.shape, InferredLayouts(candidates.candidates[:1], candidates.found))


def test_layouts_are_not_guessed_for_a_tree_without_attention() -> None:
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_config(tiny_config({**COMMON, "model_type": "granite"}))
    for layer in model.model.layers:
        layer.self_attn = torch.nn.Identity()  # attention under an unknown name: nothing matches
        layer.mixer = layer.self_attn
        del layer.self_attn
    with pytest.raises(LayoutInferenceError, match="no nn.ModuleList of its 4 decoder layers holds an attention module"):
        infer_layouts(model)


# ------------------------------------------------------------------------------------------------ mislabelled V


class _ValuesDoubledOnTheWayIn:
    """A cache proxy that stores twice the values it is given (the attention's V is transformed after ``v_proj``)."""

    def __init__(self, cache: Any) -> None:
        self._cache = cache

    def update(self, keys: torch.Tensor, values: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
        return self._cache.update(keys, 2 * values, *args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._cache, name)


def _register_doubled_v_family() -> str:
    """A Llama-shaped model_type (registered in this process only) whose attention doubles V before caching it."""
    from transformers import AutoConfig, AutoModelForCausalLM, LlamaConfig, LlamaForCausalLM
    from transformers.models.llama.modeling_llama import LlamaAttention

    name = "kvclaims_doubled_v"

    class DoubledVAttention(LlamaAttention):
        def forward(self, *args: Any, **kwargs: Any) -> Any:
            for key in ("cache", "past_key_values", "past_key_value"):  # the cache's keyword across releases
                if kwargs.get(key) is not None:
                    kwargs[key] = _ValuesDoubledOnTheWayIn(kwargs[key])
            return super().forward(*args, **kwargs)

    class DoubledVConfig(LlamaConfig):
        model_type = name

    class DoubledVForCausalLM(LlamaForCausalLM):
        config_class = DoubledVConfig

        def __init__(self, config: Any) -> None:
            super().__init__(config)
            for layer in self.model.layers:
                layer.self_attn.__class__ = DoubledVAttention

    try:
        AutoConfig.register(name, DoubledVConfig)
        AutoModelForCausalLM.register(DoubledVConfig, DoubledVForCausalLM)
    except ValueError:  # registered by an earlier test in this process
        pass
    return name


def save_doubled_v_model(out: Path) -> Path:
    """A tiny model of :func:`_register_doubled_v_family` saved with the toy tokenizer."""
    from transformers import AutoConfig

    name = _register_doubled_v_family()
    fields = {k: v for k, v in COMMON.items()}
    return save_tiny_config(AutoConfig.for_model(name, **fields), out)


def test_a_value_transformed_before_it_is_cached_is_refused_in_one_line(tmp_path: Path) -> None:
    directory = save_doubled_v_model(tmp_path / "doubled")
    with pytest.raises(LayoutProofError) as err:
        load_model(f"path:{directory}", device="cpu")
    message = str(err.value)
    assert "\n" not in message
    assert "'kvclaims_doubled_v'" in message and "q/k/v `q_proj`/`k_proj`/`v_proj`" in message
    assert "refused by the load-time probe: separate: captured V ≠ cached V at layer 0" in message


# ------------------------------------------------------------------------------------------------ rotary pairs


@pytest.mark.parametrize("interleaved", [False, True])
def test_rotations_compose_and_keep_each_pairs_length(interleaved: bool) -> None:
    generator = torch.Generator().manual_seed(0)
    keys = torch.randn(1, 2, 5, 16, generator=generator)
    inv_freq = 1.0 / (10000 ** (torch.arange(0, 8, dtype=torch.float32) / 8))
    a, b = torch.tensor([1, 2, 3, 4, 5]), torch.tensor([7, -2, 0, 3, 11])
    once = rotate_keys(keys, a + b, inv_freq, interleaved=interleaved)
    twice = rotate_keys(rotate_keys(keys, a, inv_freq, interleaved=interleaved), b, inv_freq, interleaved=interleaved)
    torch.testing.assert_close(once, twice, rtol=1e-4, atol=1e-4)
    pairs = (lambda k: k.view(*k.shape[:-1], 8, 2)) if interleaved else (lambda k: torch.stack(k.split(8, -1), -1))
    torch.testing.assert_close(pairs(once).norm(dim=-1), pairs(keys).norm(dim=-1), rtol=1e-5, atol=1e-5)
    other = rotate_keys(keys, a, inv_freq, interleaved=not interleaved)
    assert (other - rotate_keys(keys, a, inv_freq, interleaved=interleaved)).abs().max() > 1e-2


def test_without_the_engine_s_prover_an_inferred_layout_is_refused_in_one_line(monkeypatch: pytest.MonkeyPatch,
                                                                               tmp_path: Path) -> None:
    from harness.models import layout_inference

    monkeypatch.setattr(layout_inference, "_PROVER", [])
    message = _load_refusal({**COMMON, **INFERRED_FAMILIES["granite"]}, tmp_path)
    assert "import harness.engine.layout_proof" in message
