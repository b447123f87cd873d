"""A model's manifest and its weightless skeleton (harness.models.manifest)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from harness.models import LoadedModel, load_model
from harness.models.architectures import ARCHITECTURES
from harness.models.manifest import ManifestError, is_skeleton, model_manifest, skeleton_model
from tests.engine.test_model_architectures import save_tiny


def test_the_manifest_is_the_same_bytes_for_every_load(toy_llama: LoadedModel) -> None:
    first, second = model_manifest(toy_llama), model_manifest(toy_llama)
    assert json.dumps(first, sort_keys=True) == json.dumps(second, sort_keys=True)
    assert "load_seconds" not in first["provenance"]
    assert first["identity"] == toy_llama.identity and len(first["tokenizer_sha256"]) == 64


def test_the_skeleton_has_the_models_identity_shape_layers_and_tokenizer_and_no_weights(toy_model: LoadedModel) -> None:
    lm = toy_model
    skeleton = skeleton_model(json.loads(json.dumps(model_manifest(lm))))
    assert skeleton.identity == lm.identity and skeleton.name == lm.name and skeleton.spec == lm.spec
    assert (skeleton.shape, skeleton.layers, skeleton.layout) == (lm.shape, lm.layers, lm.layout)
    text = "The observer notices itself observing."
    assert skeleton.tokenizer(text)["input_ids"] == lm.tokenizer(text)["input_ids"]
    assert is_skeleton(skeleton) and not is_skeleton(lm)
    assert all(p.device.type == "meta" for p in skeleton.model.parameters())
    with pytest.raises((RuntimeError, NotImplementedError, ValueError)):
        skeleton.model(input_ids=torch.tensor([[1, 2, 3]])).logits.sum().item()


def test_a_manifest_of_another_format_or_identity_is_refused(toy_llama: LoadedModel) -> None:
    manifest = model_manifest(toy_llama)
    with pytest.raises(ManifestError, match="format"):
        skeleton_model({**manifest, "format": 99})
    with pytest.raises(ManifestError, match="identity"):
        skeleton_model({**manifest, "identity": {**manifest["identity"], "dtype": "bfloat16"}})
    with pytest.raises(ManifestError, match="inferred"):
        skeleton_model({**manifest, "inferred_layout": True})


@pytest.mark.parametrize("architecture", sorted(ARCHITECTURES))
def test_every_architecture_row_has_a_skeleton(architecture: str, tmp_path: Path) -> None:
    lm = load_model(f"path:{save_tiny(architecture, tmp_path)}", device="cpu")
    skeleton = skeleton_model(json.loads(json.dumps(model_manifest(lm))))
    assert skeleton.identity == lm.identity
    assert (skeleton.shape, skeleton.layers, skeleton.layout) == (lm.shape, lm.layers, lm.layout)
    assert skeleton.v_columns == lm.v_columns
