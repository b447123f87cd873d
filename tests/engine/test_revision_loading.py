"""``hf:ORG/NAME@REV`` loads that revision from the local Hugging Face cache, offline, and names its checkpoint.

A Hub cache is laid out by hand (``models--org--name/snapshots/<commit>/`` with ``refs/step1000`` and
``refs/step8000`` naming two commits), holding two tiny random-weight GPT-NeoX models drawn with different seeds,
so the two revisions are told apart by their weights.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from harness.models import check_series, load_model
from tests.engine.test_model_architectures import save_tiny

COMMITS = {"step1000": "1" * 40, "step8000": "8" * 40}


@pytest.fixture
def hub_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    from huggingface_hub import constants

    repo = tmp_path / "hub" / "models--tiny-org--tiny-neox"
    (repo / "refs").mkdir(parents=True)
    for seed, (revision, commit) in enumerate(COMMITS.items(), start=1):
        snapshot = repo / "snapshots" / commit
        snapshot.mkdir(parents=True)
        save_tiny("gpt_neox", snapshot, seed=seed)
        (repo / "refs" / revision).write_text(commit)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))  # read at import by huggingface_hub
    return tmp_path / "hub"


def test_each_revision_loads_its_own_weights_offline(hub_cache: Path) -> None:
    names = [f"hf:tiny-org/tiny-neox@{revision}" for revision in COMMITS]
    (series,) = check_series(names)
    first, second = (load_model(name, device="cpu") for name in series.models)
    for lm, (revision, commit) in zip((first, second), COMMITS.items()):
        assert lm.spec.revision == revision
        assert lm.provenance["revision"] in (commit, revision)  # the resolved commit where transformers records it
        assert lm.provenance["checkpoint"] == {"series": "hf:tiny-org/tiny-neox", "label": revision,
                                               "step": int(revision.removeprefix("step"))}
        saved = load_file(str(hub_cache / "models--tiny-org--tiny-neox" / "snapshots" / commit / "model.safetensors"))
        assert torch.equal(lm.model.get_input_embeddings().weight, saved["gpt_neox.embed_in.weight"])
    assert not torch.equal(first.model.get_input_embeddings().weight, second.model.get_input_embeddings().weight)
