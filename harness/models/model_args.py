"""``--model-args``: how every selected model is loaded, in the spirit of lm-eval's ``--model_args``.

``--model-args "dtype=bf16,revision=step1000,device_map=sequential,max_memory=70GiB,attn_implementation=sdpa,
early=4,late=27,patch=16-31"`` is parsed by :func:`parse_model_args` into a :class:`ModelArgs`; every key is optional:

- ``dtype``: ``float32``/``bfloat16``/``float16`` or an alias (``fp32``, ``bf16``, ``fp16``);
- ``revision``: a Hub revision (branch, tag, commit, checkpoint); ``hf`` models only;
- ``device_map``: an accelerate placement strategy (``auto``, ``balanced``, ``balanced_low_0``, ``sequential``);
  CUDA and pretrained weights only;
- ``max_memory``: the memory budget of each visible GPU (``70GiB``, ``80GB``, ``512MiB`` or bytes); CUDA only;
- ``attn_implementation``: ``eager``, ``sdpa``, ``flash_attention_2`` (claims that read attention weights need eager);
- ``early``, ``late``: 0-based layer indices replacing the model's registered early/late layers;
- ``patch``: the KV patch layer set, comma-separated indices or inclusive ranges (``patch=16-31`` or
  ``patch=20,22,24-26``; a comma-separated token without ``=`` continues the previous key's value);
- ``quantization``: ``int8`` or ``nf4`` weights through bitsandbytes (the route to a 70B model on one GPU); CUDA and
  pretrained weights only. Activations, the KV cache and every measurement stay in the model's dtype (bf16 on CUDA)
  or float32;
- ``chat_template``: ``true`` wraps each prompt in the tokenizer's chat template as one user turn with the assistant's
  turn opened (:mod:`harness.models.chat_prompts`); every position a claim refers to is then a position of the
  templated tokens. Default ``false``: raw text, as registered.

:func:`resolve_dtype` is the dtype rule: an explicit dtype wins; otherwise every model on CUDA (every tier, ``hf:`` and
``path:`` included) loads in bfloat16, and on CPU in its registry dtype (float32 for the CPU tier).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, fields
from typing import Any

DTYPE_ALIASES: dict[str, str] = {
    "float32": "float32", "fp32": "float32", "bfloat16": "bfloat16", "bf16": "bfloat16",
    "float16": "float16", "fp16": "float16",
}
"""Accepted dtype spellings and the torch dtype name each means."""

CUDA_DEFAULT_DTYPE = "bfloat16"
"""The dtype of every model on CUDA unless one is given: bf16 halves memory against fp32 with fp32's exponent range
(fp16 overflows in some families' activations), and it is the dtype the GPU-tier models were released in."""

DEVICE_MAP_STRATEGIES: tuple[str, ...] = ("auto", "balanced", "balanced_low_0", "sequential")
"""``device_map=`` values: accelerate's placement strategies over the visible GPUs."""

ATTN_IMPLEMENTATIONS: tuple[str, ...] = ("eager", "sdpa", "flash_attention_2")
"""``attn_implementation=`` values (transformers' names)."""

MODEL_ARG_KEYS: tuple[str, ...] = (
    "dtype", "revision", "device_map", "max_memory", "attn_implementation", "early", "late", "patch", "quantization",
    "chat_template",
)
"""Every key ``--model-args`` accepts, in the order the usage error lists them."""

QUANTIZATIONS: tuple[str, ...] = ("int8", "nf4")
"""``quantization=`` values: bitsandbytes 8-bit (LLM.int8) or 4-bit NormalFloat weights."""

_MEMORY = re.compile(r"^(?P<number>\d+(?:\.\d+)?)\s*(?P<unit>[KMGT]i?B|B)?$", re.IGNORECASE)
_UNIT_BYTES = {"b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
               "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}
_REVISION = re.compile(r"^[\w.\-/]+$")


class ModelArgsError(ValueError):
    """A ``--model-args`` string, or one of its values, is not valid (or not valid for a model); one line."""


@dataclass(frozen=True)
class ModelArgs:
    """Parsed ``--model-args``; None means "not given" (the model's own choice applies).

    Attributes:
        dtype: canonical torch dtype name.
        revision: Hub revision for ``hf`` models.
        device_map: accelerate placement strategy (one of :data:`DEVICE_MAP_STRATEGIES`).
        max_memory_bytes: memory budget of each visible GPU, in bytes.
        attn_implementation: transformers attention implementation.
        early, late: 0-based layer indices for R_V's early and late layers.
        patch: 0-based layer indices of the KV patch set, ascending and distinct.
        quantization: ``int8`` or ``nf4`` (bitsandbytes weights), or None for unquantized weights.
        chat_template: True to wrap prompts in the tokenizer's chat template; None or False for raw text.
    """

    dtype: str | None = None
    revision: str | None = None
    device_map: str | None = None
    max_memory_bytes: int | None = None
    attn_implementation: str | None = None
    early: int | None = None
    late: int | None = None
    patch: tuple[int, ...] | None = None
    quantization: str | None = None
    chat_template: bool | None = None

    def applied(self) -> dict[str, Any]:
        """The given keys as JSON builtins (for provenance and cache keys); empty when nothing was given."""
        out: dict[str, Any] = {}
        for field in fields(self):
            value = getattr(self, field.name)
            if value is not None:
                out[field.name] = list(value) if isinstance(value, tuple) else value
        return out


def canonical_dtype(value: str) -> str:
    """The canonical dtype name of ``value`` (an alias such as ``bf16`` accepted).

    Raises:
        ModelArgsError: naming the accepted spellings.
    """
    try:
        return DTYPE_ALIASES[value.strip().lower()]
    except KeyError:
        raise ModelArgsError(f"invalid dtype {value!r} (choose from {', '.join(DTYPE_ALIASES)})") from None


def parse_memory_size(text: str) -> int:
    """Bytes in a size such as ``70GiB`` (binary), ``80GB`` (decimal), ``512MiB`` or a plain byte count (> 0).

    Raises:
        ModelArgsError: for anything else.
    """
    match = _MEMORY.match(text.strip())
    size = float(match["number"]) * _UNIT_BYTES[(match["unit"] or "B").lower()] if match else 0.0
    if size < 1:
        raise ModelArgsError(f"invalid memory size {text!r} (a positive size such as 70GiB, 80GB or 512MiB)")
    return int(size)


def parse_layer_set(text: str) -> tuple[int, ...]:
    """Layer indices from ``"20,22,24-26"`` (inclusive ranges), sorted and distinct; at least one.

    Raises:
        ModelArgsError: for a negative index, a reversed range or a non-integer.
    """
    layers: set[int] = set()
    for item in (part.strip() for part in text.split(",")):
        low, dash, high = item.partition("-")
        try:
            first, last = (int(low), int(high)) if dash else (int(item), int(item))
        except ValueError:
            raise ModelArgsError(f"invalid layer set {text!r} (indices and inclusive ranges: 20,22,24-26)") from None
        if first < 0 or last < first:
            raise ModelArgsError(f"invalid layer range {item!r} in {text!r} (0-based, low-high with low <= high)")
        layers.update(range(first, last + 1))
    return tuple(sorted(layers))


def _layer_index(key: str, text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise ModelArgsError(f"invalid {key}={text!r} (a 0-based layer index)")
    return value


def _choice(key: str, text: str, choices: tuple[str, ...]) -> str:
    if text not in choices:
        raise ModelArgsError(f"invalid {key}={text!r} (choose from {', '.join(choices)})")
    return text


def _boolean(key: str, text: str) -> bool:
    value = text.strip().lower()
    if value not in ("true", "false"):
        raise ModelArgsError(f"invalid {key}={text!r} (true or false)")
    return value == "true"


def _revision(text: str) -> str:
    if not _REVISION.match(text):
        raise ModelArgsError(f"invalid revision={text!r} (a branch, tag, commit or checkpoint name)")
    return text


def _split_pairs(text: str) -> list[tuple[str, str]]:
    """``key=value`` pairs of a comma-separated string; a token without ``=`` continues the previous value."""
    pairs: list[tuple[str, str]] = []
    for token in (part.strip() for part in text.split(",")):
        if not token:
            continue
        key, equals, value = token.partition("=")
        if equals:
            pairs.append((key.strip(), value.strip()))
        elif pairs:
            pairs[-1] = (pairs[-1][0], f"{pairs[-1][1]},{token}")
        else:
            raise ModelArgsError(f"invalid model argument {token!r}: expected key=value with key in "
                                 f"{', '.join(MODEL_ARG_KEYS)}")
    return pairs


def parse_model_args(text: str | None) -> ModelArgs:
    """Parse ``key=value,...`` (keys in :data:`MODEL_ARG_KEYS`, each at most once) into :class:`ModelArgs`.

    Raises:
        ModelArgsError: one line naming an unknown, repeated or empty key (and the allowed keys), or a bad value.
    """
    if text is None or not text.strip():
        return ModelArgs()
    values: dict[str, Any] = {}
    for key, value in _split_pairs(text):
        if key not in MODEL_ARG_KEYS:
            raise ModelArgsError(f"unknown model argument {key!r}; allowed keys: {', '.join(MODEL_ARG_KEYS)}")
        if key in values:
            raise ModelArgsError(f"model argument {key!r} is given twice")
        if not value:
            raise ModelArgsError(f"model argument {key!r} has no value")
        values[key] = value
    parsers = {
        "dtype": canonical_dtype,
        "revision": _revision,
        "device_map": lambda v: _choice("device_map", v, DEVICE_MAP_STRATEGIES),
        "max_memory": parse_memory_size,
        "attn_implementation": lambda v: _choice("attn_implementation", v, ATTN_IMPLEMENTATIONS),
        "early": lambda v: _layer_index("early", v),
        "late": lambda v: _layer_index("late", v),
        "patch": parse_layer_set,
        "quantization": lambda v: _choice("quantization", v, QUANTIZATIONS),
        "chat_template": lambda v: _boolean("chat_template", v),
    }
    parsed = {key: parsers[key](value) for key, value in values.items()}
    if parsed.get("chat_template") is False:
        parsed.pop("chat_template")  # the default: keep the keys (and cache keys) of a raw-text run what they were
    if "max_memory" in parsed:
        parsed["max_memory_bytes"] = parsed.pop("max_memory")
    return ModelArgs(**parsed)


def resolve_dtype(spec_dtype: str, device: str, cli_dtype: str | None = None, args: ModelArgs | None = None) -> str:
    """The dtype a model loads in: ``dtype=`` of ``--model-args``, else ``--dtype``, else bfloat16 on any CUDA
    device (``cuda`` or ``cuda:N``, every tier), else the registry's ``spec_dtype``.

    Raises:
        ModelArgsError: ``--dtype`` and ``dtype=`` name different dtypes.
    """
    given = args.dtype if args is not None else None
    cli = canonical_dtype(cli_dtype) if cli_dtype is not None else None
    if given is not None and cli is not None and given != cli:
        raise ModelArgsError(f"--dtype {cli} and --model-args dtype={given} disagree; give the dtype once")
    if given or cli:
        return given or cli  # type: ignore[return-value]
    if device == "cuda" or device.startswith("cuda:"):
        return CUDA_DEFAULT_DTYPE
    return spec_dtype


def check_args_for_model(args: ModelArgs, name: str, source: str, n_layers: int | None) -> None:
    """Refuse model args that cannot apply to a model (called for every selected model before loading).

    Args:
        name: the model's ``--model`` name (for the message).
        source: its registry source (``hf``, ``path``, ``gguf-package``, ``toy``).
        n_layers: its layer count when known before loading (registry facts), else None (checked after loading).

    Raises:
        ModelArgsError: ``revision=`` for a non-``hf`` model, ``device_map=``/``max_memory=``/``quantization=`` for a
            toy model (built on one device from its config), or a layer index outside ``0..n_layers-1``.
    """
    if args.revision is not None and source != "hf":
        raise ModelArgsError(f"--model-args revision= applies to hf models only; {name} is a {source} model")
    if source == "toy" and (args.device_map is not None or args.max_memory_bytes is not None):
        raise ModelArgsError(f"--model-args device_map=/max_memory= need pretrained weights; {name} is a toy model "
                             "built on one device")
    if source == "toy" and args.quantization is not None:
        raise ModelArgsError(f"--model-args quantization= needs pretrained weights; {name} is a toy model built from "
                             "its config")
    if n_layers is not None:
        layer_choice(args, n_layers, name, early=0, late=0, patch=(0,))


def layer_choice(
    args: ModelArgs, n_layers: int, name: str, *, early: int, late: int, patch: tuple[int, ...]
) -> tuple[int, int, tuple[int, ...]]:
    """``(early, late, patch)`` with ``early=``/``late=``/``patch=`` of ``args`` replacing the given choices.

    Raises:
        ModelArgsError: an index given in ``args`` is not below ``n_layers`` (the model's layer count).
    """
    for key, value in (("early", args.early), ("late", args.late), ("patch", max(args.patch or (-1,)))):
        if value is not None and value >= n_layers:
            raise ModelArgsError(f"--model-args {key}: layer {value} does not exist in {name} "
                                 f"({n_layers} layers, 0..{n_layers - 1})")
    return (args.early if args.early is not None else early, args.late if args.late is not None else late,
            args.patch if args.patch is not None else patch)
