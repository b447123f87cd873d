"""Offline loading: ``load_model(name)`` returns a ``LoadedModel``.

The module, its tokenizer, the architecture layout, the head shape read from the loaded config (and asserted
against the registry's expected facts), the pre-registered layer choices, and provenance for reports.

- ``gguf-package`` sources: read from a converted copy of the package's GGUF file (:mod:`harness.models.gguf`).
- ``hf`` sources are read **only** from the local Hugging Face cache (``local_files_only=True``); weights are
  never fetched silently.
- ``path`` sources: a ``save_pretrained`` directory, inspected first (``harness.models.safety``): a missing or
  broken directory is one line naming what is missing; custom code (``auto_map``) and pickle-only weights are
  refused before transformers reads anything. Every transformers call passes ``trust_remote_code=False`` and
  pretrained weights are read with ``use_safetensors=True``.
- ``toy`` sources: random weights from the spec's config after ``torch.manual_seed(0)``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from harness.models.architectures import ArchitectureLayout, layout_for_model, module_path, row_for_config, value_columns
from harness.models.directory_identity import directory_fingerprint
from harness.models.errors import (
    GPUUnavailableError,
    ModelConfigMismatchError,
    ModelDirectoryError,
    ModelUnavailableError,
    first_line,
)
from harness.models.finite_probe import check_finite
from harness.models.gguf import converted_copy
from harness.models.loaded import LayerChoice, LoadedModel, ModelShape, default_layer_choice, read_shape
from harness.models.model_args import ModelArgs, ModelArgsError, check_args_for_model, layer_choice, resolve_dtype
from harness.models.registry import ModelSpec, resolve_spec
from harness.models.revisions import checkpoint_provenance
from harness.models.safety import inspect_model_directory
from harness.runtime.gpu_assignment import cuda_index, max_memory_budget

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


def placement_kwargs(device: str, args: ModelArgs, gpu_total_bytes: Sequence[int]) -> dict[str, Any]:
    """``from_pretrained`` keyword arguments that place a model on ``device`` (a resolved device).

    - ``cpu``: none (``device_map=``/``max_memory=`` of ``--model-args`` are refused).
    - ``cuda:N``: the whole model on that GPU (``device_map={"": "cuda:N"}``); ``device_map=`` is refused.
    - ``cuda``: ``device_map`` (``--model-args device_map=``, default ``sequential``: GPU 0 is filled first, so a
      model that fits one GPU stays on one and a larger one spills over the worker's next GPUs) and ``max_memory``
      for every visible GPU (:func:`harness.runtime.gpu_assignment.max_memory_budget` of ``gpu_total_bytes``, each GPU's
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


def quantization_kwargs(args: ModelArgs, device: str, dtype: torch.dtype) -> dict[str, Any]:
    """``from_pretrained`` keyword arguments for ``quantization=`` of ``--model-args`` on a resolved ``device``: a
    bitsandbytes config (``int8``: LLM.int8 weights; ``nf4``: 4-bit NormalFloat weights with double quantization),
    computing in ``dtype`` so activations and the KV cache keep the model's dtype; empty without ``quantization=``.

    Raises:
        ModelArgsError: ``quantization=`` on a device that is not CUDA (one line).
        ModelUnavailableError: bitsandbytes is not installed (one line with the install command).
    """
    if args.quantization is None:
        return {}
    if not device.startswith("cuda"):
        raise ModelArgsError(f"--model-args quantization={args.quantization} needs a CUDA GPU (bitsandbytes quantizes "
                             f"weights on the GPU); this run's device is {device}")
    import importlib.util

    if importlib.util.find_spec("bitsandbytes") is None:
        raise ModelUnavailableError(f"--model-args quantization={args.quantization} needs bitsandbytes: "
                                    "pip install 'kvclaims[quantization]' (or pip install bitsandbytes)")
    from transformers import BitsAndBytesConfig

    if args.quantization == "int8":
        return {"quantization_config": BitsAndBytesConfig(load_in_8bit=True)}
    return {"quantization_config": BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4",
                                                      bnb_4bit_use_double_quant=True, bnb_4bit_compute_dtype=dtype)}


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
    if spec.source in ("gguf-package", "gguf-file"):
        directory, sha = converted_copy(spec)
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
    common.update(quantization_kwargs(args, device, dtype))
    try:
        tokenizer = AutoTokenizer.from_pretrained(location, **_tokenizer_kwargs(common))
        model = AutoModelForCausalLM.from_pretrained(location, **common)
    except OSError as exc:
        if spec.source in ("gguf-package", "gguf-file"):
            raise ModelUnavailableError(
                f"{spec.name}: the converted copy {location} cannot be loaded: {first_line(exc)}; delete {location} "
                "and it is converted again at the next load") from exc
        if spec.source == "path":
            raise ModelDirectoryError(f"{spec.name}: {location} cannot be loaded: {first_line(exc)}") from exc
        raise ModelUnavailableError(_unavailable_message(spec)) from exc
    provenance["revision"] = getattr(model.config, "_commit_hash", None) or spec.revision
    return model, tokenizer, provenance


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


def check_loaded(spec: ModelSpec, model: nn.Module, shape: ModelShape, layout: ArchitectureLayout) -> None:
    """Assert that the loaded model matches the registry's architecture facts and the architecture table.

    Raises:
        ModelConfigMismatchError: naming the model and each mismatching fact.
    """
    problems: list[str] = []
    if spec.architecture and layout.architecture != spec.architecture:
        problems.append(f"architecture {layout.architecture!r} != registry {spec.architecture!r}")
    if spec.expected is not None:
        e, g = spec.expected, shape
        for fact in ("n_layers", "n_heads", "n_kv_heads", "head_dim", "sliding_window"):
            if getattr(e, fact) is not None and getattr(e, fact) != getattr(g, fact):
                problems.append(f"{fact} = {getattr(g, fact)}, expected {getattr(e, fact)}")
    if shape.n_heads % shape.n_kv_heads:
        problems.append(f"n_heads {shape.n_heads} is not a multiple of n_kv_heads {shape.n_kv_heads}")
    if shape.sliding_layers and not layout.sliding_window_possible:
        problems.append(f"architecture {layout.architecture} declares no sliding windows but layers {shape.sliding_layers} slide")
    v_module = model.get_submodule(module_path(layout, 0, "v_proj"))
    if not isinstance(v_module, nn.Linear):
        problems.append(f"value projection is {type(v_module).__name__}, not an nn.Linear")
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
        raise ModelConfigMismatchError(f"{spec.name}: loaded model contradicts its architecture facts: " + "; ".join(problems))


def tokenizer_and_context(spec: ModelSpec) -> tuple[Any, int | None]:
    """A model's tokenizer and context length (``max_position_embeddings``), read without its weights: the toy
    tokenizer and config for toy models, the converted copy for GGUF sources (converted now if it is not cached yet),
    the directory or the local HF cache otherwise. For checks before any model loads (a user bank's prompt lengths).

    Raises:
        ModelUnavailableError: the tokenizer or config cannot be read (one line).
    """
    from transformers import AutoConfig, AutoTokenizer

    from harness.models.loaded import context_length

    if spec.source == "toy":
        assert spec.toy_config is not None
        return (AutoTokenizer.from_pretrained(str(TOY_TOKENIZER_DIR), trust_remote_code=False),
                spec.toy_config.get("max_position_embeddings"))
    kwargs: dict[str, Any] = dict(trust_remote_code=False)
    if spec.source in ("gguf-package", "gguf-file"):
        location = str(converted_copy(spec)[0])
    else:
        location = spec.location
        if spec.source == "hf":
            kwargs.update(revision=spec.revision, local_files_only=True, cache_dir=hub_cache_dir())
    try:
        return AutoTokenizer.from_pretrained(location, **kwargs), context_length(AutoConfig.from_pretrained(location, **kwargs))
    except (OSError, ValueError) as exc:
        raise ModelUnavailableError(f"{spec.name}: its tokenizer or config cannot be read: {first_line(exc)}") from exc


def needs_inferred_layout(spec: ModelSpec) -> bool:
    """Whether loading ``spec`` will infer and prove its layout: a ``path:`` or ``hf:`` model whose config (read
    without weights) has a model_type without a row, and every ``gguf:`` file (its config exists only once the file
    is converted). False for registry models and for a config that cannot be read (loading reports that)."""
    if spec.source == "gguf-file":
        return True
    if spec.source not in ("path", "hf"):
        return False
    from transformers import AutoConfig

    kwargs: dict[str, Any] = dict(trust_remote_code=False)
    if spec.source == "hf":
        kwargs.update(revision=spec.revision, local_files_only=True, cache_dir=hub_cache_dir())
    try:
        config = AutoConfig.from_pretrained(spec.location, **kwargs)
    except (OSError, ValueError, KeyError):
        return False
    return row_for_config(config) is None


def _layout(model: nn.Module, tokenizer: Any, shape: ModelShape, *, prove_row: bool) -> tuple[ArchitectureLayout, dict[str, Any]]:
    """The model's architecture row (checked against its module tree), or for a model_type without a row the layout
    inferred from its module tree, proven by the engine invariants on a probe, with its provenance record. With
    ``prove_row`` (``gguf:`` files, whose weights went through a dequantizing converter) a row is proven too.

    Raises:
        UnknownArchitectureError: a row's module is missing; :class:`~harness.models.layout_inference.LayoutInferenceError`
            or :class:`~harness.engine.layout_proof.LayoutProofError` (one line each) for a layout that cannot be used.
    """
    from harness.models.layout_inference import InferredLayouts, infer_layouts, registered_layout_prover

    row = layout_for_model(model) if row_for_config(model.config) is not None else None
    if row is not None and not prove_row:
        return row, {}
    prove = registered_layout_prover(str(getattr(model.config, "model_type", None)))
    if row is not None:
        _, record = prove(model, tokenizer, shape, InferredLayouts((row,), f"the {row.architecture} row"))
        return row, {**record, "layout": f"row {row.architecture} (proven at load)"}
    return prove(model, tokenizer, shape, infer_layouts(model))


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
        UnknownModelError, GPUUnavailableError, ModelUnavailableError (its subclass
        :class:`~harness.models.finite_probe.NonFiniteModelError` for activations that are not finite on a probe
        forward), ModelConfigMismatchError, ModelArgsError, UnknownArchitectureError.
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
    if args.quantization is not None and not resolved_device.startswith("cuda"):
        quantization_kwargs(args, resolved_device, torch.float32)  # one line: quantization needs CUDA
    dtype_name = resolve_dtype(spec.dtype, resolved_device, dtype, args)
    torch_dtype = parse_dtype(dtype_name)
    started = time.perf_counter()
    loader = _load_toy if spec.source == "toy" else _load_pretrained
    model, tokenizer, provenance = loader(spec, torch_dtype, resolved_device, args)
    if args.chat_template:
        from harness.models.chat_prompts import chat_prompt_tokenizer

        tokenizer, template_record = chat_prompt_tokenizer(tokenizer, name)
        provenance.update(template_record)
    model.eval()
    model.requires_grad_(False)
    check_finite(model, tokenizer, name)
    shape = read_shape(model.config)
    layout, layout_record = _layout(model, tokenizer, shape, prove_row=spec.source == "gguf-file")
    if not spec.architecture:
        spec = replace(spec, architecture=layout.architecture, attn_implementation=spec.attn_implementation)
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
        family=layout.architecture,  # the record's key for the architecture (kept: committed records use it)
        dtype=dtype_name,
        device=str(input_device),
        devices=sorted({str(param.device) for param in model.parameters()}),
        attn_implementation=spec.attn_implementation,
        n_parameters=int(sum(param.numel() for param in model.parameters())),  # tied embeddings counted once
        load_seconds=round(time.perf_counter() - started, 3),
        **checkpoint_provenance(name),  # a checkpoint's revision or directory and training step, for the report
    )
    provenance.update(layout_record)
    if args.applied():
        provenance["model_args"] = args.applied()
    return LoadedModel(name, spec, model, tokenizer, layout, shape, layers, input_device, provenance)
