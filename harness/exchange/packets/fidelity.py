"""What a cache packet costs and what it keeps: next-token fidelity per storage format and bytes per token.

Fidelity of one prompt (``ids``, n tokens): prefill tokens ``0 … n−2`` (one row), decode token ``n−1`` from that
cache (the reference logits), then for each format of :data:`~harness.exchange.packets.codecs.STORAGE_FORMATS`:
make a packet of the whole cache, write it to a file, read it back (refused unless it is this model's, at positions
``[0, n−1)``), build a fresh cache from it and decode token ``n−1`` again. Per format: KL(reference ‖ packet) in nats
(float64, :func:`harness.transfer.disruption.next_token_kl`), whether the greedy next token agrees, max |Δ logit|,
the file's bytes and the K/V bytes (with int8 scales, without rotary frequencies or header). The KL between one
prompt's reference distribution and the next prompt's is kept as a scale reference: how far another context moves
the distribution. Raw rows are cached on disk (:class:`~harness.runtime.measurement_store.MeasurementStore`).

Bytes per token from config numbers (:func:`config_bytes_per_token`) need no weights: the registry's expected facts
for GPU-tier models, the loaded shape otherwise.
"""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from harness.engine import kvcache
from harness.engine.tokens import encode, pad_id
from harness.exchange.packets.codecs import STORAGE_FORMATS, config_packet_size
from harness.exchange.packets.packet import make_packet, packet_prefill, read_packet, write_packet
from harness.models import LoadedModel
from harness.models.registry import MODEL_ALIASES, MODEL_REGISTRY
from harness.prompts import Prompt
from harness.runtime.measurement_store import MeasurementStore, code_fingerprint
from harness.transfer.disruption import next_token_kl

__all__ = ["config_bytes_per_token", "gpu_tier_bytes_per_token", "measure_packet_fidelity", "prompt_fidelity"]


def prompt_fidelity(lm: LoadedModel, ids: Sequence[int], directory: Path) -> tuple[dict[str, Any], torch.Tensor]:
    """One prompt's row (see the module docstring) and its reference next-token logits ``[vocab]`` (float32).

    The row: ``cached_tokens`` (n − 1) and, per format, ``kl_nats``, ``greedy_agrees``, ``max_abs_logit_diff``,
    ``file_bytes``, ``kv_bytes``. Packet files go to ``directory`` and are removed after reading."""
    if len(ids) < 2:
        raise ValueError(f"packet fidelity needs a prompt of at least 2 tokens, got {len(ids)}")
    state = kvcache.prefill(lm.model, [list(ids[:-1])], pad_id=pad_id(lm.tokenizer))
    reference = kvcache.next_token_logits(lm.model, state, ids[-1])
    row: dict[str, Any] = {"cached_tokens": len(ids) - 1}
    for storage in STORAGE_FORMATS:
        path = directory / f"packet.{storage}.safetensors"
        packet = make_packet(lm, state, storage=storage)
        file_bytes = write_packet(packet, path)
        received = packet_prefill(lm, read_packet(path, lm, positions=(0, len(ids) - 1)))
        path.unlink()
        logits = kvcache.next_token_logits(lm.model, received, ids[-1])
        row[storage] = {
            "kl_nats": float(next_token_kl(reference, logits)),
            "greedy_agrees": bool(int(reference.argmax()) == int(logits.argmax())),
            "max_abs_logit_diff": float((reference - logits).abs().max()),
            "file_bytes": file_bytes,
            "kv_bytes": packet.kv_bytes,
        }
    return row, reference


def measure_packet_fidelity(lm: LoadedModel, prompts: Sequence[Prompt], *,
                            store: MeasurementStore | None = None) -> dict[str, Any]:
    """``{"rows": {prompt id: row}, "kl_to_next_prompt_nats": [..]}`` for ``prompts`` in order (rows as in
    :func:`prompt_fidelity`; the second list has one KL(reference of prompt i ‖ reference of prompt i+1) per
    consecutive pair). Cached on disk by model identity, prompt texts and this code's fingerprint."""

    def compute() -> dict[str, Any]:
        rows: dict[str, Any] = {}
        across: list[float] = []
        previous = None
        with tempfile.TemporaryDirectory(prefix="kvclaims-packets-") as tmp:
            for prompt in prompts:
                rows[prompt.id], reference = prompt_fidelity(lm, encode(lm.tokenizer, prompt.text), Path(tmp))
                if previous is not None:
                    across.append(float(next_token_kl(previous, reference)))
                previous = reference
        return {"rows": rows, "kl_to_next_prompt_nats": across}

    parts = {"model": lm.identity, "prompts": [[p.id, p.text] for p in prompts],
             "code": code_fingerprint([sys.modules[__name__]])}
    return (store or MeasurementStore(mode="off")).get_or_compute("packet_fidelity", parts, compute)


def config_bytes_per_token(n_layers: int, n_kv_heads: int, head_dim: int, cache_dtype: torch.dtype,
                           tokens: int) -> dict[str, dict[str, float]]:
    """Per storage format: ``payload_bytes_per_token`` (layers × KV heads × head dim × 2 × bytes per element),
    ``scale_bytes`` (int8 scales per packet) and ``bytes_per_token`` of a packet of ``tokens`` positions."""
    out = {}
    for storage in STORAGE_FORMATS:
        size = config_packet_size(n_layers, n_kv_heads, head_dim, cache_dtype, storage)
        out[storage] = {"payload_bytes_per_token": size.payload_bytes_per_token, "scale_bytes": size.scale_bytes,
                        "bytes_per_token": size.bytes_per_token(tokens)}
    return out


def gpu_tier_bytes_per_token(tokens: int) -> dict[str, dict[str, dict[str, float]]]:
    """:func:`config_bytes_per_token` of every pretrained GPU-tier model of the registry, from its expected facts
    (layers, KV heads, head dim) and registered dtype, for packets of ``tokens`` positions."""
    table = {}
    for name in MODEL_ALIASES["gpu"]:
        spec = MODEL_REGISTRY[name]
        facts = spec.expected
        if facts is None:
            continue
        table[name] = config_bytes_per_token(facts.n_layers, facts.n_kv_heads, facts.head_dim,
                                             getattr(torch, spec.dtype), tokens)
    return table
