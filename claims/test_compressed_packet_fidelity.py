"""Claim compressed_packet_fidelity: a prompt's KV cache sent as an int8 packet keeps the next-token distribution.

Method (:mod:`harness.exchange.packets.fidelity`; packets in :mod:`harness.exchange.packets.packet`): for each prompt,
baseline and recursive alternately in id order, the first planned n (fewer with ``--limit``): prefill all but the
last token, write the whole cache as a packet file in each storage format, read it back into a fresh cache and feed
the last token. Estimate: mean over prompts of KL(original ‖ int8 packet), nats; 95% BCa bootstrap CI over prompts.
Beside it, never deciding: the float16 / bfloat16 KL, greedy agreement, the uncompressed round trip's max |Δ logit|,
bytes per token per format (measured, from this model's config, and for the GPU-tier configs), and the KL between
consecutive prompts' next-token distributions (how far another context moves it).
"""

from __future__ import annotations

import numpy as np
import pytest

from harness.claim.context import ClaimContext
from harness.claim.steps import planned_count, require_groups, run_details
from harness.exchange.packets.codecs import STORAGE_FORMATS
from harness.exchange.packets.fidelity import config_bytes_per_token, gpu_tier_bytes_per_token, measure_packet_fidelity
from harness.prompts import Prompt
from harness.stats import bootstrap_ci
from harness.transfer.disruption import kl_summary

pytestmark = pytest.mark.claim("compressed_packet_fidelity")

DECIDING_FORMAT = "int8"
"""The storage format the registered rule is about."""
REFERENCE_TOKENS = 1024
"""Packet length (tokens) at which bytes per token from config numbers are reported (int8 scales amortised)."""


def packet_prompts(claim: ClaimContext) -> list[Prompt]:
    """Baseline and recursive prompts alternately (each group in id order), the first :func:`planned_count`."""
    groups = require_groups(claim, cap=False)
    baseline, recursive = groups["baseline"], groups["recursive"]
    alternating = [p for pair in zip(baseline, recursive) for p in pair]
    alternating += baseline[len(recursive):] + recursive[len(baseline):]
    return alternating[: planned_count(claim)]


def test_compressed_packet_fidelity(claim: ClaimContext) -> None:
    lm = claim.lm
    prompts = packet_prompts(claim)
    measured = measure_packet_fidelity(lm, prompts, store=claim.store)
    rows = [measured["rows"][p.id] for p in prompts]
    kl = {f: np.array([r[f]["kl_nats"] for r in rows]) for f in STORAGE_FORMATS}
    level = claim.spec.ci_level or 0.95
    interval = bootstrap_ci(np.mean, kl[DECIDING_FORMAT], level=level, rng=claim.seed) if len(rows) >= 2 else None
    tokens = np.array([r["cached_tokens"] for r in rows], dtype=np.float64)
    dtype = next(lm.model.parameters()).dtype
    details = run_details(
        claim, prompts=[p.id for p in prompts], deciding_format=DECIDING_FORMAT, cache_dtype=str(dtype),
        kl_nats={f: kl_summary(kl[f]) for f in STORAGE_FORMATS},
        kl_nats_per_prompt={f: dict(zip([p.id for p in prompts], kl[f].tolist())) for f in STORAGE_FORMATS},
        greedy_agreement={f: float(np.mean([r[f]["greedy_agrees"] for r in rows])) for f in STORAGE_FORMATS},
        max_abs_logit_diff={f: max(r[f]["max_abs_logit_diff"] for r in rows) for f in STORAGE_FORMATS},
        measured_bytes_per_token={f: {"kv": float(np.mean(np.array([r[f]["kv_bytes"] for r in rows]) / tokens)),
                                      "file": float(np.mean(np.array([r[f]["file_bytes"] for r in rows]) / tokens))}
                                  for f in STORAGE_FORMATS},
        mean_cached_tokens=float(tokens.mean()),
        config_bytes_per_token={
            "at_mean_prompt_length": config_bytes_per_token(lm.shape.n_layers, lm.shape.n_kv_heads,
                                                            lm.shape.head_dim, dtype, round(float(tokens.mean()))),
            f"at_{REFERENCE_TOKENS}_tokens": config_bytes_per_token(lm.shape.n_layers, lm.shape.n_kv_heads,
                                                                    lm.shape.head_dim, dtype, REFERENCE_TOKENS),
        },
        gpu_tier_bytes_per_token={"tokens": REFERENCE_TOKENS, "models": gpu_tier_bytes_per_token(REFERENCE_TOKENS)},
        kl_to_next_prompt_nats=kl_summary(measured["kl_to_next_prompt_nats"]),
    )
    claim.conclude(claim.evaluate(
        estimate=float(kl[DECIDING_FORMAT].mean()) if rows else None,
        ci_low=interval.low if interval else None, ci_high=interval.high if interval else None, n=len(rows),
        undefined_reason=None if rows else "no prompts", details=details,
    ))
