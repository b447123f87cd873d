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

from harness.registry.spec import ClaimSpec

__all__ = ["EXCHANGE_CLAIMS"]

# ------------------------------------------------------------------------------------------ packets
PACKET_CLAIMS: tuple[ClaimSpec, ...] = ()

# --------------------------------------------------------------------------------- partial transfer
PARTIAL_CLAIMS: tuple[ClaimSpec, ...] = ()

# ---------------------------------------------------------------------------------------- projector
PROJECTOR_CLAIMS: tuple[ClaimSpec, ...] = ()

# --------------------------------------------------------------------------------- confabulation
CONFABULATION_CLAIMS: tuple[ClaimSpec, ...] = ()

EXCHANGE_CLAIMS: tuple[ClaimSpec, ...] = (*PACKET_CLAIMS, *PARTIAL_CLAIMS, *PROJECTOR_CLAIMS, *CONFABULATION_CLAIMS)
"""The cache-exchange table, in the order above."""
