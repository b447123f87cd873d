"""Model directories (``path:`` and cached ``hf:`` snapshots): inspected before transformers reads them.

Custom code and pickle weights never run; a missing or broken directory is one line naming what is missing.
A tiny Llama (hidden 16, 2 layers) saved with ``save_pretrained`` stands in for a real checkpoint.
"""

from __future__ import annotations

import json
import pickle
import shutil
from pathlib import Path

import pytest

from harness.models import TOY_TOKENIZER_DIR, ModelDirectoryError, ModelUnavailableError, UnsafeModelError, load_model

MARKER_CODE = "from pathlib import Path\nPath({marker!r}).write_text('custom code ran')\n"


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A valid save_pretrained directory: tiny Llama config, safetensors weights, the toy tokenizer."""
    import torch
    from transformers import AutoModelForCausalLM, LlamaConfig

    out = tmp_path_factory.mktemp("tiny-llama")
    config = LlamaConfig(hidden_size=16, intermediate_size=32, num_hidden_layers=2, num_attention_heads=2,
                         num_key_value_heads=1, vocab_size=49152, max_position_embeddings=64)
    torch.manual_seed(0)
    AutoModelForCausalLM.from_config(config).save_pretrained(out)
    for item in TOY_TOKENIZER_DIR.iterdir():
        if item.name.startswith("tokenizer") or item.name in ("special_tokens_map.json", "vocab.json", "merges.txt"):
            shutil.copy(item, out / item.name)
    return out


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def _one_line(exc: pytest.ExceptionInfo[BaseException]) -> str:
    message = str(exc.value)
    assert "\n" not in message and "huggingface-cli" not in message, message
    return message


def test_valid_directory_loads(tiny_dir: Path) -> None:
    loaded = load_model(f"path:{tiny_dir}", device="cpu")
    assert loaded.shape.n_layers == 2 and loaded.layout.architecture == "llama"


def test_auto_map_with_unknown_architecture_is_refused_before_its_code_runs(tiny_dir: Path, tmp_path: Path) -> None:
    directory = _copy(tiny_dir, tmp_path / "custom")
    marker = tmp_path / "marker.txt"
    (directory / "evil.py").write_text(MARKER_CODE.format(marker=str(marker)))
    (directory / "config.json").write_text(json.dumps(
        {"model_type": "evil-arch", "auto_map": {"AutoConfig": "evil.EvilConfig", "AutoModelForCausalLM": "evil.M"}}
    ))
    with pytest.raises(UnsafeModelError) as err:
        load_model(f"path:{directory}", device="cpu")
    assert str(directory / "config.json") in _one_line(err) and "auto_map" in str(err.value)
    assert not marker.exists()


def test_auto_map_beside_a_native_architecture_loads_transformers_own_code(tiny_dir: Path, tmp_path: Path) -> None:
    """trust_remote_code=False: transformers' Llama is used, the directory's modelling file is never imported."""
    directory = _copy(tiny_dir, tmp_path / "native-with-auto-map")
    marker = tmp_path / "marker.txt"
    (directory / "modeling_evil.py").write_text(MARKER_CODE.format(marker=str(marker)))
    config = json.loads((directory / "config.json").read_text())
    config["auto_map"] = {"AutoModelForCausalLM": "modeling_evil.EvilForCausalLM"}
    (directory / "config.json").write_text(json.dumps(config))
    loaded = load_model(f"path:{directory}", device="cpu")
    assert type(loaded.model).__name__ == "LlamaForCausalLM" and not marker.exists()


class _WritesMarker:
    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (Path(self.marker).write_text, ("pickle ran",))


def test_pickle_only_weights_are_refused_without_unpickling(tiny_dir: Path, tmp_path: Path) -> None:
    directory = _copy(tiny_dir, tmp_path / "pickled")
    marker = tmp_path / "marker.txt"
    (directory / "model.safetensors").unlink()
    (directory / "pytorch_model.bin").write_bytes(pickle.dumps(_WritesMarker(str(marker))))
    with pytest.raises(UnsafeModelError) as err:
        load_model(f"path:{directory}", device="cpu")
    message = _one_line(err)
    assert str(directory) in message and "pytorch_model.bin" in message and "safetensors" in message
    assert not marker.exists()


def test_hf_snapshot_with_pickle_only_weights_is_refused(tiny_dir: Path, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    repo = tmp_path / "hub" / "models--some-org--pickled"
    snapshot = _copy(tiny_dir, repo / "snapshots" / ("a" * 40))
    (snapshot / "model.safetensors").unlink()
    (snapshot / "pytorch_model.bin").write_bytes(b"not read")
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("a" * 40)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    with pytest.raises(UnsafeModelError, match="only pickle weights"):
        load_model("hf:some-org/pickled", device="cpu")


def test_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(ModelDirectoryError) as err:
        load_model(f"path:{tmp_path / 'nowhere'}", device="cpu")
    assert "does not exist" in _one_line(err) and str(tmp_path / "nowhere") in str(err.value)


def test_file_instead_of_directory(tmp_path: Path) -> None:
    (tmp_path / "model.safetensors").write_bytes(b"")
    with pytest.raises(ModelDirectoryError, match="is a file, not a directory"):
        load_model(f"path:{tmp_path / 'model.safetensors'}", device="cpu")


def test_missing_config(tiny_dir: Path, tmp_path: Path) -> None:
    directory = _copy(tiny_dir, tmp_path / "no-config")
    (directory / "config.json").unlink()
    with pytest.raises(ModelDirectoryError) as err:
        load_model(f"path:{directory}", device="cpu")
    assert "has no config.json" in _one_line(err)


def test_unparseable_config(tiny_dir: Path, tmp_path: Path) -> None:
    directory = _copy(tiny_dir, tmp_path / "bad-config")
    (directory / "config.json").write_text('{"model_type": "llama",')
    with pytest.raises(ModelDirectoryError) as err:
        load_model(f"path:{directory}", device="cpu")
    assert str(directory / "config.json") in _one_line(err) and "not valid JSON" in str(err.value)


def test_config_without_model_type(tiny_dir: Path, tmp_path: Path) -> None:
    directory = _copy(tiny_dir, tmp_path / "no-type")
    (directory / "config.json").write_text("{}")
    with pytest.raises(ModelDirectoryError, match="model_type"):
        load_model(f"path:{directory}", device="cpu")


def test_missing_weights(tiny_dir: Path, tmp_path: Path) -> None:
    directory = _copy(tiny_dir, tmp_path / "no-weights")
    (directory / "model.safetensors").unlink()
    with pytest.raises(ModelDirectoryError) as err:
        load_model(f"path:{directory}", device="cpu")
    assert "has no weights" in _one_line(err)


def test_missing_shard(tiny_dir: Path, tmp_path: Path) -> None:
    directory = _copy(tiny_dir, tmp_path / "sharded")
    (directory / "model.safetensors").rename(directory / "model-00001-of-00002.safetensors")
    weight_map = {"a": "model-00001-of-00002.safetensors", "b": "model-00002-of-00002.safetensors"}
    (directory / "model.safetensors.index.json").write_text(json.dumps({"weight_map": weight_map}))
    with pytest.raises(ModelDirectoryError, match="model-00002-of-00002.safetensors"):
        load_model(f"path:{directory}", device="cpu")


def test_missing_tokenizer(tiny_dir: Path, tmp_path: Path) -> None:
    directory = _copy(tiny_dir, tmp_path / "no-tokenizer")
    for name in ("tokenizer.json", "vocab.json", "merges.txt", "tokenizer_config.json"):
        (directory / name).unlink(missing_ok=True)
    with pytest.raises(ModelDirectoryError) as err:
        load_model(f"path:{directory}", device="cpu")
    assert "no tokenizer files" in _one_line(err)


def test_directory_errors_are_model_unavailable_errors() -> None:
    """The lm fixture turns ModelUnavailableError into a one-line setup failure; the new errors ride on it."""
    assert issubclass(ModelDirectoryError, ModelUnavailableError) and issubclass(UnsafeModelError, ModelUnavailableError)
