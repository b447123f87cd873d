"""Issue 24: ``--model gguf:<file>`` for any GGUF transformers can dequantize, through the converted-copy cache.

The file is written in the test from a tiny random-weight Llama (``tests/engine/tiny_gguf.py``, llama.cpp's tensor
names, q/k row order and metadata); loaded through ``gguf:`` it must be the same model (logits equal to the
original's) and pass the engine invariants, which a ``gguf:`` load proves at load even for a family with a row.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from harness.models import ModelUnavailableError, load_model, resolve_spec, sha256_file
from harness.models.loading import needs_inferred_layout
from tests.engine import test_model_architectures as family_tests
from tests.engine.tiny_gguf import tiny_llama, write_tiny_gguf


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, torch.nn.Module]:
    model = tiny_llama(seed=3)
    return write_tiny_gguf(tmp_path_factory.mktemp("gguf") / "tiny-llama-f32.gguf", model), model


@pytest.fixture(scope="module")
def gguf_lm(written: tuple[Path, torch.nn.Module], tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    path, _ = written
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("KVCLAIMS_CACHE", str(tmp_path_factory.mktemp("cache")))
        yield load_model(f"gguf:{path}", device="cpu")


def test_a_gguf_reference_is_a_gguf_file_source() -> None:
    spec = resolve_spec("gguf:/some/where/model.gguf")
    assert (spec.source, spec.location, spec.tier) == ("gguf-file", "/some/where/model.gguf", "any")
    assert needs_inferred_layout(spec)  # proven at load, row or not


def test_loads_as_the_model_it_was_written_from(gguf_lm, written) -> None:  # type: ignore[no-untyped-def]
    path, original = written
    ids = torch.tensor([gguf_lm.tokenizer("The river bends twice before the mill").input_ids])
    with torch.no_grad():
        gap = (gguf_lm.model(ids).logits - original(ids).logits).abs().max().item()
    assert gap <= 1e-5
    assert gguf_lm.provenance["gguf_sha256"] == sha256_file(path) == gguf_lm.identity["gguf_sha256"]
    assert gguf_lm.provenance["layout"] == "row llama (proven at load)"
    assert len(gguf_lm.provenance["layout_proof"]["checks"]) == 6


def test_passes_the_engine_invariants(gguf_lm) -> None:  # type: ignore[no-untyped-def]
    family_tests.test_captured_v_equals_cached_v(gguf_lm)
    family_tests.test_self_patch_changes_no_logit(gguf_lm)
    family_tests.test_alpha_endpoints_are_recipient_and_donor(gguf_lm)
    family_tests.test_batched_generation_equals_single(gguf_lm)
    family_tests.test_moving_keys_equals_computing_them_there(gguf_lm)


def test_a_missing_or_foreign_file_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(ModelUnavailableError, match=r"is not a file$"):
        load_model(f"gguf:{tmp_path / 'absent.gguf'}", device="cpu")
    foreign = tmp_path / "weights.gguf"
    foreign.write_bytes(b"PK\x03\x04 not a gguf")
    with pytest.raises(ModelUnavailableError) as err:
        load_model(f"gguf:{foreign}", device="cpu")
    assert "is not a GGUF file (it starts with b'PK\\x03\\x04'" in str(err.value) and "\n" not in str(err.value)
