"""Converted GGUF copies and their sha256 sidecars survive kills (issue 15): a garbled sidecar is recomputed, a
broken converted copy is moved aside and converted again, a killed conversion's staging directory is removed,
and a chunked GGUF package is assembled under KVCLAIMS_CACHE. Fake files only: the conversion is monkeypatched."""

from __future__ import annotations

import hashlib
import json
import types
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from harness.models import gguf, resolve_spec

SPEC = resolve_spec("smollm2-135m")


@pytest.fixture
def fake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict:
    """KVCLAIMS_CACHE in tmp, a small fake GGUF, and a fake conversion that writes a loadable copy."""
    monkeypatch.setenv("KVCLAIMS_CACHE", str(tmp_path / "cache"))
    gguf_file = tmp_path / "pkg" / "model.gguf"
    gguf_file.parent.mkdir()
    gguf_file.write_bytes(b"GGUF" + bytes(range(256)) * 8)
    conversions: list[Path] = []

    def convert(gguf_path: Path, target: Path) -> None:
        conversions.append(target)
        target.mkdir(parents=True)
        (target / "config.json").write_text(json.dumps({"model_type": "llama"}))
        save_file({"w": torch.zeros(4, 4)}, str(target / "model.safetensors"), metadata={"format": "pt"})

    monkeypatch.setattr(gguf, "package_gguf", lambda spec: gguf_file)
    monkeypatch.setattr(gguf, "_convert_gguf", convert)
    return {"gguf": gguf_file, "conversions": conversions, "sha": hashlib.sha256(gguf_file.read_bytes()).hexdigest()}


def _sidecar(tmp_path: Path) -> Path:
    (sidecar,) = (tmp_path / "cache" / "sha256").glob("*.txt")
    return sidecar


@pytest.mark.parametrize("garbled", ["", "a5fd3b62230aa5ec", "not hex " * 8, "z" * 64])
def test_a_truncated_or_non_hex_sha256_sidecar_is_recomputed(garbled: str, fake: dict, tmp_path: Path) -> None:
    assert gguf._cached_sha256(fake["gguf"]) == fake["sha"]
    sidecar = _sidecar(tmp_path)
    assert sidecar.read_text() == fake["sha"]
    sidecar.write_text(garbled)
    assert gguf._cached_sha256(fake["gguf"]) == fake["sha"]  # not the garbled text
    assert sidecar.read_text() == fake["sha"]  # rewritten


def test_a_sound_sidecar_is_trusted_without_hashing(fake: dict, tmp_path: Path, monkeypatch) -> None:
    gguf._cached_sha256(fake["gguf"])
    monkeypatch.setattr(gguf, "sha256_file", lambda path: pytest.fail("hashed again"))
    assert gguf._cached_sha256(fake["gguf"]) == fake["sha"]


@pytest.mark.parametrize("damage", ["truncated", "empty", "missing", "config"])
def test_a_broken_converted_copy_is_moved_aside_and_converted_again(damage: str, fake: dict) -> None:
    target, sha = gguf.converted_copy(SPEC)
    assert sha == fake["sha"] and gguf.converted_copy_problem(target) is None and len(fake["conversions"]) == 1
    weights = target / "model.safetensors"
    if damage == "truncated":
        weights.write_bytes(weights.read_bytes()[:-10])
    elif damage == "empty":
        weights.write_bytes(b"")
    elif damage == "missing":
        weights.unlink()
    else:
        (target / "config.json").write_text("{")
    problem = gguf.converted_copy_problem(target)
    assert problem is not None
    with pytest.warns(gguf.ConvertedCopyRebuiltWarning, match=f"converted model copy {target} is broken"):
        again, _ = gguf.converted_copy(SPEC)
    assert again == target and len(fake["conversions"]) == 2
    assert gguf.converted_copy_problem(target) is None
    aside = list(target.parent.glob(f"corrupt-{target.name}.*"))
    assert len(aside) == 1 and aside[0].is_dir()


def test_a_killed_conversions_staging_dir_is_removed_at_the_next_conversion(fake: dict) -> None:
    import transformers

    parent = Path(gguf.cache_root()) / "converted" / fake["sha"]
    name = f"transformers-{transformers.__version__}"
    ours = parent / f".staging-{name}-dead"  # what a kill during _convert_gguf leaves
    other = parent / ".staging-transformers-0.0.0-live"  # another version's conversion: not ours to remove
    for d in (ours, other):
        d.mkdir(parents=True)
        (d / "model.safetensors").write_bytes(b"half")
    target, _ = gguf.converted_copy(SPEC)
    assert not ours.exists() and other.exists() and target.name == name
    assert gguf._staging_prefix(target) == f".staging-{name}-"


def test_a_chunked_gguf_package_is_assembled_under_the_cache_root(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("KVCLAIMS_CACHE", str(tmp_path / "cache"))
    calls: list[Path] = []

    def assemble(output_path: Path | None = None, overwrite: bool = False) -> Path:
        calls.append(Path(output_path))
        Path(output_path).write_bytes(b"GGUF whole")
        return Path(output_path)

    package = types.SimpleNamespace(MODEL_NAME="m.gguf", assemble=assemble)
    path = gguf._assemble_into_cache(package, "some_gguf_pkg")
    assert path == tmp_path / "cache" / "gguf" / "some_gguf_pkg" / "m.gguf" and path.read_bytes() == b"GGUF whole"
    assert calls == [path.with_name("m.gguf.partial")] and not calls[0].exists()  # written aside, moved whole
    assert gguf._assemble_into_cache(package, "some_gguf_pkg") == path and len(calls) == 1  # reused


def test_the_installed_gemma_package_assemble_accepts_an_output_path() -> None:
    """The real package's API (no assembly is run): ``assemble(output_path, overwrite)`` and ``MODEL_NAME``."""
    import importlib
    import inspect

    spec = resolve_spec("gemma3-270m")
    try:
        package = importlib.import_module(spec.location)
    except ImportError:
        pytest.skip(f"{spec.location} is not installed")
    assert {"output_path", "overwrite"} <= set(inspect.signature(package.assemble).parameters)
    assert isinstance(package.MODEL_NAME, str)
