"""Who may read a cache packet: fingerprints of a model's weights and tokenizer, and the harness version.

- **Weights**: the GGUF's sha256 for an embedded model (``provenance["gguf_sha256"]``), the Hub commit for an
  ``hf`` model (``revision:<sha>``), otherwise (toy and ``path:`` models) the sha256 of every parameter and buffer's
  bytes in ``state_dict`` order (``params:<sha>``; seconds for a 7B model, once per model object).
- **Tokenizer**: sha256 of the fast tokenizer's full serialization (vocabulary, merges, added and special
  tokens, normalizer), or of the sorted vocabulary with the special tokens for a slow tokenizer.

Both are memoised per object (models and tokenizers are read-only by convention, DESIGN §3).
"""

from __future__ import annotations

import hashlib
import json
import weakref
from importlib import metadata
from typing import Any

import torch

from harness.models import LoadedModel

__all__ = ["harness_version", "tokenizer_fingerprint", "weights_fingerprint"]

_WEIGHTS: weakref.WeakKeyDictionary[torch.nn.Module, str] = weakref.WeakKeyDictionary()
_TOKENIZERS: weakref.WeakKeyDictionary[Any, str] = weakref.WeakKeyDictionary()


def weights_fingerprint(lm: LoadedModel) -> str:
    """An id of ``lm``'s weights (see the module docstring); equal ids mean the same weights."""
    gguf = lm.provenance.get("gguf_sha256")
    if gguf:
        return f"gguf:{gguf}"
    if lm.spec.source == "hf" and lm.provenance.get("revision"):
        return f"revision:{lm.provenance['revision']}"
    known = _WEIGHTS.get(lm.model)
    if known is None:
        digest = hashlib.sha256()
        for name, tensor in lm.model.state_dict().items():
            flat = tensor.detach().to("cpu").contiguous().reshape(-1)
            digest.update(f"{name}|{tuple(tensor.shape)}|{tensor.dtype}".encode())
            digest.update(flat.view(torch.uint8).numpy().tobytes())
        known = f"params:{digest.hexdigest()}"
        _WEIGHTS[lm.model] = known
    return known


def tokenizer_fingerprint(tokenizer: Any) -> str:
    """sha256 hex of the tokenizer's definition (see the module docstring)."""
    known = _TOKENIZERS.get(tokenizer)
    if known is None:
        backend = getattr(tokenizer, "backend_tokenizer", None)
        if backend is not None:
            text = backend.to_str()
        else:
            text = json.dumps({"vocab": sorted(tokenizer.get_vocab().items()),
                               "special": sorted(str(t) for t in tokenizer.all_special_tokens)})
        known = hashlib.sha256(text.encode()).hexdigest()
        _TOKENIZERS[tokenizer] = known
    return known


def harness_version() -> str:
    """The installed kvclaims version ("unknown" when the package is not installed)."""
    try:
        return metadata.version("kvclaims")
    except metadata.PackageNotFoundError:
        return "unknown"
