"""What is checked in a model directory before any transformers call reads it.

:func:`inspect_model_directory` reads only JSON and file names, never Python code or pickles, so a directory that
would need custom code (``auto_map`` for an architecture transformers does not ship) or pickle-only weights is
refused before anything in it can run, and a broken ``path:`` directory is one clear line naming what is missing
instead of a tokenizer traceback.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from harness.models.errors import ModelDirectoryError, UnsafeModelError

SAVE_HINT = "a directory written by save_pretrained: config.json, *.safetensors weights and tokenizer files"
TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "vocab.json", "spiece.model", "vocab.txt")
"""Any one of these makes a directory loadable by ``AutoTokenizer`` (fast JSON, SentencePiece or BPE/WordPiece)."""
PICKLE_WEIGHT_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt")


def read_json_object(path: Path, name: str) -> dict[str, Any]:
    """The JSON object in ``path``; a clear one-line ``ModelDirectoryError`` when it is not one."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ModelDirectoryError(
            f"{name}: {path} is not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno}); "
            "fix the file or save the model again with save_pretrained"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ModelDirectoryError(f"{name}: {path} cannot be read ({exc})") from None
    if not isinstance(data, dict):
        raise ModelDirectoryError(f"{name}: {path} holds a JSON {type(data).__name__}, not an object")
    return data


def _native_model_types() -> frozenset[str]:
    """``model_type`` values whose code ships with transformers (reading the table imports no model code)."""
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING_NAMES

    return frozenset(CONFIG_MAPPING_NAMES)


def check_no_custom_code(config: dict[str, Any], config_path: Path, name: str) -> None:
    """Refuse a config whose ``auto_map`` names code for an architecture transformers does not ship.

    A config with ``auto_map`` *and* a ``model_type`` transformers implements (Phi-3's repository keeps one) loads
    transformers' own classes under ``trust_remote_code=False`` and runs nothing from the directory, so it is allowed.
    """
    auto_map = config.get("auto_map")
    if not auto_map:
        return
    model_type = config.get("model_type")
    if isinstance(model_type, str) and model_type in _native_model_types():
        return
    classes = ", ".join(sorted(auto_map)) if isinstance(auto_map, dict) else str(auto_map)
    raise UnsafeModelError(
        f"{name}: {config_path} declares custom model code (auto_map: {classes}) for model_type {model_type!r}, "
        "which transformers does not implement; the suite never runs code from a model directory "
        "(trust_remote_code=False). Fix: use a model whose architecture transformers ships"
    )


def check_tokenizer_code(directory: Path, name: str) -> None:
    """Refuse a ``tokenizer_config.json`` whose ``auto_map`` names a tokenizer class transformers lacks."""
    path = directory / "tokenizer_config.json"
    if not path.is_file():
        return
    config = read_json_object(path, name)
    if not config.get("auto_map"):
        return
    import transformers

    cls = config.get("tokenizer_class")
    if isinstance(cls, str) and (hasattr(transformers, cls) or hasattr(transformers, cls.removesuffix("Fast"))):
        return
    raise UnsafeModelError(
        f"{name}: {path} declares a custom tokenizer (auto_map, tokenizer_class {cls!r}) that transformers does not "
        "ship; the suite never runs code from a model directory. Fix: save a standard tokenizer into the directory"
    )


def check_weights(directory: Path, name: str) -> None:
    """Require safetensors weights (all shards of an index); refuse pickle-only directories."""
    index = directory / "model.safetensors.index.json"
    if index.is_file():
        weight_map = read_json_object(index, name).get("weight_map") or {}
        missing = sorted({str(f) for f in weight_map.values() if not (directory / str(f)).is_file()})
        if missing:
            raise ModelDirectoryError(f"{name}: {index} lists shards that are missing: {', '.join(missing)}")
        return
    if any(directory.glob("*.safetensors")):
        return
    pickles = sorted(p.name for p in directory.iterdir() if p.suffix in PICKLE_WEIGHT_SUFFIXES)
    if pickles:
        raise UnsafeModelError(
            f"{name}: {directory} holds only pickle weights ({', '.join(pickles)}); the suite loads safetensors only, "
            "because unpickling can run code. Fix: on a machine you trust, convert once with "
            "AutoModelForCausalLM.from_pretrained(dir).save_pretrained(dir), which writes model.safetensors"
        )
    raise ModelDirectoryError(
        f"{name}: {directory} has no weights (model.safetensors or a model.safetensors.index.json with its shards); "
        f"path: needs {SAVE_HINT}"
    )


def inspect_model_directory(directory: Path, name: str) -> dict[str, Any]:
    """Check a model directory without running anything in it; return its parsed ``config.json``.

    Raises:
        ModelDirectoryError: no directory, no or unparseable ``config.json``, no ``model_type``, no weights, no
            tokenizer files.
        UnsafeModelError: custom code (``auto_map``) or pickle-only weights.
    """
    if not directory.exists():
        raise ModelDirectoryError(f"{name}: directory {directory} does not exist; path: needs {SAVE_HINT}")
    if not directory.is_dir():
        raise ModelDirectoryError(f"{name}: {directory} is a file, not a directory; path: needs {SAVE_HINT}")
    config_path = directory / "config.json"
    if not config_path.is_file():
        raise ModelDirectoryError(f"{name}: {directory} has no config.json; path: needs {SAVE_HINT}")
    config = read_json_object(config_path, name)
    check_no_custom_code(config, config_path, name)
    if not isinstance(config.get("model_type"), str):
        raise ModelDirectoryError(
            f"{name}: {config_path} has no \"model_type\", so the architecture is unknown; save the model again "
            "with save_pretrained"
        )
    check_tokenizer_code(directory, name)
    check_weights(directory, name)
    if not any((directory / f).is_file() for f in TOKENIZER_FILES):
        raise ModelDirectoryError(
            f"{name}: {directory} has no tokenizer files (one of {', '.join(TOKENIZER_FILES)}); "
            "save the tokenizer into it with tokenizer.save_pretrained(dir)"
        )
    return config
