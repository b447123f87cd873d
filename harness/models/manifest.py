"""A model's manifest: what a run needs of a model to read its measurements back, without its weights.

Every run that may write the measurement store writes the manifest of each model it loads (kind
:data:`MANIFEST_KIND`, keyed by the model's name and how it was asked to load it: device, dtype, ``--model-args``,
decode path). It holds the model's identity (the part of every measurement key that names the model), its provenance,
its config, its tokenizer's files and their sha256, its layer choice and the architecture of its layout. The reduce of
a merged store (``--claims-cache read``) finds the manifest and builds a :func:`skeleton_model` from it: the same
identity, config, shape, layers and tokenizer, and the model's module tree on the ``meta`` device (no memory, no
weights), so every claim reads its measurements from the store and decides, and nothing can be computed.
"""

from __future__ import annotations

import base64
import hashlib
import tempfile
from pathlib import Path
from typing import Any

import torch

from harness.models.architectures import layout_for_model, row_for_config
from harness.models.loaded import LayerChoice, LoadedModel, read_shape
from harness.models.registry import resolve_spec

__all__ = ["MANIFEST_FORMAT", "MANIFEST_KIND", "ManifestError", "is_skeleton", "manifest_parts", "model_manifest",
           "skeleton_model"]

MANIFEST_KIND = "model_manifest"
"""Measurement-store kind of the manifests."""

MANIFEST_FORMAT = 1
"""Version of the manifest's layout."""

VOLATILE_PROVENANCE = ("load_seconds",)
"""Provenance that differs from load to load of the same model (left out, so every shard writes the same bytes)."""


class ManifestError(ValueError):
    """A manifest a skeleton cannot be built from (one line: which model and why)."""


def manifest_parts(name: str, *, device: str, dtype: str | None, model_args: Any, decode_path: str) -> dict[str, Any]:
    """The key parts of a model's manifest: its ``--model`` name and the load options of the run (as given, before
    they are resolved: the reduce on another machine asks with the options the shards were run with)."""
    return {"model": name, "device": device, "dtype": dtype, "model_args": repr(model_args), "decode_path": decode_path}


def model_manifest(lm: LoadedModel) -> dict[str, Any]:
    """The manifest of a loaded model (builtins only; the same bytes for every load of the same model)."""
    with tempfile.TemporaryDirectory() as tmp:
        lm.tokenizer.save_pretrained(tmp)
        files = {p.name: base64.b64encode(p.read_bytes()).decode("ascii")
                 for p in sorted(Path(tmp).iterdir()) if p.is_file()}
    digest = hashlib.sha256()
    for name, data in files.items():
        digest.update(name.encode() + b"\0" + base64.b64decode(data))
    return {
        "format": MANIFEST_FORMAT,
        "name": lm.name,
        "identity": lm.identity,
        "provenance": {k: v for k, v in lm.provenance.items() if k not in VOLATILE_PROVENANCE},
        "config": lm.model.config.to_dict(),
        "tokenizer_files": files,
        "tokenizer_sha256": digest.hexdigest(),
        "layers": {"early": lm.layers.early, "late": lm.layers.late, "patch": list(lm.layers.patch_layers)},
        "architecture": lm.layout.architecture,
        "inferred_layout": bool(getattr(lm.layout, "inferred", False)),
        "input_device": str(lm.input_device),
        "decode_path": lm.decode_path,
    }


def is_skeleton(lm: LoadedModel) -> bool:
    """Whether ``lm`` is a weightless skeleton (its parameters on the ``meta`` device)."""
    return any(parameter.is_meta for parameter in lm.model.parameters())


def skeleton_model(manifest: dict[str, Any]) -> LoadedModel:
    """A :class:`LoadedModel` built from ``manifest`` with its modules on the ``meta`` device: identity, config,
    shape, layers, layout and tokenizer as loaded, no weights (any forward pass fails). Checked: its identity must equal
    the manifest's.

    Raises:
        ManifestError: another manifest format, a layout that was inferred at load (it was proven on a forward pass,
            which a skeleton cannot repeat), or an identity that does not come out the same.
    """
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    name = manifest.get("name", "?")
    if manifest.get("format") != MANIFEST_FORMAT:
        raise ManifestError(f"{name}: manifest format {manifest.get('format')!r}, expected {MANIFEST_FORMAT}")
    if manifest["inferred_layout"]:
        raise ManifestError(f"{name}: its layout was inferred and proven at load; a weightless reduce cannot prove it")
    config_dict = dict(manifest["config"])
    config = AutoConfig.for_model(config_dict.pop("model_type"), **config_dict)
    provenance = dict(manifest["provenance"])
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config, attn_implementation=provenance.get("attn_implementation"))
    model.eval()
    model.requires_grad_(False)
    with tempfile.TemporaryDirectory() as tmp:
        for file_name, data in manifest["tokenizer_files"].items():
            (Path(tmp) / file_name).write_bytes(base64.b64decode(data))
        tokenizer = AutoTokenizer.from_pretrained(tmp)
    if row_for_config(model.config) is None:
        raise ManifestError(f"{name}: no architecture row for model_type {config.model_type!r}")
    layout = layout_for_model(model)
    spec = resolve_spec(name)
    if spec.architecture != layout.architecture and not spec.architecture:
        from dataclasses import replace

        spec = replace(spec, architecture=layout.architecture)
    layers = manifest["layers"]
    skeleton = LoadedModel(name, spec, model, tokenizer, layout, read_shape(model.config),
                           LayerChoice(layers["early"], layers["late"], tuple(layers["patch"])),
                           torch.device(manifest["input_device"]), {**provenance, "load_seconds": None},
                           manifest["decode_path"])
    if skeleton.identity != manifest["identity"]:
        raise ManifestError(f"{name}: the skeleton's identity {skeleton.identity} differs from the manifest's "
                            f"{manifest['identity']}")
    return skeleton
