"""Issue 13 acceptance: every row of ``harness.models.architectures.ARCHITECTURES`` works end to end through the ``path:`` loader.

For each family a tiny random-weight model is built from its config (4 layers, hidden 64, 4 heads of 16, fixed
seed, the toy tokenizer's vocabulary), saved with ``save_pretrained(safe_serialization=True)`` beside the toy
tokenizer and loaded with ``load_model("path:<dir>")``. The engine invariants then run on it, reusing the
engine tests written for the toy models: captured V equals cached V (the check that catches a wrong slice of a
fused, per-head-interleaved ``query_key_value``), a V patch lands in its layer's cached values only, self-patch
identity, exact α endpoints, batched ≡ single generation, and key re-rotation (partial rotary for GPT-NeoX).

A family whose config class the installed transformers lacks is skipped with that reason.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest
import torch

from harness.engine import kvcache
from harness.engine.hooks import TraceDict
from harness.engine.patch_specs import KVPatchSpec
from harness.models import TOY_TOKENIZER_DIR, LoadedModel, load_model
from harness.models.architectures import (
    ARCHITECTURES,
    ArchitectureLayout,
    UnknownArchitectureError,
    layout_for_model,
    value_columns,
)
from tests.engine import test_interventions as intervention_tests
from tests.engine import test_kvcache as kv_tests
from tests.engine import test_kvcache_export_inject as rotation_tests
from tests.parity import test_generation as generation_tests

COMMON: dict[str, Any] = dict(
    vocab_size=49152,  # the toy (SmolLM2) tokenizer's ids
    hidden_size=64,
    intermediate_size=64,
    num_hidden_layers=4,
    num_attention_heads=4,
    num_key_value_heads=2,
    head_dim=16,
    max_position_embeddings=512,
)
"""Config fields shared by every family's tiny model (overridden per family where its config differs)."""

FAMILY_CONFIGS: dict[str, dict[str, Any]] = {
    "llama": dict(model_type="llama"),
    "mistral": dict(model_type="mistral", sliding_window=None),
    "mixtral": dict(model_type="mixtral", sliding_window=None, num_local_experts=2, num_experts_per_tok=1),
    "qwen2": dict(model_type="qwen2"),
    "qwen3": dict(model_type="qwen3"),
    "gemma2": dict(model_type="gemma2", sliding_window=8),
    "gemma3": dict(model_type="gemma3_text", sliding_window=8),
    "phi3": dict(model_type="phi3", pad_token_id=0),
    # Pythia: no GQA, fused per-head query_key_value, a quarter of each head rotary
    "gpt_neox": dict(model_type="gpt_neox", num_key_value_heads=None, head_dim=None, rotary_pct=0.25),
    "olmo2": dict(model_type="olmo2"),
}
"""One tiny config per family row; ``None`` drops a shared field the family's config does not take."""


def test_every_family_row_has_a_tiny_config() -> None:
    assert set(FAMILY_CONFIGS) == set(ARCHITECTURES)


def _config(family: str) -> Any:
    return tiny_config({**COMMON, **FAMILY_CONFIGS[family]})


def tiny_config(fields: dict[str, Any]) -> Any:
    """``AutoConfig.for_model(model_type, **rest)`` with the ``None`` fields dropped; skips the test when the
    installed transformers has no config class for the model_type."""
    from transformers import AutoConfig

    fields = dict(fields)
    model_type = fields.pop("model_type")
    try:
        return AutoConfig.for_model(model_type, **{k: v for k, v in fields.items() if v is not None})
    except (KeyError, ValueError) as exc:
        pytest.skip(f"the installed transformers has no config class for model_type {model_type!r}: {exc}")


def save_tiny(family: str, out: Path, seed: int = 0) -> Path:
    """A ``save_pretrained`` directory of a tiny random ``family`` model (safetensors, weights drawn after
    ``torch.manual_seed(seed)``) with the toy tokenizer."""
    return save_tiny_config(_config(family), out, seed)


def save_tiny_config(config: Any, out: Path, seed: int = 0) -> Path:
    """A ``save_pretrained`` directory of a random-weight model of ``config`` with the toy tokenizer."""
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(config)
    model.save_pretrained(out, safe_serialization=True)
    for item in TOY_TOKENIZER_DIR.iterdir():
        if item.name.startswith("tokenizer"):
            shutil.copy(item, out / item.name)
    return out


@pytest.fixture(scope="module", params=sorted(ARCHITECTURES))
def family_lm(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> LoadedModel:
    """Each family row's tiny model, loaded through ``path:`` on CPU."""
    directory = save_tiny(request.param, tmp_path_factory.mktemp(f"tiny-{request.param}"))
    lm = load_model(f"path:{directory}", device="cpu")
    assert lm.layout.architecture == request.param
    return lm


# ------------------------------------------------------------------------------------------------ layout


def test_captured_v_equals_cached_v(family_lm: LoadedModel) -> None:
    """V read from the value-projection output at ``v_columns``, reshaped to heads, is the cached value."""
    kv_tests.test_v_proj_output_is_the_cached_value(family_lm)


def test_v_patch_lands_in_its_layers_cached_values_only(family_lm: LoadedModel) -> None:
    """Writing donor V into the value-projection output changes exactly the cached values (and not the keys,
    which share the fused projection's output in Phi-3 and GPT-NeoX)."""
    intervention_tests.test_v_patch_lands_in_the_cache_of_its_layer_only(family_lm)


def test_value_columns_of_a_per_head_fused_projection_are_interleaved() -> None:
    layout = ARCHITECTURES["gpt_neox"]
    columns = value_columns(layout, n_heads=2, n_kv_heads=2, head_dim=3)
    assert columns == (6, 7, 8, 15, 16, 17)  # per head [q q q k k k v v v]
    with pytest.raises(ValueError, match="n_kv_heads == n_heads"):
        value_columns(layout, n_heads=4, n_kv_heads=2, head_dim=3)


def test_the_naive_block_slice_would_be_caught(tmp_path: Path) -> None:
    """On GPT-NeoX the [q | k | v] block reading of ``query_key_value`` is not V: the captured-V test fails on it."""
    directory = save_tiny("gpt_neox", tmp_path / "tiny-neox")
    lm = load_model(f"path:{directory}", device="cpu")
    g = lm.shape
    blocks = value_columns(ArchitectureLayout("x", (), value_layout="qkv_blocks"), g.n_heads, g.n_kv_heads, g.head_dim)
    rec, _ = kv_tests.matched(lm)
    path = lm.path(1, "v_proj")
    with TraceDict(lm.model, [path]) as traces:
        state = kv_tests.prefill(lm, rec[:-1])
    cached = kvcache.layer_kv(state, 1)[1]
    for columns, equal in ((lm.v_columns, True), (blocks, False)):
        out = traces[path].output[..., list(columns)]
        assert torch.equal(out.view(1, -1, g.n_kv_heads, g.head_dim).transpose(1, 2), cached) is equal


# ------------------------------------------------------------------------------------------------ patching


def test_self_patch_changes_no_logit(family_lm: LoadedModel) -> None:
    rec, _ = kv_tests.matched(family_lm)
    state = kv_tests.prefill(family_lm, rec[:-1])
    natural = kv_tests.first_logits(family_lm, state, [rec[-1]])
    for alpha in (0.3, 1.0):
        patched, _ = kvcache.patch_kv(state, kv_tests.prefill(family_lm, rec[:-1]), KVPatchSpec(kv_tests.all_layers(family_lm), alpha=alpha))
        assert torch.equal(kv_tests.first_logits(family_lm, patched, [rec[-1]]), natural)


def test_alpha_endpoints_are_recipient_and_donor(family_lm: LoadedModel) -> None:
    kv_tests.test_alpha_zero_is_the_recipient_and_alpha_one_everywhere_is_the_donor_exactly(family_lm)
    kv_tests.test_alpha_one_over_everything_equals_the_natural_spliced_run(family_lm)


def test_batched_generation_equals_single(family_lm: LoadedModel) -> None:
    generation_tests.test_batched_equals_single(family_lm)


# ------------------------------------------------------------------------------------------------ RoPE


def test_moving_keys_equals_computing_them_there(family_lm: LoadedModel) -> None:
    """Key re-rotation (shuffled control, cache anatomy) with each family's rotary, partial rotary included."""
    kv_tests.test_moving_a_key_by_delta_positions_equals_computing_it_there(family_lm)
    rotation_tests.test_moving_a_cache_equals_encoding_at_shifted_positions(family_lm, 64)


# ------------------------------------------------------------------------------------------------ errors


def test_unknown_architecture_is_one_line_naming_model_type_module_and_how_to_add_a_row(tmp_path: Path) -> None:
    from transformers import AutoModelForCausalLM, GPT2Config

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(GPT2Config(n_embd=32, n_layer=2, n_head=2, vocab_size=64))
    with pytest.raises(UnknownArchitectureError) as err:
        layout_for_model(model)
    message = str(err.value)
    assert "\n" not in message
    assert "'gpt2'" in message and "`model.layers.0`" in message and "add a ArchitectureLayout row" in message


def test_a_row_whose_module_is_missing_names_it() -> None:
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(_config("olmo2"))
    model.model.layers[0].self_attn.v_proj = None  # type: ignore[assignment]
    with pytest.raises(UnknownArchitectureError, match=r"olmo2 row names `model\.layers\.0\.self_attn\.v_proj`"):
        layout_for_model(model)


# ------------------------------------------------------------------------------------------------ claims


@pytest.mark.slow
def test_claims_report_rows_for_a_gpt_neox_path_model(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """``rv_contraction`` and ``kv_transfer`` run on a tiny Pythia-style model through the real plugin and report."""
    repo = Path(__file__).resolve().parents[2]
    directory = save_tiny("gpt_neox", tmp_path / "tiny-neox")
    monkeypatch.setenv("PYTHONPATH", str(repo))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    out = tmp_path / "report"
    result = pytester.runpytest_subprocess(
        str(repo / "claims/test_rv_contraction.py"), str(repo / "claims/test_kv_transfer.py"),
        f"--rootdir={repo}", "-p", "no:cacheprovider", "--model", f"path:{directory}", "--n", "6",
        "--claims-cache", "off", "--report-dir", str(out),
    )
    claims_json = out / "claims.json"
    assert claims_json.exists(), result.stdout.str()[-3000:] + result.stderr.str()[-3000:]
    payload = json.loads(claims_json.read_text())
    records = {r["claim"]: r for r in payload["records"] if r["model"] == f"path:{directory}"}
    assert {"rv_contraction", "kv_transfer"} <= set(records), result.stdout.str()[-3000:]
    assert all(records[c]["verdict"] for c in ("rv_contraction", "kv_transfer"))


def test_a_checkpoint_written_again_over_the_same_folder_is_another_model(tmp_path: Path) -> None:
    # bug: the measurement store keyed path: models by folder name, so retrained weights reused old numbers
    directory = save_tiny("llama", tmp_path / "step1000", seed=0)
    first = load_model(f"path:{directory}", device="cpu").identity
    assert first == load_model(f"path:{directory}", device="cpu").identity  # nothing changed: the same key
    weights = next(directory.glob("*.safetensors"))
    stat = weights.stat()
    save_tiny("llama", directory, seed=1)
    os.utime(weights, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))  # even within one clock tick
    second = load_model(f"path:{directory}", device="cpu").identity
    assert second["weights_files"] != first["weights_files"]
    assert {k: v for k, v in second.items() if k != "weights_files"} == {
        k: v for k, v in first.items() if k != "weights_files"}
