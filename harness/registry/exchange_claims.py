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
from harness.registry.rules import Kind, ci, contrasts_above
from harness.registry.spec import ClaimSpec
from harness.stats.power import part

__all__ = ["EXCHANGE_CLAIMS"]

# ------------------------------------------------------------------------------------------ packets
PACKET_CLAIMS: tuple[ClaimSpec, ...] = ()

# --------------------------------------------------------------------------------- partial transfer
PARTIAL_CLAIMS: tuple[ClaimSpec, ...] = ()

# ---------------------------------------------------------------------------------------- projector
PROJECTOR_BASELINES: tuple[str, ...] = ("shuffled_sharer", "random_sharer", "mismatched_pairs")
"""The projector claim's registered contrasts (each L_baseline − L_projected, nats/token), see the claim's estimator."""

PROJECTOR_CLAIMS: tuple[ClaimSpec, ...] = (
    ClaimSpec(
        id="projector_transfers_context", version=1, title="A projected sharer cache carries the context",
        statement="The receiver model, continuing a held-out text from the cache of its context that a small "
                  "trained projector built from another model's (the sharer's) cache, predicts the continuation "
                  "better than with no context, and better than the same projector fed a different text's sharer "
                  "cache or norm-matched random sharer K/V, and better than a projector trained on mismatched "
                  "(context, continuation) pairs. Smoke scale: sharer and receiver are the two embedded models.",
        estimator="Per held-out text: L_X = mean NLL (nats/token) of the receiver's continuation tokens 2…m (the "
                  "first is fed, not scored) under condition X of the cache before them: none (only the receiver's "
                  "own special-token prefix), own (the receiver's own context cache), projected (projector_l of the "
                  "sharer's context K/V, aligned by character spans), shuffled_sharer (the projected cache of another "
                  "held-out text's context, a fixed derangement), random_sharer (sharer K/V replaced by Gaussian "
                  "vectors with their norms per layer, head and position, then projected), mismatched_pairs (a "
                  "projector trained with every sharer context paired with another text's continuation). Estimate: "
                  "mean over texts of L_none − L_projected, 95% BCa bootstrap CI over texts. Contrasts: mean of "
                  "L_X − L_projected for each baseline X, 95% BCa bootstrap CI over texts. Reported beside it, never "
                  "deciding: the gap closed (L_none − L_projected)/(L_none − L_own) per text, mean with its CI.",
        effect_type="continuation_nll_reduction", kind=Kind.SUPERIORITY,
        # Bound 0 on the estimate and on every contrast: the claim is only that the projected cache helps at all
        # and helps more than each baseline (no minimum size is claimed at this smoke scale); 95% CIs as in the
        # rest of the registry. No p criterion: the CIs decide, so no multiplicity family.
        criteria=(ci(">", 0.0), contrasts_above(0.0, PROJECTOR_BASELINES)),
        ci_level=0.95, alpha=None, family=None,
        # Planned n, a priori: the assumed true reduction 0.15 nats/token (about a tenth of the own-cache gain
        # that a 30-word context gives a small LM on its continuation, a modest share for a smoke-scale projector)
        # with a per-text SD of 0.30 nats/token (continuation NLL differences of 12-token continuations spread
        # about twice their mean), i.e. d = 0.5; each contrast assumed the same size, the three contrast CIs
        # jointly at power 0.8 (each at 0.8^(1/3)).
        power=PowerPlan(
            assumptions="true L_none − L_projected = 0.15 nats/token with per-text SD 0.30 (assumed, no pilot); each "
                        "contrast L_baseline − L_projected the same; the three contrast CIs jointly at power 0.8",
            parts=(
                part("95% CI above 0", "one-sample-t", 0.5, alpha_ci(0.95), POWER),
                part("each contrast 95% CI above 0", "one-sample-t", 0.5, alpha_ci(0.95), POWER ** (1.0 / 3.0)),
            ),
        ),
        n_unit="held-out texts", required_groups=(),
        notes="Needs both embedded models: the receiver is the model under test, the sharer the other one.",
    ),
)

# --------------------------------------------------------------------------------- confabulation
CONFABULATION_CLAIMS: tuple[ClaimSpec, ...] = ()

EXCHANGE_CLAIMS: tuple[ClaimSpec, ...] = (*PACKET_CLAIMS, *PARTIAL_CLAIMS, *PROJECTOR_CLAIMS, *CONFABULATION_CLAIMS)
"""The cache-exchange table, in the order above."""
