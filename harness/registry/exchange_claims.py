"""The cache-exchange claims (issue 14), as data: what a KV cache carries when it leaves its model.

One section per claim, each registered before any of its data existed:

- **Packets**: compressed cache packets keep the receiver's next-token distribution (``compressed_packet_fidelity``).
- **Partial transfer**: fidelity of a cache with only a fraction of its layers transferred
  (``partial_layer_fidelity``).
- **Cross-model projector**: a sharer model's cache, projected into a receiver model, carries the context
  (``projector_transfers_context``).
- **Confabulation signature**: cache statistics of grounded-fact vs confabulation-inducing prompts after
  length and token-frequency control (``confabulation_signature``).

Rule language, planned n and families: :mod:`harness.registry.rules`, :mod:`harness.registry.power_plans`,
:mod:`harness.registry.multiplicity`.
"""

from __future__ import annotations

from harness.registry.power_plans import POWER, PowerPlan, alpha_ci
from harness.registry.rules import Kind, ci
from harness.registry.spec import ClaimSpec
from harness.stats.power import part

__all__ = ["EXCHANGE_CLAIMS"]

# ------------------------------------------------------------------------------------------ packets
PACKET_KL_BOUND = 0.01
"""compressed_packet_fidelity's bound on the mean KL(original ‖ int8 packet), nats; registered 2026-12-05 before any
packet of an embedded model existed. Reason: llama.cpp measured a mean KL of 0.00098 nats for a K and V cache stored
as q8_0 (int8 with one fp16 scale per 32 elements; f16 weights, WikiText; ggml-org/llama.cpp PR #7412, 2024), and
int8 KV caches are reported lossless in perplexity (KIVI, KVQuant). The bound leaves a factor of 10 above that figure
for a coarser scale (one per channel over the whole packet) and for 135M–270M-parameter models, and it lies two orders
of magnitude below the KL between the next-token distributions of two different prompts (assumed ≥ 1 nat; the run
reports it beside the estimate), so a packet within it carries the same context, not another one."""
PACKET_ASSUMED_KL = 0.005
"""Power assumption (not data): true mean KL at half the bound, the design's margin."""
PACKET_ASSUMED_SD = 0.01
"""Power assumption (not data): per-prompt SD of the KL, twice its mean (KL per prompt is right-skewed)."""

PACKET_CLAIMS: tuple[ClaimSpec, ...] = (
    ClaimSpec(
        id="compressed_packet_fidelity", version=1, title="int8 cache packets keep the next-token distribution",
        statement="A prompt's KV cache sent as an int8 packet (symmetric, one scale per channel) and read back gives "
                  "the receiver nearly the next-token distribution of the original cache: mean KL(original ‖ int8) "
                  f"below {PACKET_KL_BOUND:g} nats.",
        estimator="prompts: baseline and recursive alternately (id order), the first planned n. Per prompt: prefill "
                  "tokens 0…n−2 (one row), write the whole cache as an int8 packet file (harness.exchange.packets), "
                  "read it into a fresh cache, feed token n−1; KL(softmax(logits from the original cache) ‖ "
                  "softmax(logits from the packet)) in nats, float64. Estimate: mean over prompts; CI: 95% BCa "
                  "bootstrap over prompts. Details (never deciding): the same KL for float16 and bfloat16 packets, "
                  "greedy next-token agreement per format, the uncompressed round trip's max |Δ logit| (0 expected), "
                  "bytes per token per format (measured files and config numbers, GPU-tier models from their "
                  "configs), and the KL between consecutive prompts' original distributions as a scale reference.",
        effect_type="mean_kl_nats", kind=Kind.NON_SUPERIORITY,
        criteria=(ci("<", PACKET_KL_BOUND),),
        ci_level=0.95, alpha=None, family=None,
        power=PowerPlan(
            assumptions=f"true mean KL = {PACKET_ASSUMED_KL:g} nats (half the bound), per-prompt SD "
                        f"{PACKET_ASSUMED_SD:g} nats (assumed; KL is right-skewed, SD twice the mean); one-sample t "
                        "approximating the bootstrap CI",
            parts=(part(f"95% CI upper bound below {PACKET_KL_BOUND:g}", "one-sample-t",
                        (PACKET_KL_BOUND - PACKET_ASSUMED_KL) / PACKET_ASSUMED_SD, alpha_ci(0.95), POWER),),
        ),
        n_unit="prompts", required_groups=("baseline", "recursive"),
    ),
)
"""Registered 2026-12-05 before any packet of an embedded model existed (issue 14, item 2b)."""

# --------------------------------------------------------------------------------- partial transfer
PARTIAL_CLAIMS: tuple[ClaimSpec, ...] = ()

# ---------------------------------------------------------------------------------------- projector
PROJECTOR_CLAIMS: tuple[ClaimSpec, ...] = ()

# --------------------------------------------------------------------------------- confabulation
CONFABULATION_CLAIMS: tuple[ClaimSpec, ...] = ()

EXCHANGE_CLAIMS: tuple[ClaimSpec, ...] = (*PACKET_CLAIMS, *PARTIAL_CLAIMS, *PROJECTOR_CLAIMS, *CONFABULATION_CLAIMS)
"""The cache-exchange table, in the order above."""
